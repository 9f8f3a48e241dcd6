//! Checkpoints through the binary, with real processes and real `kill -9`
//! (docs/checkpoints.md): a job killed at seeded random moments — and at the two
//! moments that matter most, between an epoch's data-file upload and its log commit
//! (`TIDELAKE_TEST_PAUSE=commit:N`) and while a checkpoint is being written
//! (`manifest:N`) — then restarted until it finishes, ends with exactly the tables
//! (read by delta-rs), alerts file and dead letters of an uninterrupted run, on one
//! process of 2 workers and on a launched cluster of 2 × 2, from a throttled generator
//! and from CSV files with bad lines. A stop takes a savepoint that restores onto other
//! layouts; damaged checkpoints are skipped for older ones; checkpoints work on S3.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::moto::{BUCKET, MotoServer};
use crate::python::Python;
use crate::support::{Rng, assert_exit, describe, tidelake};

/// How a run is started: `tidelake run` with some workers, or a launched cluster.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Layout {
    /// One process of `workers` workers.
    Run(usize),
    /// `processes` processes of `workers` workers each.
    Launch(usize, usize),
}

impl Layout {
    pub(crate) fn args(self) -> Vec<String> {
        match self {
            Layout::Run(w) => vec!["run".into(), "--workers".into(), w.to_string()],
            Layout::Launch(p, w) => vec![
                "launch".into(),
                "--processes".into(),
                p.to_string(),
                "--workers".into(),
                w.to_string(),
            ],
        }
    }
}

