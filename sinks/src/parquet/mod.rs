//! Parquet data files: rows or Arrow batches in, complete files uploaded to an object
//! store, and what a table log records of each out. Knows nothing of Delta: the
//! [`delta`](crate::delta) writer, the [Parquet file sink](crate::parquet_files) and the
//! [epoch files](crate::epochs) build on it.
//!
//! - [`rows`]: the trait of records that append themselves to Arrow builders.
//! - [`file_writer`]: rows in, one open file per partition, rows checked against the
//!   caller's [`RowRules`] first.
//! - [`batch_writer`]: Arrow batches of a schema known at run time in, the files out as
//!   [`DataFile`]s with their exact [`stats`].
//! - [`splice`]: files of one schema joined by copying their row groups (OPTIMIZE).
//! - [`paths`]: how files are laid out and named, and the two layers of escaping.
//! - [`options`]: target size, codec and batch size.
//!
//! The files follow `shared/notes/delta-writer.md` §5: data page V1, zstd by default
//! (snappy on request), dictionary encoding (parquet's default) for every column but
//! timestamps, which are delta-encoded (`DELTA_BINARY_PACKED`: event times rise almost
//! in order, so their differences take a few bits each) and stored as the Arrow schema
//! gives them (`Timestamp(Microsecond, "UTC")` becomes
//! INT64 `TIMESTAMP(MICROS, isAdjustedToUTC=true)`), partition columns left out.

pub mod batch_writer;
pub mod file_writer;
pub mod options;
pub mod paths;
pub mod rows;
pub mod splice;
pub mod stats;

use arrow::error::ArrowError;

pub use batch_writer::{BatchFileWriter, DataFile};
pub use file_writer::{DataFileWriter, Rejected, RowRules, rejected_rows};
pub use options::{Codec, WriterOptions};
pub use paths::{NULL_PARTITION, PartitionSpec, data_file_location, hive_escape, log_escape};
pub use rows::ArrowRows;

/// Writing data files failed.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The options cannot be used.
    #[error("invalid data file writer options: {0}")]
    Options(String),
    /// The row type built an invalid batch.
    #[error(
        "building the Arrow batch for {path} failed: {source}; the row type's ArrowRows implementation is wrong"
    )]
    Arrow {
        /// The partition of the rows (`col=value/…`).
        path: String,
        /// Arrow's error.
        source: ArrowError,
    },
    /// Parquet encoding failed; the writer cannot be used any more.
    #[error("encoding the Parquet file {path} failed: {source}")]
    Parquet {
        /// The data file (relative to the root, as stored).
        path: String,
        /// Parquet's error.
        source: ::parquet::errors::ParquetError,
    },
    /// Checking rows against the caller's rules failed (not: a row broke one).
    #[error("checking rows against the table's constraints failed: {0}")]
    Rules(String),
    /// Uploading a completed file failed. The file stays in the writer: the next
    /// `write` or `finish` uploads it again.
    #[error(
        "uploading the data file {path} failed: {source}; the file is kept and retried on the next write or finish"
    )]
    Store {
        /// The object.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
}
