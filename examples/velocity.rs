//! A second rule on the keyed-process API: more than 3 transactions of one account
//! within 10 s, on 200 000 generated transactions over 20 000 accounts (one every 20 s
//! per account on average, so bursts are rare). The dataflow is built by hand from the runtime's source operator and
//! the operators crate's `keyed_process`, on 2 workers.
//!
//! `cargo run --release --example velocity`

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::{Inspect, Probe};

use tidelake_operators::{KeyedProcess, VelocityRule};
use tidelake_runtime::clock::SystemClock;
use tidelake_runtime::control::JobControl;
use tidelake_runtime::metrics::Metrics;
use tidelake_runtime::sources::Source;
use tidelake_runtime::sources::generator::{GeneratorConfig, GeneratorSource};
use tidelake_runtime::sources::operator::{SourceSettings, TimeMode, read_source};

fn main() -> anyhow::Result<()> {
    let generator = GeneratorConfig {
        count: Some(200_000),
        accounts: 20_000,
        density: 1_000,
        ..GeneratorConfig::default()
    };
    let source: Arc<dyn Source> = Arc::new(GeneratorSource::new(generator)?);
    let settings = SourceSettings {
        time: TimeMode::Event,
        tick: 100,
        out_of_orderness: 0,
        idle_timeout: Duration::from_secs(10),
        batch_size: 4096,
        max_in_flight: 1 << 20,
        clock: Arc::new(SystemClock),
    };
    let workers = 2;
    let metrics = Arc::new(Metrics::new(workers));
    let control = Arc::new(JobControl::default());

    timely::execute(timely::Config::process(workers), move |worker| {
        let probe = ProbeHandle::new();
        let slot = worker.index();
        worker.dataflow::<u64, _, _>(|scope| {
            let (transactions, _dead_letters) = read_source(
                scope,
                Arc::clone(&source),
                settings.clone(),
                probe.clone(),
                Arc::clone(&metrics),
                slot,
                Arc::clone(&control),
            );
            let (_passed, alerts) =
                transactions.keyed_process("Velocity", 100, VelocityRule::new(3, 10_000));
            alerts
                .inspect(|alert| {
                    let line = serde_json::to_string(alert).unwrap_or_default();
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                })
                .probe_with(&probe);
        });
    })
    .map_err(anyhow::Error::msg)?;
    Ok(())
}
