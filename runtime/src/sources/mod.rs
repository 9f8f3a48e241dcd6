//! Sources: where records come from, split into partitions.
//!
//! A [`Source`] has a fixed number of partitions that does not depend on the worker
//! count, so the data, its order within each partition and therefore lateness are the
//! same for any number of workers. Each partition is read by one [`PartitionReader`],
//! which parses and validates records and hands them to an [`Emitter`]; the emitter
//! assigns the rule time (event or ingestion), applies the partition's
//! [`Watermark`] and collects dead letters.
//!
//! Sources are generic over the record type `R` a pipeline reads (a [`SourceRecord`]:
//! its event time, its check, and how each configured source decodes it); `R` is
//! [`Transaction`] unless said otherwise. Readers: [`generator`], [`walkthrough`],
//! [`csv`] and [`jsonl`] files of transactions (split into fixed byte ranges by
//! [`files`]), CSV and JSON-lines files of any serde record type ([`decoded`]),
//! [`kafka`] topics and [`delta`] tables.

pub mod csv;
pub mod decoded;
pub mod delta;
pub mod files;
pub mod generator;
pub mod jsonl;
pub mod kafka;
pub mod operator;
pub mod profiled;
mod progress;
pub mod record;
pub mod split_size;
mod synthetic;
pub mod validate;
pub mod walkthrough;

use std::path::PathBuf;

use tidelake_operators::time::tick_of;
use tidelake_operators::{Event, Transaction};

use crate::dead_letter::{DeadLetter, Reason};

pub use record::SourceRecord;

/// What a read left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// More input may be read right away.
    More,
    /// Nothing to read now (an unbounded source waiting for input, or a throttled rate).
    Idle,
    /// The partition cannot be read now (its server is unreachable). Unlike an idle
    /// partition, it keeps holding the watermark back: what it has not read yet is not
    /// late.
    Waiting,
    /// The partition is exhausted.
    Done,
}

/// A place in one source partition, where a restored job reads on from
/// (docs/checkpoints.md §2).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Position {
    /// The position of the next record: the byte offset of its line (files), or its
    /// index (generator, walkthrough), as records' `seq` numbers them.
    pub offset: u64,
    /// Line breaks read before `offset` in the partition (files; 0 for the others).
    pub lines: u64,
}

/// A source failure that stops the job (bad input never does: it goes to the dead letters).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A glob pattern is malformed.
    #[error("bad file pattern '{pattern}': {message}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A pattern or path matched no file.
    #[error("no input file matches '{0}'")]
    NoFiles(String),
    /// A source option is invalid.
    #[error("invalid source option: {0}")]
    Config(String),
    /// A Delta table cannot be read (a configuration error when
    /// [`DeltaError::is_configuration`](tidelake_sinks::delta::DeltaError::is_configuration)).
    #[error(transparent)]
    Table(#[from] tidelake_sinks::delta::DeltaError),
    /// The source cannot read on (a Delta table version it cannot follow).
    #[error("{0}")]
    Stopped(String),
    /// A server the source reads from cannot be reached.
    #[error("cannot reach {what}: {detail}")]
    Unreachable {
        /// What (the brokers, a topic partition).
        what: String,
        /// Why.
        detail: String,
    },
}

