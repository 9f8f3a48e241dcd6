//! What a finished process and a finished cluster report, as JSON: `--report-json FILE`
//! on `run` and `worker` writes a [`ProcessReport`], on `launch` a [`ClusterReport`].

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Kind, Manifest};
use crate::latency::Histogram;
use crate::metrics::Totals;

/// What one process of a job did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessReport {
    /// This process's index in the cluster (0 for a single process).
    pub process: usize,
    /// Processes in the cluster.
    pub processes: usize,
    /// Worker threads in this process; global worker index = process × workers + local.
    pub workers: usize,
    /// Wall time from start to end of the job, in seconds.
    pub elapsed_secs: f64,
    /// True when the job ended on a stop request rather than at the end of its input.
    pub stopped: bool,
    /// The job id the table writers committed as.
    pub job_id: String,
    /// Counters summed over this process's workers (`events_per_worker` by local index).
    pub totals: Totals,
    /// The process's peak resident set size, in bytes (Linux only).
    pub peak_rss_bytes: Option<u64>,
    /// Every alert's latency in µs, with `--alert-latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_latency: Option<Histogram>,
    /// What the job restored and took of its checkpoints, if it takes any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<CheckpointReport>,
}

/// What a run did with its checkpoints (docs/checkpoints.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// Where they are.
    pub location: String,
    /// The checkpoint it started from.
    pub restored: Option<CheckpointRef>,
    /// How many it took.
    pub taken: u64,
    /// The newest one it took (a savepoint, if it was stopped).
    pub last: Option<CheckpointRef>,
}

/// One checkpoint, as a report names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// Its id.
    pub id: u64,
    /// Checkpoint or savepoint.
    pub kind: Kind,
    /// Its rule time (ms): the state holds everything before it.
    pub rule_time: u64,
}

impl CheckpointRef {
    /// The reference of the checkpoint `manifest` describes.
    pub fn of(manifest: &Manifest) -> Self {
        CheckpointRef {
            id: manifest.id,
            kind: manifest.kind,
            rule_time: manifest.rule_time,
        }
    }
}

impl ProcessReport {
    /// Accepted records per second of wall time.
    pub fn events_per_second(&self) -> f64 {
        self.totals.events as f64 / self.elapsed_secs.max(1e-9)
    }
}

/// What every process of a cluster did, as the launcher saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterReport {
    /// Wall time from the launch to the last process's end, in seconds.
    pub elapsed_secs: f64,
    /// Worker threads per process.
    pub workers: usize,
    /// Each process's report, in process order.
    pub processes: Vec<ProcessReport>,
    /// Counters summed over every process (`events_per_worker` by global index).
    pub totals: Totals,
    /// The largest peak RSS of any process, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The alert latency of every process, merged, with `--alert-latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_latency: Option<Histogram>,
}

impl ClusterReport {
    /// Sums the reports of the processes of one cluster.
    pub fn new(elapsed_secs: f64, workers: usize, processes: Vec<ProcessReport>) -> Self {
        let mut totals = Totals::default();
        for p in &processes {
            totals.add(&p.totals);
        }
        let peak_rss_bytes = processes.iter().filter_map(|p| p.peak_rss_bytes).max();
        let measured = || processes.iter().filter_map(|p| p.alert_latency.as_ref());
        let alert_latency = measured()
            .next()
            .is_some()
            .then(|| Histogram::merged(measured()));
        ClusterReport {
            elapsed_secs,
            workers,
            processes,
            totals,
            peak_rss_bytes,
            alert_latency,
        }
    }

    /// Accepted records per second of the launcher's wall time.
    pub fn events_per_second(&self) -> f64 {
        self.totals.events as f64 / self.elapsed_secs.max(1e-9)
    }
}

/// This process's peak resident set size in bytes (`VmHWM`), where the OS reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// This process's resident set size now, in bytes (Linux only).
pub fn rss_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// A `kB` figure of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line
        .trim_start_matches(field)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(index: usize, events: Vec<u64>, rss: u64) -> ProcessReport {
        ProcessReport {
            process: index,
            processes: 2,
            workers: events.len(),
            elapsed_secs: 1.0,
            stopped: false,
            job_id: "j".into(),
            totals: Totals {
                events: events.iter().sum(),
                alerts: 1,
                commits: 2,
                events_per_worker: events,
                ..Totals::default()
            },
            peak_rss_bytes: Some(rss),
            alert_latency: None,
            checkpoints: None,
        }
    }

    #[test]
    fn a_cluster_report_sums_its_processes_in_global_worker_order() {
        let report = ClusterReport::new(
            2.0,
            2,
            vec![process(0, vec![1, 2], 10), process(1, vec![3, 4], 30)],
        );
        assert_eq!(report.totals.events, 10);
        assert_eq!(report.totals.alerts, 2);
        assert_eq!(report.totals.commits, 4);
        assert_eq!(report.totals.events_per_worker, vec![1, 2, 3, 4]);
        assert_eq!(report.peak_rss_bytes, Some(30));
        assert_eq!(report.events_per_second(), 5.0);
        let json = serde_json::to_string(&report).expect("serialize");
        let back: ClusterReport = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.totals, report.totals);
    }

    #[test]
    fn a_cluster_report_merges_the_alert_latency_of_its_processes() {
        let with = |index: usize, value: u64| {
            let mut histogram = Histogram::new();
            histogram.record_n(value, 2);
            ProcessReport {
                alert_latency: Some(histogram),
                ..process(index, vec![1], 10)
            }
        };
        let report = ClusterReport::new(1.0, 1, vec![with(0, 100), with(1, 3_000)]);
        let latency = report.alert_latency.expect("measured");
        assert_eq!(latency.count(), 4);
        assert_eq!(latency.quantile(0.5), 100);
        assert!(latency.max().abs_diff(3_000) <= 3, "within 0.1 %");
        let unmeasured = ClusterReport::new(1.0, 1, vec![process(0, vec![1], 10)]);
        assert!(unmeasured.alert_latency.is_none());
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().is_some_and(|b| b > 1024 * 1024));
        }
    }
}
