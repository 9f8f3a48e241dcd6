//! Two keyed stages in a row: the velocity rule, then the fraud rule on the velocity
//! rule's main output (every transaction, with positions kept by `Stage::keyed_events`),
//! give the same alerts as each built-in rule run alone on the same input, in order and
//! out of order, on 1, 2 and 3 workers.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use timely::dataflow::operators::vec::Map;

use tidelake_operators::{EnrichedTransaction, FraudDetector, Transaction, VelocityRule};
use tidelake_runtime::config::RuleConfig;
use tidelake_runtime::sources::generator::GeneratorConfig;
use tidelake_runtime::{
    AlertOutput, Events, Job, JobConfig, Pipeline, SourceConfig, Stage, TableDecl,
};

use crate::support::read_lines;

const MAX: u64 = 3;
const WINDOW_MS: u64 = 2_000;

/// Velocity, then fraud on its main output; both rules' alerts to `--alerts`.
struct VelocityThenFraud;

impl Pipeline for VelocityThenFraud {
    type Record = Transaction;

    fn settings(&self) -> Vec<(String, String)> {
        vec![("--rule".to_owned(), "velocity then fraud".to_owned())]
    }

    fn tables(&self) -> Vec<TableDecl> {
        Vec::new()
    }

    fn build<'s>(&self, stage: &Stage<'s, '_>, transactions: Events<'s, Transaction>) {
        let velocity = VelocityRule::new(MAX, WINDOW_MS);
        let (checked, velocity_alerts) = stage.keyed_events("Velocity", velocity, transactions);
        stage.alerts(velocity_alerts.map(|e| e.record));
        let transactions = checked.map(|e| {
            e.map(|t: EnrichedTransaction| Transaction {
                account_id: t.account_id,
                ts: t.ts,
                amount: t.amount,
            })
        });
        let (_, fraud_alerts) = stage.keyed("Fraud", FraudDetector::new(), transactions);
        stage.alerts(fraud_alerts);
    }
}

fn config(dir: &Path, name: &str, workers: usize, disorder: u64) -> JobConfig {
    let generator = GeneratorConfig {
        accounts: 40,
        count: Some(30_000),
        density: 200,
        partitions: 5,
        fraud_every: Some(300),
        out_of_orderness_ms: disorder,
        ..GeneratorConfig::default()
    };
    let mut config = JobConfig::new(SourceConfig::Generator(generator));
    config.workers = workers;
    config.out_of_orderness_ms = disorder;
    config.alerts = AlertOutput::File(dir.join(format!("{name}.jsonl")));
    config.dead_letters = dir.join(format!("{name}-dead-letters.jsonl"));
    config
}

/// The alert lines of `name`, sorted, as JSON text.
fn alerts(dir: &Path, name: &str) -> Vec<String> {
    let mut lines: Vec<String> = read_lines::<Value>(&dir.join(format!("{name}.jsonl")))
        .iter()
        .map(Value::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn velocity_then_fraud_gives_each_rules_own_alerts() {
    for disorder in [0, 700] {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let alone = |name: &str, rule: RuleConfig| {
            let mut config = config(d, name, 2, disorder);
            config.rule = rule;
            Job::new(config).expect("a valid job").run().expect("runs");
            alerts(d, name)
        };
        let fraud = alone("fraud", RuleConfig::Fraud);
        let velocity = alone(
            "velocity",
            RuleConfig::Velocity {
                max: MAX,
                window_ms: WINDOW_MS,
            },
        );
        assert!(fraud.len() > 20, "fraud alerts: {}", fraud.len());
        assert!(velocity.len() > 20, "velocity alerts: {}", velocity.len());
        for workers in [1, 2, 3] {
            let name = format!("chained-{workers}");
            let config = config(d, &name, workers, disorder);
            Job::with_pipeline(config, Arc::new(VelocityThenFraud))
                .expect("a valid job")
                .run()
                .expect("runs");
            let (chained_velocity, chained_fraud): (Vec<String>, Vec<String>) = alerts(d, &name)
                .into_iter()
                .partition(|line| line.contains("\"count\""));
            let what = format!("disorder {disorder} ms, {workers} worker(s)");
            assert_eq!(chained_fraud, fraud, "{what}: fraud alerts");
            assert_eq!(chained_velocity, velocity, "{what}: velocity alerts");
        }
    }
}
