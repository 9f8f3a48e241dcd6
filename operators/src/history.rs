//! Account history features (docs/semantics.md §2, "History features"): for every
//! transaction `x` of an account, figures over the account's transactions *before* `x`
//! in `(ts, partition, sequence)` order — the order the keyed-process operator runs
//! records in — exactly:
//!
//! - `txCount1h` / `txSum1h`, `txCount24h` / `txSum24h`, `txCount30d` / `txSum30d`: the
//!   number and the sum of amounts of those with `ts > x.ts − W` (the sum added oldest
//!   first, in f64);
//! - `msSincePrev`, `prevAmount`: of the one immediately before, if it is within the
//!   30 days (null for the first, and after 30 days without a transaction, when the
//!   account's state is gone);
//! - `countries24h`: the distinct countries among those with `ts > x.ts − 24 h` (null
//!   when `x` has no country);
//! - `ruleAlert`: the fraud rule's verdict, carried from its [`RichVerdict`].
//!
//! # State
//!
//! Per account, the transactions of the last 30 days as a ring buffer of 24-byte entries
//! (`ts`, `amount`, country), with no heap allocation per entry, plus 32 bytes (the
//! buffer's header, the clean-up timer and the newest rule time). An entry leaves once
//! a later transaction is 30 days past it; an account idle for 30 days of rule time is
//! dropped whole by its one timer (rule time is `ts` in event time).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::keyed_process::{Collector, Context, KeyedProcessFunction};
use crate::rich_transaction::{Country, RichTransaction, RichVerdict};
use crate::state::{KeyState, ValueState};
use crate::transaction::AccountId;

/// One hour, ms.
pub const HOUR: u64 = 3_600_000;
/// One day, ms.
pub const DAY: u64 = 24 * HOUR;
/// Thirty days, ms: the longest window.
pub const MONTH: u64 = 30 * DAY;

/// The history features of one transaction; see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// Earlier transactions within 1 h.
    pub tx_count_1h: u32,
    /// Their amounts' sum.
    pub tx_sum_1h: f64,
    /// Earlier transactions within 24 h.
    pub tx_count_24h: u32,
    /// Their amounts' sum.
    pub tx_sum_24h: f64,
    /// Earlier transactions within 30 days.
    pub tx_count_30d: u32,
    /// Their amounts' sum.
    pub tx_sum_30d: f64,
    /// ms since the transaction immediately before.
    pub ms_since_prev: Option<u64>,
    /// The amount of the transaction immediately before.
    pub prev_amount: Option<f64>,
    /// Distinct countries of the earlier transactions within 24 h.
    pub countries_24h: Option<u32>,
}

/// A transaction with the rule's verdict and its history features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Featured {
    /// The transaction.
    pub tx: RichTransaction,
    /// The fraud rule's verdict.
    pub rule_alert: bool,
    /// Its history features.
    pub features: Features,
}

/// An earlier transaction, as the features need it: 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Event time (ms).
    pub ts: u64,
    /// Amount.
    pub amount: f64,
    /// Country, if known.
    pub country: Option<Country>,
}

/// Per-account state: the last 30 days of transactions, and the clean-up timer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Oldest first.
    pub entries: VecDeque<Entry>,
    /// The rule time of the registered clean-up timer.
    pub timer: ValueState<u64>,
    /// The rule time of the newest transaction.
    pub last_time: u64,
}

impl KeyState for History {
    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.timer.is_empty()
    }
}

impl History {
    /// The features of a transaction at `ts` from `country` after the entries.
    pub fn features(&self, ts: u64, country: Option<Country>) -> Features {
        let mut features = Features::default();
        if let Some(prev) = self
            .entries
            .back()
            .filter(|e| ts.saturating_sub(e.ts) < MONTH)
        {
            features.ms_since_prev = Some(ts.saturating_sub(prev.ts));
            features.prev_amount = Some(prev.amount);
        }
        let mut countries: Vec<Country> = Vec::new();
        for entry in &self.entries {
            // Entries are at or before `ts`: within W when `entry.ts > ts − W`.
            let age = ts.saturating_sub(entry.ts);
            if age < MONTH {
                features.tx_count_30d += 1;
                features.tx_sum_30d += entry.amount;
            }
            if age < DAY {
                features.tx_count_24h += 1;
                features.tx_sum_24h += entry.amount;
                if let Some(c) = entry.country.filter(|c| !countries.contains(c)) {
                    countries.push(c);
                }
            }
            if age < HOUR {
                features.tx_count_1h += 1;
                features.tx_sum_1h += entry.amount;
            }
        }
        features.countries_24h = country.map(|_| countries.len() as u32);
        features
    }

