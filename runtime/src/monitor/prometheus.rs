//! `/metrics`: the job's counters in the Prometheus text format, encoded by
//! `prometheus-client` from the atomics the operators keep ([`crate::metrics`]) at
//! each scrape, so the per-event path does not change when metrics are served.
//!
//! Every series carries the labels `job` (the job id) and `process`; per-worker ones
//! `worker` (the global worker index), per-partition ones `partition`, per-table ones
//! `table`, dead letters `reason`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use tidelake_sinks::delta::maintenance::auto_compact::CompactionTotals;

use super::Monitor;
use crate::dead_letter::Reason;
use crate::metrics::WorkerMetrics;
use crate::report::rss_bytes;

/// The registry `/metrics` encodes: every metric of `monitor`, with its job and process
/// labels.
pub(super) fn registry(monitor: Arc<Monitor>) -> Registry {
    let labels = [
        ("job".into(), monitor.job_id.clone().into()),
        ("process".into(), monitor.process.to_string().into()),
    ];
    let mut registry = Registry::with_prefix_and_labels("tidelake", labels.into_iter());
    registry.register_collector(Box::new(JobCollector(monitor)));
    registry
}

/// The `Content-Type` of [`encode`]'s text.
pub(super) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `registry` in the Prometheus text format (version 0.0.4).
pub(super) fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

struct JobCollector(Arc<Monitor>);

impl fmt::Debug for JobCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobCollector")
    }
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// A per-worker counter: its name, help and reading.
type WorkerCounter = (&'static str, &'static str, fn(&WorkerMetrics) -> u64);

const WORKER_COUNTERS: &[WorkerCounter] = &[
    (
        "records_read",
        "Records the worker's source read: accepted, dead letters and blank lines",
        |w| {
            let constraint = load(&w.dead_letters_by_reason[Reason::Constraint.index()]);
            load(&w.events) + load(&w.dead_letters) - constraint + load(&w.blank_lines)
        },
    ),
    (
        "records_accepted",
        "Records the worker's source accepted",
        |w| load(&w.events),
    ),
    (
        "blank_lines",
        "Blank lines the worker's source skipped",
        |w| load(&w.blank_lines),
    ),
    ("alerts", "Alerts the worker's rule raised", |w| {
        load(&w.alerts)
    }),
    (
        "rule_output_records",
        "Records the worker's rule emitted on its main output",
        |w| load(&w.enriched),
    ),
    (
        "commits",
        "Epochs the worker's table sinks committed",
        |w| load(&w.commits),
    ),
    (
        "commit_attempts",
        "Puts of the worker's commits (one more each time another writer took the version)",
        |w| load(&w.commit_attempts),
    ),
    (
        "commit_conflicts",
        "Versions another writer took before one of the worker's commits",
        |w| load(&w.commit_attempts).saturating_sub(load(&w.commits)),
    ),
    (
        "rows_committed",
        "Rows in the worker's committed epochs",
        |w| load(&w.rows_committed),
    ),
    (
        "files_written",
        "Data files the worker's lake sinks wrote",
        |w| load(&w.files),
    ),
    ("bytes_written", "Bytes of those files", |w| load(&w.bytes)),
    (
        "epochs_skipped",
        "Epochs skipped because the table held them already (a re-run)",
        |w| load(&w.epochs_skipped),
    ),
    ("rows_skipped", "Rows of the skipped epochs", |w| {
        load(&w.rows_skipped)
    }),
    (
        "kafka_transactions",
        "Kafka transactions (an epoch each) the worker's Kafka sinks committed",
        |w| load(&w.kafka_transactions),
    ),
    (
        "kafka_records",
        "Records in those Kafka transactions",
        |w| load(&w.kafka_records),
    ),
    (
        "accounts_read",
        "Versions of the accounts reference data the worker read",
        |w| load(&w.accounts_read),
    ),
    (
        "accounts_late",
        "Account versions that arrived after the as-of join had passed their validFrom",
        |w| load(&w.accounts_late),
    ),
    (
        "accounts_unknown",
        "Records the as-of join found no account for (joined with nulls)",
        |w| load(&w.accounts_unknown),
    ),
    (
        "labels_read",
        "Labels of the model's predictions the worker read (--labels)",
        |w| load(&w.labels_read),
    ),
    (
        "labels_late",
        "Labels that arrived after their transaction was scored",
        |w| load(&w.labels_late),
    ),
];

/// A per-worker gauge.
type WorkerGauge = (&'static str, &'static str, fn(&WorkerMetrics) -> i64);

const WORKER_GAUGES: &[WorkerGauge] = &[
    (
        "source_partitions_waiting",
        "Source partitions of the worker that cannot be read now (their server is unreachable)",
        |w| load(&w.partitions_waiting) as i64,
    ),
    ("rule_state_keys", "Keys in the worker's rule state", |w| {
        load(&w.state_keys_now) as i64
    }),
    (
        "rule_state_bytes",
        "Bytes the worker's rule state has allocated",
        |w| load(&w.state_bytes_now) as i64,
    ),
    (
        "records_in_flight",
        "Records the worker's source emitted that the end of the dataflow has not passed (-1: input ended, draining)",
        |w| match load(&w.in_flight) {
            u64::MAX => -1,
            n => n as i64,
        },
    ),
];

