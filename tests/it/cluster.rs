//! Clusters of real processes on loopback: `tidelake launch` and `tidelake worker
//! --hostfile`.
//!
//! - 1×1, 1×4, 2×2, 4×1 (launch) and 2×1 (workers with a hostfile) give the same alerts
//!   and the same Delta table rows, with one `txn` appId per global worker;
//! - a killed process, a stopped process, a panicking worker and a peer that never
//!   starts each make the cluster exit non-zero, naming the process, instead of hanging;
//! - the README's cluster example works as written; bad cluster flags are refused.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::python::{Python, TransactionOut};
use crate::support::{AlertLine, assert_exit, describe, free_port, read_lines, tidelake};

/// The job every layout runs: the generator, committing every second of event time.
fn job(table: &str, alerts: &str) -> Vec<String> {
    [
        "--count",
        "100000",
        "--accounts",
        "5000",
        "--start",
        "2024-05-01T00:00:00Z",
        "--commit-interval",
        "1s",
        "--job-id",
        "c",
        // Every layout commits as job c, once each, to a table of its own.
        "--no-checkpoints",
        "--quiet",
        "--table",
        table,
        "--alerts",
        alerts,
    ]
    .map(str::to_owned)
    .to_vec()
}

fn args<'a>(head: &[&'a str], job: &'a [String]) -> Vec<&'a str> {
    head.iter()
        .copied()
        .chain(job.iter().map(String::as_str))
        .collect()
}

fn sorted_alerts(dir: &Path, files: &[String]) -> Vec<String> {
    let mut alerts: Vec<String> = files
        .iter()
        .flat_map(|f| read_lines::<AlertLine>(&dir.join(f)))
        .map(|a| format!("{a:?}"))
        .collect();
    alerts.sort();
    alerts
}

fn sorted_rows(rows: Vec<TransactionOut>) -> Vec<(String, i64, u64, bool)> {
    let mut rows: Vec<_> = rows
        .into_iter()
        .map(|r| (r.account_id, r.dt, r.amount.to_bits(), r.alert))
        .collect();
    rows.sort();
    rows
}

/// Every `txn.appId` in the table's JSON commits.
fn app_ids(table: &Path) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(table.join("_delta_log")).expect("a delta log") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            for line in std::fs::read_to_string(&path).expect("a commit").lines() {
                let action: serde_json::Value = serde_json::from_str(line).expect("JSON");
                if let Some(id) = action.pointer("/txn/appId").and_then(|v| v.as_str()) {
                    ids.insert(id.to_owned());
                }
            }
        }
    }
    ids
}

/// Kills a child process (and the processes it names) if the test ends before it.
struct Running {
    child: Option<Child>,
    pids: Vec<u32>,
}

