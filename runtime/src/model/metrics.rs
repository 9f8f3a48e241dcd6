//! How good a classifier's predictions are against the labels (docs/scoring.md §2): the
//! confusion matrix and the figures made from it, and the ROC AUC of its scores.

use serde::{Deserialize, Serialize};

/// The four counts of predictions against labels.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct Confusion {
    /// Predicted fraud, labelled fraud.
    pub true_positives: u64,
    /// Predicted fraud, labelled not fraud.
    pub false_positives: u64,
    /// Predicted not fraud, labelled not fraud.
    pub true_negatives: u64,
    /// Predicted not fraud, labelled fraud.
    pub false_negatives: u64,
}

impl Confusion {
    /// Counts one prediction against its label.
    #[inline]
    pub fn add(&mut self, prediction: bool, label: bool) {
        self.add_many(prediction, label, 1);
    }

    /// Counts `n` equal predictions against their label.
    #[inline]
    pub fn add_many(&mut self, prediction: bool, label: bool, n: u64) {
        match (prediction, label) {
            (true, true) => self.true_positives += n,
            (true, false) => self.false_positives += n,
            (false, false) => self.true_negatives += n,
            (false, true) => self.false_negatives += n,
        }
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &Confusion) {
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.true_negatives += other.true_negatives;
        self.false_negatives += other.false_negatives;
    }

    /// The predictions equal to their label.
    pub fn correct(&self) -> u64 {
        self.true_positives + self.true_negatives
    }

    /// All predictions counted.
    pub fn total(&self) -> u64 {
        self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
    }

    /// The share of predicted fraud that is fraud; none without a positive prediction.
    pub fn precision(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// The share of fraud predicted; none without fraud.
    pub fn recall(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// The harmonic mean of precision and recall (0 when either is 0 or undefined, as
    /// scikit-learn's `zero_division=0`).
    pub fn f1(&self) -> f64 {
        let denominator = 2 * self.true_positives + self.false_positives + self.false_negatives;
        ratio(2 * self.true_positives, denominator).unwrap_or(0.0)
    }

    /// The share of predictions equal to their label.
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.correct(), self.total())
    }
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// The area under the ROC curve of `scored` (score, label): the probability that a
/// random fraud scores above a random non-fraud, ties counting half (the Mann–Whitney
/// statistic, as scikit-learn's `roc_auc_score`). None unless both classes occur.
/// Sorts `scored`.
pub fn roc_auc(scored: &mut [(f64, bool)]) -> Option<f64> {
    scored.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let positives = scored.iter().filter(|s| s.1).count() as f64;
    let negatives = scored.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Sum of the positives' ranks (1-based), ties given their average rank.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < scored.len() {
        let end = start + scored[start..].partition_point(|s| s.0 <= scored[start].0);
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = scored[start..end].iter().filter(|s| s.1).count() as f64;
        rank_sum += average_rank * tied_positives;
        start = end;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_figures() {
        let mut c = Confusion::default();
        for (p, l) in [
            (true, true),
            (true, false),
            (false, true),
            (false, false),
            (true, true),
        ] {
            c.add(p, l);
        }
        assert_eq!(c.total(), 5);
        assert_eq!(c.precision(), Some(2.0 / 3.0));
        assert_eq!(c.recall(), Some(2.0 / 3.0));
        assert!((c.f1() - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(c.accuracy(), Some(3.0 / 5.0));
        assert_eq!(Confusion::default().precision(), None);
        assert_eq!(Confusion::default().f1(), 0.0);
    }

    #[test]
    fn roc_auc_counts_pairs_and_ties() {
        // Perfect, inverse, all tied.
        assert_eq!(roc_auc(&mut [(0.1, false), (0.9, true)]), Some(1.0));
        assert_eq!(roc_auc(&mut [(0.9, false), (0.1, true)]), Some(0.0));
        assert_eq!(roc_auc(&mut [(0.5, false), (0.5, true)]), Some(0.5));
        // scikit-learn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        let mut s = [(0.1, false), (0.4, false), (0.35, true), (0.8, true)];
        assert_eq!(roc_auc(&mut s), Some(0.75));
        assert_eq!(roc_auc(&mut [(0.3, true)]), None);
    }
}
