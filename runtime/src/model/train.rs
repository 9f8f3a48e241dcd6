//! Training the fraud classifier (`tidelake train`, docs/scoring.md §2): the labelled rows
//! of a features table, split by event time into the rows trained on and the latest ones
//! held out, each feature standardized on the training rows, a logistic regression with
//! an L2 penalty fitted by smartcore (L-BFGS), the decision threshold chosen, and the
//! model and the fraud rule measured on the held-out rows.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, TimestampMicrosecondType};
use smartcore::linalg::basic::arrays::Array as _;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};
use tidelake_operators::time::format_millis;
use tidelake_sinks::delta::DeltaTable;
use tidelake_sinks::delta::files::reader::{open_data_file, scan};

use super::features::{self, Feature, Inputs};
use super::file::{
    AtThreshold, FORMAT, FORMAT_VERSION, Figures, Model, ModelKind, ScaledFeature, Training,
};
use super::metrics::{Confusion, roc_auc};

/// Why a model cannot be trained.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The table cannot be read.
    #[error(transparent)]
    Table(#[from] tidelake_sinks::delta::DeltaError),
    /// The table lacks what training needs, or the options are wrong.
    #[error("{0}")]
    Invalid(String),
    /// The solver failed.
    #[error("the logistic regression cannot be fitted: {0}")]
    Fit(String),
}

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The share of labelled rows (the latest by event time) held out.
    pub holdout: f64,
    /// The L2 penalty on the coefficients (of the summed log-loss).
    pub l2: f64,
    /// How the threshold is chosen.
    pub threshold: ThresholdChoice,
}

/// How the decision threshold is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdChoice {
    /// This threshold.
    Fixed(f64),
    /// The threshold with the greatest recall on the training rows whose precision there
    /// is at least this.
    TargetPrecision(f64),
}

/// The labelled rows of a table, by column: what a model is fitted and measured on.
#[derive(Debug, Default)]
pub struct Rows {
    /// The table's version read.
    pub table_version: u64,
    /// Rows read, labelled or not.
    pub read: u64,
    /// Event time, ms.
    pub ts: Vec<u64>,
    /// The labels.
    pub label: Vec<bool>,
    /// The rule's verdicts.
    pub rule: Vec<bool>,
    /// The features read.
    pub features: Vec<&'static Feature>,
    /// Each feature's values, in the order of `features`.
    pub values: Vec<Vec<f64>>,
    /// Each feature's labelled rows where what it reads is not null.
    pub present: Vec<u64>,
}

