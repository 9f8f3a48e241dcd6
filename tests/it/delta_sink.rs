//! The fraud job's lake outputs through the binary, read back by real readers: the
//! transactions table (exactly the input's rows, alert flags as the reference model
//! says, one `txn` per worker at its last epoch, stats equal to the files'), a re-run
//! with the same job id writing nothing, delta-rs writing and checkpointing the same
//! table between and during our runs, S3 on moto, the alerts table, and the rolling
//! Parquet files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::moto::{BUCKET, MotoServer};
use crate::python::{Python, TableRead, TransactionOut};
use crate::reference::{self, RefAlert, Tx};
use crate::support::{AlertLine, Rng, assert_exit, describe, read_lines, rfc3339_millis};

/// 2024-05-01T23:58:00Z: the input crosses midnight, so it has two `date` partitions.
pub(crate) const START_MS: u64 = 1_714_607_880_000;

/// `lines` transactions from `start` on, about 10 ms apart, on 300 accounts, with
/// enough small and large amounts for alerts; `prefix` names the accounts.
pub(crate) fn transactions(seed: u64, lines: usize, start: u64, prefix: &str) -> Vec<Tx> {
    let mut rng = Rng(seed);
    let mut ts = start;
    (0..lines)
        .map(|i| {
            ts += rng.below(20);
            let cents = match rng.below(100) {
                0..8 => 1 + rng.below(99),
                8..16 => 50_001 + rng.below(100_000),
                _ => 100 + rng.below(40_000),
            };
            Tx {
                account: format!("{prefix}{}", rng.below(300)),
                ts,
                partition: 0,
                seq: i as u64,
                amount: cents as f64 / 100.0,
            }
        })
        .collect()
}

/// Writes `txs` as the CSV file `path`.
pub(crate) fn write_csv(path: &Path, txs: &[Tx]) {
    let text: String = txs
        .iter()
        .map(|t| format!("{},{},{:.2}\n", t.account, t.ts, t.amount))
        .collect();
    std::fs::write(path, text).expect("write the input");
}

/// The rows the `transactions` table must hold for `txs`: every transaction, flagged
/// where the reference model raises an alert on it, sorted.
pub(crate) fn expected_rows(txs: &[Tx]) -> Vec<TransactionOut> {
    let mut alerts: BTreeMap<(String, u64, u64), usize> = BTreeMap::new();
    for (account, ts, _, _, large) in reference::alerts(txs) {
        *alerts.entry((account, ts, large)).or_default() += 1;
    }
    let rows = txs.iter().map(|t| {
        let key = (t.account.clone(), t.ts, t.amount.to_bits());
        let alert = match alerts.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        TransactionOut {
            dt: t.ts as i64 * 1000,
            account_id: t.account.clone(),
            amount: t.amount,
            alert,
            date: Some(rfc3339_millis(t.ts)[..10].to_owned()),
        }
    });
    sorted(rows.collect())
}

pub(crate) fn sorted(mut rows: Vec<TransactionOut>) -> Vec<TransactionOut> {
    rows.sort_by(|a, b| {
        (&a.account_id, a.dt, a.amount.to_bits(), a.alert).cmp(&(
            &b.account_id,
            b.dt,
            b.amount.to_bits(),
            b.alert,
        ))
    });
    rows
}

/// Runs `tidelake run` in `dir` with `args` (and `env`), expecting success.
pub(crate) fn run_job(dir: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .arg("run")
        .args(args)
        .arg("--quiet")
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("the tidelake binary runs");
    assert_exit(&output, 0);
    output
}

/// `(worker, epoch)` of every live data file, from its name (`part-<worker>-…`) and
/// its `dt` range, which must lie in one epoch of `interval_ms`.
fn worker_epochs(read: &TableRead, interval_ms: i64) -> BTreeSet<(usize, i64)> {
    read.add_actions
        .iter()
        .filter(|a| a.path.contains("/part-"))
        .map(|add| {
            let name = add.path.rsplit('/').next().unwrap_or_default();
            let worker: usize = name[5..10].parse().expect("part-<worker:05>-…");
            let epoch = |v: &Value| v.as_i64().expect("dt as µs") / 1000 / interval_ms;
            let (first, last) = (epoch(&add.min["dt"]), epoch(&add.max["dt"]));
            assert_eq!(first, last, "file {} spans epochs", add.path);
            (worker, first)
        })
        .collect()
}

