//! Windows over event time on a keyed stream, built on the keyed-process API: tumbling,
//! sliding and session windows with an [`Aggregate`] (count, sum, min, max, or a fold of
//! one's own), each window's result emitted once the frontier passes its end, and an
//! optional allowed lateness (docs/semantics.md §3).
//!
//! A record belongs to windows by its own event time ([`WindowInput::ts`]):
//!
//! - tumbling `size`: `[k·size, (k+1)·size)`;
//! - sliding `size`, `slide`: every `[k·slide, k·slide + size)` that holds it;
//! - session `gap`: `[ts, ts + gap)`, merged with every session it overlaps, so a
//!   session is a run of one key's records each less than `gap` after the one before,
//!   from the first record's `ts` to the last one's `ts + gap`.
//!
//! A window `[start, end)` fires with a timer at `end − 1`, that is after every record
//! with time `≤ end − 1`: its result ([`WindowResult`], `firing` 0) is final unless
//! records arrive late. With an allowed lateness `L`, the source passes on records up to
//! `L` behind their partition's watermark (at the watermark's time); such a record adds
//! to its windows, and a window that has fired fires again at once with `firing` 1, 2, …
//! A window's state is dropped at `end − 1 + L`. Records further behind are dead letters
//! at the source.
//!
//! ```
//! use tidelake_operators::window::{Count, WindowFunction, Windows};
//! use tidelake_operators::{harness, Event, Transaction};
//!
//! let tx = |seq: u64, ts: u64| Event::new(ts, 0, seq, Transaction::new("9", ts, 10.0));
//! let events = vec![tx(0, 100), tx(1, 900), tx(2, 1_200), tx(3, 5_000)];
//! let sessions = WindowFunction::new(Windows::Session { gap: 1_000 }, Count, 0);
//! let run = harness::run(sessions, events, 100);
//! let found: Vec<_> = run.main.iter().map(|r| (r.start, r.end, r.value)).collect();
//! assert_eq!(found, [(100, 2_200, 3), (5_000, 6_000, 1)]);
//! ```

use std::convert::Infallible;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use timely::ExchangeData;

use crate::keyed_process::{Collector, Context, KeyedProcessFunction};
use crate::state::{KeyState, MapState};
use crate::stored_key::StoreKey;
use crate::transaction::{AccountId, Transaction};

/// A record windows can group: its key and its event time.
pub trait WindowInput: ExchangeData + Clone {
    /// The key windows are kept per.
    type Key: StoreKey + ExchangeData;
    /// The record's key.
    fn key(&self) -> &Self::Key;
    /// The record's event time (ms).
    fn ts(&self) -> u64;
}

impl WindowInput for Transaction {
    type Key = AccountId;

    fn key(&self) -> &AccountId {
        &self.account_id
    }

    fn ts(&self) -> u64 {
        self.ts
    }
}

/// How records are assigned to windows (all lengths in ms, at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Windows {
    /// Back-to-back windows of `size`.
    Tumbling {
        /// The window's length.
        size: u64,
    },
    /// Windows of `size` starting every `slide`.
    Sliding {
        /// The window's length.
        size: u64,
        /// The distance between window starts.
        slide: u64,
    },
    /// Runs of records less than `gap` apart.
    Session {
        /// The gap that ends a session.
        gap: u64,
    },
}

/// What a window computes of its records: a value it starts from, a step per record, a
/// way to combine two (sessions merge), and its result.
pub trait Aggregate<I>: 'static {
    /// The running value.
    type Acc: Clone + Serialize + DeserializeOwned + 'static;
    /// The window's result.
    type Out: Clone + 'static;
    /// The value of an empty window.
    fn zero(&self) -> Self::Acc;
    /// Adds one record.
    fn add(&self, acc: &mut Self::Acc, input: &I);
    /// Adds the records `other` holds (of a window merged into this one).
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// The result.
    fn result(&self, acc: &Self::Acc) -> Self::Out;
}

/// The number of records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl<I> Aggregate<I> for Count {
    type Acc = u64;
    type Out = u64;
    fn zero(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, _: &I) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// The sum of a value of each record.
#[derive(Clone, Copy, Debug)]
pub struct Sum<I>(pub fn(&I) -> f64);

impl<I: 'static> Aggregate<I> for Sum<I> {
    type Acc = f64;
    type Out = f64;
    fn zero(&self) -> f64 {
        0.0
    }
    fn add(&self, acc: &mut f64, input: &I) {
        *acc += (self.0)(input);
    }
    fn merge(&self, acc: &mut f64, other: f64) {
        *acc += other;
    }
    fn result(&self, acc: &f64) -> f64 {
        *acc
    }
}

