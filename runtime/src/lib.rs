//! tidelake's runtime: job configuration, sources and watermarks, the pipeline API and
//! the jobs built on it, metrics and job control.
//!
//! # Architecture
//!
//! - [`sources`]: partitioned sources (generator, walkthrough, CSV and JSON-lines files),
//!   per-partition [`sources::Watermark`]s, and the timely [`sources::operator`] that
//!   reads a worker's partitions and emits records at the tick of their rule time, with
//!   bad and late records on a [`dead_letter`] output.
//! - [`pipeline`]: what a job computes — a [`Pipeline`] builds its dataflow with a
//!   [`Stage`]: keyed processing by any `KeyedProcessFunction` (from
//!   `tidelake-operators`), then each output to its sinks (from `tidelake-sinks`).
//! - [`jobs`]: the built-in pipelines, `fraud` and `velocity`.
//! - [`job`]: runs a pipeline on N worker threads by timely, with the source and its
//!   dead letters, the tables, metrics, monitoring, the cluster and the watchdog.
//! - [`config`], [`control`], [`metrics`], [`clock`], [`panic`](mod@panic): what a job is
//!   configured with, how it is stopped, what it counts, the time it reads, and why a
//!   panicking worker aborts the process.
//! - [`lake`]: the job's tables, opened once at start (put-if-absent probe, schema,
//!   features, constraints, the job's identity), and each worker's sinks of them.
//! - [`cluster`], [`watchdog`], [`fault_injection`]: forming a cluster of processes
//!   (sockets under a start timeout, a handshake that authenticates both sides with the
//!   cluster secret and then compares their settings, then timely's allocators),
//!   stopping a job whose frontier stalls, and the debug-build hook that makes a worker
//!   panic for tests.
//! - [`monitor`], [`latency`], [`periodic`]: the monitoring endpoint (Prometheus metrics,
//!   health probes, the live page), alert latency, and the background-check thread.
//! - [`checkpoint`]: the checkpoints a job restarts from (docs/checkpoints.md): their
//!   parts and manifest, their binary format, and their store.
//! - [`ingest`]: `tidelake ingest`, Auto Loader: files under a directory loaded into a
//!   Delta table exactly once (docs/ingest.md).
//! - [`profiles`]: account profiles of generated data (home country, typical spend,
//!   credit limit, …) and the changes of their reference data, for `tidelake generate
//!   accounts`.
//! - [`reference`]: the `accounts` reference data, arranged with differential dataflow
//!   and joined to transactions as of their event time.
//! - [`model`]: model scoring — the fraud classifier `tidelake train` fits on the features
//!   table and the features job scores every transaction with (docs/scoring.md).
//! - [`report`]: what a process and a cluster did, as `--report-json` writes it.
//! - [`transactions_table`]: the `transactions` Delta table's row: how an enriched
//!   transaction is written (schema, `date` partition).
//! - [`features_table`]: the `features` Delta table's row: a richer transaction with the
//!   rule's verdict and its history features.
//! - [`alerts_table`]: the `alerts` Delta table's row: how an alert is written (schema,
//!   `date` partition of the large transaction's time); [`velocity_alerts_table`]: the
//!   velocity job's; [`model_alerts_table`]: a scoring job's with `--alert-on model|any`.
//! - [`predictions_table`]: the `fraud_predictions` Delta table's row: a scored
//!   transaction with its probability, prediction and model version;
//!   [`quality_table`]: the `fraud_model_quality` table's, a change of the model's
//!   figures of an account's hour.
//!
//! The semantics all this implements are in `docs/semantics.md`.

pub mod alerts_table;
pub mod checkpoint;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod control;
pub mod dead_letter;
pub mod fault_injection;
pub mod features_table;
pub mod ingest;
pub mod job;
pub mod jobs;
pub mod kafka;
pub mod lake;
pub mod latency;
pub mod metrics;
pub mod model;
pub mod model_alerts_table;
pub mod monitor;
pub mod panic;
pub mod periodic;
pub mod pipeline;
pub mod predictions_table;
pub mod profiles;
pub mod quality_table;
pub mod reference;
pub mod report;
pub mod sources;
pub mod transactions_table;
pub mod velocity_alerts_table;
pub mod watchdog;

pub use config::{AlertOutput, JobConfig, LakeConfig, SourceConfig};
pub use job::{Job, JobError, JobReport};
pub use pipeline::{Events, Pipeline, Stage, TableDecl};

pub use sources::operator::TimeMode;
