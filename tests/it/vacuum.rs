//! `tidelake table vacuum` and `tidelake table checkpoint` on tables written by
//! `tidelake run`, read back by delta-rs: vacuum deletes exactly the files a delta-rs
//! compaction removed (and orphans), only past the retention and only with `--force`
//! below 7 days, and time travel inside the retention still reads; a checkpoint with
//! log cleanup leaves a table delta-rs reads and our writer goes on committing to.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::python::{Python, TransactionOut};
use crate::support::{age_commits, assert_exit, describe, tidelake};

/// 2024-05-01T10:00:00Z.
const START_MS: u64 = 1_714_557_600_000;

/// Writes `n` transactions 50 ms apart from `start` as the CSV file `name` in `dir`.
fn write_csv(dir: &Path, name: &str, n: u64, start: u64, prefix: &str) {
    let text: String = (0..n)
        .map(|i| format!("{prefix}{},{},{}.25\n", i % 13, start + i * 50, 10 + i % 90))
        .collect();
    std::fs::write(dir.join(name), text).expect("write the input");
}

/// `tidelake run` of the CSV file `input` into the table `t` in `dir`, one commit per
/// second of event time.
fn run(dir: &Path, input: &str, job: &str) {
    let args = [
        "run",
        "--source",
        "csv",
        "--input",
        input,
        "--job-id",
        job,
        "--table",
        "t",
        "--commit-interval",
        "1s",
        // One commit per epoch and no compaction: small files for the test to compact.
        "--max-commit-rate",
        "0s",
        "--no-auto-compact",
        "--alerts",
        "alerts.jsonl",
        "--quiet",
    ];
    assert_exit(&tidelake(dir, &args), 0);
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(output)))
}

fn sorted(mut rows: Vec<TransactionOut>) -> Vec<TransactionOut> {
    rows.sort_by(|a, b| {
        (&a.account_id, a.dt, a.amount.to_bits()).cmp(&(&b.account_id, b.dt, b.amount.to_bits()))
    });
    rows
}

/// The `path`s of a vacuum report's files.
fn vacuumed(report: &Value) -> BTreeSet<String> {
    report["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_owned())
        .collect()
}

#[test]
fn vacuum_deletes_the_files_a_compaction_removed_and_only_with_force_below_a_week() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = Python::find();
    let table_dir = dir.path().join("t");
    let url = table_dir.display().to_string();
    write_csv(dir.path(), "tx.csv", 400, START_MS, "a");
    run(dir.path(), "tx.csv", "v");
    let before = python.read(&url, &[]);
    assert!(before.add_actions.len() >= 10, "small files to compact");

    let compaction = python.compact(&url);
    assert_eq!(compaction.version, before.version + 1);
    assert_eq!(compaction.removed.len(), before.add_actions.len());
    // Files vacuum must leave alone, and an orphan it may take.
    for (path, text) in [
        ("_in-progress/part-x.parquet", "in progress"),
        ("_tidelake/state", "state"),
        ("date=2024-05-01/.part-x.parquet.crc", "crc"),
        ("date=2024-05-01/orphan.parquet", "orphan"),
    ] {
        std::fs::create_dir_all(table_dir.join(path).parent().expect("parent")).expect("mkdir");
        std::fs::write(table_dir.join(path), text).expect("write");
    }

    // The default retention (a week) keeps everything, and time travel to before the
    // compaction reads the removed files.
    let output = tidelake(dir.path(), &["table", "vacuum", &url, "--json"]);
    assert_exit(&output, 0);
    let kept = json_of(&output);
    assert_eq!(kept["files"], serde_json::json!([]));
    assert_eq!(kept["retentionMs"], 7 * 24 * 3_600_000u64);
    assert_eq!(kept["retainedFiles"], compaction.removed.len() + 1);
    let old = python.read_version(&url, before.version, &[]);
    assert_eq!(sorted(old.transactions()), sorted(before.transactions()));

    // Under a week needs --force.
    let output = tidelake(dir.path(), &["table", "vacuum", &url, "--retention", "1h"]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "tidelake: error: VACUUM of {url} refused: a retention of 1h is shorter than 168h"
        )) && stderr.contains("(--force)"),
        "{}",
        describe(&output)
    );

    // The dry run lists exactly the removed files and the orphan, and deletes nothing.
    let mut expected: BTreeSet<String> = compaction.removed.iter().cloned().collect();
    expected.insert("date=2024-05-01/orphan.parquet".to_owned());
    let args = ["table", "vacuum", &url, "--retention", "0h", "--force"];
    let output = tidelake(dir.path(), &[&args[..], &["--dry-run", "--json"]].concat());
    assert_exit(&output, 0);
    let dry = json_of(&output);
    assert_eq!(vacuumed(&dry), expected);
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["liveFiles"], compaction.added.len());
    assert!(expected.iter().all(|path| table_dir.join(path).is_file()));
    let output = tidelake(dir.path(), &[&args[..], &["--dry-run"]].concat());
    assert_exit(&output, 0);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!(
            "Table {url} at version {}: vacuum would delete {} files",
            compaction.version,
            expected.len()
        )),
        "{text}"
    );

    // The real vacuum deletes them, commits VACUUM START and END, and the table is
    // still valid and reads the same rows.
    let output = tidelake(dir.path(), &[&args[..], &["--json"]].concat());
    assert_exit(&output, 0);
    let done = json_of(&output);
    assert_eq!(vacuumed(&done), expected);
    let (start, end) = (compaction.version + 1, compaction.version + 2);
    assert_eq!(done["commits"], serde_json::json!([start, end]));
    assert!(expected.iter().all(|path| !table_dir.join(path).exists()));
    for path in [
        "_in-progress/part-x.parquet",
        "_tidelake/state",
        "date=2024-05-01/.part-x.parquet.crc",
    ] {
        assert!(table_dir.join(path).is_file(), "{path} is never touched");
    }
    let output = tidelake(dir.path(), &["table", "validate", &url]);
    assert_exit(&output, 0);
    let after = python.read(&url, &["v-w0"]);
    assert_eq!(after.version, end);
    assert_eq!(sorted(after.transactions()), sorted(before.transactions()));
    assert_eq!(
        after.txn["v-w0"],
        Some(((START_MS + 399 * 50) / 1000) as i64)
    );
    let history = json_of(&tidelake(
        dir.path(),
        &["table", "history", &url, "--json", "--limit", "2"],
    ));
    assert_eq!(history["commits"][0]["operation"], "VACUUM END");
    assert_eq!(history["commits"][1]["operation"], "VACUUM START");
}

