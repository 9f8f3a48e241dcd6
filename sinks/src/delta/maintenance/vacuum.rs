//! VACUUM: deleting the data files that no version of the table within the retention
//! still needs (docs/semantics.md §6, `shared/notes/delta-writer.md` §6).
//!
//! A file under the table root may go when the latest snapshot does not reference it
//! (it is not among its live files) and it is older than the retention:
//! - a removed file (one of the snapshot's tombstones) by its `deletionTimestamp`: time
//!   travel to the versions before its removal reads it until then;
//! - an untracked file (in no version the snapshot knows of: a tombstone a checkpoint
//!   dropped, a file a writer never committed, a stray) by its last modification in the
//!   store.
//!
//! A deletion vector's file (`deletion_vector_<uuid>.bin`) goes with the files that
//! reference it: kept while a live file's vector is in it, aged by the latest
//! `deletionTimestamp` of the tombstones whose vectors are in it, else untracked
//! ([`DeletionVectorFiles`] resolves a vector to its file).
//!
//! The whole table is listed, as Spark's VACUUM (FULL) does, skipping `_delta_log/` and
//! every path with a component that starts with `_` or `.` (such as the Parquet file
//! sink's `_in-progress/` and `_tidelake/`), except partition directories named
//! `<partition column>=…`.
//!
//! The retention defaults to the table's `delta.deletedFileRetentionDuration` (1 week).
//! The shortest allowed, unless [`VacuumOptions::enforce_retention`] is off, is that or
//! a week, whichever is longer:
//! a shorter one can delete files that readers of older versions, or writers that have
//! not committed yet, still need.
//!
//! A dry run only lists the files. A real run with files to delete commits `VACUUM
//! START` (what it will delete) and `VACUUM END` (what it deleted) around the deletions,
//! as Spark and delta-rs do: `commitInfo`-only commits, which change no table state, so
//! no concurrent writer conflicts with them. Right before deleting it reads the latest
//! snapshot again and keeps any file live there, and it never deletes a live file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::delta::DeltaError;
use crate::delta::files::commit::CommitOptions;
use crate::delta::protocol::actions::{Action, CommitInfo, Remove};
use crate::delta::protocol::commit_loop::{Landing, NoConflicts, Retry, commit_with_retries};
use crate::delta::protocol::features::Operation;
use crate::delta::protocol::kernel::DeletionVectorFiles;
use crate::delta::protocol::log::LOG_DIR;
use crate::delta::protocol::retention::{
    DEFAULT_DELETED_FILE_RETENTION, cutoff_ms, deleted_file_retention, tombstone_expired,
};
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::table::DeltaTable;
use crate::parquet::data_file_location;

/// Files deleted at once.
const CONCURRENT_DELETES: usize = 16;

/// How to vacuum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VacuumOptions {
    /// How long unreferenced files are kept; `None`: the table's
    /// `delta.deletedFileRetentionDuration` (1 week if unset).
    pub retention: Option<Duration>,
    /// Only list what would be deleted.
    pub dry_run: bool,
    /// Refuse a retention shorter than the table's `delta.deletedFileRetentionDuration`
    /// (1 week if unset). On by default; `--force` turns it off.
    pub enforce_retention: bool,
    /// Now, in ms since the epoch: files are aged against it. `None`: the table's
    /// [clock](crate::clock).
    pub now_ms: Option<i64>,
}

impl Default for VacuumOptions {
    /// The table's retention, enforced, deleting, as of the table's clock.
    fn default() -> Self {
        VacuumOptions {
            retention: None,
            dry_run: false,
            enforce_retention: true,
            now_ms: None,
        }
    }
}

/// Why a file may be deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Unreferenced {
    /// A `remove` of the log made it a tombstone; aged by its `deletionTimestamp`.
    Removed,
    /// No version the snapshot knows of references it; aged by its last modification.
    Untracked,
}

