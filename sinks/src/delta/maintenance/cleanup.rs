//! Keeping the log short: a checkpoint of the latest version on demand, and expired-log
//! cleanup behind it (`shared/notes/delta-writer.md` §4).
//!
//! Cleanup deletes only log files (JSON commits, checkpoints, `.crc` checksums) that are
//! older than the table's `delta.logRetentionDuration` (30 days if unset) *and* below
//! the newest complete checkpoint that is not newer than the newest expired commit, as
//! Spark's expired-log cleanup does. That checkpoint, its commit and everything after
//! stay, so the table always loads (from that checkpoint or a newer one); time travel to
//! the versions before it is no longer possible. Files are deleted oldest first, and a
//! file already gone (a concurrent cleanup) is fine.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt, stream};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::Serialize;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::logical_file_key;
use crate::delta::protocol::checkpoint::{
    CheckpointKind, checkpoint_file, checkpoint_path, list_log_objects, read_checkpoint,
    read_last_checkpoint_file, unwritten, usable_checkpoint, write_checkpoint_at,
};
use crate::delta::protocol::features::Operation;
use crate::delta::protocol::kernel;
use crate::delta::protocol::log::commit_version;
use crate::delta::protocol::retention::{
    cutoff_ms, deleted_file_retention, log_retention, tombstone_expired,
};
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::table::DeltaTable;

/// Log files deleted at once.
const CONCURRENT_DELETES: usize = 16;

/// What [`checkpoint`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointReport {
    /// The version checkpointed: the latest.
    pub version: u64,
    /// Actions (rows) in the checkpoint.
    pub actions: u64,
    /// Live files in it.
    pub add_files: u64,
    /// Tombstones kept in it.
    pub tombstones: u64,
    /// Tombstones left out, because `delta.deletedFileRetentionDuration` has passed since
    /// their removal.
    pub expired_tombstones: u64,
    /// The checkpoint file's size.
    pub size_in_bytes: u64,
}

/// Writes a checkpoint of the latest version of `table` and points `_last_checkpoint`
/// at it (see [`write_checkpoint_at`]). An error if there is no table.
pub async fn checkpoint(table: &DeltaTable) -> Result<CheckpointReport, DeltaError> {
    let snapshot = table.snapshot_for(Operation::Checkpoint).await?;
    if let Some(field) = unwritten(&snapshot) {
        return kernel_checkpoint(table, &snapshot)
            .await
            .map_err(|error| match error {
                DeltaError::UnsupportedFeature {
                    table,
                    feature,
                    operation,
                    detail,
                } => DeltaError::UnsupportedFeature {
                    table,
                    feature,
                    operation,
                    detail: format!(
                        "{detail}; and tidelake's own checkpoint writer does not hold {field}"
                    ),
                },
                other => other,
            });
    }
    let now_ms = table.clock().now_ms();
    let cutoff = cutoff_ms(now_ms, deleted_file_retention(&snapshot)?);
    let last = write_checkpoint_at(table.store().as_ref(), table.root(), &snapshot, now_ms).await?;
    let expired = snapshot
        .tombstones
        .values()
        .filter(|remove| tombstone_expired(remove, cutoff))
        .count() as u64;
    Ok(CheckpointReport {
        version: snapshot.version,
        actions: last.size,
        add_files: snapshot.files.len() as u64,
        tombstones: snapshot.tombstones.len() as u64 - expired,
        expired_tombstones: expired,
        size_in_bytes: last.size_in_bytes.unwrap_or_default(),
    })
}

