//! The fraud rule of docs/semantics.md §2, as Flink's walkthrough `FraudDetector` writes it.
//!
//! For each account, a transaction `L` raises an alert iff `L.amount > 500.00`, the
//! transaction `S` immediately before it has `S.amount < 1.00`, and `L.ts − S.ts ≤ 60 s`.
//! State machine: a small transaction sets a flag and a timer at `S.time + 60 000`; any
//! transaction that finds the flag set cleans up (flag and timer); the timer clears the
//! flag. Flink's walkthrough keeps the timer's time in a second state to delete it; here
//! the key's timer service knows which timer it registered, so the state is the flag
//! alone. Because a timer at `T` runs after every record with time `≤ T`, a large
//! transaction exactly 60 000 ms after the small one alerts and one at 60 001 does not.
//!
//! ```
//! use tidelake_operators::{harness, Event, FraudDetector, Transaction};
//!
//! let tx = |seq: u64, ts: u64, amount: f64| Event::new(ts, 0, seq, Transaction::new("7", ts, amount));
//! // small → large 60 000 ms later alerts; small → large 60 001 ms later does not.
//! let events = vec![tx(0, 0, 0.99), tx(1, 60_000, 500.01), tx(2, 100_000, 0.5), tx(3, 160_001, 600.0)];
//! let run = harness::run(FraudDetector::new(), events, 1_000);
//! assert_eq!(run.side.iter().map(|a| a.ts).collect::<Vec<_>>(), vec![60_000]);
//! assert_eq!(run.main.iter().filter(|t| t.alert).count(), 1);
//! ```

use std::marker::PhantomData;

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use timely::ExchangeData;

use crate::keyed_process::{Collector, Context, KeyedProcessFunction};
use crate::state::{KeyState, ValueState};
use crate::time::format_millis;
use crate::transaction::{AccountId, EnrichedTransaction, Transaction};

/// Amounts strictly below this are small.
pub const SMALL: f64 = 1.00;
/// Amounts strictly above this are large.
pub const LARGE: f64 = 500.00;
/// The longest gap, in ms of rule time, from a small to a large transaction that alerts.
pub const WINDOW: u64 = 60_000;

/// A small transaction followed by a large one on the same account.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// The account.
    pub account_id: AccountId,
    /// Event time of the large transaction (ms).
    pub ts: u64,
    /// Event time of the small transaction (ms).
    pub small_ts: u64,
    /// The small amount.
    pub small_amount: f64,
    /// The large amount.
    pub large_amount: f64,
}

/// Alerts serialise as the JSON line of docs/semantics.md §1, with RFC 3339 `dt` and `smallDt`.
impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Alert", 7)?;
        s.serialize_field("accountId", &self.account_id)?;
        s.serialize_field("ts", &self.ts)?;
        s.serialize_field("dt", &format_millis(self.ts))?;
        s.serialize_field("smallTs", &self.small_ts)?;
        s.serialize_field("smallDt", &format_millis(self.small_ts))?;
        s.serialize_field("smallAmount", &self.small_amount)?;
        s.serialize_field("largeAmount", &self.large_amount)?;
        s.end()
    }
}

/// The small transaction an account is waiting on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SmallTransaction {
    /// Event time (ms).
    pub ts: u64,
    /// Amount.
    pub amount: f64,
}

/// The fraud detector's state per account, Flink's flag state: the small transaction a
/// large one would pair with, if any. 16 bytes: no flag is a NaN amount, which no flag
/// holds (its amount is below [`SMALL`]).
///
/// It serialises as format 1 of checkpoints wrote it (docs/checkpoints.md §4): the flag,
/// and the clean-up timer's time, which format 2 writes empty and no reader uses (the
/// key's timers are in the snapshot beside its state).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(from = "StoredFraudState", into = "StoredFraudState")]
pub struct FraudState {
    small_ts: u64,
    small_amount: f64,
}

impl FraudState {
    /// The flag: the small transaction waited on.
    pub fn flag(&self) -> Option<SmallTransaction> {
        (!self.small_amount.is_nan()).then_some(SmallTransaction {
            ts: self.small_ts,
            amount: self.small_amount,
        })
    }

    /// Removes and returns the flag.
    pub fn take_flag(&mut self) -> Option<SmallTransaction> {
        let flag = self.flag();
        *self = FraudState::default();
        flag
    }

    /// Sets the flag to `small`, whose amount is below [`SMALL`] (a NaN amount clears it).
    pub fn set_flag(&mut self, small: SmallTransaction) {
        self.small_ts = small.ts;
        self.small_amount = small.amount;
    }
}

impl Default for FraudState {
    fn default() -> Self {
        FraudState {
            small_ts: 0,
            small_amount: f64::NAN,
        }
    }
}

impl PartialEq for FraudState {
    fn eq(&self, other: &Self) -> bool {
        self.flag() == other.flag()
    }
}

impl KeyState for FraudState {
    fn is_empty(&self) -> bool {
        self.small_amount.is_nan()
    }
}

/// [`FraudState`] as snapshots hold it.
#[derive(Default, Serialize, Deserialize)]
struct StoredFraudState {
    flag: ValueState<SmallTransaction>,
    timer: ValueState<u64>,
}

impl From<StoredFraudState> for FraudState {
    fn from(stored: StoredFraudState) -> Self {
        let mut state = FraudState::default();
        if let Some(small) = stored.flag.value() {
            state.set_flag(*small);
        }
        state
    }
}

