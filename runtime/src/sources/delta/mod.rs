//! The Delta streaming source (docs/delta-source.md): a Delta table — written by
//! tidelake, delta-rs or Spark — read as a stream, as `spark.readStream.format("delta")`
//! reads it.
//!
//! The source reads the table's snapshot at start (or, from `--starting-version` /
//! `--starting-timestamp`, the changes of that version and later ones), then, with
//! `--follow`, every new version. Only `add`s with `dataChange=true` are new rows:
//! OPTIMIZE, Z-order and auto-compaction rewrites are never read again; a version that
//! removes rows fails the job unless `--ignore-deletes` skips it. Files are spread over
//! `--source-partitions` by a hash of their path ([`log`]), each partition reads its
//! files in log order ([`reader`]), and rows become records by their columns
//! ([`decode`]).

pub mod decode;
mod log;
mod reader;

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tidelake_operators::Transaction;

use self::decode::Decoder;
use self::log::TableLog;
use self::reader::{DeltaReader, Place};
use super::record::short_type_name;
use super::{PartitionReader, Position, Source, SourceError, SourceRecord};

/// The setting recording where a Delta source started (`snapshot at version N`, or
/// `version N`): part of the job's settings, but not compared when a checkpoint is
/// restored, since the positions it restores carry it.
pub const START_SETTING: &str = "Delta source start";

/// Default number of source partitions.
pub const DEFAULT_PARTITIONS: u32 = 16;

/// Where a Delta source starts without a checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeltaStart {
    /// The table's snapshot at start, then the versions after it.
    #[default]
    Snapshot,
    /// The changes of this version (inclusive) and the later ones.
    Version(u64),
    /// The changes of the first version committed at or after this time (ms).
    Timestamp(u64),
}

/// How the Delta source reads.
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaConfig {
    /// The table: a path or URL.
    pub table: String,
    /// Where to start.
    pub start: DeltaStart,
    /// Read new versions as they are committed; otherwise stop at the version found at
    /// start.
    pub follow: bool,
    /// How often to look for a new version while following.
    pub poll_interval: Duration,
    /// Skip versions that remove rows, rather than fail.
    pub ignore_deletes: bool,
    /// Source partitions the table's files are spread over.
    pub partitions: u32,
}

impl DeltaConfig {
    /// Reading `table` from its snapshot, without following.
    pub fn new(table: impl Into<String>) -> Self {
        DeltaConfig {
            table: table.into(),
            start: DeltaStart::Snapshot,
            follow: false,
            poll_interval: Duration::from_secs(1),
            ignore_deletes: false,
            partitions: DEFAULT_PARTITIONS,
        }
    }
}

/// The Delta source of records `R`: see the [module docs](self).
pub struct DeltaSource<R = Transaction> {
    config: DeltaConfig,
    log: Arc<TableLog>,
    /// Where every partition starts without a checkpoint.
    first: Place,
    /// The last version a bounded source reads.
    end: Option<u64>,
    decoder: Decoder<R>,
}

impl DeltaSource {
    /// The source of transactions (see [`decode`]).
    pub fn new(config: DeltaConfig) -> Result<Self, SourceError> {
        DeltaSource::open(config, decode::transactions())
    }
}

impl<R: SourceRecord + DeserializeOwned> DeltaSource<R> {
    /// The source of a pipeline's own record type, decoded from each row's columns.
    pub fn decoded(config: DeltaConfig) -> Result<Self, SourceError> {
        DeltaSource::open(config, decode::records::<R>())
    }
}

impl<R> DeltaSource<R> {
    /// Opens the table, checks that it can be read as `R`, and finds where to start
    /// and (without `--follow`) end.
    fn open(config: DeltaConfig, decoder: Decoder<R>) -> Result<Self, SourceError> {
        if config.partitions == 0 {
            return Err(SourceError::Config(
                "--source-partitions must be at least 1".to_owned(),
            ));
        }
        let runtime = io_runtime()?;
        let log = runtime.block_on(TableLog::open(
            &config.table,
            config.partitions,
            config.ignore_deletes,
            config.poll_interval,
        ))?;
        let newest = log.newest();
        if let Some(problem) = (decoder.check)(&log.reading_schema().arrow) {
            return Err(SourceError::Config(format!(
                "table {} (version {newest}) cannot be read as {} records: {problem}",
                config.table,
                short_type_name::<R>()
            )));
        }
        let first = match config.start {
            DeltaStart::Snapshot => Place::start(newest, true),
            DeltaStart::Version(version) => Place::start(version, false),
            DeltaStart::Timestamp(ms) => {
                let version = runtime
                    .block_on(log.table.first_version_at(ms))?
                    .unwrap_or(newest + 1);
                Place::start(version, false)
            }
        };
        Ok(DeltaSource {
            end: (!config.follow).then_some(newest),
            config,
            log: Arc::new(log),
            first,
            decoder,
        })
    }

    fn reader(&self, partition: u32, place: Place) -> Result<DeltaReader<R>, SourceError> {
        if partition >= self.config.partitions {
            return Err(SourceError::Config(format!(
                "partition {partition} does not exist (the source has {})",
                self.config.partitions
            )));
        }
        Ok(DeltaReader {
            log: Arc::clone(&self.log),
            runtime: io_runtime()?,
            partition,
            decoder: self.decoder,
            end: self.end,
            place,
            unit: None,
            file: None,
            passed: None,
        })
    }
}

/// The runtime a reader does its I/O on.
fn io_runtime() -> Result<tokio::runtime::Runtime, SourceError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Config(format!("cannot start an I/O runtime: {e}")))
}

impl<R: SourceRecord> Source<R> for DeltaSource<R> {
    fn partitions(&self) -> u32 {
        self.config.partitions
    }

    fn bounded(&self) -> bool {
        !self.config.follow
    }

    fn source_name(&self, partition: u32) -> String {
        let _ = partition;
        format!("Delta table {}", self.config.table)
    }

    fn open(&self, partition: u32) -> Result<Box<dyn PartitionReader<R>>, SourceError> {
        Ok(Box::new(self.reader(partition, self.first)?))
    }

    fn open_at(
        &self,
        partition: u32,
        position: Position,
    ) -> Result<Box<dyn PartitionReader<R>>, SourceError> {
        Ok(Box::new(self.reader(partition, Place::of(position))?))
    }

    fn settings(&self) -> Vec<(String, String)> {
        let start = match self.first.snapshot {
            true => format!("snapshot at version {}", self.first.version),
            false => format!("version {}", self.first.version),
        };
        vec![(START_SETTING.to_owned(), start)]
    }

    fn notes(&self) -> Vec<String> {
        vec![format!(
            "Delta source {}: newest version seen {}",
            self.config.table,
            self.log.newest()
        )]
    }
}
