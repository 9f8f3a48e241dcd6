//! Alert latency in ingestion mode: from the large transaction entering the source to
//! its alert leaving the fraud operator, in a log-linear histogram per worker.
//!
//! In ingestion mode a record's rule time is the wall-clock millisecond at which the
//! source read it, and the fraud operator emits an alert at the tick of its large
//! transaction's rule time. So when an alert batch leaves the operator at timely time
//! `t`, each alert's latency is (wall clock now, µs) − `t` × 1000. The source reads the
//! clock before the records of an activation and the tick floors the time, so the
//! figure is conservative: it overstates the latency by less than one tick (with a
//! `1ms` tick, by less than 1 ms).

use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::operators::Inspect;

/// Significant decimal digits the histogram keeps: values within 0.1 %.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A histogram of `u64` values (microseconds here), kept to [`SIGNIFICANT_DIGITS`]: an
/// HDR histogram that grows to whatever range is recorded.
#[derive(Clone, Debug)]
pub struct Histogram(hdrhistogram::Histogram<u64>);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(
            hdrhistogram::Histogram::new(SIGNIFICANT_DIGITS)
                .expect("3 significant digits is a valid HDR histogram precision"),
        )
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `n` occurrences of `value` (the histogram grows to hold it; a value
    /// beyond any range it can grow to is recorded as its largest).
    pub fn record_n(&mut self, value: u64, n: u64) {
        if self.0.record_n(value, n).is_err() {
            self.0.saturating_record_n(value, n);
        }
    }

    /// Every value of `parts`, in one histogram.
    pub fn merged<H: Deref<Target = Histogram>>(parts: impl IntoIterator<Item = H>) -> Self {
        let mut all = Histogram::new();
        for part in parts {
            all.merge(&part);
        }
        all
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        self.0
            .add(&other.0)
            .expect("an auto-resizing histogram takes any other");
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The largest value recorded (within 0.1 %), 0 when empty.
    pub fn max(&self) -> u64 {
        if self.count() == 0 { 0 } else { self.0.max() }
    }

    /// The value at quantile `q` (0 to 1), 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count() == 0 {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    /// Count, mean, p50, p99, p99.9 and max.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count(),
            mean_us: if self.count() == 0 {
                0.0
            } else {
                self.0.mean()
            },
            p50_us: self.quantile(0.50),
            p99_us: self.quantile(0.99),
            p999_us: self.quantile(0.999),
            max_us: self.max(),
        }
    }
}

/// As a list of `[value, count]` pairs, one per recorded bucket, for reports that are
/// merged later (the processes of a cluster).
impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .iter_recorded()
                .map(|bucket| [bucket.value_iterated_to(), bucket.count_at_value()]),
        )
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut histogram = Histogram::new();
        for [value, count] in Vec::<[u64; 2]>::deserialize(deserializer)? {
            histogram.record_n(value, count);
        }
        Ok(histogram)
    }
}

/// What a latency histogram says, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Values recorded (alerts).
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// `p50 1.90 ms, p99 2.28 ms, p99.9 3.56 ms, max 21.47 ms`.
impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |us: u64| us as f64 / 1000.0;
        write!(
            f,
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            ms(self.p50_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.max_us)
        )
    }
}

/// The alert latency of a job: one histogram per local worker, merged at the end.
#[derive(Debug)]
pub struct AlertLatency {
    workers: Vec<Mutex<Histogram>>,
}

impl AlertLatency {
    /// Histograms for `workers` local workers.
    pub fn new(workers: usize) -> Self {
        AlertLatency {
            workers: (0..workers).map(|_| Mutex::default()).collect(),
        }
    }

    /// Records `alerts` alerts of rule-time tick `tick_ms` leaving worker `slot`'s fraud
    /// operator now.
    pub fn record(&self, slot: usize, tick_ms: u64, alerts: u64) {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let latency = now_us.saturating_sub(tick_ms.saturating_mul(1000));
        self.workers[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record_n(latency, alerts);
    }

    /// Every worker's histogram, merged.
    pub fn merged(&self) -> Histogram {
        Histogram::merged(
            self.workers
                .iter()
                .map(|w| w.lock().unwrap_or_else(PoisonError::into_inner)),
        )
    }
}

/// Passes the alerts of worker `slot` through, recording their latency in `latency` if
/// it is given.
pub fn measure<'s, D: Clone + 'static>(
    alerts: StreamVec<'s, u64, D>,
    latency: Option<&Arc<AlertLatency>>,
    slot: usize,
) -> StreamVec<'s, u64, D> {
    let Some(latency) = latency.cloned() else {
        return alerts;
    };
    alerts.inspect_core(move |event| {
        if let Ok((stamp, batch)) = event
            && let Some(&tick_ms) = stamp.least()
        {
            latency.record(slot, tick_ms, batch.len() as u64);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_values_are_kept_to_three_digits() {
        for value in [123_456_789u64, 1_000_000_000_000_000] {
            let mut h = Histogram::new();
            h.record_n(value, 1);
            let error = h.quantile(1.0).abs_diff(value);
            assert!(error as f64 <= value as f64 / 1000.0, "{value}: {error}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record_n(v, 1);
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max_us, 1000);
        assert!((s.mean_us - 500.5).abs() < 1e-9);
        assert!((500..=504).contains(&s.p50_us), "{s:?}");
        assert!((990..=998).contains(&s.p99_us), "{s:?}");
        assert!(s.p50_us <= s.p99_us && s.p99_us <= s.p999_us && s.p999_us <= s.max_us);
        assert_eq!(Histogram::new().summary(), LatencySummary::default());
    }

    #[test]
    fn a_histogram_reads_back_from_json_as_it_was() {
        let mut h = Histogram::new();
        for (v, n) in [(7, 3), (1_500, 2), (123_456_789, 1)] {
            h.record_n(v, n);
        }
        let json = serde_json::to_string(&h).expect("serialize");
        let back: Histogram = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.summary(), h.summary());
        assert_eq!(back.count(), 6);
    }

    #[test]
    fn per_worker_histograms_merge() {
        let latency = AlertLatency::new(2);
        latency.workers[0].lock().expect("lock").record_n(10, 3);
        latency.workers[1].lock().expect("lock").record_n(2_000, 1);
        let all = latency.merged();
        assert_eq!(all.count(), 4);
        assert_eq!(all.max(), 2_000);
        assert_eq!(all.quantile(0.5), 10);
    }
}
