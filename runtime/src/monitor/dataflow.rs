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
        let mut state = WorkerState {
            operators: HashMap::new(),
            channel_source: HashMap::new(),
            exchanged: HashMap::new(),
            running: HashMap::new(),
            published: Instant::now(),
        };
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

/// What the logging callback of one worker keeps.
struct WorkerState {
    /// Operator id → its figures.
    operators: HashMap<usize, OperatorStats>,
    /// Channel id → the address of the operator that sends on it (channels can be
    /// logged before their source operator is).
    channel_source: HashMap<usize, Vec<usize>>,
    /// Operator address → records it sent on its outputs.
    exchanged: HashMap<Vec<usize>, i64>,
    /// Operator id → when its running activation started.
    running: HashMap<usize, Duration>,
    published: Instant,
}

impl WorkerState {
    fn record(&mut self, event: &TimelyEvent, at: Duration) {
        match event {
            TimelyEvent::Operates(op) => {
                self.operators.insert(
                    op.id,
                    OperatorStats {
                        name: op.name.clone(),
                        addr: op.addr.clone(),
                        ..OperatorStats::default()
                    },
                );
            }
            TimelyEvent::Channels(channel) => {
                let mut addr = channel.scope_addr.clone();
                addr.push(channel.source.0);
                self.channel_source.insert(channel.id, addr);
            }
            TimelyEvent::Messages(m) if m.is_send => {
                if let Some(addr) = self.channel_source.get(&m.channel) {
                    *self.exchanged.entry(addr.clone()).or_default() += m.record_count;
                }
            }
            TimelyEvent::Schedule(s) => match s.start_stop {
                StartStop::Start => {
                    self.running.insert(s.id, at);
                }
                StartStop::Stop => {
                    if let (Some(started), Some(op)) =
                        (self.running.remove(&s.id), self.operators.get_mut(&s.id))
                    {
                        op.activations += 1;
                        op.busy_micros += at.saturating_sub(started).as_micros() as u64;
                    }
                }
            },
            _ => {}
        }
    }

    fn snapshot(&self, worker: usize) -> Vec<OperatorStats> {
        self.operators
            .values()
            .map(|op| OperatorStats {
                worker,
                records_sent: self.exchanged.get(&op.addr).copied().unwrap_or(0),
                ..op.clone()
            })
            .collect()
    }
}
