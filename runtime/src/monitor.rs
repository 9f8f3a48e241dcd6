//! Monitoring a running job over HTTP, on `--metrics-addr` (off by default):
//!
//! - `/metrics`: every counter of the job in the Prometheus text format
//!   ([`prometheus`]);
//! - `/healthz`: 200 while the process is alive and its dataflow steps (every local
//!   worker's source ran within the last [`STEPPING`], or has ended and the job drains),
//!   503 otherwise; `/readyz`: 200 once the cluster has formed and every local worker's
//!   source is open, 503 before and after;
//! - `/`: a live page (one HTML file, no external resources) drawing throughput,
//!   watermark and commits over the last minutes, dead letters by reason, per-worker
//!   figures, the dataflow's operators ([`dataflow`]) and each table's file sizes, from
//!   `/api/status` (JSON), which it polls every second.
//!
//! One thread serves every request and samples the counters once a second for the
//! page's charts; it stops when the [`Server`] is dropped.

pub mod dataflow;
mod http;
mod prometheus;

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tidelake_sinks::delta::DeltaTable;
use tidelake_sinks::delta::inspection::layout::TableLayout;

use crate::clock::Clock;
use crate::dead_letter::Reason;
use crate::lake::TableCompaction;
use crate::metrics::{Metrics, Totals};
use dataflow::Dataflow;
use http::Response;

/// How recently a worker's source must have run for `/healthz` to say the dataflow
/// steps.
pub const STEPPING: Duration = Duration::from_secs(30);
/// The samples the page's charts show: one a second, for ten minutes.
const HISTORY: usize = 600;
/// How long the tables' file sizes are kept before they are read again.
const TABLES_MAX_AGE: Duration = Duration::from_secs(10);
/// How often the server looks for connections and samples.
const POLL: Duration = Duration::from_millis(20);

/// Why the monitoring endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {address}: {source}")]
pub struct MonitorError {
    /// The address asked for.
    pub address: String,
    /// The error.
    pub source: std::io::Error,
}

/// Where the job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Opening tables, forming the cluster.
    Starting = 0,
    /// The dataflow runs.
    Running = 1,
    /// The job has ended (the endpoint lingers, with the final figures).
    Finished = 2,
}

/// What the endpoint reads: the job's counters and its place in the cluster.
pub struct Monitor {
    job_id: String,
    process: usize,
    processes: usize,
    /// The global index of this process's first worker.
    first_worker: usize,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    phase: AtomicU8,
    started: Instant,
    compaction: Box<dyn Fn() -> Vec<TableCompaction> + Send + Sync>,
    tables: Vec<DeltaTable>,
    dataflow: Arc<Dataflow>,
    history: Mutex<VecDeque<Sample>>,
    /// The operators at the last sample, and their rates since the one before.
    operators: Mutex<(Instant, Vec<dataflow::OperatorStats>, Vec<OperatorRates>)>,
    table_layouts: Mutex<Option<(Instant, Vec<Value>)>>,
}

/// One sample of the counters, for the charts.
#[derive(Clone, Debug, Serialize)]
struct Sample {
    /// Seconds since the job started.
    t: f64,
    events: u64,
    events_per_sec: f64,
    dead_letters: u64,
    alerts: u64,
    commits: u64,
    rows_committed: u64,
    /// The least watermark over the workers still reading (ms).
    watermark: Option<u64>,
    /// How far it was behind the wall clock then (s), once there was one.
    watermark_lag_seconds: Option<f64>,
}

/// An operator's rates over the last sample period, for the page.
#[derive(Clone, Debug, Serialize)]
struct OperatorRates {
    worker: usize,
    name: String,
    addr: Vec<usize>,
    activations_per_sec: f64,
    /// Share of the wall clock it ran, in percent.
    busy_percent: f64,
    records_sent_per_sec: f64,
}

