//! Checkpoint files in an object store: a local directory, `file://`, `s3://` or
//! `memory://` (docs/checkpoints.md §4).
//!
//! ```text
//! <dir>/parts/a0000000003-w00001-<lo>-<hi>-<uuid>.tlck   a worker's part, put-if-absent
//! <dir>/chk-0000000007.tlck                               a manifest, written last
//! ```
//!
//! A part is written as soon as a worker's state for a range of boundaries `(lo, hi]`
//! is complete; a manifest, once every worker has a part holding one boundary and
//! every sink has committed the epochs before it, names those parts. A part's name
//! says which run of the job (`a<attempt>`) and worker wrote it and its range, so
//! retention can tell the parts no manifest will need without reading them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Serialize;

use tidelake_sinks::delta::protocol::store::{open_existing_store, open_store};

use super::format::{crc32c, decode_manifest, decode_parts, encode_manifest, encode_parts};
use super::{CheckpointError, Manifest, Part, PartEntry};

/// The directory of parts.
pub const PARTS_DIR: &str = "parts";

/// The file name of checkpoint `id`'s manifest: `chk-` and the id in ten digits.
pub fn manifest_file(id: u64) -> String {
    format!("chk-{id:010}.tlck")
}

/// The id in a manifest's file name.
fn manifest_id(file: &str) -> Option<u64> {
    file.strip_prefix("chk-")?
        .strip_suffix(".tlck")?
        .parse()
        .ok()
}

/// What a part's file name says of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartName {
    /// The run that wrote it.
    pub attempt: u64,
    /// The worker.
    pub worker: u32,
    /// Its boundaries `(lo, hi]`.
    pub range: (u64, u64),
}

impl PartName {
    /// The name of a new part file (unique by a random suffix).
    fn file(&self) -> String {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!(
            "a{:010}-w{:05}-{}-{}-{}.tlck",
            self.attempt,
            self.worker,
            self.range.0,
            self.range.1,
            &suffix[..12]
        )
    }

    /// What the name of a part file says, if it is one.
    pub fn parse(file: &str) -> Option<PartName> {
        let mut fields = file.strip_suffix(".tlck")?.split('-');
        let attempt = fields.next()?.strip_prefix('a')?.parse().ok()?;
        let worker = fields.next()?.strip_prefix('w')?.parse().ok()?;
        let lo = fields.next()?.parse().ok()?;
        let hi = fields.next()?.parse().ok()?;
        fields.next()?;
        Some(PartName {
            attempt,
            worker,
            range: (lo, hi),
        })
    }
}

/// The checkpoints of one job, in one directory of a store.
#[derive(Clone)]
pub struct CheckpointStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    url: String,
}

/// Whether a listed checkpoint can be restored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Status {
    /// Its manifest and every part it names are there, with the sizes it records.
    Complete,
    /// A manifest that cannot be read, or a part it names missing or of another size.
    Unusable(String),
}

/// One checkpoint as found in the store.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    /// Its id.
    pub id: u64,
    /// Complete or unusable.
    #[serde(flatten)]
    pub status: Status,
    /// Bytes of its manifest and the parts it names.
    pub bytes: u64,
    /// Its manifest, if readable.
    pub manifest: Option<Manifest>,
}

/// Everything in a checkpoint directory.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Contents {
    /// The checkpoints (manifests), oldest first.
    pub checkpoints: Vec<Listing>,
    /// Part files no manifest names: being written for a checkpoint to come, or left
    /// by a run that stopped.
    pub loose_parts: usize,
    /// Their bytes.
    pub loose_bytes: u64,
    /// The newest run of the job that wrote anything here.
    pub last_attempt: u64,
}

impl CheckpointStore {
    /// The checkpoints at `url` (a directory is created if missing).
    pub fn open(url: &str) -> Result<Self, CheckpointError> {
        Self::with(url, open_store(url))
    }

