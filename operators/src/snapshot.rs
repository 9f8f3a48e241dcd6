//! Keyed state in checkpoints: key groups, and how a keyed operator hands its state
//! over at snapshot boundaries and starts again from a restored one (the runtime's
//! docs/checkpoints.md has the whole argument).
//!
//! Keys are routed to workers by their **key group**, `stable hash % key groups` (a
//! fixed number, Flink's max parallelism, 128 by default), and group `g` lives on worker
//! `g % workers`. A snapshot holds each non-empty group's entries apart, so a
//! checkpoint taken on one number of workers restores onto any other: each worker loads
//! the groups it owns.
//!
//! Snapshot **boundaries** are the multiples of an interval of rule time. The state a
//! keyed operator holds between two ticks it runs is the effect of exactly the records
//! and timers before every boundary in between; the operator hands it to its
//! [`SnapshotSink`] with that range of boundaries, `(lo, hi]`, before it runs the next
//! tick.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde::{Deserialize, Serialize};

/// The number of key groups unless configured (Flink's default max parallelism).
pub const DEFAULT_KEY_GROUPS: u32 = 128;

/// The key group of a key with stable hash `hash`.
#[inline]
pub fn key_group(hash: u64, key_groups: u32) -> u32 {
    (hash % u64::from(key_groups.max(1))) as u32
}

/// The keyed state of one key group: its keys' `(key, state, timer times)`, encoded
/// with bincode 1 as one list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// The key group.
    pub group: u32,
    /// Keys holding state or timers.
    pub keys: u64,
    /// Pending timers.
    pub timers: u64,
    /// The encoded entries.
    pub entries: Vec<u8>,
}

/// True when some multiple of `interval` lies in `(lo, hi]`.
#[inline]
pub fn holds_boundary(lo: u64, hi: u64, interval: u64) -> bool {
    interval > 0 && hi > lo && hi / interval > lo / interval
}

/// Where a keyed operator hands its state at snapshot boundaries.
pub trait SnapshotSink: 'static {
    /// The operator's state is the effect of exactly the records and timers before
    /// every boundary in `(lo, hi]` (`hi = u64::MAX`: every later one).
    fn deposit(&mut self, lo: u64, hi: u64, groups: Vec<GroupSnapshot>);
    /// The operator will deposit nothing more (its input has ended, or it halted).
    fn finish(&mut self);
    /// The restored state could not be decoded: the job must fail with `message`.
    fn fail(&mut self, message: String);
}

/// The state a keyed operator starts from.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    /// The boundary the state was taken at: the operator has run every tick before it.
    pub boundary: u64,
    /// The groups of this worker.
    pub groups: Vec<GroupSnapshot>,
}

/// How a keyed operator takes part in checkpoints.
pub struct Snapshots {
    /// Rule time (ms) between boundaries, a multiple of the tick.
    pub interval: u64,
    /// The state to start from, if the job restores one.
    pub restored: Option<Restored>,
    /// Where snapshots go.
    pub sink: Box<dyn SnapshotSink>,
}

/// How a keyed operator routes and keeps its keys.
pub struct KeyedOptions {
    /// The quantum of timely time (ms, ≥ 1).
    pub tick: u64,
    /// The key groups keys are routed by.
    pub key_groups: u32,
    /// Checkpoints, if the job takes them.
    pub snapshots: Option<Snapshots>,
    /// Ticks at or after this time are discarded, never run (a savepoint was taken
    /// there, or the job failed); `u64::MAX` while running.
    pub halt_at: Arc<AtomicU64>,
}

impl KeyedOptions {
    /// A tick, the default key groups, and no checkpoints.
    pub fn tick(tick: u64) -> Self {
        KeyedOptions {
            tick,
            key_groups: DEFAULT_KEY_GROUPS,
            snapshots: None,
            halt_at: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_a_boundary_when_a_multiple_lies_in_them() {
        assert!(holds_boundary(0, 10, 10));
        assert!(!holds_boundary(10, 19, 10));
        assert!(holds_boundary(10, 20, 10));
        assert!(holds_boundary(9, u64::MAX, 10));
        assert!(!holds_boundary(5, 5, 10));
        assert!(!holds_boundary(0, 100, 0));
    }

    #[test]
    fn groups_spread_over_workers_as_hashes_do() {
        // With a worker count that divides the key groups, routing by group sends a key
        // where routing by hash did.
        for hash in [0u64, 1, 127, 128, 129, u64::MAX, 0xdead_beef] {
            for workers in [1u64, 2, 4, 8, 128] {
                let group = key_group(hash, 128);
                assert_eq!(u64::from(group) % workers, hash % workers);
            }
        }
    }
}
