//! The features job (`--rule features`, docs/semantics.md §2): richer transactions keyed
//! by account through the fraud rule and then the history features, joined with the
//! accounts reference data as of their time (`--accounts-table`), and scored by a model
//! (`--model`, docs/scoring.md §3); its alerts (the rule's, the model's or either's:
//! `--alert-on`) to `--alerts` and the `alerts` table, every transaction with its
//! verdict, features and account to the `features` table (`--features-table`), and with
//! the model's probability to the `fraud_predictions` table (`--predictions-table`).

use std::sync::Arc;
use std::time::Duration;

use timely::dataflow::operators::vec::Map;

use tidelake_operators::history::HistoryFeatures;
use tidelake_operators::{FraudDetector, RichTransaction};

use crate::alerts_table::AlertRow;
use crate::config::{ReferenceConfig, ScoringConfig};
use crate::features_table::FeatureRow;
use crate::model::Model;
use crate::model::alert::AlertOn;
use crate::model::quality::model_quality;
use crate::model::score::Scorer;
use crate::model_alerts_table::ModelAlertRow;
use crate::pipeline::{ALERTS, Events, Pipeline, Stage, TableDecl};
use crate::predictions_table::PredictionRow;
use crate::quality_table::QualityRow;
use crate::reference::AccountRecord;
use crate::reference::LabelRecord;
use crate::reference::as_of_join::WithAccount;
use crate::reference::input::RowCounters;
use crate::sources::{Source, SourceError, SourceRecord};

/// The name of the table `--features-table` names.
pub const FEATURES: &str = "features";
/// The name of the table `--predictions-table` names.
pub const PREDICTIONS: &str = "fraud_predictions";
/// The name of the table `--quality-table` names.
pub const QUALITY: &str = "fraud_model_quality";

/// The features job.
#[derive(Clone, Default)]
pub struct FeaturesJob {
    accounts: Option<Reference<AccountRecord>>,
    scoring: Option<Scoring>,
}

/// The model, loaded.
#[derive(Clone)]
struct Scoring {
    scorer: Arc<Scorer>,
    alert_on: AlertOn,
    labels: Option<Reference<LabelRecord>>,
}

/// Reference data (the accounts, the labels), opened.
struct Reference<R> {
    location: String,
    source: Arc<dyn Source<R>>,
    poll: Duration,
}

impl<R> Clone for Reference<R> {
    fn clone(&self) -> Self {
        Reference {
            location: self.location.clone(),
            source: Arc::clone(&self.source),
            poll: self.poll,
        }
    }
}

impl<R: SourceRecord> Reference<R> {
    /// The source `config` names, given with `flag`.
    fn open(config: &ReferenceConfig, flag: &str) -> Result<Self, SourceError> {
        let source = config
            .source_config()
            .map_err(SourceError::Config)
            .and_then(|source| R::source(&source))
            .map_err(|e| SourceError::Config(format!("{flag} {}: {e}", config.location)))?;
        Ok(Reference {
            location: config.location.clone(),
            source,
            poll: config.poll_interval,
        })
    }
}

impl FeaturesJob {
    /// The job, with the accounts `accounts` names opened (a table must exist and be
    /// readable as accounts) and the model `scoring` names loaded (refused if it needs
    /// features the job does not compute).
    pub fn new(
        accounts: Option<&ReferenceConfig>,
        scoring: Option<&ScoringConfig>,
    ) -> Result<Self, SourceError> {
        let accounts = accounts
            .map(|config| Reference::open(config, "--accounts-table"))
            .transpose()?;
        let scoring = match scoring {
            None => None,
            Some(config) => {
                let location = config.model.display();
                let model =
                    Model::load(&config.model).map_err(|e| SourceError::Config(e.to_string()))?;
                let scorer = Scorer::new(model, accounts.is_some())
                    .map_err(|e| SourceError::Config(format!("--model {location}: {e}")))?;
                let labels = config
                    .labels
                    .as_ref()
                    .map(|labels| Reference::open(labels, "--labels"))
                    .transpose()?;
                Some(Scoring {
                    scorer: Arc::new(scorer),
                    alert_on: config.alert_on,
                    labels,
                })
            }
        };
        Ok(FeaturesJob { accounts, scoring })
    }
}

impl Pipeline for FeaturesJob {
    type Record = RichTransaction;

    fn settings(&self) -> Vec<(String, String)> {
        let mut settings = vec![("--rule".to_owned(), "features".to_owned())];
        if let Some(accounts) = &self.accounts {
            settings.push(("--accounts-table".to_owned(), accounts.location.clone()));
        }
        if let Some(scoring) = &self.scoring {
            let version = &scoring.scorer.model().model_version;
            settings.push(("--model".to_owned(), version.clone()));
            settings.push(("--alert-on".to_owned(), scoring.alert_on.name().to_owned()));
            if let Some(labels) = &scoring.labels {
                settings.push(("--labels".to_owned(), labels.location.clone()));
            }
        }
        settings
    }

    fn tables(&self) -> Vec<TableDecl> {
        let alerts = match &self.scoring {
            Some(s) if s.alert_on != AlertOn::Rule => TableDecl::of::<ModelAlertRow>(ALERTS),
            _ => TableDecl::of::<AlertRow>(ALERTS),
        };
        vec![
            TableDecl::of::<FeatureRow>(FEATURES),
            TableDecl::of::<PredictionRow>(PREDICTIONS),
            TableDecl::of::<QualityRow>(QUALITY),
            alerts,
        ]
    }

    fn build<'s>(&self, stage: &Stage<'s, '_>, transactions: Events<'s, RichTransaction>) {
        let (verdicts, rule_alerts) =
            stage.keyed_events("FraudDetector", FraudDetector::new(), transactions);
        let alert_on = self.scoring.as_ref().map_or(AlertOn::Rule, |s| s.alert_on);
        if alert_on == AlertOn::Rule {
            let alerts = stage.alerts(rule_alerts.map(|alert| alert.record));
            stage.table(ALERTS, alerts, AlertRow);
        }

        let (featured, _) = stage.keyed("HistoryFeatures", HistoryFeatures, verdicts);
        let featured = match &self.accounts {
            Some(accounts) => {
                stage.join_accounts(featured, Arc::clone(&accounts.source), accounts.poll)
            }
            None => featured.map(|record| WithAccount {
                record,
                account: None,
            }),
        };
        let Some(scoring) = &self.scoring else {
            return stage.table(FEATURES, featured, FeatureRow);
        };
        let scored = Arc::clone(&scoring.scorer).score(featured);
        if alert_on != AlertOn::Rule {
            let alerts = stage.alerts(scored.clone().flat_map(move |s| alert_on.alert(&s)));
            stage.table(ALERTS, alerts, ModelAlertRow);
        }
        if let Some(labels) = &scoring.labels {
            let counters: RowCounters = (|w| &w.labels_read, |w| &w.labels_late);
            let source = Arc::clone(&labels.source);
            let (updates, follow) = stage.reference("labels", source, labels.poll, counters);
            let changes = model_quality(scored.clone(), updates, follow);
            stage.table(QUALITY, changes, QualityRow);
        }
        stage.table(FEATURES, scored.clone(), |s| FeatureRow(s.row));
        stage.table(PREDICTIONS, scored, PredictionRow);
    }
}
