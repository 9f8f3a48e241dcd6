//! Many writers on one table (docs/scaling.md): `tidelake bench --scenario writers` at
//! test size — 8 simulated writers, a few hundred commits, per-worker and group commits,
//! on local disk and on moto S3 — read back by delta-rs and by the log's own files; and
//! `tidelake run --commit-scope process` against the reference model. Performance is
//! never asserted.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::delta_sink::{START_MS, expected_rows, run_job, sorted, transactions, write_csv};
use crate::moto::{BUCKET, MotoServer};
use crate::python::Python;
use crate::support::{assert_exit, describe};

const WRITERS: usize = 8;
/// Simulated 2024-05-01T00:00:00Z, where the scenario starts.
const SIM_START_MS: u64 = 1_714_521_600_000;
const EPOCH_MS: u64 = 10_000;
const ROWS_PER_EPOCH: u64 = 7;

/// What `delta_read.py log` says of the log's files.
#[derive(Debug, Deserialize)]
struct Log {
    commits: Vec<u64>,
    checkpoints: Vec<u64>,
    txns: BTreeMap<String, Vec<i64>>,
    adds: u64,
}

/// What `delta_read.py from-checkpoint` read.
#[derive(Debug, Deserialize)]
struct FromCheckpoint {
    checkpoint: u64,
    version: u64,
    files: u64,
    rows: u64,
    txn: BTreeMap<String, Option<i64>>,
}

fn app_ids() -> Vec<String> {
    (0..WRITERS)
        .map(|w| format!("bench-writers-w{w}"))
        .collect()
}

