//! Reference data joined to the stream as of each record's event time (docs/semantics.md
//! §2, "Reference data"): the `accounts` table ([`accounts`]) is read into a
//! differential-dataflow arrangement by account ([`input`]), which the as-of join
//! ([`as_of_join`]) looks transactions up in.
//!
//! The arrangement's time is the job's: a version is added at the tick of its
//! `validFrom`, or — when it arrives after the join has passed that tick (a late
//! update, counted) — at the tick the join is at. A transaction at tick `T` is looked up
//! once the arrangement is complete through `T`, so it sees exactly the versions added
//! at ticks up to `T`, and takes the latest whose `validFrom ≤ ts`. A late version
//! applies from its arrival on and never rewrites rows already emitted. Accounts read
//! before the transactions they affect (a file, a table's snapshot at start) give the
//! same rows for any worker count and arrival order.

pub mod accounts;
pub mod as_of_join;
pub mod input;
pub mod labels;

use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::ValSpine;

use tidelake_operators::AccountId;
use tidelake_operators::StableHash;
use tidelake_operators::snapshot::key_group;

pub use accounts::{AccountRecord, AccountVersion};
pub use labels::LabelRecord;

/// The arrangement's storage: account → versions, at the job's ticks.
pub type AccountsSpine = ValSpine<AccountId, AccountVersion, u64, isize>;

/// The accounts, arranged by account on the worker that owns each account's key group.
pub type ArrangedAccounts<'s> = Arranged<'s, TraceAgent<AccountsSpine>>;

/// The worker index (modulo the peers) that owns `account`: its key group, as keyed
/// operators route it, so an account's versions and transactions meet on one worker.
pub(crate) fn route(account: &AccountId, key_groups: u32) -> u64 {
    u64::from(key_group(account.stable_hash(), key_groups))
}
