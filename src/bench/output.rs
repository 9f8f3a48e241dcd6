//! What `tidelake bench` reports: the JSON it writes and the table it prints.

use std::fmt::Write;

use clap::ValueEnum;
use serde::Serialize;

use tidelake_runtime::latency::LatencySummary;
use tidelake_runtime::report::ClusterReport;

use super::{BenchArgs, COMMIT_INTERVAL, DENSITY, START_MS, SinkKind};
use crate::status::group;

/// The bench's results, as `--json` writes them.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// The tidelake version measured.
    pub version: &'static str,
    /// The workload.
    pub settings: Settings,
    /// The throughput run (absent with `--phase latency` or `--scaling`).
    pub throughput: Option<ThroughputResult>,
    /// The latency run (absent with `--phase throughput` or `--scaling`).
    pub latency: Option<LatencyResult>,
    /// The `--scaling` runs, in order (empty without `--scaling`).
    pub scaling: Vec<ThroughputResult>,
    /// The kept temporary directory (`--keep`).
    pub dir: Option<String>,
}

/// The workload the bench ran.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// `generator` or `csv`.
    pub source: &'static str,
    /// The CSV file (`--input`).
    pub input: Option<String>,
    /// Where the job wrote.
    pub sink: SinkKind,
    /// Generator records of the throughput run.
    pub events: u64,
    /// Generator accounts.
    pub accounts: u64,
    /// Worker threads per process.
    pub workers: usize,
    /// Processes of each run.
    pub processes: usize,
    /// Generator records per second of event time.
    pub density: u64,
    /// Generator start of event time (ms).
    pub start_ms: u64,
    /// Throughput run tick.
    pub tick: String,
    /// Commit interval of the Delta sink.
    pub commit_interval: &'static str,
    /// Latency run: events per second offered.
    pub latency_rate: u64,
    /// Latency run: how long (s).
    pub latency_duration_secs: f64,
    /// Latency run: tick (ms).
    pub latency_tick_ms: u64,
    /// Extra `tidelake run` flags.
    pub run_flags: Vec<String>,
}

impl Settings {
    /// The settings of `args`.
    pub fn of(args: &BenchArgs) -> Self {
        Settings {
            source: if args.input.is_some() {
                "csv"
            } else {
                "generator"
            },
            input: args.input.as_ref().map(|p| p.display().to_string()),
            sink: args.sink,
            events: args.events,
            accounts: args.accounts,
            workers: args.workers,
            processes: args.processes,
            density: DENSITY,
            start_ms: START_MS,
            tick: args.throughput_tick(),
            commit_interval: COMMIT_INTERVAL,
            latency_rate: args.latency_rate,
            latency_duration_secs: args.latency_duration.as_secs_f64(),
            latency_tick_ms: args.latency_tick.as_millis() as u64,
            run_flags: args.run_flags.clone(),
        }
    }
}

impl Settings {
    /// The source as the table's title names it.
    pub fn source_text(&self) -> String {
        match &self.input {
            Some(input) => format!("CSV {input}"),
            None => format!(
                "generator {} events, {} accounts",
                group(self.events),
                group(self.accounts)
            ),
        }
    }
}

/// One throughput run.
#[derive(Debug, Serialize)]
pub struct ThroughputResult {
    /// Worker threads per process.
    pub workers: usize,
    /// Processes.
    pub processes: usize,
    /// Records accepted.
    pub events: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Records sent to the dead letters.
    pub dead_letters: u64,
    /// Wall time of the job (of the launch with several processes), in seconds.
    pub elapsed_secs: f64,
    /// Records per second, in total.
    pub events_per_second: f64,
    /// Records per second per worker (the total over all workers of all processes).
    pub events_per_second_per_worker: f64,
    /// Records each worker's source accepted, by global worker index.
    pub events_per_worker: Vec<u64>,
    /// The largest peak RSS of any process, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Fraud-operator keys (active accounts) at each worker's peak, summed.
    pub state_keys: u64,
    /// Bytes of that state.
    pub state_bytes: u64,
    /// `state_bytes / state_keys`.
    pub state_bytes_per_active_account: Option<f64>,
    /// Delta commits.
    pub commits: u64,
    /// Data files written.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
}