/// A file vacuum deletes (or, in a dry run, would delete).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VacuumFile {
    /// The object's path under the table root.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Why it may go.
    pub reason: Unreferenced,
    /// What it was aged by, in ms since the epoch: the tombstone's `deletionTimestamp`
    /// (0 if it has none) or the object's last modification.
    pub since_ms: i64,
}

/// What [`vacuum`] did, or in a dry run would do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VacuumReport {
    /// The version whose snapshot decided what is referenced.
    pub version: u64,
    /// True if nothing was deleted because only a list was asked for.
    pub dry_run: bool,
    /// The retention applied, in ms.
    pub retention_ms: u64,
    /// Files older than this (ms since the epoch) were deleted.
    pub cutoff_ms: i64,
    /// The files deleted (or to delete), by path.
    pub files: Vec<VacuumFile>,
    /// Their total size.
    pub bytes: u64,
    /// Live files seen in the store (never deleted).
    pub live_files: u64,
    /// Unreferenced files kept because they are within the retention.
    pub retained_files: u64,
    /// The versions of the `VACUUM START` and `VACUUM END` commits (none in a dry run,
    /// or when there was nothing to delete).
    pub commits: Vec<u64>,
}

/// Vacuums `table`; see the [module docs](self). An error, and nothing deleted, if the
/// retention is too short while enforced ([`DeltaError::Refused`]), if the table's
/// `delta.deletedFileRetentionDuration` does not parse, or if there is no table.
pub async fn vacuum(
    table: &DeltaTable,
    options: &VacuumOptions,
) -> Result<VacuumReport, DeltaError> {
    let snapshot = table.snapshot_for(Operation::Vacuum).await?;
    let table_retention = deleted_file_retention(&snapshot)?;
    // Never less than a week without --force, whatever the table says.
    let minimum = table_retention.max(DEFAULT_DELETED_FILE_RETENTION);
    let retention = options.retention.unwrap_or(table_retention);
    if options.enforce_retention && retention < minimum {
        return Err(DeltaError::Refused {
            operation: "VACUUM",
            table: table.location().to_owned(),
            detail: format!(
                "a retention of {} is shorter than {} (the table's delta.deletedFileRetentionDuration, and never less than 168h): \
                 it could delete files that readers of older versions, or writers that have not committed yet, \
                 still need; to vacuum anyway, turn the retention check off (--force)",
                hours(retention),
                hours(minimum)
            ),
        });
    }
    let now = options.now_ms.unwrap_or_else(|| table.clock().now_ms());
    let cutoff = cutoff_ms(now, retention);
    let plan = plan(table, &snapshot, cutoff).await?;
    let mut report = VacuumReport {
        version: snapshot.version,
        dry_run: options.dry_run,
        retention_ms: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX),
        cutoff_ms: cutoff,
        bytes: plan.files.iter().map(|(_, f)| f.size).sum(),
        files: plan.files.iter().map(|(_, f)| f.clone()).collect(),
        live_files: plan.live_files,
        retained_files: plan.retained_files,
        commits: Vec::new(),
    };
    if options.dry_run || plan.files.is_empty() {
        return Ok(report);
    }

    let start = commit_info_only(
        table,
        snapshot.version + 1,
        vacuum_info(
            table,
            "VACUUM START",
            snapshot.version,
            [
                (
                    "retentionCheckEnabled",
                    options.enforce_retention.to_string(),
                ),
                ("defaultRetentionMillis", minimum.as_millis().to_string()),
                (
                    "specifiedRetentionMillis",
                    retention.as_millis().to_string(),
                ),
            ],
            [
                ("numFilesToDelete", report.files.len().to_string()),
                ("sizeOfDataToDelete", report.bytes.to_string()),
            ],
        ),
    )
    .await?;
    report.commits.push(start);

    let Deletion {
        deleted,
        live_again,
        failure,
    } = delete_planned(table, plan.files).await?;
    report.live_files += live_again;
    report.bytes = deleted.iter().map(|f| f.size).sum();
    report.files = deleted;

    let end = commit_info_only(
        table,
        start + 1,
        vacuum_info(
            table,
            "VACUUM END",
            start,
            [(
                "status",
                if failure.is_some() {
                    "FAILED"
                } else {
                    "COMPLETED"
                }
                .to_owned(),
            )],
            [
                ("numDeletedFiles", report.files.len().to_string()),
                ("numVacuumedDirectories", "0".to_owned()),
            ],
        ),
    )
    .await?;
    report.commits.push(end);
    match failure {
        Some(error) => Err(error),
        None => Ok(report),
    }
}

