//! The Delta source (docs/delta-source.md): tables delta-rs writes and tidelake itself
//! writes, read as a stream — every appended row once, compaction never, deletes
//! refused or skipped — checked against the reference model of the fraud rule.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::checkpoints::{Kill, Running, outputs, random_kills, same_lines, signal};
use crate::python::Python;
use crate::reference::{self, RefAlert, Tx};
use crate::support::{Rng, assert_exit, describe, read_alerts, tidelake};

/// `n` transactions in `chunks` consecutive slices of event time, each slice shuffled
/// (out of order within a file), every ts unique; ids of several shapes and lengths.
fn chunks(seed: u64, n: usize, chunks: usize) -> Vec<Vec<Tx>> {
    let mut rng = Rng(seed);
    let mut ts = 1_717_200_000_000u64;
    let mut all = Vec::with_capacity(n);
    for seq in 0..n as u64 {
        ts += 1 + rng.below(300);
        let account = match rng.below(4) {
            0 => rng.below(200).to_string(),
            1 => format!("card-{:016x}", rng.below(150)),
            2 => format!("Ünïcode, \"{}\"", rng.below(100)),
            _ => format!("{}{}", "x".repeat(90), rng.below(50)),
        };
        let amount = match rng.below(100) {
            0..5 => rng.below(100) as f64 / 100.0,
            5..10 => 501.0 + rng.below(3_000) as f64 / 4.0,
            _ => rng.below(50_000) as f64 / 100.0,
        };
        all.push(Tx {
            account,
            ts,
            partition: 0,
            seq,
            amount,
        });
    }
    let size = n.div_ceil(chunks);
    all.chunks(size)
        .map(|chunk| {
            let mut chunk = chunk.to_vec();
            for i in (1..chunk.len()).rev() {
                chunk.swap(i, rng.below(i as u64 + 1) as usize);
            }
            chunk
        })
        .collect()
}

/// Writes `txs` as the JSON lines `delta_read.py append-json` reads.
fn write_json(path: &Path, txs: &[Tx]) {
    let text: String = txs
        .iter()
        .map(|t| {
            serde_json::json!({"accountId": t.account, "ts": t.ts, "amount": t.amount}).to_string()
                + "\n"
        })
        .collect();
    std::fs::write(path, text).expect("write the chunk");
}

/// delta-rs appends each chunk as one commit (the time in `time_column`; the fifth
/// adds a nullable column); returns each chunk's version.
fn append_chunks(
    python: &Python,
    dir: &Path,
    url: &str,
    chunks: &[Vec<Tx>],
    time_column: &str,
) -> Vec<u64> {
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let file = dir.join(format!("chunk-{i}.jsonl"));
            write_json(&file, chunk);
            python.append_json(url, &file, time_column, (i == 4).then_some("note"))
        })
        .collect()
}

fn want_alerts(chunks: &[Vec<Tx>]) -> Vec<RefAlert> {
    let all: Vec<Tx> = chunks.iter().flatten().cloned().collect();
    reference::alerts(&all)
}

/// Runs a bounded read of `url` with `flags`; returns the output and the alerts.
fn read_table(dir: &Path, url: &str, flags: &[&str]) -> (std::process::Output, Vec<RefAlert>) {
    read_table_with(dir, url, flags, &[])
}

