//! A cluster of processes on loopback (`tidelake worker --hostfile`): 2 processes × 1
//! worker give the same alerts and the same Delta table as 1 process × 2 workers, with
//! one `txn` appId per global worker; bad cluster flags are refused.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::python::{Python, TransactionOut};
use crate::support::{AlertLine, assert_exit, describe, free_port, read_lines, tidelake};

/// The job both layouts run: the generator, committing every second of event time.
const JOB: [&str; 10] = [
    "--count",
    "100000",
    "--start",
    "2024-05-01T00:00:00Z",
    "--commit-interval",
    "1s",
    "--job-id",
    "c",
    "--quiet",
    "--accounts",
];

fn job(table: &str, alerts: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = JOB.iter().map(|s| (*s).to_owned()).collect();
    args.push("5000".into());
    for arg in ["--table", table, "--alerts", alerts].iter().chain(extra) {
        args.push((*arg).to_owned());
    }
    args
}

/// Starts process `process` of the cluster in `hostfile`.
fn start_worker(dir: &Path, hostfile: &str, process: usize, table: &str) -> Child {
    let alerts = format!("alerts-{process}.jsonl");
    let dead = format!("dead-{process}.jsonl");
    let p = process.to_string();
    Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args([
            "worker",
            "--hostfile",
            hostfile,
            "--process",
            &p,
            "--workers",
            "1",
        ])
        .args(job(table, &alerts, &["--dead-letters", &dead]))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tidelake binary runs")
}

/// Kills the child if the test fails before it ends.
struct Running(Option<Child>);

impl Running {
    fn wait(mut self) -> Output {
        self.0
            .take()
            .expect("running")
            .wait_with_output()
            .expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sorted_alerts(dir: &Path, files: &[&str]) -> Vec<String> {
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

#[test]
fn two_processes_give_the_results_of_one_process_with_two_workers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hostfile = dir.path().join("hosts");
    std::fs::write(
        &hostfile,
        format!(
            "# two processes\n127.0.0.1:{}\n\n127.0.0.1:{}\n",
            free_port(),
            free_port()
        ),
    )
    .expect("write the hostfile");
    let hosts = hostfile.display().to_string();
    let workers = [
        Running(Some(start_worker(dir.path(), &hosts, 0, "cluster"))),
        Running(Some(start_worker(dir.path(), &hosts, 1, "cluster"))),
    ];
    for worker in workers {
        assert_exit(&worker.wait(), 0);
    }
    let single = tidelake(
        dir.path(),
        &[
            &["run", "--workers", "2"][..],
            &job("single", "alerts.jsonl", &[])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        ]
        .concat(),
    );
    assert_exit(&single, 0);

    let cluster_alerts = sorted_alerts(dir.path(), &["alerts-0.jsonl", "alerts-1.jsonl"]);
    assert!(cluster_alerts.len() > 10, "{} alerts", cluster_alerts.len());
    assert_eq!(cluster_alerts, sorted_alerts(dir.path(), &["alerts.jsonl"]));

    let python = Python::find();
    let read = |table: &str| {
        python.read(
            &dir.path().join(table).display().to_string(),
            &["c-w0", "c-w1"],
        )
    };
    let (cluster, single) = (read("cluster"), read("single"));
    assert_eq!(cluster.rows.len(), 100_000);
    assert_eq!(
        sorted_rows(cluster.transactions()),
        sorted_rows(single.transactions())
    );
    assert_eq!(
        cluster.txn, single.txn,
        "one appId per global worker, at the same epochs"
    );
    assert!(
        cluster.txn.values().all(Option::is_some),
        "{:?}",
        cluster.txn
    );
}

#[test]
fn bad_cluster_flags_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hosts"), "127.0.0.1:1\nlocalhost\n").expect("write");
    std::fs::write(dir.path().join("one"), "127.0.0.1:1\n").expect("write");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--hostfile", "missing", "--process", "0"],
            "cannot read the hostfile missing",
        ),
        (
            &["--hostfile", "hosts", "--process", "0"],
            "hosts, line 2: \"localhost\" is not host:port",
        ),
        (
            &["--hostfile", "one", "--process", "1", "--job-id", "j"],
            "--process 1 is not in one, which names 1 processes",
        ),
        (&["--hostfile", "one", "--process", "0"], "needs --job-id"),
    ];
    for (args, message) in cases {
        let output = tidelake(dir.path(), &[&["worker"][..], args].concat());
        assert_exit(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(message),
            "{message:?} in {}",
            describe(&output)
        );
    }
}
