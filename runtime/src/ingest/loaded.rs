//! The files an ingest job has loaded, kept in the table it loads them into, so that a
//! restart after a kill -9 at any moment loads nothing twice and misses nothing
//! (docs/ingest.md, "Exactly once").
//!
//! - **In the commits.** Ingest commit `n` (1, 2, …) of job `J` is one Delta commit
//!   with `txn(appId = J-w0, version = n)` and, in its `commitInfo`,
//!   `tidelakeIngest = {"commit": n, "files": [{path, size, modificationTime, rows,
//!   deadLetter?}]}`: the input files it loaded (or put in the dead letters). The commit
//!   is atomic, so a file is loaded exactly when the commit naming it is in the log, and
//!   the `txn` version in a snapshot says which commits those are.
//! - **Segments, to start fast.** After commit `n` lands, the files of the commits
//!   since the last segment are written as one object
//!   `_tidelake_ingest/J/<after>-<n>.json` under the table root (hidden from every
//!   Delta reader and from VACUUM): commits `after + 1 ..= n`, the table version of `n`
//!   and the table's id. More than 16 segments are merged into one from commit 0.
//! - **Restart.** The `txn` version `V` of `J-w0` in the snapshot is the last commit.
//!   The files are those of the chain of segments from commit 0 (of this table's id)
//!   up to at most `V`; commits after the chain (a kill between a commit and its
//!   segment) are read from the log, forward from the chain's table version, and
//!   written as a segment. A segment past `V` was never written by a landed commit
//!   and is ignored. If the log of a needed commit was cleaned up, the job refuses to
//!   start rather than load files twice.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tidelake_sinks::delta::files::job_identity::app_id;
use tidelake_sinks::delta::protocol::actions::Action;
use tidelake_sinks::delta::{DeltaError, DeltaTable, Snapshot};

use super::IngestError;
use super::input::InputFile;

/// The `commitInfo` field that records what an ingest commit loaded.
pub const COMMIT_INFO_KEY: &str = "tidelakeIngest";

/// The directory under the table root that holds every ingest job's segments.
pub const SEGMENT_DIR: &str = "_tidelake_ingest";

/// Segments beyond which they are merged into one.
const MERGE_AT: usize = 16;

/// Commits read at once while recovering from the log.
const READ_AHEAD: usize = 16;

/// An input file an ingest commit took care of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedFile {
    /// The file as it was listed.
    #[serde(flatten)]
    pub file: InputFile,
    /// The rows it loaded.
    #[serde(default)]
    pub rows: u64,
    /// Why it went to the dead letters instead, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
}

/// What an ingest commit records in its `commitInfo`, as [`LoadedFiles::record`] writes
/// it.
#[derive(Debug, Deserialize)]
struct CommitRecord {
    commit: u64,
    files: Vec<LoadedFile>,
}

/// The files of commits `after + 1 ..= to`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Segment {
    job: String,
    table_id: String,
    after: u64,
    to: u64,
    /// The table version of commit `to`.
    table_version: u64,
    files: Vec<LoadedFile>,
}

/// What a listed file is to the job.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen<'a> {
    /// Not loaded yet.
    New,
    /// Loaded as it is now.
    Loaded,
    /// Loaded, but its size or modification time is not what it was then.
    Changed(&'a LoadedFile),
}

/// The files a job has loaded into a table; see the [module docs](self).
#[derive(Debug)]
pub struct LoadedFiles {
    table: DeltaTable,
    job_id: String,
    table_id: String,
    files: HashMap<String, LoadedFile>,
    /// The last commit, 0 before the first.
    commit: u64,
    /// The segments of the chain, `(after, to)`, in order.
    segments: Vec<(u64, u64)>,
    /// The files of the commits after the chain.
    unsaved: Vec<LoadedFile>,
}

