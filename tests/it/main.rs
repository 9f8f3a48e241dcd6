//! End-to-end tests: the fraud rule against a reference model, the job on every
//! source, determinism across workers and ticks, and the command line.

mod cli;
mod csv_input;
mod csv_reference;
mod determinism;
mod fraud_rule;
mod reference;
mod support;
mod walkthrough;
