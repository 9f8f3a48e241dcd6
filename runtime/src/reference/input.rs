//! Reads the `accounts` reference data into an arrangement by account ([module
//! docs](super)): worker 0 reads every partition of the accounts source; each version is
//! an update at the tick of its `validFrom`, or at the join's tick when it comes later.
//!
//! The operator holds its capability at 0 until it has read what the source has at
//! start (a whole file, a table's snapshot), then follows the frontier of the
//! transactions at the join ([`JoinFrontier`]), so the join waits for the accounts only
//! as long as they are being read. A bounded source (a file) lets go once it has been
//! read; a followed Delta table is polled every `poll` until the transactions end.

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

use tidelake_operators::AccountId;
use tidelake_operators::time::tick_of;

use super::{AccountRecord, AccountVersion, ArrangedAccounts, route};
use crate::control::JobControl;
use crate::dead_letter::DeadLetter;
use crate::metrics::{Metrics, add};
use crate::sources::{
    Emitter, PartitionReader, ReadBatch, ReadStatus, RuleTime, Source, Watermark,
};

/// An update of the accounts collection.
type Update = ((AccountId, AccountVersion), u64, isize);

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

/// How the accounts input reads and times its updates.
pub struct AccountsSettings {
    /// The job's tick (ms).
    pub tick: u64,
    /// Key groups the job routes keys by.
    pub key_groups: u32,
    /// How often a followed table is polled for new versions.
    pub poll: Duration,
    /// The job's metrics, and this worker's slot in them.
    pub metrics: Arc<Metrics>,
    /// This worker's slot in the metrics.
    pub slot: usize,
    /// Where a read error fails the job.
    pub control: Arc<JobControl>,
}

/// Builds the accounts input on `scope` (see the [module docs](self)).
pub fn read_accounts<'s>(
    scope: Scope<'s, u64>,
    source: Arc<dyn Source<AccountRecord>>,
    settings: AccountsSettings,
) -> AccountsInput<'s> {
    let mut builder = OperatorBuilder::new("Accounts".to_owned(), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address.clone());
    let frontier = JoinFrontier::default();
    frontier.wake(scope.activator_for(info.address.clone()));
    let (updates_out, updates) = builder.new_output::<Vec<Update>>();
    let (dead_out, dead_letters) = builder.new_output::<Vec<DeadLetter>>();
    let mut updates_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Update>>>::from(updates_out);
    let mut dead_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<DeadLetter>>>::from(dead_out);
    let follow = frontier.clone();
    let reads = scope.index() == 0;
    let key_groups = settings.key_groups;

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
            // Everything the source has now, at once: the join waits for it anyway.
            let batch = match reader.read_available(source.as_ref()) {
                Ok(read) => read,
                Err(message) => {
                    settings.control.fail(message);
                    caps = None;
                    return;
                }
            };

            let at = *held[0].time();
            let counters = settings.metrics.worker(settings.slot);
            add(&counters.accounts_read, batch.events.len() as u64);
            let mut late = 0;
            let mut updates = updates_out.activate();
            // All at the held time, each update carrying its own (no earlier) time: one
            // message, not one per time.
            let mut session = updates.session(&held[0]);
            for event in batch.events {
                let due = tick_of(event.record.valid_from, settings.tick);
                late += u64::from(due < at);
                let (account, version) = event.record.into_version();
                session.give(((account, version), due.max(at), 1));
            }
            drop(session);
            drop(updates);
            add(&counters.accounts_late, late);
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
            // Until the join has seen its input's frontier, hold on.
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

    let pact = Exchange::new(move |update: &Update| route(&(update.0).0, key_groups));
    let arranged = arrange_core::<_, _, ValBatcher<AccountId, AccountVersion, u64, isize>, _>(
        updates,
        pact,
        "AccountsByAccount",
        ValBatcher::new,
    );
    AccountsInput {
        arranged,
        dead_letters,
        frontier,
    }
}

/// Worker 0's readers of the accounts source's partitions.
#[derive(Default)]
struct Reader {
    partitions: Option<Vec<Partition>>,
}

struct Partition {
    name: String,
    index: u32,
    reader: Box<dyn PartitionReader<AccountRecord>>,
    watermark: Watermark,
    done: bool,
}

impl Reader {
    /// Opens every partition of `source`.
    fn open(source: &dyn Source<AccountRecord>) -> Result<Vec<Partition>, String> {
        let mut partitions = Vec::new();
        for index in 0..source.partitions() {
            let reader = source
                .open(index)
                .map_err(|e| format!("cannot read the accounts: {e}"))?;
            partitions.push(Partition {
                name: source.source_name(index),
                index,
                reader,
                // Versions come in any order of `validFrom`: none is late.
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
        source: &dyn Source<AccountRecord>,
    ) -> Result<ReadBatch<AccountRecord>, String> {
        let partitions = match &mut self.partitions {
            Some(partitions) => partitions,
            None => self.partitions.insert(Reader::open(source)?),
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
                        return Err(format!(
                            "cannot read the accounts ({}): {e}",
                            partition.name
                        ));
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
