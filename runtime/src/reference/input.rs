//! Reads reference data into a differential collection ([module docs](super)): the
//! `accounts` into an arrangement by account, the model's late `labels`
//! (docs/scoring.md §5) into a collection. Worker 0 reads every partition of the source;
//! each row is an update at the tick of the event time it applies from (an account
//! version's `validFrom`, a label's transaction time), or at the follower's tick when it
//! comes later (late, counted).
//!
//! The operator holds its capability at 0 until it has read what the source has at
//! start (a whole file, a table's snapshot), then follows the frontier of the records at
//! the operator that uses the rows ([`JoinFrontier`]), so that operator waits for them
//! only as long as they are being read. A bounded source (a file) lets go once it has
//! been read; a followed Delta table is polled every `poll` until the records end.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use differential_dataflow::operators::arrange::arrangement::arrange_core;
use differential_dataflow::trace::implementations::ValBatcher;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{Scope, StreamVec};
use timely::progress::Antichain;
use timely::scheduling::Activator;

use timely::ExchangeData;

use tidelake_operators::AccountId;
use tidelake_operators::time::tick_of;

use super::{AccountRecord, AccountVersion, ArrangedAccounts, route};
use crate::control::JobControl;
use crate::dead_letter::DeadLetter;
use crate::metrics::{Metrics, WorkerMetrics, add};
use crate::sources::{
    Emitter, PartitionReader, ReadBatch, ReadStatus, RuleTime, Source, SourceRecord, Watermark,
};

/// A row of reference data, as [`read_reference`] reads it.
pub trait ReferenceRecord: SourceRecord {
    /// What the collection holds of a row.
    type Data: ExchangeData;
    /// The event time (ms) the row applies from.
    fn applies_from(&self) -> u64;
    /// The row as the collection holds it.
    fn into_data(self) -> Self::Data;
}

impl ReferenceRecord for AccountRecord {
    type Data = (AccountId, AccountVersion);

    fn applies_from(&self) -> u64 {
        self.valid_from
    }

    fn into_data(self) -> Self::Data {
        self.into_version()
    }
}

/// A reference input's counters in a worker's metrics: rows read, rows late.
pub type RowCounters = (
    fn(&WorkerMetrics) -> &std::sync::atomic::AtomicU64,
    fn(&WorkerMetrics) -> &std::sync::atomic::AtomicU64,
);

/// An update of a reference collection.
pub type Update<D> = (D, u64, isize);

/// Records read per call of a partition reader.
const READ_BATCH: usize = 4_096;

/// The frontier of the transactions at the join, which the accounts input follows: the
/// join sets it, and wakes the input when it moves.
#[derive(Clone, Default)]
pub struct JoinFrontier(Rc<RefCell<Link>>);

#[derive(Default)]
struct Link {
    /// `None` until the join first sees its input's frontier.
    frontier: Option<Antichain<u64>>,
    activator: Option<Activator>,
}

impl JoinFrontier {
    /// The join's input frontier is `frontier`.
    pub(crate) fn set(&self, frontier: Antichain<u64>) {
        let mut link = self.0.borrow_mut();
        if link.frontier.as_ref() != Some(&frontier) {
            link.frontier = Some(frontier);
            if let Some(activator) = &link.activator {
                activator.activate();
            }
        }
    }

    fn get(&self) -> Option<Antichain<u64>> {
        self.0.borrow().frontier.clone()
    }

    fn wake(&self, activator: Activator) {
        self.0.borrow_mut().activator = Some(activator);
    }
}

/// What a reference input makes: its updates, its dead letters, and the link the
/// operator using them must set.
pub struct ReferenceInput<'s, D> {
    /// The collection's updates (all on worker 0).
    pub updates: StreamVec<'s, u64, Update<D>>,
    /// Rows of the source that could not be read.
    pub dead_letters: StreamVec<'s, u64, DeadLetter>,
    /// The frontier the input follows.
    pub frontier: JoinFrontier,
}

/// What the accounts input makes: the arrangement, its dead letters, and the link the
/// join must set.
pub struct AccountsInput<'s> {
    /// The accounts by account.
    pub arranged: ArrangedAccounts<'s>,
    /// Rows of the accounts source that could not be read.
    pub dead_letters: StreamVec<'s, u64, DeadLetter>,
    /// The frontier the input follows.
    pub frontier: JoinFrontier,
}

/// How a reference input reads and times its updates.
pub struct ReferenceSettings {
    /// What the rows are (`accounts`, `labels`), for messages.
    pub what: &'static str,
    /// The job's tick (ms).
    pub tick: u64,
    /// How often a followed table is polled for new rows.
    pub poll: Duration,
    /// The counters of rows read and of rows late.
    pub counters: RowCounters,
    /// The job's metrics, and this worker's slot in them.
    pub metrics: Arc<Metrics>,
    /// This worker's slot in the metrics.
    pub slot: usize,
    /// Where a read error fails the job.
    pub control: Arc<JobControl>,
}

/// Builds the accounts input on `scope` (see the [module docs](self)), arranged by
/// account on the worker that owns each account's key group (of `key_groups`).
pub fn read_accounts<'s>(
    scope: Scope<'s, u64>,
    source: Arc<dyn Source<AccountRecord>>,
    settings: ReferenceSettings,
    key_groups: u32,
) -> AccountsInput<'s> {
    let input = read_reference(scope, source, settings);
    let pact = Exchange::new(move |update: &Update<(AccountId, AccountVersion)>| {
        route(&(update.0).0, key_groups)
    });
    let arranged = arrange_core::<_, _, ValBatcher<AccountId, AccountVersion, u64, isize>, _>(
        input.updates,
        pact,
        "AccountsByAccount",
        ValBatcher::new,
    );
    AccountsInput {
        arranged,
        dead_letters: input.dead_letters,
        frontier: input.frontier,
    }
}

