//! tidelake's sinks.
//!
//! - [`json_lines`]: JSON lines to a file or stdout, shared by the workers of a process
//!   (alerts, dead letters, enriched rows).
//! - [`delta`]: the Delta Lake log — actions, snapshot replay, table creation and
//!   put-if-absent commits (the Delta sink operator builds on it).
//!
//! Sinks know nothing of sources or of fraud: they write any record the caller gives.

pub mod delta;
mod epoch_files;
pub mod epochs;
pub mod expression;
pub mod json_lines;
pub mod parquet_files;
pub mod rows;

pub use json_lines::{JsonLinesWriter, SinkError, WriteJsonLines};
