//! Rewriting one partition: reading its files, writing the new ones (in Z-order if
//! asked), and committing them.

use std::ops::Range;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;

use super::commit::{Landing, LogTail, commit, compaction_actions};
use super::{
    Bin, OptimizeOptions, OptimizePlan, PartitionOutcome, PartitionValues, Progress, file_size,
};
use crate::delta::DeltaError;
use crate::delta::files::reader::read_data_file;
use crate::delta::maintenance::zorder::sort_by_zorder;
use crate::delta::protocol::actions::Add;
use crate::delta::protocol::checkpoint::policy::{CheckpointPolicy, Checkpointer};
use crate::delta::protocol::table::DeltaTable;
use crate::parquet::WriterOptions;
use crate::parquet::stats::parse_num_records;
use crate::parquet::{BatchFileWriter, PartitionSpec};

/// `rows` rows cut into at most `files` non-empty ranges of equal length (the last may
/// be shorter).
pub(super) fn cut(rows: usize, files: usize) -> impl Iterator<Item = Range<usize>> {
    let per_file = rows.div_ceil(files.max(1)).max(1);
    (0..rows)
        .step_by(per_file)
        .map(move |start| start..(start + per_file).min(rows))
}

/// The rewrite of one partition.
pub(super) struct Rewrite<'a> {
    pub(super) table: &'a DeltaTable,
    pub(super) plan: &'a OptimizePlan,
    pub(super) partition: &'a PartitionValues,
    pub(super) tail: &'a mut LogTail,
    pub(super) tracker: &'a mut Progress,
    pub(super) progress: &'a mut dyn FnMut(Progress),
    /// The files written so far.
    pub(super) written: Vec<Add>,
}

impl Rewrite<'_> {
    /// Writes the partition's new files and commits them; gives up (deleting them) on
    /// a conflict.
    pub(super) async fn run(
        &mut self,
        bins: &[Bin],
        options: &OptimizeOptions,
    ) -> Result<PartitionOutcome, DeltaError> {
        if let Err(e) = self.write_files(bins).await {
            // Best effort: the error matters more than leftovers, which VACUUM removes.
            let _ = self.table.delete_data_files(&self.written).await;
            return Err(e);
        }
        let inputs: Vec<&Add> = bins.iter().flat_map(|bin| &bin.files).collect();
        let clock = self.table.clock();
        let (now, txn_id) = (clock.now_ms(), clock.new_id().to_string());
        let actions = compaction_actions(self.plan, options, &inputs, &self.written, now, &txn_id);
        let landing = commit(
            self.table,
            self.tail,
            &actions,
            &inputs,
            &txn_id,
            options.max_attempts,
        )
        .await?;
        let partition = self.partition.clone();
        match landing {
            Landing::Committed { version, attempts } => {
                Checkpointer::new(CheckpointPolicy::default())
                    .committed(self.table, version, &actions)
                    .await?;
                Ok(PartitionOutcome::Compacted {
                    partition,
                    version,
                    attempts,
                    removed: inputs.len(),
                    added: self.written.len(),
                    bytes_removed: inputs.iter().map(|f| file_size(f)).sum(),
                    bytes_added: self.written.iter().map(file_size).sum(),
                    rows: self.written.iter().map(rows_of).sum(),
                })
            }
            Landing::Conflict(reason) => {
                self.table.delete_data_files(&self.written).await?;
                Ok(PartitionOutcome::GaveUp { partition, reason })
            }
        }
    }

    /// Writes the files of every bin, uploaded; each goes into `written` once uploaded.
    async fn write_files(&mut self, bins: &[Bin]) -> Result<(), DeltaError> {
        let options = WriterOptions {
            // Never cut by size: files end where the plan says.
            target_file_size: usize::MAX,
            ..WriterOptions::default()
        };
        let mut writer = BatchFileWriter::<()>::new(
            self.table.store().clone(),
            self.table.root().clone(),
            0,
            self.plan.schema.clone(),
            &options,
        )?
        .with_clock(self.table.clock().clone());
        let spec: PartitionSpec = self
            .plan
            .partition_columns
            .iter()
            .map(|c| (c.clone(), self.partition.get(c).cloned().flatten()))
            .collect();
        for bin in bins {
            if self.plan.zorder.is_empty() {
                // One output file: stream the inputs into it.
                for file in &bin.files {
                    for batch in self.read(file).await? {
                        writer.write(&(), || spec.clone(), &batch)?;
                    }
                }
                self.finish_file(&mut writer).await?;
            } else {
                let mut batches = Vec::new();
                for file in &bin.files {
                    batches.extend(self.read(file).await?);
                }
                let sorted = self.zorder(&batches)?;
                for rows in cut(sorted.num_rows(), bin.output_files) {
                    let slice = sorted.slice(rows.start, rows.len());
                    writer.write(&(), || spec.clone(), &slice)?;
                    self.finish_file(&mut writer).await?;
                }
            }
        }
        Ok(())
    }

    /// Reads one input file, and tells the progress.
    async fn read(&mut self, file: &Add) -> Result<Vec<RecordBatch>, DeltaError> {
        let batches = read_data_file(self.table, file, &self.plan.schema).await?;
        self.tracker.bytes_read += file_size(file);
        (self.progress)(self.tracker.clone());
        Ok(batches)
    }

    /// The rows of `batches` in one batch, in Z-order.
    fn zorder(&self, batches: &[RecordBatch]) -> Result<RecordBatch, DeltaError> {
        concat_batches(&self.plan.schema, batches)
            .and_then(|all| sort_by_zorder(&all, &self.plan.zorder))
            .map_err(|e| DeltaError::Unsupported {
                table: self.table.location().to_owned(),
                detail: format!("cannot z-order partition {:?}: {e}", self.partition),
            })
    }

    /// Completes and uploads the file being written, as a compaction's `add`.
    async fn finish_file(&mut self, writer: &mut BatchFileWriter<()>) -> Result<(), DeltaError> {
        for file in writer.finish().await? {
            self.written.push(Add {
                data_change: false,
                ..Add::from(file)
            });
        }
        Ok(())
    }
}

/// The rows of a file, from its stats (0 if they do not say).
fn rows_of(add: &Add) -> u64 {
    add.stats
        .as_deref()
        .and_then(|s| parse_num_records(s).ok().flatten())
        .unwrap_or(0)
}
