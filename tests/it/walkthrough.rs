//! Flink's walkthrough data (docs/semantics.md §2, §4): no alert in event time (the small and the
//! large transaction of account 3 are 30 min apart), account 3's alerts in ingestion
//! time — with a frozen injected clock and with the system clock at a fast replay rate.

use std::path::Path;
use std::sync::Arc;

use tidelake_runtime::clock::ManualClock;
use tidelake_runtime::sources::walkthrough::{START_MS, STEP_MS, WalkthroughConfig};
use tidelake_runtime::{AlertOutput, Job, JobConfig, SourceConfig, TimeMode};

use crate::support::{AlertLine, read_lines};

/// Cycle entries 22 (account 3, 0.80) and 27 (account 3, 871.15).
const SMALL_ENTRY: u64 = 22;
const LARGE_ENTRY: u64 = 27;

fn config(dir: &Path, rate: Option<f64>, count: u64, time: TimeMode, tick_ms: u64) -> JobConfig {
    let mut config = JobConfig::new(SourceConfig::Walkthrough(WalkthroughConfig {
        rate,
        count: Some(count),
    }));
    config.time = time;
    config.tick_ms = tick_ms;
    config.alerts = AlertOutput::File(dir.join("alerts.jsonl"));
    config.dead_letters = dir.join("dead.jsonl");
    config.enriched = Some(dir.join("enriched.jsonl"));
    config
}

/// Runs `job`, checks it read `count` records with no dead letter, and returns its
/// alerts in file order.
fn run(dir: &Path, job: Job, count: u64) -> Vec<AlertLine> {
    let report = job.run().expect("the job runs");
    assert_eq!(report.totals.events, count, "records read");
    assert_eq!(report.totals.dead_letters, 0, "dead letters counted");
    assert_eq!(
        std::fs::read_to_string(dir.join("dead.jsonl")).expect("dead letters written"),
        "",
        "dead letters"
    );
    let enriched = std::fs::read_to_string(dir.join("enriched.jsonl")).expect("enriched");
    assert_eq!(enriched.lines().count() as u64, count, "enriched rows");
    let alerts: Vec<AlertLine> = read_lines(&dir.join("alerts.jsonl"));
    assert_eq!(report.totals.alerts, alerts.len() as u64, "alert counter");
    alerts
}

/// Exactly account 3's alert in each of `cycles` cycles, with event times.
fn assert_account_3_alerts(mut alerts: Vec<AlertLine>, cycles: u64) {
    alerts.sort_by_key(|a| a.ts);
    let expected: Vec<(String, u64, u64, f64, f64)> = (0..cycles)
        .map(|c| {
            (
                "3".to_owned(),
                START_MS + (50 * c + LARGE_ENTRY) * STEP_MS,
                START_MS + (50 * c + SMALL_ENTRY) * STEP_MS,
                0.8,
                871.15,
            )
        })
        .collect();
    let got: Vec<(String, u64, u64, f64, f64)> = alerts
        .iter()
        .map(|a| {
            a.assert_dates();
            (
                a.account_id.clone(),
                a.ts,
                a.small_ts,
                a.small_amount,
                a.large_amount,
            )
        })
        .collect();
    assert_eq!(got, expected);
    // The values of docs/semantics.md §1's example, literally.
    assert_eq!(alerts[0].ts, 1_546_310_520_000);
    assert_eq!(alerts[0].small_ts, 1_546_308_720_000);
    assert_eq!(alerts[0].dt, "2019-01-01T02:42:00.000Z");
    assert_eq!(alerts[0].small_dt, "2019-01-01T02:12:00.000Z");
}

#[test]
fn event_time_gives_no_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = Job::new(config(dir.path(), None, 500, TimeMode::Event, 100)).expect("job");
    let alerts = run(dir.path(), job, 500);
    assert!(alerts.is_empty(), "alerts in event time: {alerts:?}");
}

#[test]
fn ingestion_time_with_a_frozen_clock_alerts_account_3_once_per_cycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let job = Job::new(config(dir.path(), None, 150, TimeMode::Ingestion, 100))
        .expect("job")
        .with_clock(clock);
    let alerts = run(dir.path(), job, 150);
    assert_account_3_alerts(alerts, 3);
}

#[test]
fn ingestion_time_on_the_system_clock_at_a_fast_rate_alerts_account_3_once_per_cycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = Job::new(config(
        dir.path(),
        Some(2_000.0),
        150,
        TimeMode::Ingestion,
        1,
    ))
    .expect("job");
    let started = std::time::Instant::now();
    let alerts = run(dir.path(), job, 150);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(70),
        "150 records at 2000/s took only {:?}: the rate is not applied",
        started.elapsed()
    );
    assert_account_3_alerts(alerts, 3);
}
