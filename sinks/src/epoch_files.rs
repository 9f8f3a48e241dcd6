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
        })
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
                )?,
                0,
            )),
        };
        *count += rows.len() as u64;
        Ok(files.write(rows).await?)
    }

    /// Uploads the rest of `epoch`'s files: their `add`s and the epoch's row count (none
    /// and 0 if it had no rows).
    pub(crate) async fn finish(&mut self, epoch: u64) -> Result<(Vec<Add>, u64), DeltaError> {
        match self.open.remove(&epoch) {
            Some((mut files, rows)) => Ok((files.finish().await?, rows)),
            None => Ok((Vec::new(), 0)),
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
    }
}