/// Reads the labelled rows of `table` with the values of `features`.
pub async fn read_rows(
    table: &DeltaTable,
    features: &[&'static Feature],
) -> Result<Rows, TrainError> {
    let scan = scan(table).await?;
    let mut needed = vec!["dt", "label", "ruleAlert"];
    needed.extend(features.iter().flat_map(|f| f.columns.iter().copied()));
    for column in &needed {
        if scan.schema.field_with_name(column).is_err() {
            let readers: Vec<&str> = features
                .iter()
                .filter(|f| f.columns.contains(column))
                .map(|f| f.name)
                .collect();
            let why = if readers.is_empty() {
                String::new()
            } else {
                format!(" (feature {} reads it)", readers.join(", "))
            };
            return Err(TrainError::Invalid(format!(
                "table {}: no column `{column}`{why}; train on the features table `tidelake run --rule features` writes",
                table.location()
            )));
        }
    }
    // Only the columns the features read are decoded.
    let fields: Vec<_> = scan
        .schema
        .fields()
        .iter()
        .filter(|f| needed.contains(&f.name().as_str()))
        .cloned()
        .collect();
    let schema = Arc::new(arrow::datatypes::Schema::new(fields));
    let mut rows = Rows {
        table_version: scan.version,
        features: features.to_vec(),
        values: vec![Vec::new(); features.len()],
        present: vec![0; features.len()],
        ..Rows::default()
    };
    for add in &scan.files {
        for batch in open_data_file(table, add, &schema).await? {
            let batch = batch?;
            rows.append(&batch)
                .map_err(|e| TrainError::Invalid(format!("table {}: {e}", table.location())))?;
        }
    }
    Ok(rows)
}

impl Rows {
    /// Keeps the features `keep` accepts, given each and the number of rows where what
    /// it reads is not null.
    pub fn retain_features(&mut self, keep: impl Fn(&Feature, u64) -> bool) {
        let features = std::mem::take(&mut self.features);
        let values = std::mem::take(&mut self.values);
        let present = std::mem::take(&mut self.present);
        for ((feature, values), present) in features.into_iter().zip(values).zip(present) {
            if keep(feature, present) {
                self.features.push(feature);
                self.values.push(values);
                self.present.push(present);
            }
        }
    }

    /// Appends the labelled rows of `batch`.
    fn append(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let columns = Columns::of(batch)?;
        self.read += batch.num_rows() as u64;
        for row in 0..batch.num_rows() {
            let (Some(label), Some(ts)) = (columns.label(row), columns.ts(row)) else {
                continue;
            };
            let inputs = columns.inputs(row);
            self.ts.push(ts);
            self.label.push(label);
            self.rule.push(inputs.rule_alert);
            for (j, feature) in self.features.iter().enumerate() {
                let value = (feature.value)(&inputs);
                self.present[j] += u64::from(value.is_some());
                self.values[j].push(value.unwrap_or(feature.missing));
            }
        }
        Ok(())
    }
}

/// A batch's columns of the features table, as the features read them (absent ones
/// null).
struct Columns {
    dt: Option<Arc<dyn Array>>,
    label: Option<Arc<dyn Array>>,
    doubles: [Option<Arc<dyn Array>>; 12],
    rule_alert: Option<Arc<dyn Array>>,
    foreign_country: Option<Arc<dyn Array>>,
}

/// The numeric columns, in the order [`Columns::doubles`] holds them.
const DOUBLES: [&str; 12] = [
    "amount",
    "txCount1h",
    "txCount24h",
    "txCount30d",
    "txSum1h",
    "txSum24h",
    "txSum30d",
    "msSincePrev",
    "prevAmount",
    "countries24h",
    "birthYear",
    "creditLimit",
];

impl Columns {
    fn of(batch: &RecordBatch) -> Result<Self, String> {
        let as_type = |name: &str, to: &DataType| -> Result<Option<Arc<dyn Array>>, String> {
            batch
                .column_by_name(name)
                .map(|c| cast(c, to).map_err(|e| format!("column `{name}`: {e}")))
                .transpose()
        };
        let mut doubles: [Option<Arc<dyn Array>>; 12] = Default::default();
        for (slot, name) in doubles.iter_mut().zip(DOUBLES) {
            *slot = as_type(name, &DataType::Float64)?;
        }
        let dt = batch
            .column_by_name("dt")
            .map(|c| {
                c.as_primitive_opt::<TimestampMicrosecondType>()
                    .map(|_| Arc::clone(c))
                    .ok_or_else(|| format!("column `dt` is {}, not a timestamp", c.data_type()))
            })
            .transpose()?;
        Ok(Columns {
            dt,
            label: as_type("label", &DataType::Int64)?,
            doubles,
            rule_alert: as_type("ruleAlert", &DataType::Boolean)?,
            foreign_country: as_type("foreignCountry", &DataType::Boolean)?,
        })
    }

    fn ts(&self, row: usize) -> Option<u64> {
        let dt = self.dt.as_ref()?.as_primitive::<TimestampMicrosecondType>();
        dt.is_valid(row)
            .then(|| u64::try_from(dt.value(row).div_euclid(1000)).unwrap_or(0))
    }

    fn label(&self, row: usize) -> Option<bool> {
        let label = self
            .label
            .as_ref()?
            .as_primitive::<arrow::datatypes::Int64Type>();
        label.is_valid(row).then(|| label.value(row) != 0)
    }

    fn double(&self, index: usize, row: usize) -> Option<f64> {
        let column = self.doubles[index].as_ref()?.as_primitive::<Float64Type>();
        column.is_valid(row).then(|| column.value(row))
    }

    fn flag(column: Option<&Arc<dyn Array>>, row: usize) -> Option<bool> {
        let column = column?.as_boolean();
        column.is_valid(row).then(|| column.value(row))
    }

    fn inputs(&self, row: usize) -> Inputs {
        let d = |i: usize| self.double(i, row);
        Inputs {
            amount: d(0).unwrap_or(0.0),
            rule_alert: Self::flag(self.rule_alert.as_ref(), row).unwrap_or(false),
            tx_counts: [d(1), d(2), d(3)].map(|v| v.unwrap_or(0.0)),
            tx_sums: [d(4), d(5), d(6)].map(|v| v.unwrap_or(0.0)),
            ms_since_prev: d(7),
            prev_amount: d(8),
            countries_24h: d(9),
            foreign_country: Self::flag(self.foreign_country.as_ref(), row),
            birth_year: d(10),
            credit_limit: d(11),
        }
    }
}

/// The catalog's features named `names`; an error naming those it lacks.
pub fn catalog_features(names: &[String]) -> Result<Vec<&'static Feature>, TrainError> {
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| features::feature(n).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = features::CATALOG.iter().map(|f| f.name).collect();
        return Err(TrainError::Invalid(format!(
            "unknown features: {} (known: {})",
            unknown.join(", "),
            known.join(", ")
        )));
    }
    if names.is_empty() {
        return Err(TrainError::Invalid("no features to train on".into()));
    }
    Ok(names.iter().filter_map(|n| features::feature(n)).collect())
}