impl Collector for JobCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let monitor = &self.0;
        let workers: Vec<(String, &WorkerMetrics)> = monitor
            .metrics
            .workers()
            .iter()
            .enumerate()
            .map(|(i, w)| ((monitor.first_worker + i).to_string(), w))
            .collect();

        // Encodes one family of a series per worker.
        let mut per_worker = |name: &str,
                              help: &str,
                              kind: MetricType,
                              encode: &dyn Fn(&WorkerMetrics, MetricEncoder) -> fmt::Result|
         -> fmt::Result {
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for (worker, w) in &workers {
                let labels = [("worker", worker.as_str())];
                encode(w, metric.encode_family(&labels)?)?;
            }
            Ok(())
        };
        for (name, help, read) in WORKER_COUNTERS {
            per_worker(name, help, MetricType::Counter, &|w, m| {
                ConstCounter::new(read(w)).encode(m)
            })?;
        }
        for (name, help, read) in WORKER_GAUGES {
            per_worker(name, help, MetricType::Gauge, &|w, m| {
                ConstGauge::new(read(w)).encode(m)
            })?;
        }
        per_worker(
            "commit_latency_seconds",
            "Time from sealing an epoch to its commit landing in the log",
            MetricType::Histogram,
            &|w, m| w.commit_latency.encode(m),
        )?;
        let mut metric = encoder.encode_descriptor(
            "dead_letters",
            "Records sent to the dead letters, by reason",
            None,
            MetricType::Counter,
        )?;
        for (worker, w) in &workers {
            for reason in Reason::ALL {
                let labels = [("worker", worker.as_str()), ("reason", reason.name())];
                let n = load(&w.dead_letters_by_reason[reason.index()]);
                ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
            }
        }

        let now = monitor.clock.now_ms();
        let watermarks = monitor.metrics.partition_watermarks();
        let mut metric = encoder.encode_descriptor(
            "partition_watermark_milliseconds",
            "Each source partition's watermark, ms since the epoch (absent before its first record)",
            None,
            MetricType::Gauge,
        )?;
        for (partition, watermark) in watermarks.iter().enumerate() {
            if let Some(wm) = watermark {
                let labels = [("partition", partition.to_string())];
                ConstGauge::new(*wm as i64).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "partition_watermark_lag_seconds",
            "How far each source partition's watermark is behind the wall clock",
            None,
            MetricType::Gauge,
        )?;
        for (partition, watermark) in watermarks.iter().enumerate() {
            if let Some(wm) = watermark {
                let labels = [("partition", partition.to_string())];
                let lag = now.saturating_sub(*wm) as f64 / 1000.0;
                ConstGauge::new(lag).encode(metric.encode_family(&labels)?)?;
            }
        }

        let compaction = (monitor.compaction)();
        type Compaction = (&'static str, &'static str, fn(&CompactionTotals) -> u64);
        const COMPACTION: [Compaction; 4] = [
            ("compactions", "Auto-compaction runs", |t| t.runs),
            (
                "compacted_partitions",
                "Partitions auto-compaction rewrote (a commit each)",
                |t| t.partitions,
            ),
            (
                "compacted_files_removed",
                "Small files auto-compaction replaced",
                |t| t.files_removed,
            ),
            (
                "compacted_files_added",
                "Files auto-compaction wrote",
                |t| t.files_added,
            ),
        ];
        for (name, help, read) in COMPACTION {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for table in &compaction {
                let labels = [("table", table.table.as_str())];
                ConstCounter::new(read(&table.totals)).encode(metric.encode_family(&labels)?)?;
            }
        }

        let checkpoints = &monitor.metrics.checkpoints;
        let metric = encoder.encode_descriptor(
            "checkpoints",
            "Complete checkpoints and savepoints taken (process 0 writes them)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(load(&checkpoints.taken)).encode(metric)?;
        let metric = encoder.encode_descriptor(
            "checkpoint_rule_time_milliseconds",
            "The newest complete checkpoint's rule time, ms since the epoch",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(load(&checkpoints.rule_time) as i64).encode(metric)?;
        let metric = encoder.encode_descriptor(
            "checkpoint_bytes",
            "The newest complete checkpoint's size (its parts)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(load(&checkpoints.bytes) as i64).encode(metric)?;
        let metric = encoder.encode_descriptor(
            "checkpoint_duration_seconds",
            "Time from a checkpoint's first part being durable to its manifest",
            None,
            MetricType::Histogram,
        )?;
        checkpoints.duration.encode(metric)?;

        let metric = encoder.encode_descriptor(
            "ready",
            "1 when the cluster has formed and every local worker's source is open",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(monitor.ready())).encode(metric)?;
        if let Some(rss) = rss_bytes() {
            let metric = encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "The process's resident set size",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(rss as i64).encode(metric)?;
        }
        Ok(())
    }
}
