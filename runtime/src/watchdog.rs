//! The stall watchdog: a job whose frontier stops moving while records are in flight
//! is stuck (a stopped or unreachable peer process holds every worker back, and timely
//! has no timeout of its own), so it is stopped with an error instead of hanging.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// Watches a running job's metrics on a thread of its own; dropping it stops the watch.
pub struct Watchdog {
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Calls `on_stall` (once) when no frontier moved at the end of the dataflow and no
    /// commit landed for `timeout`, while some worker has records in flight.
    pub fn start(
        metrics: Arc<Metrics>,
        timeout: Duration,
        on_stall: impl FnOnce(String) + Send + 'static,
    ) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let watching = Arc::clone(&running);
        let poll = (timeout / 20).clamp(Duration::from_millis(10), Duration::from_millis(500));
        let thread = std::thread::Builder::new()
            .name("tidelake:watchdog".into())
            .spawn(move || {
                let mut last = (signature(&metrics), Instant::now());
                while watching.load(Ordering::Relaxed) {
                    // Woken early by `drop`, so a finished job does not wait for a poll.
                    std::thread::park_timeout(poll);
                    if !watching.load(Ordering::Relaxed) {
                        return;
                    }
                    let now = signature(&metrics);
                    if now != last.0 || !pending(&metrics) {
                        last = (now, Instant::now());
                    } else if last.1.elapsed() >= timeout {
                        on_stall(format!(
                            "no progress for {} while records are in flight: the dataflow's frontier has not moved (a stopped or unreachable peer process, or a store that does not answer); set --stall-timeout to wait longer",
                            humantime::format_duration(timeout)
                        ));
                        return;
                    }
                }
            })
            .ok();
        Watchdog { running, thread }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// What changes when the job makes progress.
fn signature(metrics: &Metrics) -> (u64, u64) {
    let load = |f: fn(&crate::metrics::WorkerMetrics) -> &std::sync::atomic::AtomicU64| {
        metrics
            .workers()
            .iter()
            .map(|w| f(w).load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    };
    (load(|w| &w.progress), load(|w| &w.commits))
}

/// True while some worker has records the dataflow has not finished.
fn pending(metrics: &Metrics) -> bool {
    metrics
        .workers()
        .iter()
        .any(|w| w.in_flight.load(Ordering::Relaxed) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::add;
    use std::sync::mpsc;

    #[test]
    fn a_frontier_that_stops_while_records_are_in_flight_is_a_stall() {
        let metrics = Arc::new(Metrics::new(2));
        let (tx, rx) = mpsc::channel();
        let _watchdog =
            Watchdog::start(Arc::clone(&metrics), Duration::from_millis(200), move |m| {
                let _ = tx.send(m);
            });
        // Progress while in flight, then nothing in flight: no stall.
        metrics.worker(1).in_flight.store(10, Ordering::Relaxed);
        for _ in 0..10 {
            add(&metrics.worker(1).progress, 1);
            std::thread::sleep(Duration::from_millis(50));
        }
        metrics.worker(1).in_flight.store(0, Ordering::Relaxed);
        assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
        // In flight and no progress: a stall, named with the timeout.
        metrics.worker(0).in_flight.store(5, Ordering::Relaxed);
        let message = rx.recv_timeout(Duration::from_secs(5)).expect("a stall");
        assert!(message.contains("no progress for 200ms"), "{message}");
    }
}
