//! Delta Lake, named after the protocol. The module map, by concern:
//!
//! - [`protocol`]: the log and how it is read and written — [`actions`](protocol::actions),
//!   the [`log`](protocol::log) directory and its put-if-absent commits, the writers'
//!   [`snapshot`](protocol::snapshot) replay, [`checkpoint`](protocol::checkpoint)s, the
//!   readers' snapshots through the Delta Kernel ([`kernel`](protocol::kernel)), table
//!   [`schema`](protocol::schema)s, [`retention`](protocol::retention) properties, which
//!   [`features`](protocol::features) each operation implements, the
//!   [`commit_loop`](protocol::commit_loop) every commit retries in, and the
//!   [`table`](protocol::table) that ties them to an object [`store`](protocol::store).
//! - [`files`]: the data files — the per-worker epoch [`sink`](files::sink), its
//!   exactly-once [`commit`](files::commit)s with their [`job_identity`](files::job_identity),
//!   the [`constraints`](files::constraints) every row must pass, and the
//!   [`reader`](files::reader) of data files; the encoding is the
//!   [Parquet layer](crate::parquet), each file becoming an [`Add`].
//! - [`maintenance`]: [`optimize`](maintenance::optimize) (bin-packing, or
//!   [`zorder`](maintenance::zorder)), [`auto_compact`](maintenance::auto_compact),
//!   [`vacuum`](maintenance::vacuum) and log [`cleanup`](maintenance::cleanup).
//! - [`inspection`]: the [`history`](inspection::history), the
//!   [`layout`](inspection::layout) of the files, the [`skipping`](inspection::skipping)
//!   figure, and [`validate`](inspection::validate) against the store.
//!
//! What the Delta Kernel does and what stays hand-written: `docs/delta-kernel.md`.

pub mod files;
pub mod inspection;
pub mod maintenance;
pub mod protocol;
#[cfg(test)]
mod testing;

pub use protocol::actions::{Action, Add, CommitInfo, Metadata, Protocol, Remove, Txn};
pub use protocol::log::CommitOutcome;
pub use protocol::schema::Schema;
pub use protocol::snapshot::Snapshot;
pub use protocol::table::DeltaTable;

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
    DataFile(#[from] crate::parquet::WriterError),
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
    /// A job id that committed to the table before did so with other settings, so this
    /// run would commit its rows in other epochs or by other writers (see
    /// [`job_identity`](files::job_identity)).
    #[error(
        "table {table}: job id {job_id} committed to it (last at version {version}) with other settings, so a run with these settings would skip or repeat other rows than it committed: {differences}. Run it with the settings it had, or give it a new --job-id"
    )]
    JobMismatch {
        /// The table.
        table: String,
        /// The job id.
        job_id: String,
        /// The newest version recording the job's settings.
        version: u64,
        /// Each differing setting with both values.
        differences: String,
    },
    /// A job id that committed to the table before left no record of its settings
    /// in the log, so they cannot be compared (see [`job_identity`](files::job_identity)).
    #[error(
        "table {table}: job id {job_id} committed to it ({writers} writer(s) have a txn), but no commit left in the log records the settings it ran with (log cleanup removed them, or an older tidelake wrote them), so tidelake cannot tell whether this run would skip exactly the rows it committed; give it a new --job-id"
    )]
    JobUnverifiable {
        /// The table.
        table: String,
        /// The job id.
        job_id: String,
        /// How many of its writers have a txn.
        writers: usize,
    },
    /// A job id that committed to the table before ran in ingestion time, whose epochs
    /// a new run cannot reproduce (see [`job_identity`](files::job_identity)).
    #[error(
        "table {table}: job id {job_id} committed to it in ingestion time (--time ingestion), where a record's epoch is the wall clock when it was read; a new run reads its input at other times, so it cannot skip exactly the rows that are committed already; give it a new --job-id"
    )]
    JobNotReplayable {
        /// The table.
        table: String,
        /// The job id.
        job_id: String,
    },
    /// A table uses a feature of the Delta protocol (a reader or writer feature, or a
    /// legacy protocol version's) that an operation does not implement (see
    /// [`features`](protocol::features)).
    #[error("table {table} uses {feature}, which {operation} does not implement: {detail}")]
    UnsupportedFeature {
        /// The table.
        table: String,
        /// The feature, e.g. `the writer feature deletionVectors`.
        feature: String,
        /// The operation, e.g. `appending`.
        operation: &'static str,
        /// Why, or what to do.
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
    /// Z-ordering a partition failed to sort its rows (its spill files included).
    #[error("cannot z-order table {table}, partition {partition}: {source}")]
    Sort {
        /// The table.
        table: String,
        /// The partition's values.
        partition: String,
        /// Why.
        source: crate::delta::maintenance::external_sort::SortError,
    },
    /// The error of a commit made for several writers at once (a
    /// [`group_commit`](files::group_commit)), as each of them gets it.
    #[error(transparent)]
    Shared(std::sync::Arc<DeltaError>),
}

impl DeltaError {
    /// True when the error says the table does not fit the job or the operation (another
    /// schema, an unimplemented feature, other job settings, a property that does not
    /// parse, a store without put-if-absent): a configuration error (exit code 2), not
    /// a failure of the store or the job.
    pub fn is_configuration(&self) -> bool {
        if let DeltaError::Shared(error) = self {
            return error.is_configuration();
        }
        matches!(
            self,
            DeltaError::SchemaMismatch { .. }
                | DeltaError::Unsupported { .. }
                | DeltaError::UnsupportedFeature { .. }
                | DeltaError::Url { .. }
                | DeltaError::InvalidProperty { .. }
                | DeltaError::InvalidArgument(_)
                | DeltaError::Refused { .. }
                | DeltaError::JobMismatch { .. }
                | DeltaError::JobUnverifiable { .. }
                | DeltaError::JobNotReplayable { .. }
        )
    }
}