/// Builds a reference input of `source` on `scope` (see the [module docs](self)).
pub fn read_reference<'s, R: ReferenceRecord>(
    scope: Scope<'s, u64>,
    source: Arc<dyn Source<R>>,
    settings: ReferenceSettings,
) -> ReferenceInput<'s, R::Data> {
    let mut builder = OperatorBuilder::new(format!("Reference({})", settings.what), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address.clone());
    let frontier = JoinFrontier::default();
    frontier.wake(scope.activator_for(info.address.clone()));
    let (updates_out, updates) = builder.new_output::<Vec<Update<R::Data>>>();
    let (dead_out, dead_letters) = builder.new_output::<Vec<DeadLetter>>();
    let mut updates_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Update<R::Data>>>>::from(updates_out);
    let mut dead_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<DeadLetter>>>::from(dead_out);
    let follow = frontier.clone();
    let reads = scope.index() == 0;

    builder.build(move |initial| {
        // Only worker 0 reads; the others never send anything.
        let mut caps: Option<Vec<Capability<u64>>> = reads.then_some(initial);
        let mut reader = Reader::default();
        move |_frontiers| {
            let Some(held) = caps.as_mut() else { return };
            if settings.control.error().is_some() {
                caps = None;
                return;
            }
            // Everything the source has now, at once: the follower waits for it anyway.
            let batch = match reader.read_available(source.as_ref(), settings.what) {
                Ok(read) => read,
                Err(message) => {
                    settings.control.fail(message);
                    caps = None;
                    return;
                }
            };

            let at = *held[0].time();
            let counters = settings.metrics.worker(settings.slot);
            let (read, late_counter) = settings.counters;
            add(read(counters), batch.events.len() as u64);
            let mut late = 0;
            let mut updates = updates_out.activate();
            // All at the held time, each update carrying its own (no earlier) time: one
            // message, not one per time.
            let mut session = updates.session(&held[0]);
            for event in batch.events {
                let due = tick_of(event.record.applies_from(), settings.tick);
                late += u64::from(due < at);
                session.give((event.record.into_data(), due.max(at), 1));
            }
            drop(session);
            drop(updates);
            add(late_counter(counters), late);
            if !batch.dead_letters.is_empty() {
                for letter in &batch.dead_letters {
                    counters.dead_letter(letter.reason, 1);
                }
                let mut dead = dead_out.activate();
                dead.session(&held[1])
                    .give_iterator(batch.dead_letters.into_iter());
            }

            if reader.done() {
                caps = None;
                return;
            }
            // Until the follower has seen its input's frontier, hold on.
            if let Some(frontier) = follow.get() {
                match frontier.as_option() {
                    None => {
                        caps = None;
                        return;
                    }
                    Some(&join) if join > at => {
                        for cap in held.iter_mut() {
                            cap.downgrade(&join);
                        }
                    }
                    Some(_) => {}
                }
            }
            activator.activate_after(settings.poll);
        }
    });

    ReferenceInput {
        updates,
        dead_letters,
        frontier,
    }
}

/// Worker 0's readers of a reference source's partitions.
struct Reader<R> {
    partitions: Option<Vec<Partition<R>>>,
}

impl<R> Default for Reader<R> {
    fn default() -> Self {
        Reader { partitions: None }
    }
}

struct Partition<R> {
    name: String,
    index: u32,
    reader: Box<dyn PartitionReader<R>>,
    watermark: Watermark,
    done: bool,
}

impl<R: SourceRecord> Reader<R> {
    /// Opens every partition of `source`.
    fn open(source: &dyn Source<R>, what: &str) -> Result<Vec<Partition<R>>, String> {
        let mut partitions = Vec::new();
        for index in 0..source.partitions() {
            let reader = source
                .open(index)
                .map_err(|e| format!("cannot read the {what}: {e}"))?;
            partitions.push(Partition {
                name: source.source_name(index),
                index,
                reader,
                // Rows come in any order of their times: none is late.
                watermark: Watermark::new(u64::MAX),
                done: false,
            });
        }
        Ok(partitions)
    }

    /// Reads everything every partition of `source` has now (opening them the first
    /// time).
    fn read_available(
        &mut self,
        source: &dyn Source<R>,
        what: &str,
    ) -> Result<ReadBatch<R>, String> {
        let partitions = match &mut self.partitions {
            Some(partitions) => partitions,
            None => self.partitions.insert(Reader::open(source, what)?),
        };
        let mut batch = ReadBatch::default();
        for partition in partitions {
            while !partition.done {
                let mut emit = Emitter::new(
                    &partition.name,
                    partition.index,
                    RuleTime::Event,
                    &mut partition.watermark,
                    0,
                    1,
                    &mut batch,
                );
                match partition.reader.read(READ_BATCH, &mut emit) {
                    Ok(ReadStatus::More) => {}
                    Ok(ReadStatus::Done) => partition.done = true,
                    Ok(ReadStatus::Idle | ReadStatus::Waiting) => break,
                    Err(e) => {
                        return Err(format!("cannot read the {what} ({}): {e}", partition.name));
                    }
                }
            }
        }
        Ok(batch)
    }

    /// True once every partition has ended.
    fn done(&self) -> bool {
        self.partitions.iter().flatten().all(|p| p.done)
    }
}
