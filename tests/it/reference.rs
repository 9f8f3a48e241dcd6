//! A plain reference model of the fraud rule (docs/semantics.md §2), written from the spec's
//! definition and sharing no code with the operator: sort each account's transactions
//! by `(ts, partition, sequence)` and look at each adjacent pair.

use std::collections::BTreeMap;

/// A transaction as the reference sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tx {
    pub account: String,
    pub ts: u64,
    pub partition: u32,
    pub seq: u64,
    pub amount: f64,
}

/// An alert as `(account, large ts, small ts, small amount bits, large amount bits)`,
/// comparable and sortable.
pub type RefAlert = (String, u64, u64, u64, u64);

/// The alerts the rule raises on `txs`, sorted.
pub fn alerts(txs: &[Tx]) -> Vec<RefAlert> {
    let mut by_account: BTreeMap<&str, Vec<&Tx>> = BTreeMap::new();
    for tx in txs {
        by_account.entry(&tx.account).or_default().push(tx);
    }
    let mut out = Vec::new();
    for (account, mut list) in by_account {
        list.sort_by_key(|t| (t.ts, t.partition, t.seq));
        for pair in list.windows(2) {
            let (s, l) = (pair[0], pair[1]);
            if l.amount > 500.0 && s.amount < 1.0 && l.ts - s.ts <= 60_000 {
                out.push((
                    account.to_owned(),
                    l.ts,
                    s.ts,
                    s.amount.to_bits(),
                    l.amount.to_bits(),
                ));
            }
        }
    }
    out.sort();
    out
}
