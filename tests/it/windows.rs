//! Windows through the pipeline API (`tidelake_operators::window`): tumbling, sliding and
//! session sums per account, run as jobs on 1, 2 and 4 workers, equal a plain reference
//! written here from the definitions, on input in order and out of order; with an
//! allowed lateness, late records within it update their window (fired again) and those
//! beyond it are dead letters.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use tidelake_operators::Transaction;
use tidelake_operators::window::{Sum, WindowFunction, Windows};
use tidelake_runtime::{
    AlertOutput, Events, Job, JobConfig, Pipeline, SourceConfig, Stage, TableDecl,
};

use crate::delta_sink::write_csv;
use crate::reference::Tx;
use crate::support::{Rng, read_lines};

/// A pipeline of one window stage: the sum of amounts per account, its results on
/// `--alerts`.
struct WindowSums {
    windows: Windows,
    lateness: u64,
}

impl Pipeline for WindowSums {
    type Record = Transaction;

    fn settings(&self) -> Vec<(String, String)> {
        vec![("--rule".to_owned(), format!("{:?}", self.windows))]
    }

    fn tables(&self) -> Vec<TableDecl> {
        Vec::new()
    }

    fn allowed_lateness(&self) -> u64 {
        self.lateness
    }

    fn build<'s>(&self, stage: &Stage<'s, '_>, transactions: Events<'s, Transaction>) {
        let sums =
            WindowFunction::new(self.windows, Sum(|t: &Transaction| t.amount), self.lateness);
        let (results, _none) = stage.keyed("WindowSums", sums, transactions);
        stage.alerts(results);
    }
}

/// A result line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultLine {
    key: String,
    start: u64,
    end: u64,
    value: f64,
    firing: u32,
}

/// `(account, start, end)` → the sum of its records' amounts.
type Windowed = BTreeMap<(String, u64, u64), f64>;

/// The windows of `txs` by definition (docs of `tidelake_operators::window`).
fn reference(txs: &[&Tx], windows: Windows) -> Windowed {
    let mut out = Windowed::new();
    let mut by_account: BTreeMap<&str, Vec<&Tx>> = BTreeMap::new();
    for tx in txs {
        by_account.entry(&tx.account).or_default().push(tx);
    }
    for (account, mut list) in by_account {
        list.sort_by_key(|t| t.ts);
        match windows {
            Windows::Tumbling { size } | Windows::Sliding { size, .. } => {
                let slide = match windows {
                    Windows::Sliding { slide, .. } => slide,
                    _ => size,
                };
                for t in &list {
                    // Every k·slide with k·slide ≤ ts < k·slide + size.
                    let first = t.ts.saturating_sub(size - 1);
                    let mut start = first.div_ceil(slide) * slide;
                    while start <= t.ts {
                        if start + size > t.ts {
                            *out.entry((account.to_owned(), start, start + size))
                                .or_default() += t.amount;
                        }
                        start += slide;
                    }
                }
            }
            Windows::Session { gap } => {
                let mut session: Option<(u64, u64, f64)> = None;
                for t in &list {
                    session = match session {
                        Some((start, last, sum)) if t.ts < last + gap => {
                            Some((start, t.ts, sum + t.amount))
                        }
                        done => {
                            if let Some((start, last, sum)) = done {
                                out.insert((account.to_owned(), start, last + gap), sum);
                            }
                            Some((t.ts, t.ts, t.amount))
                        }
                    };
                }
                if let Some((start, last, sum)) = session {
                    out.insert((account.to_owned(), start, last + gap), sum);
                }
            }
        }
    }
    out
}

/// Which records of one partition read in order are on time or late within the allowed
/// lateness (kept), and which are later still (dead letters), by the watermark's
/// definition: the greatest ts so far less `bound`.
fn split_late(txs: &[Tx], bound: u64, lateness: u64) -> (Vec<&Tx>, Vec<&Tx>, usize) {
    let (mut kept, mut dead, mut late) = (Vec::new(), Vec::new(), 0);
    let mut max_ts: Option<u64> = None;
    for tx in txs {
        let wm = max_ts.map(|m| m.saturating_sub(bound));
        match wm {
            Some(wm) if tx.ts < wm && tx.ts + lateness < wm => dead.push(tx),
            Some(wm) if tx.ts < wm => {
                late += 1;
                kept.push(tx);
            }
            _ => {
                max_ts = Some(max_ts.map_or(tx.ts, |m| m.max(tx.ts)));
                kept.push(tx);
            }
        }
    }
    (kept, dead, late)
}

/// `lines` transactions on 20 accounts of several id shapes, a few seconds apart per
/// account on average, out of order by up to `disorder` ms.
fn data(seed: u64, lines: usize, disorder: u64) -> Vec<Tx> {
    let mut rng = Rng(seed);
    let mut ts = 1_714_600_000_000;
    let mut txs: Vec<(u64, Tx)> = (0..lines)
        .map(|_| {
            ts += rng.below(400);
            let n = rng.below(20);
            let account = match n % 2 {
                0 => format!("{n}"),
                _ => format!("kunde-ß-{n:03}"),
            };
            let tx = Tx {
                account,
                ts,
                partition: 0,
                seq: 0,
                amount: (1 + rng.below(50_000)) as f64 / 100.0,
            };
            (ts + rng.below(disorder + 1), tx)
        })
        .collect();
    txs.sort_by_key(|(jittered, _)| *jittered);
    txs.into_iter().map(|(_, tx)| tx).collect()
}