/// How a run is ended early.
#[derive(Clone, Debug)]
pub(crate) enum Kill {
    /// `kill -9` after this long (of the process, or of one process of a cluster, or
    /// of its launcher, chosen by the seed).
    After(Duration, u64),
    /// `kill -9` once the process pauses at a test pause point (`commit:3`).
    AtPause(&'static str, u64),
}

/// The outputs of one job id in a test's directory.
pub(crate) fn outputs(id: &str) -> Vec<String> {
    [
        "--job-id".to_owned(),
        id.to_owned(),
        "--table".to_owned(),
        format!("{id}/transactions"),
        "--alerts-table".to_owned(),
        format!("{id}/alerts"),
        "--alerts".to_owned(),
        format!("{id}-alerts.jsonl"),
        "--dead-letters".to_owned(),
        format!("{id}-dead.jsonl"),
        "--report-json".to_owned(),
        format!("{id}-report.json"),
        "--quiet".to_owned(),
    ]
    .to_vec()
}

/// A running `tidelake` whose stderr lines arrive on a channel; killed if dropped.
pub(crate) struct Running {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
}

impl Running {
    pub(crate) fn start(dir: &Path, args: &[String], env: &[(String, String)]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidelake"))
            .args(args)
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tidelake binary runs");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child: Some(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// Takes the stderr lines that have arrived.
    pub(crate) fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// Waits until the process exits or `until` holds of a line, for at most `limit`.
    /// Returns the exit status if it exited.
    pub(crate) fn watch(
        &mut self,
        limit: Duration,
        until: impl Fn(&str) -> bool,
    ) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            let before = self.seen.len();
            self.drain();
            if self.seen[before..].iter().any(|l| until(l)) {
                return None;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.drain();
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// The pids of a launch's processes, from the launcher's lines.
    pub(crate) fn process_pids(&self) -> Vec<u32> {
        self.seen
            .iter()
            .filter_map(|l| l.split(": pid ").nth(1)?.split(',').next()?.parse().ok())
            .collect()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits for the process to exit; returns its status and stderr.
    pub(crate) fn finish(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let status = child.wait().expect("wait");
        // The reader thread ends with the pipe.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        (status, self.seen.join("\n"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A launch's processes notice a killed launcher and stop by themselves; make
        // sure of it.
        for pid in self.process_pids() {
            signal(pid, "KILL");
        }
    }
}

pub(crate) fn signal(pid: u32, name: &str) {
    // A process that has exited already is no error.
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Runs the job `args` in `dir`, killing it as `kills` says, one kill per run, then
/// once more to its end; returns each run's stderr, the last one's exit status 0.
pub(crate) fn run_with_kills(
    dir: &Path,
    args: &[String],
    env: &[(String, String)],
    kills: &[Kill],
) -> Vec<String> {
    let mut logs = Vec::new();
    for kill in kills {
        let mut env = env.to_vec();
        if let Kill::AtPause(point, n) = kill {
            env.push(("TIDELAKE_TEST_PAUSE".into(), format!("{point}:{n}")));
        }
        let mut running = Running::start(dir, args, &env);
        let exited = match kill {
            Kill::After(delay, choice) => {
                let exited = running.watch(*delay, |_| false);
                if exited.is_none() {
                    let pids = running.process_pids();
                    // A launch: one of its processes, or the launcher itself.
                    let victim = match pids.len() {
                        0 => running.pid(),
                        n => match (*choice as usize) % (n + 1) {
                            i if i == n => running.pid(),
                            i => pids[i],
                        },
                    };
                    signal(victim, "KILL");
                }
                exited
            }
            Kill::AtPause(point, n) => {
                let marker = format!("tidelake-test: paused at {point} {n}");
                let exited = running.watch(Duration::from_secs(120), |l| l.contains(&marker));
                if exited.is_none() {
                    // The paused process: the run itself, or the process of a launch
                    // that printed the marker.
                    let line = running.seen.iter().find(|l| l.contains(&marker));
                    let process = line
                        .and_then(|l| l.strip_prefix("[p"))
                        .and_then(|l| l.split(']').next())
                        .and_then(|i| i.parse::<usize>().ok());
                    let pids = running.process_pids();
                    let victim = process
                        .and_then(|i| pids.get(i).copied())
                        .unwrap_or(running.pid());
                    signal(victim, "KILL");
                }
                exited
            }
        };
        let (status, log) = running.finish();
        // A kill at a moment can come as the job ends by itself: the process it hits has
        // exited 0 already (a launch's process), and so does the run.
        let too_late = matches!(kill, Kill::After(..)) && status.success();
        if exited.is_some() || too_late {
            // It ended before the kill: nothing more to kill.
            assert!(
                status.success(),
                "a run ended on its own but failed:\n{log}"
            );
            logs.push(log);
            return logs;
        }
        assert!(!status.success(), "a killed run exited 0:\n{log}");
        logs.push(log);
    }
    let (status, log) = Running::start(dir, args, env).finish();
    assert!(status.success(), "the last run failed:\n{log}");
    logs.push(log);
    logs
}

/// What a finished job wrote: its tables' rows, its alerts and dead letters, sorted.
#[derive(Debug, PartialEq)]
pub(crate) struct Written {
    pub(crate) transactions: Vec<String>,
    pub(crate) alerts_table: Vec<String>,
    pub(crate) alerts: Vec<String>,
    pub(crate) dead_letters: Vec<String>,
}

pub(crate) fn written(python: &Python, dir: &Path, id: &str) -> Written {
    let table = |name: &str| sorted_rows(python, dir.join(id).join(name).display().to_string());
    Written {
        transactions: table("transactions"),
        alerts_table: table("alerts"),
        alerts: sorted_lines(&dir.join(format!("{id}-alerts.jsonl"))),
        dead_letters: sorted_lines(&dir.join(format!("{id}-dead.jsonl"))),
    }
}

/// The rows of the table at `url`, as delta-rs reads them, each a JSON object, sorted.
pub(crate) fn sorted_rows(python: &Python, url: String) -> Vec<String> {
    let mut rows: Vec<String> = python
        .read(&url, &[])
        .rows
        .iter()
        .map(|row| Value::Object(row.clone()).to_string())
        .collect();
    rows.sort();
    rows
}

/// The lines of the file at `path` (none if there is no file), sorted.
pub(crate) fn sorted_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

pub(crate) fn assert_same(got: &Written, want: &Written, what: &str) {
    assert!(want.alerts.len() > 5, "{what}: the input raises alerts");
    same_lines(&got.transactions, &want.transactions, what, "table rows");
    same_lines(&got.alerts_table, &want.alerts_table, what, "alerts table");
    same_lines(&got.alerts, &want.alerts, what, "alerts file");
    same_lines(&got.dead_letters, &want.dead_letters, what, "dead letters");
}

/// Asserts that two sorted lists are equal, naming a few lines each has more of.
pub(crate) fn same_lines(got: &[String], want: &[String], what: &str, which: &str) {
    if got == want {
        return;
    }
    fn count(lines: &[String]) -> std::collections::BTreeMap<&str, i64> {
        let mut counts = std::collections::BTreeMap::new();
        for line in lines {
            *counts.entry(line.as_str()).or_default() += 1;
        }
        counts
    }
    let (g, w) = (count(got), count(want));
    let extra: Vec<&&str> = g
        .keys()
        .filter(|k| g[*k] > w.get(*k).copied().unwrap_or(0))
        .take(4)
        .collect();
    let missing: Vec<&&str> = w
        .keys()
        .filter(|k| w[*k] > g.get(*k).copied().unwrap_or(0))
        .take(4)
        .collect();
    panic!(
        "{what}: {which}: {} lines, {} expected; more than expected: {extra:#?}; fewer: {missing:#?}",
        got.len(),
        want.len()
    );
}

/// The uninterrupted reference run of `job` (no checkpoints) as job id `ref`.
pub(crate) fn reference(dir: &Path, job: &[String]) -> Written {
    let mut args: Vec<String> = Layout::Run(2).args();
    args.extend(job.iter().cloned());
    args.extend(outputs("ref"));
    args.push("--no-checkpoints".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_exit(&tidelake(dir, &args), 0);
    written(&Python::find(), dir, "ref")
}

/// Runs `job` on `layout` as job id `id` with `kills`, and checks it wrote exactly what
/// the reference wrote; returns the runs' stderr.
fn check_with_kills(
    dir: &Path,
    job: &[String],
    layout: Layout,
    id: &str,
    kills: &[Kill],
    want: &Written,
) -> Vec<String> {
    let mut args = layout.args();
    args.extend(job.iter().cloned());
    args.extend(outputs(id));
    let logs = run_with_kills(dir, &args, &[], kills);
    let got = written(&Python::find(), dir, id);
    let what = format!("{id} on {layout:?} killed {kills:?}");
    if got != *want {
        eprintln!("{what}: runs:\n{}", logs.join("\n----\n"));
    }
    assert_same(&got, want, &what);
    // A restart that restored a checkpoint read only what came after it: less than the
    // whole input (each process reports its own reads).
    let total = reference_records(dir);
    for line in logs.iter().flat_map(|log| log.lines()) {
        let read = line
            .split("then read ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.replace(',', "").parse::<u64>().ok());
        if let Some(read) = read {
            assert!(
                read < total,
                "{what}: a restart read everything again: {line}"
            );
        }
    }
    logs
}

/// Records (accepted, dead letters, blank lines) the reference run read.
fn reference_records(dir: &Path) -> u64 {
    let text =
        std::fs::read_to_string(dir.join("ref-report.json")).expect("the reference's report");
    let report: Value = serde_json::from_str(&text).expect("a JSON report");
    ["events", "dead_letters", "blank_lines"]
        .iter()
        .map(|k| report["totals"][k].as_u64().unwrap_or(0))
        .sum()
}

/// `n` kills at seeded random moments within `max_ms`.
pub(crate) fn random_kills(seed: u64, n: usize, max_ms: u64) -> Vec<Kill> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| Kill::After(Duration::from_millis(rng.range(150, max_ms)), rng.next()))
        .collect()
}

/// The throttled generator: out of order, with late records (dead letters).
fn generator_job() -> Vec<String> {
    [
        "--count",
        "400000",
        "--rate",
        "250000",
        "--accounts",
        "20000",
        "--density",
        "20000",
        "--disorder",
        "3s",
        "--out-of-orderness",
        "2s",
        "--start",
        "2024-03-01T23:59:00Z",
        "--seed",
        "7",
        "--commit-interval",
        "1s",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn a_generator_job_killed_at_random_and_at_commits_and_checkpoints_writes_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let job = generator_job();
    let want = reference(d, &job);
    assert!(!want.dead_letters.is_empty(), "late records");

    let mut kills = random_kills(11, 5, 1_500);
    kills.push(Kill::AtPause("commit", 4));
    kills.push(Kill::AtPause("manifest", 3));
    let logs = check_with_kills(d, &job, Layout::Run(2), "one", &kills, &want);
    let restored = logs.iter().filter(|l| l.contains("restoring")).count();
    assert!(restored >= 3, "{}", logs.join("\n----\n"));

    let mut kills = random_kills(12, 4, 2_500);
    kills.insert(1, Kill::AtPause("commit", 3));
    kills.push(Kill::AtPause("manifest", 2));
    check_with_kills(d, &job, Layout::Launch(2, 2), "cluster", &kills, &want);
}

/// CSV files of `lines` transactions over two files, out of order within 2 s, with
/// ids of several shapes, blank lines and bad lines of every kind.
fn write_csv_input(dir: &Path, lines: usize) -> Vec<String> {
    let mut rng = Rng(99);
    let start = 1_717_200_000_000u64;
    let mut names = Vec::new();
    for file in 0..2 {
        let name = format!("input-{file}.csv");
        let mut text = String::from("account_id,ts_millis,amount\n");
        for i in 0..lines / 2 {
            let ts = start + (i as u64) * 7 + rng.below(2_000);
            let account = match rng.below(4) {
                0 => format!("{}", rng.below(3_000)),
                1 => format!("card-{:08x}", rng.below(3_000)),
                2 => format!("Ünïcode {}", rng.below(500)),
                _ => format!("{}-{}", "x".repeat(40), rng.below(200)),
            };
            let amount = match rng.below(100) {
                0..3 => format!("0.{:02}", rng.below(100)),
                3..6 => format!("{}.5", 501 + rng.below(900)),
                _ => format!("{}.{:02}", rng.below(400), rng.below(100)),
            };
            match rng.below(400) {
                0 => text.push('\n'),
                1 => text.push_str("nonsense line\n"),
                2 => text.push_str(&format!("{account},{ts},NaN\n")),
                3 => text.push_str(&format!(",{ts},{amount}\n")),
                4 => text.push_str(&format!("{account},-5,{amount}\n")),
                _ => text.push_str(&format!("{account},{ts},{amount}\n")),
            }
        }
        std::fs::write(dir.join(&name), text).expect("write input");
        names.push(name);
    }
    names
}

fn csv_job(inputs: &[String]) -> Vec<String> {
    let mut job: Vec<String> = ["--source", "csv", "--out-of-orderness", "1s"]
        .map(str::to_owned)
        .to_vec();
    job.push("--input".into());
    job.extend(inputs.iter().cloned());
    job.extend(["--split-size", "1MiB", "--commit-interval", "1s"].map(str::to_owned));
    job
}

#[test]
fn a_csv_job_killed_at_commits_checkpoints_and_random_moments_writes_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let inputs = write_csv_input(d, 200_000);
    let job = csv_job(&inputs);
    let want = reference(d, &job);
    assert!(want.dead_letters.len() > 100, "bad lines");

    let mut kills = vec![
        Kill::AtPause("commit", 5),
        Kill::AtPause("manifest", 2),
        Kill::AtPause("commit", 30),
    ];
    kills.extend(random_kills(21, 3, 600));
    check_with_kills(d, &job, Layout::Run(2), "one", &kills, &want);

    let kills = vec![
        Kill::AtPause("commit", 6),
        Kill::AtPause("manifest", 3),
        Kill::After(Duration::from_millis(700), 1),
    ];
    check_with_kills(d, &job, Layout::Launch(2, 2), "cluster", &kills, &want);
}

#[test]
fn the_velocity_rule_survives_kills_the_same_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut job = generator_job();
    job.extend(["--rule", "velocity", "--velocity-window", "2s"].map(str::to_owned));
    let want = reference(d, &job);
    let kills = [
        Kill::AtPause("commit", 3),
        Kill::After(Duration::from_millis(900), 0),
        Kill::AtPause("manifest", 4),
    ];
    check_with_kills(d, &job, Layout::Run(2), "velocity", &kills, &want);
}

#[test]
fn a_savepoint_on_two_by_two_restores_on_one_by_three_and_four_by_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let job = generator_job();
    let want = reference(d, &job);
    let id = "rescaled";
    let args = |layout: Layout| {
        let mut args = layout.args();
        args.extend(job.iter().cloned());
        args.extend(outputs(id));
        args
    };
    // Stopped (Ctrl-C to the launcher) on 2×2, then on 1×3, then finished on 4×1.
    let mut logs = Vec::new();
    for layout in [Layout::Launch(2, 2), Layout::Run(3)] {
        let mut running = Running::start(d, &args(layout), &[]);
        let exited = running.watch(Duration::from_millis(700), |_| false);
        assert!(exited.is_none(), "the run ended before it was stopped");
        signal(running.pid(), "INT");
        let (status, log) = running.finish();
        assert!(status.success(), "a stop exits 0:\n{log}");
        assert!(log.contains("savepoint"), "{log}");
        logs.push(log);
        if matches!(layout, Layout::Launch(..)) {
            // Stopped again as soon as it has restored: it holds at the savepoint's
            // boundary, which it has read nothing past, and exits 0 at once.
            let mut running = Running::start(d, &args(Layout::Run(3)), &[]);
            let restored = running.watch(Duration::from_secs(60), |l| l.contains("restoring"));
            assert!(restored.is_none(), "it restores before it ends");
            signal(running.pid(), "INT");
            let (status, log) = running.finish();
            assert!(
                status.success(),
                "a stop right after a restore exits 0:\n{log}"
            );
            logs.push(log);
        }
    }
    let (status, log) = Running::start(d, &args(Layout::Launch(4, 1)), &[]).finish();
    assert!(status.success(), "{log}");
    assert!(log.contains("restoring savepoint"), "{log}");
    logs.push(log);
    let got = written(&Python::find(), d, id);
    assert_same(&got, &want, &logs.join("\n----\n"));

    // A checkpoint taken on 1×2 (the job killed) is refused on 1×3, naming both.
    let id = "crashed";
    let mut crashed = Layout::Run(2).args();
    crashed.extend(job.iter().cloned());
    crashed.extend(outputs(id));
    let mut running = Running::start(d, &crashed, &[]);
    running.watch(Duration::from_secs(60), |l| {
        l.contains("checkpoint 2 complete")
    });
    drop(running);
    let mut other = Layout::Run(3).args();
    other.extend(job.iter().cloned());
    other.extend(outputs(id));
    let refused = tidelake(d, &other.iter().map(String::as_str).collect::<Vec<_>>());
    assert_exit(&refused, 2);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("taken by 1 process(es) of 2 worker(s), the job runs 1 of 3"),
        "{}",
        describe(&refused)
    );
}

#[test]
fn damaged_checkpoints_are_skipped_for_older_ones_and_none_usable_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let job = generator_job();
    let want = reference(d, &job);
    let id = "damaged";
    let mut args = Layout::Run(2).args();
    args.extend(job.iter().cloned());
    args.extend(outputs(id));
    args.extend(["--checkpoints-retained".to_owned(), "4".to_owned()]);
    let checkpoints = d.join(id).join("_checkpoints").join(id);
    let manifests = || -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&checkpoints)
            .expect("checkpoints")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "tlck"))
            .collect();
        files.sort();
        files
    };
    // Stopped with a savepoint partway, so the newest checkpoints are mid-input.
    let mut running = Running::start(d, &args, &[]);
    let exited = running.watch(Duration::from_millis(1_200), |_| false);
    assert!(exited.is_none(), "the run ended before it was stopped");
    signal(running.pid(), "INT");
    let (status, log) = running.finish();
    assert!(status.success(), "{log}");
    let kept = manifests();
    assert!(kept.len() >= 3, "{kept:?}\n{log}");

    // The newest manifest from a newer format, the one before with a part flipped.
    let parts_of = |manifest: &Path| -> Vec<String> {
        let dir = checkpoints.display().to_string();
        let id = id_of(manifest).to_string();
        let shown = tidelake(d, &["checkpoints", "show", &dir, "--json", "--id", &id]);
        assert_exit(&shown, 0);
        let shown: Value = serde_json::from_slice(&shown.stdout).expect("json");
        shown["manifest"]["parts"]
            .as_array()
            .expect("parts")
            .iter()
            .map(|p| p["file"].as_str().expect("a file").to_owned())
            .collect()
    };
    let newest = kept[kept.len() - 1].clone();
    let part = parts_of(&kept[kept.len() - 2])[1].clone();
    let mut bytes = std::fs::read(&newest).expect("read");
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&newest, bytes).expect("write");
    let part_path = checkpoints.join("parts").join(&part);
    let mut bytes = std::fs::read(&part_path).expect("read part");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&part_path, bytes).expect("write part");
    // The newest checkpoint left whole: none of its parts is the flipped one.
    let whole = kept[..kept.len() - 2]
        .iter()
        .rev()
        .find(|m| !parts_of(m).contains(&part))
        .map(|m| id_of(m))
        .expect("an older checkpoint is whole");

    let dir_arg = checkpoints.display().to_string();
    let list = tidelake(d, &["checkpoints", "list", &dir_arg, "--json"]);
    assert_exit(&list, 0);
    let listed: Value = serde_json::from_slice(&list.stdout).expect("json");
    let statuses: Vec<&str> = listed["checkpoints"]
        .as_array()
        .expect("checkpoints")
        .iter()
        .map(|c| c["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses.last(), Some(&"unusable"), "{listed}");
    let text = tidelake(d, &["checkpoints", "list", &dir_arg]);
    assert_exit(&text, 0);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("format version 99"),
        "{}",
        describe(&text)
    );

    // The restart warns naming both files, restores the newest whole one, ends exact.
    let (status, log) = Running::start(d, &args, &[]).finish();
    assert!(status.success(), "{log}");
    assert!(log.contains("format version 99"), "{log}");
    assert!(log.contains(&part) && log.contains("checksum"), "{log}");
    assert!(
        log.contains(&format!("restoring checkpoint {whole} "))
            || log.contains(&format!("restoring savepoint {whole} ")),
        "expected {whole}:\n{log}"
    );
    assert_same(&written(&Python::find(), d, id), &want, &log);

    // Every checkpoint damaged: the job refuses to start, unless told to ignore them.
    for manifest in manifests() {
        std::fs::write(&manifest, b"TLCKMANI").expect("truncate");
    }
    let refused = tidelake(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_exit(&refused, 2);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--ignore-checkpoints"),
        "{}",
        describe(&refused)
    );
    let mut ignoring = args.clone();
    ignoring.push("--ignore-checkpoints".into());
    let again = tidelake(d, &ignoring.iter().map(String::as_str).collect::<Vec<_>>());
    assert_exit(&again, 0);
    assert_same(
        &written(&Python::find(), d, id),
        &want,
        "ignoring the checkpoints",
    );
}

