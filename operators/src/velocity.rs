//! A second rule on the keyed-process API: velocity — more than `max` transactions of
//! one account within a window of rule time.
//!
//! State is a [`MapState`] from rule time to the number of transactions at that time;
//! each transaction counts the account's transactions in `(time − window, time]` and
//! alerts when there are more than `max`. Every transaction goes on to the main output,
//! marked `alert` when it crossed the limit. A timer at `time + window` drops entries
//! that can no longer count, so an idle account's state goes away.
//!
//! ```
//! use tidelake_operators::{harness, Event, Transaction, VelocityRule};
//!
//! let tx = |seq: u64, ts: u64| Event::new(ts, 0, seq, Transaction::new("9", ts, 10.0));
//! // Four transactions within 10 s, with at most 3 allowed: the fourth alerts.
//! let events = vec![tx(0, 0), tx(1, 1_000), tx(2, 2_000), tx(3, 9_999), tx(4, 30_000)];
//! let run = harness::run(VelocityRule::new(3, 10_000), events, 100);
//! assert_eq!(run.side.len(), 1);
//! assert_eq!((run.side[0].ts, run.side[0].count), (9_999, 4));
//! ```

use serde::{Deserialize, Serialize};

use crate::keyed_process::{Collector, Context, KeyedProcessFunction};
use crate::state::{KeyState, MapState};
use crate::transaction::{AccountId, EnrichedTransaction, Transaction};

/// Too many transactions of one account in a short time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VelocityAlert {
    /// The account.
    pub account_id: AccountId,
    /// Event time of the transaction that crossed the limit (ms).
    pub ts: u64,
    /// Transactions of the account in the window ending at it, itself included.
    pub count: u64,
}

/// Per-account state: the number of transactions at each rule time still in a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VelocityState {
    /// Rule time (ms) → transactions at that time.
    pub counts: MapState<u64, u64>,
}

impl KeyState for VelocityState {
    fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// Alerts when an account has more than `max` transactions within `window` ms.
#[derive(Clone, Debug)]
pub struct VelocityRule {
    max: u64,
    window: u64,
}

impl VelocityRule {
    /// More than `max` transactions within `window_ms` alerts.
    pub fn new(max: u64, window_ms: u64) -> Self {
        VelocityRule {
            max,
            window: window_ms.max(1),
        }
    }
}

impl KeyedProcessFunction for VelocityRule {
    type Key = AccountId;
    type Input = Transaction;
    type State = VelocityState;
    type Output = EnrichedTransaction;
    type SideOutput = VelocityAlert;

    fn key(input: &Transaction) -> &AccountId {
        &input.account_id
    }

    fn process_element(
        &mut self,
        ctx: &mut Context<'_, AccountId, VelocityState>,
        tx: Transaction,
        out: &mut Collector<'_, EnrichedTransaction, VelocityAlert>,
    ) {
        let now = ctx.timestamp();
        let counts = &mut ctx.state().counts;
        *counts.entry_or_default(now) += 1;
        let from = (now + 1).saturating_sub(self.window);
        let count: u64 = counts.range(from..).map(|(_, n)| n).sum();
        let alert = count > self.max;
        if alert {
            out.emit_side(VelocityAlert {
                account_id: tx.account_id.clone(),
                ts: tx.ts,
                count,
            });
        }
        ctx.timers().register(now + self.window);
        out.emit(EnrichedTransaction {
            account_id: tx.account_id,
            ts: tx.ts,
            amount: tx.amount,
            alert,
        });
    }

    fn on_timer(
        &mut self,
        ctx: &mut Context<'_, AccountId, VelocityState>,
        time: u64,
        _out: &mut Collector<'_, EnrichedTransaction, VelocityAlert>,
    ) {
        // Entries at or before `time − window` can no longer be inside any window.
        ctx.state().counts.remove_below(&(time + 1 - self.window));
    }
}