impl Monitor {
    /// A monitor of job `job_id`, process `process` of `processes` with `workers`
    /// workers, reading `metrics`, auto-compaction's totals from `compaction` and the
    /// file sizes of `tables`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job_id: String,
        process: usize,
        processes: usize,
        workers: usize,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        compaction: Box<dyn Fn() -> Vec<TableCompaction> + Send + Sync>,
        tables: Vec<DeltaTable>,
    ) -> Self {
        Monitor {
            job_id,
            process,
            processes,
            first_worker: process * workers,
            metrics,
            clock,
            phase: AtomicU8::new(Phase::Starting as u8),
            started: Instant::now(),
            compaction,
            tables,
            dataflow: Arc::new(Dataflow::default()),
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            operators: Mutex::new((Instant::now(), Vec::new(), Vec::new())),
            table_layouts: Mutex::new(None),
        }
    }

    /// Where timely's logging of each worker reports its operators.
    pub fn dataflow(&self) -> &Arc<Dataflow> {
        &self.dataflow
    }

    /// Moves the job to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Running,
            _ => Phase::Finished,
        }
    }

    /// True once the cluster has formed and every local worker's source has run.
    fn ready(&self) -> bool {
        self.phase() == Phase::Running
            && self
                .metrics
                .workers()
                .iter()
                .all(|w| w.last_active_ms.load(Ordering::Relaxed) > 0)
    }

    /// `None` when the process is healthy, else why not.
    fn unhealthy(&self) -> Option<String> {
        if self.phase() != Phase::Running {
            return None;
        }
        let now = self.clock.now_ms();
        let stuck: Vec<String> = self
            .metrics
            .workers()
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                let last = w.last_active_ms.load(Ordering::Relaxed);
                let draining = w.in_flight.load(Ordering::Relaxed) == u64::MAX;
                last > 0 && !draining && now.saturating_sub(last) > STEPPING.as_millis() as u64
            })
            .map(|(i, _)| (self.first_worker + i).to_string())
            .collect();
        (!stuck.is_empty()).then(|| {
            format!(
                "the source of worker(s) {} has not run for more than {}s",
                stuck.join(", "),
                STEPPING.as_secs()
            )
        })
    }

    fn sample(&self, previous: Option<&Sample>) -> Sample {
        let t = self.metrics.totals();
        let elapsed = self.started.elapsed().as_secs_f64();
        let rows_committed = self
            .metrics
            .workers()
            .iter()
            .map(|w| w.rows_committed.load(Ordering::Relaxed))
            .sum();
        let events_per_sec = match previous {
            Some(p) if elapsed > p.t => (t.events - p.events) as f64 / (elapsed - p.t),
            _ => 0.0,
        };
        let now = self.clock.now_ms();
        Sample {
            t: elapsed,
            events: t.events,
            events_per_sec,
            dead_letters: t.dead_letters,
            alerts: t.alerts,
            commits: t.commits,
            rows_committed,
            watermark: t.watermark,
            watermark_lag_seconds: t
                .watermark
                .filter(|&wm| wm > 0)
                .map(|wm| now.saturating_sub(wm) as f64 / 1000.0),
        }
    }

    fn record_sample(&self) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let sample = self.sample(history.back());
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(sample);
        drop(history);

        let mut operators = self.operators.lock().unwrap_or_else(|e| e.into_inner());
        let (at, before, _) = &*operators;
        let elapsed = at.elapsed().as_secs_f64().max(1e-3);
        let now = self.dataflow.operators();
        let rates = now
            .iter()
            .map(|op| {
                let prior = before
                    .iter()
                    .find(|b| b.worker == op.worker && b.addr == op.addr);
                let delta = |f: fn(&dataflow::OperatorStats) -> f64| {
                    prior.map_or(0.0, |p| (f(op) - f(p)).max(0.0) / elapsed)
                };
                OperatorRates {
                    worker: op.worker,
                    name: op.name.clone(),
                    addr: op.addr.clone(),
                    activations_per_sec: delta(|o| o.activations as f64),
                    busy_percent: delta(|o| o.busy_micros as f64) / 1e4,
                    records_sent_per_sec: delta(|o| o.records_sent as f64),
                }
            })
            .collect();
        *operators = (Instant::now(), now, rates);
    }

    /// Each table's live files and their size histogram, read at most every
    /// [`TABLES_MAX_AGE`].
    fn table_layouts(&self) -> Vec<Value> {
        let mut cached = self.table_layouts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, layouts)) = cached.as_ref()
            && at.elapsed() < TABLES_MAX_AGE
        {
            return layouts.clone();
        }
        let layouts = read_layouts(&self.tables);
        *cached = Some((Instant::now(), layouts.clone()));
        layouts
    }

    /// `/api/status`: everything the page shows.
    fn status(&self) -> Value {
        let t: Totals = self.metrics.totals();
        let workers: Vec<Value> = self
            .metrics
            .workers()
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                json!({
                    "worker": self.first_worker + i,
                    "events": load(&w.events),
                    "dead_letters": load(&w.dead_letters),
                    "alerts": load(&w.alerts),
                    "commits": load(&w.commits),
                    "rows_committed": load(&w.rows_committed),
                    "state_keys": load(&w.state_keys_now),
                    "watermark": Some(load(&w.watermark)).filter(|&wm| wm != u64::MAX),
                })
            })
            .collect();
        let mut by_reason = serde_json::Map::new();
        for reason in Reason::ALL {
            let n: u64 = self
                .metrics
                .workers()
                .iter()
                .map(|w| w.dead_letters_by_reason[reason.index()].load(Ordering::Relaxed))
                .sum();
            by_reason.insert(reason.name().to_owned(), n.into());
        }
        let attempts: u64 = self
            .metrics
            .workers()
            .iter()
            .map(|w| w.commit_attempts.load(Ordering::Relaxed))
            .sum();
        let now = self.clock.now_ms();
        let partitions: Vec<Value> = self
            .metrics
            .partition_watermarks()
            .iter()
            .enumerate()
            .filter_map(|(p, wm)| {
                wm.map(|wm| {
                    json!({"partition": p, "watermark": wm,
                           "lag_seconds": now.saturating_sub(wm) as f64 / 1000.0})
                })
            })
            .collect();
        let history: Vec<Sample> = self
            .history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        json!({
            "job": self.job_id,
            "process": self.process,
            "processes": self.processes,
            "phase": match self.phase() {
                Phase::Starting => "starting",
                Phase::Running => "running",
                Phase::Finished => "finished",
            },
            "ready": self.ready(),
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "totals": {
                "events": t.events,
                "dead_letters": t.dead_letters,
                "blank_lines": t.blank_lines,
                "alerts": t.alerts,
                "commits": t.commits,
                "commit_attempts": attempts,
                "commit_conflicts": attempts.saturating_sub(t.commits),
                "files": t.files,
                "bytes": t.bytes,
                "epochs_skipped": t.epochs_skipped,
                "watermark": t.watermark,
            },
            "dead_letters_by_reason": by_reason,
            "workers": workers,
            "partitions": partitions,
            "operators": self.operators.lock().unwrap_or_else(|e| e.into_inner()).2,
            "compaction": (self.compaction)().iter().map(|c| json!({
                "table": c.table, "runs": c.totals.runs,
                "files_removed": c.totals.files_removed, "files_added": c.totals.files_added,
            })).collect::<Vec<_>>(),
            "tables": self.table_layouts(),
            "history": history,
        })
    }

    fn route(&self, registry: &prometheus_client::registry::Registry, path: &str) -> Response {
        match path {
            "/metrics" => match prometheus::encode(registry) {
                Ok(text) => Response::ok(prometheus::CONTENT_TYPE, text),
                Err(_) => Response::text(500, "cannot encode the metrics\n"),
            },
            "/healthz" => match self.unhealthy() {
                None => Response::text(200, "ok\n"),
                Some(why) => Response::text(503, format!("{why}\n")),
            },
            "/readyz" => match (self.ready(), self.phase()) {
                (true, _) => Response::text(200, "ready\n"),
                (false, Phase::Finished) => Response::text(503, "the job has ended\n"),
                (false, _) => Response::text(
                    503,
                    "starting: the cluster or the sources are not open yet\n",
                ),
            },
            "/api/status" => Response::ok("application/json", self.status().to_string()),
            "/" | "/index.html" => Response::ok("text/html; charset=utf-8", PAGE),
            _ => Response::text(404, "not found; try /, /metrics, /healthz or /readyz\n"),
        }
    }
}