impl ThroughputResult {
    /// The result of a run, from its report.
    pub fn new(report: &ClusterReport) -> Self {
        let t = &report.totals;
        let rate = report.events_per_second();
        let (workers, processes) = (report.workers, report.processes.len());
        ThroughputResult {
            workers,
            processes,
            events: t.events,
            alerts: t.alerts,
            dead_letters: t.dead_letters,
            elapsed_secs: report.elapsed_secs,
            events_per_second: rate,
            events_per_second_per_worker: rate / (workers * processes) as f64,
            events_per_worker: t.events_per_worker.clone(),
            peak_rss_bytes: report.peak_rss_bytes,
            state_keys: t.state_keys,
            state_bytes: t.state_bytes,
            state_bytes_per_active_account: t.state_bytes_per_key(),
            commits: t.commits,
            files: t.files,
            bytes: t.bytes,
        }
    }
}

/// The latency run.
#[derive(Debug, Serialize)]
pub struct LatencyResult {
    /// Events per second offered.
    pub offered_rate: u64,
    /// The tick (ms).
    pub tick_ms: u64,
    /// Worker threads per process.
    pub workers: usize,
    /// Processes.
    pub processes: usize,
    /// Records accepted.
    pub events: u64,
    /// Alerts the job emitted (each one measured).
    pub alerts: u64,
    /// Wall time of the job, in seconds.
    pub elapsed_secs: f64,
    /// Records per second achieved.
    pub events_per_second: f64,
    /// Alert latency (µs), from the large transaction entering the source to its alert
    /// leaving the fraud operator; `count` is the number of alerts.
    pub latency: LatencySummary,
}

impl BenchReport {
    /// A report of `settings` with no run yet.
    pub fn new(settings: Settings) -> Self {
        BenchReport {
            version: env!("CARGO_PKG_VERSION"),
            settings,
            throughput: None,
            latency: None,
            scaling: Vec::new(),
            dir: None,
        }
    }

    /// The results as a text table.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let source = s.source_text();
        let sink = s.sink.to_possible_value();
        let sink = sink.as_ref().map_or("", |v| v.get_name());
        let mut out = format!("tidelake bench: {source} → fraud → {sink} sink\n");
        if let Some(t) = &self.throughput {
            throughput_rows(&mut out, t);
        }
        if let Some(l) = &self.latency {
            latency_rows(&mut out, l);
        }
        if !self.scaling.is_empty() {
            out.push_str("| workers | processes | events/s | per worker | peak RSS |\n");
            out.push_str("|---|---|---|---|---|\n");
            for t in &self.scaling {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    t.workers,
                    t.processes,
                    millions(t.events_per_second),
                    millions(t.events_per_second_per_worker),
                    rss(t.peak_rss_bytes)
                );
            }
        }
        out
    }
}

fn throughput_rows(out: &mut String, t: &ThroughputResult) {
    let state = match t.state_bytes_per_active_account {
        Some(per) => format!(
            "{per:.0} B per active account ({} accounts, {:.1} MB at the peak)",
            group(t.state_keys),
            t.state_bytes as f64 / 1e6
        ),
        None => "no keyed state".to_owned(),
    };
    let _ = write!(
        out,
        "  throughput    {} workers, {} process(es): {} events in {:.2} s\n\
         \x20 events/s      {} total, {} per worker\n\
         \x20 alerts        {}\n\
         \x20 peak RSS      {}\n\
         \x20 state         {state}\n\
         \x20 written       {:.1} MB in {} files, {} commits\n",
        t.workers,
        t.processes,
        group(t.events),
        t.elapsed_secs,
        millions(t.events_per_second),
        millions(t.events_per_second_per_worker),
        group(t.alerts),
        rss(t.peak_rss_bytes),
        t.bytes as f64 / 1e6,
        group(t.files),
        group(t.commits),
    );
}

fn latency_rows(out: &mut String, l: &LatencyResult) {
    let _ = write!(
        out,
        "  latency run   {} events/s offered, tick {} ms, {} workers, {} process(es): {} events in {:.2} s ({} /s)\n\
         \x20 alert latency {} ({} alerts)\n",
        group(l.offered_rate),
        l.tick_ms,
        l.workers,
        l.processes,
        group(l.events),
        l.elapsed_secs,
        millions(l.events_per_second),
        l.latency,
        group(l.latency.count),
    );
}

/// Events per second as `12.34 M`.
fn millions(rate: f64) -> String {
    format!("{:.2} M", rate / 1e6)
}

/// A peak RSS as MB.
fn rss(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a".to_owned(), |b| format!("{} MB", b / 1_000_000))
}