impl LoadedFiles {
    /// The files job `job_id` (`appId` `<job id>-w0`) has loaded into `table`, as of
    /// `snapshot`; see the [module docs](self).
    pub async fn recover(
        table: &DeltaTable,
        snapshot: &Snapshot,
        job_id: &str,
    ) -> Result<LoadedFiles, IngestError> {
        let app_id = &app_id(job_id, 0);
        let table_id = snapshot
            .metadata
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_default();
        let mut loaded = LoadedFiles {
            table_id,
            ..LoadedFiles::empty(table, job_id)
        };
        let last = snapshot
            .txn_version(app_id)
            .map_or(0, |v| u64::try_from(v).unwrap_or(0));
        let mut table_version = loaded.read_chain(last).await?;
        if loaded.commit < last {
            let from = table_version.map_or(0, |v| v + 1);
            table_version = Some(
                loaded
                    .read_log(app_id, from, snapshot.version, last)
                    .await?,
            );
        }
        if let Some(version) = table_version.filter(|_| !loaded.unsaved.is_empty()) {
            loaded.save(version).await?;
        }
        Ok(loaded)
    }

    /// No file loaded, before `table` exists.
    pub fn empty(table: &DeltaTable, job_id: &str) -> LoadedFiles {
        LoadedFiles {
            table: table.clone(),
            job_id: job_id.to_owned(),
            table_id: String::new(),
            files: HashMap::new(),
            commit: 0,
            segments: Vec::new(),
            unsaved: Vec::new(),
        }
    }

    /// The last commit, 0 before the first.
    pub fn commit(&self) -> u64 {
        self.commit
    }

