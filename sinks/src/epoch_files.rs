//! The data files of each epoch a sink has open: one [`DataFileWriter`] per epoch, and
//! its row count. Shared by the Delta sink and the Parquet file sink, which differ only
//! in what they do with an epoch's files once it is sealed.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;

use crate::delta::DeltaError;
use crate::delta::actions::Add;
use crate::delta::constraints::{Constraints, OnRejected};
use crate::delta::writer::{DataFileWriter, WriterOptions};
use crate::epochs::{EpochOutcome, EpochReport};
use crate::rows::ArrowRows;

/// The open epochs' files under one root; see the [module docs](self).
pub(crate) struct EpochFiles<R: ArrowRows> {
    store: Arc<dyn ObjectStore>,
    root: Path,
    writer_index: usize,
    options: WriterOptions,
    open: BTreeMap<u64, (DataFileWriter<R>, u64)>,
    /// The table's rules and where the rows they keep out go, if rows are checked.
    checks: Option<(Arc<Constraints>, OnRejected)>,
}

impl<R: ArrowRows> EpochFiles<R> {
    /// Files under `root` in `store`, named with `writer_index`. Fails at once on a bad
    /// row type or bad options.
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        root: Path,
        writer_index: usize,
        options: WriterOptions,
    ) -> Result<Self, DeltaError> {
        DataFileWriter::<R>::new(store.clone(), root.clone(), writer_index, options.clone())?;
        Ok(EpochFiles {
            store,
            root,
            writer_index,
            options,
            open: BTreeMap::new(),
            checks: None,
        })
    }

    /// Checks every row against `constraints` before it is written, handing the rows
    /// that break one to `on_rejected` instead (see [`crate::delta::constraints`]).
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
                .with_constraints(self.checks.as_ref().map(|(c, _)| Arc::clone(c))),
                0,
            )),
        };
        *count += rows.len() as u64;
        let written = files.write(rows).await;
        Self::hand(&self.checks, files);
        Ok(written?)
    }

    /// Uploads the rest of `epoch`'s files: their `add`s and the count of the epoch's
    /// rows they hold (none and 0 if it had no rows; rows the table's rules kept out are
    /// not counted).
    pub(crate) async fn finish(&mut self, epoch: u64) -> Result<(Vec<Add>, u64), DeltaError> {
        let Some((mut files, rows)) = self.open.remove(&epoch) else {
            return Ok((Vec::new(), 0));
        };
        let finished = files.finish().await;
        Self::hand(&self.checks, &mut files);
        match finished {
            Ok(adds) => Ok((adds, rows - files.rejected_rows())),
            Err(e) => {
                // Keep the epoch's files for a retry, as the writer does.
                self.open.insert(epoch, (files, rows));
                Err(e.into())
            }
        }
    }
}

/// The report of an epoch of `rows` rows whose files are `adds`.
pub(crate) fn report(epoch: u64, rows: u64, adds: &[Add], outcome: EpochOutcome) -> EpochReport {
    EpochReport {
        epoch,
        rows,
        files: adds.len() as u64,
        bytes: adds.iter().map(|a| a.size.max(0) as u64).sum(),
        outcome,
        commit_latency: None,
    }
}