    /// Adds a transaction, dropping the entries 30 days or more before it.
    pub fn push(&mut self, entry: Entry) {
        while self
            .entries
            .front()
            .is_some_and(|e| entry.ts.saturating_sub(e.ts) >= MONTH)
        {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }
}

/// The history features operator; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryFeatures;

impl KeyedProcessFunction for HistoryFeatures {
    type Key = AccountId;
    type Input = RichVerdict;
    type State = History;
    type Output = Featured;
    type SideOutput = ();

    #[inline]
    fn key(input: &RichVerdict) -> &AccountId {
        &input.tx.account_id
    }

    fn process_element(
        &mut self,
        ctx: &mut Context<'_, AccountId, History>,
        verdict: RichVerdict,
        out: &mut Collector<'_, Featured, ()>,
    ) {
        let RichVerdict { tx, rule_alert } = verdict;
        let features = ctx.state().features(tx.ts, tx.country);
        ctx.state().push(Entry {
            ts: tx.ts,
            amount: tx.amount,
            country: tx.country,
        });
        let now = ctx.timestamp();
        ctx.state().last_time = now;
        if ctx.state().timer.is_empty() {
            ctx.state().timer.update(now + MONTH);
            ctx.timers().register(now + MONTH);
        }
        out.emit(Featured {
            tx,
            rule_alert,
            features,
        });
    }

    fn on_timer(
        &mut self,
        ctx: &mut Context<'_, AccountId, History>,
        time: u64,
        _out: &mut Collector<'_, Featured, ()>,
    ) {
        ctx.state().timer.clear();
        let next = ctx.state().last_time + MONTH;
        if next <= time {
            // Idle for 30 days: no later transaction could count what is left.
            *ctx.state() = History::default();
        } else {
            ctx.state().timer.update(next);
            ctx.timers().register(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::harness;

    #[test]
    fn an_entry_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    fn verdict(ts: u64, amount: f64, country: Option<&str>) -> RichVerdict {
        let mut tx = RichTransaction::new("a", ts, amount);
        tx.country = country.and_then(|c| Country::parse(c).ok());
        RichVerdict {
            tx,
            rule_alert: false,
        }
    }

    #[test]
    fn windows_are_open_at_their_start_and_an_idle_account_is_dropped() {
        let events: Vec<Event<RichVerdict>> = [
            (0, 1.0, Some("DE")),
            (HOUR, 2.0, Some("FR")),
            (HOUR + 1, 4.0, None),
            (DAY + HOUR, 8.0, Some("DE")),
            (DAY + HOUR + 1, 16.0, Some("US")),
            (MONTH + DAY + HOUR + 1, 32.0, None),
        ]
        .into_iter()
        .enumerate()
        .map(|(seq, (ts, amount, country))| {
            Event::new(ts, 0, seq as u64, verdict(ts, amount, country))
        })
        .collect();
        let run = harness::run(HistoryFeatures, events, 1_000);
        let f: Vec<&Features> = run.main.iter().map(|f| &f.features).collect();
        assert_eq!(
            f[0],
            &Features {
                countries_24h: Some(0),
                ..Features::default()
            }
        );
        // At exactly 1 h the first is out of the hour, still in the day.
        assert_eq!((f[1].tx_count_1h, f[1].tx_count_24h), (0, 1));
        assert_eq!((f[2].tx_count_1h, f[2].tx_sum_1h), (1, 2.0));
        assert_eq!(f[2].countries_24h, None, "no country of its own");
        // Exactly 24 h after the second: only the third is within the day.
        assert_eq!(
            (f[3].tx_count_1h, f[3].tx_count_24h, f[3].tx_sum_24h),
            (0, 1, 4.0)
        );
        assert_eq!((f[3].tx_count_30d, f[3].tx_sum_30d), (3, 7.0));
        assert_eq!(f[3].countries_24h, Some(0), "the third has no country");
        assert_eq!(f[4].countries_24h, Some(1), "DE within 24 h");
        assert_eq!((f[4].ms_since_prev, f[4].prev_amount), (Some(1), Some(8.0)));
        // 30 days after the last one the account was dropped: a first transaction again.
        assert_eq!(f[5], &Features::default());
    }
}
