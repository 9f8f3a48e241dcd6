//! tidelake's sinks.
//!
//! - [`json_lines`]: JSON lines to a file or stdout, shared by the workers of a process
//!   (alerts, dead letters, enriched rows).
//!
//! Sinks know nothing of sources or of fraud: they write any record the caller gives.

pub mod json_lines;

pub use json_lines::{JsonLinesWriter, SinkError, WriteJsonLines};
