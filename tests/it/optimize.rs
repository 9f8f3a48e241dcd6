//! `tidelake table optimize` on tables that `tidelake run` wrote with a 1 s commit
//! interval and 2 workers (80 small files), read back with delta-rs, pyarrow and
//! polars: bin-packing keeps every row and `txn` (with delta-rs's own files in the
//! table too), large row groups are spliced, Z-order makes point lookups skip most
//! files, and two optimizes racing for the same partitions leave the table exact.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::python::{Python, TableRead, TransactionOut};
use crate::support::{Rng, assert_exit, describe, rfc3339_millis, tidelake};

/// The generator's first event: 20 s before midnight, so 40 s of events make two
/// `date` partitions.
const START_MS: u64 = 1_714_607_980_000;
/// Events: 1,000 per second of event time, 20,000 per partition.
const EVENTS: u64 = 40_000;
/// Accounts `"0"` to `"4999"`.
const ACCOUNTS: u64 = 5_000;
const JOB: &str = "opt";
const APPS: [&str; 2] = ["opt-w0", "opt-w1"];

/// Runs the fraud job on the generator into `<dir>/t`: 2 workers committing every
/// second of event time, so 2 small files a second. Returns the table's URL.
fn write_table(dir: &Path) -> String {
    let start = rfc3339_millis(START_MS);
    let (events, accounts) = (EVENTS.to_string(), ACCOUNTS.to_string());
    let output = tidelake(
        dir,
        &[
            "run",
            "--source",
            "generator",
            "--count",
            &events,
            "--density",
            "1000",
            "--accounts",
            &accounts,
            "--start",
            &start,
            "--workers",
            "2",
            "--commit-interval",
            "1s",
            // One commit per epoch and no compaction: small files to bin-pack.
            "--max-commit-rate",
            "0s",
            "--no-auto-compact",
            "--table",
            "t",
            "--job-id",
            JOB,
            "--alerts",
            "alerts.jsonl",
            "--quiet",
        ],
    );
    assert_exit(&output, 0);
    dir.join("t").display().to_string()
}

/// Runs `tidelake table optimize URL --json` with `args`, expecting exit 0; returns the
/// report.
fn optimize(dir: &Path, url: &str, args: &[&str]) -> Value {
    let output = tidelake(dir, &[&["table", "optimize", url, "--json"], args].concat());
    assert_exit(&output, 0);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&output)))
}

fn sorted_rows(read: &TableRead) -> Vec<TransactionOut> {
    let mut rows = read.transactions();
    rows.sort_by(|a, b| {
        (&a.account_id, a.dt, a.amount.to_bits(), a.alert, &a.date).cmp(&(
            &b.account_id,
            b.dt,
            b.amount.to_bits(),
            b.alert,
            &b.date,
        ))
    });
    rows
}

/// The live files bin-packing to `target` bytes leaves, from the files before: per
/// partition, the files under ¾ of the target, by size then path, go into bins of at
/// most `target` bytes (next fit); a bin of two or more becomes one file.
fn expected_files(before: &TableRead, target: i64) -> usize {
    let mut partitions: BTreeMap<String, Vec<(i64, &str)>> = BTreeMap::new();
    for add in &before.add_actions {
        let date = add.partition["date"].clone().expect("a date");
        partitions
            .entry(date)
            .or_default()
            .push((add.size_bytes, &add.path));
    }
    let mut files = 0;
    for mut sizes in partitions.into_values() {
        let (mut small, large): (Vec<_>, Vec<_>) = sizes
            .drain(..)
            .partition(|(size, _)| *size < target * 3 / 4);
        files += large.len();
        small.sort();
        let mut bins: Vec<Vec<i64>> = Vec::new();
        for (size, _) in small {
            match bins.last_mut() {
                Some(bin) if bin.iter().sum::<i64>() + size <= target => bin.push(size),
                _ => bins.push(vec![size]),
            }
        }
        // A bin of one file is left alone: it stays one file.
        files += bins.len();
    }
    files
}

