//! The figures of a predictions report, accumulated a row at a time: the model's, the
//! rule's and "either's" confusion counts overall and per time bucket, the scores of
//! fraud and non-fraud in bins, the model versions seen and the row counts.
//!
//! A row counts for a classifier when its label and that classifier's verdict are known;
//! "any" (rule OR model) is known when either verdict is fraud or both are known.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tidelake_runtime::model::metrics::Confusion;

/// Bins of the score histograms over 0 to 1.
pub const SCORE_BINS: usize = 20;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;
/// The longest span of event time bucketed by the hour when no bucket is given.
const HOURLY_SPAN_US: i64 = 3 * DAY_US;

/// One row of a predictions table, as the report reads it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Row<'a> {
    /// Event time, µs since the epoch.
    pub dt_us: Option<i64>,
    /// Labelled fraud (true), not fraud (false), or unknown.
    pub label: Option<bool>,
    /// The fraud rule's verdict.
    pub rule_alert: Option<bool>,
    /// The model's probability of fraud.
    pub probability: Option<f64>,
    /// The model's verdict.
    pub prediction: Option<bool>,
    /// The model that scored the row.
    pub model_version: Option<&'a str>,
}

/// A classifier's confusion counts against the labels, with the figures made of them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scores {
    /// The counts.
    #[serde(flatten)]
    pub confusion: Confusion,
    /// Of predicted fraud, the share that is fraud; none without a positive prediction.
    pub precision: Option<f64>,
    /// Of fraud, the share predicted; none without fraud.
    pub recall: Option<f64>,
    /// The harmonic mean of precision and recall (0 if either is 0 or undefined).
    pub f1: f64,
    /// The share of verdicts equal to their label.
    pub accuracy: Option<f64>,
}

impl From<Confusion> for Scores {
    fn from(confusion: Confusion) -> Self {
        Scores {
            confusion,
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            accuracy: confusion.accuracy(),
        }
    }
}

/// One bucket of event time.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// Its start, ms since the epoch.
    pub start_ms: i64,
    /// Its start, RFC 3339 UTC.
    pub start: String,
    /// Rows with an event time in it.
    pub rows: u64,
    /// Of those, the labelled ones.
    pub labelled_rows: u64,
    /// The model on its labelled rows.
    pub model: Scores,
    /// The rule on its labelled rows.
    pub rule: Scores,
}

/// The score histograms of labelled rows: [`SCORE_BINS`] bins of equal width over 0 to
/// 1 (1 in the last; scores outside 0 to 1 in the end bins).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreHistogram {
    /// The width of a bin.
    pub bin_width: f64,
    /// Rows labelled fraud, per bin.
    pub fraud: Vec<u64>,
    /// Rows labelled not fraud, per bin.
    pub not_fraud: Vec<u64>,
}

/// Everything a report shows (`report.json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// The table read.
    pub table: String,
    /// Its version read.
    pub version: u64,
    /// Its rows.
    pub rows: u64,
    /// Its rows with a label.
    pub labelled_rows: u64,
    /// The rows of each model version (rows without one are not counted).
    pub model_versions: BTreeMap<String, u64>,
    /// The earliest event time, RFC 3339.
    pub first_event: Option<String>,
    /// The latest event time, RFC 3339.
    pub last_event: Option<String>,
    /// The width of a time bucket, e.g. `1h`.
    pub bucket: String,
    /// The width of a time bucket in milliseconds (at least 1).
    pub bucket_ms: i64,
    /// The model over every labelled row.
    pub model: Scores,
    /// The rule over every labelled row.
    pub rule: Scores,
    /// Rule OR model over every labelled row.
    pub any: Scores,
    /// The buckets with rows, in time order.
    pub buckets: Vec<Bucket>,
    /// The score histograms.
    pub scores: ScoreHistogram,
}

#[derive(Clone, Copy, Debug, Default)]
struct BucketCounts {
    rows: u64,
    labelled: u64,
    model: Confusion,
    rule: Confusion,
}