/// The least value of a record.
#[derive(Clone, Copy, Debug)]
pub struct Min<I>(pub fn(&I) -> f64);

impl<I: 'static> Aggregate<I> for Min<I> {
    type Acc = f64;
    type Out = f64;
    fn zero(&self) -> f64 {
        f64::INFINITY
    }
    fn add(&self, acc: &mut f64, input: &I) {
        *acc = acc.min((self.0)(input));
    }
    fn merge(&self, acc: &mut f64, other: f64) {
        *acc = acc.min(other);
    }
    fn result(&self, acc: &f64) -> f64 {
        *acc
    }
}

/// The greatest value of a record.
#[derive(Clone, Copy, Debug)]
pub struct Max<I>(pub fn(&I) -> f64);

impl<I: 'static> Aggregate<I> for Max<I> {
    type Acc = f64;
    type Out = f64;
    fn zero(&self) -> f64 {
        f64::NEG_INFINITY
    }
    fn add(&self, acc: &mut f64, input: &I) {
        *acc = acc.max((self.0)(input));
    }
    fn merge(&self, acc: &mut f64, other: f64) {
        *acc = acc.max(other);
    }
    fn result(&self, acc: &f64) -> f64 {
        *acc
    }
}

/// A fold of one's own: `init`, then `step` per record, `combine` for merged sessions.
#[derive(Clone, Debug)]
pub struct Fold<I, A> {
    /// The value of an empty window.
    pub init: A,
    /// Adds one record.
    pub step: fn(&mut A, &I),
    /// Combines two windows' values (sessions).
    pub combine: fn(&mut A, A),
}

impl<I: 'static, A: Clone + Serialize + DeserializeOwned + 'static> Aggregate<I> for Fold<I, A> {
    type Acc = A;
    type Out = A;
    fn zero(&self) -> A {
        self.init.clone()
    }
    fn add(&self, acc: &mut A, input: &I) {
        (self.step)(acc, input);
    }
    fn merge(&self, acc: &mut A, other: A) {
        (self.combine)(acc, other);
    }
    fn result(&self, acc: &A) -> A {
        acc.clone()
    }
}

/// One window's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowResult<K, O> {
    /// The key.
    pub key: K,
    /// The window's start (ms, inclusive).
    pub start: u64,
    /// The window's end (ms, exclusive).
    pub end: u64,
    /// The aggregate of its records.
    pub value: O,
    /// 0 when the frontier passed its end; 1, 2, … for each update by late records.
    pub firing: u32,
}

/// One open window of a key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pane<A> {
    /// The window's end (exclusive).
    pub end: u64,
    /// Its running value.
    pub acc: A,
    /// Whether its result has been emitted since it last grew past the frontier.
    pub fired: bool,
    /// How many times it has been emitted.
    pub firings: u32,
}

/// A key's open windows, by start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "A: Serialize + DeserializeOwned")]
pub struct WindowState<A> {
    /// Start → window.
    pub panes: MapState<u64, Pane<A>>,
}

impl<A> Default for WindowState<A> {
    fn default() -> Self {
        WindowState {
            panes: MapState::default(),
        }
    }
}

impl<A: Serialize + DeserializeOwned + 'static> KeyState for WindowState<A> {
    fn is_empty(&self) -> bool {
        self.panes.is_empty()
    }
}

/// Windows of records `I` with an aggregate `G`: a [`KeyedProcessFunction`] whose main
/// output is each window's [`WindowResult`] (it has no side output).
pub struct WindowFunction<I, G> {
    windows: Windows,
    aggregate: G,
    lateness: u64,
    input: PhantomData<fn(I)>,
}

impl<I: WindowInput, G: Aggregate<I>> WindowFunction<I, G> {
    /// `windows` of `aggregate`, keeping each window `allowed_lateness` ms after its end
    /// for late records. Lengths of 0 are taken as 1 ms.
    pub fn new(windows: Windows, aggregate: G, allowed_lateness: u64) -> Self {
        let windows = match windows {
            Windows::Tumbling { size } => Windows::Tumbling { size: size.max(1) },
            Windows::Sliding { size, slide } => Windows::Sliding {
                size: size.max(1),
                slide: slide.max(1),
            },
            Windows::Session { gap } => Windows::Session { gap: gap.max(1) },
        };
        WindowFunction {
            windows,
            aggregate,
            lateness: allowed_lateness,
            input: PhantomData,
        }
    }

