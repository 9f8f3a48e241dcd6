//! Runs a keyed rule over a finite list of events in a one-worker dataflow, for
//! examples, tests and benches.
//!
//! Events are fed in the given (arrival) order, each at the tick of its time. After each
//! event the input is advanced to the least tick still to come and the dataflow runs
//! until the operator has caught up, so timers fire between arrivals exactly as they
//! would behind a source whose watermark is that least tick.

use std::cell::RefCell;
use std::rc::Rc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use crate::event::Event;
use crate::keyed_process::{KeyedProcess, KeyedProcessFunction};
use crate::time::tick_of;

/// The outputs of a [`run`].
#[derive(Clone, Debug)]
pub struct Run<O, S> {
    /// Everything the rule emitted on its main output.
    pub main: Vec<O>,
    /// Everything the rule emitted on its side output.
    pub side: Vec<S>,
}

/// Runs `function` on `events` with a tick of `tick` ms and returns its outputs.
pub fn run<F>(function: F, events: Vec<Event<F::Input>>, tick: u64) -> Run<F::Output, F::SideOutput>
where
    F: KeyedProcessFunction + Send,
    F::Output: Send,
    F::SideOutput: Send,
{
    // `execute_directly` wants a `Fn + Sync` closure; it runs it exactly once.
    let job = std::sync::Mutex::new(Some((function, events)));
    timely::execute_directly(move |worker| {
        let (function, events) = job
            .lock()
            .ok()
            .and_then(|mut job| job.take())
            .expect("the harness runs one worker once");
        let main = Rc::new(RefCell::new(Vec::new()));
        let side = Rc::new(RefCell::new(Vec::new()));
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<Event<F::Input>>>>::new();
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            let (main_stream, side_stream) = input
                .to_stream(scope)
                .keyed_process("Keyed", tick, function);
            let (m, s) = (Rc::clone(&main), Rc::clone(&side));
            main_stream
                .inspect(move |x| m.borrow_mut().push(x.clone()))
                .probe_with(&probe);
            side_stream
                .inspect(move |x| s.borrow_mut().push(x.clone()))
                .probe_with(&probe);
        });

        // least_to_come[i]: the least tick among events i.. (u64::MAX past the end).
        let mut least_to_come = vec![u64::MAX; events.len() + 1];
        for (i, event) in events.iter().enumerate().rev() {
            least_to_come[i] = least_to_come[i + 1].min(tick_of(event.time, tick));
        }
        if let Some(&first) = least_to_come.first()
            && first != u64::MAX
        {
            input.advance_to(first);
        }
        for (i, event) in events.into_iter().enumerate() {
            input.send(event);
            let next = least_to_come[i + 1];
            if next == u64::MAX {
                break;
            }
            if next > *input.time() {
                input.advance_to(next);
            }
            worker.step_while(|| probe.less_than(input.time()));
        }
        input.close();
        worker.step_while(|| !probe.done());
        let main = main.borrow_mut().drain(..).collect();
        let side = side.borrow_mut().drain(..).collect();
        Run { main, side }
    })
}
