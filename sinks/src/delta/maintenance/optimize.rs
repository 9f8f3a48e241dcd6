//! OPTIMIZE and ZORDER BY (docs/semantics.md §6; `shared/notes/delta-writer.md` §3 and §6): the
//! small files of each partition rewritten into files near a target size, one commit
//! per partition, so that a conflict costs only that partition.
//!
//! [`plan`] decides from a snapshot what to rewrite (a dry run); [`execute`] does it;
//! [`optimize`] does both on the latest snapshot.
//!
//! # The plan
//!
//! For each partition (all, or those `partition_filter` names):
//! - **Bin-packing** (no `zorder_by`): the candidates are the files smaller than
//!   `min_file_size`. In order of size (then path) they go into bins of at most
//!   `target_file_size` bytes, a new bin when the next file does not fit (Spark's
//!   OPTIMIZE does the same). Each bin of two files or more becomes one file; a bin of
//!   one file is left alone.
//! - **Z-order**: every file of the partition, whatever its size (as Spark and delta-rs
//!   do), is rewritten with its rows ordered along the Z-order curve of the columns
//!   (see [`crate::delta::maintenance::zorder`]), into files cut when their encoded
//!   size reaches `target_file_size`, as the sink cuts its files.
//!
//! A partition with fewer than `min_files` candidates, or no bin to rewrite, is skipped.
//!
//! # Execution
//!
//! Each planned partition is rewritten on its own: its files are read as the table's
//! schema whoever wrote them (see [`crate::delta::files::reader`]), the new files are written with
//! exact stats (see [`crate::parquet::batch_writer`]), and one commit holds
//! - `remove{dataChange:false, deletionTimestamp, extendedFileMetadata:true,
//!   partitionValues, size}` for each file read,
//! - `add{dataChange:false, …}` for each file written,
//! - `commitInfo{operation:"OPTIMIZE", readVersion, operationParameters:{predicate,
//!   targetSize, zOrderBy, auto}, operationMetrics, isBlindAppend:false, txnId,
//!   engineInfo}`,
//!
//! put-if-absent at the first version after the snapshot and the commits read since
//! (an earlier partition's own among them). `txn`s are not touched, so every
//! application's version survives. A commit landing on a multiple of the checkpoint
//! interval writes the checkpoint, as every tidelake writer does.
//!
//! # Conflicts
//!
//! Every commit since the snapshot is checked against each partition's commit, and after
//! losing the race for a version (and a short jittered backoff) the commit reads on to
//! the newest (notes §3). Blind appends, `txn`s and removes of other files do
//! not conflict: the same actions are put at the next version, no file is rewritten.
//! A winner that removed one of the files read (another compaction, a delete), or that
//! changed the protocol or metadata, ends it: the partition is given up
//! ([`PartitionOutcome::GaveUp`]), the files written for it are deleted, and the other
//! partitions go on. So is a partition whose commit lost `max_attempts` races in a row.
//! An error (the store failing) ends the whole optimization; the files of the
//! partition being rewritten are left where the commit's outcome is unknown, for
//! VACUUM to remove once they are old.
//!
//! # Splicing
//!
//! A bin whose files have the Parquet schema and codec (zstd) tidelake writes for the
//! table and complete stats, and whose row groups hold on average at least
//! `splice_min_group_rows` rows, is not decoded: its files' row groups are copied as
//! they are encoded into the new file, and its stats are the files' stats merged (see
//! [`crate::parquet::splice`]). That makes compaction cost about what copying the bytes
//! costs, so a stream's auto-compaction (whose files are of a commit's rows) does not
//! take the stream's CPU. Other bins are re-encoded: small row groups (a slow stream's
//! files of a few rows each) because a file of many tiny row groups reads slowly,
//! another codec (Spark's and delta-rs's snappy) because zstd makes the file about half
//! the size.
//!
//! # Memory
//!
//! A bin's files are fetched whole one at a time, then decoded a batch at a time (or
//! spliced) into its output file, which is held (encoded) in memory until it is
//! uploaded: about the target size, plus one input file.
//!
//! Z-order sorts a partition in bounded memory, whatever its size
//! ([`crate::delta::maintenance::external_sort`]): it reads the partition twice, first
//! its Z-order columns only, to sample each (at most 65,536 values a column), then its
//! rows, keyed by the samples. It holds up to `sort_memory` bytes of decoded rows, and
//! beyond that writes them as sorted runs to a temporary directory in `spill_dir`
//! (disk: the partition's rows once more, uncompressed), which it merges into the new
//! files a batch of each run at a time. Peak memory is about `sort_memory`, plus one
//! input file as stored, plus the output file being written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use serde::Serialize;