    /// The fixed windows `(start, end)` holding `ts`, earliest first (none for sessions).
    fn windows_of(&self, ts: u64) -> Vec<(u64, u64)> {
        let (size, slide) = match self.windows {
            Windows::Tumbling { size } => (size, size),
            Windows::Sliding { size, slide } => (size, slide),
            Windows::Session { .. } => return Vec::new(),
        };
        let last = ts - ts % slide;
        let mut windows: Vec<(u64, u64)> =
            std::iter::successors(Some(last), |s| s.checked_sub(slide))
                .take_while(|s| s + size > ts)
                .map(|s| (s, s + size))
                .collect();
        windows.reverse();
        windows
    }

    /// Emits `pane` (starting at `start`) as its next firing.
    fn emit(
        &self,
        key: &I::Key,
        start: u64,
        pane: &mut Pane<G::Acc>,
        out: &mut Collector<'_, WindowResult<I::Key, G::Out>, Infallible>,
    ) {
        out.emit(WindowResult {
            key: key.clone(),
            start,
            end: pane.end,
            value: self.aggregate.result(&pane.acc),
            firing: pane.firings,
        });
        pane.fired = true;
        pane.firings += 1;
    }

    /// After `pane` changed at rule time `now`: fires it again at once if its end is
    /// behind `now` (a late record), else makes sure its timer is set.
    fn settle(
        &self,
        ctx: &mut Context<'_, I::Key, WindowState<G::Acc>>,
        start: u64,
        out: &mut Collector<'_, WindowResult<I::Key, G::Out>, Infallible>,
    ) {
        let now = ctx.timestamp();
        let key = ctx.key().clone();
        let Some(pane) = ctx.state().panes.get_mut(&start) else {
            return;
        };
        let fire_at = pane.end - 1;
        if fire_at < now {
            self.emit(&key, start, pane, out);
            let drop_at = fire_at + self.lateness;
            if drop_at >= now {
                ctx.timers().register(drop_at);
            } else {
                ctx.state().panes.remove(&start);
            }
        } else {
            pane.fired = false;
            ctx.timers().register(fire_at);
        }
    }
}

impl<I, G> KeyedProcessFunction for WindowFunction<I, G>
where
    I: WindowInput,
    G: Aggregate<I>,
{
    type Key = I::Key;
    type Input = I;
    type State = WindowState<G::Acc>;
    type Output = WindowResult<I::Key, G::Out>;
    type SideOutput = Infallible;

    fn key(input: &I) -> &I::Key {
        input.key()
    }

    fn process_element(
        &mut self,
        ctx: &mut Context<'_, I::Key, WindowState<G::Acc>>,
        input: I,
        out: &mut Collector<'_, Self::Output, Infallible>,
    ) {
        let ts = input.ts();
        if let Windows::Session { gap } = self.windows {
            let start = self.merge_session(ctx, &input, ts, gap);
            return self.settle(ctx, start, out);
        }
        for (start, end) in self.windows_of(ts) {
            let pane = ctx.state().panes.get_or_insert_with(start, || Pane {
                end,
                acc: self.aggregate.zero(),
                fired: false,
                firings: 0,
            });
            self.aggregate.add(&mut pane.acc, &input);
            self.settle(ctx, start, out);
        }
    }

    fn on_timer(
        &mut self,
        ctx: &mut Context<'_, I::Key, WindowState<G::Acc>>,
        time: u64,
        out: &mut Collector<'_, Self::Output, Infallible>,
    ) {
        let key = ctx.key().clone();
        let lateness = self.lateness;
        let mut expired = Vec::new();
        let mut cleanups = Vec::new();
        for (&start, pane) in ctx.state().panes.iter_mut() {
            if !pane.fired && pane.end - 1 <= time {
                self.emit(&key, start, pane, out);
                cleanups.push(pane.end - 1 + lateness);
            }
            if pane.fired && pane.end - 1 + lateness <= time {
                expired.push(start);
            }
        }
        for start in expired {
            ctx.state().panes.remove(&start);
        }
        for at in cleanups.into_iter().filter(|&at| at > time) {
            ctx.timers().register(at);
        }
    }
}