/// The last epoch of each worker, from its files.
fn last_epochs(epochs: &BTreeSet<(usize, i64)>) -> BTreeMap<usize, i64> {
    epochs.iter().map(|&(w, e)| (w, e)).collect()
}

#[test]
fn the_table_holds_exactly_the_input_and_a_rerun_with_the_job_id_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let txs = transactions(1, 20_000, START_MS, "a");
    write_csv(&dir.path().join("tx.csv"), &txs);
    let args = [
        "--source",
        "csv",
        "--input",
        "tx.csv",
        "--workers",
        "2",
        "--job-id",
        "it-run",
        "--table",
        "lake/t",
        "--alerts",
        "alerts.jsonl",
        "--commit-interval",
        "10s",
        // Every epoch its own commit, its own files (tests/it/commit_batches.rs has the
        // default).
        "--max-commit-rate",
        "0s",
        "--no-auto-compact",
    ];
    let first = run_job(dir.path(), &args, &[]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("as job id it-run to lake/t"), "{stderr}");

    let table = dir.path().join("lake/t").display().to_string();
    let read = Python::find().read(&table, &["it-run-w0", "it-run-w1", "it-run-w2"]);
    assert_eq!(sorted(read.transactions()), expected_rows(&txs), "rows");
    assert_eq!(read.polars_rows, txs.len() as u64, "rows (polars)");
    read.assert_log_stats_match_files();

    // The alert flags agree with the alerts the job printed.
    let alerts: Vec<AlertLine> = read_lines(&dir.path().join("alerts.jsonl"));
    let flagged = read.transactions().iter().filter(|r| r.alert).count();
    assert!(flagged > 50, "{flagged} alerts: not a meaningful check");
    assert_eq!(alerts.len(), flagged);

    // One commit per worker and epoch with rows, each worker's txn at its last epoch.
    let epochs = worker_epochs(&read, 10_000);
    assert_eq!(
        read.version,
        epochs.len() as u64,
        "version 0 creates the table"
    );
    let last = last_epochs(&epochs);
    assert_eq!(last.len(), 2, "both workers had rows");
    for (worker, epoch) in &last {
        assert_eq!(read.txn[&format!("it-run-w{worker}")], Some(*epoch));
    }
    assert_eq!(read.txn["it-run-w2"], None);

    // The same job id and input again: it restores the checkpoint of the end of the
    // input, and runs nothing again.
    let again = run_job(dir.path(), &args, &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("at the end of the input"), "{stderr}");
    assert!(stderr.contains("lake: 0 commits, 0 files"), "{stderr}");
    // Without checkpoints it reads everything again, and the table's txn versions keep
    // every epoch from being committed twice.
    let again = run_job(
        dir.path(),
        &[&args[..], &["--no-checkpoints"]].concat(),
        &[],
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!(
            "{} epochs (20,000 rows) were already committed by job id it-run",
            epochs.len()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("lake: 0 commits, 0 files"), "{stderr}");
    let reread = Python::find().read(&table, &[]);
    assert_eq!(reread.version, read.version);
    assert_eq!(reread.rows.len(), txs.len());
}