impl Running {
    fn spawn(command: &mut Command) -> Self {
        let child = command.spawn().expect("the tidelake binary runs");
        Running {
            child: Some(child),
            pids: Vec::new(),
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    fn wait(mut self) -> Output {
        self.child
            .take()
            .expect("running")
            .wait_with_output()
            .expect("wait")
    }

    /// Waits up to `limit` for the child to exit.
    fn wait_at_most(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child().try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in &self.pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn launch(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .arg("launch")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the tidelake binary runs");
    assert_exit(&output, 0);
    output
}

#[test]
fn every_layout_gives_the_same_alerts_and_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let hostfile = d.join("hosts");
    std::fs::write(
        &hostfile,
        format!(
            "# two processes\n127.0.0.1:{}\n\n127.0.0.1:{}\n",
            free_port(),
            free_port()
        ),
    )
    .expect("write the hostfile");

    // 2×1 through `tidelake worker` and a hostfile, both processes at once.
    let workers: Vec<Running> = (0..2)
        .map(|process| {
            let job = job("t2x1", &format!("alerts-2x1-{process}.jsonl"));
            let p = process.to_string();
            let dead = format!("dead-{process}.jsonl");
            let head = [
                "worker",
                "--hostfile",
                "hosts",
                "--process",
                &p,
                "--workers",
                "1",
                "--dead-letters",
                &dead,
            ];
            Running::spawn(
                Command::new(env!("CARGO_BIN_EXE_tidelake"))
                    .args(args(&head, &job))
                    .current_dir(d)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    for worker in workers {
        assert_exit(&worker.wait(), 0);
    }
    // 1×1 and 1×4 in one process; 2×2 and 4×1 launched.
    assert_exit(
        &tidelake(d, &args(&["run"], &job("t1x1", "alerts-1x1.jsonl"))),
        0,
    );
    assert_exit(
        &tidelake(
            d,
            &args(&["run", "--workers", "4"], &job("t1x4", "alerts-1x4.jsonl")),
        ),
        0,
    );
    let launched = launch(
        d,
        &args(
            &["--processes", "2", "--workers", "2"],
            &job("t2x2", "alerts-2x2.jsonl"),
        ),
    );
    let summary = String::from_utf8_lossy(&launched.stderr);
    assert!(
        summary.contains("2 processes × 2 workers: 100,000 events")
            && summary.contains("[p1] tidelake: done")
            && summary.contains("per worker: w0 "),
        "{summary}"
    );
    launch(
        d,
        &args(
            &["--processes", "4", "--workers", "1"],
            &job("t4x1", "alerts-4x1.jsonl"),
        ),
    );

    let reference_alerts = sorted_alerts(d, &["alerts-1x1.jsonl".into()]);
    assert!(
        reference_alerts.len() > 10,
        "{} alerts",
        reference_alerts.len()
    );
    let python = Python::find();
    let reference_rows = sorted_rows(
        python
            .read(&d.join("t1x1").display().to_string(), &[])
            .transactions(),
    );
    assert_eq!(reference_rows.len(), 100_000);
    for (layout, workers) in [("1x1", 1), ("1x4", 4), ("2x2", 4), ("4x1", 4), ("2x1", 2)] {
        let files: Vec<String> = if layout == "2x1" {
            vec!["alerts-2x1-0.jsonl".into(), "alerts-2x1-1.jsonl".into()]
        } else {
            vec![format!("alerts-{layout}.jsonl")]
        };
        assert_eq!(
            sorted_alerts(d, &files),
            reference_alerts,
            "alerts of {layout}"
        );
        let table = d.join(format!("t{layout}"));
        let rows = python
            .read(&table.display().to_string(), &[])
            .transactions();
        assert_eq!(sorted_rows(rows), reference_rows, "rows of {layout}");
        let expected: BTreeSet<String> = (0..workers).map(|w| format!("c-w{w}")).collect();
        assert_eq!(app_ids(&table), expected, "txn appIds of {layout}");
    }
}

/// A launched cluster whose stderr lines arrive on a channel, with the pids of its
/// processes.
struct Launched {
    launcher: Running,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Launched {
    /// Starts `tidelake launch` with `args` in `dir` and waits until it has named the
    /// pid of each of its `processes`.
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)], processes: usize) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidelake"));
        command
            .arg("launch")
            .args(args)
            .current_dir(dir)
            // The launcher's own directory too, since some tests kill it before it
            // can remove that.
            .env("TMPDIR", dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut launcher = Running::spawn(&mut command);
        let stderr: ChildStderr = launcher.child().stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut launched = Launched {
            launcher,
            lines,
            seen: Vec::new(),
        };
        for p in 0..processes {
            let line = launched.wait_for(&format!("tidelake launch: process {p}: pid "));
            let pid = line
                .split("pid ")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .and_then(|pid| pid.parse().ok())
                .unwrap_or_else(|| panic!("a pid in {line:?}"));
            launched.launcher.pids.push(pid);
        }
        launched
    }

    /// The first stderr line containing `text`: one seen already, or the next within 60 s.
    fn wait_for(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
        panic!("no line with {text:?} in:\n{}", self.seen.join("\n"));
    }

    /// Sends `signal` to process `process` of the cluster.
    fn signal(&self, process: usize, signal: &str) {
        send(signal, self.launcher.pids[process]);
    }

    /// Sends `signal` to the launcher.
    fn signal_launcher(&mut self, signal: &str) {
        send(signal, self.launcher.child().id());
    }

    /// Waits up to `limit` for the launcher to exit; returns its status and stderr.
    fn exit_within(mut self, limit: Duration) -> (ExitStatus, String) {
        let status = self.launcher.wait_at_most(limit);
        self.seen.extend(self.lines.try_iter());
        let stderr = self.seen.join("\n");
        let status = status.unwrap_or_else(|| panic!("still running after {limit:?}:\n{stderr}"));
        // The reader thread ends with the launcher's stderr.
        std::thread::sleep(Duration::from_millis(100));
        let stderr = [stderr, self.lines.try_iter().collect::<Vec<_>>().join("\n")].join("\n");
        (status, stderr)
    }
}

/// `kill -SIGNAL pid`.
fn send(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Asserts the launcher's exit code and that its stderr holds each of `expected`.
fn assert_ended(status: ExitStatus, stderr: &str, code: i32, expected: &[&str]) {
    assert_eq!(status.code(), Some(code), "{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "{text:?} in:\n{stderr}");
    }
}

/// An unbounded job, throttled, writing a table.
const UNBOUNDED: [&str; 12] = [
    "--count",
    "unbounded",
    "--rate",
    "20000",
    "--accounts",
    "1000",
    "--commit-interval",
    "1s",
    "--table",
    "t",
    "--status-interval",
    "200ms",
];

#[test]
fn a_killed_process_makes_the_cluster_exit_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = ["--processes", "2", "--workers", "1"];
    let mut launched = Launched::start(dir.path(), &[&head[..], &UNBOUNDED].concat(), &[], 2);
    // Status lines start before the cluster forms; a peer killed before that is a
    // start-up failure, not a lost connection.
    launched.wait_for("[p1] tidelake: cluster formed");
    launched.wait_for("[p0] tidelake: cluster formed");
    launched.signal(1, "-KILL");
    let (status, stderr) = launched.exit_within(Duration::from_secs(10));
    assert_ended(
        status,
        &stderr,
        1,
        &[
            "[p0] tidelake: error: lost the connection to process 1 (127.0.0.1:",
            "tidelake launch: error: the job failed:",
            "was killed by signal SIGKILL",
        ],
    );
    let failures: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.contains("the job failed"))
        .skip(1)
        .collect();
    assert!(
        failures[0].starts_with("  process 1 (pid ")
            && failures[0].ends_with("was killed by signal SIGKILL"),
        "the killed process is named first: {failures:?}"
    );
    assert!(
        failures[1].starts_with("  process 0 (pid ")
            && failures[1].contains("exited with status 1: lost the connection to process 1"),
        "the survivor exited non-zero by itself: {failures:?}"
    );
}

#[test]
fn ctrl_c_to_the_launcher_stops_every_process_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = ["--processes", "2", "--workers", "1"];
    let mut launched = Launched::start(dir.path(), &[&head[..], &UNBOUNDED].concat(), &[], 2);
    launched.wait_for("[p1] tidelake: status:");
    launched.signal_launcher("-INT");
    let (status, stderr) = launched.exit_within(Duration::from_secs(30));
    assert_ended(
        status,
        &stderr,
        0,
        &[
            "[p0] tidelake: stopped in ",
            "[p1] tidelake: stopped in ",
            "tidelake launch: done in ",
        ],
    );
}

/// Whether `pid` has ended (gone, or a zombie nobody has reaped yet).
fn ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            == Some("Z")
    })
}

