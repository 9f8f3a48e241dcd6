//! The four charts of a predictions report, drawn from its [`Figures`] as SVG text.

use chrono::DateTime;
use plotters::style::RGBColor;

use super::figures::{Figures, Scores};
use crate::plot::{self, ANY_COLOR, BarGroup, Bins, Line, MODEL_COLOR, RULE_COLOR};

/// The bars of rows labelled fraud.
const FRAUD_COLOR: RGBColor = RGBColor(220, 38, 38);
/// The bars of rows labelled not fraud.
const NOT_FRAUD_COLOR: RGBColor = RGBColor(100, 116, 139);

/// The charts of a report, as SVG documents.
#[derive(Clone, Debug)]
pub struct Charts {
    /// Precision and recall of the model and the rule per time bucket.
    pub precision_recall: String,
    /// The confusion matrices of the model and the rule.
    pub confusion: String,
    /// The score histograms of fraud and non-fraud.
    pub scores: String,
    /// Precision, recall and F1 of the rule, the model and either.
    pub rule_vs_model: String,
}

impl Charts {
    /// The charts of `figures`.
    pub fn draw(figures: &Figures) -> anyhow::Result<Charts> {
        Ok(Charts {
            precision_recall: precision_recall(figures)?,
            confusion: plot::confusion_matrices(&[
                ("Model", figures.model.confusion),
                ("Rule", figures.rule.confusion),
            ])?,
            scores: scores(figures)?,
            rule_vs_model: rule_vs_model(figures)?,
        })
    }

    /// Each chart with the name of its file (`--out DIR`).
    pub fn files(&self) -> [(&'static str, &str); 4] {
        [
            ("precision_recall.svg", &self.precision_recall),
            ("confusion.svg", &self.confusion),
            ("scores.svg", &self.scores),
            ("rule_vs_model.svg", &self.rule_vs_model),
        ]
    }
}

fn precision_recall(figures: &Figures) -> anyhow::Result<String> {
    // x counts buckets from the first, so the axis ticks fall on bucket starts.
    let origin = figures.buckets.first().map_or(0, |b| b.start_ms);
    let width = figures.bucket_ms as f64;
    let line = |name: &str, color, dashed, value: fn(&Scores) -> Option<f64>, rule: bool| Line {
        name: name.to_owned(),
        color,
        dashed,
        points: figures
            .buckets
            .iter()
            .map(|b| {
                let scores = if rule { &b.rule } else { &b.model };
                ((b.start_ms - origin) as f64 / width, value(scores))
            })
            .collect(),
    };
    let daily = figures.bucket_ms % 86_400_000 == 0;
    let x_label = |x: f64| {
        let ms = origin as f64 + x * width;
        DateTime::from_timestamp_millis(ms.round() as i64).map_or_else(String::new, |t| {
            if daily {
                t.format("%Y-%m-%d").to_string()
            } else {
                t.format("%m-%d %H:%M").to_string()
            }
        })
    };
    plot::lines(
        &format!(
            "Precision and recall per {} of event time (labelled rows)",
            figures.bucket
        ),
        "share",
        &x_label,
        &[
            line(
                "model precision",
                MODEL_COLOR,
                false,
                |s| s.precision,
                false,
            ),
            line("model recall", MODEL_COLOR, true, |s| s.recall, false),
            line("rule precision", RULE_COLOR, false, |s| s.precision, true),
            line("rule recall", RULE_COLOR, true, |s| s.recall, true),
        ],
    )
}

fn scores(figures: &Figures) -> anyhow::Result<String> {
    let histogram = &figures.scores;
    let fraud = histogram.fraud.iter().sum::<u64>();
    let not_fraud = histogram.not_fraud.iter().sum::<u64>();
    plot::log_histograms(
        "probability of fraud (the model's score)",
        &[
            Bins {
                title: &format!("Scores of rows labelled fraud ({fraud})"),
                color: FRAUD_COLOR,
                lo: 0.0,
                hi: 1.0,
                counts: &histogram.fraud,
            },
            Bins {
                title: &format!("Scores of rows labelled not fraud ({not_fraud})"),
                color: NOT_FRAUD_COLOR,
                lo: 0.0,
                hi: 1.0,
                counts: &histogram.not_fraud,
            },
        ],
    )
}

fn rule_vs_model(figures: &Figures) -> anyhow::Result<String> {
    let group = |name: &str, color, scores: &Scores| BarGroup {
        name: name.to_owned(),
        color,
        values: vec![scores.precision, scores.recall, Some(scores.f1)],
    };
    plot::grouped_bars(
        "The rule against the model (labelled rows)",
        &["precision", "recall", "F1"],
        &[
            group("rule", RULE_COLOR, &figures.rule),
            group("model", MODEL_COLOR, &figures.model),
            group("any (rule or model)", ANY_COLOR, &figures.any),
        ],
    )
}
