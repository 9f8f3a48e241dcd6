//! Rewriting one partition: reading its files, writing the new ones (in Z-order if
//! asked), and committing them.

use std::sync::Arc;

use arrow::array::ArrayRef;
use bytes::Bytes;

use super::commit::{Landing, LogTail, commit, compaction_actions};
use super::{
    Bin, OptimizeOptions, OptimizePlan, PartitionOutcome, PartitionValues, Progress, file_size,
};
use crate::delta::DeltaError;
use crate::delta::files::reader::{fetch_data_file, fetch_footer, open_data_file};
use crate::delta::maintenance::external_sort::{ExternalSort, SortError};
use crate::delta::maintenance::zorder::{ColumnSample, SAMPLE_SIZE, ZorderKeys};
use crate::delta::protocol::actions::Add;
use crate::delta::protocol::checkpoint::policy::{CheckpointPolicy, Checkpointer};
use crate::delta::protocol::table::DeltaTable;
use crate::parquet::splice::Splice;
use crate::parquet::stats::parse_num_records;
use crate::parquet::{BatchFileWriter, DataFile, PartitionSpec};
use crate::parquet::{Codec, WriterError, WriterOptions};

/// Rows written at a time in Z-order, so that a file ends within a few of them of the
/// target size.
const ZORDER_WRITE_ROWS: usize = 1024;

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
        let mut writer = self.writer(&WriterOptions {
            // Never cut by size: a bin is one file.
            target_file_size: usize::MAX,
            ..WriterOptions::default()
        })?;
        let spec: PartitionSpec = self
            .plan
            .partition_columns
            .iter()
            .map(|c| (c.clone(), self.partition.get(c).cloned().flatten()))
            .collect();
        for bin in bins {
            if self.plan.zorder.is_empty() {
                // One output file: the inputs spliced or re-encoded into it.
                if let Some((bytes, stats)) = self.splice(bin, options).await? {
                    writer.complete_encoded(spec.clone(), bytes, stats);
                } else {
                    for file in &bin.files {
                        for batch in open_data_file(self.table, file, &self.plan.schema).await? {
                            writer.write(&(), || spec.clone(), &batch?)?;
                        }
                    }
                }
                for file in &bin.files {
                    self.read_done(file);
                }
                self.finish_file(&mut writer).await?;
            } else {
                self.write_zordered(bin, options, &spec).await?;
            }
        }
        Ok(())
    }

    /// Writes the rows of `bin` in Z-order into files of about the target size: a
    /// file ends once its encoded size reaches it, and is uploaded then.
    async fn write_zordered(
        &mut self,
        bin: &Bin,
        options: &OptimizeOptions,
        spec: &PartitionSpec,
    ) -> Result<(), DeltaError> {
        let sorted = self.zorder(bin, options).await?;
        let writer_options = WriterOptions {
            target_file_size: usize::try_from(options.target_file_size).unwrap_or(usize::MAX),
            ..WriterOptions::default()
        };
        let mut writer = self.writer(&writer_options)?;
        for batch in sorted.finish().map_err(|e| self.sort_error(e))? {
            let batch = batch.map_err(|e| self.sort_error(e))?;
            for offset in (0..batch.num_rows()).step_by(ZORDER_WRITE_ROWS) {
                let rows = ZORDER_WRITE_ROWS.min(batch.num_rows() - offset);
                writer.write(&(), || spec.clone(), &batch.slice(offset, rows))?;
                writer.upload_completed().await?;
                self.written
                    .extend(writer.take_uploaded().into_iter().map(compacted));
            }
        }
        self.finish_file(&mut writer).await
    }

    /// The files of `bin` spliced into one new file, and its stats, if they can be:
    /// each has the table's Parquet schema, the new files' codec and complete stats
    /// ([`Splice::accepts`]), and their row groups hold on average at least
    /// `options.splice_min_group_rows` rows (see the [module docs](super)). The
    /// decision reads only the files' footers; the files are then fetched one at a
    /// time.
    async fn splice(
        &self,
        bin: &Bin,
        options: &OptimizeOptions,
    ) -> Result<Option<(Bytes, String)>, DeltaError> {
        let mut footers = Vec::with_capacity(bin.files.len());
        for file in &bin.files {
            footers.push(fetch_footer(self.table, file).await?);
        }
        let groups: u64 = footers.iter().map(|f| f.num_row_groups() as u64).sum();
        let rows: u64 = (footers.iter())
            .map(|f| u64::try_from(f.file_metadata().num_rows()).unwrap_or(0))
            .sum();
        if groups == 0 || rows / groups < options.splice_min_group_rows {
            return Ok(None);
        }
        let size = bin.files.iter().map(|f| file_size(f) as usize).sum();
        let mut splice =
            Splice::new(&self.plan.schema, Codec::default(), size).map_err(new_file_error)?;
        let mut inputs = Vec::with_capacity(bin.files.len());
        for (file, footer) in bin.files.iter().zip(&footers) {
            match file.stats.as_deref() {
                Some(stats) if splice.accepts(footer, stats) => inputs.push((file, footer, stats)),
                _ => return Ok(None),
            }
        }
        for (file, footer, stats) in inputs {
            let bytes = fetch_data_file(self.table, file).await?;
            splice
                .append(&bytes, footer, stats)
                .map_err(new_file_error)?;
        }
        splice.finish().map(Some).map_err(new_file_error)
    }

    /// Tells the progress that `file` has been read.
    fn read_done(&mut self, file: &Add) {
        self.tracker.bytes_read += file_size(file);
        (self.progress)(self.tracker.clone());
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
            self.read_done(file);
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

    /// A writer of the partition's new files.
    fn writer(&self, options: &WriterOptions) -> Result<BatchFileWriter<()>, DeltaError> {
        Ok(BatchFileWriter::<()>::new(
            self.table.store().clone(),
            self.table.root().clone(),
            0,
            self.plan.schema.clone(),
            options,
        )?
        .with_clock(self.table.clock().clone()))
    }

    /// Completes and uploads the file being written, as a compaction's `add`.
    async fn finish_file(&mut self, writer: &mut BatchFileWriter<()>) -> Result<(), DeltaError> {
        let files = writer.finish().await?;
        self.written.extend(files.into_iter().map(compacted));
        Ok(())
    }
}

/// A new file of a compaction, as its `add`.
fn compacted(file: DataFile) -> Add {
    Add {
        data_change: false,
        ..Add::from(file)
    }
}

/// A new file that could not be encoded.
fn new_file_error(source: parquet::errors::ParquetError) -> DeltaError {
    DeltaError::DataFile(WriterError::Parquet {
        path: "a new file of the compaction".to_owned(),
        source,
    })
}

/// The rows of a file, from its stats (0 if they do not say).
fn rows_of(add: &Add) -> u64 {
    add.stats
        .as_deref()
        .and_then(|s| parse_num_records(s).ok().flatten())
        .unwrap_or(0)
}