/// Every data file under the table directory `root`, relative to it, as the log's
/// paths spell them (no escaping is needed for `date=YYYY-MM-DD/part-….parquet`).
fn data_files_on_disk(root: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for partition in std::fs::read_dir(root).expect("the table directory") {
        let partition = partition.expect("entry").path();
        let name = partition
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with('_') || !partition.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&partition).expect("a partition directory") {
            let file = file
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            files.insert(format!("{name}/{file}"));
        }
    }
    files
}

/// Every `add.path` of every JSON commit of the table at `root`.
fn ever_added(root: &Path) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for version in 0.. {
        let Ok(text) = std::fs::read_to_string(root.join(format!("_delta_log/{version:020}.json")))
        else {
            break;
        };
        for line in text.lines() {
            let action: Value = serde_json::from_str(line).expect("a JSON action");
            if let Some(path) = action["add"]["path"].as_str() {
                paths.insert(path.to_owned());
            }
        }
    }
    paths
}

fn validate(dir: &Path, url: &str) {
    let output = tidelake(dir, &["table", "validate", url]);
    assert_exit(&output, 0);
}

#[test]
fn bin_packing_keeps_every_row_and_txn_and_leaves_the_expected_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = Python::find();
    let url = write_table(dir.path());
    // delta-rs appends to the table too: its own files (snappy, its own layout).
    let appended = python.append(&url, 3_000);
    let before = python.read(&url, &APPS);
    assert_eq!(before.version, appended);
    assert!(
        before.add_actions.len() > 80,
        "{} files",
        before.add_actions.len()
    );
    let target = 64 * 1024;

    let report = optimize(dir.path(), &url, &["--target-file-size", "64KiB"]);
    assert_eq!(report["readVersion"], appended);
    assert_eq!(report["partitionsCompacted"], 2);
    assert_eq!(report["partitionsGaveUp"], 0);

    let after = python.read(&url, &APPS);
    assert_eq!(after.version, appended + 2, "one commit per partition");
    assert_eq!(sorted_rows(&after), sorted_rows(&before), "every row, once");
    assert_eq!(after.polars_rows, after.rows.len() as u64);
    assert_eq!(after.txn, before.txn, "every txn version kept");
    assert!(before.txn.values().all(Option::is_some));
    assert_eq!(after.add_actions.len(), expected_files(&before, target));
    assert!(
        after.add_actions.len() <= 12,
        "{} files",
        after.add_actions.len()
    );
    after.assert_log_stats_match_files();
    validate(dir.path(), &url);

    let output = tidelake(
        dir.path(),
        &["table", "history", &url, "--limit", "1", "--json"],
    );
    assert_exit(&output, 0);
    let history: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let commit = &history["commits"][0];
    assert_eq!(commit["operation"], "OPTIMIZE");
    assert_eq!(commit["operationParameters"]["targetSize"], "65536");
    assert_eq!(commit["operationParameters"]["zOrderBy"], "[]");
    assert_eq!(commit["txns"], serde_json::json!([]));
}

