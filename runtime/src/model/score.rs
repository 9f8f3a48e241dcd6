//! Scoring in the stream (docs/scoring.md §3): every record of the features job gets the
//! model's probability of fraud and its prediction, computed a batch at a time — each
//! feature's values for the whole batch, then the linear combination feature by feature
//! — with the same arithmetic, in the same order, as [`Model::logit`], so a probability
//! is the same bit for bit whatever the batch, worker or process.

use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::dataflow::{Scope, StreamVec};

use tidelake_operators::history::Featured;

use super::features::{Feature, Inputs, needs_accounts};
use super::file::{Model, sigmoid};
use crate::reference::as_of_join::WithAccount;

/// A record of the features job with the model's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// The transaction, its features and account.
    pub row: WithAccount<Featured>,
    /// The probability of fraud.
    pub probability: f64,
    /// `probability ≥` the model's threshold.
    pub prediction: bool,
    /// The model's version.
    pub model_version: Arc<str>,
}

/// A model ready to score.
#[derive(Debug)]
pub struct Scorer {
    model: Model,
    features: Vec<&'static Feature>,
    version: Arc<str>,
}

impl Scorer {
    /// A scorer with `model`, for a pipeline that joins reference data (`accounts`) or
    /// not: an error naming the model's features it could not compute.
    pub fn new(model: Model, accounts: bool) -> Result<Self, String> {
        let features = model.catalog_features();
        let lacking: Vec<&str> = features
            .iter()
            .filter(|f| !accounts && needs_accounts(f))
            .map(|f| f.name)
            .collect();
        if !lacking.is_empty() {
            return Err(format!(
                "the model's features {} need the accounts reference data (--accounts-table), which this job does not read",
                lacking.join(", ")
            ));
        }
        let version = Arc::from(model.model_version.as_str());
        Ok(Scorer {
            model,
            features,
            version,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The probabilities of `rows`, in their order.
    pub fn probabilities(&self, rows: &[Inputs]) -> Vec<f64> {
        let mut logits = vec![self.model.intercept; rows.len()];
        let scaling = self.model.features.iter().zip(&self.model.coefficients);
        for (feature, (f, w)) in self.features.iter().zip(scaling) {
            for (z, inputs) in logits.iter_mut().zip(rows) {
                *z += w * ((feature.of(inputs) - f.mean) / f.scale);
            }
        }
        logits.into_iter().map(sigmoid).collect()
    }

    /// `records` scored, each batch at once.
    pub fn score<'s>(
        self: Arc<Self>,
        records: StreamVec<'s, u64, WithAccount<Featured>>,
    ) -> StreamVec<'s, u64, Scored>
    where
        Scope<'s, u64>: Clone,
    {
        records.unary::<CapacityContainerBuilder<Vec<Scored>>, _, _, _>(
            Pipeline,
            "Score",
            move |_, _| {
                let mut inputs = Vec::new();
                move |input, output| {
                    input.for_each(|time, data| {
                        inputs.clear();
                        inputs.extend(data.iter().map(Inputs::of));
                        let probabilities = self.probabilities(&inputs);
                        let threshold = self.model.threshold;
                        let mut session = output.session(&time);
                        for (row, probability) in data.drain(..).zip(probabilities) {
                            session.give(Scored {
                                row,
                                probability,
                                prediction: probability >= threshold,
                                model_version: Arc::clone(&self.version),
                            });
                        }
                    });
                }
            },
        )
    }
}