#[test]
fn a_store_that_fails_while_checkpoints_are_written_fails_the_job_and_a_restart_ends_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let job = generator_job();
    let want = reference(d, &job);
    let id = "broken";
    let mut args = Layout::Run(2).args();
    args.extend(job.iter().cloned());
    args.extend(outputs(id));
    let mut running = Running::start(d, &args, &[]);
    running.watch(Duration::from_secs(60), |l| {
        l.contains("checkpoint 2 complete")
    });
    // The parts' directory becomes a file: the next part cannot be written.
    let parts = d.join(id).join("_checkpoints").join(id).join("parts");
    let aside = d.join("parts-aside");
    std::fs::rename(&parts, &aside).expect("move the parts aside");
    std::fs::write(&parts, b"not a directory").expect("a file in its place");
    let (status, log) = running.finish();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("writing a checkpoint"), "{log}");
    // Every checkpoint it completed is whole; a restart resumes from one and ends exact.
    std::fs::remove_file(&parts).expect("remove the file");
    std::fs::rename(&aside, &parts).expect("put the parts back");
    let dir_arg = d
        .join(id)
        .join("_checkpoints")
        .join(id)
        .display()
        .to_string();
    let list = tidelake(d, &["checkpoints", "list", &dir_arg, "--json"]);
    assert_exit(&list, 0);
    let listed: Value = serde_json::from_slice(&list.stdout).expect("json");
    let checkpoints = listed["checkpoints"].as_array().expect("checkpoints");
    assert!(!checkpoints.is_empty(), "{listed}");
    assert!(
        checkpoints.iter().all(|c| c["status"] == "complete"),
        "{listed}"
    );
    let (status, log) = Running::start(d, &args, &[]).finish();
    assert!(status.success(), "{log}");
    assert!(log.contains("restoring checkpoint"), "{log}");
    assert_same(&written(&Python::find(), d, id), &want, &log);
}

