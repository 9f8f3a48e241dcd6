//! The data files of each epoch a sink has open: one [`DataFileWriter`] per epoch, and
//! its row count. Shared by the Delta sink and the Parquet file sink, which differ only
//! in what they do with an epoch's files once it is sealed.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;

use crate::clock::SharedClock;
use crate::delta::DeltaError;
use crate::delta::files::constraints::{Constraints, OnRejected};
use crate::epochs::{EpochOutcome, EpochReport};
use crate::parquet::{ArrowRows, DataFile, DataFileWriter, RowRules, WriterOptions};

/// The open epochs' files under one root; see the [module docs](self).
pub(crate) struct EpochFiles<R: ArrowRows> {
    store: Arc<dyn ObjectStore>,
    root: Path,
    writer_index: usize,
    options: WriterOptions,
    open: BTreeMap<u64, (DataFileWriter<R>, u64)>,
    /// Modification times and file ids.
    clock: SharedClock,
    /// The table's rules and where the rows they keep out go, if rows are checked.
    checks: Option<(Arc<Constraints>, OnRejected)>,
}

impl<R: ArrowRows> EpochFiles<R> {
    /// Files under `root` in `store`, named with `writer_index`, timed and named by
    /// `clock`. Fails at once on bad options.
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        root: Path,
        writer_index: usize,
        options: WriterOptions,
        clock: SharedClock,
    ) -> Result<Self, DeltaError> {
        DataFileWriter::<R>::new(store.clone(), root.clone(), writer_index, options.clone())?;
        Ok(EpochFiles {
            store,
            root,
            writer_index,
            options,
            open: BTreeMap::new(),
            clock,
            checks: None,
        })
    }

    /// Checks every row against `constraints` before it is written, handing the rows
    /// that break one to `on_rejected` instead (see [`crate::delta::files::constraints`]).
    pub(crate) fn with_constraints(
        mut self,
        constraints: Arc<Constraints>,
        on_rejected: OnRejected,
    ) -> Self {
        self.checks = (!constraints.is_empty()).then_some((constraints, on_rejected));
        self
    }

    /// Hands the rows `files` kept out since the last call to the callback of `checks`.
    fn hand(checks: &Option<(Arc<Constraints>, OnRejected)>, files: &mut DataFileWriter<R>) {
        if let Some((_, on_rejected)) = checks {
            let rejected = files.take_rejected();
            if !rejected.is_empty() {
                on_rejected(rejected);
            }
        }
    }

    /// Writes `rows` of `epoch` (files that reach the target size are uploaded).
    pub(crate) async fn write(&mut self, epoch: u64, rows: &[R]) -> Result<(), DeltaError> {
        let (files, count) = match self.open.entry(epoch) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert((
                DataFileWriter::new(
                    self.store.clone(),
                    self.root.clone(),
                    self.writer_index,
                    self.options.clone(),
                )?
                .with_clock(self.clock.clone())
                .with_rules(
                    self.checks
                        .as_ref()
                        .map(|(c, _)| Arc::clone(c) as Arc<dyn RowRules>),
                ),
                0,
            )),
        };
        *count += rows.len() as u64;
        let written = files.write(rows).await;
        Self::hand(&self.checks, files);
        Ok(written?)
    }

    /// Uploads the rest of `epoch`'s files: the epoch's files and the count of the epoch's
    /// rows they hold (none and 0 if it had no rows; rows the table's rules kept out are
    /// not counted).
    pub(crate) async fn finish(&mut self, epoch: u64) -> Result<(Vec<DataFile>, u64), DeltaError> {
        let Some((mut files, rows)) = self.open.remove(&epoch) else {
            return Ok((Vec::new(), 0));
        };
        let finished = files.finish().await;
        Self::hand(&self.checks, &mut files);
        match finished {
            Ok(written) => Ok((written, rows - files.rejected_rows())),
            Err(e) => {
                // Keep the epoch's files for a retry, as the writer does.
                self.open.insert(epoch, (files, rows));
                Err(e.into())
            }
        }
    }
}

/// The report of an epoch of `rows` rows written as `files`.
pub(crate) fn report(
    epoch: u64,
    rows: u64,
    files: &[DataFile],
    outcome: EpochOutcome,
) -> EpochReport {
    EpochReport {
        epoch,
        rows,
        files: files.len() as u64,
        bytes: files.iter().map(|f| f.size.max(0) as u64).sum(),
        outcome,
        commit_latency: None,
    }
}