/// Accumulates rows into [`Figures`].
#[derive(Debug)]
pub struct Accumulator {
    /// The width rows are bucketed by as they come.
    width_us: i64,
    /// Whether the width was chosen here (an hour, made a day at the end if the span is
    /// longer than three days).
    automatic: bool,
    buckets: BTreeMap<i64, BucketCounts>,
    rows: u64,
    labelled: u64,
    first_us: Option<i64>,
    last_us: Option<i64>,
    model: Confusion,
    rule: Confusion,
    any: Confusion,
    fraud_scores: [u64; SCORE_BINS],
    not_fraud_scores: [u64; SCORE_BINS],
    versions: BTreeMap<String, u64>,
}

impl Accumulator {
    /// An accumulator bucketing time by `bucket` (at least 1 µs), or by the hour or the
    /// day, as the span of event time calls for.
    pub fn new(bucket: Option<Duration>) -> Accumulator {
        let width_us = bucket.map_or(HOUR_US, |b| {
            i64::try_from(b.as_micros()).unwrap_or(i64::MAX).max(1)
        });
        Accumulator {
            width_us,
            automatic: bucket.is_none(),
            buckets: BTreeMap::new(),
            rows: 0,
            labelled: 0,
            first_us: None,
            last_us: None,
            model: Confusion::default(),
            rule: Confusion::default(),
            any: Confusion::default(),
            fraud_scores: [0; SCORE_BINS],
            not_fraud_scores: [0; SCORE_BINS],
            versions: BTreeMap::new(),
        }
    }

    /// Counts `row`.
    pub fn add(&mut self, row: &Row<'_>) {
        self.rows += 1;
        if let Some(version) = row.model_version {
            match self.versions.get_mut(version) {
                Some(rows) => *rows += 1,
                None => {
                    self.versions.insert(version.to_owned(), 1);
                }
            }
        }
        let bucket = row.dt_us.map(|dt| {
            self.first_us = Some(self.first_us.map_or(dt, |t| t.min(dt)));
            self.last_us = Some(self.last_us.map_or(dt, |t| t.max(dt)));
            let counts = self
                .buckets
                .entry(bucket_start(dt, self.width_us))
                .or_default();
            counts.rows += 1;
            counts
        });
        let Some(label) = row.label else {
            return;
        };
        self.labelled += 1;
        let any = match (row.rule_alert, row.prediction) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        };
        add(&mut self.model, row.prediction, label);
        add(&mut self.rule, row.rule_alert, label);
        add(&mut self.any, any, label);
        if let Some(counts) = bucket {
            counts.labelled += 1;
            add(&mut counts.model, row.prediction, label);
            add(&mut counts.rule, row.rule_alert, label);
        }
        if let Some(p) = row.probability.filter(|p| !p.is_nan()) {
            let bin = ((p * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1);
            let bins = if label {
                &mut self.fraud_scores
            } else {
                &mut self.not_fraud_scores
            };
            bins[bin] += 1;
        }
    }

    /// The figures of the rows counted, of version `version` of `table`.
    pub fn finish(self, table: &str, version: u64) -> Figures {
        let span = self.first_us.zip(self.last_us).map(|(a, b)| b - a);
        let width_us = if self.automatic && span.is_some_and(|s| s > HOURLY_SPAN_US) {
            DAY_US
        } else {
            self.width_us
        };
        let mut merged: BTreeMap<i64, BucketCounts> = BTreeMap::new();
        for (start, counts) in self.buckets {
            let into = merged.entry(bucket_start(start, width_us)).or_default();
            into.rows += counts.rows;
            into.labelled += counts.labelled;
            into.model.merge(&counts.model);
            into.rule.merge(&counts.rule);
        }
        let buckets = merged
            .into_iter()
            .map(|(start, counts)| Bucket {
                start_ms: start.div_euclid(1000),
                start: rfc3339(start),
                rows: counts.rows,
                labelled_rows: counts.labelled,
                model: counts.model.into(),
                rule: counts.rule.into(),
            })
            .collect();
        Figures {
            table: table.to_owned(),
            version,
            rows: self.rows,
            labelled_rows: self.labelled,
            model_versions: self.versions,
            first_event: self.first_us.map(rfc3339),
            last_event: self.last_us.map(rfc3339),
            bucket: humantime::format_duration(Duration::from_micros(width_us.unsigned_abs()))
                .to_string(),
            bucket_ms: (width_us / 1000).max(1),
            model: self.model.into(),
            rule: self.rule.into(),
            any: self.any.into(),
            buckets,
            scores: ScoreHistogram {
                bin_width: 1.0 / SCORE_BINS as f64,
                fraud: self.fraud_scores.to_vec(),
                not_fraud: self.not_fraud_scores.to_vec(),
            },
        }
    }
}

