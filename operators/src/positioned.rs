//! Keyed stages in a row: [`Positioned`] runs a rule and gives each of its outputs a
//! rule time and a position, so another keyed stage can take them as its input with
//! the same exact-millisecond order a source's records have.
//!
//! An output of `process_element` gets the time and `(partition, sequence)` of the
//! record that made it, so a rule after it sees the records in their source order. An
//! output of a timer at `T` gets time `T`, partition `u32::MAX` (after the records at
//! `T`) and the stable hash of its key as sequence. Outputs with equal positions (several
//! of one record, or timers of keys whose hashes are equal) were made by one worker, in
//! order, and the next stage's stable sort keeps that order: the result still depends on
//! neither the worker count nor the tick.
//!
//! ```
//! use tidelake_operators::positioned::Positioned;
//! use tidelake_operators::{harness, Event, Transaction, VelocityRule};
//!
//! let tx = |seq: u64, ts: u64| Event::new(ts, 0, seq, Transaction::new("9", ts, 10.0));
//! let run = harness::run(Positioned::new(VelocityRule::new(3, 10_000)), vec![tx(0, 5), tx(1, 7)], 100);
//! assert_eq!(run.main[1].order(), (7, 0, 1));
//! assert_eq!(run.main[1].record.ts, 7);
//! ```

use crate::event::Event;
use crate::key::StableHash;
use crate::keyed_process::{Collector, Context, KeyedProcessFunction};

/// `F`, its outputs as [`Event`]s with positions (see the [module docs](self)).
pub struct Positioned<F: KeyedProcessFunction> {
    function: F,
    main: Vec<F::Output>,
    side: Vec<F::SideOutput>,
}

impl<F: KeyedProcessFunction> Positioned<F> {
    /// `function`, with positioned outputs.
    pub fn new(function: F) -> Self {
        Positioned {
            function,
            main: Vec::new(),
            side: Vec::new(),
        }
    }

    /// Runs `call` with a collector of `F`'s own, then passes what it emitted on, at
    /// `(time, partition, seq)`.
    fn wrap(
        &mut self,
        (time, partition, seq): (u64, u32, u64),
        out: &mut Collector<'_, Event<F::Output>, Event<F::SideOutput>>,
        call: impl FnOnce(&mut F, &mut Collector<'_, F::Output, F::SideOutput>),
    ) {
        let mut inner = Collector {
            main: &mut self.main,
            side: &mut self.side,
        };
        call(&mut self.function, &mut inner);
        for record in self.main.drain(..) {
            out.emit(Event::new(time, partition, seq, record));
        }
        for record in self.side.drain(..) {
            out.emit_side(Event::new(time, partition, seq, record));
        }
    }
}

impl<F: KeyedProcessFunction> KeyedProcessFunction for Positioned<F> {
    type Key = F::Key;
    type Input = F::Input;
    type State = F::State;
    type Output = Event<F::Output>;
    type SideOutput = Event<F::SideOutput>;

    fn key(input: &Self::Input) -> &Self::Key {
        F::key(input)
    }

    fn process_element(
        &mut self,
        ctx: &mut Context<'_, Self::Key, Self::State>,
        input: Self::Input,
        out: &mut Collector<'_, Self::Output, Self::SideOutput>,
    ) {
        let (partition, seq) = ctx.position().unwrap_or((u32::MAX, 0));
        let at = (ctx.timestamp(), partition, seq);
        self.wrap(at, out, |f, inner| f.process_element(ctx, input, inner));
    }

    fn on_timer(
        &mut self,
        ctx: &mut Context<'_, Self::Key, Self::State>,
        time: u64,
        out: &mut Collector<'_, Self::Output, Self::SideOutput>,
    ) {
        let at = (time, u32::MAX, ctx.key().stable_hash());
        self.wrap(at, out, |f, inner| f.on_timer(ctx, time, inner));
    }
}
