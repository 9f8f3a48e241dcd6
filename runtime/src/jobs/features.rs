//! The features job (`--rule features`, docs/semantics.md §2): richer transactions keyed
//! by account through the fraud rule and then the history features, joined with the
//! accounts reference data as of their time (`--accounts-table`); its alerts to `--alerts`
//! and the `alerts` table, every transaction with its verdict, features and account to
//! the `features` table (`--features-table`).

use std::sync::Arc;
use std::time::Duration;

use timely::dataflow::operators::vec::Map;

use tidelake_operators::history::HistoryFeatures;
use tidelake_operators::{FraudDetector, RichTransaction};

use crate::alerts_table::AlertRow;
use crate::config::AccountsConfig;
use crate::features_table::FeatureRow;
use crate::pipeline::{ALERTS, Events, Pipeline, Stage, TableDecl};
use crate::reference::AccountRecord;
use crate::reference::as_of_join::WithAccount;
use crate::sources::{Source, SourceError, SourceRecord};

/// The name of the table `--features-table` names.
pub const FEATURES: &str = "features";

/// The features job.
#[derive(Clone, Default)]
pub struct FeaturesJob {
    accounts: Option<Accounts>,
}

/// The accounts reference data, opened.
#[derive(Clone)]
struct Accounts {
    location: String,
    source: Arc<dyn Source<AccountRecord>>,
    poll: Duration,
}

impl FeaturesJob {
    /// The job, with the accounts `accounts` names opened (a table must exist and be
    /// readable as accounts).
    pub fn new(accounts: Option<&AccountsConfig>) -> Result<Self, SourceError> {
        let accounts = match accounts {
            None => None,
            Some(config) => Some(Accounts {
                location: config.location.clone(),
                source: AccountRecord::source(&config.source_config()).map_err(|e| {
                    SourceError::Config(format!("--accounts-table {}: {e}", config.location))
                })?,
                poll: config.poll_interval,
            }),
        };
        Ok(FeaturesJob { accounts })
    }
}

impl Pipeline for FeaturesJob {
    type Record = RichTransaction;

    fn settings(&self) -> Vec<(String, String)> {
        let mut settings = vec![("--rule".to_owned(), "features".to_owned())];
        if let Some(accounts) = &self.accounts {
            settings.push(("--accounts-table".to_owned(), accounts.location.clone()));
        }
        settings
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
        let featured = match &self.accounts {
            Some(accounts) => {
                stage.join_accounts(featured, Arc::clone(&accounts.source), accounts.poll)
            }
            None => featured.map(|record| WithAccount {
                record,
                account: None,
            }),
        };
        stage.table(FEATURES, featured, FeatureRow);
    }
}