#[test]
fn the_processes_of_a_killed_launcher_stop_by_themselves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = ["--processes", "2", "--workers", "1"];
    let mut launched = Launched::start(dir.path(), &[&head[..], &UNBOUNDED].concat(), &[], 2);
    launched.wait_for("[p0] tidelake: status:");
    launched.wait_for("[p1] tidelake: status:");
    let pids = launched.launcher.pids.clone();
    launched.signal_launcher("-KILL");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids.iter().all(|&pid| ended(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let running: Vec<u32> = pids.into_iter().filter(|&pid| !ended(pid)).collect();
    assert!(
        running.is_empty(),
        "still running 10 s after the launcher was killed: {running:?}"
    );
}

#[test]
fn a_stopped_process_trips_the_stall_watchdog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = [
        "--processes",
        "2",
        "--workers",
        "1",
        "--stall-timeout",
        "2s",
    ];
    let mut launched = Launched::start(dir.path(), &[&head[..], &UNBOUNDED].concat(), &[], 2);
    launched.wait_for("[p0] tidelake: cluster formed");
    launched.wait_for("[p1] tidelake: cluster formed");
    launched.signal(1, "-STOP");
    let (status, stderr) = launched.exit_within(Duration::from_secs(30));
    assert_ended(
        status,
        &stderr,
        1,
        &[
            "[p0] tidelake: error: job failed: no progress for 2s while records are in flight",
            "process 0 (pid ",
            "process 1 (pid ",
            "was stopped by the launcher after process 0 failed",
        ],
    );
}

