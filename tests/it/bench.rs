//! `tidelake bench`: its JSON agrees with what the job wrote (the Delta table it kept,
//! the alerts `tidelake run` raises on the same workload, the table delta-rs reads after
//! the growth run). Performance is never asserted.

use std::path::Path;

use serde_json::Value;

use crate::python::Python;
use crate::support::{assert_exit, describe, read_json, tidelake};

const EVENTS: u64 = 200_000;

fn u64_at(value: &Value, pointer: &str) -> u64 {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} in {value:#}"))
}

/// Files under `dir` whose name ends with `suffix`, and their total size.
fn files_ending(dir: &Path, suffix: &str) -> (u64, u64) {
    let (mut count, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (c, b) = files_ending(&path, suffix);
            (count, bytes) = (count + c, bytes + b);
        } else if path.to_string_lossy().ends_with(suffix) {
            count += 1;
            bytes += entry.metadata().expect("metadata").len();
        }
    }
    (count, bytes)
}

#[test]
fn bench_json_matches_the_table_it_wrote_and_the_alerts_of_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("bench.json");
    let events = EVENTS.to_string();
    let output = tidelake(
        dir.path(),
        &[
            "bench",
            "--events",
            &events,
            "--sink",
            "delta",
            "--latency-rate",
            "200000",
            "--latency-duration",
            "1s",
            "--json",
            json.to_str().expect("utf-8 path"),
            "--dir",
            ".",
            "--keep",
        ],
    );
    assert_exit(&output, 0);
    let table = String::from_utf8_lossy(&output.stdout);
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("bench.json")).expect("JSON");

    let t = &report["throughput"];
    assert_eq!(u64_at(t, "/events"), EVENTS, "{}", describe(&output));
    let per_worker: Vec<u64> = t["events_per_worker"]
        .as_array()
        .expect("events_per_worker")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(per_worker.len(), 2);
    assert_eq!(per_worker.iter().sum::<u64>(), EVENTS);
    assert!(t["events_per_second"].as_f64().is_some_and(|r| r > 0.0));
    assert!(u64_at(t, "/peak_rss_bytes") > 0);
    assert!(u64_at(t, "/state_keys") > 0);
    assert!(
        t["state_bytes_per_active_account"]
            .as_f64()
            .is_some_and(|b| b > 0.0)
    );

    // The kept table: one log entry per commit after the table's creation, and the data
    // files and bytes the bench counted.
    let kept = Path::new(report["dir"].as_str().expect("the kept dir"));
    let table_dir = dir.path().join(kept).join("throughput/transactions");
    let (commits, files, bytes) = (
        u64_at(t, "/commits"),
        u64_at(t, "/files"),
        u64_at(t, "/bytes"),
    );
    assert!(commits > 0 && files > 0 && bytes > 0, "{t:#}");
    let (log_entries, _) = files_ending(&table_dir.join("_delta_log"), ".json");
    assert_eq!(log_entries, commits + 1, "version 0 creates the table");
    assert_eq!(files_ending(&table_dir, ".parquet"), (files, bytes));
    assert!(
        table.contains(&format!("{files} files, {commits} commits")),
        "{table}"
    );

    // The same workload through `tidelake run` raises the same alerts.
    let alerts = dir.path().join("alerts.jsonl");
    let run = tidelake(
        dir.path(),
        &[
            "run",
            "--count",
            &events,
            "--accounts",
            "100000",
            "--density",
            "100000",
            "--start",
            "0",
            "--workers",
            "2",
            "--tick",
            "100ms",
            "--no-table",
            "--alerts",
            alerts.to_str().expect("utf-8 path"),
        ],
    );
    assert_exit(&run, 0);
    let raised = std::fs::read_to_string(&alerts)
        .expect("alerts")
        .lines()
        .count() as u64;
    assert!(raised > 0);
    assert_eq!(u64_at(t, "/alerts"), raised);

    let l = &report["latency"];
    assert_eq!(u64_at(l, "/events"), 200_000);
    let latency = &l["latency"];
    assert!(u64_at(latency, "/count") > 0, "{l:#}");
    assert_eq!(
        u64_at(latency, "/count"),
        u64_at(l, "/alerts"),
        "every alert measured"
    );
    let (p50, p99, max) = (
        u64_at(latency, "/p50_us"),
        u64_at(latency, "/p99_us"),
        u64_at(latency, "/max_us"),
    );
    assert!(p50 <= p99 && p99 <= max, "{l:#}");
}

#[test]
fn scaling_runs_each_layout_once_on_the_whole_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = tidelake(
        dir.path(),
        &[
            "bench",
            "--scaling",
            "--sink",
            "null",
            "--events",
            "50000",
            "--json",
            "-",
        ],
    );
    assert_exit(&output, 0);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("JSON on stdout ({e}): {}", describe(&output)));
    let rows = report["scaling"].as_array().expect("scaling rows");
    let layouts: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| (u64_at(r, "/workers"), u64_at(r, "/processes")))
        .collect();
    assert_eq!(layouts, [(1, 1), (2, 1), (4, 1), (1, 2)]);
    let alerts: Vec<u64> = rows.iter().map(|r| u64_at(r, "/alerts")).collect();
    for row in rows {
        assert_eq!(u64_at(row, "/events"), 50_000, "{row:#}");
        assert_eq!(
            u64_at(row, "/alerts"),
            alerts[0],
            "every layout, the same alerts"
        );
    }
}