/// The files to delete, with their locations, and what was kept.
struct Plan {
    files: Vec<(Path, VacuumFile)>,
    live_files: u64,
    retained_files: u64,
}

/// Lists the table and picks the unreferenced files older than `cutoff`.
async fn plan(table: &DeltaTable, snapshot: &Snapshot, cutoff: i64) -> Result<Plan, DeltaError> {
    let root = table.root();
    let vectors = DeletionVectorFiles::new(table)?;
    let live = live_locations(root, snapshot, &vectors)?;
    let removed = removed_locations(root, snapshot, &vectors);
    let partition_columns = snapshot
        .metadata
        .as_ref()
        .map(|m| m.partition_columns.as_slice())
        .unwrap_or_default();
    let objects: Vec<ObjectMeta> =
        table
            .store()
            .list(Some(root))
            .try_collect()
            .await
            .map_err(|source| DeltaError::Store {
                path: root.to_string(),
                source,
            })?;
    let mut plan = Plan {
        files: Vec::new(),
        live_files: 0,
        retained_files: 0,
    };
    for meta in objects {
        let Some(relative) = meta.location.prefix_match(root) else {
            continue;
        };
        let relative: Path = relative.collect();
        if is_hidden(&relative, partition_columns) {
            continue;
        }
        if live.contains(&meta.location) {
            plan.live_files += 1;
            continue;
        }
        let (reason, since_ms, expired) = match removed.get(&meta.location) {
            Some(remove) => (
                Unreferenced::Removed,
                remove.deletion_timestamp.unwrap_or(0),
                tombstone_expired(remove, cutoff),
            ),
            None => {
                let modified = meta.last_modified.timestamp_millis();
                (Unreferenced::Untracked, modified, modified < cutoff)
            }
        };
        if !expired {
            plan.retained_files += 1;
            continue;
        }
        let file = VacuumFile {
            path: relative.to_string(),
            size: meta.size,
            reason,
            since_ms,
        };
        plan.files.push((meta.location, file));
    }
    plan.files.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    Ok(plan)
}

/// What [`delete_planned`] did.
struct Deletion {
    /// The files deleted (or found gone already).
    deleted: Vec<VacuumFile>,
    /// Planned files that a concurrent commit made live again, kept.
    live_again: u64,
    /// The first failed deletion.
    failure: Option<DeltaError>,
}

/// Deletes the planned `files`, but for those live in the latest snapshot (a concurrent
/// commit may have added one again since the plan).
async fn delete_planned(
    table: &DeltaTable,
    files: Vec<(Path, VacuumFile)>,
) -> Result<Deletion, DeltaError> {
    let latest = table.snapshot_for(Operation::Vacuum).await?;
    let live = live_locations(table.root(), &latest, &DeletionVectorFiles::new(table)?)?;
    let (files, kept): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(location, _)| !live.contains(location));
    let results: Vec<Result<(), DeltaError>> = stream::iter(&files)
        .map(|(location, _)| delete_unreferenced(table, location, &live))
        .buffered(CONCURRENT_DELETES)
        .collect()
        .await;
    let deleted = files
        .into_iter()
        .zip(&results)
        .filter(|(_, result)| result.is_ok())
        .map(|((_, file), _)| file)
        .collect();
    Ok(Deletion {
        deleted,
        live_again: kept.len() as u64,
        failure: results.into_iter().find_map(Result::err),
    })
}

