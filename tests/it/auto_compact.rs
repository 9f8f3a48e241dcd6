//! Auto-compaction through the binary: a run committing every second of event time with
//! `--auto-compact` ends with few live files, and the table still holds exactly the
//! input's rows, as delta-rs reads them.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::python::Python;
use crate::support::assert_exit;

/// A number from the summary line that starts with `label` (e.g. `  lake: `), the
/// `index`-th word after it.
fn summary_number(stderr: &str, label: &str, index: usize) -> u64 {
    stderr
        .split(label)
        .nth(1)
        .and_then(|rest| rest.split(' ').nth(index))
        .and_then(|n| n.trim_end_matches(',').replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no number {index} after {label:?} in {stderr}"))
}

fn run(dir: &Path, table: &str, extra: &[&str]) -> (String, f64) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args([
            "run",
            "--count",
            "120000",
            "--density",
            "1000",
            "--start",
            "2024-05-01T00:00:00Z",
            "--accounts",
            "1000",
            "--workers",
            "2",
            // One commit per epoch, for many small files.
            "--max-commit-rate",
            "0s",
            "--commit-interval",
            "1s",
            "--alerts",
            "alerts.jsonl",
            "--quiet",
            "--job-id",
            table,
            "--table",
            table,
        ])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("the tidelake binary runs");
    assert_exit(&output, 0);
    let elapsed = started.elapsed().as_secs_f64();
    (
        String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed,
    )
}

#[test]
fn a_run_with_auto_compaction_ends_with_few_files_and_every_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = Python::find();

    let (plain, plain_secs) = run(dir.path(), "plain", &["--no-auto-compact"]);
    let (compacted, compacted_secs) = run(
        dir.path(),
        "compacted",
        &[
            "--auto-compact-every",
            "10",
            "--auto-compact-min-files",
            "5",
        ],
    );
    // Reported, not asserted: timing on a shared 2-core machine is noise.
    eprintln!(
        "auto-compaction: {compacted_secs:.2} s with, {plain_secs:.2} s without ({:.2}×)",
        compacted_secs / plain_secs
    );

    // 120 s of event time at a 1 s interval: about 120 commits per worker.
    let commits = summary_number(&compacted, "\n  lake: ", 0);
    assert!(commits >= 200, "{commits} commits\n{compacted}");
    assert!(
        compacted.contains("auto-compaction of compacted:"),
        "{compacted}"
    );
    let plain_read = python.read(&dir.path().join("plain").display().to_string(), &[]);
    let read = python.read(
        &dir.path().join("compacted").display().to_string(),
        &["compacted-w0", "compacted-w1"],
    );
    assert!(
        read.add_actions.len() as u64 * 5 <= commits,
        "{} live files after {commits} commits\n{compacted}",
        read.add_actions.len()
    );
    let plain_commits = summary_number(&plain, "\n  lake: ", 0);
    assert_eq!(plain_commits, commits, "the same epochs are committed");
    assert_eq!(
        plain_read.add_actions.len() as u64,
        commits,
        "one file per commit without compaction"
    );

    // The same rows as the run without compaction, and the txns are kept.
    let mut rows = read.transactions();
    let mut expected = plain_read.transactions();
    let key = |r: &crate::python::TransactionOut| {
        (r.account_id.clone(), r.dt, r.amount.to_bits(), r.alert)
    };
    rows.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(rows.len(), 120_000);
    assert_eq!(rows, expected);
    for app in ["compacted-w0", "compacted-w1"] {
        assert!(read.txn[app].is_some(), "{app} kept its txn");
    }
    read.assert_log_stats_match_files();

    let validate = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args(["table", "validate", "compacted"])
        .current_dir(dir.path())
        .output()
        .expect("the tidelake binary runs");
    assert_exit(&validate, 0);
}