#[test]
fn the_latency_run_on_two_processes_measures_every_alert_of_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = tidelake(
        dir.path(),
        &[
            "bench",
            "--phase",
            "latency",
            "--processes",
            "2",
            "--workers",
            "1",
            "--sink",
            "null",
            "--latency-rate",
            "200000",
            "--latency-duration",
            "1s",
            "--json",
            "-",
        ],
    );
    assert_exit(&output, 0);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("JSON on stdout ({e}): {}", describe(&output)));
    assert!(report["throughput"].is_null());
    let l = &report["latency"];
    assert_eq!(u64_at(l, "/processes"), 2);
    assert_eq!(u64_at(l, "/events"), 200_000);
    let alerts = u64_at(l, "/alerts");
    assert!(alerts > 0, "{l:#}");
    assert_eq!(u64_at(&l["latency"], "/count"), alerts, "{l:#}");
}

#[test]
fn the_growth_run_measures_each_stretch_and_delta_rs_opens_what_it_wrote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let python = Python::find();
    let events: u64 = 3_000_000;
    let output = tidelake(
        dir.path(),
        &[
            "bench",
            "--scenario",
            "growth",
            "--events",
            &events.to_string(),
            "--accounts",
            "20000",
            "--samples",
            "3",
            "--delta-rs",
            python.interpreter().to_str().expect("utf-8 path"),
            "--json",
            "-",
            "--dir",
            ".",
            "--keep",
        ],
    );
    assert_exit(&output, 0);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("JSON on stdout ({e}): {}", describe(&output)));
    let run = &report["run"];
    assert_eq!(u64_at(run, "/events"), events);
    let peak = u64_at(run, "/peak_rss_bytes");

    // Stretches in order, each read from the job's own metrics; the last ends with
    // the run, at every event.
    let stretches = report["stretches"].as_array().expect("stretches");
    assert!((1..=3).contains(&stretches.len()), "{stretches:#?}");
    let mut before = (0, 0.0);
    for s in stretches {
        let (read, at) = (
            u64_at(s, "/events"),
            s["elapsed_secs"].as_f64().expect("at"),
        );
        assert!(read > before.0 && at > before.1, "{stretches:#?}");
        let rate = s["events_per_second"].as_f64().expect("rate");
        let expected = (read - before.0) as f64 / (at - before.1);
        assert!((rate - expected).abs() <= expected * 1e-9, "{s:#}");
        // The job reads its peak when it reports, so only readings before the last one
        // (which can come after the report) are bounded by it.
        let rss = u64_at(s, "/rss_bytes");
        let last = std::ptr::eq(s, stretches.last().expect("a stretch"));
        assert!(
            rss > 0 && (last || rss <= peak),
            "RSS {rss} against the peak {peak}"
        );
        assert!(u64_at(s, "/rows_committed") <= read);
        before = (read, at);
    }
    assert_eq!(before.0, events);

    // What delta-rs said after the run is the kept table, which holds every event.
    let opened = &report["delta_rs"];
    let kept = Path::new(report["dir"].as_str().expect("the kept dir"));
    let table = dir.path().join(kept).join("growth/transactions");
    let read = python.count(&table.display().to_string());
    assert_eq!(u64_at(opened, "/version"), read.version);
    assert_eq!(u64_at(opened, "/files"), read.files);
    assert_eq!((read.rows, read.polars_rows), (events, events));
    let table_text = String::from_utf8_lossy(&output.stderr);
    assert!(
        table_text.contains("delta-rs      opened version"),
        "{table_text}"
    );
}

/// The CSV bench runs its file at the files' default tick (1 s, recorded in the JSON's
/// settings) and raises the reference's alerts on it.
#[test]
fn the_csv_bench_runs_at_the_files_default_tick_and_raises_the_reference_alerts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (content, txs) = crate::csv_input::random_csv(0xbe4c, 30_000);
    let input = dir.path().join("tx.csv");
    std::fs::write(&input, content).expect("write input");
    let expected = crate::reference::alerts(&txs);
    assert!(expected.len() > 50, "{} alerts: no check", expected.len());

    let output = tidelake(
        dir.path(),
        &[
            "bench",
            "--input",
            input.to_str().expect("utf-8 path"),
            "--sink",
            "alerts",
            "--phase",
            "throughput",
            "--json",
            "bench.json",
            "--dir",
            ".",
        ],
    );
    assert_exit(&output, 0);
    let report = read_json(&dir.path().join("bench.json"));
    assert_eq!(report["settings"]["source"], "csv", "{report:#}");
    assert_eq!(report["settings"]["tick"], "1000ms", "{report:#}");
    let t = &report["throughput"];
    assert_eq!(u64_at(t, "/events"), 30_000, "{}", describe(&output));
    assert_eq!(u64_at(t, "/alerts"), expected.len() as u64, "{t:#}");
}