#[test]
fn a_panicking_worker_aborts_its_process_and_fails_the_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Global worker 3 is the second worker of process 1.
    let head = ["--processes", "2", "--workers", "2"];
    let launched = Launched::start(
        dir.path(),
        &[&head[..], &UNBOUNDED].concat(),
        &[("TIDELAKE_TEST_PANIC", "3:2000"), ("RUST_BACKTRACE", "0")],
        2,
    );
    let (status, stderr) = launched.exit_within(Duration::from_secs(30));
    assert_ended(
        status,
        &stderr,
        1,
        &[
            "TIDELAKE_TEST_PANIC: worker 3 panics after 2000 records, as asked",
            "was killed by signal SIGABRT: a worker thread panicked",
            "[p0] tidelake: error: lost the connection to process 1",
        ],
    );

    // One process: the other worker thread does not wait for the panicked one forever.
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args(["run", "--workers", "2", "--quiet"])
        .args(UNBOUNDED)
        .env("TIDELAKE_TEST_PANIC", "1:2000")
        .env("RUST_BACKTRACE", "0")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .output()
        .expect("the tidelake binary runs");
    assert_eq!(
        output.status.code(),
        None,
        "killed by a signal: {}",
        describe(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_peer_that_never_starts_fails_the_start_after_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (zero, one) = (free_port(), free_port());
    std::fs::write(
        dir.path().join("hosts"),
        format!("127.0.0.1:{zero}\n127.0.0.1:{one}\n"),
    )
    .expect("write");
    let started = Instant::now();
    let output = tidelake(
        dir.path(),
        &[
            "worker",
            "--hostfile",
            "hosts",
            "--process",
            "1",
            "--workers",
            "1",
            "--no-table",
            "--start-timeout",
            "2s",
            "--count",
            "1000",
        ],
    );
    assert_exit(&output, 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "the cluster did not form within 2s: no connection with process 0 (127.0.0.1:{zero})"
        )),
        "{}",
        describe(&output)
    );
    assert!(
        output.stdout.is_empty(),
        "stdout carries only alerts: {}",
        describe(&output)
    );
}

#[test]
fn processes_given_different_jobs_refuse_each_other_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts = format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port());
    std::fs::write(dir.path().join("hosts"), hosts).expect("write");
    let worker = |process: &str, count: &str| {
        [
            "worker",
            "--hostfile",
            "hosts",
            "--process",
            process,
            "--no-table",
            "--start",
            "0",
            "--start-timeout",
            "10s",
            "--count",
            count,
        ]
        .map(str::to_owned)
    };
    let mut zero = Running::spawn(
        Command::new(env!("CARGO_BIN_EXE_tidelake"))
            .args(worker("0", "1000"))
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let one = tidelake(
        dir.path(),
        &worker("1", "2000").each_ref().map(String::as_str),
    );
    assert!(
        zero.wait_at_most(Duration::from_secs(20)).is_some(),
        "process 0 ended"
    );
    let zero = zero.wait();
    for (output, peer, theirs, mine) in [(&one, 0, "1000", "2000"), (&zero, 1, "2000", "1000")] {
        assert_exit(output, 1);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("process {peer} (127.0.0.1:"))
                && stderr.contains(&format!(
                    "is not part of this cluster: it runs --count \"{theirs}\", this process --count \"{mine}\""
                )),
            "{}",
            describe(output)
        );
    }
}

#[test]
fn a_taken_cluster_address_exits_3_for_the_launcher_to_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    std::fs::write(dir.path().join("hosts"), format!("{address}\n")).expect("write");
    let output = tidelake(
        dir.path(),
        &[
            "worker",
            "--hostfile",
            "hosts",
            "--process",
            "0",
            "--no-table",
            "--count",
            "10",
        ],
    );
    assert_exit(&output, 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("process 0 cannot listen on {address}")),
        "{}",
        describe(&output)
    );
}

