//! The model's quality over time (docs/scoring.md §5): per account and hour of event
//! time, how many transactions were scored, how many have a label, how many predictions
//! were right, the false positives and the false negatives — kept by differential
//! dataflow as labels arrive, so that a late label (`--labels`) corrects exactly the
//! figures it affects, and written as a changelog.
//!
//! A transaction's label is the one `--labels` gives for its `(accountId, ts)` — fraud
//! if any of its labels says fraud — or else its own (`label` of the record), or none.
//! Each change of an hour's figures is a `delete` of the old row and an `insert` of the
//! new one, at the tick the change happened.

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::dataflow::operators::vec::Map;

use differential_dataflow::AsCollection;
use tidelake_operators::AccountId;
use tidelake_operators::history::HOUR;

use super::metrics::Confusion;
use super::score::Scored;
use crate::reference::input::{JoinFrontier, Update};
use crate::reference::labels::TransactionKey;

/// What is known of a transaction: a prediction (with the record's own label), or a
/// label from `--labels`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Known {
    Label(bool),
    Prediction {
        prediction: bool,
        label: Option<bool>,
    },
}

/// The figures of one account's hour.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct HourFigures {
    /// Transactions scored.
    pub count: u64,
    /// The predictions of those with a label against it: `total()` is the labelled
    /// ones, `correct()` those right, `accuracy()` the true prediction rate.
    pub labelled: Confusion,
}

/// A change of the quality figures: a row of the `fraud_model_quality` table.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityChange {
    /// The account.
    pub account_id: AccountId,
    /// The hour's start, ms.
    pub hour: u64,
    /// Its figures.
    pub figures: HourFigures,
    /// An insert (the figures from now on), or a delete (the figures until now).
    pub insert: bool,
    /// The tick (event time, ms) of the change.
    pub at: u64,
}

/// The quality figures of `scored` with the labels `labels` (and the link their input
/// follows), as changes.
pub fn model_quality<'s>(
    scored: StreamVec<'s, u64, Scored>,
    labels: StreamVec<'s, u64, Update<(TransactionKey, bool)>>,
    follow: JoinFrontier,
) -> StreamVec<'s, u64, QualityChange> {
    let predictions = scored
        .unary_frontier::<CapacityContainerBuilder<Vec<Update<(TransactionKey, Known)>>>, _, _, _>(
            Pipeline,
            "QualityPredictions",
            move |_, _| {
                move |(input, frontier), output| {
                    input.for_each_stamp(|stamp, data| {
                        let Some(&at) = stamp.least() else { return };
                        let mut session = output.session(&stamp);
                        for s in data.flat_map(|container| container.drain(..)) {
                            let tx = s.row.record.tx;
                            let known = Known::Prediction {
                                prediction: s.prediction,
                                label: tx.label,
                            };
                            session.give((((tx.account_id, tx.ts), known), at, 1));
                        }
                    });
                    // Labels after the predictions' frontier are late.
                    follow.set(frontier.frontier().to_owned());
                }
            },
        )
        .as_collection();
    let labels = labels
        .map(|((key, label), at, diff)| ((key, Known::Label(label)), at, diff))
        .as_collection();

    let labelled =
        predictions
            .concat(labels)
            .reduce_named("TransactionLabel", |_key, known, output| {
                // Labels sort before predictions.
                let mut given: Option<bool> = None;
                for (k, diff) in known {
                    match k {
                        Known::Label(label) if *diff > 0 => {
                            given = Some(given.unwrap_or(false) || *label);
                        }
                        Known::Label(_) => {}
                        Known::Prediction { prediction, label } => {
                            output.push(((*prediction, given.or(*label)), *diff));
                        }
                    }
                }
            });
    let hours = labelled
        .map(|((account, ts), verdict)| ((account, ts - ts % HOUR), verdict))
        .reduce_named("HourFigures", |_key, verdicts, output| {
            let mut f = HourFigures::default();
            for ((prediction, label), diff) in verdicts {
                let n = u64::try_from(*diff).unwrap_or(0);
                f.count += n;
                if let Some(label) = label {
                    f.labelled.add_many(*prediction, *label, n);
                }
            }
            output.push((f, 1isize));
        });
    hours
        .inner
        .flat_map(|(((account_id, hour), figures), at, diff)| {
            let change = QualityChange {
                account_id,
                hour,
                figures,
                insert: diff > 0,
                at,
            };
            std::iter::repeat_n(change, diff.unsigned_abs())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sort_before_predictions() {
        let p = Known::Prediction {
            prediction: false,
            label: None,
        };
        assert!(Known::Label(true) < p && Known::Label(false) < Known::Label(true));
    }
}