#[test]
fn checkpoint_cleans_up_the_expired_log_and_readers_and_writers_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = Python::find();
    let table_dir = dir.path().join("t");
    let url = table_dir.display().to_string();
    write_csv(dir.path(), "one.csv", 300, START_MS, "a");
    write_csv(dir.path(), "two.csv", 300, START_MS + 60_000, "b");
    run(dir.path(), "one.csv", "one");
    let first = python.read(&url, &[]);

    // Fresh commits: a checkpoint, and nothing to clean up.
    let output = tidelake(dir.path(), &["table", "checkpoint", &url]);
    assert_exit(&output, 0);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!(
            "Table {url}: checkpoint of version {} written (",
            first.version
        )) && text.contains("nothing removed"),
        "{text}"
    );

    // Commits older than the retention: every one below the newest checkpoint goes.
    age_commits(&table_dir, 40);
    let output = tidelake(dir.path(), &["table", "checkpoint", &url, "--json"]);
    assert_exit(&output, 0);
    let report = json_of(&output);
    assert_eq!(report["checkpoint"]["version"], first.version);
    assert_eq!(report["checkpoint"]["addFiles"], first.add_actions.len());
    assert_eq!(report["cleanup"]["keptFromCheckpoint"], first.version);
    let removed: Vec<String> = (0..first.version)
        .map(|v| format!("{v:020}.json"))
        .collect();
    assert_eq!(report["cleanup"]["removed"], serde_json::json!(removed));
    let log = table_dir.join("_delta_log");
    assert!(!log.join("00000000000000000000.json").exists());
    assert!(
        log.join(format!("{:020}.checkpoint.parquet", first.version))
            .is_file()
    );

    // delta-rs reads it from the checkpoint, and our writer goes on committing.
    let read = python.read(&url, &["one-w0"]);
    assert_eq!(read.version, first.version);
    assert_eq!(
        sorted(read.transactions()),
        sorted(first.transactions()),
        "the same rows"
    );
    run(dir.path(), "two.csv", "two");
    let last = python.read(&url, &["one-w0", "two-w0"]);
    assert!(last.version > first.version);
    assert_eq!(last.rows.len(), 600);
    assert_eq!(
        last.txn["two-w0"],
        Some(((START_MS + 60_000 + 299 * 50) / 1000) as i64)
    );
    let output = tidelake(dir.path(), &["table", "validate", &url]);
    assert_exit(&output, 0);
}
