//! End-to-end tests: the fraud rule against a reference model, the job on every
//! source, determinism across workers and ticks, the command line, and Delta tables
//! read back by real readers (delta-rs, pyarrow, polars) locally and on S3 (moto).

mod accounts_join;
mod auto_compact;
mod bench;
mod chained;
mod checkpoints;
mod cli;
mod cluster;
mod commit_batches;
mod csv_input;
mod csv_reference;
mod custom_rule;
mod delta_s3;
mod delta_sink;
mod delta_source;
mod determinism;
mod fraud_rule;
mod generate_accounts;
mod history_features;
mod ingest;
mod job_identity;
mod kafka;
mod kafka_broker;
mod monitor;
mod moto;
mod optimize;
mod predictions_report;
mod python;
mod reference;
mod scoring;
mod stream_inputs;
mod support;
mod table_cmd;
mod table_features;
mod vacuum;
mod velocity;
mod walkthrough;
mod windows;
mod writers_scale;
