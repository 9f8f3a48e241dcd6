//! The data files of each epoch a sink has open: one [`DataFileWriter`] per epoch, and
//! its row count. Shared by the Delta sink and the Parquet file sink, which differ only
//! in what they do with an epoch's files once it is sealed.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;

use crate::clock::{Clock, SharedClock};
use crate::delta::DeltaError;
use crate::delta::files::constraints::Constraints;
use crate::epochs::{EpochOutcome, EpochReport};
use crate::parquet::{
    ArrowRows, DataFile, DataFileWriter, Rejected, RowRules, WriterOptions, rejected_rows,
};

/// The open epochs' files under one root; see the [module docs](self). Files are kept
/// by a key: an epoch, or a batch of epochs committed together.
pub(crate) struct EpochFiles<R: ArrowRows> {
    store: Arc<dyn ObjectStore>,
    root: Path,
    writer_index: usize,
    options: WriterOptions,
    /// The files of each key, and the rows they hold.
    open: BTreeMap<u64, (DataFileWriter<R>, u64)>,
    /// Modification times and file ids.
    clock: SharedClock,
    /// The table's rules, if rows are checked.
    checks: Option<Arc<Constraints>>,
    /// Names files by key (an epoch) from this seed instead of by fresh ids.
    epoch_names: Option<String>,
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
            epoch_names: None,
        })
    }

    /// Names each epoch's files from `seed`, the epoch and their order in it, so that
    /// writing the same rows of an epoch again gives the same file names (see
    /// [`EpochNames`]).
    pub(crate) fn with_epoch_names(mut self, seed: String) -> Self {
        self.epoch_names = Some(seed);
        self
    }

    /// Checks every row against `constraints` before it is written, keeping the rows
    /// that break one out of the files (see [`crate::delta::files::constraints`]);
    /// [`write`](Self::write) returns them.
    pub(crate) fn with_constraints(mut self, constraints: Arc<Constraints>) -> Self {
        self.checks = (!constraints.is_empty()).then_some(constraints);
        self
    }

    /// The rows of `rows` that break the rules, found without writing them (the table
    /// holds their epoch already).
    pub(crate) fn check_only(&self, rows: &[R]) -> Result<Vec<Rejected>, DeltaError> {
        match &self.checks {
            Some(rules) => Ok(rejected_rows(rows, rules.as_ref())?),
            None => Ok(Vec::new()),
        }
    }

    /// Writes `rows` into the files of `key` (files that reach the target size are
    /// uploaded); returns the rows the rules kept out.
    pub(crate) async fn write(
        &mut self,
        key: u64,
        rows: &[R],
    ) -> Result<Vec<Rejected>, DeltaError> {
        let (files, count) = match self.open.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert((
                DataFileWriter::new(
                    self.store.clone(),
                    self.root.clone(),
                    self.writer_index,
                    self.options.clone(),
                )?
                .with_clock(match &self.epoch_names {
                    Some(seed) => Arc::new(EpochNames::new(seed, key)),
                    None => self.clock.clone(),
                })
                .with_rules(
                    self.checks
                        .as_ref()
                        .map(|c| Arc::clone(c) as Arc<dyn RowRules>),
                ),
                0,
            )),
        };
        files.write(rows).await?;
        let rejected = match self.checks {
            // Checked now, so that each row kept out is known with its epoch.
            Some(_) => files.encode_buffered().map(|()| files.take_rejected())?,
            None => Vec::new(),
        };
        *count += (rows.len() - rejected.len()) as u64;
        Ok(rejected)
    }

    /// Bytes the files of `key` hold so far (encoded, not counting rows still
    /// buffered).
    pub(crate) fn bytes(&self, key: u64) -> u64 {
        self.open.get(&key).map_or(0, |(files, _)| files.bytes())
    }

    /// Uploads the rest of `key`'s files: its files and the rows they hold (none and 0
    /// if it had no rows; rows the table's rules kept out are not counted).
    pub(crate) async fn finish(&mut self, key: u64) -> Result<(Vec<DataFile>, u64), DeltaError> {
        let Some((mut files, rows)) = self.open.remove(&key) else {
            return Ok((Vec::new(), 0));
        };
        match files.finish().await {
            Ok(written) => Ok((written, rows)),
            Err(e) => {
                // Keep the files for a retry, as the writer does.
                self.open.insert(key, (files, rows));
                Err(e.into())
            }
        }
    }
}

/// The system's time, and file ids that depend only on a seed, an epoch and how many
/// ids came before in it: a writer that writes an epoch's rows again names its files
/// as it did the first time.
#[derive(Debug)]
pub(crate) struct EpochNames {
    seed: u64,
    count: std::sync::atomic::AtomicU64,
}

impl EpochNames {
    fn new(seed: &str, epoch: u64) -> Self {
        let seed = xxhash_rust::xxh3::xxh3_64(format!("{seed}/{epoch}").as_bytes());
        EpochNames {
            seed,
            count: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Clock for EpochNames {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn new_id(&self) -> uuid::Uuid {
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.seed.to_be_bytes());
        bytes[8..].copy_from_slice(&xxhash_rust::xxh3::xxh3_64(&n.to_be_bytes()).to_be_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
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
        ..EpochReport::empty(epoch)
    }
}