#[test]
fn delta_rs_writes_and_checkpoints_the_table_between_our_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = Python::find();
    let table = dir.path().join("t").display().to_string();
    let first = transactions(2, 3_000, START_MS, "a");
    let second = transactions(3, 3_000, START_MS + 60_000, "b");
    write_csv(&dir.path().join("first.csv"), &first);
    write_csv(&dir.path().join("second.csv"), &second);
    let run = |input: &str, job: &str| {
        run_job(
            dir.path(),
            &[
                "--source",
                "csv",
                "--input",
                input,
                "--job-id",
                job,
                "--table",
                &table,
                "--commit-interval",
                "1s",
                "--tick",
                "100ms",
                "--max-commit-rate",
                "0s",
                "--no-auto-compact",
                "--alerts",
                "alerts.jsonl",
            ],
            &[],
        )
    };

    // Ours first (a 1 s interval makes dozens of commits, so our own checkpoints too).
    run("first.csv", "one");
    let ours = python.read(&table, &["one-w0"]);
    assert!(ours.version > 20, "version {}", ours.version);
    assert!(
        dir.path()
            .join("t/_delta_log/00000000000000000020.checkpoint.parquet")
            .is_file()
    );

    // delta-rs appends to our table and checkpoints it; we go on committing after it.
    let appended = python.append(&table, 25);
    assert_eq!(appended, ours.version + 1);
    assert_eq!(python.checkpoint(&table), appended);
    // As a log cleanup with a short retention would: only delta-rs's checkpoint is left
    // to start from.
    for version in 0..appended {
        let commit = dir.path().join(format!("t/_delta_log/{version:020}.json"));
        std::fs::remove_file(&commit).expect("delete an old commit");
    }
    run("second.csv", "two");

    let read = python.read(&table, &["one-w0", "two-w0"]);
    let epochs = |txs: &[Tx]| {
        txs.iter()
            .map(|t| t.ts / 1000)
            .collect::<BTreeSet<_>>()
            .len() as u64
    };
    assert_eq!(
        read.version,
        epochs(&first) + 1 + epochs(&second),
        "versions are contiguous: ours, delta-rs's, ours"
    );
    assert_eq!(
        read.txn["one-w0"],
        Some((first.last().expect("rows").ts / 1000) as i64)
    );
    assert_eq!(
        read.txn["two-w0"],
        Some((second.last().expect("rows").ts / 1000) as i64)
    );
    let rows = read.transactions();
    let from_python = rows
        .iter()
        .filter(|r| r.account_id.starts_with("py"))
        .count();
    assert_eq!(from_python, 25);
    let ours: Vec<TransactionOut> = rows
        .into_iter()
        .filter(|r| !r.account_id.starts_with("py"))
        .collect();
    let mut expected = expected_rows(&first);
    expected.extend(expected_rows(&second));
    assert_eq!(sorted(ours), sorted(expected));
    read.assert_log_stats_match_files();
}

#[test]
fn four_workers_and_a_delta_rs_writer_commit_at_once_without_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = Python::find();
    let table = dir.path().join("t").display().to_string();
    let generator = [
        "--source",
        "generator",
        "--count",
        "40000",
        "--rate",
        "10000",
        "--density",
        "2000",
        "--start",
        "2024-05-01T00:00:00Z",
        "--accounts",
        "500",
        "--alerts",
        "alerts.jsonl",
        "--commit-interval",
        "1s",
        "--tick",
        "100ms",
        // Versions are the workers' commits and delta-rs's, nothing else.
        "--no-auto-compact",
        "--table",
        &table,
    ];
    // A first short run creates the table with our schema.
    let mut create = generator.to_vec();
    create[3] = "1";
    run_job(
        dir.path(),
        &[&create[..], &["--job-id", "create"]].concat(),
        &[],
    );

    let stop = dir.path().join("stop");
    let appender = python.spawn_append_loop(&table, &stop, 10);
    wait_for_version(&python, &table, 2);
    let output = run_job(
        dir.path(),
        &[&generator[..], &["--workers", "4", "--job-id", "busy"]].concat(),
        &[],
    );
    let appended = appender.stop();
    assert!(appended.errors.is_empty(), "{:?}", appended.errors);
    assert!(appended.commits > 1, "delta-rs committed while we did");

    let stderr = String::from_utf8_lossy(&output.stderr);
    let commits: u64 = stderr
        .split("\n  lake: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no commit count in {stderr}"));
    let apps = ["busy-w0", "busy-w1", "busy-w2", "busy-w3"];
    let read = python.read(&table, &apps);
    // Version 0 creates the table, version 1 holds the first run's one row.
    assert_eq!(
        read.version,
        1 + commits + appended.commits,
        "no version lost or doubled"
    );
    assert_eq!(read.rows.len() as u64, 1 + 40_000 + appended.rows);

    // Each worker's epochs are in the log once each, in order, the last one its txn.
    let txns = log_txns(&dir.path().join("t"));
    assert_eq!(
        txns.iter()
            .filter(|(_, app, _)| app.starts_with("busy"))
            .count() as u64,
        commits
    );
    for app in apps {
        let epochs: Vec<i64> = txns
            .iter()
            .filter(|(_, a, _)| a == app)
            .map(|t| t.2)
            .collect();
        assert!(!epochs.is_empty(), "{app} committed");
        assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{app}: {epochs:?}");
        assert_eq!(read.txn[app], epochs.last().copied(), "{app}");
    }
}