impl From<FraudState> for StoredFraudState {
    fn from(state: FraudState) -> Self {
        let mut stored = StoredFraudState::default();
        if let Some(small) = state.flag() {
            stored.flag.update(small);
        }
        stored
    }
}

/// What the fraud rule reads of a record, and the record it emits with its verdict:
/// [`Transaction`] becomes an [`EnrichedTransaction`]; a pipeline's richer record type
/// can keep all its fields.
pub trait Payment: ExchangeData + Clone {
    /// The record with the rule's verdict.
    type Verdict: Clone + 'static;

    /// The account it is keyed by.
    fn account_id(&self) -> &AccountId;
    /// Its event time (ms).
    fn ts(&self) -> u64;
    /// Its amount.
    fn amount(&self) -> f64;
    /// The record with the verdict: `alert` is true on the large transaction of a pair.
    fn with_verdict(self, alert: bool) -> Self::Verdict;
}

impl Payment for Transaction {
    type Verdict = EnrichedTransaction;

    #[inline]
    fn account_id(&self) -> &AccountId {
        &self.account_id
    }

    #[inline]
    fn ts(&self) -> u64 {
        self.ts
    }

    #[inline]
    fn amount(&self) -> f64 {
        self.amount
    }

    #[inline]
    fn with_verdict(self, alert: bool) -> EnrichedTransaction {
        EnrichedTransaction {
            account_id: self.account_id,
            ts: self.ts,
            amount: self.amount,
            alert,
        }
    }
}

/// The fraud rule over records `T` ([`Transaction`] by default): emits every record
/// with its verdict on the main output and an [`Alert`] on the side output for each
/// small-then-large pair.
pub struct FraudDetector<T = Transaction>(PhantomData<fn() -> T>);

impl<T> FraudDetector<T> {
    /// The detector with the constants of docs/semantics.md §2.
    pub fn new() -> Self {
        FraudDetector(PhantomData)
    }
}

impl<T> Default for FraudDetector<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for FraudDetector<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for FraudDetector<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FraudDetector")
    }
}

impl<T: Payment> KeyedProcessFunction for FraudDetector<T> {
    type Key = AccountId;
    type Input = T;
    type State = FraudState;
    type Output = T::Verdict;
    type SideOutput = Alert;

    #[inline]
    fn key(input: &T) -> &AccountId {
        input.account_id()
    }

    #[inline]
    fn process_element(
        &mut self,
        ctx: &mut Context<'_, AccountId, FraudState>,
        tx: T,
        out: &mut Collector<'_, T::Verdict, Alert>,
    ) {
        let mut alert = false;
        let amount = tx.amount();
        if let Some(small) = ctx.state().take_flag() {
            if amount > LARGE {
                alert = true;
                out.emit_side(Alert {
                    account_id: tx.account_id().clone(),
                    ts: tx.ts(),
                    small_ts: small.ts,
                    small_amount: small.amount,
                    large_amount: amount,
                });
            }
            ctx.timers().delete_all();
        }
        if amount < SMALL {
            let time = ctx.timestamp() + WINDOW;
            ctx.state().set_flag(SmallTransaction {
                ts: tx.ts(),
                amount,
            });
            ctx.timers().register(time);
        }
        out.emit(tx.with_verdict(alert));
    }

    fn on_timer(
        &mut self,
        ctx: &mut Context<'_, AccountId, FraudState>,
        _time: u64,
        _out: &mut Collector<'_, T::Verdict, Alert>,
    ) {
        ctx.state().take_flag();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_the_flag_in_16_bytes_and_keeps_format_1() {
        assert_eq!(std::mem::size_of::<FraudState>(), 16);
        let mut state = FraudState::default();
        assert!(state.is_empty() && state.flag().is_none());
        let small = SmallTransaction {
            ts: 1_546_308_720_000,
            amount: 0.0,
        };
        state.set_flag(small);
        assert!(!state.is_empty());
        assert_eq!(state.flag(), Some(small));
        // Format 1 wrote the flag and the timer's time; format 2 writes the timer empty
        // and reads a format 1 state whatever its timer.
        let old = StoredFraudState::default();
        let mut old_set = StoredFraudState::default();
        old_set.flag.update(small);
        old_set.timer.update(small.ts + WINDOW);
        let bytes = |s: &StoredFraudState| bincode::serialize(s).expect("serialises");
        let back = |b: &[u8]| bincode::deserialize::<FraudState>(b).expect("deserialises");
        assert_eq!(back(&bytes(&old_set)), state);
        assert_eq!(back(&bytes(&old)), FraudState::default());
        old_set.timer.clear();
        assert_eq!(
            bincode::serialize(&state).expect("serialises"),
            bytes(&old_set)
        );
        assert_eq!(state.take_flag(), Some(small));
        assert!(state.is_empty());
        assert_eq!(bincode::serialize(&state).expect("serialises"), bytes(&old));
    }

    #[test]
    fn alert_json_line_is_the_spec_form() {
        let alert = Alert {
            account_id: AccountId::from("3"),
            ts: 1_546_310_520_000,
            small_ts: 1_546_308_720_000,
            small_amount: 0.8,
            large_amount: 871.15,
        };
        assert_eq!(
            serde_json::to_string(&alert).expect("serialises"),
            r#"{"accountId":"3","ts":1546310520000,"dt":"2019-01-01T02:42:00.000Z","smallTs":1546308720000,"smallDt":"2019-01-01T02:12:00.000Z","smallAmount":0.8,"largeAmount":871.15}"#
        );
    }
}
