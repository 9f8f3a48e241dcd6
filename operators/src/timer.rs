//! The timer service: per-key timers in rule time, like Flink's `TimerService`.
//!
//! Each key keeps the set of times it has registered; a shared priority queue orders all
//! pending timers by `(time, stable hash of the key)`, 16 bytes an entry whatever the key
//! (the store finds the key by its hash and checks that it registered the time, so keys
//! whose hashes are equal stay apart). Deleting a timer only removes it from the key's set;
//! the queue entry is skipped when it comes up (lazy deletion), so register, delete and
//! re-register are all cheap and a timer fires at most once per registration. The queue
//! counts its live timers, and once deleted entries outnumber them the store drops the
//! deleted ones at once ([`TimerQueue::needs_compaction`]): a rule that deletes most of its
//! timers (the fraud rule clears its flag's timer on the next transaction) would
//! otherwise keep them queued for the rest of their time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use smallvec::SmallVec;

/// The times one key has registered timers for (usually zero, one or two).
pub type KeyTimers = SmallVec<[u64; 2]>;

/// Deleted entries the queue may hold beyond its live timers before it is compacted.
const DELETED_SLACK: usize = 4096;

/// The queue of pending timers of one worker, ordered by `(time, key hash)`.
#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    /// Registered timers: queued entries not deleted.
    live: usize,
}

impl TimerQueue {
    /// The earliest queued time; may belong to a deleted timer.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Removes and returns the earliest queued `(time, key hash)` if its time is below
    /// `bound`.
    pub fn pop_before(&mut self, bound: u64) -> Option<(u64, u64)> {
        if self.peek_time()? < bound {
            self.heap.pop().map(|Reverse(entry)| entry)
        } else {
            None
        }
    }

    /// The number of queued entries, deleted ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Bytes allocated for queued entries (the queue's capacity).
    pub fn allocation_size(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<Reverse<(u64, u64)>>()
    }

    /// True when deleted entries outnumber the live timers (and a slack): time for
    /// [`replace`](Self::replace).
    pub fn needs_compaction(&self) -> bool {
        self.heap.len() > 2 * self.live + DELETED_SLACK
    }

    /// Replaces the queued entries with `live`, the registered timers; the capacity is
    /// twice them, so the queue grows again without reallocating until the next
    /// compaction.
    pub(crate) fn replace(&mut self, live: impl Iterator<Item = (u64, u64)>) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.clear();
        entries.extend(live.map(Reverse));
        entries.shrink_to(2 * entries.len() + DELETED_SLACK);
        self.live = entries.len();
        self.heap = BinaryHeap::from(entries);
    }

    pub(crate) fn push(&mut self, time: u64, hash: u64) {
        self.heap.push(Reverse((time, hash)));
        self.live += 1;
    }

    /// Counts a timer deleted, or popped to fire (its entry is gone or dead).
    pub(crate) fn unregistered(&mut self) {
        self.live = self.live.saturating_sub(1);
    }
}

/// The timer service of the key being processed, handed to a rule through its context.
pub struct TimerService<'a> {
    /// The key's stable hash.
    hash: u64,
    registered: &'a mut KeyTimers,
    queue: &'a mut TimerQueue,
}

impl<'a> TimerService<'a> {
    pub(crate) fn new(hash: u64, registered: &'a mut KeyTimers, queue: &'a mut TimerQueue) -> Self {
        TimerService {
            hash,
            registered,
            queue,
        }
    }

    /// Registers a timer at rule time `time` (ms) for the current key. Registering a time
    /// that is already registered does nothing. A timer at `T` runs after every record
    /// with time `≤ T` and before any with time `> T`.
    pub fn register(&mut self, time: u64) {
        if !self.registered.contains(&time) {
            self.registered.push(time);
            self.queue.push(time, self.hash);
        }
    }

    /// Deletes the current key's timer at `time`, if registered.
    pub fn delete(&mut self, time: u64) {
        if let Some(i) = self.registered.iter().position(|&t| t == time) {
            self.registered.swap_remove(i);
            self.queue.unregistered();
        }
    }

    /// The times the current key has timers registered for, in no particular order.
    pub fn registered(&self) -> &[u64] {
        self.registered
    }
}
