//! The features job (`--rule features`, docs/semantics.md §2): richer transactions keyed
//! by account through the fraud rule and then the history features; its alerts to
//! `--alerts` and the `alerts` table, every transaction with its verdict and features to
//! the `features` table (`--features-table`).

use timely::dataflow::operators::vec::Map;

use tidelake_operators::history::HistoryFeatures;
use tidelake_operators::{FraudDetector, RichTransaction};

use crate::alerts_table::AlertRow;
use crate::features_table::FeatureRow;
use crate::pipeline::{ALERTS, Events, Pipeline, Stage, TableDecl};

/// The name of the table `--features-table` names.
pub const FEATURES: &str = "features";

/// The features job.
#[derive(Clone, Copy, Debug, Default)]
pub struct FeaturesJob;

impl Pipeline for FeaturesJob {
    type Record = RichTransaction;

    fn settings(&self) -> Vec<(String, String)> {
        vec![("--rule".to_owned(), "features".to_owned())]
    }

    fn tables(&self) -> Vec<TableDecl> {
        vec![
            TableDecl::of::<FeatureRow>(FEATURES),
            TableDecl::of::<AlertRow>(ALERTS),
        ]
    }

    fn build<'s>(&self, stage: &Stage<'s, '_>, transactions: Events<'s, RichTransaction>) {
        let (verdicts, alerts) =
            stage.keyed_events("FraudDetector", FraudDetector::new(), transactions);

        let alerts = stage.alerts(alerts.map(|alert| alert.record));
        stage.table(ALERTS, alerts, AlertRow);

        let (featured, _) = stage.keyed("HistoryFeatures", HistoryFeatures, verdicts);
        stage.table(FEATURES, featured, FeatureRow);
    }
}
