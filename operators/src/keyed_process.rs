//! The keyed-process API and the timely operator that runs it.
//!
//! A rule implements [`KeyedProcessFunction`]: `process_element` for each record,
//! `on_timer` for each timer it registered, per-key [`KeyState`], and two outputs (main
//! and side). [`KeyedProcess::keyed_process`] turns a stream of [`Event`]s into those two
//! output streams:
//!
//! 1. records are exchanged by the [`StableHash`] of their key;
//! 2. each worker buffers them by timely time (the tick of their rule time);
//! 3. once the input frontier has passed a tick, its records and the timers due in it
//!    run in exact-millisecond order: records by `(time, partition, seq)`, and a timer at
//!    `T` after every record with time `≤ T` and before any with time `> T`.
//!
//! So the tick changes batching and latency, never results. Outputs are emitted at the
//! tick being processed.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use timely::ExchangeData;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{Stream, StreamVec};
use timely::progress::operate::FrontierInterest;

use crate::event::Event;
use crate::key::StableHash;
use crate::snapshot::{KeyedOptions, Snapshots, holds_boundary, key_group};
use crate::state::KeyState;
use crate::store::{KeyedStore, Located, StoreSize};
use crate::stored_key::{KeyRef, StoreKey};
use crate::time::tick_of;
use crate::timer::TimerService;

/// A keyed rule, like Flink's `KeyedProcessFunction`.
///
/// The runtime routes every record to the worker that owns its key, keeps one
/// [`State`](Self::State) per key, and calls `process_element` for each record and
/// `on_timer` for each due timer, in the order described in the [module docs](self).
pub trait KeyedProcessFunction: 'static {
    /// The key records are partitioned and their state kept by.
    type Key: StoreKey + ExchangeData;
    /// The records the rule consumes.
    type Input: ExchangeData + Clone;
    /// The state kept per key.
    type State: KeyState;
    /// Records of the main output.
    type Output: Clone + 'static;
    /// Records of the side output (alerts, late data, …; an enum for several kinds).
    type SideOutput: Clone + 'static;

    /// The key of a record.
    fn key(input: &Self::Input) -> &Self::Key;

    /// Processes one record of the current key.
    fn process_element(
        &mut self,
        ctx: &mut Context<'_, Self::Key, Self::State>,
        input: Self::Input,
        out: &mut Collector<'_, Self::Output, Self::SideOutput>,
    );

    /// Runs the current key's timer at rule time `time`.
    fn on_timer(
        &mut self,
        ctx: &mut Context<'_, Self::Key, Self::State>,
        time: u64,
        out: &mut Collector<'_, Self::Output, Self::SideOutput>,
    );
}

/// What a rule sees of the current key: its state, its timers, and the current time.
pub struct Context<'a, K: StoreKey, S> {
    /// The key, or the form the store keeps, loaded from there when the rule asks.
    key: KeyRef<'a, K>,
    loaded: OnceCell<Cow<'a, K>>,
    state: &'a mut S,
    timers: TimerService<'a>,
    timestamp: u64,
    position: Option<(u32, u64)>,
    watermark: u64,
}

impl<'a, K: StoreKey, S> Context<'a, K, S> {
    /// The current key.
    pub fn key(&self) -> &K {
        self.loaded.get_or_init(|| self.key.load())
    }

    /// The current key's state.
    pub fn state(&mut self) -> &mut S {
        self.state
    }

    /// The current key's timer service.
    pub fn timers(&mut self) -> &mut TimerService<'a> {
        &mut self.timers
    }

    /// The rule time (ms) of the record being processed, or of the timer being run.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The source position `(partition, sequence)` of the record being processed;
    /// `None` in a timer.
    pub fn position(&self) -> Option<(u32, u64)> {
        self.position
    }

    /// The input frontier (ms): every record with a tick below it has arrived. `u64::MAX`
    /// once the input has ended.
    pub fn current_watermark(&self) -> u64 {
        self.watermark
    }
}

/// Where a rule emits: the main output and the side output.
pub struct Collector<'a, O, S> {
    pub(crate) main: &'a mut Vec<O>,
    pub(crate) side: &'a mut Vec<S>,
}

impl<O, S> Collector<'_, O, S> {
    /// Emits a record on the main output.
    #[inline]
    pub fn emit(&mut self, record: O) {
        self.main.push(record);
    }

    /// Emits a record on the side output.
    #[inline]
    pub fn emit_side(&mut self, record: S) {
        self.side.push(record);
    }
}

/// The main and side output streams of a keyed operator.
pub type KeyedOutputs<'s, O, S> = (StreamVec<'s, u64, O>, StreamVec<'s, u64, S>);