/// Runs the scenario for `minutes` of simulated time against `table` with `scope`,
/// and returns its JSON report.
fn bench(dir: &Path, table: &str, scope: &str, minutes: u64, env: &[(String, String)]) -> Value {
    let json = dir.join(format!("{scope}.json"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args([
            "bench",
            "--scenario",
            "writers",
            "--writers",
            &WRITERS.to_string(),
            "--epoch",
            "10s",
            "--duration",
            &format!("{minutes}min"),
            "--rows-per-epoch",
            &ROWS_PER_EPOCH.to_string(),
            "--commit-scope",
            scope,
            "--table",
            table,
            "--auto-compact-every",
            "25",
            "--json",
        ])
        .arg(&json)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("the tidelake binary runs");
    assert_exit(&output, 0);
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the report")).expect("JSON");
    assert_eq!(
        report["verified"]["problem"],
        Value::Null,
        "{}",
        describe(&output)
    );
    report
}

/// Checks the table the scenario wrote, `minutes` long, with real readers: every
/// writer's epochs exactly once and in order in the log, versions contiguous, every row
/// read by delta-rs and polars, and the newest checkpoint alone enough for delta-rs.
fn check_table(python: &Python, table: &str, minutes: u64, report: &Value) -> Log {
    let epochs = minutes * 60_000 / EPOCH_MS;
    let first = (SIM_START_MS / EPOCH_MS) as i64;
    let log: Log = python.run(&["log", table]);
    let version = report["verified"]["version"].as_u64().expect("version");
    assert_eq!(
        log.commits,
        (0..=version).collect::<Vec<u64>>(),
        "versions 0 to {version}, none missing"
    );
    assert_eq!(log.txns.len(), WRITERS, "{:?}", log.txns.keys());
    for app in app_ids() {
        assert_eq!(
            log.txns[&app],
            (first..first + epochs as i64).collect::<Vec<i64>>(),
            "{app}: each epoch's txn once, in order"
        );
    }
    assert!(!log.checkpoints.is_empty(), "checkpoints were written");

    let apps = app_ids();
    let apps: Vec<&str> = apps.iter().map(String::as_str).collect();
    let read = python.read(table, &apps);
    assert_eq!(read.version, version);
    let mut expected = Vec::new();
    for w in 0..WRITERS {
        for epoch in first as u64..first as u64 + epochs {
            for i in 0..ROWS_PER_EPOCH {
                let ts = epoch * EPOCH_MS + i * EPOCH_MS / ROWS_PER_EPOCH;
                let account = format!("acct_{w:03}_{:04}", (epoch + i) % 1_000);
                let amount = ((epoch * 7 + i * 13) % 100_000) as f64 / 100.0;
                expected.push((account, ts as i64 * 1000, amount.to_bits()));
            }
        }
    }
    expected.sort();
    let mut rows: Vec<(String, i64, u64)> = read
        .transactions()
        .into_iter()
        .map(|r| (r.account_id, r.dt, r.amount.to_bits()))
        .collect();
    rows.sort();
    assert_eq!(rows.len(), expected.len(), "rows");
    assert!(
        rows == expected,
        "delta-rs reads exactly the rows the writers committed"
    );
    assert_eq!(read.polars_rows, expected.len() as u64, "rows (polars)");
    for app in &apps {
        assert_eq!(read.txn[*app], Some(first + epochs as i64 - 1), "{app}");
    }
    read.assert_log_stats_match_files();

    let from: FromCheckpoint = python.run(
        &[
            &["from-checkpoint", table][..],
            &apps
                .iter()
                .flat_map(|a| ["--app-id", a])
                .collect::<Vec<_>>(),
        ]
        .concat(),
    );
    assert_eq!(
        from.checkpoint,
        *log.checkpoints.last().expect("a checkpoint")
    );
    assert_eq!(from.version, version);
    assert_eq!(from.rows, expected.len() as u64);
    assert_eq!(from.files, read.add_actions.len() as u64);
    for app in &apps {
        assert_eq!(
            from.txn[*app],
            Some(first + epochs as i64 - 1),
            "{app} from the checkpoint"
        );
    }
    log
}

#[test]
fn eight_writers_on_local_disk_commit_every_epoch_once_per_worker_or_as_a_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = Python::find();
    // 8 writers × 42 epochs = 336 commits each way.
    let minutes = 7;
    let table = dir.path().join("per-worker").display().to_string();
    let report = bench(dir.path(), &table, "worker", minutes, &[]);
    let per_worker = check_table(&python, &table, minutes, &report);
    let hours = report["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0]["commits"], 8 * 42);
    assert!(
        per_worker.commits.len() > 8 * 42,
        "one version per writer and epoch (and compactions)"
    );

    let table = dir.path().join("grouped").display().to_string();
    let report = bench(dir.path(), &table, "process", minutes, &[]);
    let grouped = check_table(&python, &table, minutes, &report);
    let commits = report["hours"][0]["commits"].as_u64().expect("commits");
    assert_eq!(commits, 8 * 42, "every writer's epoch committed");
    assert!(
        grouped.commits.len() < per_worker.commits.len(),
        "group commits make fewer versions: {} against {}",
        grouped.commits.len(),
        per_worker.commits.len()
    );
    assert!(grouped.adds >= 8 * 42);
}

#[test]
fn eight_writers_on_moto_s3_commit_every_epoch_once_per_worker_or_as_a_group() {
    let moto = MotoServer::start();
    let env = moto.env();
    let python = Python::find().with_env(env.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    for scope in ["worker", "process"] {
        let table = format!("s3://{BUCKET}/writers-{scope}");
        let report = bench(dir.path(), &table, scope, 3, &env);
        assert!(
            report["store_put_ms"].as_f64().is_some_and(|ms| ms > 0.0),
            "the store's put latency is measured"
        );
        check_table(&python, &table, 3, &report);
    }
}

#[test]
fn a_job_with_group_commits_writes_exactly_the_input_and_a_rerun_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let txs = transactions(9, 30_000, START_MS, "g");
    write_csv(&dir.path().join("tx.csv"), &txs);
    let args = [
        "--source",
        "csv",
        "--input",
        "tx.csv",
        "--workers",
        "3",
        "--job-id",
        "grouped",
        "--table",
        "lake/t",
        "--alerts",
        "alerts.jsonl",
        "--commit-interval",
        "1s",
        "--commit-scope",
        "process",
        // Every epoch sealed on its own, so that workers seal theirs together.
        "--max-commit-rate",
        "0s",
        "--no-auto-compact",
        "--no-checkpoints",
    ];
    run_job(dir.path(), &args, &[]);
    let table = dir.path().join("lake/t").display().to_string();
    let python = Python::find();
    let apps = ["grouped-w0", "grouped-w1", "grouped-w2"];
    let read = python.read(&table, &apps);
    assert_eq!(sorted(read.transactions()), expected_rows(&txs), "rows");
    read.assert_log_stats_match_files();

    let log: Log = python.run(&["log", &table]);
    assert_eq!(log.commits, (0..=read.version).collect::<Vec<u64>>());
    let per_writer: usize = log.txns.values().map(Vec::len).sum();
    assert!(
        (read.version as usize) < per_writer,
        "{} versions for {per_writer} epochs of the 3 workers: grouped",
        read.version
    );
    for app in apps {
        let epochs = &log.txns[app];
        assert!(
            epochs.windows(2).all(|w| w[0] < w[1]),
            "{app}: each epoch once, in order: {epochs:?}"
        );
        assert_eq!(read.txn[app], epochs.last().copied(), "{app}");
    }

    // Again without checkpoints: every epoch is in the log, so nothing is committed.
    let again = run_job(dir.path(), &args, &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("lake: 0 commits, 0 files"), "{stderr}");
    assert_eq!(python.read(&table, &[]).version, read.version);
}
