//! Flink's fraud-detection walkthrough: the 50-transaction list replayed in ingestion
//! time. At 10 records/s it prints an alert for account 3 every 5 s; this example
//! replays three cycles at 100 records/s, so it prints three alerts in 1.5 s.
//!
//! `cargo run --release --example walkthrough`

use tidelake_runtime::sources::walkthrough::WalkthroughConfig;
use tidelake_runtime::{Job, JobConfig, SourceConfig, TimeMode};

fn main() -> anyhow::Result<()> {
    let walkthrough = WalkthroughConfig {
        rate: Some(100.0),
        count: Some(150),
    };
    let mut config = JobConfig::new(SourceConfig::Walkthrough(walkthrough));
    config.time = TimeMode::Ingestion;
    config.tick_ms = 10;
    config.dead_letters = std::env::temp_dir().join("tidelake-example-dead-letters.jsonl");
    let report = Job::new(config)?.run()?;
    eprintln!("{} alerts", report.totals.alerts);
    Ok(())
}
