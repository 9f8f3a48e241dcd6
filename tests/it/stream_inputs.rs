//! Inputs that are not plain files named once: stdin (`--input -` and `/dev/stdin`), a
//! pipe and a FIFO are read whole as one stream partition, with the alerts the rule
//! gives; a file named several times (again, through a link, by an overlapping glob) is
//! read once and the summary says so; a cluster refuses a stream.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::delta_sink::{START_MS, transactions, write_csv};
use crate::reference::{self, Tx};
use crate::support::{assert_exit, describe, read_alerts, tidelake};

/// The input: 3 000 transactions of a few hundred accounts, with alerts.
fn input() -> Vec<Tx> {
    transactions(11, 3_000, START_MS, "s")
}

fn csv_text(txs: &[Tx]) -> String {
    txs.iter()
        .map(|t| format!("{},{},{:.2}\n", t.account, t.ts, t.amount))
        .collect()
}

/// The events a run accepted, from its `--report-json`.
fn events(dir: &Path) -> u64 {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("the report"))
            .expect("JSON");
    report["totals"]["events"].as_u64().expect("events")
}

/// `tidelake run` on `inputs` (CSV), its stdin fed with `stdin` if given.
fn run(dir: &Path, inputs: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args(["run", "--source", "csv", "--input"])
        .args(inputs)
        .args([
            "--no-table",
            "--alerts",
            "alerts.jsonl",
            "--report-json",
            "report.json",
            "--split-size",
            "1KiB",
        ])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tidelake binary runs");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).expect("feed stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("the run ends")
}

#[test]
fn stdin_a_pipe_and_a_fifo_are_read_whole_as_one_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let txs = input();
    let text = csv_text(&txs);
    let expected = reference::alerts(&txs);
    assert!(expected.len() > 5, "not a meaningful check");

    // `-` and /dev/stdin, fed through a pipe (a split size of 1 KiB would cut a file of
    // this size into about a hundred ranges; a stream is never split).
    for name in ["-", "/dev/stdin"] {
        let output = run(d, &[name], Some(&text));
        assert_exit(&output, 0);
        assert_eq!(events(d), 3_000, "{name}: {}", describe(&output));
        assert_eq!(read_alerts(&d.join("alerts.jsonl")), expected, "{name}");
    }

    // `head` of a file through a shell pipe, as a user would.
    write_csv(&d.join("all.csv"), &txs);
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -n 1000 all.csv | {} run --source csv --input - --no-table --alerts alerts.jsonl --report-json report.json",
            env!("CARGO_BIN_EXE_tidelake")
        ))
        .current_dir(d)
        .output()
        .expect("sh runs");
    assert_exit(&output, 0);
    assert_eq!(events(d), 1_000);
    assert_eq!(
        read_alerts(&d.join("alerts.jsonl")),
        reference::alerts(&txs[..1000])
    );

    // A FIFO, written by another process while the job reads it.
    let fifo = d.join("in.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let writer = {
        let (fifo, text) = (fifo.clone(), text.clone());
        std::thread::spawn(move || std::fs::write(fifo, text).expect("write the FIFO"))
    };
    let output = run(d, &[&fifo.display().to_string()], None);
    writer.join().expect("the writer");
    assert_exit(&output, 0);
    assert_eq!(events(d), 3_000);
    assert_eq!(read_alerts(&d.join("alerts.jsonl")), expected);
}

#[test]
fn a_file_named_again_through_a_path_a_link_or_a_glob_is_read_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let txs = input();
    std::fs::create_dir(d.join("data")).expect("mkdir");
    write_csv(&d.join("data/a.csv"), &txs[..2000]);
    write_csv(&d.join("data/b.csv"), &txs[2000..]);
    std::os::unix::fs::symlink(d.join("data/a.csv"), d.join("link.csv")).expect("symlink");

    let output = run(
        d,
        &[
            "data/a.csv",
            "data/a.csv",
            "./data/a.csv",
            "link.csv",
            "data/*.csv",
        ],
        None,
    );
    assert_exit(&output, 0);
    assert_eq!(events(d), 3_000, "{}", describe(&output));
    assert_eq!(
        read_alerts(&d.join("alerts.jsonl")),
        reference::alerts(&txs)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    for said in [
        "input data/a.csv is named more than once: it was read once",
        "input ./data/a.csv is the same file as data/a.csv: it was read once, as data/a.csv",
        "input link.csv is the same file as data/a.csv: it was read once, as data/a.csv",
    ] {
        assert!(stderr.contains(said), "{said:?} not in\n{stderr}");
    }
}

#[test]
fn a_cluster_refuses_a_stream_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let port = crate::support::free_port();
    std::fs::write(d.join("hosts"), format!("127.0.0.1:{port}\n")).expect("hostfile");
    let output = tidelake(
        d,
        &[
            "worker",
            "--hostfile",
            "hosts",
            "--process",
            "0",
            "--source",
            "csv",
            "--input",
            "-",
            "--no-table",
        ],
    );
    assert_exit(&output, 2);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("stdin can only be read by one process"),
        "{}",
        describe(&output)
    );
}
