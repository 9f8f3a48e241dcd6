//! `tidelake launch`: starts P processes of one cluster on this host, each a `tidelake
//! worker` on a free loopback port, with the runtime's supervisor
//! (`tidelake_runtime::cluster::supervisor`: alert lines merged to stdout or `--alerts
//! FILE`, logs prefixed `[pI]`, Ctrl-C forwarded, a failure stopping the others).
//!
//! - Dead letters and enriched rows are written per process and merged into the files
//!   named by the flags when the processes end.
//! - A launcher killed outright (SIGKILL) forwards nothing; its processes notice they
//!   lost their parent and stop by themselves
//!   (`tidelake_runtime::cluster::launcher_watch`).
//! - The launcher exits non-zero when a process failed, naming each failed process and
//!   why.
//! - A port taken between choosing it and binding it makes that process exit with
//!   status 3; the launcher then starts all of them again on new ports.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use tempfile::TempDir;

use tidelake_runtime::cluster::supervisor::{self, AlertsOutput, Outcome};
use tidelake_runtime::config::ClusterSecret;
use tidelake_runtime::job::{EXIT_FAILED, EXIT_USAGE};
use tidelake_runtime::report::{ClusterReport, ProcessReport};

use crate::cli::{CLUSTER_SECRET_ENV, LaunchArgs, RunArgs, SourceKind};
use crate::flags::now_rounded_to_second;
use crate::{logging, status};

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
    /// The job takes checkpoints: process 0 writes the outputs itself, in time order,
    /// so a restart can cut them back (docs/checkpoints.md §3).
    checkpoints: bool,
    dir: TempDir,
    interrupts: Arc<AtomicUsize>,
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
        if args.run.source.kind == SourceKind::Generator && args.run.source.start.is_none() {
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
        let checkpoints = args
            .run
            .job_config()
            .map_err(anyhow::Error::msg)?
            .checkpoint_location()
            .is_some();
        Ok(Launch {
            checkpoints,
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
        let alerts: AlertsOutput = Arc::new(Mutex::new(match self.run.alerts.as_str() {
            // With checkpoints process 0 writes the file; its stdout carries nothing.
            // A Kafka topic is written by the processes themselves.
            path if path == "-" || self.checkpoints || path.starts_with("kafka://") => {
                Box::new(std::io::stdout())
            }
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
    fn attempt(&self, alerts: &AlertsOutput) -> anyhow::Result<Outcome> {
        let addresses = supervisor::free_addresses("127.0.0.1", self.processes)
            .context("cannot find free ports on 127.0.0.1")?;
        let hostfile = self.dir.path().join("hosts");
        std::fs::write(&hostfile, addresses.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", hostfile.display()))?;
        let commands = (0..self.processes)
            .map(|index| self.command(index, &hostfile))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let on_start = |index: usize, pid: u32| {
            tracing::info!(
                process = index,
                pid,
                "process {index}: pid {pid}, {}{}",
                addresses[index],
                self.metrics
                    .as_ref()
                    .map(|m| format!(", metrics on http://{}/metrics", m[index]))
                    .unwrap_or_default()
            );
        };
        supervisor::run_processes(commands, alerts, &self.interrupts, on_start)
            .context("cannot start a tidelake worker process")
    }

    /// The command line of process `index`: `tidelake worker` with the user's flags and
    /// the launch's own.
    fn command(&self, index: usize, hostfile: &Path) -> anyhow::Result<Command> {
        let mut command =
            Command::new(std::env::current_exe().context("cannot find the tidelake binary")?);
        command
            .arg("worker")
            .args(["--log-format", logging::format().name()])
            .args(&self.flags)
            .arg("--hostfile")
            .arg(hostfile)
            .args(["--process", &index.to_string(), "--job-id", &self.job_id])
            .arg("--report-json")
            .arg(part(&self.dir, "report", index))
            .args(["--launcher-pid", &std::process::id().to_string()]);
        if self.checkpoints {
            // Process 0 writes the outputs the flags name (given with the flags).
        } else {
            // Each process writes its own, merged when they end; a launch id is fresh
            // per launch, so no checkpoint of it would ever be restored.
            if !self.run.alerts.starts_with("kafka://") {
                command.args(["--alerts", "-"]);
            }
            command.arg("--no-checkpoints");
            command
                .arg("--dead-letters")
                .arg(part(&self.dir, "dead-letters", index));
            if self.run.enriched.is_some() {
                command
                    .arg("--enriched")
                    .arg(part(&self.dir, "enriched", index));
            }
        }
        if let Some(metrics) = &self.metrics {
            command.args(["--metrics-addr", &metrics[index]]);
        }
        if self.run.status_interval.is_none() && !self.run.quiet {
            command.args(["--status-interval", STATUS_INTERVAL]);
        }
        // The processes prove to each other that they were started here.
        command.env(CLUSTER_SECRET_ENV, &self.secret);
        Ok(command)
    }

    /// Appends each process's dead letters and enriched rows to the files the flags
    /// name, in process order (with checkpoints, process 0 wrote them).
    fn merge_outputs(&self) -> anyhow::Result<()> {
        if self.checkpoints {
            return Ok(());
        }
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
    supervisor::free_addresses(host, n).with_context(|| format!("cannot find free ports on {host}"))
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
}
