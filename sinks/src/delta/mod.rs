//! Delta Lake, named after the protocol: [`actions`] of the log, the [`log`] directory
//! and its put-if-absent commits, [`snapshot`] replay, table [`schema`]s, and the
//! [`table`] that ties them to an object store; reading a table back: its [`history`],
//! the [`layout`] of its files, and [`validate`] against the store.
//! Data files: [`writer`] (rows) over [`batch_writer`] (Arrow batches), and
//! [`reader`] back. Maintenance: [`optimize`] (bin-packing, or [`zorder`]) and the
//! [`skipping`] figure it improves.

pub mod actions;
pub mod auto_compact;
pub mod backoff;
pub mod batch_writer;
pub mod checkpoint;
pub mod cleanup;
pub mod commit;
pub mod history;
pub mod layout;
pub mod log;
pub mod optimize;
pub mod reader;
pub mod retention;
pub mod schema;
pub mod sink;
pub mod skipping;
pub mod snapshot;
pub mod stats;
pub mod store;
pub mod table;
#[cfg(test)]
mod testing;
pub mod vacuum;
pub mod validate;
pub mod writer;
pub mod zorder;

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
    /// A data file cannot be read, or its columns cannot be read as the table's.
    #[error("cannot read the data file {path}: {detail}")]
    ReadFile {
        /// The file's `add.path`.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// An operation's arguments cannot be used (an unknown column, a partition column
    /// to z-order by, …).
    #[error("{0}")]
    InvalidArgument(String),
    /// The table uses something an operation cannot handle (a column type, a feature).
    #[error("table {table}: {detail}")]
    Unsupported {
        /// The table.
        table: String,
        /// What, and which operation.
        detail: String,
    },
    /// A table property (`metaData.configuration`) has a value that cannot be used.
    #[error("table property {key} = {value:?}: {detail}")]
    InvalidProperty {
        /// The property, e.g. `delta.logRetentionDuration`.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A maintenance operation would be unsafe as asked, and did nothing.
    #[error("{operation} of {table} refused: {detail}")]
    Refused {
        /// The operation, e.g. `VACUUM`.
        operation: &'static str,
        /// The table.
        table: String,
        /// Why, and how to override if that is possible.
        detail: String,
    },
}