/// A source of records `R` with a fixed number of partitions.
pub trait Source<R = Transaction>: Send + Sync {
    /// The number of partitions (fixed for the source, whatever the worker count).
    fn partitions(&self) -> u32;
    /// True when every partition ends (files, a generator with a count).
    fn bounded(&self) -> bool;
    /// The name dead letters of `partition` carry as `source` (a file name, `generator`).
    fn source_name(&self, partition: u32) -> String;
    /// The partition number dead letters of `partition` carry: `partition` itself, or
    /// for a Kafka source the partition's number in its topic.
    fn dead_letter_partition(&self, partition: u32) -> u32 {
        partition
    }
    /// Opens a reader for `partition`.
    fn open(&self, partition: u32) -> Result<Box<dyn PartitionReader<R>>, SourceError>;
    /// What the source found when it opened that a run restored from a checkpoint, and
    /// every process of a cluster, must find the same (a Kafka topic's partition count:
    /// source partitions are numbered over the topics in order).
    fn settings(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Called, in the process that writes the checkpoints' manifests, when a checkpoint
    /// is complete, with where each partition resumes from it (`(partition, position)`).
    /// The Kafka source commits them as its consumer group's offsets, for lag
    /// monitoring; the job never reads them back.
    fn checkpoint_complete(&self, resume: &[(u32, Position)]) {
        let _ = resume;
    }
    /// What the job's summary should say about the source (an input named twice and
    /// read once, …).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Why the source cannot be read by a cluster of processes, if it cannot (a stream
    /// input: each process has its own stdin).
    fn single_process_only(&self) -> Option<String> {
        None
    }
    /// Opens a reader of `partition` that reads on from `position`, a
    /// [`PartitionReader::position`] of a reader of the same partition (a restored
    /// checkpoint's). Sources that cannot (a stream is read once) refuse.
    fn open_at(
        &self,
        partition: u32,
        position: Position,
    ) -> Result<Box<dyn PartitionReader<R>>, SourceError> {
        let _ = position;
        Err(SourceError::Config(format!(
            "{} cannot be read again from a checkpoint's position",
            self.source_name(partition)
        )))
    }
}

/// Reads one partition of records `R`.
pub trait PartitionReader<R = Transaction>: Send {
    /// The event time of the first record this reader will produce, if known without
    /// consuming it. The source uses it to bound the times a partition it has not read
    /// yet can produce, so that it need not hold the watermark at zero.
    fn first_ts(&mut self) -> Result<Option<u64>, SourceError> {
        Ok(None)
    }

    /// Reads up to `max` records (bad ones and blank lines included) into `emit`.
    fn read(&mut self, max: usize, emit: &mut Emitter<'_, R>) -> Result<ReadStatus, SourceError>;

    /// Where the next record will be read from, for checkpoints; `None` for a reader
    /// that cannot be opened there again ([`Source::open_at`]).
    fn position(&self) -> Option<Position> {
        None
    }

    /// True when the reader advances its partition's watermark itself
    /// ([`Emitter::advance_watermark`]) rather than by each record's event time: the
    /// Delta source, by its files' least event times.
    fn sets_watermark(&self) -> bool {
        false
    }

    /// While the partition is idle, an event time its later records are taken not to
    /// be older than (less the out-of-orderness bound): it holds the watermark there,
    /// from the moment it is idle, instead of letting go of it after the idle timeout.
    /// The Delta source gives the greatest least event time of the files of the
    /// versions it has read (as Spark's watermark is global over the table); `None`:
    /// the idle timeout applies.
    fn idle_hold(&self) -> Option<u64> {
        None
    }
}

/// The per-partition watermark of docs/semantics.md §2: the greatest event time read so far minus
/// the out-of-orderness bound.
#[derive(Clone, Debug)]
pub struct Watermark {
    max_ts: Option<u64>,
    bound: u64,
    /// How far behind the watermark a record may be and still be passed on, at the
    /// watermark's time (a pipeline's allowed lateness; 0 for most).
    lateness: u64,
    /// Records do not advance it: its reader does ([`Watermark::advance`]).
    explicit: bool,
}

impl Watermark {
    /// A watermark with out-of-orderness `bound` ms that has seen nothing.
    pub fn new(bound: u64) -> Self {
        Watermark {
            max_ts: None,
            bound,
            lateness: 0,
            explicit: false,
        }
    }

    /// This watermark, advanced by its reader ([`advance`](Self::advance)) rather than
    /// by the event times of the records it accepts.
    pub fn explicit(mut self) -> Self {
        self.explicit = true;
        self
    }

