//! The supervisor of `tidelake launch`: starts the processes of one cluster from the
//! command lines it is given and watches them until all have exited. It knows nothing
//! of the command line's flags (the binary builds each process's command).
//!
//! - Each process runs in a process group of its own, so a terminal's Ctrl-C reaches the
//!   launcher only; every interrupt the launcher counts is forwarded to each process as
//!   SIGINT, once.
//! - Each process's stdout carries only alert JSON lines; they are merged, a whole line
//!   at a time, into one output.
//! - Each process's stderr is copied to this process's stderr: text lines prefixed with
//!   `[pI]`, JSON log lines with a `"process": I` field; the last error line is kept to
//!   explain a failure.
//! - When a process fails, the others get a few seconds to fail on their own (a lost
//!   peer makes them exit at once), then are killed; a process that exits with
//!   [`EXIT_CLUSTER_ADDRESS`] (its port was taken) makes the run [`Outcome::PortTaken`]
//!   at once, for the launcher to start all of them again on other ports.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::job::{EXIT_CLUSTER_ADDRESS, EXIT_USAGE};
use crate::panic::LOST_PEER;

/// How often the supervisor checks on its processes.
const POLL: Duration = Duration::from_millis(20);
/// How long the other processes get to exit by themselves after one failed.
const GRACE: Duration = Duration::from_secs(3);

/// Where the processes' alert lines are merged.
pub type AlertsOutput = Arc<Mutex<Box<dyn Write + Send>>>;

/// How one attempt at running the cluster ended.
pub enum Outcome {
    /// Every process exited with status 0.
    Done,
    /// A process could not bind its port: start again on other ports.
    PortTaken(usize),
    /// Some processes failed; why, one line each.
    Failed {
        /// Why each process failed, causes first.
        reasons: Vec<String>,
        /// True when every failed process exited with the usage status.
        usage_only: bool,
    },
}

/// Starts process `i` of the cluster from `commands[i]` (its stdin, stdout and stderr
/// are the supervisor's to set) and supervises them all until they have exited (see
/// the [module docs](self)); `on_start` is told each process's index and pid as it
/// starts. `interrupts` counts the interrupts (Ctrl-C) the caller has received.
pub fn run_processes(
    commands: Vec<Command>,
    alerts: &AlertsOutput,
    interrupts: &AtomicUsize,
    mut on_start: impl FnMut(usize, u32),
) -> std::io::Result<Outcome> {
    let mut processes = Vec::with_capacity(commands.len());
    for (index, command) in commands.into_iter().enumerate() {
        match Process::spawn(index, command, alerts) {
            Ok(process) => {
                on_start(index, process.child.id());
                processes.push(process);
            }
            Err(e) => {
                for mut process in processes {
                    let _ = process.child.kill();
                    let _ = process.child.wait();
                }
                return Err(e);
            }
        }
    }
    Ok(supervise(processes, interrupts))
}

/// Waits for every process, forwarding interrupts, and stops the others once one
/// fails.
fn supervise(mut processes: Vec<Process>, interrupts: &AtomicUsize) -> Outcome {
    let mut forwarded = 0;
    let mut first_failure: Option<Instant> = None;
    let mut ended = Vec::new();
    while processes.iter().any(|p| p.status.is_none()) {
        std::thread::sleep(POLL);
        let interrupts = interrupts.load(Ordering::SeqCst);
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

impl Process {
    /// Starts process `index` from `command` in a process group of its own, its
    /// stdout merged into `alerts` and its stderr copied to this process's.
    fn spawn(index: usize, mut command: Command, alerts: &AlertsOutput) -> std::io::Result<Self> {
        let mut child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
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
}

/// Copies a process's alert lines to the merged alerts output, a whole line at a time.
fn copy_alerts(out: ChildStdout, alerts: AlertsOutput) -> JoinHandle<()> {
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

/// `host:port` for `n` processes, on ports of `host` free right now.
pub fn free_addresses(host: &str, n: usize) -> std::io::Result<Vec<String>> {
    // Hold every listener until all are chosen, so no port is chosen twice.
    let listeners = (0..n)
        .map(|_| TcpListener::bind((host, 0)))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addresses_are_distinct_loopback_ports() {
        let addresses = free_addresses("127.0.0.1", 4).expect("ports");
        let mut unique = addresses.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4);
        assert!(addresses.iter().all(|a| a.starts_with("127.0.0.1:")));
    }
}
