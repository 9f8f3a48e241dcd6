//! Counters the job keeps while it runs: read by the status line, the summary and the
//! monitoring endpoint ([`crate::monitor`]).
//!
//! Operators update their worker's slot once per batch, tick or commit with relaxed
//! atomics, so the per-event path pays nothing for them.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::histogram::Histogram;
use tidelake_operators::StoreSize;

use crate::dead_letter::Reason;

/// The upper bounds, in seconds, of the commit latency histogram's buckets.
pub const COMMIT_LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A partition's watermark before the partition has a record.
pub const NO_WATERMARK: u64 = u64::MAX;

/// Counters of one worker.
#[derive(Debug)]
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
    /// Keys in the worker's fraud-operator state when it held the most.
    pub state_keys: AtomicU64,
    /// Bytes that state had allocated then (see `KeyedStore::size`).
    pub state_bytes: AtomicU64,
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
    /// Source partitions of the worker that cannot be read now (their server is
    /// unreachable).
    pub partitions_waiting: AtomicU64,
    /// Kafka transactions the worker's Kafka sinks committed (an epoch each).
    pub kafka_transactions: AtomicU64,
    /// Records in them.
    pub kafka_records: AtomicU64,
    /// Versions of the accounts reference data the worker read.
    pub accounts_read: AtomicU64,
    /// Those that arrived after the join had passed their `validFrom` (late updates).
    pub accounts_late: AtomicU64,
    /// Records the as-of join found no account for (joined with nulls).
    pub accounts_unknown: AtomicU64,
    /// Labels of the model's predictions (`--labels`) the worker read.
    pub labels_read: AtomicU64,
    /// Those that arrived after their transaction was scored (they correct the quality
    /// figures).
    pub labels_late: AtomicU64,
    /// Records the worker's source emitted that the end of the dataflow has not passed
    /// yet (`u64::MAX` once its input ended: the job is draining). The stall watchdog's
    /// "input is pending".
    pub in_flight: AtomicU64,
    /// Frontier moves seen at the end of the worker's dataflow (the fraud operator's
    /// output and the sinks' commits). The stall watchdog's "progress".
    pub progress: AtomicU64,
    /// Dead letters by reason, indexed by [`Reason::index`].
    pub dead_letters_by_reason: [AtomicU64; Reason::ALL.len()],
    /// Keys in the worker's fraud-operator state now (after its latest tick).
    pub state_keys_now: AtomicU64,
    /// Bytes of that state now.
    pub state_bytes_now: AtomicU64,
    /// Puts the worker's table commits took: one per commit, one more per version
    /// another writer took first.
    pub commit_attempts: AtomicU64,
    /// Rows in the worker's committed epochs.
    pub rows_committed: AtomicU64,
    /// Wall-clock ms of the worker source's latest activation (0: none yet).
    pub last_active_ms: AtomicU64,
    /// How long each of the worker's commits took, from sealing its epoch to the log
    /// entry landing (seconds).
    pub commit_latency: Histogram,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        WorkerMetrics {
            events: AtomicU64::default(),
            dead_letters: AtomicU64::default(),
            blank_lines: AtomicU64::default(),
            watermark: AtomicU64::default(),
            alerts: AtomicU64::default(),
            enriched: AtomicU64::default(),
            state_keys: AtomicU64::default(),
            state_bytes: AtomicU64::default(),
            commits: AtomicU64::default(),
            files: AtomicU64::default(),
            bytes: AtomicU64::default(),
            epochs_skipped: AtomicU64::default(),
            rows_skipped: AtomicU64::default(),
            partitions_waiting: AtomicU64::default(),
            kafka_transactions: AtomicU64::default(),
            kafka_records: AtomicU64::default(),
            accounts_read: AtomicU64::default(),
            accounts_late: AtomicU64::default(),
            accounts_unknown: AtomicU64::default(),
            labels_read: AtomicU64::default(),
            labels_late: AtomicU64::default(),
            in_flight: AtomicU64::default(),
            progress: AtomicU64::default(),
            dead_letters_by_reason: Default::default(),
            state_keys_now: AtomicU64::default(),
            state_bytes_now: AtomicU64::default(),
            commit_attempts: AtomicU64::default(),
            rows_committed: AtomicU64::default(),
            last_active_ms: AtomicU64::default(),
            commit_latency: Histogram::new(COMMIT_LATENCY_BUCKETS),
        }
    }
}

impl WorkerMetrics {
    /// Counts `n` dead letters of `reason`.
    pub fn dead_letter(&self, reason: Reason, n: u64) {
        add(&self.dead_letters, n);
        add(&self.dead_letters_by_reason[reason.index()], n);
    }
}

/// What the process that writes a job's checkpoint manifests has taken.
#[derive(Debug)]
pub struct CheckpointMetrics {
    /// Complete checkpoints (and savepoints) taken.
    pub taken: AtomicU64,
    /// The newest one's rule time (ms; 0 before the first).
    pub rule_time: AtomicU64,
    /// The newest one's bytes (its manifest's parts).
    pub bytes: AtomicU64,
    /// How long each took, from its first part being durable to its manifest
    /// (seconds).
    pub duration: Histogram,
}

impl Default for CheckpointMetrics {
    fn default() -> Self {
        CheckpointMetrics {
            taken: AtomicU64::default(),
            rule_time: AtomicU64::default(),
            bytes: AtomicU64::default(),
            duration: Histogram::new(COMMIT_LATENCY_BUCKETS),
        }
    }
}

/// Counters of every worker of this process.
#[derive(Debug)]
pub struct Metrics {
    workers: Vec<WorkerMetrics>,
    /// The job's checkpoints, as the process that writes their manifests (process 0)
    /// takes them.
    pub checkpoints: CheckpointMetrics,
    /// The watermark of every source partition (ms, [`NO_WATERMARK`] before its first
    /// record); each is updated by the worker that reads the partition.
    partitions: OnceLock<Vec<AtomicU64>>,
}