/// Bin-packing a replay's files, whose row groups are large, copies their row groups
/// into the new file instead of re-encoding them: delta-rs, pyarrow and polars read
/// back the same rows, the log's stats equal what pyarrow computes from the new file,
/// and it holds every row group of its inputs.
#[test]
fn bin_packing_splices_large_row_groups_into_a_file_every_reader_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 1 worker, 200,000 events a second of event time committed every second: a few
    // files of up to 200,000 rows in one partition.
    let output = tidelake(
        dir.path(),
        &[
            "run",
            "--source",
            "generator",
            "--count",
            "700000",
            "--density",
            "200000",
            "--accounts",
            "70000",
            "--start",
            "2024-05-01T00:00:00Z",
            "--workers",
            "1",
            "--commit-interval",
            "1s",
            "--max-commit-rate",
            "0s",
            "--no-auto-compact",
            "--table",
            "t",
            "--job-id",
            "splice",
            "--alerts",
            "alerts.jsonl",
            "--quiet",
        ],
    );
    assert_exit(&output, 0);
    let url = dir.path().join("t").display().to_string();
    let python = Python::find();
    let before = python.read(&url, &["splice-w0"]);
    assert!(before.files.len() >= 4, "{} files", before.files.len());
    let row_groups: u64 = before.files.iter().map(|f| f.row_groups).sum();

    let report = optimize(dir.path(), &url, &[]);
    assert_eq!(report["partitionsCompacted"], 1);

    let after = python.read(&url, &["splice-w0"]);
    assert_eq!(after.version, before.version + 1);
    assert_eq!(sorted_rows(&after), sorted_rows(&before), "every row, once");
    assert_eq!(after.polars_rows, 700_000);
    assert_eq!(after.txn, before.txn);
    assert_eq!(after.files.len(), 1);
    assert_eq!(
        after.files[0].row_groups, row_groups,
        "the inputs' row groups, copied"
    );
    after.assert_log_stats_match_files();
    validate(dir.path(), &url);
}

