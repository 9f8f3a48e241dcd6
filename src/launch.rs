//! `tidelake launch`: starts P processes of one cluster on this host, each a `tidelake
//! worker` on a free loopback port, and supervises them.
//!
//! - Each process's stdout carries only alert JSON lines; the launcher merges them, a
//!   whole line at a time, to its stdout or to `--alerts FILE`.
//! - Each process's stderr (logs, status lines, summary) is copied to the launcher's
//!   stderr, every line prefixed with `[pI]`.
//! - Dead letters and enriched rows are written per process and merged into the files
//!   named by the flags when the processes end.
//! - Ctrl-C (or SIGTERM) is forwarded to every process as SIGINT.
//! - A launcher killed outright (SIGKILL) forwards nothing; its processes notice they
//!   lost their parent and stop by themselves (see `launcher_watch`).
//! - When a process fails, the others get a few seconds to fail on their own (a lost
//!   peer makes them exit at once), then are killed; the launcher exits non-zero,
//!   naming each failed process and why.
//! - A port taken between choosing it and binding it makes that process exit with
//!   [`EXIT_CLUSTER_ADDRESS`]; the launcher then starts all of them again on new ports.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use tidelake_runtime::config::ClusterSecret;
use tidelake_runtime::panic::LOST_PEER;
use tidelake_runtime::report::{ClusterReport, ProcessReport};

use crate::cli::{CLUSTER_SECRET_ENV, RunArgs, SourceKind, now_rounded_to_second};
use crate::{EXIT_CLUSTER_ADDRESS, EXIT_FAILED, EXIT_USAGE};
use crate::{logging, status};

