//! Delta tables written by the library and read back by real readers (delta-rs,
//! pyarrow, polars through `tests/py/delta_read.py`), on a local directory and on a real
//! S3 server (moto); and the put-if-absent check against S3 without conditional put.
//!
//! `open_store` configures S3 from the process environment only (`AWS_*`), and tests
//! must not change their own process's environment. So the S3 tests run the library
//! side in a child process — this test binary again, running [`s3_child`] — with the
//! moto server's variables set.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use tidelake_operators::{AccountId, EnrichedTransaction};
use tidelake_runtime::transactions_table::TransactionRow;
use tidelake_sinks::delta::files::commit::{CommitOptions, EpochCommitter, EpochOutcome};
use tidelake_sinks::delta::protocol::store::check_put_if_absent;
use tidelake_sinks::delta::{Add, DeltaTable, Schema};
use tidelake_sinks::parquet::{ArrowRows, Codec, DataFileWriter, WriterOptions};

use crate::moto::{BUCKET, MotoServer};
use crate::python::{Python, TableRead, TransactionOut};
use crate::support::rfc3339_millis;

/// The writer's appId and the epoch it commits.
const APP_ID: &str = "it-job-w0";
const EPOCH: i64 = 7;

/// Set in the child process: `write` or `refuse`.
const CHILD_TASK: &str = "TIDELAKE_IT_S3_TASK";
/// Set in the child process: the table URL.
const CHILD_URL: &str = "TIDELAKE_IT_S3_URL";
/// Printed by the child when its task is done, so the parent knows it really ran.
const CHILD_DONE: &str = "tidelake-it-s3-child-done";

/// 40 transactions over two UTC days (2024-05-01 and 2024-05-02), four accounts (one
/// not ASCII), amounts of whole cents (short decimal forms that survive JSON exactly),
/// every fifth one an alert.
fn sample_rows() -> Vec<TransactionRow> {
    let accounts = ["3", "7", "acct-ü", "12345678901234567890123456789"];
    (0..40u64)
        .map(|i| {
            TransactionRow(EnrichedTransaction {
                account_id: AccountId::from(accounts[i as usize % accounts.len()]),
                // From 2024-05-01T23:59:40.000Z in 1.001 s steps: 20 rows on each day.
                ts: 1_714_607_980_000 + i * 1_001,
                amount: ([50, 87_115, 1_200, 49_999, 1][i as usize % 5] + i * 100) as f64 / 100.0,
                alert: i % 5 == 1,
            })
        })
        .collect()
}

/// The rows as a reader should see them, in a canonical order.
fn expected(rows: &[TransactionRow]) -> Vec<TransactionOut> {
    sorted(
        rows.iter()
            .map(|TransactionRow(t)| TransactionOut {
                dt: t.ts as i64 * 1_000,
                account_id: t.account_id.to_string(),
                amount: t.amount,
                alert: t.alert,
                date: Some(rfc3339_millis(t.ts)[..10].to_owned()),
            })
            .collect(),
    )
}