/// Runs a [`KeyedProcessFunction`] on a stream of events.
pub trait KeyedProcess<'s, R> {
    /// Exchanges the events by key and runs `function` on them with frontier-driven
    /// timers. `tick` (ms, ≥ 1) is the quantum of timely time: an event runs at timely
    /// time `tick_of(event.time, tick)` and must arrive no later than that.
    fn keyed_process<F>(
        self,
        name: &str,
        tick: u64,
        function: F,
    ) -> KeyedOutputs<'s, F::Output, F::SideOutput>
    where
        Self: Sized,
        F: KeyedProcessFunction<Input = R>,
    {
        self.keyed_process_with(name, KeyedOptions::tick(tick), function, |_| {})
    }

    /// [`keyed_process`](Self::keyed_process) with `options` (tick, key groups and
    /// checkpoints: [`crate::snapshot`]), calling `on_size` with the size of the worker's
    /// keyed store after every tick it runs (for state accounting).
    fn keyed_process_with<F, O>(
        self,
        name: &str,
        options: KeyedOptions,
        function: F,
        on_size: O,
    ) -> KeyedOutputs<'s, F::Output, F::SideOutput>
    where
        F: KeyedProcessFunction<Input = R>,
        O: FnMut(StoreSize) + 'static;
}

/// The records of one tick and the capabilities to emit at it, one per output.
struct TickBatch<R> {
    caps: [Capability<u64>; 2],
    events: Vec<Event<R>>,
}

