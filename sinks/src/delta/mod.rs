//! Delta Lake, named after the protocol: [`actions`] of the log, the [`log`] directory
//! and its put-if-absent commits, [`snapshot`] replay, table [`schema`]s, and the
//! [`table`] that ties them to an object store.

pub mod actions;
pub mod log;
pub mod schema;
pub mod snapshot;
pub mod table;

pub use actions::{Action, Add, CommitInfo, Metadata, Protocol, Remove, Txn};
pub use log::CommitOutcome;
pub use schema::Schema;
pub use snapshot::Snapshot;
pub use table::DeltaTable;

/// A Delta table operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// The object store failed.
    #[error("object store error at {path}: {source}")]
    Store {
        /// The object.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A commit file does not parse.
    #[error("commit version {version}, line {line}: {detail}")]
    InvalidCommit {
        /// The commit.
        version: u64,
        /// 1-based line (0: the whole file).
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// The log is not a valid Delta log.
    #[error("corrupt Delta log: {0}")]
    Corrupt(String),
    /// The earliest commit left is not version 0, so the state must come from a Parquet
    /// checkpoint.
    #[error(
        "the log starts at version {version}: reading Parquet checkpoints is the next step of the Delta sink"
    )]
    CheckpointRequired {
        /// The earliest commit in the log.
        version: u64,
    },
    /// The table exists with another schema or partitioning.
    #[error("table {table} does not match what this job writes: {detail}")]
    SchemaMismatch {
        /// The table.
        table: String,
        /// The columns that differ.
        detail: String,
    },
    /// A table URL cannot be used.
    #[error("cannot open table {url}: {message}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
}