    /// The checkpoints at `url`, which must exist: for commands that only read.
    pub fn open_existing(url: &str) -> Result<Self, CheckpointError> {
        Self::with(url, open_existing_store(url))
    }

    fn with(
        url: &str,
        opened: Result<(Arc<dyn ObjectStore>, Path), tidelake_sinks::delta::DeltaError>,
    ) -> Result<Self, CheckpointError> {
        let (store, root) = opened.map_err(|e| CheckpointError::Location {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        Ok(CheckpointStore {
            store,
            root,
            url: url.to_owned(),
        })
    }

    /// The location as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes `parts`, one worker's for successive ranges of boundaries, in one file for
    /// run `attempt`; returns what a manifest records of each.
    pub async fn write_parts(
        &self,
        attempt: u64,
        parts: &[Part],
    ) -> Result<Vec<PartEntry>, CheckpointError> {
        let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
            return Ok(Vec::new());
        };
        let name = PartName {
            attempt,
            worker: first.worker,
            range: (first.range.0, last.range.1),
        };
        let file = name.file();
        let bytes = encode_parts(parts);
        let (size, crc) = (bytes.len() as u64, crc32c(&bytes));
        self.put_new(&self.part_path(&file), bytes).await?;
        Ok(parts
            .iter()
            .enumerate()
            .map(|(index, part)| PartEntry {
                worker: part.worker,
                file: file.clone(),
                size,
                crc32c: crc,
                index: index as u32,
                range: part.range,
            })
            .collect())
    }

    /// Writes the manifest of checkpoint `manifest.id`, which makes it complete.
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<(), CheckpointError> {
        let path = self.root.clone().join(manifest_file(manifest.id));
        self.put_new(&path, encode_manifest(manifest)).await
    }

    /// Everything in the directory: the checkpoints, oldest first, with whether each can
    /// be restored (parts are checked by size here; their checksums when read), and
    /// the parts no manifest names.
    pub async fn contents(&self) -> Result<Contents, CheckpointError> {
        let mut manifests: BTreeMap<u64, u64> = BTreeMap::new();
        let mut parts: BTreeMap<String, u64> = BTreeMap::new();
        let mut objects = self.store.list(Some(&self.root));
        while let Some(meta) = objects
            .try_next()
            .await
            .map_err(|source| self.error(source))?
        {
            let names: Vec<String> = match meta.location.prefix_match(&self.root) {
                Some(names) => names.map(|n| n.as_ref().to_owned()).collect(),
                None => continue,
            };
            match names.as_slice() {
                [file] => {
                    if let Some(id) = manifest_id(file) {
                        manifests.insert(id, meta.size);
                    }
                }
                [dir, file] if dir == PARTS_DIR && PartName::parse(file).is_some() => {
                    parts.insert(file.clone(), meta.size);
                }
                _ => {}
            }
        }
        let mut contents = Contents::default();
        let mut named: BTreeSet<&str> = BTreeSet::new();
        for (&id, &size) in &manifests {
            let (status, manifest) = match self.read_manifest(id).await {
                Ok(manifest) => (check_sizes(&manifest, &parts), Some(manifest)),
                Err(e @ CheckpointError::Store { .. }) => return Err(e),
                Err(e) => (Status::Unusable(e.to_string()), None),
            };
            let mut bytes = size;
            if let Some(manifest) = &manifest {
                contents.last_attempt = contents.last_attempt.max(manifest.attempt);
                for entry in &manifest.parts {
                    if let Some((name, size)) = parts.get_key_value(entry.file.as_str()) {
                        bytes += size;
                        named.insert(name);
                    }
                }
            }
            contents.checkpoints.push(Listing {
                id,
                status,
                bytes,
                manifest,
            });
        }
        for (file, size) in &parts {
            if let Some(name) = PartName::parse(file) {
                contents.last_attempt = contents.last_attempt.max(name.attempt);
            }
            if !named.contains(file.as_str()) {
                contents.loose_parts += 1;
                contents.loose_bytes += size;
            }
        }
        Ok(contents)
    }

    /// The manifest of checkpoint `id`.
    pub async fn read_manifest(&self, id: u64) -> Result<Manifest, CheckpointError> {
        let path = self.root.clone().join(manifest_file(id));
        let bytes = self.get(&path).await?;
        let manifest = decode_manifest(path.as_ref(), &bytes)?;
        if manifest.id != id {
            return Err(CheckpointError::Corrupt {
                file: path.to_string(),
                reason: format!("it is the manifest of checkpoint {}", manifest.id),
            });
        }
        Ok(manifest)
    }

    /// The part `entry` of checkpoint `manifest`, checked against the size and
    /// checksum the manifest records.
    pub async fn read_part(
        &self,
        manifest: &Manifest,
        entry: &PartEntry,
    ) -> Result<Part, CheckpointError> {
        let path = self.part_path(&entry.file);
        let bad = |problem: String| CheckpointError::BadPart {
            id: manifest.id,
            file: path.to_string(),
            problem,
        };
        let bytes = match self.get(&path).await {
            Err(CheckpointError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => return Err(bad("is missing".to_owned())),
            other => other?,
        };
        if bytes.len() as u64 != entry.size {
            return Err(bad(format!(
                "has {} bytes, the manifest records {}",
                bytes.len(),
                entry.size
            )));
        }
        let crc = crc32c(&bytes);
        if crc != entry.crc32c {
            return Err(bad(format!(
                "has checksum {crc:#010x}, the manifest records {:#010x}",
                entry.crc32c
            )));
        }
        let mut parts = decode_parts(path.as_ref(), &bytes)?;
        let index = entry.index as usize;
        if index >= parts.len() {
            return Err(bad(format!(
                "holds {} parts, the manifest names part {index} of it",
                parts.len()
            )));
        }
        let part = parts.swap_remove(index);
        let (lo, hi) = part.range;
        let b = manifest.rule_time;
        if part.worker != entry.worker || !(lo < b && b <= hi) {
            return Err(bad(format!(
                "is worker {}'s for boundaries ({lo}, {hi}], the manifest records worker {} at {b}",
                part.worker, entry.worker
            )));
        }
        Ok(part)
    }

    /// Every part of checkpoint `manifest`, by worker.
    pub async fn read_parts(&self, manifest: &Manifest) -> Result<Vec<Part>, CheckpointError> {
        let mut parts = Vec::with_capacity(manifest.parts.len());
        for entry in &manifest.parts {
            parts.push(self.read_part(manifest, entry).await?);
        }
        Ok(parts)
    }

    /// The newest checkpoint whose manifest and parts all read back, with its parts,
    /// and why each newer one was skipped (docs/checkpoints.md §5). A store that fails
    /// is an error, not a reason to skip.
    pub async fn newest_restorable(&self) -> Result<Restorable, CheckpointError> {
        let contents = self.contents().await?;
        let last_id = contents.checkpoints.last().map_or(0, |l| l.id);
        let mut skipped = Vec::new();
        for listing in contents.checkpoints.into_iter().rev() {
            let manifest = match (listing.status, listing.manifest) {
                (Status::Complete, Some(manifest)) => manifest,
                (Status::Unusable(reason), _) => {
                    skipped.push((listing.id, reason));
                    continue;
                }
                (Status::Complete, None) => continue,
            };
            match self.read_parts(&manifest).await {
                Ok(parts) => {
                    return Ok(Restorable {
                        newest: Some((manifest, parts)),
                        skipped,
                        last_attempt: contents.last_attempt,
                        last_id,
                    });
                }
                Err(e @ CheckpointError::Store { .. }) => return Err(e),
                Err(e) => skipped.push((listing.id, e.to_string())),
            }
        }
        Ok(Restorable {
            newest: None,
            skipped,
            last_attempt: contents.last_attempt,
            last_id,
        })
    }

    /// Keeps the newest `keep` complete checkpoints (at least one) and deletes every
    /// older manifest; then deletes the parts no kept manifest names that no later
    /// checkpoint of run `attempt` can name either: those of earlier runs, and those of
    /// this run for boundaries up to the newest kept checkpoint. Returns the ids of
    /// the manifests deleted.
    pub async fn retain(&self, keep: usize, attempt: u64) -> Result<Vec<u64>, CheckpointError> {
        let contents = self.contents().await?;
        let complete: Vec<&Listing> = contents
            .checkpoints
            .iter()
            .filter(|l| l.status == Status::Complete)
            .collect();
        let kept: Vec<&Listing> = complete.iter().rev().take(keep.max(1)).copied().collect();
        let (Some(newest), Some(oldest)) = (kept.first(), kept.last()) else {
            return Ok(Vec::new());
        };
        let newest_time = newest.manifest.as_ref().map_or(0, |m| m.rule_time);
        let mut deleted = Vec::new();
        for listing in contents.checkpoints.iter().filter(|l| l.id < oldest.id) {
            self.delete(&self.root.clone().join(manifest_file(listing.id)))
                .await?;
            deleted.push(listing.id);
        }
        let named: BTreeSet<&str> = kept
            .iter()
            .filter_map(|l| l.manifest.as_ref())
            .flat_map(|m| m.parts.iter().map(|p| p.file.as_str()))
            .collect();
        let dir = self.root.clone().join(PARTS_DIR);
        let files: Vec<Path> = self
            .store
            .list(Some(&dir))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|source| self.error(source))?;
        for path in files {
            let Some(file) = path.filename() else {
                continue;
            };
            let Some(name) = PartName::parse(file) else {
                continue;
            };
            let unneeded = name.attempt < attempt || name.range.1 <= newest_time;
            if unneeded && !named.contains(file) {
                self.delete(&path).await?;
            }
        }
        Ok(deleted)
    }

    fn part_path(&self, file: &str) -> Path {
        self.root.clone().join(PARTS_DIR).join(file)
    }

    async fn delete(&self, path: &Path) -> Result<(), CheckpointError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(CheckpointError::Store {
                path: path.to_string(),
                source,
            }),
        }
    }

    async fn put_new(&self, path: &Path, bytes: Vec<u8>) -> Result<(), CheckpointError> {
        let options = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(path, PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(CheckpointError::Exists(path.to_string()))
            }
            Err(source) => Err(CheckpointError::Store {
                path: path.to_string(),
                source,
            }),
        }
    }

    async fn get(&self, path: &Path) -> Result<bytes::Bytes, CheckpointError> {
        let store_error = |source| CheckpointError::Store {
            path: path.to_string(),
            source,
        };
        let result = self.store.get(path).await.map_err(store_error)?;
        result.bytes().await.map_err(store_error)
    }

    fn error(&self, source: object_store::Error) -> CheckpointError {
        CheckpointError::Store {
            path: self.url.clone(),
            source,
        }
    }
}

