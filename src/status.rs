//! The live status line on stderr and the final summary.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tidelake_operators::time::format_millis;
use tidelake_runtime::JobReport;
use tidelake_runtime::metrics::Metrics;

/// Prints a status line to stderr every second while the job runs, when stderr is a
/// terminal. Dropping it stops the line and clears it.
pub struct StatusLine {
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StatusLine {
    /// Starts the status line (or nothing, if stderr is not a terminal or `quiet`).
    pub fn start(metrics: Arc<Metrics>, quiet: bool) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let thread = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let running = Arc::clone(&running);
            std::thread::spawn(move || {
                let started = Instant::now();
                let (mut last_events, mut last_at) = (0u64, started);
                while running.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    if last_at.elapsed() < Duration::from_secs(1) {
                        continue;
                    }
                    let t = metrics.totals();
                    let rate = (t.events - last_events) as f64 / last_at.elapsed().as_secs_f64();
                    (last_events, last_at) = (t.events, Instant::now());
                    let watermark = t.watermark.map_or_else(|| "end".to_owned(), format_millis);
                    eprint!(
                        "\r\x1b[2K{} events  {}/s  watermark {watermark}  alerts {}  dead letters {}",
                        group(t.events),
                        group(rate as u64),
                        group(t.alerts),
                        group(t.dead_letters)
                    );
                    let _ = std::io::stderr().flush();
                }
                eprint!("\r\x1b[2K");
            })
        });
        StatusLine { running, thread }
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
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
    if t.epochs_skipped > 0 {
        text.push_str(&format!(
            "\n  {} epochs ({} rows) were already committed by job id {}: skipped, nothing written twice",
            group(t.epochs_skipped),
            group(t.rows_skipped),
            report.job_id
        ));
    }
    if t.events_per_worker.len() > 1 {
        let per_worker: Vec<String> = t
            .events_per_worker
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "w{i} {} ({}/s)",
                    group(*n),
                    group((*n as f64 / secs.max(1e-9)) as u64)
                )
            })
            .collect();
        text.push_str(&format!("\n  per worker: {}", per_worker.join(", ")));
    }
    text
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
