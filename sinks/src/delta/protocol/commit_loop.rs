//! The one retry loop of every commit tidelake makes — the epoch sink's, OPTIMIZE's and
//! VACUUM's: put-if-absent at the next version and, when another writer took it, read
//! the winners and let the operation's [`ConflictCheck`] say whether its commit can
//! follow them (`shared/notes/delta-writer.md` §3).
//!
//! 1. Put the commit at `version`, if absent. Done if it lands.
//! 2. Lost (the version is taken) or unknown (a store error: a timeout, a 5xx): back off
//!    (fully jittered, doubling; see [`crate::delta::protocol::backoff`]), then read every commit from
//!    `version` on, as far as they exist. One with our `txnId` is ours: a put whose
//!    outcome was unknown did land. Any other goes to the check, which lets the commit
//!    go on, stops it (the operation's reason), or fails it (a conflict). The backoff
//!    comes before the read, not after: the retry must follow the freshest read, or a
//!    steady writer keeps taking the version.
//! 3. Put again at the first version not read. [`MAX_STORE_ERRORS`] store errors (puts
//!    or reads) end the loop with the last one; `max_attempts` puts end it with a
//!    [`DeltaError::Conflict`]: other writers kept taking the next version.

use std::convert::Infallible;
use std::time::Duration;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::Action;
use crate::delta::protocol::backoff::{Backoff, DEFAULT_MAX_BACKOFF, DEFAULT_MIN_BACKOFF};
use crate::delta::protocol::log::CommitOutcome;
use crate::delta::protocol::table::DeltaTable;

/// Failed puts or reads of one commit (not lost races) before the error is returned.
pub const MAX_STORE_ERRORS: u32 = 5;

/// Attempts at one commit before giving up, unless a writer says otherwise. Each lost
/// race means another writer committed, so the table made progress: many writers
/// sealing epochs at once on a slow store may make one writer lose hundreds in a row
/// (docs/scaling.md §4).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 1_000;

/// How a commit retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Puts before giving up (default 1,000).
    pub max_attempts: u32,
    /// The first backoff after a lost race; it doubles up to `max_backoff` and is
    /// jittered to between none and all of itself (default 1 ms).
    pub min_backoff: Duration,
    /// The longest backoff (default 100 ms).
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

/// What an operation says of a commit another writer put before its own.
pub trait ConflictCheck {
    /// Why the operation stops without committing (say, its epoch is committed already).
    type Stop;

    /// Checks `actions`, the commit at `version`, which is not ours: `Ok(None)` if ours
    /// can follow it, `Ok(Some(stop))` to stop without committing, an error (a
    /// [`DeltaError::Conflict`]) to fail.
    fn check(&mut self, version: u64, actions: &[Action])
    -> Result<Option<Self::Stop>, DeltaError>;
}

/// The check of commits that conflict with nothing (VACUUM's `commitInfo`-only ones).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoConflicts;

impl ConflictCheck for NoConflicts {
    type Stop = Infallible;

    fn check(&mut self, _: u64, _: &[Action]) -> Result<Option<Infallible>, DeltaError> {
        Ok(None)
    }
}

/// Where a commit ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Landing<S> {
    /// At `version`, after `attempts` puts.
    Committed {
        /// The table version.
        version: u64,
        /// Puts it took (1 without contention).
        attempts: u32,
    },
    /// Not at all: the check stopped it at another writer's commit at `version`.
    Stopped {
        /// The commit that stopped it.
        version: u64,
        /// Why.
        stop: S,
    },
}

impl<S> Landing<S> {
    /// The first version after every commit this one read or wrote.
    pub fn next_version(&self) -> u64 {
        match self {
            Landing::Committed { version, .. } | Landing::Stopped { version, .. } => version + 1,
        }
    }
}

/// Commits `actions`, whose `commitInfo.txnId` is `txn_id`, to `table` at `version` or
/// the first version after it that is free once `check` has passed every commit in
/// between; see the [module docs](self). `what` names the commit in messages (`epoch 7
/// of job-w0`).
pub async fn commit_with_retries<C: ConflictCheck>(
    table: &DeltaTable,
    mut version: u64,
    actions: &[Action],
    txn_id: &str,
    what: &str,
    retry: Retry,
    check: &mut C,
) -> Result<Landing<C::Stop>, DeltaError> {
    let mut backoff = Backoff::new(retry.min_backoff, retry.max_backoff);
    let mut store_errors = 0;
    let mut count = |error: DeltaError| match store_errors + 1 >= MAX_STORE_ERRORS {
        true => Err(error),
        false => {
            store_errors += 1;
            Ok(())
        }
    };
    for attempt in 1..=retry.max_attempts {
        match table.try_commit(version, actions).await {
            Ok(CommitOutcome::Committed) => {
                return Ok(Landing::Committed {
                    version,
                    attempts: attempt,
                });
            }
            Ok(CommitOutcome::VersionTaken) => tracing::debug!(
                table = table.location(),
                version,
                attempt,
                "the commit of {what} lost version {version} to another writer; retrying"
            ),
            Err(error @ DeltaError::Store { .. }) => {
                tracing::warn!(
                    table = table.location(),
                    version,
                    "the commit of {what} at version {version}: {error}; reading back whether it landed"
                );
                count(error)?;
            }
            Err(e) => return Err(e),
        }
        backoff.sleep().await;
        loop {
            let winner = match table.read_commit_if_exists(version).await {
                Ok(Some(winner)) => winner,
                Ok(None) => break,
                Err(error @ DeltaError::Store { .. }) => {
                    count(error)?;
                    break;
                }
                Err(e) => return Err(e),
            };
            if has_txn_id(&winner, txn_id) {
                return Ok(Landing::Committed {
                    version,
                    attempts: attempt,
                });
            }
            if let Some(stop) = check.check(version, &winner)? {
                return Ok(Landing::Stopped { version, stop });
            }
            version += 1;
        }
    }
    Err(DeltaError::Conflict {
        table: table.location().to_owned(),
        version,
        detail: format!(
            "gave up committing {what} after {} attempts: other writers kept taking the next version",
            retry.max_attempts
        ),
    })
}

/// True if `actions` are the commit whose `commitInfo.txnId` is `txn_id`.
fn has_txn_id(actions: &[Action], txn_id: &str) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::CommitInfo(info) if info.txn_id.as_deref() == Some(txn_id)))
}
