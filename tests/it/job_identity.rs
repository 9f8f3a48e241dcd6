//! A job id's settings recorded in its tables: after a `kill -9`, a re-run with another
//! commit interval or worker count (which would split rows into other epochs or other
//! writers) is refused with exit 2, naming the setting and both values, and leaves the
//! table as it was; the same settings on another process layout finish it exactly. A
//! job id whose settings are not recorded, or that ran in ingestion time, is refused.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::delta_sink::sorted;
use crate::python::Python;
use crate::support::{assert_exit, describe, files_under, tidelake};

/// The generated job every run here shares (pace aside, which is not part of it):
/// 40 000 transactions over 400 s of event time, committed every 10 s by 2 workers.
const JOB: [&str; 14] = [
    "--count",
    "40000",
    "--density",
    "100",
    "--accounts",
    "700",
    "--start",
    "2024-05-01T00:00:00Z",
    "--commit-interval",
    "10s",
    "--alerts",
    "alerts.jsonl",
    "--quiet",
    "--stall-timeout",
];

fn job<'a>(table: &'a str, job_id: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend(JOB);
    // What the tables record of a job, not its checkpoints (tests/it/checkpoints.rs).
    args.extend([
        "0s",
        "--table",
        table,
        "--job-id",
        job_id,
        "--no-checkpoints",
    ]);
    args.extend(extra);
    args
}

fn commits(table: &Path) -> usize {
    std::fs::read_dir(table.join("_delta_log"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

/// Starts the job throttled to 10 000 events/s and kills it with SIGKILL once it has
/// committed a few epochs, as a crash would.
fn crash_partway(dir: &Path, table: &str, job_id: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args(job(table, job_id, &["--workers", "2", "--rate", "10000"]))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the tidelake binary runs");
    let started = Instant::now();
    while commits(&dir.join(table)) < 6 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no commits within 60 s"
        );
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("the job ended ({status}) before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

fn refused(output: &Output, says: &[&str]) {
    assert_exit(output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for text in says {
        assert!(
            stderr.contains(text),
            "{text:?} not in\n{}",
            describe(output)
        );
    }
}

#[test]
fn a_rerun_with_other_epochs_or_writers_is_refused_and_the_same_job_finishes_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let python = Python::find();

    // The whole job, uninterrupted, into a table of its own: what the table must hold.
    assert_exit(
        &tidelake(d, &job("control", "control", &["--workers", "2"])),
        0,
    );
    let control = python.read(&d.join("control").display().to_string(), &[]);
    assert_eq!(control.rows.len(), 40_000);

    crash_partway(d, "t", "nightly");
    let table = d.join("t");
    let url = table.display().to_string();
    let before = files_under(&table);
    let crashed = python.read(&url, &[]);
    assert!(
        crashed.rows.len() < 40_000,
        "the kill came after the last commit"
    );

    let output = tidelake(
        d,
        &job(
            "t",
            "nightly",
            &["--workers", "2", "--commit-interval", "20s"],
        ),
    );
    refused(
        &output,
        &[
            "job id nightly committed to it",
            r#"--commit-interval was "10000ms" when it committed, is "20000ms" now"#,
            "give it a new --job-id",
        ],
    );
    for workers in ["1", "3"] {
        let output = tidelake(d, &job("t", "nightly", &["--workers", workers]));
        let change = format!(
            r#"--workers (in all processes) was "2" when it committed, is "{workers}" now"#
        );
        refused(&output, &[&change]);
    }
    let output = tidelake(d, &job("t", "nightly", &["--workers", "2", "--seed", "8"]));
    refused(
        &output,
        &[r#"--seed was "42" when it committed, is "8" now"#],
    );
    assert_eq!(files_under(&table), before, "a refused run wrote nothing");
    assert_eq!(python.read(&url, &[]).version, crashed.version);

    // The same job on 2 processes of 1 worker: the same 2 writers, so it may finish, and
    // the table then holds exactly the job's rows.
    let mut launch = vec!["launch", "--processes", "2", "--workers", "1"];
    launch.extend(&job("t", "nightly", &[])[1..]);
    assert_exit(&tidelake(d, &launch), 0);
    let finished = python.read(&url, &[]);
    assert_eq!(
        sorted(finished.transactions()),
        sorted(control.transactions()),
        "the crashed and finished table holds exactly what the uninterrupted run wrote"
    );
}

#[test]
fn a_job_id_without_recorded_settings_or_in_ingestion_time_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let python = Python::find();

    // A table where job id `old` committed without recording its settings, as a tidelake
    // before this check did.
    let url = d.join("t").display().to_string();
    let version = python.append(&url, 10);
    let commit = format!(
        "{}\n{}\n",
        r#"{"txn":{"appId":"old-w0","version":171452160}}"#,
        r#"{"commitInfo":{"timestamp":1714521600000,"operation":"STREAMING UPDATE","engineInfo":"tidelake/0.0.9"}}"#
    );
    std::fs::write(
        d.join(format!("t/_delta_log/{:020}.json", version + 1)),
        commit,
    )
    .expect("write the commit");
    let output = tidelake(d, &job("t", "old", &[]));
    refused(
        &output,
        &[
            "job id old committed to it",
            "no commit left in the log records the settings",
        ],
    );
    // Another job id is a new job: it may write.
    assert_exit(&tidelake(d, &job("t", "new", &["--count", "1000"])), 0);

    // In ingestion time an epoch is the wall clock when a record was read: a re-run
    // cannot skip what the first run committed.
    let walk = |job_id: &str| {
        tidelake(
            d,
            &[
                "run",
                "--source",
                "walkthrough",
                "--time",
                "ingestion",
                "--count",
                "200",
                "--rate",
                "unthrottled",
                "--table",
                "w",
                "--job-id",
                job_id,
                "--alerts",
                "alerts.jsonl",
                "--quiet",
            ],
        )
    };
    assert_exit(&walk("walk"), 0);
    let rows = python
        .read(&d.join("w").display().to_string(), &[])
        .rows
        .len();
    assert_eq!(rows, 200);
    refused(&walk("walk"), &["committed to it in ingestion time"]);
    assert_eq!(
        python
            .read(&d.join("w").display().to_string(), &[])
            .rows
            .len(),
        rows
    );
}
