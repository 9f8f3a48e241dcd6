//! The fraud job through the library API: 500 000 generated transactions on 2 workers,
//! alerts to stdout, then the summary.
//!
//! `cargo run --release --example fraud_detection`

use tidelake_runtime::sources::generator::GeneratorConfig;
use tidelake_runtime::{Job, JobConfig, SourceConfig};

fn main() -> anyhow::Result<()> {
    let generator = GeneratorConfig {
        count: Some(500_000),
        ..GeneratorConfig::default()
    };
    let mut config = JobConfig::new(SourceConfig::Generator(generator));
    config.workers = 2;
    config.dead_letters = std::env::temp_dir().join("tidelake-example-dead-letters.jsonl");
    let report = Job::new(config)?.run()?;
    eprintln!(
        "{} events, {} alerts, {:.0} events/s",
        report.totals.events,
        report.totals.alerts,
        report.events_per_second()
    );
    Ok(())
}
