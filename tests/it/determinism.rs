//! Determinism through the library API (docs/semantics.md §2): the same generated input gives the
//! same alerts, the same enriched rows (as a multiset) and the same late records for 1,
//! 2 and 4 workers, ticks of 1 ms, 100 ms and 1 s, and any batch size — in order and
//! out of order — and those alerts are the reference model's on the generator's own
//! records (read straight from its partitions, with their positions).

use std::collections::BTreeMap;
use std::path::Path;

use tidelake_runtime::sources::generator::{GeneratorConfig, GeneratorSource, SOURCE_NAME};
use tidelake_runtime::sources::{Emitter, ReadBatch, ReadStatus, RuleTime, Source, Watermark};
use tidelake_runtime::{AlertOutput, Job, JobConfig, SourceConfig};

use crate::reference::{self, RefAlert, Tx};
use crate::support::{DeadLine, EnrichedLine, epoch_ms, read_alerts, read_lines};

/// Records generated per run.
const COUNT: u64 = 200_000;

/// An enriched row, comparable: `(account, ts, amount bits, alert)`.
type Row = (String, u64, u64, bool);

fn generator(out_of_orderness_ms: u64) -> GeneratorConfig {
    GeneratorConfig {
        seed: 20_240_501,
        accounts: 3_000,
        count: Some(COUNT),
        // 200 s of event time: every gap of FRAUD_GAPS_MS occurs many times.
        density: 1_000,
        rate: None,
        start_ms: epoch_ms("2024-05-01T00:00:00Z"),
        fraud_every: Some(500),
        out_of_orderness_ms,
        ..GeneratorConfig::default()
    }
}

/// Every record of the generator, read partition by partition straight from its
/// readers (not through the job), with its `(partition, seq)`.
fn generated(config: &GeneratorConfig) -> Vec<Tx> {
    let source = GeneratorSource::new(config.clone()).expect("valid generator config");
    let mut txs = Vec::new();
    for partition in 0..source.partitions() {
        let mut reader = source.open(partition).expect("partition opens");
        // A bound so large that nothing is late: this only collects the records.
        let mut watermark = Watermark::new(u64::MAX);
        loop {
            let mut out = ReadBatch::default();
            let mut emit = Emitter::new(
                SOURCE_NAME,
                partition,
                RuleTime::Event,
                &mut watermark,
                0,
                1,
                &mut out,
            );
            let status = reader.read(10_000, &mut emit).expect("generator reads");
            assert!(
                out.dead_letters.is_empty(),
                "the generator made bad records"
            );
            txs.extend(out.events.into_iter().map(|e| {
                assert_eq!(e.partition, partition);
                Tx {
                    account: e.record.account_id.to_string(),
                    ts: e.record.ts,
                    partition: e.partition,
                    seq: e.seq,
                    amount: e.record.amount,
                }
            }));
            match status {
                ReadStatus::Done => break,
                ReadStatus::More => {}
                ReadStatus::Idle | ReadStatus::Waiting => {
                    panic!("an unthrottled generator went idle")
                }
            }
        }
    }
    txs
}

struct RunResult {
    alerts: Vec<RefAlert>,
    rows: Vec<Row>,
    /// `(partition, position, reason)` of each dead letter, sorted.
    dead_letters: Vec<(u32, u64, String)>,
    events: u64,
}

/// How a run is set up besides its input.
#[derive(Clone, Copy, Debug)]
struct Setup {
    workers: usize,
    tick_ms: u64,
    batch_size: usize,
    max_in_flight: u64,
}

fn run_job(dir: &Path, config: &GeneratorConfig, bound: u64, setup: Setup) -> RunResult {
    let Setup {
        workers,
        tick_ms,
        batch_size,
        max_in_flight,
    } = setup;
    let name = format!("w{workers}-t{tick_ms}-b{bound}-batch{batch_size}-f{max_in_flight}");
    let alerts_path = dir.join(format!("{name}-alerts.jsonl"));
    let enriched_path = dir.join(format!("{name}-enriched.jsonl"));
    let dead_path = dir.join(format!("{name}-dead.jsonl"));
    let mut job = JobConfig::new(SourceConfig::Generator(config.clone()));
    job.workers = workers;
    job.tick_ms = tick_ms;
    job.batch_size = batch_size;
    job.max_in_flight = max_in_flight;
    job.out_of_orderness_ms = bound;
    job.alerts = AlertOutput::File(alerts_path.clone());
    job.enriched = Some(enriched_path.clone());
    job.dead_letters = dead_path.clone();
    let report = Job::new(job)
        .expect("valid job")
        .run()
        .unwrap_or_else(|e| panic!("{name}: job failed: {e}"));
    assert!(!report.stopped, "{name}: stopped early");

    let alerts = read_alerts(&alerts_path);
    let mut rows: Vec<Row> = read_lines::<EnrichedLine>(&enriched_path)
        .into_iter()
        .map(|r| (r.account_id, r.ts, r.amount.to_bits(), r.alert))
        .collect();
    rows.sort();
    let mut dead_letters: Vec<(u32, u64, String)> = read_lines::<DeadLine>(&dead_path)
        .into_iter()
        .map(|d| {
            assert_eq!(d.source, SOURCE_NAME);
            (d.partition, d.position, d.reason)
        })
        .collect();
    dead_letters.sort();
    assert_eq!(
        report.totals.alerts as usize,
        alerts.len(),
        "{name}: the alert counter disagrees with the alerts file"
    );
    RunResult {
        alerts,
        rows,
        dead_letters,
        events: report.totals.events,
    }
}