use crate::delta::DeltaError;
use crate::delta::files::commit::engine_info;
use crate::delta::protocol::actions::Add;
use crate::delta::protocol::commit_loop::DEFAULT_MAX_ATTEMPTS;
use crate::delta::protocol::features::{self, Operation};
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::table::DeltaTable;
use crate::parquet::NULL_PARTITION;
use commit::LogTail;
use rewrite::Rewrite;

/// A partition: column → value (`None` for null), as in `add.partitionValues`.
pub type PartitionValues = BTreeMap<String, Option<String>>;

/// The default target file size: 128 MiB.
pub const DEFAULT_TARGET_FILE_SIZE: u64 = 128 * 1024 * 1024;

/// The default memory for sorting a partition's rows in Z-order: 512 MiB.
pub const DEFAULT_SORT_MEMORY: usize = 512 * 1024 * 1024;

/// The default average rows per row group above which bin-packing splices a bin's
/// files instead of re-encoding them: 128 Ki rows.
pub const DEFAULT_SPLICE_MIN_GROUP_ROWS: u64 = 128 * 1024;

/// The default `min_file_size` for a target size: three quarters of it. A file that
/// big is close enough to the target that rewriting it gains little; Spark uses a fixed
/// 1 GiB for its 1 GiB target, which would make every file a candidate here.
pub fn default_min_file_size(target_file_size: u64) -> u64 {
    target_file_size - target_file_size / 4
}

/// What to optimize, and how; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptimizeOptions {
    /// Only the partitions with these values, e.g. `[("date", "2024-05-01")]` (every
    /// pair must match; `__HIVE_DEFAULT_PARTITION__` is the null value). Empty: every
    /// partition.
    pub partition_filter: Vec<(String, String)>,
    /// The size files are packed up to, in bytes (default 128 MiB).
    pub target_file_size: u64,
    /// Files smaller than this are candidates for bin-packing (default: three quarters
    /// of the target, see [`default_min_file_size`]). Not used by z-order, which
    /// rewrites every file.
    pub min_file_size: u64,
    /// A partition is rewritten only if it has at least this many candidates (default
    /// 2).
    pub min_files: usize,
    /// Columns to z-order by; empty for plain bin-packing.
    pub zorder_by: Vec<String>,
    /// Attempts at each partition's commit before giving it up (default 100).
    pub max_attempts: u32,
    /// Written as `commitInfo.engineInfo` (default `tidelake/<version>`).
    pub engine_info: String,
    /// Written as `commitInfo.operationParameters.auto`: true for auto-compaction
    /// (default false).
    pub auto: bool,
    /// Z-order: bytes of rows a partition's sort holds in memory before it writes them
    /// to a sorted run on disk (default [`DEFAULT_SORT_MEMORY`]).
    pub sort_memory: usize,
    /// Z-order: where the sorted runs go, in a directory of their own removed when the
    /// partition is done (default: the system's temporary directory, `TMPDIR`).
    pub spill_dir: PathBuf,
    /// Bin-packing: a bin is spliced, not re-encoded, if its files' row groups hold on
    /// average at least this many rows (default [`DEFAULT_SPLICE_MIN_GROUP_ROWS`]; at
    /// `u64::MAX` no bin is). See the [module docs](self).
    pub splice_min_group_rows: u64,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions {
            partition_filter: Vec::new(),
            target_file_size: DEFAULT_TARGET_FILE_SIZE,
            min_file_size: default_min_file_size(DEFAULT_TARGET_FILE_SIZE),
            min_files: 2,
            zorder_by: Vec::new(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            engine_info: engine_info(),
            auto: false,
            sort_memory: DEFAULT_SORT_MEMORY,
            spill_dir: std::env::temp_dir(),
            splice_min_group_rows: DEFAULT_SPLICE_MIN_GROUP_ROWS,
        }
    }
}