/// A point-in-time reading of [`Metrics`], summed over workers.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Fraud-operator keys at each worker's peak, summed.
    #[serde(default)]
    pub state_keys: u64,
    /// Bytes of that state at each worker's peak, summed.
    #[serde(default)]
    pub state_bytes: u64,
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
    /// Source partitions that cannot be read now (their server is unreachable).
    #[serde(default)]
    pub partitions_waiting: u64,
    /// Kafka transactions committed by the Kafka sinks.
    #[serde(default)]
    pub kafka_transactions: u64,
    /// Records in them.
    #[serde(default)]
    pub kafka_records: u64,
    /// Versions of the accounts reference data read.
    #[serde(default)]
    pub accounts_read: u64,
    /// Those that arrived late (after the join passed their `validFrom`).
    #[serde(default)]
    pub accounts_late: u64,
    /// Records the as-of join found no account for.
    #[serde(default)]
    pub accounts_unknown: u64,
    /// Labels of the model's predictions read (`--labels`).
    #[serde(default)]
    pub labels_read: u64,
    /// Those that arrived after their transaction was scored.
    #[serde(default)]
    pub labels_late: u64,
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
            checkpoints: CheckpointMetrics::default(),
            partitions: OnceLock::new(),
        }
    }

    /// Makes room for the watermarks of a source's `partitions` (once; later calls do
    /// nothing).
    pub fn set_partitions(&self, partitions: u32) {
        let _ = self.partitions.set(
            (0..partitions)
                .map(|_| AtomicU64::new(NO_WATERMARK))
                .collect(),
        );
    }

    /// The watermark of source partition `partition`, if the source has it.
    pub fn partition_watermark(&self, partition: u32) -> Option<&AtomicU64> {
        self.partitions.get()?.get(partition as usize)
    }

    /// Every partition's watermark, by partition (`None` before its first record).
    pub fn partition_watermarks(&self) -> Vec<Option<u64>> {
        self.partitions
            .get()
            .map(|all| {
                all.iter()
                    .map(|w| Some(w.load(Ordering::Relaxed)).filter(|&w| w != NO_WATERMARK))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The counters of local worker `index`.
    pub fn worker(&self, index: usize) -> &WorkerMetrics {
        &self.workers[index]
    }

    /// The counters of every local worker, by local index.
    pub fn workers(&self) -> &[WorkerMetrics] {
        &self.workers
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
            totals.state_keys += load(&w.state_keys);
            totals.state_bytes += load(&w.state_bytes);
            totals.commits += load(&w.commits);
            totals.files += load(&w.files);
            totals.bytes += load(&w.bytes);
            totals.epochs_skipped += load(&w.epochs_skipped);
            totals.rows_skipped += load(&w.rows_skipped);
            totals.partitions_waiting += load(&w.partitions_waiting);
            totals.kafka_transactions += load(&w.kafka_transactions);
            totals.kafka_records += load(&w.kafka_records);
            totals.accounts_read += load(&w.accounts_read);
            totals.accounts_late += load(&w.accounts_late);
            totals.accounts_unknown += load(&w.accounts_unknown);
            totals.labels_read += load(&w.labels_read);
            totals.labels_late += load(&w.labels_late);
            totals.events_per_worker.push(load(&w.events));
            let wm = load(&w.watermark);
            if wm != u64::MAX {
                totals.watermark = Some(totals.watermark.map_or(wm, |m: u64| m.min(wm)));
            }
        }
        totals
    }
}

impl Totals {
    /// Adds another process's counters to these (`events_per_worker` appended, so the
    /// workers of processes added in order stay in global order; the watermark is the
    /// least).
    pub fn add(&mut self, other: &Totals) {
        self.events += other.events;
        self.dead_letters += other.dead_letters;
        self.blank_lines += other.blank_lines;
        self.alerts += other.alerts;
        self.enriched += other.enriched;
        self.commits += other.commits;
        self.files += other.files;
        self.bytes += other.bytes;
        self.epochs_skipped += other.epochs_skipped;
        self.rows_skipped += other.rows_skipped;
        self.partitions_waiting += other.partitions_waiting;
        self.kafka_transactions += other.kafka_transactions;
        self.kafka_records += other.kafka_records;
        self.accounts_read += other.accounts_read;
        self.accounts_late += other.accounts_late;
        self.accounts_unknown += other.accounts_unknown;
        self.labels_read += other.labels_read;
        self.labels_late += other.labels_late;
        self.state_keys += other.state_keys;
        self.state_bytes += other.state_bytes;
        self.events_per_worker.extend(&other.events_per_worker);
        self.watermark = match (self.watermark, other.watermark) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Bytes of fraud-operator state per live key, at each worker's peak of live keys.
    pub fn state_bytes_per_key(&self) -> Option<f64> {
        (self.state_keys > 0).then(|| self.state_bytes as f64 / self.state_keys as f64)
    }
}

/// Records the size of a worker's fraud-operator state: now, and at its peak of keys.
pub fn record_state_size(counters: &WorkerMetrics, size: StoreSize) {
    let keys = size.keys as u64;
    counters.state_keys_now.store(keys, Ordering::Relaxed);
    counters
        .state_bytes_now
        .store(size.bytes as u64, Ordering::Relaxed);
    if keys > counters.state_keys.load(Ordering::Relaxed) {
        counters.state_keys.store(keys, Ordering::Relaxed);
        counters
            .state_bytes
            .store(size.bytes as u64, Ordering::Relaxed);
    }
}

/// Adds `n` to a counter.
#[inline]
pub fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
