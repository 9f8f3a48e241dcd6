//! Scoring in the stream (docs/scoring.md §3): every record of the features job gets the
//! model's probability of fraud and its prediction, computed a batch at a time — each
//! feature's values for the whole batch, then [`Model::probabilities`], as training
//! computes them — so a probability is the same bit for bit whatever the batch, worker
//! or process.

use std::sync::Arc;

use compact_str::CompactString;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use tidelake_operators::history::Featured;

use super::features::{Feature, Inputs, needs_accounts};
use super::file::Model;
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
    /// The model's version (short: held inline, so a copy per record costs no
    /// allocation and no shared count).
    pub model_version: CompactString,
}

/// A model ready to score.
#[derive(Debug)]
pub struct Scorer {
    model: Model,
    features: Vec<&'static Feature>,
    version: CompactString,
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
        let version = CompactString::from(model.model_version.as_str());
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

    /// `records` scored, each batch at once.
    pub fn score<'s>(
        self: Arc<Self>,
        records: StreamVec<'s, u64, WithAccount<Featured>>,
    ) -> StreamVec<'s, u64, Scored> {
        records.unary::<CapacityContainerBuilder<Vec<Scored>>, _, _, _>(
            Pipeline,
            "Score",
            move |_, _| {
                let mut inputs = Vec::new();
                let mut columns = vec![Vec::new(); self.features.len()];
                move |input, output| {
                    input.for_each(|time, data| {
                        inputs.clear();
                        inputs.extend(data.iter().map(Inputs::of));
                        for (column, feature) in columns.iter_mut().zip(&self.features) {
                            column.clear();
                            column.extend(inputs.iter().map(|i| feature.of(i)));
                        }
                        let probabilities = self.model.probabilities(&columns);
                        let threshold = self.model.threshold;
                        let mut session = output.session(&time);
                        for (row, probability) in data.drain(..).zip(probabilities) {
                            session.give(Scored {
                                row,
                                probability,
                                prediction: probability >= threshold,
                                model_version: self.version.clone(),
                            });
                        }
                    });
                }
            },
        )
    }
}