/// `(version, appId, txn version)` of every `txn` in the JSON commits under `table`.
fn log_txns(table: &Path) -> Vec<(u64, String, i64)> {
    let mut txns = Vec::new();
    for version in 0.. {
        let path = table.join(format!("_delta_log/{version:020}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            break;
        };
        for line in text.lines() {
            let action: Value = serde_json::from_str(line).expect("a JSON action");
            if let Some(txn) = action.get("txn") {
                let app = txn["appId"].as_str().expect("appId").to_owned();
                txns.push((version, app, txn["version"].as_i64().expect("txn version")));
            }
        }
    }
    txns
}

/// Waits until delta-rs sees the table at `version` or later.
fn wait_for_version(python: &Python, table: &str, version: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while python.read(table, &[]).version < version {
        assert!(
            Instant::now() < deadline,
            "the table never reached version {version}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn tables_on_s3_and_the_alerts_table_read_back() {
    let moto = MotoServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let txs = transactions(4, 5_000, START_MS, "s");
    write_csv(&dir.path().join("tx.csv"), &txs);
    let (transactions_url, alerts_url) = (
        format!("s3://{BUCKET}/e2e/transactions"),
        format!("s3://{BUCKET}/e2e/alerts"),
    );
    run_job(
        dir.path(),
        &[
            "--source",
            "csv",
            "--input",
            "tx.csv",
            "--workers",
            "2",
            "--job-id",
            "s3",
            "--table",
            &transactions_url,
            "--alerts-table",
            &alerts_url,
            "--alerts",
            "alerts.jsonl",
        ],
        &moto.env(),
    );
    let python = Python::find().with_env(moto.env());
    let read = python.read(&transactions_url, &[]);
    assert_eq!(sorted(read.transactions()), expected_rows(&txs));
    read.assert_log_stats_match_files();

    let alerts = python.read(&alerts_url, &[]);
    let mut table_alerts: Vec<RefAlert> = alerts.rows.iter().map(alert_of_row).collect();
    table_alerts.sort();
    let mut printed: Vec<RefAlert> = read_lines::<AlertLine>(&dir.path().join("alerts.jsonl"))
        .iter()
        .map(AlertLine::as_ref_alert)
        .collect();
    printed.sort();
    assert_eq!(table_alerts, reference::alerts(&txs));
    assert_eq!(table_alerts, printed);
}

/// An `alerts` table row as a reference alert.
fn alert_of_row(row: &Map<String, Value>) -> RefAlert {
    let micros = |c: &str| row[c].as_u64().unwrap_or_else(|| panic!("{c} in {row:?}"));
    let double = |c: &str| row[c].as_f64().unwrap_or_else(|| panic!("{c} in {row:?}"));
    let dt = micros("dt") / 1000;
    assert_eq!(
        row["date"],
        Value::from(&rfc3339_millis(dt)[..10]),
        "{row:?}"
    );
    (
        row["accountId"].as_str().expect("accountId").to_owned(),
        dt,
        micros("smallDt") / 1000,
        double("smallAmount").to_bits(),
        double("largeAmount").to_bits(),
    )
}

/// What `delta_read.py dataset` prints.
#[derive(Deserialize)]
struct DatasetRead {
    rows: Vec<Map<String, Value>>,
    files: u64,
}

#[test]
fn rolling_parquet_files_hold_every_row_and_nothing_is_left_in_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let txs = transactions(5, 5_000, START_MS, "f");
    write_csv(&dir.path().join("tx.csv"), &txs);
    let output = run_job(
        dir.path(),
        &[
            "--source",
            "csv",
            "--input",
            "tx.csv",
            "--workers",
            "2",
            "--no-table",
            "--parquet-dir",
            "files",
            "--commit-interval",
            "5s",
            "--alerts",
            "alerts.jsonl",
        ],
        &[],
    );
    assert!(
        !dir.path().join("lake").exists(),
        "--no-table writes no table"
    );
    let read: DatasetRead =
        Python::find().run(&["dataset", &dir.path().join("files").display().to_string()]);
    let rows: Vec<TransactionOut> = read
        .rows
        .into_iter()
        .map(|row| serde_json::from_value(Value::Object(row)).expect("a transactions row"))
        .collect();
    assert_eq!(sorted(rows), expected_rows(&txs), "{}", describe(&output));
    // Files roll at every 5 s epoch: at least one file per epoch with rows.
    let epochs: BTreeSet<u64> = txs.iter().map(|t| t.ts / 5_000).collect();
    assert!(read.files > epochs.len() as u64, "{} files", read.files);
    let leftovers: Vec<_> = walk(&dir.path().join("files/_in-progress"))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .flat_map(|e| {
            let path = e.path();
            let mut below = walk(&path);
            below.push(path);
            below
        })
        .collect()
}

#[test]
fn another_schema_a_bad_retention_property_or_no_put_if_absent_is_refused_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_tidelake"))
            .args([
                "run",
                "--count",
                "1000",
                "--quiet",
                "--alerts",
                "alerts.jsonl",
            ])
            .args(args)
            .current_dir(dir.path())
            .envs(env.iter().copied())
            .output()
            .expect("the tidelake binary runs")
    };
    // An alerts table is not a transactions table.
    let output = run(&["--no-table", "--alerts-table", "alerts"], &[]);
    assert_exit(&output, 0);
    let output = run(&["--table", "alerts"], &[]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("table alerts does not match") && stderr.contains("amount"),
        "{stderr}"
    );

    // A retention property delta-rs set without checking it: refused before anything is
    // written, rather than after the tenth commit, whose checkpoint reads it.
    let python = Python::find();
    let table = dir.path().join("alerts");
    let table = table.to_str().expect("utf-8 path");
    let version = python.set_property(table, "delta.deletedFileRetentionDuration", "a week");
    let output = run(&["--no-table", "--alerts-table", "alerts"], &[]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("table property delta.deletedFileRetentionDuration = \"a week\"")
            && stderr.contains("alerts"),
        "{stderr}"
    );
    assert_eq!(python.read(table, &[]).version, version, "nothing written");

    // S3 with conditional put disabled: refused before anything is written (object_store
    // refuses put-if-absent itself, so no server is needed).
    let s3 = [
        ("AWS_ENDPOINT", "http://127.0.0.1:9"),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_CONDITIONAL_PUT", "disabled"),
    ];
    let output = run(&["--table", "s3://bucket/t"], &s3);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not support put-if-absent"),
        "{stderr}"
    );

    // The same store with conditional put on, but nothing listening: the job fails (1)
    // saying the store cannot be written, not that it lacks put-if-absent.
    let output = run(&["--table", "s3://bucket/t"], &s3[..5]);
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("object store error at t/_tidelake/put-if-absent-probe-")
            && stderr.contains("http://127.0.0.1:9/bucket/t/")
            && !stderr.contains("put-if-absent ("),
        "{stderr}"
    );
    // The table commands fail the same way on that store: exit 1, naming the store.
    for command in ["history", "files"] {
        let output = Command::new(env!("CARGO_BIN_EXE_tidelake"))
            .args(["table", command, "s3://bucket/t"])
            .envs(s3[..5].iter().copied())
            .current_dir(dir.path())
            .output()
            .expect("runs");
        assert_exit(&output, 1);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("cannot read table s3://bucket/t: object store error"),
            "{command}: {stderr}"
        );
    }
}
