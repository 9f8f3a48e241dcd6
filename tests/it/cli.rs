//! The command line (docs/semantics.md §7): help, usage errors with exit code 2 and a message
//! naming the culprit, the TOML job file and flags overriding it, and `tidelake` with
//! no arguments.

use std::path::Path;

use crate::support::{AlertLine, assert_exit, describe, group, parse_lines, read_alerts, tidelake};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The names of the files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A small CSV file with one alert: account 7, 0.5 at 1000, 900 at 61000.
fn write_tx_csv(dir: &Path) {
    std::fs::write(
        dir.join("tx.csv"),
        "account_id,ts_millis,amount\n7,1000,0.5\n8,2000,3\n7,61000,900\n",
    )
    .expect("write tx.csv");
}

fn the_alert() -> Vec<crate::reference::RefAlert> {
    vec![(
        "7".to_owned(),
        61_000,
        1_000,
        0.5f64.to_bits(),
        900f64.to_bits(),
    )]
}

#[test]
fn help_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["help"],
        &["help", "run"],
    ] {
        let output = tidelake(dir.path(), args);
        assert_exit(&output, 0);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage"), "{args:?}: {}", describe(&output));
    }
    let run_help = tidelake(dir.path(), &["run", "--help"]);
    let text = String::from_utf8_lossy(&run_help.stdout);
    for flag in [
        "--source",
        "--input",
        "--workers",
        "--tick",
        "--out-of-orderness",
        "--alerts",
        "--dead-letters",
        "--config",
        "--split-size",
    ] {
        assert!(text.contains(flag), "run --help lacks {flag}");
    }
    assert!(files_in(dir.path()).is_empty(), "help wrote files");
}

#[test]
fn usage_errors_exit_2_and_name_the_culprit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&[&str], &str); 8] = [
        (&["run", "--no-such-flag"], "--no-such-flag"),
        (&["--no-such-flag"], "--no-such-flag"),
        (&["run", "--source", "csv"], "--input"),
        (
            &["run", "--source", "csv", "--input", "missing.csv"],
            "missing.csv",
        ),
        (&["run", "--tick", "0ms"], "--tick"),
        (&["run", "--tick", "10parsecs"], "10parsecs"),
        (&["run", "--enriched", "nodir/rows.jsonl"], "nodir"),
        (&["run", "--alerts", "nodir/alerts.jsonl"], "nodir"),
    ];
    for (args, culprit) in cases {
        let output = tidelake(dir.path(), args);
        assert_exit(&output, 2);
        assert!(
            stderr(&output).contains(culprit),
            "{args:?}: stderr does not name {culprit}: {}",
            describe(&output)
        );
        assert!(
            output.stdout.is_empty(),
            "{args:?}: stdout: {}",
            describe(&output)
        );
    }
    // A usage error reads no input and writes no output.
    assert_eq!(files_in(dir.path()), Vec::<String>::new(), "files written");
}

#[test]
fn job_file_sets_flags_and_the_command_line_overrides_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tx_csv(dir.path());
    std::fs::write(
        dir.path().join("job.toml"),
        "source = \"csv\"\ninput = [\"tx.csv\"]\nworkers = 2\ntick = \"10ms\"\nalerts = \"from-file.jsonl\"\n",
    )
    .expect("write job.toml");

    let output = tidelake(dir.path(), &["run", "--config", "job.toml"]);
    assert_exit(&output, 0);
    assert_eq!(
        read_alerts(&dir.path().join("from-file.jsonl")),
        the_alert()
    );
    assert!(output.stdout.is_empty(), "{}", describe(&output));
    assert!(
        stderr(&output).contains("per worker"),
        "workers = 2 is not applied: {}",
        describe(&output)
    );

    let output = tidelake(
        dir.path(),
        &["run", "--config", "job.toml", "--alerts", "other.jsonl"],
    );
    assert_exit(&output, 0);
    assert_eq!(read_alerts(&dir.path().join("other.jsonl")), the_alert());
    // from-file.jsonl is the first run's, untouched.
    assert_eq!(
        read_alerts(&dir.path().join("from-file.jsonl")),
        the_alert()
    );
    std::fs::remove_file(dir.path().join("other.jsonl")).expect("remove");
    std::fs::remove_file(dir.path().join("from-file.jsonl")).expect("remove");
    let output = tidelake(
        dir.path(),
        &["run", "--config", "job.toml", "--alerts=other.jsonl"],
    );
    assert_exit(&output, 0);
    assert_eq!(read_alerts(&dir.path().join("other.jsonl")), the_alert());
    assert!(
        !dir.path().join("from-file.jsonl").exists(),
        "the job file's alerts key was used despite --alerts=…"
    );
}

