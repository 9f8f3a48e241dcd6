//! Checkpoints: what a job writes so that it can restart where it was after a crash
//! (docs/checkpoints.md).
//!
//! A checkpoint at rule time `B` has one [`Part`] per worker — the positions of the
//! worker's source partitions, the keyed state and pending timers of each of its
//! operators by key group, and the lengths of the job's output files — and a
//! [`Manifest`], written last, that names every part with its size and checksum. Parts
//! without a manifest are never restored. [`format`] is the versioned binary encoding
//! of both; [`store`] reads and writes them through `object_store`, so a local
//! directory and S3 both work.

pub(crate) mod collector;
pub(crate) mod dataflow;
pub mod format;
pub(crate) mod process;
pub mod restore;
pub(crate) mod stop;
pub mod store;
mod writer;

use serde::{Deserialize, Serialize};

pub use tidelake_operators::snapshot::GroupSnapshot;

pub use crate::sources::Position;
pub use format::FORMAT_VERSION;
pub use process::Taken;
pub use store::{CheckpointStore, Contents, Listing, Status};

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint location is not a usable URL or directory.
    #[error("checkpoint location {url}: {message}")]
    Location {
        /// The location as given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The store failed.
    #[error("checkpoint store error at {path}: {source}")]
    Store {
        /// The object.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A file exists already (checkpoint files are written put-if-absent).
    #[error("checkpoint file {0} exists already")]
    Exists(String),
    /// A file is not a checkpoint file of this format, or is damaged.
    #[error("checkpoint file {file} is unreadable: {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A file was written by a newer tidelake.
    #[error(
        "checkpoint file {file} has format version {version}; this tidelake reads up to {}",
        FORMAT_VERSION
    )]
    FutureVersion {
        /// The file.
        file: String,
        /// Its format version.
        version: u32,
    },
    /// A manifest names a part that is missing or differs from what it recorded.
    #[error("checkpoint {id}: part {file} {problem}")]
    BadPart {
        /// The checkpoint.
        id: u64,
        /// The part's file.
        file: String,
        /// What is wrong (missing, size, checksum).
        problem: String,
    },
}

/// Where a checkpoint is in rule time, in words: `rule time 2024-01-01T00:00:10.000Z`,
/// or `the end of the input` for the checkpoint of a job that has read and run
/// everything (rule time `u64::MAX`).
pub fn at_rule_time(rule_time: u64) -> String {
    match rule_time {
        u64::MAX => "the end of the input".to_owned(),
        t => format!("rule time {}", tidelake_operators::time::format_millis(t)),
    }
}

/// Whether a checkpoint was taken while the job ran or when it was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Taken periodically while the job ran; restored after a crash.
    Checkpoint,
    /// Taken when the job was stopped (Ctrl-C, SIGTERM), after every sink committed.
    Savepoint,
}

impl Kind {
    /// `checkpoint` or `savepoint`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Checkpoint => "checkpoint",
            Kind::Savepoint => "savepoint",
        }
    }
}

/// The workers that wrote a checkpoint, and its key groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Processes of the cluster (1 for one process).
    pub processes: u32,
    /// Worker threads per process.
    pub workers: u32,
    /// Key groups keyed state is sharded into (`--max-parallelism`).
    pub key_groups: u32,
}

impl Layout {
    /// Workers over all processes.
    pub fn peers(&self) -> u32 {
        self.processes * self.workers
    }
}

/// One part of a checkpoint as its manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    /// The global index of the worker that wrote it.
    pub worker: u32,
    /// Its file name inside the checkpoint directory's `parts/`.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// The CRC-32C of the whole file.
    pub crc32c: u32,
    /// Its place among the parts in the file (a worker writes the parts it has ready at
    /// once in one file).
    pub index: u32,
    /// The boundaries it holds the state of: `(lo, hi]`.
    pub range: (u64, u64),
}

/// A part that is durable, as the manifest operator receives it: its entry, and where
/// each of its source partitions resumes (not in the manifest; handed to the source
/// once a checkpoint holding the part is complete, [`Source::checkpoint_complete`]).
///
/// [`Source::checkpoint_complete`]: crate::sources::Source::checkpoint_complete
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurablePart {
    /// The part's entry.
    pub entry: PartEntry,
    /// `(source partition, resume position)` of each of the worker's partitions.
    pub resume: Vec<(u32, crate::sources::Position)>,
}

/// The manifest of a complete checkpoint: written last, put-if-absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The checkpoint's id: 1, 2, … in the order the job took them.
    pub id: u64,
    /// Checkpoint or savepoint.
    pub kind: Kind,
    /// The job that wrote it.
    pub job_id: String,
    /// The run of the job that wrote it (docs/checkpoints.md §4): one more than any run
    /// before it in the directory.
    pub attempt: u64,
    /// Rule time `B` (ms): the state holds the effect of every record and timer before
    /// it, and nothing at or after it.
    pub rule_time: u64,
    /// When the manifest was written (ms since the Unix epoch).
    pub created_ms: i64,
    /// The job's settings (source, rule, tick, tables…), as `(flag, value)`: a restart
    /// with different ones is refused.
    pub settings: Vec<(String, String)>,
    /// The workers that wrote it.
    pub layout: Layout,
    /// One part per worker, by worker index.
    pub parts: Vec<PartEntry>,
}

impl Manifest {
    /// Bytes of its parts.
    pub fn parts_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }
}

/// What a checkpoint records of one source partition (docs/checkpoints.md §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The partition.
    pub partition: u32,
    /// Where a restore reads from: no record before it has a rule time at or after the
    /// checkpoint's.
    pub resume: Position,
    /// The greatest event time read before `resume`, if any: the partition's watermark
    /// there.
    pub max_ts: Option<u64>,
    /// How far the partition had been read when the source passed the checkpoint:
    /// records before it made their dead letters already, and every record after it
    /// has a rule time at or after the checkpoint's.
    pub read_until: Position,
    /// True when the partition had been read to its end.
    pub done: bool,
}

/// The keyed state of one operator of the pipeline on one worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorState {
    /// The operator's name and place in the pipeline (`FraudDetector#0`).
    pub operator: String,
    /// Its non-empty key groups, in group order.
    pub groups: Vec<GroupSnapshot>,
}

/// How much of an output file a checkpoint covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLength {
    /// The output (`alerts`, `dead letters`, `enriched`).
    pub output: String,
    /// Bytes of it written for rule times before the checkpoint's.
    pub bytes: u64,
    /// Lines in those bytes.
    pub lines: u64,
}

/// One worker's part of a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The global index of the worker.
    pub worker: u32,
    /// The boundaries `(lo, hi]` this part holds the state of: the worker's state was
    /// the same for all of them.
    pub range: (u64, u64),
    /// The worker's source partitions.
    pub sources: Vec<PartitionState>,
    /// The keyed state of each of its operators.
    pub operators: Vec<OperatorState>,
    /// The output files it writes (worker 0 writes the job's).
    pub outputs: Vec<OutputLength>,
}

impl Part {
    /// Keys held over every operator of the part.
    pub fn keys(&self) -> u64 {
        self.groups().map(|g| g.keys).sum()
    }

    /// Pending timers over every operator of the part.
    pub fn timers(&self) -> u64 {
        self.groups().map(|g| g.timers).sum()
    }

    fn groups(&self) -> impl Iterator<Item = &GroupSnapshot> {
        self.operators.iter().flat_map(|o| o.groups.iter())
    }
}