/// Fits a model to `rows` (read from `table`).
pub fn fit(rows: &Rows, table: &str, options: &TrainOptions) -> Result<Model, TrainError> {
    if !(0.0 < options.holdout && options.holdout < 1.0) {
        return Err(TrainError::Invalid(
            "--holdout must be between 0 and 1".into(),
        ));
    }
    let split = split_time(&rows.ts, options.holdout)
        .ok_or_else(|| TrainError::Invalid(format!("table {table}: no labelled rows")))?;
    let train: Vec<usize> = (0..rows.ts.len()).filter(|&i| rows.ts[i] < split).collect();
    let held: Vec<usize> = (0..rows.ts.len())
        .filter(|&i| rows.ts[i] >= split)
        .collect();
    let fraud = train.iter().filter(|&&i| rows.label[i]).count();
    if fraud == 0 || fraud == train.len() {
        return Err(TrainError::Invalid(format!(
            "table {table}: the {} training rows (before {}) need both fraud and non-fraud labels",
            train.len(),
            format_millis(split)
        )));
    }

    let features: Vec<ScaledFeature> = rows
        .features
        .iter()
        .zip(&rows.values)
        .map(|(feature, values)| scaled(feature, values, &train))
        .collect();
    let (coefficients, intercept) = fit_logistic(rows, &features, &train, options.l2)?;

    // The threshold is chosen and the model measured with the same arithmetic as scoring.
    let mut model = Model {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        model_version: String::new(),
        kind: ModelKind::LogisticRegression,
        features,
        coefficients,
        intercept,
        threshold: 0.5,
        training: Training {
            table: table.to_owned(),
            table_version: rows.table_version,
            trained_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            rows: rows.read,
            train_rows: train.len() as u64,
            held_out_rows: held.len() as u64,
            held_out_from: format_millis(split),
            l2: options.l2,
            threshold_from: String::new(),
            model: Figures::default(),
            rule: Figures::default(),
            model_at_rule_precision: None,
        },
    };
    let probabilities = model.probabilities(&rows.values);
    let probability = |i: usize| probabilities[i];
    let (threshold, from) = match options.threshold {
        ThresholdChoice::Fixed(t) => (t, format!("--threshold {t}")),
        ThresholdChoice::TargetPrecision(p) => {
            let scored: Vec<(f64, bool)> = train
                .iter()
                .map(|&i| (probability(i), rows.label[i]))
                .collect();
            let at = best_recall_at_precision(&scored, p).ok_or_else(|| {
                TrainError::Invalid(format!(
                    "no threshold reaches precision {p} on the training rows"
                ))
            })?;
            (at.threshold, format!("--target-precision {p}"))
        }
    };
    let held_scores: Vec<(f64, bool)> = held
        .iter()
        .map(|&i| (probability(i), rows.label[i]))
        .collect();
    let rule_scores: Vec<(f64, bool)> = held
        .iter()
        .map(|&i| (if rows.rule[i] { 1.0 } else { 0.0 }, rows.label[i]))
        .collect();
    let model_figures = figures(&held_scores, threshold);
    let rule_figures = figures(&rule_scores, 1.0);
    model.training.model_at_rule_precision = rule_figures
        .precision
        .and_then(|p| best_recall_at_precision(&held_scores, p));
    model.training.model = model_figures;
    model.training.rule = rule_figures;
    model.training.threshold_from = from;
    model.threshold = threshold;
    model.model_version = Model::version_of(
        &model.features,
        &model.coefficients,
        model.intercept,
        model.threshold,
    );
    Ok(model)
}

/// The event time from which the latest `holdout` share of `ts` lies (none if empty).
fn split_time(ts: &[u64], holdout: f64) -> Option<u64> {
    if ts.is_empty() {
        return None;
    }
    let mut sorted = ts.to_vec();
    let at = ((sorted.len() as f64) * (1.0 - holdout)).floor() as usize;
    let at = at.min(sorted.len() - 1);
    let (_, split, _) = sorted.select_nth_unstable(at);
    Some(*split)
}

/// The scaling of `feature` from its values at `rows`: their mean and (population)
/// standard deviation, 1 if they are all equal.
fn scaled(feature: &Feature, values: &[f64], rows: &[usize]) -> ScaledFeature {
    let n = rows.len() as f64;
    let mean = rows.iter().map(|&i| values[i]).sum::<f64>() / n;
    let variance = rows
        .iter()
        .map(|&i| (values[i] - mean).powi(2))
        .sum::<f64>()
        / n;
    let sd = variance.sqrt();
    ScaledFeature {
        name: feature.name.to_owned(),
        missing: feature.missing,
        mean,
        scale: if sd > 0.0 && sd.is_finite() { sd } else { 1.0 },
    }
}

