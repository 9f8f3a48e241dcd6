//! tidelake's sinks.
//!
//! - [`json_lines`]: JSON lines to a file or stdout, shared by the workers of a process
//!   (alerts, dead letters, enriched rows).
//! - [`epochs`]: the timely operator that writes a stream epoch by epoch on an I/O
//!   thread of its own, and reports each sealed epoch (the committed frontier).
//! - [`parquet`]: Parquet data files — rows (the trait of records that append
//!   themselves to Arrow builders) or batches in, complete uploaded files and their
//!   stats out, laid out and escaped as Hive and Delta expect. Knows nothing of Delta.
//! - [`delta`]: Delta Lake — the log's actions, snapshots, commits and checkpoints, the
//!   table features each operation implements, the job identity in commits, the
//!   per-worker epoch sink, maintenance (optimize, z-order, vacuum, log cleanup,
//!   auto-compaction) and inspection; see its module map.
//! - [`fault_injection`]: a pause a test can `kill -9` a process in (debug builds).
//! - [`clock`]: where the sinks take the time and fresh ids from (pinned in tests).
//! - [`expression`]: Spark SQL expressions (table constraints) over Arrow batches.
//! - [`parquet_files`]: rolling Parquet files in a directory (Flink's FileSink).
//!
//! Sinks know nothing of sources or of fraud: they write any record the caller gives.

pub mod clock;
pub mod delta;
mod epoch_files;
pub mod epochs;
pub mod expression;
pub mod fault_injection;
pub mod json_lines;
pub mod parquet;
pub mod parquet_files;
#[cfg(test)]
mod testing;

pub use json_lines::{JsonLinesWriter, SinkError, WriteJsonLines};