/// `tidelake launch`: how many processes, and the job's flags.
#[derive(Clone, Debug, Args)]
pub struct LaunchArgs {
    /// Processes to start on this host, each with --workers worker threads.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..))]
    pub processes: u16,
    /// The job, as for `tidelake run`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// How often the launcher checks on its processes.
const POLL: Duration = Duration::from_millis(20);
/// How long the other processes get to exit by themselves after one failed.
const GRACE: Duration = Duration::from_secs(3);
/// How many times the cluster is started on fresh ports when a port was taken.
const PORT_ATTEMPTS: usize = 5;
/// The status-line interval of the processes, unless `--status-interval` or `--quiet`.
const STATUS_INTERVAL: &str = "5s";

/// Runs the cluster; `given` is the command line after `launch`.
pub fn launch(args: &LaunchArgs, given: &[String]) -> ExitCode {
    if let Err(message) = args.run.job_config() {
        tracing::error!("{message}");
        return ExitCode::from(EXIT_USAGE);
    }
    match Launch::new(args, given).and_then(|launch| launch.run()) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// One launch: its work directory and the flags every process gets.
struct Launch {
    processes: usize,
    workers: usize,
    run: RunArgs,
    /// The user's flags, less `--processes`.
    flags: Vec<String>,
    /// The cluster secret of this launch's processes: random, in hex.
    secret: String,
    /// `--metrics-addr` of each process, if the job serves metrics.
    metrics: Option<Vec<String>>,
    job_id: String,
    dir: TempDir,
    interrupts: Arc<AtomicUsize>,
}

/// How one attempt at running the cluster ended.
enum Outcome {
    /// Every process exited with status 0.
    Done,
    /// A process could not bind its port: start again on other ports.
    PortTaken(usize),
    /// Some processes failed; why, one line each.
    Failed {
        reasons: Vec<String>,
        usage_only: bool,
    },
}

impl Launch {
    fn new(args: &LaunchArgs, given: &[String]) -> anyhow::Result<Self> {
        let interrupts = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&interrupts);
        ctrlc::set_handler(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .context("cannot install the Ctrl-C handler")?;
        let mut flags = without_processes_flag(given);
        // The generator's default start is "now" in each process; they must share one.
        if args.run.source == SourceKind::Generator && args.run.start.is_none() {
            flags.extend(["--start".into(), now_rounded_to_second().to_string()]);
        }
        let secret = ClusterSecret::random().context("cannot make a cluster secret")?;
        let secret: String = secret.bytes().iter().map(|b| format!("{b:02x}")).collect();
        let metrics = args
            .run
            .metrics_addr
            .as_deref()
            .map(|address| metrics_addresses(address, usize::from(args.processes)))
            .transpose()?;
        Ok(Launch {
            metrics,
            secret,
            processes: usize::from(args.processes),
            workers: args.run.workers,
            run: args.run.clone(),
            flags,
            job_id: args
                .run
                .job_id
                .clone()
                .unwrap_or_else(|| format!("launch-{}", std::process::id())),
            dir: tempfile::Builder::new()
                .prefix("tidelake-launch-")
                .tempdir()
                .context("cannot create the launcher's directory")?,
            interrupts,
        })
    }

    fn run(self) -> anyhow::Result<ExitCode> {
        let started = Instant::now();
        let alerts: Arc<Mutex<Box<dyn Write + Send>>> =
            Arc::new(Mutex::new(match self.run.alerts.as_str() {
                "-" => Box::new(std::io::stdout()),
                path => Box::new(BufWriter::new(
                    File::create(path).with_context(|| format!("cannot create {path}"))?,
                )),
            }));
        let mut outcome = Outcome::Done;
        for attempt in 1..=PORT_ATTEMPTS {
            outcome = self.attempt(&alerts)?;
            match outcome {
                Outcome::PortTaken(process) if attempt < PORT_ATTEMPTS => tracing::warn!(
                    "the port of process {process} was taken before it could listen; starting again on other ports"
                ),
                _ => break,
            }
        }
        alerts
            .lock()
            .map_err(|_| anyhow::anyhow!("an output thread panicked"))?
            .flush()
            .context("cannot write the alerts")?;
        self.merge_outputs()?;
        match outcome {
            Outcome::Done => {
                let reports = self.reports()?;
                let report =
                    ClusterReport::new(started.elapsed().as_secs_f64(), self.workers, reports);
                logging::report(&status::cluster_summary(&report));
                if let Some(path) = &self.run.report_json {
                    write_json(path, &report)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Outcome::PortTaken(process) => {
                tracing::error!("process {process} found its port taken {PORT_ATTEMPTS} times");
                Ok(ExitCode::from(EXIT_FAILED))
            }
            Outcome::Failed {
                reasons,
                usage_only,
            } => {
                let reasons: Vec<String> = reasons.iter().map(|r| format!("\n  {r}")).collect();
                tracing::error!("the job failed:{}", reasons.concat());
                Ok(ExitCode::from(if usage_only {
                    EXIT_USAGE
                } else {
                    EXIT_FAILED
                }))
            }
        }
    }

    /// Starts every process on fresh ports and supervises them until all have exited.
    fn attempt(&self, alerts: &Arc<Mutex<Box<dyn Write + Send>>>) -> anyhow::Result<Outcome> {
        let addresses = free_addresses(self.processes)?;
        let hostfile = self.dir.path().join("hosts");
        std::fs::write(&hostfile, addresses.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", hostfile.display()))?;
        let mut processes = Vec::with_capacity(self.processes);
        for (index, address) in addresses.iter().enumerate() {
            let process = self.spawn(index, &hostfile, alerts)?;
            tracing::info!(
                process = index,
                pid = process.child.id(),
                "process {index}: pid {}, {address}{}",
                process.child.id(),
                self.metrics
                    .as_ref()
                    .map(|m| format!(", metrics on http://{}/metrics", m[index]))
                    .unwrap_or_default()
            );
            processes.push(process);
        }
        Ok(self.supervise(processes))
    }

    fn spawn(
        &self,
        index: usize,
        hostfile: &Path,
        alerts: &Arc<Mutex<Box<dyn Write + Send>>>,
    ) -> anyhow::Result<Process> {
        let mut command =
            Command::new(std::env::current_exe().context("cannot find the tidelake binary")?);
        command
            .arg("worker")
            .args(["--log-format", logging::format().name()])
            .args(&self.flags)
            .arg("--hostfile")
            .arg(hostfile)
            .args([
                "--process",
                &index.to_string(),
                "--job-id",
                &self.job_id,
                "--alerts",
                "-",
            ])
            .arg("--dead-letters")
            .arg(part(&self.dir, "dead-letters", index))
            .arg("--report-json")
            .arg(part(&self.dir, "report", index))
            .args(["--launcher-pid", &std::process::id().to_string()]);
        if self.run.enriched.is_some() {
            command
                .arg("--enriched")
                .arg(part(&self.dir, "enriched", index));
        }
        if let Some(metrics) = &self.metrics {
            command.args(["--metrics-addr", &metrics[index]]);
        }
        if self.run.status_interval.is_none() && !self.run.quiet {
            command.args(["--status-interval", STATUS_INTERVAL]);
        }
        // The processes prove to each other that they were started here.
        command.env(CLUSTER_SECRET_ENV, &self.secret);
        // A process group of its own: a terminal's Ctrl-C reaches the launcher only,
        // which forwards it once.
        let mut child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start a tidelake worker process")?;
        let last_error = Arc::new(Mutex::new(None));
        let threads = [
            child
                .stdout
                .take()
                .map(|out| copy_alerts(out, Arc::clone(alerts))),
            child
                .stderr
                .take()
                .map(|err| copy_log(index, err, Arc::clone(&last_error))),
        ];
        Ok(Process {
            index,
            child,
            status: None,
            killed: false,
            ended: usize::MAX,
            last_error,
            threads: threads.into_iter().flatten().collect(),
        })
    }

    /// Waits for every process, forwarding Ctrl-C, and stops the others once one fails.
    fn supervise(&self, mut processes: Vec<Process>) -> Outcome {
        let mut forwarded = 0;
        let mut first_failure: Option<Instant> = None;
        let mut ended = Vec::new();
        while processes.iter().any(|p| p.status.is_none()) {
            std::thread::sleep(POLL);
            let interrupts = self.interrupts.load(Ordering::SeqCst);
            for process in processes.iter_mut().filter(|p| p.status.is_none()) {
                if interrupts > forwarded {
                    let _ = kill(Pid::from_raw(process.child.id() as i32), Signal::SIGINT);
                }
                if let Ok(Some(status)) = process.child.try_wait() {
                    process.status = Some(status);
                    process.ended = ended.len();
                    ended.push(process.index);
                    if !status.success() && first_failure.is_none() {
                        first_failure = Some(Instant::now());
                    }
                }
            }
            forwarded = interrupts;
            let port_taken = processes
                .iter()
                .any(|p| p.exited_with(EXIT_CLUSTER_ADDRESS));
            if first_failure.is_some_and(|at| port_taken || at.elapsed() >= GRACE) {
                for process in processes.iter_mut().filter(|p| p.status.is_none()) {
                    let _ = process.child.kill();
                    process.killed = true;
                    process.status = process.child.wait().ok();
                    process.ended = usize::MAX;
                }
            }
        }
        for process in &mut processes {
            for thread in process.threads.drain(..) {
                let _ = thread.join();
            }
        }
        if let Some(p) = processes
            .iter()
            .find(|p| p.exited_with(EXIT_CLUSTER_ADDRESS))
        {
            return Outcome::PortTaken(p.index);
        }
        // Causes first (in the order they ended), then the processes that failed
        // because a peer did: those that lost a connection, then those killed here.
        let mut failed: Vec<&Process> = processes
            .iter()
            .filter(|p| !p.status.is_some_and(|s| s.success()))
            .collect();
        failed.sort_by_key(|p| (p.killed, p.lost_a_peer(), p.ended));
        let Some(first) = failed.first().map(|p| p.index) else {
            return Outcome::Done;
        };
        Outcome::Failed {
            usage_only: failed.iter().all(|p| p.exited_with(EXIT_USAGE)),
            reasons: failed.iter().map(|p| p.explain(first)).collect(),
        }
    }

    /// Appends each process's dead letters and enriched rows to the files the flags
    /// name, in process order.
    fn merge_outputs(&self) -> anyhow::Result<()> {
        let outputs = [
            ("dead-letters", Some(&self.run.dead_letters)),
            ("enriched", self.run.enriched.as_ref()),
        ];
        for (name, target) in outputs {
            let Some(target) = target else { continue };
            let mut out = BufWriter::new(
                File::create(target)
                    .with_context(|| format!("cannot create {}", target.display()))?,
            );
            for index in 0..self.processes {
                let part = part(&self.dir, name, index);
                if let Ok(mut file) = File::open(&part) {
                    std::io::copy(&mut file, &mut out).with_context(|| {
                        format!("cannot copy {} to {}", part.display(), target.display())
                    })?;
                }
            }
            out.flush()
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        Ok(())
    }

    /// Every process's `--report-json`, in process order.
    fn reports(&self) -> anyhow::Result<Vec<ProcessReport>> {
        (0..self.processes)
            .map(|index| {
                let path = part(&self.dir, "report", index);
                let text = std::fs::read_to_string(&path).with_context(|| {
                    format!("process {index} wrote no report ({})", path.display())
                })?;
                serde_json::from_str(&text).with_context(|| {
                    format!("process {index}'s report {} is not valid", path.display())
                })
            })
            .collect()
    }
}

/// A running (or exited) process of the cluster.
struct Process {
    index: usize,
    child: Child,
    status: Option<ExitStatus>,
    /// True when the launcher killed it after another process failed.
    killed: bool,
    /// When it ended, as a rank among the processes (`usize::MAX`: killed).
    ended: usize,
    /// The last `tidelake: error` line it printed.
    last_error: Arc<Mutex<Option<String>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Process {
    /// True when it exited with status `code`.
    fn exited_with(&self, code: u8) -> bool {
        self.status.and_then(|s| s.code()) == Some(i32::from(code))
    }

    /// True when it failed because a peer process went away.
    fn lost_a_peer(&self) -> bool {
        self.last_error
            .lock()
            .ok()
            .and_then(|e| e.as_ref().map(|e| e.starts_with(LOST_PEER)))
            .unwrap_or(false)
    }

    /// Why this process failed, in one line; `first` is the first process that failed.
    fn explain(&self, first: usize) -> String {
        let pid = self.child.id();
        let what = match self.status {
            _ if self.killed => format!("was stopped by the launcher after process {first} failed"),
            Some(status) => match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(signal)) => format!(
                    "was killed by signal {}",
                    Signal::try_from(signal)
                        .map_or_else(|_| signal.to_string(), |s| s.as_str().to_owned())
                ),
                (None, None) => "ended abnormally".to_owned(),
            },
            None => "could not be waited for".to_owned(),
        };
        let error = self
            .last_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .filter(|_| !self.killed)
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        format!("process {} (pid {pid}) {what}{error}", self.index)
    }
}

/// Copies a process's alert lines to the merged alerts output, a whole line at a time.
fn copy_alerts(out: ChildStdout, alerts: Arc<Mutex<Box<dyn Write + Send>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let Ok(mut alerts) = alerts.lock() else {
                return;
            };
            if writeln!(alerts, "{line}").is_err() {
                return;
            }
        }
    })
}

/// Copies a process's stderr to the launcher's, remembering the last line that reports
/// an error or a panic: text lines prefixed with `[pI]`, JSON log lines with a
/// `"process": I` field added.
fn copy_log(
    index: usize,
    err: ChildStderr,
    last_error: Arc<Mutex<Option<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut stderr = std::io::stderr();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let (shown, error) = match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(serde_json::Value::Object(mut event)) => {
                    let error = (event.get("level").and_then(|l| l.as_str()) == Some("ERROR"))
                        .then(|| {
                            event
                                .get("message")
                                .and_then(|m| m.as_str())
                                .map(str::to_owned)
                        })
                        .flatten();
                    event.insert("process".to_owned(), index.into());
                    (serde_json::Value::Object(event).to_string(), error)
                }
                _ => {
                    let error = line.strip_prefix("tidelake: error: ").or_else(|| {
                        line.strip_prefix("tidelake: ")
                            .filter(|l| l.contains("panicked"))
                    });
                    (format!("[p{index}] {line}"), error.map(str::to_owned))
                }
            };
            // Not eprintln!, which panics once the launcher's stderr is gone.
            let _ = writeln!(stderr, "{shown}");
            if let (Some(error), Ok(mut last)) = (error, last_error.lock()) {
                *last = Some(error);
            }
        }
    })
}