#[test]
fn job_file_errors_exit_2_and_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tx_csv(dir.path());
    std::fs::write(
        dir.path().join("job.toml"),
        "source = \"csv\"\ninput = [\"tx.csv\"]\nwrokers = 2\n",
    )
    .expect("write job.toml");
    let output = tidelake(dir.path(), &["run", "--config", "job.toml"]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("wrokers"), "{}", describe(&output));

    let output = tidelake(dir.path(), &["run", "--config", "absent.toml"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("absent.toml"),
        "{}",
        describe(&output)
    );

    std::fs::write(dir.path().join("bad.toml"), "tick = \"0ms\"\n").expect("write");
    let output = tidelake(dir.path(), &["run", "--config", "bad.toml"]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--tick"), "{}", describe(&output));

    // A value clap rejects names the job file it came from.
    std::fs::write(dir.path().join("unit.toml"), "tick = 10\n").expect("write");
    let output = tidelake(dir.path(), &["run", "--config", "unit.toml"]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains("unit.toml") && err.contains("--tick"),
        "{}",
        describe(&output)
    );
}

#[test]
fn no_arguments_runs_the_generator_and_prints_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tidelake(dir.path(), &[]);
    assert_exit(&output, 0);
    assert_eq!(files_in(dir.path()), ["dead-letters.jsonl", "lake"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).expect("read"),
        ""
    );
    // The transactions table, at its default place, is whole.
    let validate = tidelake(dir.path(), &["table", "validate", "lake/transactions"]);
    assert_exit(&validate, 0);
    let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout");
    let alerts: Vec<AlertLine> = parse_lines(&stdout, "stdout");
    // 2 000 000 records with a fraud pair every 5 000 per partition: hundreds of alerts.
    assert!(alerts.len() >= 100, "{} alerts", alerts.len());
    for alert in &alerts {
        alert.assert_dates();
        assert!(alert.small_amount < 1.0 && alert.large_amount > 500.0);
        assert!(alert.ts >= alert.small_ts && alert.ts - alert.small_ts <= 60_000);
    }
    let stderr = stderr(&output);
    assert!(stderr.contains("done"), "{stderr}");
    assert!(stderr.contains("2,000,000 events"), "{stderr}");
    assert!(
        stderr.contains(&format!(" {} alerts", group(alerts.len()))),
        "{stderr}"
    );
}

/// Alerts from 4 workers on stdout are whole JSON lines, the same as 1 worker's in a
/// file.
#[test]
fn alerts_on_stdout_from_many_workers_are_whole_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let common = [
        "run",
        "--count",
        "300000",
        "--accounts",
        "3000",
        "--fraud-every",
        "300",
        "--start",
        "2024-05-01T00:00:00Z",
        "--density",
        "5000",
    ];
    let mut to_stdout = common.to_vec();
    to_stdout.extend(["--workers", "4", "--tick", "1ms"]);
    let output = tidelake(dir.path(), &to_stdout);
    assert_exit(&output, 0);
    let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout");
    let mut from_stdout: Vec<crate::reference::RefAlert> =
        parse_lines::<AlertLine>(&stdout, "stdout")
            .iter()
            .map(AlertLine::as_ref_alert)
            .collect();
    from_stdout.sort();

    let mut to_file = common.to_vec();
    to_file.extend(["--alerts", "alerts.jsonl"]);
    let output = tidelake(dir.path(), &to_file);
    assert_exit(&output, 0);
    assert!(output.stdout.is_empty(), "{}", describe(&output));
    let from_file = read_alerts(&dir.path().join("alerts.jsonl"));
    assert!(from_file.len() >= 200, "{} alerts", from_file.len());
    assert!(
        from_stdout == from_file,
        "stdout with 4 workers differs from a file with 1"
    );
}

/// `--alert-latency` adds each alert's latency to the summary, over every alert.
#[test]
fn alert_latency_is_summarised_over_every_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tidelake(
        dir.path(),
        &[
            "run",
            "--time",
            "ingestion",
            "--rate",
            "100000",
            "--count",
            "50000",
            "--tick",
            "1ms",
            "--no-table",
            "--alert-latency",
        ],
    );
    assert_exit(&output, 0);
    let alerts = String::from_utf8_lossy(&output.stdout).lines().count();
    assert!(alerts > 0);
    let stderr = stderr(&output);
    assert!(
        stderr.contains("\n  alert latency: p50 ")
            && stderr.contains(&format!(" ms over {} alerts", group(alerts))),
        "{stderr}"
    );
}
