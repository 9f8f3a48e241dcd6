//! tidelake's runtime: job configuration, sources and watermarks, the fraud job's
//! dataflow, metrics and job control.
//!
//! # Architecture
//!
//! - [`sources`]: partitioned sources (generator, walkthrough, CSV and JSON-lines files),
//!   per-partition [`sources::Watermark`]s, and the timely [`sources::operator`] that
//!   reads a worker's partitions and emits records at the tick of their rule time, with
//!   bad and late records on a [`dead_letter`] output.
//! - [`job`]: the fraud job — source → exchange by account → fraud operator (from
//!   `tidelake-operators`) → alerts and enriched rows (sinks from `tidelake-sinks`) —
//!   run on N worker threads by timely.
//! - [`config`], [`control`], [`metrics`], [`clock`], [`panic`](mod@panic): what a job is
//!   configured with, how it is stopped, what it counts, the time it reads, and why a
//!   panicking worker aborts the process.
//! - [`cluster`], [`watchdog`], [`fault_injection`]: forming a cluster of processes
//!   (sockets under a start timeout, a handshake that names both sides, then timely's
//!   allocators), stopping a job whose frontier stalls, and the debug-build hook that
//!   makes a worker panic for tests.
//! - [`report`]: what a process and a cluster did, as `--report-json` writes it.
//! - [`transactions_table`]: the `transactions` Delta table's row: how an enriched
//!   transaction is written (schema, `date` partition).
//! - [`alerts_table`]: the `alerts` Delta table's row: how an alert is written (schema,
//!   `date` partition of the large transaction's time).

pub mod alerts_table;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod control;
pub mod dead_letter;
pub mod fault_injection;
pub mod job;
pub mod lake;
pub mod latency;
pub mod metrics;
pub mod monitor;
pub mod panic;
pub mod periodic;
pub mod report;
pub mod sources;
pub mod transactions_table;
pub mod watchdog;

pub use config::{AlertOutput, JobConfig, LakeConfig, SourceConfig};
pub use job::{Job, JobError, JobReport};

pub use sources::operator::TimeMode;