/// The standard matrix: 1, 2 and 4 workers × ticks of 1 ms, 100 ms and 1 s, plus
/// tiny batches and tight flow control.
fn matrix(config: &GeneratorConfig) -> Vec<Setup> {
    let defaults = JobConfig::new(SourceConfig::Generator(config.clone()));
    let mut setups = Vec::new();
    for workers in [1, 2, 4] {
        for tick_ms in [1, 100, 1_000] {
            setups.push(Setup {
                workers,
                tick_ms,
                batch_size: defaults.batch_size,
                max_in_flight: defaults.max_in_flight,
            });
        }
    }
    // Batch sizes and flow control change batching only (docs/semantics.md §2).
    setups.push(Setup {
        workers: 4,
        tick_ms: 100,
        batch_size: 7,
        max_in_flight: 500,
    });
    setups.push(Setup {
        workers: 2,
        tick_ms: 1,
        batch_size: 1,
        max_in_flight: 1,
    });
    setups
}

/// Runs `setups` on the generator with out-of-orderness `generator_bound` and the job's
/// bound `job_bound`, and checks every run against the reference: the records below
/// their partition's watermark (greatest ts read before them in the partition minus
/// `job_bound`) are the dead letters, the others the enriched rows, and the alerts the
/// reference's on those.
fn check(generator_bound: u64, job_bound: u64, setups: &[Setup]) {
    let config = generator(generator_bound);
    let txs = generated(&config);
    assert_eq!(txs.len() as u64, COUNT, "the generator's count is exact");
    // `txs` is in partition order, each partition in read order.
    let mut accepted = Vec::new();
    let mut expected_dead = Vec::new();
    let mut max_ts: BTreeMap<u32, u64> = BTreeMap::new();
    for tx in &txs {
        let max = max_ts.entry(tx.partition).or_insert(tx.ts);
        if tx.ts < max.saturating_sub(job_bound) {
            expected_dead.push((tx.partition, tx.seq, "late".to_owned()));
        } else {
            *max = (*max).max(tx.ts);
            accepted.push(tx.clone());
        }
    }
    expected_dead.sort();
    if job_bound >= generator_bound {
        assert!(expected_dead.is_empty(), "the generator exceeded its bound");
    } else {
        assert!(expected_dead.len() > 1_000, "too few late records to check");
    }
    let expected = reference::alerts(&accepted);
    let mut expected_rows: Vec<(String, u64, u64)> = accepted
        .iter()
        .map(|t| (t.account.clone(), t.ts, t.amount.to_bits()))
        .collect();
    expected_rows.sort();
    let organic = expected.iter().filter(|a| !a.0.starts_with('f')).count();
    let injected = expected.len() - organic;
    assert!(
        organic >= 20 && injected >= 100,
        "too few alerts for a meaningful check: {organic} organic, {injected} injected"
    );
    // The alert flags the reference expects on enriched rows: one per alert's large tx.
    let mut expected_flags: BTreeMap<(String, u64, u64), usize> = BTreeMap::new();
    for a in &expected {
        *expected_flags.entry((a.0.clone(), a.1, a.4)).or_default() += 1;
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut first: Option<RunResult> = None;
    for &setup in setups {
        let run = run_job(dir.path(), &config, job_bound, setup);
        let name = format!("generator bound {generator_bound}, job bound {job_bound}, {setup:?}");
        assert!(
            run.dead_letters == expected_dead,
            "{name}: {} dead letters, {} expected",
            run.dead_letters.len(),
            expected_dead.len()
        );
        assert_eq!(run.events, accepted.len() as u64, "{name}: events counted");
        assert_eq!(run.rows.len(), accepted.len(), "{name}: enriched rows");
        if let Some(first) = &first {
            assert!(
                first.alerts == run.alerts,
                "{name}: alerts differ from the first run's"
            );
            assert!(
                first.rows == run.rows,
                "{name}: enriched rows differ from the first run's"
            );
            continue;
        }
        // The first run against the reference; the others equal it.
        assert_eq!(run.alerts.len(), expected.len(), "{name}: alert count");
        assert!(
            run.alerts == expected,
            "{name}: alerts differ from the reference"
        );
        let input: Vec<(String, u64, u64)> =
            run.rows.iter().map(|r| (r.0.clone(), r.1, r.2)).collect();
        assert!(
            input == expected_rows,
            "{name}: the enriched rows are not exactly the accepted generated records"
        );
        let mut flags: BTreeMap<(String, u64, u64), usize> = BTreeMap::new();
        for r in run.rows.iter().filter(|r| r.3) {
            *flags.entry((r.0.clone(), r.1, r.2)).or_default() += 1;
        }
        assert_eq!(flags, expected_flags, "{name}: rows flagged as alerts");
        first = Some(run);
    }
}

#[test]
fn in_order_generator_is_deterministic_and_matches_the_reference() {
    let config = generator(0);
    check(0, 0, &matrix(&config));
}

#[test]
fn out_of_order_generator_is_deterministic_and_matches_the_reference() {
    let config = generator(2_000);
    check(2_000, 2_000, &matrix(&config));
}

/// Out-of-order data with a smaller bound: lateness is decided per partition, so the
/// same records are late for any worker count and tick.
#[test]
fn late_records_are_the_same_for_any_workers_and_tick() {
    let config = generator(2_000);
    let setups: Vec<Setup> = matrix(&config)
        .into_iter()
        .filter(|s| s.tick_ms != 100 || s.batch_size == 7)
        .collect();
    check(2_000, 500, &setups);
}