/// The objects of `snapshot`'s live files and of their deletion vectors. An error if a
/// live file's path or deletion vector names no object: vacuum could not tell that file
/// from an unreferenced one.
fn live_locations(
    root: &Path,
    snapshot: &Snapshot,
    vectors: &DeletionVectorFiles,
) -> Result<HashSet<Path>, DeltaError> {
    let unprotected = |path: &str, e: String| {
        DeltaError::Corrupt(format!(
            "the live file {path} names no object ({e}), so vacuum cannot protect it"
        ))
    };
    let mut live = HashSet::with_capacity(snapshot.files.len());
    for (path, add) in &snapshot.files {
        live.insert(data_file_location(root, path).map_err(|e| unprotected(path, e.to_string()))?);
        if let Some(vector) = vectors
            .path_of(&add.other)
            .map_err(|e| unprotected(path, e))?
        {
            live.insert(
                data_file_location(root, &vector).map_err(|e| unprotected(path, e.to_string()))?,
            );
        }
    }
    Ok(live)
}

/// The objects that `snapshot`'s tombstones name, data files and deletion vectors, each
/// with the latest tombstone naming it (a file whose deletion vector changed leaves a
/// tombstone per vector). A tombstone whose path or vector names no object matches no
/// listed file: the file, if any, counts as untracked.
fn removed_locations<'a>(
    root: &Path,
    snapshot: &'a Snapshot,
    vectors: &DeletionVectorFiles,
) -> HashMap<Path, &'a Remove> {
    let mut removed: HashMap<Path, &Remove> = HashMap::new();
    for remove in snapshot.tombstones.values() {
        let vector = vectors.path_of(&remove.other).ok().flatten();
        for path in std::iter::once(remove.path.as_str()).chain(vector.as_deref()) {
            let Ok(location) = data_file_location(root, path) else {
                continue;
            };
            removed
                .entry(location)
                .and_modify(|latest| {
                    if remove.deletion_timestamp > latest.deletion_timestamp {
                        *latest = remove;
                    }
                })
                .or_insert(remove);
        }
    }
    removed
}

/// True for paths (relative to the table root) vacuum never touches: the log, and any
/// path with a component starting with `_` or `.`, unless it is a partition directory
/// (`<partition column>=…`).
fn is_hidden(relative: &Path, partition_columns: &[String]) -> bool {
    relative.parts().enumerate().any(|(i, part)| {
        let name = part.as_ref();
        let partition_dir = name
            .split_once('=')
            .is_some_and(|(column, _)| partition_columns.iter().any(|c| c == column));
        (i == 0 && name == LOG_DIR)
            || ((name.starts_with('_') || name.starts_with('.')) && !partition_dir)
    })
}

/// Deletes the unreferenced file at `location`; one already gone is fine.
async fn delete_unreferenced(
    table: &DeltaTable,
    location: &Path,
    live: &HashSet<Path>,
) -> Result<(), DeltaError> {
    if live.contains(location) {
        return Err(DeltaError::Refused {
            operation: "VACUUM",
            table: table.location().to_owned(),
            detail: format!("{location} is a live file of the table and was not deleted"),
        });
    }
    match table.store().delete(location).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(source) => Err(DeltaError::Store {
            path: location.to_string(),
            source,
        }),
    }
}

/// The `commitInfo` of a `VACUUM START` or `VACUUM END` commit.
fn vacuum_info<const P: usize, const M: usize>(
    table: &DeltaTable,
    operation: &str,
    read_version: u64,
    parameters: [(&str, String); P],
    metrics: [(&str, String); M],
) -> CommitInfo {
    let metrics: Map<String, Value> = metrics
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();
    CommitInfo {
        timestamp: Some(table.clock().now_ms()),
        operation: Some(operation.to_owned()),
        operation_parameters: Some(
            parameters
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<BTreeMap<_, _>>(),
        ),
        read_version: i64::try_from(read_version).ok(),
        engine_info: Some(CommitOptions::default().engine_info),
        other: Map::from_iter([("operationMetrics".to_owned(), Value::Object(metrics))]),
        ..CommitInfo::default()
    }
}

