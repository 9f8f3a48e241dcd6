//! The timer service: per-key timers in rule time, like Flink's `TimerService`.
//!
//! Each key keeps the set of times it has registered; a shared priority queue orders all
//! pending timers by `(time, key)`. Deleting a timer only removes it from the key's set;
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

/// The queue of pending timers of one worker, ordered by `(time, key)`.
#[derive(Debug)]
pub struct TimerQueue<K: Ord> {
    heap: BinaryHeap<Reverse<(u64, K)>>,
    /// Registered timers: queued entries not deleted.
    live: usize,
}

impl<K: Ord> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            live: 0,
        }
    }
}

impl<K: Ord + Clone> TimerQueue<K> {
    /// The earliest queued time; may belong to a deleted timer.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Removes and returns the earliest queued `(time, key)` if its time is below `bound`.
    pub fn pop_before(&mut self, bound: u64) -> Option<(u64, K)> {
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
        self.heap.capacity() * std::mem::size_of::<Reverse<(u64, K)>>()
    }

    /// True when deleted entries outnumber the live timers (and a slack): time for
    /// [`retain_live`](Self::retain_live).
    pub fn needs_compaction(&self) -> bool {
        self.heap.len() > 2 * self.live + DELETED_SLACK
    }

    /// Keeps the entries `is_live` says are registered; the capacity shrinks to twice
    /// them, so the queue grows again without reallocating until the next compaction.
    pub(crate) fn retain_live(&mut self, mut is_live: impl FnMut(u64, &K) -> bool) {
        self.heap.retain(|Reverse((time, key))| is_live(*time, key));
        self.heap.shrink_to(2 * self.heap.len() + DELETED_SLACK);
        self.live = self.heap.len();
    }

    pub(crate) fn push(&mut self, time: u64, key: K) {
        self.heap.push(Reverse((time, key)));
        self.live += 1;
    }

    /// Counts a timer deleted, or popped to fire (its entry is gone or dead).
    pub(crate) fn unregistered(&mut self) {
        self.live = self.live.saturating_sub(1);
    }
}

/// The timer service of the key being processed, handed to a rule through its context.
pub struct TimerService<'a, K: Ord> {
    key: &'a K,
    registered: &'a mut KeyTimers,
    queue: &'a mut TimerQueue<K>,
}

impl<'a, K: Ord + Clone> TimerService<'a, K> {
    pub(crate) fn new(
        key: &'a K,
        registered: &'a mut KeyTimers,
        queue: &'a mut TimerQueue<K>,
    ) -> Self {
        TimerService {
            key,
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
            self.queue.push(time, self.key.clone());
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