/// The first `sh` block of the README's cluster section, run as written (with this
/// build's binary for `tidelake`).
#[test]
fn the_readme_cluster_example_works_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Several processes"))
        .expect("the README's cluster section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    assert!(block.contains("tidelake launch"), "{block}");
    let dir = tempfile::tempdir().expect("tempdir");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tidelake"))
        .parent()
        .expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("sh")
        .args(["-e", "-c", block])
        .env("PATH", path)
        .current_dir(dir.path())
        .output()
        .expect("sh runs");
    assert_exit(&output, 0);
    let alerts = read_lines::<AlertLine>(&dir.path().join("alerts.jsonl"));
    assert!(!alerts.is_empty(), "{}", describe(&output));
    let validate = tidelake(dir.path(), &["table", "validate", "lake/cluster"]);
    assert_exit(&validate, 0);
}

#[test]
fn bad_cluster_flags_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hosts"), "127.0.0.1:1\nlocalhost\n").expect("write");
    std::fs::write(dir.path().join("one"), "127.0.0.1:1\n").expect("write");
    let cases: [(&[&str], &str); 5] = [
        (
            &["worker", "--hostfile", "missing", "--process", "0"],
            "cannot read the hostfile missing",
        ),
        (
            &["worker", "--hostfile", "hosts", "--process", "0"],
            "hosts, line 2: \"localhost\" is not host:port",
        ),
        (
            &[
                "worker",
                "--hostfile",
                "one",
                "--process",
                "1",
                "--job-id",
                "j",
            ],
            "--process 1 is not in one, which names 1 processes",
        ),
        (
            &["worker", "--hostfile", "one", "--process", "0"],
            "needs --job-id",
        ),
        (&["launch", "--processes", "0"], "--processes"),
    ];
    for (args, message) in cases {
        let output = tidelake(dir.path(), args);
        assert_exit(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(message),
            "{message:?} in {}",
            describe(&output)
        );
    }
}

/// A two-process hostfile on free loopback ports, and its addresses.
fn two_process_hostfile(dir: &Path) -> Vec<String> {
    let addresses: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    std::fs::write(dir.join("hosts"), addresses.join("\n") + "\n").expect("hostfile");
    addresses
}

/// `tidelake worker` process `process` of a 20 000-event generator job.
fn worker_command(dir: &Path, process: &str, secret: Option<&str>, timeout: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidelake"));
    command
        .args([
            "worker",
            "--hostfile",
            "hosts",
            "--process",
            process,
            "--no-table",
            "--start",
            "0",
            "--count",
            "20000",
            "--alerts",
            &format!("alerts-{process}.jsonl"),
            "--report-json",
            &format!("report-{process}.json"),
            "--start-timeout",
            timeout,
        ])
        .current_dir(dir)
        .env_remove("TIDELAKE_CLUSTER_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(file) = secret {
        command.args(["--cluster-secret-file", file]);
    }
    command
}

/// Connects to `address` once it listens, writes `bytes`, and returns what comes back
/// before the other side closes the connection (or stays silent for 5 s).
fn probe(address: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut stream = loop {
        match std::net::TcpStream::connect(address) {
            Ok(stream) => break stream,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("nothing listens on {address}: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fn events_of(dir: &Path, process: usize) -> u64 {
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("report-{process}.json"))).expect("the report"),
    )
    .expect("JSON");
    report["totals"]["events"].as_u64().expect("events")
}

