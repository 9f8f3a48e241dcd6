//! Rewriting one partition: reading its files, writing the new ones (in Z-order if
//! asked), and committing them.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;

use super::commit::{Landing, LogTail, commit, compaction_actions};
use super::{
    Bin, OptimizeOptions, OptimizePlan, PartitionOutcome, PartitionValues, Progress, file_size,
};
use crate::delta::DeltaError;
use crate::delta::files::reader::{open_data_file, read_data_file};
use crate::delta::maintenance::external_sort::{ExternalSort, SortError};
use crate::delta::maintenance::zorder::{ColumnSample, SAMPLE_SIZE, ZorderKeys};
use crate::delta::protocol::actions::Add;
use crate::delta::protocol::checkpoint::policy::{CheckpointPolicy, Checkpointer};
use crate::delta::protocol::table::DeltaTable;
use crate::parquet::WriterOptions;
use crate::parquet::stats::parse_num_records;
use crate::parquet::{BatchFileWriter, PartitionSpec};

/// The rows of each file when `rows` rows are cut into at most `files` files of equal
/// row counts (the last may be shorter).
pub(super) fn rows_per_file(rows: u64, files: usize) -> u64 {
    rows.div_ceil(files.max(1) as u64).max(1)
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
        if let Err(e) = self.write_files(bins, options).await {
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
    async fn write_files(
        &mut self,
        bins: &[Bin],
        options: &OptimizeOptions,
    ) -> Result<(), DeltaError> {
        let writer_options = WriterOptions {
            // Never cut by size: files end where the plan says.
            target_file_size: usize::MAX,
            ..WriterOptions::default()
        };
        let mut writer = BatchFileWriter::<()>::new(
            self.table.store().clone(),
            self.table.root().clone(),
            0,
            self.plan.schema.clone(),
            &writer_options,
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
                self.write_zordered(bin, options, &mut writer, &spec)
                    .await?;
            }
        }
        Ok(())
    }

    /// Writes the rows of `bin` in Z-order as `bin.output_files` files of equal row
    /// counts.
    async fn write_zordered(
        &mut self,
        bin: &Bin,
        options: &OptimizeOptions,
        writer: &mut BatchFileWriter<()>,
        spec: &PartitionSpec,
    ) -> Result<(), DeltaError> {
        let sorted = self.zorder(bin, options).await?;
        let per_file = rows_per_file(sorted.rows(), bin.output_files);
        let mut in_file = 0;
        for batch in sorted.finish().map_err(|e| self.sort_error(e))? {
            let batch = batch.map_err(|e| self.sort_error(e))?;
            let mut offset = 0;
            while offset < batch.num_rows() {
                let take = (per_file - in_file).min((batch.num_rows() - offset) as u64);
                writer.write(&(), || spec.clone(), &batch.slice(offset, take as usize))?;
                (in_file, offset) = (in_file + take, offset + take as usize);
                if in_file == per_file {
                    self.finish_file(writer).await?;
                    in_file = 0;
                }
            }
        }
        if in_file > 0 {
            self.finish_file(writer).await?;
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

    /// The rows of `bin`'s files being sorted in Z-order, in at most
    /// `options.sort_memory` bytes: a first pass reads the Z-order columns to sample
    /// them, a second the rows, keyed by the samples' quantiles (see
    /// [`crate::delta::maintenance::zorder`]).
    async fn zorder(
        &mut self,
        bin: &Bin,
        options: &OptimizeOptions,
    ) -> Result<ExternalSort, DeltaError> {
        let zorder = &self.plan.zorder;
        let key_schema = Arc::new(
            self.plan
                .schema
                .project(zorder)
                .map_err(|e| self.sort_error(e.into()))?,
        );
        let mut samples = key_schema
            .fields()
            .iter()
            .map(|field| ColumnSample::new(field.data_type(), SAMPLE_SIZE))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sort_error(e.into()))?;
        for file in &bin.files {
            for batch in open_data_file(self.table, file, &key_schema).await? {
                let batch = batch?;
                for (sample, column) in samples.iter_mut().zip(batch.columns()) {
                    sample.add(column).map_err(|e| self.sort_error(e.into()))?;
                }
            }
        }
        let keys = ZorderKeys::new(samples);
        let mut sort = ExternalSort::new(
            self.plan.schema.clone(),
            keys.width(),
            options.sort_memory,
            &options.spill_dir,
        );
        for file in &bin.files {
            for batch in open_data_file(self.table, file, &self.plan.schema).await? {
                let batch = batch?;
                let columns: Vec<ArrayRef> =
                    zorder.iter().map(|&i| batch.column(i).clone()).collect();
                let row_keys = keys.keys(&columns).map_err(|e| self.sort_error(e.into()))?;
                sort.push(batch, row_keys).map_err(|e| self.sort_error(e))?;
            }
            self.tracker.bytes_read += file_size(file);
            (self.progress)(self.tracker.clone());
        }
        Ok(sort)
    }

    /// A failed sort, naming the partition.
    fn sort_error(&self, error: SortError) -> DeltaError {
        DeltaError::Sort {
            table: self.table.location().to_owned(),
            partition: format!("{:?}", self.partition),
            source: error,
        }
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
