//! Delta Lake, named after the protocol: [`actions`] of the log, the [`log`] directory
//! and its put-if-absent commits, [`snapshot`] replay, table [`schema`]s, and the
//! [`table`] that ties them to an object store; reading a table back: its [`history`],
//! the [`layout`] of its files, and [`validate`] against the store.

pub mod actions;
pub mod checkpoint;
pub mod commit;
pub mod history;
pub mod layout;
pub mod log;
pub mod schema;
pub mod sink;
pub mod snapshot;
pub mod stats;
pub mod store;
pub mod table;
#[cfg(test)]
mod testing;
pub mod validate;
pub mod writer;

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
    /// A Parquet checkpoint (or `_last_checkpoint`) cannot be written or read.
    #[error("checkpoint {path}: {detail}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// What is wrong.
        detail: String,
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
    /// A concurrent commit conflicts with ours, or committing kept losing races.
    #[error("cannot commit to {table} (at version {version}): {detail}")]
    Conflict {
        /// The table.
        table: String,
        /// The version where the conflict was seen.
        version: u64,
        /// What happened.
        detail: String,
    },
    /// A data file could not be written.
    #[error(transparent)]
    DataFile(#[from] writer::WriterError),
}