    /// Files loaded (or put in the dead letters) so far.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True before the first file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// What `file` is to the job.
    pub fn seen(&self, file: &InputFile) -> Seen<'_> {
        match self.files.get(&file.path) {
            None => Seen::New,
            Some(loaded) if loaded.file == *file => Seen::Loaded,
            Some(loaded) => Seen::Changed(loaded),
        }
    }

    /// The `commitInfo` fields of commit `commit` loading `files` (a [`CommitRecord`]).
    pub fn record(commit: u64, files: &[LoadedFile]) -> Map<String, Value> {
        let record = serde_json::json!({ "commit": commit, "files": files });
        Map::from_iter([(COMMIT_INFO_KEY.to_owned(), record)])
    }

    /// Takes note that commit `commit` landed as table version `table_version` with
    /// `files`, and writes them as a segment.
    pub async fn committed(
        &mut self,
        commit: u64,
        table_version: u64,
        files: Vec<LoadedFile>,
    ) -> Result<(), IngestError> {
        self.add(commit, files);
        self.save(table_version).await
    }

    fn add(&mut self, commit: u64, files: Vec<LoadedFile>) {
        self.commit = self.commit.max(commit);
        for file in files {
            self.unsaved.push(file.clone());
            self.files.insert(file.file.path.clone(), file);
        }
    }

    /// Reads the chain of segments from commit 0 up to at most commit `last`; the table
    /// version of its last commit.
    async fn read_chain(&mut self, last: u64) -> Result<Option<u64>, IngestError> {
        let mut found: Vec<(u64, u64)> = self
            .list_segments()
            .await?
            .into_iter()
            .filter(|&(_, to)| to <= last)
            .collect();
        found.sort_unstable();
        let mut table_version = None;
        loop {
            let next = found
                .iter()
                .filter(|&&(after, _)| after == self.commit)
                .max_by_key(|&&(_, to)| to)
                .copied();
            let Some((after, to)) = next else {
                break;
            };
            let segment = self.read_segment(after, to).await?;
            if segment.table_id != self.table_id || segment.job != self.job_id {
                // Left by another table at this location: not this table's.
                found.retain(|&s| s != (after, to));
                continue;
            }
            for file in segment.files {
                self.files.insert(file.file.path.clone(), file);
            }
            self.commit = to;
            self.segments.push((after, to));
            table_version = Some(segment.table_version);
        }
        Ok(table_version)
    }

    /// Reads the files of commits `self.commit + 1 ..= last` of `app_id` from the log,
    /// versions `from ..= latest`; the table version of commit `last`.
    async fn read_log(
        &mut self,
        app_id: &str,
        from: u64,
        latest: u64,
        last: u64,
    ) -> Result<u64, IngestError> {
        let first_needed = self.commit + 1;
        let table = self.table.clone();
        let table = &table;
        let mut commits = futures::stream::iter(from..=latest)
            .map(|version| async move {
                Ok::<_, DeltaError>((version, table.read_commit_if_exists(version).await?))
            })
            .buffered(READ_AHEAD);
        let mut recovered: Vec<(u64, Vec<LoadedFile>)> = Vec::new();
        let mut last_version = None;
        while let Some((version, actions)) = commits.try_next().await? {
            let Some(actions) = actions else {
                return Err(IngestError::Unrecoverable(format!(
                    "{}: ingest job {} made commits {first_needed}..={last}, and their files are in no segment of {SEGMENT_DIR}/ and version {version} of the log is gone (cleaned up?), so the files they loaded cannot be known; loading again could load them twice",
                    table.location(),
                    self.job_id
                )));
            };
            if let Some(commit) = ingest_commit(&actions, app_id).filter(|&c| c > self.commit) {
                let record = record_of(&actions, commit).ok_or_else(|| {
                    IngestError::Unrecoverable(format!(
                        "{}: version {version} is ingest commit {commit} of {app_id} but its commitInfo has no {COMMIT_INFO_KEY} record of the files it loaded",
                        table.location()
                    ))
                })?;
                recovered.push((commit, record.files));
                if commit == last {
                    last_version = Some(version);
                    break;
                }
            }
        }
        let Some(version) = last_version else {
            return Err(IngestError::Unrecoverable(format!(
                "{}: the snapshot says ingest job {} made commit {last}, but no version up to {latest} holds it",
                table.location(),
                self.job_id
            )));
        };
        for (commit, files) in recovered {
            self.add(commit, files);
        }
        Ok(version)
    }

    /// Writes the files not in a segment yet as one, commit `self.commit` being table
    /// version `table_version`; merges the segments when there are too many.
    async fn save(&mut self, table_version: u64) -> Result<(), IngestError> {
        let after = self.segments.last().map_or(0, |&(_, to)| to);
        let merge = self.segments.len() + 1 > MERGE_AT;
        let (after, files) = if merge {
            (0, self.files.values().cloned().collect())
        } else {
            (after, std::mem::take(&mut self.unsaved))
        };
        let segment = Segment {
            job: self.job_id.clone(),
            table_id: self.table_id.clone(),
            after,
            to: self.commit,
            table_version,
            files,
        };
        let path = self.segment_path(after, self.commit);
        let bytes = serde_json::to_vec(&segment).map_err(|e| IngestError::Segment {
            path: path.to_string(),
            detail: e.to_string(),
        })?;
        self.table
            .store()
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| store_error(&path, e))?;
        if merge {
            for (after, to) in std::mem::take(&mut self.segments) {
                let old = self.segment_path(after, to);
                self.table
                    .store()
                    .delete(&old)
                    .await
                    .map_err(|e| store_error(&old, e))?;
            }
        }
        self.unsaved.clear();
        self.segments.push((after, self.commit));
        Ok(())
    }

    fn dir(&self) -> Path {
        self.table
            .root()
            .clone()
            .join(SEGMENT_DIR)
            .join(self.job_id.as_str())
    }

    fn segment_path(&self, after: u64, to: u64) -> Path {
        self.dir().join(format!("{after:020}-{to:020}.json"))
    }

    /// The `(after, to)` of every segment of the job.
    async fn list_segments(&self) -> Result<Vec<(u64, u64)>, IngestError> {
        let dir = self.dir();
        let objects: Vec<_> = self
            .table
            .store()
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| store_error(&dir, e))?;
        Ok(objects
            .iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.strip_suffix(".json")?;
                let (after, to) = name.split_once('-')?;
                Some((after.parse().ok()?, to.parse().ok()?))
            })
            .collect())
    }

    async fn read_segment(&self, after: u64, to: u64) -> Result<Segment, IngestError> {
        let path = self.segment_path(after, to);
        let bytes = self
            .table
            .store()
            .get(&path)
            .await
            .map_err(|e| store_error(&path, e))?
            .bytes()
            .await
            .map_err(|e| store_error(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| IngestError::Segment {
            path: path.to_string(),
            detail: e.to_string(),
        })
    }
}

/// The ingest commit number of `app_id` in a commit's actions, if it has one.
fn ingest_commit(actions: &[Action], app_id: &str) -> Option<u64> {
    actions.iter().find_map(|action| match action {
        Action::Txn(txn) if txn.app_id == app_id => u64::try_from(txn.version).ok(),
        _ => None,
    })
}

/// The record of ingest commit `commit` in a commit's `commitInfo`.
fn record_of(actions: &[Action], commit: u64) -> Option<CommitRecord> {
    actions.iter().find_map(|action| match action {
        Action::CommitInfo(info) => info
            .other
            .get(COMMIT_INFO_KEY)
            .and_then(|v| serde_json::from_value::<CommitRecord>(v.clone()).ok())
            .filter(|r| r.commit == commit),
        _ => None,
    })
}