/// What [`plan`] decided: the partitions to rewrite and those to leave.
#[derive(Clone, Debug)]
pub struct OptimizePlan {
    /// The snapshot version planned from (`commitInfo.readVersion`).
    pub read_version: u64,
    /// Every partition selected, ordered by partition values.
    pub partitions: Vec<PartitionPlan>,
    /// The table's data file schema (its columns but the partition columns).
    schema: SchemaRef,
    partition_columns: Vec<String>,
    /// Indices into `schema` of the columns to z-order by.
    zorder: Vec<usize>,
}

/// What to do with one partition.
#[derive(Clone, Debug, PartialEq)]
pub enum PartitionPlan {
    /// Rewrite these bins.
    Rewrite {
        /// The partition.
        partition: PartitionValues,
        /// Groups of files, each rewritten on its own.
        bins: Vec<Bin>,
    },
    /// Leave the partition as it is.
    Skip {
        /// The partition.
        partition: PartitionValues,
        /// Its live files.
        files: usize,
        /// Why.
        reason: String,
    },
}

/// Files rewritten together.
#[derive(Clone, Debug, PartialEq)]
pub struct Bin {
    /// The files read.
    pub files: Vec<Add>,
}

impl OptimizePlan {
    /// Partitions to rewrite.
    pub fn rewrites(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| matches!(p, PartitionPlan::Rewrite { .. }))
            .count()
    }

    /// The bytes of every file to read.
    pub fn bytes_to_read(&self) -> u64 {
        self.partitions
            .iter()
            .flat_map(|p| match p {
                PartitionPlan::Rewrite { bins, .. } => bins.as_slice(),
                PartitionPlan::Skip { .. } => &[],
            })
            .flat_map(|bin| &bin.files)
            .map(file_size)
            .sum()
    }
}

/// How far [`execute`] got: reported after each file read and each partition done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Partitions rewritten (committed or given up).
    pub partitions_done: usize,
    /// Partitions to rewrite.
    pub partitions: usize,
    /// Bytes of input files read.
    pub bytes_read: u64,
    /// Bytes of input files to read.
    pub bytes: u64,
}

/// What became of one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "outcome",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum PartitionOutcome {
    /// Rewritten, in table version `version`.
    Compacted {
        /// The partition.
        partition: PartitionValues,
        /// The commit's version.
        version: u64,
        /// Puts it took (1 without contention).
        attempts: u32,
        /// Files removed.
        removed: usize,
        /// Files added.
        added: usize,
        /// Bytes of the files removed.
        bytes_removed: u64,
        /// Bytes of the files added.
        bytes_added: u64,
        /// Rows rewritten.
        rows: u64,
    },
    /// Not rewritten: another writer removed a file it read or changed the table, or
    /// it kept losing races. The files it wrote were deleted.
    GaveUp {
        /// The partition.
        partition: PartitionValues,
        /// Why.
        reason: String,
    },
    /// Left as it was (see [`PartitionPlan::Skip`]).
    Skipped {
        /// The partition.
        partition: PartitionValues,
        /// Its live files.
        files: usize,
        /// Why.
        reason: String,
    },
}

impl PartitionOutcome {
    /// The partition.
    pub fn partition(&self) -> &PartitionValues {
        match self {
            PartitionOutcome::Compacted { partition, .. }
            | PartitionOutcome::GaveUp { partition, .. }
            | PartitionOutcome::Skipped { partition, .. } => partition,
        }
    }
}

/// What [`optimize`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OptimizeReport {
    /// The snapshot version planned from.
    pub read_version: u64,
    /// Every partition selected, ordered by partition values.
    pub partitions: Vec<PartitionOutcome>,
    /// Partitions compacted (one commit each).
    pub partitions_compacted: usize,
    /// Partitions given up.
    pub partitions_gave_up: usize,
    /// Files removed, over all partitions compacted.
    pub files_removed: usize,
    /// Files added.
    pub files_added: usize,
    /// Bytes of the files removed.
    pub bytes_removed: u64,
    /// Bytes of the files added.
    pub bytes_added: u64,
}