impl<I: WindowInput, G: Aggregate<I>> WindowFunction<I, G> {
    /// Adds `input` (at `ts`) to the session it falls in, merging every session that
    /// `[ts, ts + gap)` overlaps into one; returns that session's start.
    fn merge_session(
        &self,
        ctx: &mut Context<'_, I::Key, WindowState<G::Acc>>,
        input: &I,
        ts: u64,
        gap: u64,
    ) -> u64 {
        let (mut start, mut end) = (ts, ts + gap);
        let panes = &mut ctx.state().panes;
        let overlapping: Vec<u64> = panes
            .range(..ts + gap)
            .filter(|(_, pane)| pane.end > ts)
            .map(|(&s, _)| s)
            .collect();
        let mut acc = self.aggregate.zero();
        let mut firings = 0;
        for s in overlapping {
            if let Some(pane) = panes.remove(&s) {
                start = start.min(s);
                end = end.max(pane.end);
                firings = firings.max(pane.firings);
                self.aggregate.merge(&mut acc, pane.acc);
            }
        }
        self.aggregate.add(&mut acc, input);
        panes.put(
            start,
            Pane {
                end,
                acc,
                fired: false,
                firings,
            },
        );
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::harness;

    fn tx(seq: u64, account: &str, ts: u64, amount: f64) -> Event<Transaction> {
        Event::new(ts, 0, seq, Transaction::new(account, ts, amount))
    }

    fn found<O: Clone>(results: &[WindowResult<AccountId, O>]) -> Vec<(String, u64, u64, O, u32)> {
        results
            .iter()
            .map(|r| (r.key.to_string(), r.start, r.end, r.value.clone(), r.firing))
            .collect()
    }

    #[test]
    fn tumbling_windows_sum_per_key_and_fire_at_their_end() {
        let events = vec![
            tx(0, "a", 0, 1.0),
            tx(1, "b", 500, 2.0),
            tx(2, "a", 999, 3.0),
            tx(3, "a", 1_000, 4.0),
            tx(4, "a", 3_500, 5.0),
        ];
        let sum = WindowFunction::new(
            Windows::Tumbling { size: 1_000 },
            Sum(|t: &Transaction| t.amount),
            0,
        );
        let run = harness::run(sum, events, 100);
        let mut got = found(&run.main);
        got.sort_by_key(|a| (a.0.clone(), a.1));
        assert_eq!(
            got,
            [
                ("a".into(), 0, 1_000, 4.0, 0),
                ("a".into(), 1_000, 2_000, 4.0, 0),
                ("a".into(), 3_000, 4_000, 5.0, 0),
                ("b".into(), 0, 1_000, 2.0, 0),
            ]
        );
    }

    #[test]
    fn a_record_is_in_every_sliding_window_that_holds_it() {
        let f = WindowFunction::<Transaction, Count>::new(
            Windows::Sliding {
                size: 1_000,
                slide: 300,
            },
            Count,
            0,
        );
        let starts = |ts| {
            f.windows_of(ts)
                .into_iter()
                .map(|(s, _)| s)
                .collect::<Vec<_>>()
        };
        assert_eq!(starts(1_250), [300, 600, 900, 1_200]);
        assert_eq!(starts(100), [0]);
        assert_eq!(starts(0), [0]);
        let events = vec![tx(0, "a", 100, 1.0), tx(1, "a", 650, 1.0)];
        let run = harness::run(f, events, 10);
        let got: Vec<_> = found(&run.main).into_iter().map(|r| (r.1, r.3)).collect();
        assert_eq!(got, [(0, 2), (300, 1), (600, 1)]);
    }

    #[test]
    fn sessions_merge_when_a_record_bridges_them() {
        // 0 and 2 000 are separate sessions until 1 000 arrives (out of order, but on
        // time: the harness's frontier follows the least time still to come).
        let events = vec![
            tx(0, "a", 0, 1.0),
            tx(1, "a", 1_000, 1.0),
            tx(2, "a", 2_000, 1.0),
        ];
        let sessions = WindowFunction::new(Windows::Session { gap: 1_500 }, Count, 0);
        let run = harness::run(sessions, events, 100);
        assert_eq!(found(&run.main), [("a".into(), 0, 3_500, 3, 0)]);
    }

    #[test]
    fn late_records_within_the_lateness_fire_their_window_again() {
        // The record at 900 arrives when the frontier is at 2 000 (the source's late
        // path gives it the watermark's time), after [0, 1000) has fired.
        let late = Event::new(2_000, 0, 2, Transaction::new("a", 900, 5.0));
        let events = vec![tx(0, "a", 100, 1.0), tx(1, "a", 2_000, 1.0), late];
        let f = WindowFunction::new(
            Windows::Tumbling { size: 1_000 },
            Sum(|t: &Transaction| t.amount),
            1_500,
        );
        let run = harness::run(f, events, 100);
        let got = found(&run.main);
        assert_eq!(
            got,
            [
                ("a".into(), 0, 1_000, 1.0, 0),
                ("a".into(), 0, 1_000, 6.0, 1),
                ("a".into(), 2_000, 3_000, 1.0, 0),
            ]
        );
    }
}