    /// Takes `ts` as an event time read: the watermark is at least `ts` less the bound.
    pub fn advance(&mut self, ts: u64) {
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
    }

    /// This watermark, passing on records up to `lateness` ms behind it.
    pub fn with_allowed_lateness(mut self, lateness: u64) -> Self {
        self.lateness = lateness;
        self
    }

    /// This watermark, as it was after reading records whose greatest event time is
    /// `max_ts` (a restored checkpoint's).
    pub fn restored(mut self, max_ts: Option<u64>) -> Self {
        self.max_ts = max_ts;
        self
    }

    /// The greatest event time read so far.
    pub fn max_ts(&self) -> Option<u64> {
        self.max_ts
    }

    /// The watermark, once a record has been read.
    pub fn current(&self) -> Option<u64> {
        self.max_ts.map(|m| m.saturating_sub(self.bound))
    }

    /// The out-of-orderness bound (ms).
    pub fn bound(&self) -> u64 {
        self.bound
    }

    /// The allowed lateness (ms).
    pub fn lateness(&self) -> u64 {
        self.lateness
    }

    /// Accepts `ts` and advances, returning the rule time of the record: `ts`, or the
    /// watermark for a record below it by no more than the allowed lateness. Returns
    /// the watermark a record further below it is late to.
    #[inline]
    pub fn observe(&mut self, ts: u64) -> Result<u64, u64> {
        match self.current() {
            Some(wm) if ts < wm => match ts.saturating_add(self.lateness) >= wm {
                true => Ok(wm),
                false => Err(wm),
            },
            _ => {
                if !self.explicit {
                    self.advance(ts);
                }
                Ok(ts)
            }
        }
    }
}

/// How the rule time of a record is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleTime {
    /// The record's event time `ts`.
    Event,
    /// The wall-clock time (ms) at which this batch was read.
    Ingestion(u64),
}

/// What readers produce in one call: events, dead letters and blank lines.
#[derive(Debug)]
pub struct ReadBatch<R = Transaction> {
    /// Records accepted, with rule time and position.
    pub events: Vec<Event<R>>,
    /// Records rejected.
    pub dead_letters: Vec<DeadLetter>,
    /// Blank lines skipped.
    pub blank_lines: u64,
}

impl<R> Default for ReadBatch<R> {
    fn default() -> Self {
        ReadBatch {
            events: Vec::new(),
            dead_letters: Vec::new(),
            blank_lines: 0,
        }
    }
}

/// A record the watermark rejected: say so with [`Emitter::reject`] and reason
/// [`Reason::Late`], passing `detail`.
#[derive(Debug)]
pub struct Late {
    /// The sentence for the dead letter's `detail`.
    pub detail: String,
}

/// Where a [`PartitionReader`] puts records, rejects and blank lines.
pub struct Emitter<'a, R = Transaction> {
    source: &'a str,
    partition: u32,
    time: RuleTime,
    watermark: &'a mut Watermark,
    /// No record may be emitted at a tick below this (the worker's capability).
    floor: u64,
    tick: u64,
    out: &'a mut ReadBatch<R>,
    replay: Option<Replay>,
}

/// What a restored partition reads again (docs/checkpoints.md §3): records before
/// `until` whose rule time is below `boundary` are in the restored state already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The position up to which (exclusive) records were read before the checkpoint.
    pub until: u64,
    /// The checkpoint's rule time.
    pub boundary: u64,
}

impl<'a, R: SourceRecord> Emitter<'a, R> {
    /// An emitter for `partition` of `source`, adding to `out`.
    pub fn new(
        source: &'a str,
        partition: u32,
        time: RuleTime,
        watermark: &'a mut Watermark,
        floor: u64,
        tick: u64,
        out: &'a mut ReadBatch<R>,
    ) -> Self {
        Emitter {
            source,
            partition,
            time,
            watermark,
            floor,
            tick,
            out,
            replay: None,
        }
    }