impl OptimizeReport {
    fn of(read_version: u64, partitions: Vec<PartitionOutcome>) -> Self {
        let mut report = OptimizeReport {
            read_version,
            partitions: Vec::new(),
            partitions_compacted: 0,
            partitions_gave_up: 0,
            files_removed: 0,
            files_added: 0,
            bytes_removed: 0,
            bytes_added: 0,
        };
        for outcome in &partitions {
            match outcome {
                PartitionOutcome::Compacted {
                    removed,
                    added,
                    bytes_removed,
                    bytes_added,
                    ..
                } => {
                    report.partitions_compacted += 1;
                    report.files_removed += removed;
                    report.files_added += added;
                    report.bytes_removed += bytes_removed;
                    report.bytes_added += bytes_added;
                }
                PartitionOutcome::GaveUp { .. } => report.partitions_gave_up += 1,
                PartitionOutcome::Skipped { .. } => {}
            }
        }
        report.partitions = partitions;
        report
    }
}

/// Optimizes `table` as `options` say: [`plan`] on its latest snapshot, then
/// [`execute`]. `progress` hears how far it got.
///
/// An error for a missing table, bad options (unknown or partition columns:
/// [`DeltaError::InvalidArgument`]), an unsupported table, or a failure to read or
/// write; partitions committed before an error stay committed. A partition given up
/// is not an error: the report says why.
pub async fn optimize(
    table: &DeltaTable,
    options: &OptimizeOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<OptimizeReport, DeltaError> {
    let snapshot = table.snapshot_for(Operation::Optimize).await?;
    let plan = plan(table, &snapshot, options)?;
    execute(table, &plan, options, progress).await
}

/// Plans the optimization of `snapshot` of `table`; see the [module docs](self).
pub fn plan(
    table: &DeltaTable,
    snapshot: &Snapshot,
    options: &OptimizeOptions,
) -> Result<OptimizePlan, DeltaError> {
    if options.target_file_size == 0 || options.max_attempts == 0 {
        return Err(DeltaError::InvalidArgument(
            "the target file size and the commit attempts must be positive".into(),
        ));
    }
    let (metadata, schema) = snapshot.schema(table.location())?;
    features::check(snapshot, table.location(), Operation::Optimize)?;
    let partition_columns = metadata.partition_columns.clone();
    let data_schema = schema
        .data_file_schema(&partition_columns)
        .map_err(|detail| DeltaError::Unsupported {
            table: table.location().to_owned(),
            detail: format!("OPTIMIZE cannot rewrite its files: {detail}"),
        })?;
    check_partition_filter(&options.partition_filter, &partition_columns)?;
    let zorder = zorder_columns(&options.zorder_by, &data_schema, &partition_columns)?;

    let partitions = snapshot
        .files_by_partition()
        .into_iter()
        .filter(|(partition, _)| selected(partition, &options.partition_filter))
        .map(|(partition, files)| plan_partition(partition, files, options, !zorder.is_empty()))
        .collect();
    Ok(OptimizePlan {
        read_version: snapshot.version,
        partitions,
        schema: data_schema,
        partition_columns,
        zorder,
    })
}

/// Executes `plan` (made with `options`) on `table`; see the [module docs](self).
pub async fn execute(
    table: &DeltaTable,
    plan: &OptimizePlan,
    options: &OptimizeOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<OptimizeReport, DeltaError> {
    let mut tracker = Progress {
        partitions: plan.rewrites(),
        bytes: plan.bytes_to_read(),
        ..Progress::default()
    };
    progress(tracker.clone());
    let mut tail = LogTail::new(plan.read_version);
    let mut outcomes = Vec::new();
    for partition_plan in &plan.partitions {
        let outcome = match partition_plan {
            PartitionPlan::Skip {
                partition,
                files,
                reason,
            } => PartitionOutcome::Skipped {
                partition: partition.clone(),
                files: *files,
                reason: reason.clone(),
            },
            PartitionPlan::Rewrite { partition, bins } => {
                let mut rewrite = Rewrite {
                    table,
                    plan,
                    partition,
                    tail: &mut tail,
                    tracker: &mut tracker,
                    progress: &mut *progress,
                    written: Vec::new(),
                };
                let outcome = rewrite.run(bins, options).await?;
                tracker.partitions_done += 1;
                progress(tracker.clone());
                outcome
            }
        };
        outcomes.push(outcome);
    }
    Ok(OptimizeReport::of(plan.read_version, outcomes))
}

fn check_partition_filter(
    filter: &[(String, String)],
    partition_columns: &[String],
) -> Result<(), DeltaError> {
    match filter.iter().find(|(c, _)| !partition_columns.contains(c)) {
        None => Ok(()),
        Some((column, _)) => Err(DeltaError::InvalidArgument(format!(
            "cannot select partitions by `{column}`: it is not a partition column ({})",
            partitioned_by(partition_columns)
        ))),
    }
}

/// The indices in `schema` of the `zorder_by` columns; an error naming a column that
/// is a partition column, unknown, or given twice.
fn zorder_columns(
    zorder_by: &[String],
    schema: &SchemaRef,
    partition_columns: &[String],
) -> Result<Vec<usize>, DeltaError> {
    let mut indices = Vec::new();
    for column in zorder_by {
        let bad = |why: String| {
            DeltaError::InvalidArgument(format!("cannot z-order by `{column}`: {why}"))
        };
        if partition_columns.contains(column) {
            return Err(bad(format!(
                "it is a partition column ({}), the same in every row of a partition",
                partitioned_by(partition_columns)
            )));
        }
        let index = schema.index_of(column).map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            bad(format!(
                "the table has no such column (its data columns: {})",
                names.join(", ")
            ))
        })?;
        if indices.contains(&index) {
            return Err(bad("it is given twice".into()));
        }
        indices.push(index);
    }
    Ok(indices)
}