impl<'s, R: ExchangeData + Clone> KeyedProcess<'s, R> for Stream<'s, u64, Vec<Event<R>>> {
    fn keyed_process_with<F, O>(
        self,
        name: &str,
        options: KeyedOptions,
        mut function: F,
        mut on_size: O,
    ) -> KeyedOutputs<'s, F::Output, F::SideOutput>
    where
        F: KeyedProcessFunction<Input = R>,
        O: FnMut(StoreSize) + 'static,
    {
        let KeyedOptions {
            tick,
            key_groups,
            snapshots,
            halt_at,
        } = options;
        assert!(tick >= 1, "the tick must be at least 1 ms");
        let mut builder = OperatorBuilder::new(name.to_owned(), self.scope());
        let mut input = builder.new_input(
            self,
            Exchange::new(move |e: &Event<R>| {
                u64::from(key_group(F::key(&e.record).stable_hash(), key_groups))
            }),
        );
        // Snapshots are taken as the frontier passes boundaries, capabilities or not.
        let interest = match snapshots {
            Some(_) => FrontierInterest::Always,
            None => FrontierInterest::IfCapability,
        };
        builder.set_notify_for(0, interest);
        let (main_out, main_stream) = builder.new_output::<Vec<F::Output>>();
        let (side_out, side_stream) = builder.new_output::<Vec<F::SideOutput>>();
        let mut main_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<F::Output>>>::from(main_out);
        let mut side_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<F::SideOutput>>>::from(side_out);

        builder.build(move |initial| {
            let mut pending: BTreeMap<u64, TickBatch<R>> = BTreeMap::new();
            let mut store: KeyedStore<F::Key, F::State> = KeyedStore::default();
            let mut snapshots = snapshots.map(|s| SnapshotState::start(s, key_groups, &mut store));
            // Capabilities at (or below) the tick of the earliest pending timer; a
            // restored state's timers hold the initial ones.
            let mut initial = initial.into_iter();
            let mut timer_caps: Option<[Capability<u64>; 2]> =
                match (store.next_timer(), initial.next(), initial.next()) {
                    (Some(t), Some(main), Some(side)) => {
                        Some([main, side].map(|cap| cap.delayed(&tick_of(t, tick))))
                    }
                    _ => None,
                };
            let mut main_buf: Vec<F::Output> = Vec::new();
            // Where each event's key was found, located for a whole tick at once.
            let mut located: Vec<Located> = Vec::new();
            let mut side_buf: Vec<F::SideOutput> = Vec::new();

            let mut halted = false;
            move |frontiers| {
                input.for_each_stamp(|icap, data| {
                    let Some(&t) = icap.least() else { return };
                    if halted {
                        return;
                    }
                    // timely groups a stamp's containers with an unstable sort, so they
                    // come in no set order. Put back in order within each source
                    // partition, the runs of one partition (its batches) append into one
                    // run, and the sort below merges one run per partition.
                    let mut containers: Vec<&mut Vec<Event<R>>> = data.collect();
                    containers.sort_by_key(|c| c.first().map(|e| (e.partition, e.order())));
                    for container in containers {
                        // Sources send each event at its own tick; anyone else may send
                        // it earlier, and it still runs at its own tick.
                        if container.iter().all(|e| tick_of(e.time, tick) <= t) {
                            tick_batch(&mut pending, &icap, t).events.append(container);
                        } else {
                            for event in container.drain(..) {
                                let k = tick_of(event.time, tick).max(t);
                                tick_batch(&mut pending, &icap, k).events.push(event);
                            }
                        }
                    }
                });
                if halted {
                    return;
                }

                let frontier = &frontiers[0];
                let watermark = frontier.frontier().first().copied().unwrap_or(u64::MAX);
                let mut main = main_out.activate();
                let mut side = side_out.activate();
                loop {
                    let record_tick = pending.first_key_value().map(|(&t, _)| t);
                    let timer_tick = store.next_timer().map(|t| tick_of(t, tick));
                    let Some(k) = record_tick.into_iter().chain(timer_tick).min() else {
                        break;
                    };
                    if frontier.less_equal(&k) {
                        break;
                    }
                    if let Some(snap) = &mut snapshots {
                        // The state is that of every boundary up to k.
                        snap.deposit_up_to(k, &store);
                    }
                    // Past a savepoint, or after a failure, nothing more runs.
                    if k >= halt_at.load(std::sync::atomic::Ordering::Acquire) {
                        halted = true;
                        if let Some(snap) = &mut snapshots {
                            snap.halt();
                        }
                        pending.clear();
                        timer_caps = None;
                        store = KeyedStore::default();
                        return;
                    }
                    let (caps, mut events) = match pending.first_entry() {
                        Some(entry) if *entry.key() == k => {
                            let batch = entry.remove();
                            (batch.caps, batch.events)
                        }
                        _ => {
                            let held = timer_caps
                                .as_ref()
                                .expect("a pending timer holds capabilities");
                            ([held[0].delayed(&k), held[1].delayed(&k)], Vec::new())
                        }
                    };

                    // A tick holds a few runs already in order (one per source partition
                    // and batch), which the stable sort merges instead of re-sorting.
                    events.sort_by_key(Event::order);
                    // Sent containers leave the buffer without capacity: most rules emit
                    // a record for each they read.
                    main_buf.reserve(events.len());
                    let mut out = Collector {
                        main: &mut main_buf,
                        side: &mut side_buf,
                    };
                    located.clear();
                    located.extend(events.iter().map(|e| store.locate(F::key(&e.record))));
                    for (event, &located) in events.into_iter().zip(&located) {
                        fire_timers_before(
                            &mut function,
                            &mut store,
                            event.time,
                            watermark,
                            &mut out,
                        );
                        store.entry_located(F::key(&event.record), located).run(
                            |key, state, timers| {
                                let mut ctx = Context {
                                    key,
                                    loaded: OnceCell::new(),
                                    state,
                                    timers,
                                    timestamp: event.time,
                                    position: Some((event.partition, event.seq)),
                                    watermark,
                                };
                                function.process_element(&mut ctx, event.record, &mut out);
                            },
                        );
                    }
                    fire_timers_before(
                        &mut function,
                        &mut store,
                        k.saturating_add(tick),
                        watermark,
                        &mut out,
                    );

                    if !main_buf.is_empty() {
                        main.session(&caps[0]).give_container(&mut main_buf);
                        main_buf.clear();
                    }
                    if !side_buf.is_empty() {
                        side.session(&caps[1]).give_container(&mut side_buf);
                        side_buf.clear();
                    }
                    // Every timer below k + tick has run, so the rest are at ticks > k.
                    timer_caps = store
                        .next_timer()
                        .map(|t| caps.each_ref().map(|cap| cap.delayed(&tick_of(t, tick))));
                    if let Some(snap) = &mut snapshots {
                        snap.ran(k);
                    }
                    // After every tick: one activation may run all remaining ticks, whose
                    // timers empty the state by its end.
                    on_size(store.size());
                }
                if let Some(snap) = &mut snapshots {
                    // Nothing runs until the next pending tick or the frontier, whichever
                    // is first: the state is that of every boundary up to there.
                    let record_tick = pending.first_key_value().map(|(&t, _)| t);
                    let timer_tick = store.next_timer().map(|t| tick_of(t, tick));
                    let next = [
                        record_tick,
                        timer_tick,
                        frontier.frontier().first().copied(),
                    ]
                    .into_iter()
                    .flatten()
                    .min();
                    match next {
                        Some(next) => snap.deposit_up_to(next, &store),
                        None => snap.finish(&store),
                    }
                }
            }
        });
        (main_stream, side_stream)
    }
}

/// A keyed operator's part in checkpoints: where its state goes, and the range of
/// boundaries it has not deposited yet.
struct SnapshotState {
    config: Snapshots,
    key_groups: u32,
    /// The state is that of every boundary above this one (exclusive) up to the next
    /// tick that runs.
    valid_from: u64,
    /// Boundaries up to here (inclusive) have been deposited.
    deposited_to: u64,
    finished: bool,
}