/// The page at `/`.
const PAGE: &str = include_str!("monitor/page.html");

/// The live file layout of each of `tables` as the page draws it.
fn read_layouts(tables: &[DeltaTable]) -> Vec<Value> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(_) => return Vec::new(),
    };
    tables
        .iter()
        .map(|table| {
            let layout = runtime.block_on(table.snapshot());
            match layout {
                Ok(Some(snapshot)) => {
                    let layout = TableLayout::of(&snapshot);
                    json!({
                        "table": table.location(),
                        "version": layout.version,
                        "files": layout.total.files,
                        "bytes": layout.total.bytes,
                        "partitions": layout.partitions.len(),
                        "size_histogram": layout.size_histogram,
                    })
                }
                Ok(None) => json!({"table": table.location(), "error": "no table yet"}),
                Err(e) => json!({"table": table.location(), "error": e.to_string()}),
            }
        })
        .collect()
}

/// The serving thread; stopped and joined when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    address: String,
}

impl Server {
    /// Serves `monitor` on `address` (`host:port`).
    pub fn start(address: &str, monitor: Arc<Monitor>) -> Result<Server, MonitorError> {
        let error = |source| MonitorError {
            address: address.to_owned(),
            source,
        };
        let listener = TcpListener::bind(address).map_err(error)?;
        listener.set_nonblocking(true).map_err(error)?;
        let bound = listener
            .local_addr()
            .map_or_else(|_| address.to_owned(), |a| a.to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let registry = prometheus::registry(Arc::clone(&monitor));
        let thread = std::thread::Builder::new()
            .name("tidelake:metrics".into())
            .spawn(move || {
                let mut sampled = Instant::now() - Duration::from_secs(1);
                while !stopping.load(Ordering::Relaxed) {
                    if sampled.elapsed() >= Duration::from_secs(1) {
                        sampled = Instant::now();
                        monitor.record_sample();
                    }
                    http::serve_waiting(&listener, &|path| monitor.route(&registry, path));
                    std::thread::sleep(POLL);
                }
            })
            .map_err(error)?;
        Ok(Server {
            stop,
            thread: Some(thread),
            address: bound,
        })
    }

    /// The address it listens on (with the port chosen, for a port of 0).
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