/// The id in a manifest's file name.
fn id_of(manifest: &Path) -> u64 {
    let name = manifest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.trim_start_matches("chk-")
        .trim_end_matches(".tlck")
        .parse()
        .unwrap_or_else(|_| panic!("not a manifest: {name}"))
}

#[test]
fn checkpoints_on_s3_restore_after_a_kill() {
    let moto = MotoServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let job = generator_job();
    let want = reference(d, &job);
    let mut args = Layout::Run(2).args();
    args.extend(job.iter().cloned());
    args.extend(outputs("s3"));
    // Both tables and so the checkpoints on S3.
    for (flag, table) in [("--table", "transactions"), ("--alerts-table", "alerts")] {
        let at = args.iter().position(|a| a == flag).expect("flag") + 1;
        args[at] = format!("s3://{BUCKET}/lake/{table}");
    }
    let env: Vec<(String, String)> = moto.env();
    let logs = run_with_kills(d, &args, &env, &[Kill::AtPause("manifest", 3)]);
    let last = logs.last().expect("a run");
    assert!(last.contains("restoring checkpoint"), "{last}");
    assert!(
        last.contains(&format!("s3://{BUCKET}/lake/_checkpoints/s3")),
        "{last}"
    );
    let python = Python::find().with_env(env.clone());
    let got = Written {
        transactions: sorted_rows(&python, format!("s3://{BUCKET}/lake/transactions")),
        alerts_table: sorted_rows(&python, format!("s3://{BUCKET}/lake/alerts")),
        alerts: sorted_lines(&d.join("s3-alerts.jsonl")),
        dead_letters: sorted_lines(&d.join("s3-dead.jsonl")),
    };
    assert_same(&got, &want, "on S3");
}