/// Runs `pipeline` on `input.csv` in `dir` on `workers` workers; returns its results.
fn run(
    dir: &Path,
    pipeline: WindowSums,
    workers: usize,
    bound: u64,
    split: u64,
) -> Vec<ResultLine> {
    let mut config = JobConfig::new(SourceConfig::Csv {
        inputs: vec![dir.join("input.csv").to_string_lossy().into_owned()],
        split_size: split.into(),
    });
    config.workers = workers;
    config.out_of_orderness_ms = bound;
    config.alerts = AlertOutput::File(dir.join("results.jsonl"));
    config.dead_letters = dir.join("dead-letters.jsonl");
    let job = Job::with_pipeline(config, Arc::new(pipeline)).expect("a valid job");
    job.run().expect("the job runs");
    read_lines(&dir.join("results.jsonl"))
}

const SHAPES: [Windows; 3] = [
    Windows::Tumbling { size: 10_000 },
    Windows::Sliding {
        size: 10_000,
        slide: 4_000,
    },
    Windows::Session { gap: 3_000 },
];

/// Asserts that `results` are `expected`: for fixed windows exactly the same windows,
/// each with its last firing's sum; for sessions, every reference session's last result
/// equal to it, and every result inside a reference session (earlier ones merged later).
fn assert_results(results: &[ResultLine], expected: &Windowed, windows: Windows, what: &str) {
    let mut last: BTreeMap<(String, u64, u64), (u32, f64)> = BTreeMap::new();
    for r in results {
        let entry = last
            .entry((r.key.clone(), r.start, r.end))
            .or_insert((0, r.value));
        if r.firing >= entry.0 {
            *entry = (r.firing, r.value);
        }
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
    for (window, sum) in expected {
        let got = last.get(window).map(|(_, v)| *v);
        assert!(
            got.is_some_and(|v| close(v, *sum)),
            "{what}: window {window:?} should sum to {sum}, got {got:?}"
        );
    }
    match windows {
        Windows::Session { .. } => {
            for (key, start, end) in last.keys() {
                let inside = expected
                    .range((key.clone(), 0, 0)..=(key.clone(), *start, u64::MAX))
                    .next_back()
                    .is_some_and(|((_, s, e), _)| s <= start && end <= e);
                assert!(
                    inside,
                    "{what}: session {key} [{start}, {end}) is in no reference session"
                );
            }
        }
        _ => assert_eq!(last.len(), expected.len(), "{what}: the same windows"),
    }
}

#[test]
fn window_sums_equal_the_reference_in_order_and_out_of_order_on_any_worker_count() {
    for (disorder, bound) in [(0, 0), (3_000, 3_000)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let txs = data(disorder + 1, 12_000, disorder);
        write_csv(&dir.path().join("input.csv"), &txs);
        let all: Vec<&Tx> = txs.iter().collect();
        for windows in SHAPES {
            let expected = reference(&all, windows);
            for workers in [1, 2, 4] {
                let pipeline = WindowSums {
                    windows,
                    lateness: 0,
                };
                let results = run(dir.path(), pipeline, workers, bound, 64 << 10);
                let what = format!("{windows:?}, disorder {disorder}, {workers} worker(s)");
                let dead = std::fs::read_to_string(dir.path().join("dead-letters.jsonl"))
                    .unwrap_or_default();
                assert!(dead.is_empty(), "{what}: nothing is late: {dead}");
                assert!(
                    results.iter().all(|r| r.firing == 0),
                    "{what}: nothing late, so every window fires once"
                );
                assert_results(&results, &expected, windows, &what);
                if !matches!(windows, Windows::Session { .. }) {
                    assert_eq!(results.len(), expected.len(), "{what}: each window once");
                }
            }
        }
    }
}

#[test]
fn late_records_within_the_allowed_lateness_update_their_window_beyond_it_are_dead_letters() {
    let (disorder, bound, lateness) = (6_000, 1_000, 2_500);
    let dir = tempfile::tempdir().expect("tempdir");
    let txs = data(77, 12_000, disorder);
    write_csv(&dir.path().join("input.csv"), &txs);
    // One partition, so the reference's watermark is the file's.
    let (kept, dead, late) = split_late(&txs, bound, lateness);
    assert!(
        late > 200 && dead.len() > 200,
        "{late} late, {} too late",
        dead.len()
    );
    for windows in SHAPES {
        let expected = reference(&kept, windows);
        for workers in [1, 2, 4] {
            let pipeline = WindowSums { windows, lateness };
            let results = run(dir.path(), pipeline, workers, bound, 1 << 30);
            let what = format!("{windows:?}, {workers} worker(s)");
            let dead_letters: Vec<serde_json::Value> =
                read_lines(&dir.path().join("dead-letters.jsonl"));
            assert!(dead_letters.iter().all(|d| d["reason"] == "late"), "{what}");
            let mut dead_ts: Vec<u64> = dead_letters
                .iter()
                .map(|d| {
                    let raw = d["raw"].as_str().expect("raw");
                    raw.split(',')
                        .nth(1)
                        .and_then(|t| t.parse().ok())
                        .expect("ts")
                })
                .collect();
            dead_ts.sort_unstable();
            let mut expected_dead: Vec<u64> = dead.iter().map(|t| t.ts).collect();
            expected_dead.sort_unstable();
            assert_eq!(dead_ts, expected_dead, "{what}: the dead letters");
            assert!(
                results.iter().any(|r| r.firing > 0),
                "{what}: late records fired some window again"
            );
            assert_results(&results, &expected, windows, &what);
        }
    }
}
