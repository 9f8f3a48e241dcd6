//! Alerts of a job that scores (`--alert-on`, docs/scoring.md §3): the transactions the
//! rule, the model, or either flags.

use compact_str::CompactString;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use tidelake_operators::AccountId;
use tidelake_operators::time::format_millis;

use super::score::Scored;

/// What alerts (`--alert-on`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlertOn {
    /// The fraud rule's alerts, as without a model (the `alerts` table keeps its schema).
    #[default]
    Rule,
    /// Transactions the model predicts fraud.
    Model,
    /// Transactions the rule or the model flags.
    Any,
}

impl AlertOn {
    /// Its flag value.
    pub fn name(self) -> &'static str {
        match self {
            AlertOn::Rule => "rule",
            AlertOn::Model => "model",
            AlertOn::Any => "any",
        }
    }

    /// The alert `scored` makes, if it makes one (never for [`AlertOn::Rule`], whose
    /// alerts are the rule's own).
    pub fn alert(self, scored: &Scored) -> Option<ModelAlert> {
        let rule = scored.row.record.rule_alert;
        let flagged = match self {
            AlertOn::Rule => false,
            AlertOn::Model => scored.prediction,
            AlertOn::Any => scored.prediction || rule,
        };
        let tx = &scored.row.record.tx;
        flagged.then(|| ModelAlert {
            account_id: tx.account_id.clone(),
            ts: tx.ts,
            amount: tx.amount,
            probability: scored.probability,
            rule_alert: rule,
            model_alert: scored.prediction,
            model_version: scored.model_version.clone(),
        })
    }
}

/// A transaction the rule or the model flagged; its JSON line is `{"accountId", "ts",
/// "dt", "amount", "probability", "ruleAlert", "modelAlert", "modelVersion"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelAlert {
    /// The account.
    pub account_id: AccountId,
    /// Event time (ms).
    pub ts: u64,
    /// The amount.
    pub amount: f64,
    /// The model's probability of fraud.
    pub probability: f64,
    /// The rule flagged it.
    pub rule_alert: bool,
    /// The model flagged it.
    pub model_alert: bool,
    /// The model's version.
    pub model_version: CompactString,
}

impl Serialize for ModelAlert {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ModelAlert", 8)?;
        s.serialize_field("accountId", &self.account_id)?;
        s.serialize_field("ts", &self.ts)?;
        s.serialize_field("dt", &format_millis(self.ts))?;
        s.serialize_field("amount", &self.amount)?;
        s.serialize_field("probability", &self.probability)?;
        s.serialize_field("ruleAlert", &self.rule_alert)?;
        s.serialize_field("modelAlert", &self.model_alert)?;
        s.serialize_field("modelVersion", self.model_version.as_str())?;
        s.end()
    }
}
