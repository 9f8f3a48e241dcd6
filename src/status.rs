//! The live status line on stderr and the final summary.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidelake_operators::time::format_millis;
use tidelake_runtime::JobReport;
use tidelake_runtime::checkpoint::at_rule_time;
use tidelake_runtime::latency::Histogram;
use tidelake_runtime::metrics::{Metrics, Totals};
use tidelake_runtime::periodic::Periodic;
use tidelake_runtime::report::{CheckpointRef, CheckpointReport, ClusterReport};

/// Prints the job's status to stderr while it runs: a live line redrawn every second
/// when stderr is a terminal, or a plain line every `interval` (for logs). Dropping it
/// stops it (and clears the live line).
pub struct StatusLine {
    thread: Option<Periodic>,
    live: bool,
}

impl StatusLine {
    /// Starts the status: plain lines every `interval` if given, else the live line
    /// unless `quiet` or stderr is not a terminal, else nothing.
    pub fn start(metrics: Arc<Metrics>, quiet: bool, interval: Option<Duration>) -> Self {
        let live = interval.is_none() && !quiet && std::io::stderr().is_terminal();
        let every = interval.unwrap_or(Duration::from_secs(1));
        let (mut last_events, mut last_at) = (0u64, Instant::now());
        let thread = (live || interval.is_some()).then(|| {
            Periodic::start("tidelake:status", every, move || {
                let t = metrics.totals();
                let rate = (t.events - last_events) as f64 / last_at.elapsed().as_secs_f64();
                (last_events, last_at) = (t.events, Instant::now());
                let line = status_text(&t, rate);
                if live {
                    // Not eprint!, which panics once stderr is gone (a killed launcher).
                    let mut stderr = std::io::stderr().lock();
                    let _ = write!(stderr, "\r\x1b[2K{line}").and_then(|()| stderr.flush());
                } else {
                    tracing::info!(
                        events = t.events,
                        alerts = t.alerts,
                        dead_letters = t.dead_letters,
                        commits = t.commits,
                        "status: {line}"
                    );
                }
                ControlFlow::Continue(())
            })
        });
        StatusLine { thread, live }
    }
}

