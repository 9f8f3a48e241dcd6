//! The as-of join ([module docs](super)): each record takes the version of its
//! account's attributes valid at its event time, from the accounts arrangement.
//!
//! Records are routed by account as the arrangement is, and held by tick. A tick `T`
//! is joined once the arrangement's frontier has passed it: the versions added at ticks
//! up to `T` are those the record may see, and of them the one with the greatest
//! `validFrom ≤ ts` is its (a version's accumulated count over those ticks must be
//! positive). The join lets the arrangement compact up to the least tick it may still
//! be asked about, and tells the accounts input its frontier ([`JoinFrontier`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use differential_dataflow::operators::arrange::Arranged;
use differential_dataflow::trace::TraceReader;
use differential_dataflow::trace::cursor::{Cursor, cursor_list};
use timely::ExchangeData;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::{Capability, Operator};
use timely::progress::Antichain;

use tidelake_operators::AccountId;
use tidelake_operators::history::Featured;

use super::input::JoinFrontier;
use super::{AccountVersion, ArrangedAccounts, route};
use crate::metrics::{Metrics, add};

/// A record with the version of its account valid at its time (`None`: the account is
/// unknown then).
#[derive(Clone, Debug, PartialEq)]
pub struct WithAccount<D> {
    /// The record.
    pub record: D,
    /// Its account's attributes at its time.
    pub account: Option<AccountVersion>,
}

/// How a record names its account and its event time.
pub trait AccountAt {
    /// The account.
    fn account(&self) -> &AccountId;
    /// Its event time (ms).
    fn ts(&self) -> u64;
}

/// Featured transactions name their account and time.
impl AccountAt for Featured {
    fn account(&self) -> &AccountId {
        &self.tx.account_id
    }

    fn ts(&self) -> u64 {
        self.tx.ts
    }
}

/// Joins `records` with the `accounts` arrangement as of each record's time (see the
/// [module docs](self)), telling the accounts input its frontier through `follow`;
/// records of unknown accounts count in `metrics`.
pub fn join_accounts<'s, D>(
    records: StreamVec<'s, u64, D>,
    accounts: ArrangedAccounts<'s>,
    follow: JoinFrontier,
    key_groups: u32,
    metrics: Arc<Metrics>,
    slot: usize,
) -> StreamVec<'s, u64, WithAccount<D>>
where
    D: AccountAt + ExchangeData + Clone,
{
    let Arranged { stream, trace } = accounts;
    let mut trace = Some(trace);
    let pact = Exchange::new(move |record: &D| route(record.account(), key_groups));
    records.binary_frontier::<_, CapacityContainerBuilder<Vec<WithAccount<D>>>, _, _, _, _>(
        stream,
        pact,
        Pipeline,
        "AsOfAccounts",
        move |_initial, _info| {
            let mut pending: BTreeMap<u64, (Capability<u64>, Vec<D>)> = BTreeMap::new();
            move |(records, records_frontier), (batches, accounts_frontier), output| {
                records.for_each_stamp(|stamp, data| {
                    let Some(&time) = stamp.least() else { return };
                    let held = pending
                        .entry(time)
                        .or_insert_with(|| (stamp.delayed(&time, 0), Vec::new()));
                    for container in data {
                        held.1.append(container);
                    }
                });
                // The batches are in the trace already; unread, they would hold back
                // the accounts' frontier.
                batches.for_each(|_, data| data.clear());

                let mut unknown = 0;
                while let Some((&time, _)) = pending.first_key_value() {
                    if accounts_frontier.less_equal(&time) {
                        break;
                    }
                    // The trace is kept while records are held, and an empty upper
                    // bound is always valid: neither `break` is taken.
                    let Some(trace) = trace.as_mut() else { break };
                    let Some(batches) = trace.batches_through(Antichain::new().borrow()) else {
                        break;
                    };
                    let Some((_, (cap, held))) = pending.pop_first() else {
                        break;
                    };
                    let (mut cursor, storage) = cursor_list(batches);
                    let mut session = output.session(&cap);
                    // By account, so that the cursor only ever seeks forward.
                    let mut held = held;
                    held.sort_by(|a, b| a.account().cmp(b.account()));
                    let mut last: Option<AccountId> = None;
                    for record in held {
                        if last.as_ref() == Some(record.account()) {
                            cursor.rewind_vals(&storage);
                        } else {
                            cursor.seek_key(&storage, record.account());
                            last = Some(record.account().clone());
                        }
                        let mut best: Option<&AccountVersion> = None;
                        if cursor.get_key(&storage) == Some(record.account()) {
                            // Versions are ordered by `validFrom` first.
                            while let Some(version) = cursor
                                .get_val(&storage)
                                .filter(|v| v.valid_from <= record.ts())
                            {
                                let mut count = 0isize;
                                cursor.map_times(&storage, |at, diff| {
                                    if *at <= time {
                                        count += *diff;
                                    }
                                });
                                if count > 0 {
                                    best = Some(version);
                                }
                                cursor.step_val(&storage);
                            }
                        }
                        unknown += u64::from(best.is_none());
                        let account = best.cloned();
                        session.give(WithAccount { record, account });
                    }
                }
                if unknown > 0 {
                    add(&metrics.worker(slot).accounts_unknown, unknown);
                }

                // The accounts input follows the records' frontier: what comes
                // after it is late. (Not the held ticks: they wait for it.)
                let mut least = records_frontier.frontier().to_owned();
                follow.set(least.clone());
                // Nothing before the least of that and the held ticks will be
                // asked again.
                if let Some((&time, _)) = pending.first_key_value() {
                    least.insert(time);
                }
                if least.is_empty() {
                    trace = None;
                } else if let Some(trace) = trace.as_mut() {
                    trace.set_logical_compaction(least.borrow());
                    trace.set_physical_compaction(least.borrow());
                }
            }
        },
    )
}