/// The `--metrics-addr` of each of `n` processes for the launcher's `address`:
/// `host:port + i`, or ports free right now on `host` for port 0.
fn metrics_addresses(address: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let (host, port) = address
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .with_context(|| format!("--metrics-addr {address:?} is not HOST:PORT"))?;
    if port != 0 {
        return (0..n)
            .map(|i| {
                let port = u16::try_from(usize::from(port) + i).ok().with_context(|| {
                    format!("--metrics-addr {address}: port {port} + {i} is past 65535")
                })?;
                Ok(format!("{host}:{port}"))
            })
            .collect();
    }
    let listeners = (0..n)
        .map(|_| TcpListener::bind((host, 0)))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot find free ports on {host}"))?;
    Ok(listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect())
}

/// `127.0.0.1:port` for `n` processes, on ports free right now.
fn free_addresses(n: usize) -> anyhow::Result<Vec<String>> {
    // Hold every listener until all are chosen, so no port is chosen twice.
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot find free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.to_string()))
        .collect::<Result<Vec<_>, std::io::Error>>()
        .context("cannot find free ports on 127.0.0.1")
}

/// `given` without `--processes N` / `--processes=N`.
fn without_processes_flag(given: &[String]) -> Vec<String> {
    let mut flags = Vec::with_capacity(given.len());
    let mut skip_value = false;
    for arg in given {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if arg == "--processes" {
            skip_value = true;
        } else if !arg.starts_with("--processes=") {
            flags.push(arg.clone());
        }
    }
    flags
}

/// Writes `report` to `path` as pretty JSON (`--report-json`).
pub fn write_json<T: serde::Serialize>(path: &Path, report: &T) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// The file process `index` writes its `name` output to, in the launcher's directory.
fn part(dir: &TempDir, name: &str, index: usize) -> PathBuf {
    dir.path().join(format!("{name}.p{index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_processes_flag_is_not_passed_on() {
        let given: Vec<String> = [
            "--processes",
            "2",
            "--workers",
            "3",
            "--processes=4",
            "--quiet",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            without_processes_flag(&given),
            ["--workers", "3", "--quiet"]
        );
    }

    #[test]
    fn free_addresses_are_distinct_loopback_ports() {
        let addresses = free_addresses(4).expect("ports");
        let mut unique = addresses.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4);
        assert!(addresses.iter().all(|a| a.starts_with("127.0.0.1:")));
    }
}
