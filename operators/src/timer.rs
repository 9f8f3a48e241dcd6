//! The timer service: per-key timers in rule time, like Flink's `TimerService`.
//!
//! Each key keeps the set of times it has registered; a shared priority queue orders all
//! pending timers by `(time, key)`. Deleting a timer only removes it from the key's set;
//! the queue entry is skipped when it comes up (lazy deletion), so register, delete and
//! re-register are all cheap and a timer fires at most once per registration.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use smallvec::SmallVec;

/// The times one key has registered timers for (usually zero, one or two).
pub type KeyTimers = SmallVec<[u64; 2]>;

/// The queue of pending timers of one worker, ordered by `(time, key)`.
#[derive(Debug)]
pub struct TimerQueue<K: Ord> {
    heap: BinaryHeap<Reverse<(u64, K)>>,
}

impl<K: Ord> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
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

    pub(crate) fn push(&mut self, time: u64, key: K) {
        self.heap.push(Reverse((time, key)));
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
        }
    }

    /// The times the current key has timers registered for, in no particular order.
    pub fn registered(&self) -> &[u64] {
        self.registered
    }
}