    /// This emitter, leaving out the records `replay` says are in the restored state.
    pub fn replaying(mut self, replay: Option<Replay>) -> Self {
        self.replay = replay;
        self
    }

    /// Emits a valid record at position `seq`, unless it is late.
    #[inline]
    pub fn record(&mut self, seq: u64, record: R) -> Result<(), Late> {
        let ts = record.event_time();
        let time = match self.time {
            RuleTime::Event => match self.watermark.observe(ts) {
                Ok(time) => time,
                Err(wm) => {
                    let lateness = match self.watermark.lateness() {
                        0 => String::new(),
                        l => format!(", allowed lateness {l} ms"),
                    };
                    return Err(Late {
                        detail: format!(
                            "ts {} is below the partition's watermark {} (out-of-orderness {} ms{lateness})",
                            ts,
                            wm,
                            self.watermark.bound()
                        ),
                    });
                }
            },
            RuleTime::Ingestion(now) => now,
        };
        if let Some(replay) = self.replay
            && seq < replay.until
            && time < replay.boundary
        {
            return Ok(());
        }
        if tick_of(time, self.tick) < self.floor {
            return Err(Late {
                detail: format!(
                    "ts {} is below the source's watermark {} (the partition was idle and stopped holding it)",
                    time, self.floor
                ),
            });
        }
        self.out
            .events
            .push(Event::new(time, self.partition, seq, record));
        Ok(())
    }

    /// Sends a bad record to the dead letters.
    pub fn reject(
        &mut self,
        position: u64,
        line: Option<u64>,
        raw: &[u8],
        reason: Reason,
        detail: String,
    ) {
        self.out.dead_letters.push(DeadLetter::new(
            self.source,
            self.partition,
            position,
            line,
            reason,
            detail,
            raw,
        ));
    }

    /// Advances the partition's watermark to `ts` less its bound, for a reader that
    /// sets its watermark ([`PartitionReader::sets_watermark`]).
    pub fn advance_watermark(&mut self, ts: u64) {
        self.watermark.advance(ts);
    }

    /// Counts a skipped blank line.
    pub fn blank_line(&mut self) {
        self.out.blank_lines += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_lateness_is_strict() {
        let mut wm = Watermark::new(0);
        assert_eq!(wm.observe(10), Ok(10));
        assert_eq!(wm.observe(10), Ok(10), "equal is on time");
        assert_eq!(wm.observe(9), Err(10));
        let mut wm = Watermark::new(5);
        assert_eq!(wm.observe(10), Ok(10));
        assert_eq!(wm.observe(5), Ok(5));
        assert_eq!(wm.observe(4), Err(5));
        assert_eq!(wm.current(), Some(5));
    }

    #[test]
    fn records_within_the_allowed_lateness_are_passed_on_at_the_watermark() {
        let mut wm = Watermark::new(5).with_allowed_lateness(3);
        assert_eq!(wm.observe(10), Ok(10));
        assert_eq!(
            wm.observe(2),
            Ok(5),
            "3 behind the watermark: at the watermark"
        );
        assert_eq!(wm.observe(1), Err(5));
        assert_eq!(wm.current(), Some(5), "a late record does not move it");
    }

    #[test]
    fn emitter_sends_late_records_back() {
        let mut wm = Watermark::new(0);
        let mut out = ReadBatch::default();
        let mut emit = Emitter::new("s", 3, RuleTime::Event, &mut wm, 0, 100, &mut out);
        assert!(emit.record(0, Transaction::new("a", 500, 1.0)).is_ok());
        let late = emit
            .record(1, Transaction::new("a", 499, 1.0))
            .expect_err("late");
        emit.reject(1, Some(2), b"a,499,1.0", Reason::Late, late.detail);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].order(), (500, 3, 0));
        assert_eq!(out.dead_letters[0].reason, Reason::Late);
    }
}