/// Commits `info` alone, with a new `txnId`, at `version` or the first free version
/// after it, with the [commit loop](crate::delta::protocol::commit_loop), and returns that version (a
/// `commitInfo`-only commit conflicts with nothing).
async fn commit_info_only(
    table: &DeltaTable,
    version: u64,
    info: CommitInfo,
) -> Result<u64, DeltaError> {
    let txn_id = table.clock().new_id().to_string();
    let what = info.operation.clone().unwrap_or_default();
    let actions = [Action::CommitInfo(CommitInfo {
        txn_id: Some(txn_id.clone()),
        ..info
    })];
    let landing = commit_with_retries(
        table,
        version,
        &actions,
        &txn_id,
        &what,
        Retry::default(),
        &mut NoConflicts,
    )
    .await?;
    match landing {
        Landing::Committed { version, .. } => Ok(version),
        Landing::Stopped { stop, .. } => match stop {},
    }
}

/// `d` in hours, as the command line takes it: `168h`, `0.5h`.
fn hours(d: Duration) -> String {
    format!("{}h", d.as_secs_f64() / 3600.0)
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;

    use super::*;
    use crate::delta::protocol::retention::DELETED_FILE_RETENTION;
    use crate::delta::testing::{add, block_on, create_table, remove, set_mtime};

    const DAY_MS: i64 = 86_400_000;
    const LIVE: [&str; 2] = [
        "date=2024-05-01/live-1.parquet",
        "date=2024-05-01/live-2.parquet",
    ];
    const REMOVED_OLD: &str = "date=2024-05-01/removed-old.parquet";
    const REMOVED_RECENT: &str = "date=2024-05-01/removed-recent.parquet";
    const REMOVED_GONE: &str = "date=2024-05-01/removed-gone.parquet";
    const ORPHAN_OLD: &str = "date=2024-05-02/orphan-old.parquet";
    const ORPHAN_RECENT: &str = "date=2024-05-02/orphan-recent.parquet";
    const HIDDEN: [&str; 5] = [
        "_in-progress/part-00000.parquet",
        "_tidelake/state.json",
        ".hidden",
        "date=2024-05-02/.orphan-old.parquet.crc",
        "date=2024-05-02/_SUCCESS",
    ];

    /// Writes a 10-byte file at `relative` under `dir`, last modified at `ms`.
    fn write_file(dir: &std::path::Path, relative: &str, ms: i64) {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"0123456789").expect("write");
        set_mtime(&path, ms);
    }

    /// A table in `dir` at version 2 with two live files, tombstones removed 8 days
    /// (one whose file is gone already) and 1 day before `now`, orphans 8 days and 1 day
    /// old, and hidden files and log files 30 days old.
    async fn messy_table(dir: &std::path::Path, now: i64) -> DeltaTable {
        let table = DeltaTable::open_url(&dir.display().to_string()).expect("open");
        create_table(&table, &[]).await;
        let files = [LIVE[0], LIVE[1], REMOVED_OLD, REMOVED_RECENT, REMOVED_GONE];
        let adds: Vec<Action> = files.into_iter().map(add).collect();
        table.try_commit(1, &adds).await.expect("commit");
        let removes = [
            remove(REMOVED_OLD, Some(now - 8 * DAY_MS)),
            remove(REMOVED_GONE, Some(now - 8 * DAY_MS)),
            remove(REMOVED_RECENT, Some(now - DAY_MS)),
        ];
        table.try_commit(2, &removes).await.expect("commit");

        let month_ago = now - 30 * DAY_MS;
        for path in LIVE.into_iter().chain([REMOVED_RECENT]).chain(HIDDEN) {
            write_file(dir, path, month_ago);
        }
        // Aged by its tombstone, not by the file.
        write_file(dir, REMOVED_OLD, now - 3_600_000);
        write_file(dir, ORPHAN_OLD, now - 8 * DAY_MS);
        write_file(dir, ORPHAN_RECENT, now - DAY_MS);
        for entry in std::fs::read_dir(dir.join(LOG_DIR)).expect("log") {
            set_mtime(&entry.expect("entry").path(), month_ago);
        }
        table
    }

    fn paths(report: &VacuumReport) -> Vec<&str> {
        report.files.iter().map(|f| f.path.as_str()).collect()
    }

    fn exists(dir: &std::path::Path, relative: &str) -> bool {
        dir.join(relative).is_file()
    }

    #[test]
    fn vacuum_deletes_exactly_the_expired_unreferenced_files() {
        block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let now = chrono::Utc::now().timestamp_millis();
            let table = messy_table(dir.path(), now).await;
            let before = table.existing_snapshot().await.expect("load");
            let options = VacuumOptions {
                now_ms: Some(now),
                ..VacuumOptions::default()
            };

            let dry = vacuum(
                &table,
                &VacuumOptions {
                    dry_run: true,
                    ..options.clone()
                },
            )
            .await
            .expect("dry run");
            assert_eq!(paths(&dry), [REMOVED_OLD, ORPHAN_OLD]);
            assert_eq!(dry.files[0].reason, Unreferenced::Removed);
            assert_eq!(dry.files[0].since_ms, now - 8 * DAY_MS);
            assert_eq!(dry.files[1].reason, Unreferenced::Untracked);
            assert_eq!(dry.files[1].since_ms, now - 8 * DAY_MS);
            assert_eq!(dry.bytes, 20);
            assert_eq!((dry.live_files, dry.retained_files), (2, 2));
            assert_eq!(dry.retention_ms, 7 * DAY_MS as u64);
            assert_eq!(dry.cutoff_ms, now - 7 * DAY_MS);
            assert!(dry.dry_run && dry.commits.is_empty());
            assert!(exists(dir.path(), REMOVED_OLD) && exists(dir.path(), ORPHAN_OLD));
            assert_eq!(table.existing_snapshot().await.expect("load"), before);

            let done = vacuum(&table, &options).await.expect("vacuum");
            assert_eq!(
                done,
                VacuumReport {
                    dry_run: false,
                    commits: vec![3, 4],
                    ..dry
                }
            );
            assert!(!exists(dir.path(), REMOVED_OLD) && !exists(dir.path(), ORPHAN_OLD));
            for path in LIVE.into_iter().chain([REMOVED_RECENT, ORPHAN_RECENT]) {
                assert!(exists(dir.path(), path), "{path} is kept");
            }
            for path in HIDDEN {
                assert!(exists(dir.path(), path), "{path} is never touched");
            }
            let after = table.existing_snapshot().await.expect("load");
            assert_eq!(after.version, 4);
            assert_eq!(
                (after.files, after.tombstones),
                (before.files, before.tombstones)
            );
            let info = |actions: Vec<Action>| match actions.as_slice() {
                [Action::CommitInfo(info)] => info.clone(),
                other => panic!("a commitInfo-only commit: {other:?}"),
            };
            let start = info(table.read_commit(3).await.expect("v3"));
            assert_eq!(start.operation.as_deref(), Some("VACUUM START"));
            assert_eq!(start.read_version, Some(2));
            let parameters = start.operation_parameters.expect("parameters");
            assert_eq!(parameters["retentionCheckEnabled"], "true");
            assert_eq!(parameters["specifiedRetentionMillis"], "604800000");
            assert_eq!(start.other["operationMetrics"]["numFilesToDelete"], "2");
            assert_eq!(start.other["operationMetrics"]["sizeOfDataToDelete"], "20");
            let end = info(table.read_commit(4).await.expect("v4"));
            assert_eq!(end.operation.as_deref(), Some("VACUUM END"));
            assert_eq!(
                end.operation_parameters.expect("parameters")["status"],
                "COMPLETED"
            );
            assert_eq!(end.other["operationMetrics"]["numDeletedFiles"], "2");

            // Nothing left to delete: no commit.
            let again = vacuum(&table, &options).await.expect("vacuum");
            assert!(again.files.is_empty() && again.commits.is_empty());
            assert_eq!(table.existing_snapshot().await.expect("load").version, 4);
        });
    }

    #[test]
    fn a_short_retention_is_refused_unless_forced() {
        block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let now = chrono::Utc::now().timestamp_millis();
            let table = messy_table(dir.path(), now).await;
            let hour = VacuumOptions {
                retention: Some(Duration::from_secs(3600)),
                now_ms: Some(now),
                ..VacuumOptions::default()
            };
            let err = vacuum(&table, &hour).await.expect_err("refused");
            assert!(matches!(err, DeltaError::Refused { .. }), "{err}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("VACUUM of {} refused: a retention of 1h is shorter than 168h (the table's delta.deletedFileRetentionDuration, and never less than 168h)", dir.path().display()))
                    && message.ends_with("turn the retention check off (--force)"),
                "{message}"
            );
            assert!(exists(dir.path(), REMOVED_OLD), "nothing is deleted");
            assert_eq!(table.existing_snapshot().await.expect("load").version, 2);

            let forced = vacuum(
                &table,
                &VacuumOptions {
                    enforce_retention: false,
                    ..hour
                },
            )
            .await
            .expect("forced");
            assert_eq!(
                paths(&forced),
                [REMOVED_OLD, REMOVED_RECENT, ORPHAN_OLD, ORPHAN_RECENT]
            );
            for path in LIVE.into_iter().chain(HIDDEN) {
                assert!(exists(dir.path(), path), "{path} is kept");
            }
            let start = table.read_commit(3).await.expect("VACUUM START");
            let Some(Action::CommitInfo(info)) = start.first() else {
                panic!("commitInfo")
            };
            let parameters = info.operation_parameters.as_ref().expect("parameters");
            assert_eq!(parameters["retentionCheckEnabled"], "false");
            assert_eq!(parameters["specifiedRetentionMillis"], "3600000");
            assert_eq!(parameters["defaultRetentionMillis"], "604800000");
        });
    }

    #[test]
    fn the_tables_retention_is_the_default_and_a_week_the_minimum() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            create_table(&table, &[(DELETED_FILE_RETENTION, "interval 2 days")]).await;
            let now = chrono::Utc::now().timestamp_millis();
            table
                .try_commit(1, &[add("a"), add("b"), add("c")])
                .await
                .expect("commit");
            table
                .try_commit(
                    2,
                    &[
                        remove("a", Some(now - 3 * DAY_MS)),
                        remove("b", Some(now - DAY_MS)),
                        remove("c", None),
                    ],
                )
                .await
                .expect("commit");
            for path in ["a", "b", "c"] {
                table
                    .store()
                    .put(&Path::from(path), PutPayload::from_static(b"0123456789"))
                    .await
                    .expect("put");
            }
            // The table's 2 days are the default retention, but less than a week is
            // refused unless forced.
            let options = VacuumOptions {
                dry_run: true,
                now_ms: Some(now),
                ..VacuumOptions::default()
            };
            let err = vacuum(&table, &options).await.expect_err("under a week");
            assert!(
                err.to_string()
                    .contains("a retention of 48h is shorter than 168h"),
                "{err}"
            );
            let options = VacuumOptions {
                enforce_retention: false,
                ..options
            };
            let report = vacuum(&table, &options).await.expect("dry run");
            assert_eq!(report.retention_ms, 2 * DAY_MS as u64);
            // A remove without deletionTimestamp counts as removed at 0.
            assert_eq!(paths(&report), ["a", "c"]);
            assert_eq!(report.files[1].since_ms, 0);
            let longer = vacuum(
                &table,
                &VacuumOptions {
                    retention: Some(Duration::from_secs(4 * 24 * 3600)),
                    ..options
                },
            )
            .await
            .expect("longer");
            assert_eq!(paths(&longer), ["c"]);
        });
    }

    #[test]
    fn memory_tables_are_vacuumed_from_the_listing() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            create_table(&table, &[]).await;
            table
                .try_commit(
                    1,
                    &[
                        add("date=2024-05-01/live.parquet"),
                        add("date=2024-05-01/old.parquet"),
                    ],
                )
                .await
                .expect("commit");
            let now = chrono::Utc::now().timestamp_millis();
            table
                .try_commit(2, &[remove("date=2024-05-01/old.parquet", Some(now))])
                .await
                .expect("commit");
            for path in [
                "date=2024-05-01/live.parquet",
                "date=2024-05-01/old.parquet",
                "date=2024-05-01/orphan.parquet",
                "_tidelake/probe",
            ] {
                table
                    .store()
                    .put(&Path::from(path), PutPayload::from_static(b"x"))
                    .await
                    .expect("put");
            }
            // A month from now, everything unreferenced has expired.
            let options = VacuumOptions {
                now_ms: Some(now + 30 * DAY_MS),
                ..VacuumOptions::default()
            };
            let report = vacuum(&table, &options).await.expect("vacuum");
            assert_eq!(
                paths(&report),
                [
                    "date=2024-05-01/old.parquet",
                    "date=2024-05-01/orphan.parquet"
                ]
            );
            let left: Vec<String> = table
                .store()
                .list(None)
                .map_ok(|meta| meta.location.to_string())
                .try_collect()
                .await
                .expect("list");
            assert!(left.contains(&"date=2024-05-01/live.parquet".to_owned()));
            assert!(left.contains(&"_tidelake/probe".to_owned()));
            assert!(
                !left
                    .iter()
                    .any(|p| p.ends_with("old.parquet") || p.ends_with("orphan.parquet"))
            );
            assert_eq!(
                left.iter().filter(|p| p.starts_with("_delta_log/")).count(),
                5,
                "versions 0 to 4"
            );
        });
    }

    #[test]
    fn the_log_and_hidden_paths_are_never_candidates() {
        let columns = ["date".to_owned(), "_p".to_owned()];
        for (path, hidden) in [
            ("_delta_log/00000000000000000000.json", true),
            ("_delta_log/_commits/x.json", true),
            ("_in-progress/part-0.parquet", true),
            ("_tidelake/state", true),
            (".hidden", true),
            ("date=2024-05-01/.part-0.parquet.crc", true),
            ("date=2024-05-01/_SUCCESS", true),
            ("date=2024-05-01/_tmp/part-0.parquet", true),
            ("_other=1/part-0.parquet", true),
            ("date=2024-05-01/part-0.parquet", false),
            ("date=__HIVE_DEFAULT_PARTITION__/part-0.parquet", false),
            ("_p=1/part-0.parquet", false),
            ("part-0.parquet", false),
        ] {
            assert_eq!(is_hidden(&Path::from(path), &columns), hidden, "{path}");
        }
    }

    #[test]
    fn a_live_file_is_never_deleted() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let path = Path::from("date=2024-05-01/live.parquet");
            table
                .store()
                .put(&path, PutPayload::from_static(b"x"))
                .await
                .expect("put");
            let live = HashSet::from([path.clone()]);
            let err = delete_unreferenced(&table, &path, &live)
                .await
                .expect_err("live");
            assert!(
                err.to_string()
                    .contains("is a live file of the table and was not deleted"),
                "{err}"
            );
            table.store().head(&path).await.expect("still there");
            delete_unreferenced(&table, &path, &HashSet::new())
                .await
                .expect("unreferenced");
            delete_unreferenced(&table, &path, &HashSet::new())
                .await
                .expect("already gone is fine");
        });
    }
}
