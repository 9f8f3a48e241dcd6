//! The fraud job's records: transactions in, enriched transactions out (docs/semantics.md §1).

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// An account id: UTF-8, 1–128 bytes. Ids of up to 24 bytes are stored inline, so the
/// per-event path does not allocate for them.
pub type AccountId = CompactString;

/// A card transaction as read from a source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// The account the transaction belongs to.
    pub account_id: AccountId,
    /// Event time, milliseconds since the Unix epoch (UTC).
    pub ts: u64,
    /// The amount; always finite.
    pub amount: f64,
}

impl Transaction {
    /// A transaction of `account_id` at event time `ts` for `amount`.
    pub fn new(account_id: &str, ts: u64, amount: f64) -> Self {
        Transaction {
            account_id: AccountId::from(account_id),
            ts,
            amount,
        }
    }
}

/// A transaction with the fraud rule's verdict: a row of the `transactions` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichedTransaction {
    /// The account the transaction belongs to.
    pub account_id: AccountId,
    /// Event time, milliseconds since the Unix epoch (UTC); the table's `dt`.
    pub ts: u64,
    /// The amount.
    pub amount: f64,
    /// True on the large transaction that raised an alert.
    pub alert: bool,
}