impl SnapshotState {
    /// Loads the restored state, if any, into `store`.
    fn start<K, S>(mut config: Snapshots, key_groups: u32, store: &mut KeyedStore<K, S>) -> Self
    where
        K: StoreKey + Serialize + DeserializeOwned,
        S: KeyState,
    {
        let mut valid_from = 0;
        if let Some(restored) = config.restored.take() {
            if let Err(message) = store.restore(&restored.groups) {
                config.sink.fail(message);
            }
            // Valid for the restored boundary itself.
            valid_from = restored.boundary.saturating_sub(1);
        }
        SnapshotState {
            config,
            key_groups,
            valid_from,
            deposited_to: valid_from,
            finished: false,
        }
    }

    /// Deposits the state for the boundaries up to `hi` not deposited yet.
    fn deposit_up_to<K, S>(&mut self, hi: u64, store: &KeyedStore<K, S>)
    where
        K: StoreKey + Serialize + DeserializeOwned,
        S: KeyState,
    {
        let lo = self.deposited_to.max(self.valid_from);
        if holds_boundary(lo, hi, self.config.interval) {
            self.config
                .sink
                .deposit(lo, hi, store.snapshot(self.key_groups));
            self.deposited_to = hi;
        }
    }

    /// Tick `k` has run: the state is now that of the boundaries after it.
    fn ran(&mut self, k: u64) {
        self.valid_from = k;
        self.deposited_to = self.deposited_to.max(k);
    }

    /// The input has ended with everything run: the state is that of every boundary
    /// from here on, and nothing more comes.
    fn finish<K, S>(&mut self, store: &KeyedStore<K, S>)
    where
        K: StoreKey + Serialize + DeserializeOwned,
        S: KeyState,
    {
        if !self.finished {
            self.deposit_up_to(u64::MAX, store);
            self.finished = true;
            self.config.sink.finish();
        }
    }

    /// The operator halted: nothing more runs or is deposited.
    fn halt(&mut self) {
        if !self.finished {
            self.finished = true;
            self.config.sink.finish();
        }
    }
}

/// The batch of tick `k`, created with capabilities from `icap` if absent.
fn tick_batch<'p, R>(
    pending: &'p mut BTreeMap<u64, TickBatch<R>>,
    icap: &timely::dataflow::operators::InputCapability<u64>,
    k: u64,
) -> &'p mut TickBatch<R> {
    pending.entry(k).or_insert_with(|| TickBatch {
        caps: [icap.delayed(&k, 0), icap.delayed(&k, 1)],
        events: Vec::new(),
    })
}

/// Runs, in `(time, key hash)` order, every registered timer with time below `bound`.
fn fire_timers_before<F: KeyedProcessFunction>(
    function: &mut F,
    store: &mut KeyedStore<F::Key, F::State>,
    bound: u64,
    watermark: u64,
    out: &mut Collector<'_, F::Output, F::SideOutput>,
) {
    while let Some((time, entry)) = store.pop_timer_before(bound) {
        entry.run(|key, state, timers| {
            let mut ctx = Context {
                key,
                loaded: OnceCell::new(),
                state,
                timers,
                timestamp: time,
                position: None,
                watermark,
            };
            function.on_timer(&mut ctx, time, out);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use timely::container::CapacityContainerBuilder;
    use timely::dataflow::InputHandle;

    use super::*;
    use crate::fraud::FraudDetector;
    use crate::transaction::Transaction;

    /// The state is sized after every tick, so a peak is seen even when one activation
    /// runs every tick and the timers of the last ones empty the state.
    #[test]
    fn state_size_is_reported_per_tick_even_in_one_activation() {
        let peak = Arc::new(Mutex::new(0_usize));
        let seen = Arc::clone(&peak);
        timely::execute_directly(move |worker| {
            let seen = Arc::clone(&seen);
            let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<_>>>::new();
            worker.dataflow::<u64, _, _>(|scope| {
                input.to_stream(scope).keyed_process_with(
                    "Keyed",
                    KeyedOptions::tick(100),
                    FraudDetector::new(),
                    move |size: StoreSize| {
                        let mut peak = seen.lock().expect("not poisoned");
                        *peak = (*peak).max(size.keys);
                    },
                );
            });
            for (seq, time) in (0..10_u64).map(|i| (i, i * 100)) {
                let account = format!("a{seq}");
                let small = Transaction::new(&account, time, 0.5);
                input.send(Event::new(time, 0, seq, small));
            }
            // Close the input before the operator ever runs: one activation sees it all.
            drop(input);
        });
        assert_eq!(*peak.lock().expect("not poisoned"), 10);
    }
}
