//! Counters the job keeps while it runs: read by the status line and the summary.
//!
//! Operators update their worker's slot once per batch with relaxed atomics, so the
//! per-event path pays nothing for them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    /// Records the worker's source accepted.
    pub events: AtomicU64,
    /// Records the worker's source sent to the dead letters.
    pub dead_letters: AtomicU64,
    /// Blank lines the worker's source skipped.
    pub blank_lines: AtomicU64,
    /// The worker's source watermark (ms; `u64::MAX` once its input has ended).
    pub watermark: AtomicU64,
    /// Alerts the worker's fraud operator raised.
    pub alerts: AtomicU64,
    /// Enriched transactions the worker's fraud operator emitted.
    pub enriched: AtomicU64,
    /// Commits the worker's table sinks made.
    pub commits: AtomicU64,
    /// Data files the worker's lake sinks wrote (committed or made visible).
    pub files: AtomicU64,
    /// Bytes of those files.
    pub bytes: AtomicU64,
    /// Epochs the worker skipped because the table already held them (a re-run).
    pub epochs_skipped: AtomicU64,
    /// Rows of those epochs.
    pub rows_skipped: AtomicU64,
}

/// Counters of every worker of this process.
#[derive(Debug)]
pub struct Metrics {
    workers: Vec<WorkerMetrics>,
}

/// A point-in-time reading of [`Metrics`], summed over workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Records accepted.
    pub events: u64,
    /// Records sent to the dead letters.
    pub dead_letters: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Enriched transactions emitted.
    pub enriched: u64,
    /// Table commits.
    pub commits: u64,
    /// Data files written.
    pub files: u64,
    /// Bytes of data files written.
    pub bytes: u64,
    /// Epochs skipped as already committed.
    pub epochs_skipped: u64,
    /// Rows of the epochs skipped.
    pub rows_skipped: u64,
    /// The least source watermark over workers still reading (`None` when all ended).
    pub watermark: Option<u64>,
    /// Records accepted per worker, by local worker index.
    pub events_per_worker: Vec<u64>,
}

impl Metrics {
    /// Counters for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Metrics {
            workers: (0..workers).map(|_| WorkerMetrics::default()).collect(),
        }
    }

    /// The counters of local worker `index`.
    pub fn worker(&self, index: usize) -> &WorkerMetrics {
        &self.workers[index]
    }

    /// Sums the counters.
    pub fn totals(&self) -> Totals {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut totals = Totals::default();
        for w in &self.workers {
            totals.events += load(&w.events);
            totals.dead_letters += load(&w.dead_letters);
            totals.blank_lines += load(&w.blank_lines);
            totals.alerts += load(&w.alerts);
            totals.enriched += load(&w.enriched);
            totals.commits += load(&w.commits);
            totals.files += load(&w.files);
            totals.bytes += load(&w.bytes);
            totals.epochs_skipped += load(&w.epochs_skipped);
            totals.rows_skipped += load(&w.rows_skipped);
            totals.events_per_worker.push(load(&w.events));
            let wm = load(&w.watermark);
            if wm != u64::MAX {
                totals.watermark = Some(totals.watermark.map_or(wm, |m: u64| m.min(wm)));
            }
        }
        totals
    }
}

/// Adds `n` to a counter.
#[inline]
pub fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
