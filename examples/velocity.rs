//! The velocity rule as a pipeline of one's own, through the public pipeline API: more
//! than 3 transactions of one account within 10 s, on 200 000 generated transactions
//! over 20 000 accounts, on
//! 2 workers, alerts to stdout. The same job is built in as `tidelake run --rule
//! velocity`; this is what it takes to write one.
//!
//! `cargo run --release --example velocity`

use std::sync::Arc;

use tidelake_operators::{Transaction, VelocityRule};
use tidelake_runtime::sources::generator::GeneratorConfig;
use tidelake_runtime::{Events, Job, JobConfig, Pipeline, SourceConfig, Stage, TableDecl};

/// Velocity alerts only: no tables.
struct Velocity;

impl Pipeline for Velocity {
    type Record = Transaction;

    fn settings(&self) -> Vec<(String, String)> {
        vec![("--rule".to_owned(), "velocity (example)".to_owned())]
    }

    fn tables(&self) -> Vec<TableDecl> {
        Vec::new()
    }

    fn build<'s>(&self, stage: &Stage<'s, '_>, transactions: Events<'s, Transaction>) {
        let (_enriched, alerts) =
            stage.keyed("Velocity", VelocityRule::new(3, 10_000), transactions);
        stage.alerts(alerts);
    }
}

fn main() -> anyhow::Result<()> {
    let generator = GeneratorConfig {
        count: Some(200_000),
        accounts: 20_000,
        density: 1_000,
        ..GeneratorConfig::default()
    };
    let mut config = JobConfig::new(SourceConfig::Generator(generator));
    config.workers = 2;
    config.dead_letters = std::env::temp_dir().join("tidelake-velocity-dead-letters.jsonl");
    let report = Job::with_pipeline(config, Arc::new(Velocity))?.run()?;
    eprintln!(
        "{} events, {} alerts",
        report.totals.events, report.totals.alerts
    );
    Ok(())
}
