//! The stall watchdog: a job whose frontier stops moving while records are in flight
//! is stuck (a stopped or unreachable peer process holds every worker back, and timely
//! has no timeout of its own), so it is stopped with an error instead of hanging.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::control::{FailOrExit, JobControl};
use crate::metrics::Metrics;
use crate::periodic::Periodic;

/// Watches a running job's metrics on a thread of its own; dropping it stops the watch.
pub struct Watchdog {
    _thread: Periodic,
}

impl Watchdog {
    /// Fails `control`'s job when no frontier moved at the end of the dataflow and no
    /// commit landed for `timeout` while some worker has records in flight; if the job
    /// has not ended `grace` later (its workers wait on a peer that does not answer),
    /// exits the process with status 1, since nothing else would end it.
    pub fn start(
        metrics: Arc<Metrics>,
        timeout: Duration,
        control: Arc<JobControl>,
        grace: Duration,
    ) -> Self {
        let poll = (timeout / 20).clamp(Duration::from_millis(10), Duration::from_millis(500));
        let mut last = (signature(&metrics), Instant::now());
        let mut stall = FailOrExit::new(control, grace);
        let thread = Periodic::start("tidelake:watchdog", poll, move || {
            if stall.failed() {
                stall.exit_if_overdue();
                return ControlFlow::Continue(());
            }
            let now = signature(&metrics);
            if now != last.0 || !pending(&metrics) {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= timeout {
                stall.fail(format!(
                    "no progress for {} while records are in flight: the dataflow's frontier has not moved (a stopped or unreachable peer process, or a store that does not answer); set --stall-timeout to wait longer",
                    humantime::format_duration(timeout)
                ));
            }
            ControlFlow::Continue(())
        });
        Watchdog { _thread: thread }
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

    /// The job's error, once it has one or `within` has passed.
    fn error_within(control: &JobControl, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(error) = control.error() {
                return Some(error);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        control.error()
    }

    #[test]
    fn a_frontier_that_stops_while_records_are_in_flight_is_a_stall() {
        let metrics = Arc::new(Metrics::new(2));
        let control = Arc::new(JobControl::default());
        // A grace no test outlives: the watchdog must not exit the test process.
        let never = Duration::from_secs(24 * 3600);
        let _watchdog = Watchdog::start(
            Arc::clone(&metrics),
            Duration::from_millis(200),
            Arc::clone(&control),
            never,
        );
        // Progress while in flight, then nothing in flight: no stall.
        metrics.worker(1).in_flight.store(10, Ordering::Relaxed);
        for _ in 0..10 {
            add(&metrics.worker(1).progress, 1);
            std::thread::sleep(Duration::from_millis(50));
        }
        metrics.worker(1).in_flight.store(0, Ordering::Relaxed);
        assert!(error_within(&control, Duration::from_millis(500)).is_none());
        // In flight and no progress: a stall, named with the timeout.
        metrics.worker(0).in_flight.store(5, Ordering::Relaxed);
        let message = error_within(&control, Duration::from_secs(5)).expect("a stall");
        assert!(message.contains("no progress for 200ms"), "{message}");
        assert!(control.should_stop());
    }
}
