//! Commits sized for the table (docs/semantics.md §5), through the binary: a replay of
//! hundreds of epochs makes a few commits whose files hold many epochs, each commit
//! holding exactly the epochs after the writer's previous `txn` up to its own, with the
//! table's rows exactly the input's (delta-rs, polars); a re-run at another commit rate
//! commits nothing; and a live stream still commits every epoch on its own.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::delta_sink::{START_MS, expected_rows, run_job, sorted, transactions, write_csv};
use crate::python::Python;
use crate::support::epoch_ms;

/// One writer's commit, from the JSON log: its `txn` version and the epochs (of
/// `interval_ms`) the `dt` ranges of its files span.
#[derive(Debug)]
struct WriterCommit {
    version: u64,
    txn: i64,
    first_epoch: i64,
    last_epoch: i64,
}

/// Each `appId`'s commits (those with a `txn` and data files), in log order.
fn writer_commits(table: &Path, interval_ms: i64) -> BTreeMap<String, Vec<WriterCommit>> {
    let mut commits: BTreeMap<String, Vec<WriterCommit>> = BTreeMap::new();
    for version in 0.. {
        let path = table.join(format!("_delta_log/{version:020}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            break;
        };
        let actions: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON action"))
            .collect();
        let txns: Vec<(String, i64)> = actions
            .iter()
            .filter_map(|a| a.get("txn"))
            .map(|t| {
                let app = t["appId"].as_str().expect("appId").to_owned();
                (app, t["version"].as_i64().expect("txn version"))
            })
            .collect();
        let [(app, txn)] = txns.as_slice() else {
            assert!(txns.is_empty(), "version {version}: one writer per commit");
            continue;
        };
        let epochs: Vec<i64> = actions
            .iter()
            .filter_map(|a| a.get("add"))
            .flat_map(|add| {
                let stats: Value =
                    serde_json::from_str(add["stats"].as_str().expect("stats")).expect("json");
                let dt = |bound: &str| {
                    let text = stats[bound]["dt"].as_str().expect("dt bound");
                    epoch_ms(text) as i64 / interval_ms
                };
                [dt("minValues"), dt("maxValues")]
            })
            .collect();
        commits.entry(app.clone()).or_default().push(WriterCommit {
            version,
            txn: *txn,
            first_epoch: *epochs.iter().min().expect("a commit with files"),
            last_epoch: *epochs.iter().max().expect("a commit with files"),
        });
    }
    commits
}

#[test]
fn a_replay_commits_few_batches_of_whole_epochs_and_a_rerun_at_any_rate_commits_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // acct_000123-style ids; about 570 s of event time in 1 s epochs, over midnight.
    let txs = transactions(11, 60_000, START_MS, "acct_000");
    write_csv(&dir.path().join("tx.csv"), &txs);
    let args = [
        "--source",
        "csv",
        "--input",
        "tx.csv",
        "--workers",
        "2",
        "--job-id",
        "replay",
        "--table",
        "lake/t",
        "--alerts",
        "alerts.jsonl",
        "--commit-interval",
        "1s",
        "--tick",
        "100ms",
    ];
    run_job(dir.path(), &args, &[]);
    let table = dir.path().join("lake/t");
    let url = table.display().to_string();
    let read = Python::find().read(&url, &["replay-w0", "replay-w1"]);
    assert_eq!(sorted(read.transactions()), expected_rows(&txs), "rows");
    assert_eq!(read.polars_rows, txs.len() as u64, "rows (polars)");
    read.assert_log_stats_match_files();

    let epochs: std::collections::BTreeSet<u64> = txs.iter().map(|t| t.ts / 1_000).collect();
    let commits = writer_commits(&table, 1_000);
    assert_eq!(commits.len(), 2, "both workers committed: {commits:?}");
    let count: usize = commits.values().map(Vec::len).sum();
    assert!(
        count * 10 <= epochs.len(),
        "{count} commits for {} epochs: batched\n{commits:?}",
        epochs.len()
    );
    for (app, commits) in &commits {
        // Each commit holds exactly the epochs after the previous txn, up to its own.
        let mut previous = i64::MIN;
        for commit in commits {
            assert!(
                previous < commit.first_epoch && commit.last_epoch <= commit.txn,
                "{app}: {commit:?} after txn {previous}"
            );
            previous = commit.txn;
        }
        let last = commits.last().expect("commits");
        assert_eq!(
            read.txn[app],
            Some(last.txn),
            "{app}: txn at its last commit"
        );
        assert_eq!(last.txn, last.last_epoch, "{app}: txn at its last epoch");
    }

    // Again with every epoch on its own and no checkpoint to restore: every epoch is
    // committed, nothing is written.
    let again = run_job(
        dir.path(),
        &[&args[..], &["--no-checkpoints", "--max-commit-rate", "0s"]].concat(),
        &[],
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("were already committed by job id replay"),
        "{stderr}"
    );
    assert!(stderr.contains("lake: 0 commits, 0 files"), "{stderr}");
    let reread = Python::find().read(&url, &[]);
    assert_eq!(reread.version, read.version);
}

#[test]
fn a_live_stream_commits_every_epoch_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Event time at the wall clock's pace: 2 s epochs end 2 s apart, twice the default
    // --max-commit-rate.
    let args = [
        "--source",
        "generator",
        "--count",
        "12000",
        "--rate",
        "2000",
        "--density",
        "2000",
        "--accounts",
        "300",
        "--start",
        "2024-05-01T00:00:00Z",
        "--workers",
        "2",
        "--job-id",
        "live",
        "--table",
        "t",
        "--alerts",
        "alerts.jsonl",
        "--commit-interval",
        "2s",
        "--tick",
        "100ms",
    ];
    run_job(dir.path(), &args, &[]);
    let table = dir.path().join("t");
    let read = Python::find().read(&table.display().to_string(), &["live-w0", "live-w1"]);
    assert_eq!(read.rows.len(), 12_000);
    let commits = writer_commits(&table, 2_000);
    assert_eq!(commits.len(), 2, "both workers committed");
    for (app, commits) in &commits {
        assert!(commits.len() >= 3, "{app}: {commits:?}");
        for commit in commits {
            assert_eq!(
                (commit.first_epoch, commit.last_epoch),
                (commit.txn, commit.txn),
                "{app}: one epoch per commit, version {}",
                commit.version
            );
        }
    }
}
