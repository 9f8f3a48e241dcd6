//! The job's dataflow as timely sees it, for the monitoring page: every operator of
//! every local worker (name, address), how often it was scheduled and for how long,
//! and the records it sent on its outputs — from timely's own logging
//! (`Operates`, `Schedule`, `Channels` and `Messages` events), registered on a worker
//! only when the job is monitored.
//!
//! The logging callback runs inside `worker.step()`; it only adds to counters of its
//! worker and, about once a second, copies them where the page reads them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};

/// What one operator of one worker did so far.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct OperatorStats {
    /// The global worker index.
    pub worker: usize,
    /// The operator's name (`Source`, `FraudDetector`, `TransactionsTable`, …).
    pub name: String,
    /// Its address in the dataflow (`[0, 3]`).
    pub addr: Vec<usize>,
    /// Times it was scheduled.
    pub activations: u64,
    /// Time spent running it, in µs.
    pub busy_micros: u64,
    /// Records it sent on its outputs (to its own worker and, over exchanges, to others).
    pub records_sent: i64,
}

/// The operators of every local worker, as last published by each.
#[derive(Debug, Default)]
pub struct Dataflow {
    workers: Mutex<HashMap<usize, Vec<OperatorStats>>>,
}

/// How often a worker copies its figures for the page.
const PUBLISH: Duration = Duration::from_secs(1);

impl Dataflow {
    /// Every operator of every local worker, by worker then address.
    pub fn operators(&self) -> Vec<OperatorStats> {
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<OperatorStats> = workers.values().flatten().cloned().collect();
        all.sort_by(|a, b| (a.worker, &a.addr).cmp(&(b.worker, &b.addr)));
        all
    }

    fn publish(&self, worker: usize, operators: Vec<OperatorStats>) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.insert(worker, operators);
    }

    /// Registers the logging of `worker` (global index `index`); call before the
    /// worker builds its dataflow.
    pub fn register(self: &std::sync::Arc<Self>, worker: &timely::worker::Worker, index: usize) {
        let Some(mut registry) = worker.log_register() else {
            return;
        };
        let shared = std::sync::Arc::clone(self);
        let mut state = WorkerState::new();
        registry.insert::<TimelyEventBuilder, _>("timely", move |_elapsed, data| {
            if let Some(batch) = data {
                for (at, event) in batch.iter() {
                    state.record(event, *at);
                }
            }
            // Also on a flush (no batch), so an idle worker's last figures show.
            if state.published.elapsed() >= PUBLISH {
                state.published = Instant::now();
                shared.publish(index, state.snapshot(index));
            }
        });
    }
}

/// What the logging callback of one worker keeps; indexed by the small integers timely
/// numbers operators and channels with, so an event costs a few array accesses.
struct WorkerState {
    /// Operator id → its figures.
    operators: Vec<Option<OperatorStats>>,
    /// Operator id → when its running activation started.
    running: Vec<Option<Duration>>,
    /// Channel id → the slot in `sent` of the operator that sends on it.
    channel_source: Vec<Option<usize>>,
    /// Operator address → its slot in `sent` (channels can be logged before their
    /// source operator is, so they are matched by address).
    slots: HashMap<Vec<usize>, usize>,
    /// Records sent on each slot's outputs.
    sent: Vec<i64>,
    published: Instant,
}

/// `vec[index]`, growing `vec` with `None` to reach it.
fn slot<T>(vec: &mut Vec<Option<T>>, index: usize) -> &mut Option<T> {
    if vec.len() <= index {
        vec.resize_with(index + 1, || None);
    }
    &mut vec[index]
}

impl WorkerState {
    fn new() -> Self {
        WorkerState {
            operators: Vec::new(),
            running: Vec::new(),
            channel_source: Vec::new(),
            slots: HashMap::new(),
            sent: Vec::new(),
            published: Instant::now(),
        }
    }

    /// The slot of the operator at `addr`.
    fn slot_of(&mut self, addr: &[usize]) -> usize {
        if let Some(&slot) = self.slots.get(addr) {
            return slot;
        }
        self.sent.push(0);
        self.slots.insert(addr.to_vec(), self.sent.len() - 1);
        self.sent.len() - 1
    }

    fn record(&mut self, event: &TimelyEvent, at: Duration) {
        match event {
            TimelyEvent::Messages(m) if m.is_send => {
                if let Some(Some(slot)) = self.channel_source.get(m.channel) {
                    self.sent[*slot] += m.record_count;
                }
            }
            TimelyEvent::Schedule(s) => match s.start_stop {
                StartStop::Start => *slot(&mut self.running, s.id) = Some(at),
                StartStop::Stop => {
                    let started = slot(&mut self.running, s.id).take();
                    if let (Some(started), Some(Some(op))) = (started, self.operators.get_mut(s.id))
                    {
                        op.activations += 1;
                        op.busy_micros += at.saturating_sub(started).as_micros() as u64;
                    }
                }
            },
            TimelyEvent::Operates(op) => {
                *slot(&mut self.operators, op.id) = Some(OperatorStats {
                    name: op.name.clone(),
                    addr: op.addr.clone(),
                    ..OperatorStats::default()
                });
            }
            TimelyEvent::Channels(channel) => {
                let mut addr = channel.scope_addr.clone();
                addr.push(channel.source.0);
                let source = self.slot_of(&addr);
                *slot(&mut self.channel_source, channel.id) = Some(source);
            }
            _ => {}
        }
    }

    fn snapshot(&self, worker: usize) -> Vec<OperatorStats> {
        self.operators
            .iter()
            .flatten()
            .map(|op| OperatorStats {
                worker,
                records_sent: self.slots.get(&op.addr).map_or(0, |&s| self.sent[s]),
                ..op.clone()
            })
            .collect()
    }
}