/// Counts a verdict, if known, against `label`.
fn add(confusion: &mut Confusion, verdict: Option<bool>, label: bool) {
    if let Some(verdict) = verdict {
        confusion.add(verdict, label);
    }
}

/// The start of the bucket of `width` (µs, from the epoch) holding `t`.
fn bucket_start(t: i64, width: i64) -> i64 {
    t - t.rem_euclid(width)
}

/// `t` (µs since the epoch) as RFC 3339 UTC, to the second unless it has a fraction.
pub fn rfc3339(t_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(t_us).map_or_else(
        || format!("{t_us}µs"),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(dt_us: i64, label: Option<bool>, rule: bool, prediction: bool, p: f64) -> Row<'static> {
        Row {
            dt_us: Some(dt_us),
            label,
            rule_alert: Some(rule),
            probability: Some(p),
            prediction: Some(prediction),
            model_version: Some("v1"),
        }
    }

    #[test]
    fn counts_labelled_rows_per_hour_overall_and_for_either() {
        let mut acc = Accumulator::new(None);
        acc.add(&row(10, Some(true), true, false, 0.3));
        acc.add(&row(20, Some(false), false, true, 1.0));
        acc.add(&row(HOUR_US + 5, Some(true), false, true, 0.99));
        acc.add(&row(HOUR_US + 6, None, true, true, 0.5));
        acc.add(&Row {
            label: Some(true),
            prediction: Some(false),
            ..Row::default()
        });
        let f = acc.finish("t", 3);
        assert_eq!((f.rows, f.labelled_rows), (5, 4));
        assert_eq!(f.model_versions, BTreeMap::from([("v1".to_owned(), 4)]));
        assert_eq!(f.bucket, "1h");
        assert_eq!(
            f.buckets
                .iter()
                .map(|b| (b.start_ms, b.rows, b.labelled_rows))
                .collect::<Vec<_>>(),
            [(0, 2, 2), (3_600_000, 2, 1)]
        );
        assert_eq!(f.buckets[0].model.precision, Some(0.0));
        assert_eq!(f.buckets[0].rule.recall, Some(1.0));
        // The undated row counts overall, where its rule verdict is unknown.
        assert_eq!(f.model.confusion.false_negatives, 2);
        assert_eq!(f.rule.confusion.total(), 3);
        // Either: (rule or model) is true for the first three, unknown for the last.
        assert_eq!(f.any.confusion.true_positives, 2);
        assert_eq!(f.any.confusion.false_positives, 1);
        assert_eq!(f.any.confusion.total(), 3);
        assert_eq!(f.scores.fraud[6] + f.scores.fraud[19], 2);
        assert_eq!(f.scores.not_fraud[19], 1, "1.0 is in the last bin");
        assert_eq!(
            f.first_event.as_deref(),
            Some("1970-01-01T00:00:00.000010Z")
        );
    }

    #[test]
    fn a_long_span_is_bucketed_by_day_unless_a_bucket_is_given() {
        let rows = [
            row(-1, Some(true), true, true, 0.9),
            row(4 * DAY_US, Some(false), false, false, 0.1),
        ];
        let mut auto = Accumulator::new(None);
        let mut given = Accumulator::new(Some(Duration::from_secs(3600)));
        for r in &rows {
            auto.add(r);
            given.add(r);
        }
        let auto = auto.finish("t", 0);
        assert_eq!(auto.bucket, "1day");
        let starts: Vec<i64> = auto.buckets.iter().map(|b| b.start_ms).collect();
        assert_eq!(starts, [-86_400_000, 4 * 86_400_000]);
        assert_eq!(given.finish("t", 0).bucket, "1h");
    }
}