/// Fits the logistic regression on the scaled values of the `train` rows: its
/// coefficients and intercept.
fn fit_logistic(
    rows: &Rows,
    features: &[ScaledFeature],
    train: &[usize],
    l2: f64,
) -> Result<(Vec<f64>, f64), TrainError> {
    let mut matrix = Vec::with_capacity(train.len() * features.len());
    for (values, f) in rows.values.iter().zip(features) {
        matrix.extend(train.iter().map(|&i| (values[i] - f.mean) / f.scale));
    }
    let x = DenseMatrix::new(train.len(), features.len(), matrix, true)
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    let y: Vec<i32> = train.iter().map(|&i| i32::from(rows.label[i])).collect();
    let parameters = LogisticRegressionParameters::default().with_alpha(l2);
    let fitted =
        LogisticRegression::fit(&x, &y, parameters).map_err(|e| TrainError::Fit(e.to_string()))?;
    // Classes are sorted: 0 then 1, so the coefficients are for fraud.
    let coefficients = (0..features.len())
        .map(|j| *fitted.coefficients().get((0, j)))
        .collect();
    let intercept = *fitted.intercept().get((0, 0));
    Ok((coefficients, intercept))
}

/// A classifier's figures on `scored` (score, label) predicting fraud at scores ≥
/// `threshold`.
fn figures(scored: &[(f64, bool)], threshold: f64) -> Figures {
    let mut confusion = Confusion::default();
    for &(score, label) in scored {
        confusion.add(score >= threshold, label);
    }
    Figures {
        confusion,
        precision: confusion.precision(),
        recall: confusion.recall(),
        f1: confusion.f1(),
        roc_auc: roc_auc(&mut scored.to_vec()),
    }
}

/// Among the thresholds that are scores of `scored`, the one with the greatest recall
/// whose precision is at least `min_precision` (the highest such threshold among equal
/// recalls); none if no threshold reaches it.
pub fn best_recall_at_precision(scored: &[(f64, bool)], min_precision: f64) -> Option<AtThreshold> {
    let positives = scored.iter().filter(|s| s.1).count();
    if positives == 0 {
        return None;
    }
    let mut sorted = scored.to_vec();
    sorted.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best: Option<AtThreshold> = None;
    let mut i = 0;
    while i < sorted.len() {
        let threshold = sorted[i].0;
        while i < sorted.len() && sorted[i].0 == threshold {
            if sorted[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let precision = tp as f64 / (tp + fp) as f64;
        let recall = tp as f64 / positives as f64;
        if precision >= min_precision && best.as_ref().is_none_or(|b| recall > b.recall) {
            best = Some(AtThreshold {
                threshold,
                precision,
                recall,
            });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_recall_at_a_precision_is_found_among_the_scores() {
        let scored = [
            (0.9, true),
            (0.8, true),
            (0.7, false),
            (0.6, true),
            (0.5, false),
            (0.4, true),
        ];
        let at = best_recall_at_precision(&scored, 0.75).expect("reached");
        assert_eq!((at.threshold, at.precision, at.recall), (0.6, 0.75, 0.75));
        let at = best_recall_at_precision(&scored, 1.0).expect("reached");
        assert_eq!((at.threshold, at.recall), (0.8, 0.5));
        assert!(best_recall_at_precision(&[(0.5, false)], 0.5).is_none());
    }

    #[test]
    fn the_split_holds_out_the_latest_rows() {
        let ts: Vec<u64> = (0..100).rev().collect();
        assert_eq!(split_time(&ts, 0.2), Some(80));
        assert_eq!(split_time(&[], 0.2), None);
    }

    #[test]
    fn fits_a_separable_signal() {
        // Fraud iff x > 0.6, with noise-free labels: the coefficient is positive and the
        // held-out rows are predicted right.
        let n = 2000;
        let xs: Vec<f64> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
            .collect();
        let rows = Rows {
            table_version: 0,
            read: n as u64,
            ts: (0..n as u64).collect(),
            label: xs.iter().map(|&x| x > 0.6).collect(),
            rule: vec![false; n],
            features: vec![features::feature("amount").expect("in the catalog")],
            values: vec![xs],
            present: vec![n as u64],
        };
        let options = TrainOptions {
            holdout: 0.25,
            l2: 1.0,
            threshold: ThresholdChoice::Fixed(0.5),
        };
        let model = fit(&rows, "t", &options).expect("fit");
        assert!(model.coefficients[0] > 1.0, "{model:?}");
        assert_eq!(
            model.training.train_rows + model.training.held_out_rows,
            n as u64
        );
        assert!(model.training.model.roc_auc.expect("both classes") > 0.99);
        assert!(model.training.model.f1 > 0.95, "{:?}", model.training.model);
    }
}