/// One status reading: events, events/s since the last, watermark, alerts, dead
/// letters, commits and files.
fn status_text(t: &Totals, rate: f64) -> String {
    let watermark = t.watermark.map_or_else(|| "end".to_owned(), format_millis);
    let waiting = match t.partitions_waiting {
        0 => String::new(),
        n => format!(
            "  waiting for the source: {n} partition{} unreachable",
            if n == 1 { "" } else { "s" }
        ),
    };
    format!(
        "{} events  {}/s  watermark {watermark}  alerts {}  dead letters {}  commits {}  files {}{waiting}",
        group(t.events),
        group(rate as u64),
        group(t.alerts),
        group(t.dead_letters),
        group(t.commits),
        group(t.files)
    )
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        drop(self.thread.take());
        if self.live {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// The summary printed to stderr when the job ends.
pub fn summary(report: &JobReport) -> String {
    let t = &report.totals;
    let secs = report.elapsed.as_secs_f64();
    let mut text = format!(
        "tidelake: {} in {secs:.2}s: {} events ({}/s), {} alerts, {} dead letters, {} blank lines",
        if report.stopped { "stopped" } else { "done" },
        group(t.events),
        group(report.events_per_second() as u64),
        group(t.alerts),
        group(t.dead_letters),
        group(t.blank_lines),
    );
    let tables: Vec<&str> = [&report.transactions_table, &report.alerts_table]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !tables.is_empty() || t.files > 0 {
        text.push_str(&format!(
            "\n  lake: {} commits, {} files, {} as job id {}",
            group(t.commits),
            group(t.files),
            megabytes(t.bytes),
            report.job_id
        ));
        if !tables.is_empty() {
            text.push_str(&format!(" to {}", tables.join(" and ")));
        }
    }
    text.push_str(&kafka_line(t));
    text.push_str(&accounts_line(t));
    text.push_str(&labels_line(t));
    for compaction in &report.compaction {
        let c = &compaction.totals;
        text.push_str(&format!(
            "\n  auto-compaction of {}: {} runs, {} partitions, {} small files into {}",
            compaction.table,
            group(c.runs),
            group(c.partitions),
            group(c.files_removed),
            group(c.files_added)
        ));
        if c.gave_up > 0 {
            text.push_str(&format!(
                ", {} partitions left to a concurrent compaction",
                group(c.gave_up)
            ));
        }
        if let Some(failure) = &c.last_failure {
            text.push_str(&format!(
                "; {} runs failed, the last with: {failure}",
                group(c.failures)
            ));
        }
    }
    for note in &report.source_notes {
        text.push_str(&format!("\n  {note}"));
    }
    if t.epochs_skipped > 0 {
        text.push_str(&format!(
            "\n  {} epochs ({} rows) were already committed by job id {}: skipped, nothing written twice",
            group(t.epochs_skipped),
            group(t.rows_skipped),
            report.job_id
        ));
    }
    if let Some(checkpoints) = &report.checkpoints {
        text.push_str(&checkpoints_line(checkpoints, t));
    }
    if t.events_per_worker.len() > 1 {
        text.push_str(&format!(
            "\n  per worker: {}",
            per_worker(&t.events_per_worker, report.process * report.workers, secs)
        ));
    }
    if let Some(latency) = &report.alert_latency {
        text.push_str(&latency_line(latency));
    }
    text
}

/// What the job restored and took of its checkpoints, and what it read since.
fn checkpoints_line(checkpoints: &CheckpointReport, totals: &Totals) -> String {
    let name = |c: &CheckpointRef| {
        format!(
            "{} {} at {}",
            c.kind.name(),
            c.id,
            at_rule_time(c.rule_time)
        )
    };
    let mut text = format!("\n  checkpoints in {}: ", checkpoints.location);
    if let Some(restored) = &checkpoints.restored {
        text.push_str(&format!(
            "restored {}, then read {} records; ",
            name(restored),
            group(totals.events + totals.dead_letters + totals.blank_lines)
        ));
    }
    text.push_str(&format!("{} taken", group(checkpoints.taken)));
    if let Some(last) = &checkpoints.last {
        text.push_str(&format!(", the last {}", name(last)));
    }
    text
}

/// `\n  alert latency: p50 1.91 ms, … over 5,046 alerts`.
fn latency_line(latency: &Histogram) -> String {
    let s = latency.summary();
    format!("\n  alert latency: {s} over {} alerts", group(s.count))
}

/// The summary's line of the Kafka sinks, if they committed anything.
fn kafka_line(t: &Totals) -> String {
    if t.kafka_transactions == 0 {
        return String::new();
    }
    format!(
        "\n  kafka: {} transactions, {} records",
        group(t.kafka_transactions),
        group(t.kafka_records)
    )
}

/// The summary's line of the as-of join with the accounts, if the job read any.
fn accounts_line(t: &Totals) -> String {
    if t.accounts_read == 0 && t.accounts_unknown == 0 {
        return String::new();
    }
    format!(
        "\n  accounts: {} versions read, {} late, {} records of unknown accounts",
        group(t.accounts_read),
        group(t.accounts_late),
        group(t.accounts_unknown)
    )
}

/// The summary's line of the model's late labels, if the job read any.
fn labels_line(t: &Totals) -> String {
    if t.labels_read == 0 {
        return String::new();
    }
    format!(
        "\n  labels: {} read, {} after their transaction was scored",
        group(t.labels_read),
        group(t.labels_late)
    )
}

/// The summary the launcher prints when every process of the cluster has ended.
pub fn cluster_summary(report: &ClusterReport) -> String {
    let t = &report.totals;
    let secs = report.elapsed_secs;
    let mut text = format!(
        "tidelake launch: done in {secs:.2}s: {} processes × {} workers: {} events ({}/s), {} alerts, {} dead letters",
        report.processes.len(),
        report.workers,
        group(t.events),
        group(report.events_per_second() as u64),
        group(t.alerts),
        group(t.dead_letters),
    );
    if t.commits > 0 || t.files > 0 {
        text.push_str(&format!(
            "\n  lake: {} commits, {} files, {}",
            group(t.commits),
            group(t.files),
            megabytes(t.bytes)
        ));
    }
    text.push_str(&kafka_line(t));
    text.push_str(&accounts_line(t));
    text.push_str(&labels_line(t));
    let processes: Vec<String> = report
        .processes
        .iter()
        .map(|p| {
            format!(
                "p{} {} events ({}/s), {} alerts, {} commits",
                p.process,
                group(p.totals.events),
                group(p.events_per_second() as u64),
                group(p.totals.alerts),
                group(p.totals.commits)
            )
        })
        .collect();
    text.push_str(&format!("\n  per process: {}", processes.join("; ")));
    // Process 0 writes the manifests; every process restored the same checkpoint.
    if let Some(first) = report.processes.first()
        && let Some(checkpoints) = &first.checkpoints
    {
        text.push_str(&checkpoints_line(checkpoints, t));
    }
    let per_worker: Vec<String> = report
        .processes
        .iter()
        .map(|p| {
            per_worker(
                &p.totals.events_per_worker,
                p.process * p.workers,
                p.elapsed_secs,
            )
        })
        .collect();
    text.push_str(&format!("\n  per worker: {}", per_worker.join(", ")));
    if let Some(latency) = &report.alert_latency {
        text.push_str(&latency_line(latency));
    }
    text
}

/// `w0 1,000 (500/s), w1 …`: events of consecutive workers from global index `first`,
/// over `secs` seconds.
fn per_worker(events: &[u64], first: usize, secs: f64) -> String {
    events
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "w{} {} ({}/s)",
                first + i,
                group(*n),
                group((*n as f64 / secs.max(1e-9)) as u64)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bytes as MB with one decimal.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `1234567` as `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