/// What [`CheckpointStore::newest_restorable`] found.
#[derive(Debug)]
pub struct Restorable {
    /// The newest checkpoint that reads back whole, with its parts by worker.
    pub newest: Option<(Manifest, Vec<Part>)>,
    /// Newer checkpoints that did not, with why: `(id, reason)`, newest first.
    pub skipped: Vec<(u64, String)>,
    /// The newest run of the job that wrote anything in the directory.
    pub last_attempt: u64,
    /// The greatest checkpoint id in the directory, restorable or not.
    pub last_id: u64,
}

/// Complete when every part the manifest names is in `parts` with its recorded size.
fn check_sizes(manifest: &Manifest, parts: &BTreeMap<String, u64>) -> Status {
    for entry in &manifest.parts {
        match parts.get(&entry.file) {
            None => return Status::Unusable(format!("part {} is missing", entry.file)),
            Some(&size) if size != entry.size => {
                return Status::Unusable(format!(
                    "part {} has {size} bytes, the manifest records {}",
                    entry.file, entry.size
                ));
            }
            Some(_) => {}
        }
    }
    Status::Complete
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::format::FORMAT_VERSION;
    use crate::checkpoint::{Kind, Layout};

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    /// Writes the parts of `workers` workers for boundaries `(id × 1000 − 1000, id ×
    /// 1000]` in run `attempt`; with `complete`, the manifest of checkpoint `id` at
    /// `id × 1000` too.
    async fn write(
        store: &CheckpointStore,
        id: u64,
        workers: u32,
        attempt: u64,
        complete: bool,
    ) -> Manifest {
        let mut parts = Vec::new();
        for worker in 0..workers {
            let part = Part {
                worker,
                range: (id * 1000 - 1000, id * 1000),
                ..Part::default()
            };
            parts.extend(store.write_parts(attempt, &[part]).await.expect("part"));
        }
        let manifest = Manifest {
            id,
            kind: Kind::Checkpoint,
            job_id: "job".to_owned(),
            attempt,
            rule_time: id * 1000,
            created_ms: 0,
            settings: Vec::new(),
            layout: Layout {
                processes: 1,
                workers,
                key_groups: 128,
            },
            parts,
        };
        if complete {
            store.write_manifest(&manifest).await.expect("manifest");
        }
        manifest
    }

    fn statuses(store: &CheckpointStore) -> Vec<(u64, Status)> {
        block_on(store.contents())
            .expect("list")
            .checkpoints
            .into_iter()
            .map(|l| (l.id, l.status))
            .collect()
    }

    fn dir_of(dir: &tempfile::TempDir) -> CheckpointStore {
        CheckpointStore::open(&dir.path().display().to_string()).expect("open")
    }

    #[test]
    fn part_names_say_run_worker_and_range() {
        let name = PartName {
            attempt: 3,
            worker: 12,
            range: (10_000, u64::MAX),
        };
        let file = name.file();
        assert!(file.starts_with("a0000000003-w00012-10000-18446744073709551615-"));
        assert_eq!(PartName::parse(&file), Some(name));
        assert_eq!(PartName::parse("notes.txt"), None);
        assert_eq!(PartName::parse("a1-w1-x-2-y.tlck"), None);
    }

    #[test]
    fn checkpoints_are_listed_and_restored_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir_of(&dir);
        block_on(async {
            write(&store, 1, 2, 1, true).await;
            write(&store, 2, 2, 1, true).await;
            write(&store, 3, 2, 1, false).await;
        });
        assert_eq!(
            statuses(&store),
            vec![(1, Status::Complete), (2, Status::Complete)]
        );
        let contents = block_on(store.contents()).expect("contents");
        assert_eq!(contents.loose_parts, 2, "the parts of the unfinished one");
        assert_eq!(contents.last_attempt, 1);
        let found = block_on(store.newest_restorable()).expect("restorable");
        let (manifest, parts) = found.newest.expect("one");
        assert_eq!(
            manifest.id, 2,
            "the one without a manifest is not a checkpoint"
        );
        assert_eq!(parts.len(), 2);
        assert!(found.skipped.is_empty(), "{:?}", found.skipped);
        assert!(dir.path().join("chk-0000000002.tlck").is_file());
    }

    #[test]
    fn files_are_written_put_if_absent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir_of(&dir);
        let manifest = block_on(write(&store, 1, 1, 1, true));
        let err = block_on(store.write_manifest(&manifest)).expect_err("twice");
        assert!(matches!(err, CheckpointError::Exists(_)), "{err}");
        assert!(err.to_string().contains("chk-0000000001.tlck"), "{err}");
    }

    #[test]
    fn damaged_checkpoints_are_skipped_for_the_next_older_one_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir_of(&dir);
        let manifests: Vec<Manifest> = block_on(async {
            let mut all = Vec::new();
            for id in 1..=5 {
                all.push(write(&store, id, 2, 1, true).await);
            }
            all
        });
        let part = |id: u64, worker: usize| {
            dir.path()
                .join(PARTS_DIR)
                .join(&manifests[id as usize - 1].parts[worker].file)
        };
        // 5: a part flipped in place (same size, so only its checksum tells).
        let mut bytes = std::fs::read(part(5, 1)).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(part(5, 1), bytes).expect("write");
        // 4: a part missing. 3: a manifest of a future format version.
        std::fs::remove_file(part(4, 0)).expect("remove");
        let manifest = dir.path().join(manifest_file(3));
        let mut bytes = std::fs::read(&manifest).expect("read");
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        std::fs::write(&manifest, bytes).expect("write");

        let found = block_on(store.newest_restorable()).expect("restorable");
        assert_eq!(found.newest.map(|(m, _)| m.id), Some(2));
        let skipped: Vec<u64> = found.skipped.iter().map(|(id, _)| *id).collect();
        assert_eq!(skipped, vec![5, 4, 3]);
        let reasons: Vec<&str> = found.skipped.iter().map(|(_, r)| r.as_str()).collect();
        assert!(
            reasons[0].contains(&manifests[4].parts[1].file) && reasons[0].contains("checksum"),
            "{}",
            reasons[0]
        );
        assert!(
            reasons[1].contains(&manifests[3].parts[0].file) && reasons[1].contains("missing"),
            "{}",
            reasons[1]
        );
        let future = format!("format version {}", FORMAT_VERSION + 1);
        assert!(
            reasons[2].contains("chk-0000000003.tlck") && reasons[2].contains(&future),
            "{}",
            reasons[2]
        );

        // With the older ones damaged too, nothing is restorable.
        std::fs::write(dir.path().join(manifest_file(2)), b"TLCKMANI").expect("truncate");
        std::fs::write(part(1, 0), b"").expect("empty");
        let found = block_on(store.newest_restorable()).expect("restorable");
        assert!(found.newest.is_none());
        assert_eq!(found.skipped.len(), 5);
    }

    #[test]
    fn retention_keeps_the_newest_complete_ones_and_the_parts_to_come() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir_of(&dir);
        block_on(async {
            // Run 1 left a part of its own behind.
            write(&store, 1, 1, 1, false).await;
            write(&store, 2, 1, 2, true).await;
            write(&store, 3, 1, 2, true).await;
            write(&store, 4, 1, 2, true).await;
            // Being written by run 2, for a checkpoint to come.
            write(&store, 5, 1, 2, false).await;
        });
        assert_eq!(block_on(store.retain(2, 2)).expect("retain"), vec![2]);
        assert_eq!(
            statuses(&store),
            vec![(3, Status::Complete), (4, Status::Complete)]
        );
        let contents = block_on(store.contents()).expect("contents");
        assert_eq!(contents.loose_parts, 1, "only the part to come is loose");
        let found = block_on(store.newest_restorable()).expect("restorable");
        assert_eq!(found.newest.map(|(m, _)| m.id), Some(4));
        assert_eq!(block_on(store.retain(0, 2)).expect("at least one"), vec![3]);
    }

    #[test]
    fn an_empty_or_missing_location() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir_of(&dir);
        assert!(
            block_on(store.contents())
                .expect("list")
                .checkpoints
                .is_empty()
        );
        let found = block_on(store.newest_restorable()).expect("none");
        assert!(found.newest.is_none());
        assert_eq!(found.last_attempt, 0);
        let missing = dir.path().join("missing").display().to_string();
        let err = CheckpointStore::open_existing(&missing)
            .err()
            .expect("missing");
        assert!(err.to_string().contains("no such directory"), "{err}");
        // Files that are not checkpoints are left out of the listing.
        std::fs::write(dir.path().join("notes.txt"), b"x").expect("write");
        std::fs::create_dir(dir.path().join("chk-x")).expect("dir");
        std::fs::write(dir.path().join("chk-x/a"), b"x").expect("write");
        let contents = block_on(store.contents()).expect("list");
        assert!(contents.checkpoints.is_empty());
        assert_eq!(contents.loose_parts, 0);
    }
}