/// The checkpoint of a table whose state tidelake's checkpoint writer does not hold
/// (deletion vectors, row ids, domain metadata: see [`unwritten`]), written by the
/// Delta Kernel, then read back: it must hold the live files of tidelake's own replay
/// (`snapshot`), with their deletion vectors, or the checkpoint is reported corrupt.
async fn kernel_checkpoint(
    table: &DeltaTable,
    snapshot: &Snapshot,
) -> Result<CheckpointReport, DeltaError> {
    let (store, root, version) = (table.store().as_ref(), table.root(), snapshot.version);
    kernel::write_checkpoint(table, version).await?;
    let written = read_checkpoint(store, root, version).await?;
    let live = |s: &Snapshot| -> Vec<String> {
        s.files
            .values()
            .map(|a| logical_file_key(&a.path, &a.other).into_owned())
            .collect()
    };
    if live(&written) != live(snapshot) {
        return Err(DeltaError::Checkpoint {
            path: checkpoint_path(root, version).to_string(),
            detail: format!(
                "the Delta Kernel's checkpoint holds {} live files where the log has {}, or other deletion vectors",
                written.files.len(),
                snapshot.files.len()
            ),
        });
    }
    let path = checkpoint_path(root, version);
    let size_in_bytes = store
        .head(&path)
        .await
        .map_err(|source| DeltaError::Store {
            path: path.to_string(),
            source,
        })?
        .size;
    let last = read_last_checkpoint_file(store, root).await?;
    let tombstones = written.tombstones.len() as u64;
    Ok(CheckpointReport {
        version,
        actions: match last {
            Some(last) if last.version == version => last.size,
            // A checkpoint of this version was there already, and `_last_checkpoint`
            // points at a newer one: the actions tidelake reads in it.
            _ => (written.files.len() + written.tombstones.len() + written.txns.len() + 2) as u64,
        },
        add_files: written.files.len() as u64,
        tombstones,
        expired_tombstones: (snapshot.tombstones.len() as u64).saturating_sub(tombstones),
        size_in_bytes,
    })
}

/// What [`cleanup_expired_logs`] deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogCleanupReport {
    /// The table's `delta.logRetentionDuration`, in ms.
    pub retention_ms: u64,
    /// Log files last modified before this (ms since the epoch) had expired.
    pub cutoff_ms: i64,
    /// The checkpoint below which expired files were deleted: the newest complete one
    /// not newer than the newest expired commit (`None`: there is none, and nothing was
    /// deleted).
    pub kept_from_checkpoint: Option<u64>,
    /// The names of the files deleted from `_delta_log/`, oldest version first.
    pub removed: Vec<String>,
}

/// A file of `_delta_log/` that cleanup may delete.
struct LogFile {
    version: u64,
    kind: LogFileKind,
    meta: ObjectMeta,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LogFileKind {
    Checkpoint,
    Checksum,
    Commit,
}

/// Deletes the expired log files of `table` as of `now_ms` (ms since the epoch); see the
/// [module docs](self). An error if there is no table or `delta.logRetentionDuration`
/// does not parse, before anything is deleted.
pub async fn cleanup_expired_logs(
    table: &DeltaTable,
    now_ms: i64,
) -> Result<LogCleanupReport, DeltaError> {
    let (store, root) = (table.store().as_ref(), table.root());
    let snapshot = table.snapshot_for(Operation::Checkpoint).await?;
    let retention = log_retention(&snapshot)?;
    let cutoff = cutoff_ms(now_ms, retention);
    let mut report = LogCleanupReport {
        retention_ms: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX),
        cutoff_ms: cutoff,
        kept_from_checkpoint: None,
        removed: Vec::new(),
    };

    let mut files = Vec::new();
    let mut checkpoints: BTreeMap<u64, Vec<(Path, CheckpointKind)>> = BTreeMap::new();
    for meta in list_log_objects(store, root, None).await? {
        let Some(name) = meta.location.filename() else {
            continue;
        };
        let (version, kind) = if let Some(version) = commit_version(name) {
            (version, LogFileKind::Commit)
        } else if let Some(version) = checksum_version(name) {
            (version, LogFileKind::Checksum)
        } else if let Some((version, kind)) = checkpoint_file(name) {
            checkpoints
                .entry(version)
                .or_default()
                .push((meta.location.clone(), kind));
            (version, LogFileKind::Checkpoint)
        } else {
            continue;
        };
        files.push(LogFile {
            version,
            kind,
            meta,
        });
    }
    let expired = |file: &LogFile| file.meta.last_modified.timestamp_millis() < cutoff;
    let Some(newest_expired_commit) = files
        .iter()
        .filter(|f| f.kind == LogFileKind::Commit && expired(f))
        .map(|f| f.version)
        .max()
    else {
        return Ok(report);
    };
    // A V2 or incomplete multi-part checkpoint is no starting point for readers.
    let Some(keep_from) = checkpoints
        .range(..=newest_expired_commit)
        .rev()
        .find(|(_, files)| matches!(usable_checkpoint(files), Ok(Some(_))))
        .map(|(&version, _)| version)
    else {
        return Ok(report);
    };
    report.kept_from_checkpoint = Some(keep_from);