fn sorted(mut rows: Vec<TransactionOut>) -> Vec<TransactionOut> {
    rows.sort_by(|a, b| {
        (a.dt, &a.account_id, a.amount.to_bits(), a.alert).cmp(&(
            b.dt,
            &b.account_id,
            b.amount.to_bits(),
            b.alert,
        ))
    });
    rows
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// Writes `rows` to the table at `url` as the sink does: checks put-if-absent, creates
/// the table, writes the data files, and commits them with `txn(app_id, epoch)` at the
/// next free version (retrying on a lost race). Returns the version committed.
async fn write_with_library(
    url: &str,
    rows: &[TransactionRow],
    options: WriterOptions,
    app_id: &str,
    epoch: i64,
) -> u64 {
    let table = DeltaTable::open_url(url).expect("open the table URL");
    check_put_if_absent(table.store().as_ref(), table.root(), url)
        .await
        .expect("the store honours put-if-absent");
    table
        .create_or_open(
            &Schema::of_rows::<TransactionRow>(),
            TransactionRow::partition_columns(),
            BTreeMap::new(),
            "tidelake-it",
        )
        .await
        .expect("create the table");
    let mut writer = DataFileWriter::<TransactionRow>::new(
        table.store().clone(),
        table.root().clone(),
        0,
        options,
    )
    .expect("writer");
    writer.write(rows).await.expect("write data files");
    let files = writer.finish().await.expect("upload data files");
    commit(
        &table,
        files.into_iter().map(Add::from).collect(),
        app_id,
        epoch,
    )
    .await
}

/// Commits `adds` with `txn(app_id, epoch)` at the next free version, as the sink does.
async fn commit(table: &DeltaTable, adds: Vec<Add>, app_id: &str, epoch: i64) -> u64 {
    let snapshot = table.existing_snapshot().await.expect("the table exists");
    let mut committer =
        EpochCommitter::new(table.clone(), app_id, &snapshot, CommitOptions::default());
    let epoch = u64::try_from(epoch).expect("a positive epoch");
    match committer.commit(epoch, adds).await.expect("commit") {
        EpochOutcome::Committed { version, .. } => version,
        outcome => panic!("epoch {epoch} of {app_id} not committed: {outcome:?}"),
    }
}

/// Asserts that real readers see exactly `rows` and the txn, and that the stats the
/// log carries for each file equal what pyarrow computes from the file itself.
fn assert_reads_back(read: &TableRead, rows: &[TransactionRow], txns: &[(&str, i64)]) {
    assert_eq!(
        sorted(read.transactions()),
        expected(rows),
        "rows (delta-rs)"
    );
    assert_eq!(read.polars_rows, rows.len() as u64, "rows (polars)");
    assert_eq!(
        read.schema.get("dt").map(String::as_str),
        Some("timestamp[us, tz=UTC]")
    );
    for (app, version) in txns {
        assert_eq!(read.txn[*app], Some(*version), "transaction_version({app})");
    }
    read.assert_log_stats_match_files();
}

/// The library's side of the S3 tests, run by [`run_child`] in a child process whose
/// environment points `object_store` at moto; does nothing when run directly.
#[test]
#[ignore = "run by the S3 tests in a child process with the AWS_* environment set"]
fn s3_child() {
    let (Ok(task), Ok(url)) = (std::env::var(CHILD_TASK), std::env::var(CHILD_URL)) else {
        return;
    };
    match task.as_str() {
        "write" => {
            let options = WriterOptions {
                target_file_size: 1,
                batch_rows: 8,
                ..WriterOptions::default()
            };
            let version = block_on(write_with_library(
                &url,
                &sample_rows(),
                options,
                APP_ID,
                EPOCH,
            ));
            assert_eq!(version, 1, "version 0 creates the table, 1 holds the rows");
        }
        "refuse" => {
            let table = DeltaTable::open_url(&url).expect("open the table URL");
            let err = block_on(check_put_if_absent(
                table.store().as_ref(),
                table.root(),
                &url,
            ))
            .expect_err("put-if-absent must be refused");
            println!("refused: {err}");
        }
        other => panic!("unknown task {other}"),
    }
    println!("{CHILD_DONE}");
}

/// Runs [`s3_child`] with `task` on `url` in a child process with moto's environment
/// plus `extra_env` (inherited `AWS_*` variables removed); returns its stdout.
fn run_child(moto: &MotoServer, task: &str, url: &str, extra_env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args([
        "delta_s3::s3_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    let output = command
        .envs(moto.env())
        .envs(extra_env.iter().copied())
        .env(CHILD_TASK, task)
        .env(CHILD_URL, url)
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && stdout.contains(CHILD_DONE),
        "child {task} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// (a) A table on S3 (moto), written by the library through `open_url` and the
/// `AWS_*` environment, reads back in delta-rs, pyarrow and polars.
#[test]
fn s3_table_written_by_the_library_reads_back_in_delta_rs() {
    let moto = MotoServer::start();
    let url = format!("s3://{BUCKET}/it/transactions");
    run_child(&moto, "write", &url, &[]);
    let read = Python::find().with_env(moto.env()).read(&url, &[APP_ID]);
    assert_eq!(read.version, 1);
    assert_reads_back(&read, &sample_rows(), &[(APP_ID, EPOCH)]);
    assert!(read.add_actions.len() >= 4, "several files per partition");
}

/// (b) With conditional put disabled, the put-if-absent check refuses the store,
/// saying how to fix it.
#[test]
fn s3_without_conditional_put_is_refused() {
    let moto = MotoServer::start();
    let url = format!("s3://{BUCKET}/it/transactions");
    let stdout = run_child(
        &moto,
        "refuse",
        &url,
        &[("AWS_CONDITIONAL_PUT", "disabled")],
    );
    assert!(
        stdout.contains("does not support put-if-absent")
            && stdout.contains("AWS_CONDITIONAL_PUT=etag")
            && stdout.contains(&url),
        "{stdout}"
    );
}

/// (c) A local table written by the library reads back in delta-rs, pyarrow and
/// polars: same rows, log stats equal to the files' own, the txn version.
#[test]
fn local_table_written_by_the_library_reads_back_in_delta_rs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().join("transactions").display().to_string();
    let rows = sample_rows();
    let options = WriterOptions {
        target_file_size: 1,
        batch_rows: 8,
        codec: Codec::Snappy,
    };
    let version = block_on(write_with_library(&url, &rows, options, APP_ID, EPOCH));
    assert_eq!(version, 1);
    let read = Python::find().read(&url, &[APP_ID, "nobody"]);
    assert_eq!(read.version, 1);
    assert_eq!(read.txn["nobody"], None);
    assert_reads_back(&read, &rows, &[(APP_ID, EPOCH)]);
    assert!(read.add_actions.len() >= 4, "several files per partition");
}

/// delta-rs and the library write the same local table in turn and at once: delta-rs
/// appends and checkpoints between library commits, then appends in a loop while the
/// library commits; every reader sees every row of both.
#[test]
fn delta_rs_and_the_library_write_the_same_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().join("transactions").display().to_string();
    let python = Python::find();
    let rows = sample_rows();
    assert_eq!(
        block_on(write_with_library(
            &url,
            &rows,
            WriterOptions::default(),
            APP_ID,
            1
        )),
        1
    );
    assert_eq!(python.append(&url, 25), 2);
    assert_eq!(python.checkpoint(&url), 2);
    assert!(
        dir.path()
            .join("transactions/_delta_log/00000000000000000002.checkpoint.parquet")
            .is_file()
    );
    // The library continues after delta-rs's checkpoint.
    assert_eq!(
        block_on(write_with_library(
            &url,
            &rows,
            WriterOptions::default(),
            APP_ID,
            2
        )),
        3
    );

    // Both writers at once: the library commits while delta-rs is appending.
    let stop = dir.path().join("stop");
    let appender = python.spawn_append_loop(&url, &stop, 5);
    let table = DeltaTable::open_url(&url).expect("open");
    let version = || {
        block_on(table.snapshot())
            .expect("snapshot")
            .map_or(0, |s| s.version)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while version() < 5 {
        assert!(Instant::now() < deadline, "delta-rs made no commit in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let epochs = 3..=8;
    let mut ours = Vec::new();
    for epoch in epochs.clone() {
        ours.push(block_on(write_with_library(
            &url,
            &rows[..10],
            WriterOptions::default(),
            APP_ID,
            epoch,
        )));
        std::thread::sleep(Duration::from_millis(30));
    }
    let last = ours.last().copied().unwrap_or_default();
    while version() <= last {
        assert!(Instant::now() < deadline, "delta-rs stopped committing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let appended = appender.stop();
    assert!(appended.errors.is_empty(), "{:?}", appended.errors);
    assert!(!appended.timed_out);
    assert_eq!(appended.versions.len() as u64, appended.commits);
    assert_eq!(appended.rows, appended.commits * 5);
    assert!(
        appended.versions.iter().any(|v| *v < ours[0])
            && appended.versions.iter().any(|v| *v > last),
        "delta-rs committed before and after the library: {:?}, library {ours:?}",
        appended.versions
    );

    let read = python.read(&url, &[APP_ID]);
    let library_rows = 2 * rows.len() as u64 + epochs.clone().count() as u64 * 10;
    let expected_rows = library_rows + 25 + appended.rows;
    assert_eq!(read.rows.len() as u64, expected_rows);
    assert_eq!(read.polars_rows, expected_rows);
    assert_eq!(read.txn[APP_ID], Some(*epochs.end()));
    assert_eq!(
        read.version,
        3 + epochs.count() as u64 + appended.commits,
        "every commit of both writers is a version"
    );
    let read_library_rows = read
        .transactions()
        .iter()
        .filter(|r| !r.account_id.starts_with("py"))
        .count() as u64;
    assert_eq!(read_library_rows, library_rows);
}
