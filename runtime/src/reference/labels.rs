//! The labels of the model's predictions (`--labels`, docs/scoring.md §5): one row per
//! transaction whose truth became known — `accountId, ts, label` — often long after it
//! was scored (a chargeback).
//!
//! Read by name from a CSV file with a header, JSON lines, or a Delta table: the account
//! id a string or an integer, `ts` the transaction's event time as RFC 3339 text or ms
//! (a Delta timestamp), `label` 1 / 0 or true / false. A row whose account id, time or
//! label is missing or bad goes to the dead letters, naming the field.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidelake_operators::rich_transaction::label;
use tidelake_operators::transaction::AccountId;

use super::accounts::{account_id, millis};
use super::input::ReferenceRecord;
use crate::config::SourceConfig;
use crate::dead_letter::Reason;
use crate::sources::validate::{self, Invalid};
use crate::sources::{Source, SourceError, SourceRecord, decoded};

/// One row of the labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelRecord {
    /// The transaction's account.
    #[serde(alias = "account_id", deserialize_with = "account_id")]
    pub account_id: AccountId,
    /// The transaction's event time, ms since the epoch.
    #[serde(alias = "ts_millis", alias = "dt", deserialize_with = "millis")]
    pub ts: u64,
    /// True for fraud; none when the field is empty (a dead letter).
    #[serde(deserialize_with = "label")]
    pub label: Option<bool>,
}

/// A transaction, by account and event time: what a label is joined on.
pub type TransactionKey = (AccountId, u64);

impl ReferenceRecord for LabelRecord {
    type Data = (TransactionKey, bool);

    fn applies_from(&self) -> u64 {
        self.ts
    }

    fn into_data(self) -> Self::Data {
        ((self.account_id, self.ts), self.label.unwrap_or(false))
    }
}

impl SourceRecord for LabelRecord {
    fn event_time(&self) -> u64 {
        self.ts
    }

    fn validate(&self) -> Result<(), Invalid> {
        validate::account_id_text(&self.account_id)?;
        match self.label {
            Some(_) => Ok(()),
            None => Err((Reason::Invalid, "label is empty".to_owned())),
        }
    }

    fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError> {
        decoded::source(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_ids_times_and_labels_in_either_form() {
        let a: LabelRecord =
            serde_json::from_str(r#"{"accountId":7,"ts":"2024-05-01T00:00:01Z","label":"1"}"#)
                .expect("row");
        assert_eq!(
            (a.account_id.as_str(), a.ts, a.label),
            ("7", 1_714_521_601_000, Some(true))
        );
        let b: LabelRecord =
            serde_json::from_str(r#"{"account_id":"x y","ts_millis":5,"label":false}"#)
                .expect("row");
        assert_eq!(
            (b.account_id.as_str(), b.ts, b.label),
            ("x y", 5, Some(false))
        );
        let empty: LabelRecord =
            serde_json::from_str(r#"{"accountId":"a","ts":5,"label":""}"#).expect("row");
        assert!(empty.validate().is_err());
    }
}