    let mut doomed: Vec<LogFile> = files
        .into_iter()
        .filter(|f| f.version < keep_from && expired(f))
        .collect();
    doomed.sort_by(|a, b| {
        (a.version, a.kind, &a.meta.location).cmp(&(b.version, b.kind, &b.meta.location))
    });
    stream::iter(&doomed)
        .map(|file| async move {
            match store.delete(&file.meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(source) => Err(DeltaError::Store {
                    path: file.meta.location.to_string(),
                    source,
                }),
            }
        })
        .buffered(CONCURRENT_DELETES)
        .try_collect::<()>()
        .await?;
    report.removed = doomed
        .iter()
        .filter_map(|f| f.meta.location.filename().map(str::to_owned))
        .collect();
    Ok(report)
}

/// The version of a checksum file name (`00000000000000000012.crc` → 12).
fn checksum_version(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(".crc")?;
    commit_version(&format!("{digits}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::inspection::history::history;
    use crate::delta::protocol::checkpoint::{read_last_checkpoint, write_checkpoint};
    use crate::delta::protocol::log::{LOG_DIR, commit_path};
    use crate::delta::protocol::retention::LOG_RETENTION;
    use crate::delta::protocol::snapshot::Snapshot;
    use crate::delta::testing::{add, block_on, create_table, remove, set_mtime, txn};

    const DAY_MS: i64 = 86_400_000;

    /// Commits versions 1 to `last`, each adding a file and a txn.
    async fn commit_versions(table: &DeltaTable, first: u64, last: u64) {
        for version in first..=last {
            let actions = [add(&format!("f{version}")), txn("job-w0", version as i64)];
            table.try_commit(version, &actions).await.expect("commit");
        }
    }

    /// Checkpoints `version` of `table`.
    async fn checkpoint_version(table: &DeltaTable, version: u64) {
        let (store, root) = (table.store().as_ref(), table.root());
        let snapshot = Snapshot::load_version(store, root, Some(version))
            .await
            .expect("load")
            .expect("exists");
        write_checkpoint(store, root, &snapshot)
            .await
            .expect("checkpoint");
    }

    fn log_names(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(LOG_DIR))
            .expect("log")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn cleanup_deletes_only_expired_files_below_the_kept_checkpoint() {
        block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let table = DeltaTable::open_url(&dir.path().display().to_string()).expect("open");
            create_table(&table, &[]).await;
            commit_versions(&table, 1, 12).await;
            for version in [2, 5, 10] {
                checkpoint_version(&table, version).await;
            }
            let log = dir.path().join(LOG_DIR);
            for name in ["00000000000000000003.crc", "00000000000000000006.crc"] {
                std::fs::write(log.join(name), b"{}").expect("crc");
            }
            let now = chrono::Utc::now().timestamp_millis();
            // Everything is 40 days old but commits 8 to 12 (1 day) and commit 1, which
            // is young though below the checkpoint kept.
            for name in log_names(dir.path()) {
                let young = [1, 8, 9, 10, 11, 12]
                    .iter()
                    .any(|v| name == format!("{v:020}.json"));
                set_mtime(
                    &log.join(&name),
                    now - if young { DAY_MS } else { 40 * DAY_MS },
                );
            }
            let before = table.existing_snapshot().await.expect("load");

            let report = cleanup_expired_logs(&table, now).await.expect("cleanup");
            // The newest expired commit is 7; the newest checkpoint not newer is 5.
            assert_eq!(report.kept_from_checkpoint, Some(5));
            assert_eq!(report.retention_ms, 30 * DAY_MS as u64);
            assert_eq!(report.cutoff_ms, now - 30 * DAY_MS);
            assert_eq!(
                report.removed,
                [
                    "00000000000000000000.json",
                    "00000000000000000002.checkpoint.parquet",
                    "00000000000000000002.json",
                    "00000000000000000003.crc",
                    "00000000000000000003.json",
                    "00000000000000000004.json",
                ]
            );
            let mut left = vec![
                "00000000000000000001.json".to_owned(),
                "00000000000000000005.checkpoint.parquet".to_owned(),
                "00000000000000000006.crc".to_owned(),
                "00000000000000000010.checkpoint.parquet".to_owned(),
                "_last_checkpoint".to_owned(),
            ];
            left.extend((5..=12).map(|v| format!("{v:020}.json")));
            left.sort();
            assert_eq!(log_names(dir.path()), left);

            assert_eq!(table.existing_snapshot().await.expect("load"), before);
            // Without the newer checkpoint, the table still loads from version 5.
            std::fs::remove_file(log.join("00000000000000000010.checkpoint.parquet"))
                .expect("delete");
            std::fs::remove_file(log.join("_last_checkpoint")).expect("delete");
            assert_eq!(table.existing_snapshot().await.expect("load"), before);
            let history = history(&table, None).await.expect("history");
            assert_eq!(history.available_from, Some(1));
            assert_eq!(history.available_commits, 9);

            let again = cleanup_expired_logs(&table, now).await.expect("cleanup");
            assert_eq!(again.kept_from_checkpoint, Some(5));
            assert!(again.removed.is_empty());
        });
    }

    #[test]
    fn without_an_expired_commit_or_a_checkpoint_below_it_nothing_is_deleted() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            create_table(&table, &[(LOG_RETENTION, "interval 1 day")]).await;
            commit_versions(&table, 1, 4).await;
            let now = chrono::Utc::now().timestamp_millis();
            let report = cleanup_expired_logs(&table, now).await.expect("cleanup");
            assert_eq!(report.retention_ms, DAY_MS as u64);
            assert_eq!(
                (report.kept_from_checkpoint, report.removed.len()),
                (None, 0)
            );

            // Two days on every commit has expired, but there is no checkpoint.
            let later = now + 2 * DAY_MS;
            let report = cleanup_expired_logs(&table, later).await.expect("cleanup");
            assert_eq!(
                (report.kept_from_checkpoint, report.removed.len()),
                (None, 0)
            );

            checkpoint_version(&table, 3).await;
            let report = cleanup_expired_logs(&table, later).await.expect("cleanup");
            assert_eq!(report.kept_from_checkpoint, Some(3));
            assert_eq!(report.removed.len(), 3, "{:?}", report.removed);
            assert_eq!(table.existing_snapshot().await.expect("load").version, 4);
            let store = table.store();
            assert!(store.head(&commit_path(table.root(), 2)).await.is_err());
            store
                .head(&commit_path(table.root(), 3))
                .await
                .expect("the checkpoint's commit stays");
        });
    }

    #[test]
    fn a_bad_log_retention_is_an_error_naming_the_property() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            create_table(&table, &[(LOG_RETENTION, "forever")]).await;
            commit_versions(&table, 1, 2).await;
            checkpoint_version(&table, 2).await;
            let later = chrono::Utc::now().timestamp_millis() + 365 * DAY_MS;
            let err = cleanup_expired_logs(&table, later)
                .await
                .expect_err("bad property");
            assert!(
                err.to_string()
                    .starts_with("table property delta.logRetentionDuration = \"forever\":"),
                "{err}"
            );
            table
                .store()
                .head(&commit_path(table.root(), 0))
                .await
                .expect("nothing deleted");
        });
    }

    #[test]
    fn checkpoint_writes_the_latest_version_without_expired_tombstones() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            create_table(&table, &[]).await;
            commit_versions(&table, 1, 3).await;
            let now = chrono::Utc::now().timestamp_millis();
            table
                .try_commit(
                    4,
                    &[
                        remove("f1", Some(now - 8 * DAY_MS)),
                        remove("f2", Some(now)),
                    ],
                )
                .await
                .expect("commit");
            let report = checkpoint(&table).await.expect("checkpoint");
            assert_eq!(report.version, 4);
            assert_eq!(report.add_files, 1);
            assert_eq!((report.tombstones, report.expired_tombstones), (1, 1));
            // protocol, metaData, txn, 1 add, 1 remove.
            assert_eq!(report.actions, 5);
            assert!(report.size_in_bytes > 0);
            let (store, root) = (table.store().as_ref(), table.root());
            assert_eq!(
                read_last_checkpoint(store, root).await.expect("read"),
                Some(4)
            );
            let loaded = table.existing_snapshot().await.expect("load");
            assert_eq!(loaded.tombstones.keys().collect::<Vec<_>>(), ["f2"]);

            let empty = DeltaTable::open_url("memory://u").expect("open");
            let err = checkpoint(&empty).await.expect_err("no table");
            assert!(err.to_string().contains("no Delta table here"), "{err}");
        });
    }
}