#[test]
fn connections_that_do_not_authenticate_are_dropped_and_the_real_peer_joins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let addresses = two_process_hostfile(d);
    std::fs::write(d.join("secret"), "correct horse battery staple\n").expect("secret");
    let mut zero = Running::spawn(&mut worker_command(d, "0", Some("secret"), "60s"));

    // Stray bytes, as from a port scan or an HTTP health probe.
    let answer = probe(&addresses[0], b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // A hello of the previous protocol, with another job's settings: nothing comes back,
    // in particular not this job's settings.
    let mut old_hello = b"tidelake".to_vec();
    let settings = br#"[["--job-id","theirs"],["--table","s3://x/t"]]"#;
    for n in [2u32, 1, 2, 1, settings.len() as u32] {
        old_hello.extend_from_slice(&n.to_le_bytes());
    }
    old_hello.extend_from_slice(settings);
    assert!(probe(&addresses[0], &old_hello).is_empty());
    // A well-formed challenge, then a proof made without the secret: the acceptor's
    // challenge and proof come back (77 bytes), never its hello.
    let mut challenge = b"tidelake".to_vec();
    challenge.extend_from_slice(&3u32.to_le_bytes());
    challenge.push(1);
    challenge.extend_from_slice(&[7u8; 32]);
    let mut attempt = challenge.clone();
    attempt.extend_from_slice(&[0u8; 32]);
    let answer = probe(&addresses[0], &attempt);
    // The nonce and proof are random bytes, so "--" may well occur in them by chance:
    // look for a setting name of the hello instead.
    assert_eq!(answer.len(), 8 + 4 + 1 + 32 + 32, "{answer:?}");
    assert_eq!(&answer[..13], &challenge[..13], "{answer:?}");
    assert!(
        !String::from_utf8_lossy(&answer).contains("--count"),
        "{answer:?}"
    );
    assert!(
        zero.child().try_wait().expect("try_wait").is_none(),
        "process 0 is still waiting for its peer"
    );

    // The real process 1, with the secret from the environment: the cluster forms.
    let one = worker_command(d, "1", None, "60s")
        .env("TIDELAKE_CLUSTER_SECRET", "correct horse battery staple")
        .output()
        .expect("process 1 runs");
    assert_exit(&one, 0);
    let zero = zero.wait();
    assert_exit(&zero, 0);
    assert_eq!(events_of(d, 0) + events_of(d, 1), 20_000);
    let stderr = String::from_utf8_lossy(&zero.stderr);
    assert_eq!(
        stderr
            .matches("tidelake: warning: cluster: dropped a connection from 127.0.0.1:")
            .count(),
        3,
        "{stderr}"
    );
    assert!(
        stderr.contains("does not speak tidelake's cluster handshake"),
        "{stderr}"
    );
    assert!(
        stderr.contains("runs cluster protocol version 2, this process 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not know this cluster's secret"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_secret_never_joins_and_both_fail_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    two_process_hostfile(d);
    std::fs::write(d.join("a"), "the secret of cluster a").expect("secret");
    std::fs::write(d.join("b"), "the secret of cluster b").expect("secret");
    let mut zero = Running::spawn(&mut worker_command(d, "0", Some("a"), "3s"));
    let started = Instant::now();
    let one = worker_command(d, "1", Some("b"), "3s")
        .output()
        .expect("process 1 runs");
    assert!(zero.wait_at_most(Duration::from_secs(20)).is_some());
    let zero = zero.wait();
    assert!(started.elapsed() < Duration::from_secs(20));
    for output in [&zero, &one] {
        assert_exit(output, 1);
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("the cluster did not form within 3s"),
            "{}",
            describe(output)
        );
    }
    let one_err = String::from_utf8_lossy(&one.stderr);
    assert!(
        one_err.contains("process 0 (127.0.0.1:")
            && one_err.contains("does not know this cluster's secret"),
        "{one_err}"
    );
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("dropped a connection"),
        "{}",
        describe(&zero)
    );
}

#[test]
fn without_a_secret_only_loopback_addresses_may_be_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let port = free_port();
    std::fs::write(
        d.join("remote"),
        format!("127.0.0.1:{port}\n10.255.255.1:2101\n"),
    )
    .expect("hostfile");
    std::fs::write(d.join("one"), format!("127.0.0.1:{port}\n")).expect("hostfile");
    std::fs::write(d.join("short"), "only 9 b").expect("secret");
    let cases: [(&[&str], &str); 3] = [
        (
            &["--hostfile", "remote", "--process", "0"],
            "10.255.255.1:2101 is not a loopback address",
        ),
        (
            &[
                "--hostfile",
                "one",
                "--process",
                "0",
                "--listen",
                "0.0.0.0:0",
            ],
            "0.0.0.0:0 is not a loopback address",
        ),
        (
            &[
                "--hostfile",
                "one",
                "--process",
                "0",
                "--cluster-secret-file",
                "short",
            ],
            "the cluster secret in short is 8 bytes; use at least 16",
        ),
    ];
    for (args, says) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_tidelake"))
            .arg("worker")
            .args(args)
            .args(["--no-table", "--count", "10"])
            .env_remove("TIDELAKE_CLUSTER_SECRET")
            .current_dir(d)
            .output()
            .expect("runs");
        assert_exit(&output, 2);
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(says),
            "{says:?} not in {}",
            describe(&output)
        );
    }
}