/// [`read_table`] with `env` in the job's environment.
fn read_table_with(
    dir: &Path,
    url: &str,
    flags: &[&str],
    env: &[(String, String)],
) -> (std::process::Output, Vec<RefAlert>) {
    let alerts = dir.join("alerts.jsonl");
    let _ = std::fs::remove_file(&alerts);
    let mut args = vec![
        "run",
        "--source",
        "delta",
        "--input",
        url,
        "--no-table",
        "--alerts",
        "alerts.jsonl",
        "--dead-letters",
        "dead.jsonl",
        "--report-json",
        "report.json",
        "--quiet",
    ];
    args.extend_from_slice(flags);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args(&args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("the tidelake binary runs");
    let alerts = match output.status.success() {
        true => read_alerts(&alerts),
        false => Vec::new(),
    };
    (output, alerts)
}

fn events_read(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report");
    let report: Value = serde_json::from_str(&text).expect("JSON report");
    report["totals"]["events"].as_u64().expect("events")
}

#[test]
fn a_table_delta_rs_wrote_is_read_once_for_any_worker_count_from_any_version() {
    let python = Python::find();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let url = d.join("seed").display().to_string();
    // The seed's Auto Loader table: `timestamp`, accountId, amount, by date.
    let chunks = chunks(5, 30_000, 6);
    let versions = append_chunks(&python, d, &url, &chunks, "timestamp");
    let want = want_alerts(&chunks);
    assert!(want.len() > 20, "the data raises alerts");
    for workers in ["1", "3"] {
        let (output, alerts) = read_table(d, &url, &["--workers", workers]);
        assert_exit(&output, 0);
        assert_eq!(alerts, want, "{workers} worker(s)");
        assert_eq!(events_read(d), 30_000, "every row once");
        let dead = std::fs::read_to_string(d.join("dead.jsonl")).unwrap_or_default();
        assert!(dead.is_empty(), "no row is late or bad:\n{dead:.2000}");
    }

    // From a version on: only the rows its commit and the later ones added.
    let from = versions[3].to_string();
    let (output, alerts) = read_table(d, &url, &["--starting-version", &from]);
    assert_exit(&output, 0);
    assert_eq!(alerts, want_alerts(&chunks[3..]));
    assert_eq!(
        events_read(d),
        chunks[3..].iter().map(Vec::len).sum::<usize>() as u64
    );

    // From a time on: the first version committed at or after it (commit files are
    // written a Python start-up apart).
    let commit = d.join(format!("seed/_delta_log/{:020}.json", versions[2]));
    let written = std::fs::metadata(&commit)
        .and_then(|m| m.modified())
        .expect("the commit's time");
    let ms = written
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        .to_string();
    let (output, alerts) = read_table(d, &url, &["--starting-timestamp", &ms]);
    assert_exit(&output, 0);
    assert_eq!(alerts, want_alerts(&chunks[2..]));
    assert_eq!(
        events_read(d),
        chunks[2..].iter().map(Vec::len).sum::<usize>() as u64
    );

    // A delete: refused naming the version, or skipped with --ignore-deletes.
    let deleted = python.delete(&url, "amount < 0.05");
    let (output, _) = read_table(d, &url, &["--starting-version", "0"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("version {deleted} of"))
            && stderr.contains("removes data")
            && stderr.contains("--ignore-deletes"),
        "{stderr}"
    );
    let (output, alerts) = read_table(d, &url, &["--starting-version", "0", "--ignore-deletes"]);
    assert_exit(&output, 0);
    assert_eq!(alerts, want, "the delete's version is skipped");
    assert_eq!(events_read(d), 30_000);
}

#[test]
fn a_table_without_the_columns_or_with_deletion_vectors_is_refused_naming_them() {
    let python = Python::find();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let url = d.join("t").display().to_string();
    append_chunks(&python, d, &url, &chunks(2, 100, 1), "when");
    let (output, _) = read_table(d, &url, &[]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no event time column (`dt` or `timestamp` or `ts`)")
            && stderr.contains("when"),
        "{stderr}"
    );
    // Deletion vectors would be read as live rows: refused, naming the feature.
    let dv = d.join("dv").display().to_string();
    python.feature_table(&dv, "deletion-vectors", 20);
    let (output, _) = read_table(d, &dv, &[]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("deletionVectors"), "{stderr}");
}

/// Follows a table delta-rs appends to while `tidelake table optimize` compacts it,
/// killed with -9 at random moments, then reads on to the end once the appends are
/// done: the job's own transactions table holds each appended row exactly once and the
/// alerts are the reference model's.
#[test]
fn following_a_growing_and_compacted_table_across_kills_reads_every_row_once() {
    let python = Python::find();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_owned();
    let url = d.join("src").display().to_string();
    let chunks = chunks(11, 24_000, 12);
    append_chunks(&python, &d, &url, &chunks[..1], "dt");
    let writer = {
        let (python, d, url, chunks) = (python.clone(), d.clone(), url.clone(), chunks.clone());
        std::thread::spawn(move || {
            for (i, chunk) in chunks.iter().enumerate().skip(1) {
                std::thread::sleep(Duration::from_millis(250));
                let file = d.join(format!("chunk-{i}.jsonl"));
                write_json(&file, chunk);
                python.append_json(&url, &file, "dt", None);
                if i % 4 == 0 {
                    let output = tidelake(&d, &["table", "optimize", &url, "--json"]);
                    assert_exit(&output, 0);
                }
            }
        })
    };
    let mut args: Vec<String> = [
        "run",
        "--workers",
        "2",
        "--source",
        "delta",
        "--input",
        &url,
        "--follow",
        "--poll-interval",
        "50ms",
        "--commit-interval",
        "1s",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(outputs("f"));
    let mut logs = Vec::new();
    for kill in random_kills(3, 2, 2_000) {
        let Kill::After(delay, _) = kill else {
            unreachable!("kills at moments")
        };
        let mut running = Running::start(&d, &args, &[]);
        assert!(
            running.watch(delay, |_| false).is_none(),
            "a follow run ended"
        );
        signal(running.pid(), "KILL");
        logs.push(running.finish().1);
    }
    writer.join().expect("the writer");
    let compactions = std::fs::read_dir(d.join("src/_delta_log"))
        .expect("the source table's log")
        .filter_map(Result::ok)
        .filter(|entry| {
            std::fs::read_to_string(entry.path())
                .is_ok_and(|text| text.contains(r#""dataChange":false"#))
        })
        .count();
    assert!(
        compactions >= 2,
        "OPTIMIZE rewrote files while the job followed"
    );
    let last: Vec<String> = args.iter().filter(|a| *a != "--follow").cloned().collect();
    let (status, log) = Running::start(&d, &last, &[]).finish();
    assert!(status.success(), "the last run failed:\n{log}");
    assert!(
        log.contains("restor"),
        "the last run restored a checkpoint:\n{log}"
    );
    logs.push(log);

    let mut want_rows: Vec<String> = chunks
        .iter()
        .flatten()
        .map(|t| format!("{}\t{}\t{}", t.account, t.ts, t.amount.to_bits() as i64))
        .collect();
    want_rows.sort();
    let mut got_rows: Vec<String> = python
        .transaction_lines(&d.join("f/transactions").display().to_string())
        .iter()
        .map(|line| {
            line.rsplit_once('\t')
                .map_or(line.clone(), |(row, _)| row.to_owned())
        })
        .collect();
    got_rows.sort();
    if got_rows != want_rows {
        eprintln!("runs:\n{}", logs.join("\n----\n"));
    }
    same_lines(&got_rows, &want_rows, "followed", "table rows");
    let want = want_alerts(&chunks);
    assert!(want.len() > 20, "the data raises alerts");
    assert_eq!(read_alerts(&d.join("f-alerts.jsonl")), want);
    let dead = std::fs::read_to_string(d.join("f-dead.jsonl")).unwrap_or_default();
    assert!(dead.is_empty(), "dead letters:\n{dead:.2000}");
}

/// A table tidelake wrote (two workers, many small commits) read back by the Delta
/// source raises the alerts the writing run raised.
#[test]
fn a_table_tidelake_wrote_reads_back_to_the_same_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let output = tidelake(
        d,
        &[
            "run",
            "--count",
            "300000",
            "--start",
            "2024-05-01T00:00:00Z",
            "--workers",
            "2",
            "--table",
            "t",
            "--commit-interval",
            "1s",
            "--alerts",
            "written.jsonl",
            "--quiet",
        ],
    );
    assert_exit(&output, 0);
    let written = read_alerts(&d.join("written.jsonl"));
    assert!(written.len() > 20);
    let url = d.join("t").display().to_string();
    let (output, alerts) = read_table(d, &url, &["--workers", "2", "--source-partitions", "5"]);
    assert_exit(&output, 0);
    assert_eq!(alerts, written);
    assert_eq!(events_read(d), 300_000);
}

/// A table delta-rs wrote to S3 (moto on loopback) reads as the same table on disk does.
#[test]
fn a_table_on_s3_is_read_like_one_on_disk() {
    let moto = crate::moto::MotoServer::start();
    let python = Python::find().with_env(moto.env());
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let url = format!("s3://{}/delta-source/seed", crate::moto::BUCKET);
    let chunks = chunks(9, 12_000, 3);
    append_chunks(&python, d, &url, &chunks, "dt");
    let (output, alerts) = read_table_with(d, &url, &["--workers", "2"], &moto.env());
    assert_exit(&output, 0);
    let want = want_alerts(&chunks);
    assert!(!want.is_empty(), "the data raises alerts");
    assert_eq!(alerts, want);
    assert_eq!(events_read(d), 12_000);
}

/// A version the job follows that turns column mapping on (its new columns would be
/// stored under physical names the source does not map) stops the job, naming the
/// version, rather than read nulls. delta-rs refuses to write that property, so the
/// commit is written as Spark would: a `metaData` action with it.
#[test]
fn a_followed_version_that_turns_on_column_mapping_stops_the_job_naming_it() {
    let python = Python::find();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let url = d.join("src").display().to_string();
    append_chunks(&python, d, &url, &chunks(4, 200, 1), "dt");
    let args: Vec<String> = [
        "run",
        "--source",
        "delta",
        "--input",
        &url,
        "--follow",
        "--poll-interval",
        "50ms",
        "--no-table",
        "--no-checkpoints",
        "--alerts",
        "alerts.jsonl",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut running = Running::start(d, &args, &[]);
    let started = running.watch(Duration::from_secs(60), |l| l.contains("of Delta table"));
    assert!(
        started.is_none(),
        "the follow run ended:\n{}",
        running.seen.join("\n")
    );

    let log = d.join("src/_delta_log");
    let first = std::fs::read_to_string(log.join(format!("{:020}.json", 0))).expect("version 0");
    let mut metadata: Value = first
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("an action"))
        .find(|action| action.get("metaData").is_some())
        .expect("version 0 has metaData");
    metadata["metaData"]["configuration"]["delta.columnMapping.mode"] = "name".into();
    std::fs::write(log.join(format!("{:020}.json", 1)), format!("{metadata}\n"))
        .expect("write version 1");

    let status = running.watch(Duration::from_secs(60), |_| false);
    if status.is_none() {
        signal(running.pid(), "KILL");
    }
    let (_, stderr) = running.finish();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(
        stderr.contains("version 1 of") && stderr.contains("column mapping"),
        "{stderr}"
    );
}