fn partitioned_by(partition_columns: &[String]) -> String {
    if partition_columns.is_empty() {
        "the table is not partitioned".to_owned()
    } else {
        format!(
            "the table is partitioned by {}",
            partition_columns.join(", ")
        )
    }
}

/// True if `partition` has every value of `filter` (`__HIVE_DEFAULT_PARTITION__` for
/// null).
fn selected(partition: &PartitionValues, filter: &[(String, String)]) -> bool {
    filter.iter().all(
        |(column, value)| match partition.get(column).map(Option::as_deref) {
            Some(Some(actual)) => actual == value,
            Some(None) => value == NULL_PARTITION,
            None => false,
        },
    )
}

fn plan_partition(
    partition: &PartitionValues,
    files: Vec<&Add>,
    options: &OptimizeOptions,
    zorder: bool,
) -> PartitionPlan {
    let total = files.len();
    let skip = |reason: String| PartitionPlan::Skip {
        partition: partition.clone(),
        files: total,
        reason,
    };
    if zorder {
        if total < options.min_files {
            return skip(format!(
                "{total} files, fewer than the {} to z-order",
                options.min_files
            ));
        }
        return PartitionPlan::Rewrite {
            partition: partition.clone(),
            bins: vec![Bin {
                files: files.into_iter().cloned().collect(),
            }],
        };
    }
    let mut candidates: Vec<&Add> = files
        .into_iter()
        .filter(|f| file_size(f) < options.min_file_size)
        .collect();
    if candidates.len() < options.min_files {
        return skip(format!(
            "{} of {total} files are smaller than {} bytes, fewer than the {} to compact",
            candidates.len(),
            options.min_file_size,
            options.min_files
        ));
    }
    candidates.sort_by(|a, b| (a.size, &a.path).cmp(&(b.size, &b.path)));
    let bins: Vec<Bin> = pack_bins(candidates, |f| file_size(f), options.target_file_size)
        .into_iter()
        .filter(|bin| bin.len() > 1)
        .map(|files| Bin {
            files: files.into_iter().cloned().collect(),
        })
        .collect();
    if bins.is_empty() {
        return skip("no two small files fit together in the target size".into());
    }
    PartitionPlan::Rewrite {
        partition: partition.clone(),
        bins,
    }
}

/// `items` (in the order given) in bins of at most `target` by `size`: next fit, a new
/// bin whenever the next item does not fit in the current one. An item bigger than
/// the target gets a bin of its own.
fn pack_bins<T>(items: Vec<T>, size: impl Fn(&T) -> u64, target: u64) -> Vec<Vec<T>> {
    let mut bins = Vec::new();
    let mut bin = Vec::new();
    let mut bytes = 0u64;
    for item in items {
        let item_size = size(&item);
        if !bin.is_empty() && bytes.saturating_add(item_size) > target {
            bins.push(std::mem::take(&mut bin));
            bytes = 0;
        }
        bytes = bytes.saturating_add(item_size);
        bin.push(item);
    }
    if !bin.is_empty() {
        bins.push(bin);
    }
    bins
}

/// `add.size`, with a (corrupt) negative size as 0.
fn file_size(add: &Add) -> u64 {
    u64::try_from(add.size).unwrap_or(0)
}

mod commit;
mod rewrite;
#[cfg(test)]
mod tests;