/// The skipping figure of `lookups` (`column=v1,v2,…`) in the table at `url`:
/// `(column, average share of the live files read)`.
fn skipping(dir: &Path, url: &str, lookups: &[String]) -> BTreeMap<String, f64> {
    let mut args = vec!["table", "files", url, "--json"];
    for lookup in lookups {
        args.extend(["--skipping", lookup]);
    }
    let output = tidelake(dir, &args);
    assert_exit(&output, 0);
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    json["skipping"]
        .as_array()
        .expect("figures")
        .iter()
        .map(|f| {
            let column = f["column"].as_str().expect("column").to_owned();
            (column, f["averageShare"].as_f64().expect("share"))
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn z_order_makes_point_lookups_skip_most_files_on_one_column_and_on_two() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = write_table(dir.path());
    let mut rng = Rng(7);
    let accounts: Vec<String> = (0..200).map(|_| rng.below(ACCOUNTS).to_string()).collect();
    let times: Vec<String> = (0..200)
        .map(|_| {
            let micros = START_MS * 1000 + rng.below(EVENTS * 1000);
            let time = chrono::DateTime::from_timestamp_micros(micros as i64).expect("time");
            time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
        })
        .collect();
    let lookups = [
        format!("accountId={}", accounts.join(",")),
        format!("dt={}", times.join(",")),
    ];

    let unordered = skipping(dir.path(), &url, &lookups);
    let mut ordered = BTreeMap::new();
    for columns in ["accountId", "dt", "accountId,dt"] {
        let copy = dir.path().join(format!("by-{columns}"));
        copy_dir(&dir.path().join("t"), &copy);
        let copy = copy.display().to_string();
        let report = optimize(
            dir.path(),
            &copy,
            &["--target-file-size", "32KiB", "--zorder-by", columns],
        );
        assert_eq!(report["partitionsCompacted"], 2, "{columns}: {report}");
        validate(dir.path(), &copy);
        ordered.insert(
            columns,
            (copy.clone(), skipping(dir.path(), &copy, &lookups)),
        );
    }
    // Sorted in runs on disk (16 KiB of rows at a time), the same files.
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).expect("mkdir");
    let copy = dir.path().join("by-accountId,dt-spilled");
    copy_dir(&dir.path().join("t"), &copy);
    let copy = copy.display().to_string();
    let spill_arg = spill.display().to_string();
    let report = optimize(
        dir.path(),
        &copy,
        &[
            "--target-file-size",
            "32KiB",
            "--zorder-by",
            "accountId,dt",
            "--sort-memory",
            "16KiB",
            "--spill-dir",
            &spill_arg,
        ],
    );
    assert_eq!(report["partitionsCompacted"], 2, "{report}");
    let spilled = skipping(dir.path(), &copy, &lookups);
    assert_eq!(spilled, ordered["accountId,dt"].1);
    assert_eq!(
        std::fs::read_dir(&spill).expect("list").count(),
        0,
        "the sorted runs are removed"
    );

    let share = |columns: &str, column: &str| ordered[columns].1[column];
    eprintln!("share of the live files a point lookup reads (accountId, dt):");
    eprintln!(
        "  unordered: {:.3} {:.3}",
        unordered["accountId"], unordered["dt"]
    );
    for columns in ["accountId", "dt", "accountId,dt"] {
        let (a, d) = (share(columns, "accountId"), share(columns, "dt"));
        eprintln!("  z-ordered by {columns}: {a:.3} {d:.3}");
    }

    // One column: lookups read a quarter of what they read before, or less.
    assert!(unordered["accountId"] > 0.9, "{unordered:?}");
    assert!(share("accountId", "accountId") <= unordered["accountId"] / 4.0);

    // Two columns: for each, the share of files skipped is at least half of what a
    // z-order by that column alone skips. (The share read cannot stay within 2×: a
    // file of a partition cut into k files by a 2-D curve spans about 1/√k of each
    // column, a sort on one column 1/k of it.) And each column skips far more than
    // when the rows are ordered by the other column only: the curve uses both.
    let skipped = |columns: &str, column: &str| 1.0 - share(columns, column);
    for (column, other) in [("accountId", "dt"), ("dt", "accountId")] {
        assert!(
            skipped("accountId,dt", column) >= skipped(column, column) / 2.0,
            "{column}: {ordered:?}"
        );
        assert!(
            share("accountId,dt", column) < share(other, column) * 0.75,
            "{column}: {ordered:?}"
        );
    }

    // The rows are the rows.
    let python = Python::find();
    let (two_columns, _) = &ordered["accountId,dt"];
    let before = python.read(&url, &APPS);
    let after = python.read(two_columns, &APPS);
    assert_eq!(sorted_rows(&after), sorted_rows(&before));
    assert_eq!(after.txn, before.txn);
    after.assert_log_stats_match_files();
    let after_spilling = python.read(&copy, &APPS);
    assert_eq!(sorted_rows(&after_spilling), sorted_rows(&before));
    after_spilling.assert_log_stats_match_files();
}

#[test]
fn two_optimizes_started_together_leave_the_rows_exact_and_no_stray_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = write_table(dir.path());
    let python = Python::find();
    let before = python.read(&url, &APPS);

    let start = || {
        Command::new(env!("CARGO_BIN_EXE_tidelake"))
            .args([
                "table",
                "optimize",
                &url,
                "--json",
                "--target-file-size",
                "64KiB",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tidelake binary runs")
    };
    let (first, second) = (start(), start());
    let mut outcomes: Vec<(String, String)> = Vec::new();
    for child in [first, second] {
        let output = child.wait_with_output().expect("wait");
        assert_exit(&output, 0);
        let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        for partition in report["partitions"].as_array().expect("partitions") {
            let date = partition["partition"]["date"]
                .as_str()
                .expect("date")
                .to_owned();
            let outcome = partition["outcome"].as_str().expect("outcome").to_owned();
            if outcome == "gaveUp" {
                let reason = partition["reason"].as_str().expect("reason");
                assert!(
                    reason.contains("one of the files this compaction rewrote"),
                    "{reason}"
                );
            }
            outcomes.push((date, outcome));
        }
    }
    eprintln!("two optimizes at once: {outcomes:?}");
    for date in ["2024-05-01", "2024-05-02"] {
        let compacted = outcomes
            .iter()
            .filter(|(d, o)| d == date && o == "compacted")
            .count();
        assert!(compacted >= 1, "{date}: {outcomes:?}");
    }

    let after = python.read(&url, &APPS);
    assert_eq!(sorted_rows(&after), sorted_rows(&before), "every row, once");
    assert_eq!(after.txn, before.txn);
    validate(dir.path(), &url);
    // A loser deleted what it wrote: every data file on disk was committed once.
    let root = dir.path().join("t");
    let stray: Vec<String> = data_files_on_disk(&root)
        .difference(&ever_added(&root))
        .cloned()
        .collect();
    assert!(
        stray.is_empty(),
        "files written but never committed: {stray:?}"
    );
}

#[test]
fn bad_arguments_and_missing_tables_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = write_table(dir.path());
    for (args, message) in [
        (
            vec!["--zorder-by", "date"],
            "cannot z-order by `date`: it is a partition column",
        ),
        (
            vec!["--zorder-by", "accountId,account"],
            "cannot z-order by `account`: the table has no such column",
        ),
        (
            vec!["--where", "dt=2024-05-01"],
            "cannot select partitions by `dt`: it is not a partition column",
        ),
        (vec!["--target-file-size", "big"], "is not a size"),
    ] {
        let output = tidelake(
            dir.path(),
            &[&["table", "optimize", url.as_str()], &args[..]].concat(),
        );
        assert_exit(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {}", describe(&output));
    }
    let missing = dir.path().join("none").display().to_string();
    let output = tidelake(dir.path(), &["table", "optimize", &missing]);
    assert_exit(&output, 2);
    let output = tidelake(
        dir.path(),
        &["table", "files", &url, "--skipping", "nope=1"],
    );
    assert_exit(&output, 2);

    // Only one partition, and the text report.
    let output = tidelake(
        dir.path(),
        &[
            "table",
            "optimize",
            &url,
            "--where",
            "date=2024-05-02",
            "--target-file-size",
            "64KiB",
        ],
    );
    assert_exit(&output, 0);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(": 1 partition compacted, 0 given up, 0 skipped; 40 files"),
        "{text}"
    );
    assert!(text.contains("\ndate=2024-05-02  compacted  "), "{text}");
    assert!(!text.contains("2024-05-01"), "{text}");
}

#[test]
fn a_streaming_run_optimize_and_a_delta_rs_writer_all_at_once_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = Python::find();
    let url = write_table(dir.path());
    let before = python.read(&url, &[]);

    // delta-rs appends in a loop while 3 workers stream (about 4 s of wall time, a
    // commit per second of event time each) and optimize runs again and again.
    let stop = dir.path().join("stop");
    let appender = python.spawn_append_loop(&url, &stop, 10);
    let mut stream = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args([
            "run",
            "--count",
            "30000",
            "--rate",
            "8000",
            "--density",
            "1000",
            "--seed",
            "7",
            "--start",
            "2024-05-02T00:00:00Z",
            "--workers",
            "3",
            "--commit-interval",
            "1s",
            "--table",
            &url,
            "--job-id",
            "live",
            "--alerts",
            "live.jsonl",
            "--quiet",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tidelake binary runs");
    let mut compacted = 0;
    while stream.try_wait().expect("wait").is_none() {
        let report = optimize(dir.path(), &url, &["--target-file-size", "64KiB"]);
        compacted += report["partitionsCompacted"].as_u64().unwrap_or(0);
    }
    let streamed = stream.wait_with_output().expect("wait");
    assert_exit(&streamed, 0);
    let appended = appender.stop();
    assert!(appended.errors.is_empty(), "{:?}", appended.errors);
    assert!(compacted > 0, "optimize compacted while the others wrote");

    // Every row of every writer is there exactly once; the log replays.
    validate(dir.path(), &url);
    let read = python.read(&url, &["live-w0", "live-w1", "live-w2"]);
    let rows = read.transactions();
    assert_eq!(
        rows.len() as u64,
        before.rows.len() as u64 + 30_000 + appended.rows,
        "{}",
        describe(&streamed)
    );
    let python_rows = rows
        .iter()
        .filter(|r| r.account_id.starts_with("py"))
        .count() as u64;
    assert_eq!(python_rows, appended.rows);
    for app in ["live-w0", "live-w1", "live-w2"] {
        assert!(read.txn[app].is_some(), "{app} committed");
    }
    read.assert_log_stats_match_files();
}