fn store_error(path: &Path, source: object_store::Error) -> IngestError {
    IngestError::Table(DeltaError::Store {
        path: path.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures::executor::block_on;
    use tidelake_sinks::delta::files::commit::{CommitOptions, EpochCommitter, EpochOutcome};

    use super::*;

    fn file(n: u64) -> LoadedFile {
        LoadedFile {
            file: InputFile {
                path: format!("d/{n}.parquet"),
                size: n,
                modification_time: 1_000 + n as i64,
            },
            rows: n,
            dead_letter: None,
        }
    }

    /// A table with `commits` ingest commits of job `j`, one file each, segments
    /// written after each.
    async fn table_with(commits: u64) -> (DeltaTable, LoadedFiles) {
        let table = DeltaTable::open_url("memory://").expect("table");
        let schema = tidelake_sinks::delta::Schema::of(&[("x", "long")]);
        let snapshot = table
            .create_or_open(&schema, &[], BTreeMap::new(), "test")
            .await
            .expect("create");
        let mut committer =
            EpochCommitter::new(table.clone(), "j-w0", &snapshot, CommitOptions::default());
        let mut loaded = LoadedFiles::recover(&table, &snapshot, "j")
            .await
            .expect("recover");
        for n in 1..=commits {
            let record = LoadedFiles::record(n, &[file(n)]);
            let outcome = committer.commit_recording(n, Vec::new(), record).await;
            let Ok(EpochOutcome::Committed { version, .. }) = outcome else {
                panic!("commit {n}: {outcome:?}");
            };
            loaded
                .committed(n, version, vec![file(n)])
                .await
                .expect("segment");
        }
        (table, loaded)
    }

    async fn recovered(table: &DeltaTable) -> LoadedFiles {
        let snapshot = table.existing_snapshot().await.expect("snapshot");
        LoadedFiles::recover(table, &snapshot, "j")
            .await
            .expect("recover")
    }

    #[test]
    fn segments_are_merged_and_a_restart_knows_every_file() {
        block_on(async {
            let (table, loaded) = table_with(40).await;
            assert!(loaded.segments.len() <= MERGE_AT, "{:?}", loaded.segments);
            let segments = loaded.list_segments().await.expect("list");
            assert_eq!(segments.len(), loaded.segments.len(), "merged ones deleted");
            let again = recovered(&table).await;
            assert_eq!(again.commit(), 40);
            assert_eq!(again.len(), 40);
            for n in 1..=40 {
                assert_eq!(again.seen(&file(n).file), Seen::Loaded);
            }
            let mut changed = file(3).file;
            changed.size += 1;
            assert!(matches!(again.seen(&changed), Seen::Changed(_)));
        });
    }

    #[test]
    fn commits_without_a_segment_are_read_from_the_log_and_saved() {
        block_on(async {
            let (table, loaded) = table_with(5).await;
            // A kill between commits 4, 5 and their segments.
            for &(after, to) in loaded.segments.iter().filter(|&&(_, to)| to > 3) {
                let path = loaded.segment_path(after, to);
                table.store().delete(&path).await.expect("delete");
            }
            let again = recovered(&table).await;
            assert_eq!((again.commit(), again.len()), (5, 5));
            assert_eq!(again.seen(&file(5).file), Seen::Loaded);
            // The recovered commits are a segment now.
            assert_eq!(again.segments.last(), Some(&(3, 5)));
        });
    }

    #[test]
    fn segments_of_another_table_at_the_same_place_are_ignored() {
        block_on(async {
            let (table, loaded) = table_with(2).await;
            let stale = Segment {
                job: "j".into(),
                table_id: "another".into(),
                after: 0,
                to: 2,
                table_version: 9,
                files: vec![file(99)],
            };
            let path = loaded.segment_path(0, 2);
            let bytes = serde_json::to_vec(&stale).expect("json");
            table
                .store()
                .put(&path, PutPayload::from(bytes))
                .await
                .expect("put");
            let again = recovered(&table).await;
            assert_eq!((again.commit(), again.len()), (2, 2));
            assert_eq!(again.seen(&file(99).file), Seen::New);
        });
    }
}
