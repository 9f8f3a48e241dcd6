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

/// The times one key has registered timers for, in no particular order: none or one
/// inline (the usual case), more in a boxed vector; 16 bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum KeyTimers {
    /// No timer.
    #[default]
    None,
    /// One timer.
    One(u64),
    /// Two or more timers.
    Many(Box<Vec<u64>>),
}

impl KeyTimers {
    /// The registered times.
    pub fn as_slice(&self) -> &[u64] {
        match self {
            KeyTimers::None => &[],
            KeyTimers::One(time) => std::slice::from_ref(time),
            KeyTimers::Many(times) => times,
        }
    }

    /// How many times are registered.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True when no time is registered.
    pub fn is_empty(&self) -> bool {
        matches!(self, KeyTimers::None)
    }

    /// True when `time` is registered.
    pub fn contains(&self, time: u64) -> bool {
        self.as_slice().contains(&time)
    }

    /// Adds `time` (the caller checks that it is not registered yet).
    fn push(&mut self, time: u64) {
        *self = match std::mem::take(self) {
            KeyTimers::None => KeyTimers::One(time),
            KeyTimers::One(first) => KeyTimers::Many(Box::new(vec![first, time])),
            KeyTimers::Many(mut times) => {
                times.push(time);
                KeyTimers::Many(times)
            }
        };
    }

    /// Removes `time`; true if it was registered.
    pub(crate) fn remove(&mut self, time: u64) -> bool {
        let KeyTimers::Many(times) = self else {
            let registered = *self == KeyTimers::One(time);
            if registered {
                *self = KeyTimers::None;
            }
            return registered;
        };
        let Some(i) = times.iter().position(|&t| t == time) else {
            return false;
        };
        times.swap_remove(i);
        if let [last] = times[..] {
            *self = KeyTimers::One(last);
        }
        true
    }
}

impl FromIterator<u64> for KeyTimers {
    fn from_iter<I: IntoIterator<Item = u64>>(times: I) -> Self {
        let mut timers = KeyTimers::None;
        for time in times {
            if !timers.contains(time) {
                timers.push(time);
            }
        }
        timers
    }
}

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
        if !self.registered.contains(time) {
            self.registered.push(time);
            self.queue.push(time, self.hash);
        }
    }

    /// Deletes the current key's timer at `time`, if registered.
    pub fn delete(&mut self, time: u64) {
        if self.registered.remove(time) {
            self.queue.unregistered();
        }
    }

    /// The times the current key has timers registered for, in no particular order.
    pub fn registered(&self) -> &[u64] {
        self.registered.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_timers_hold_one_time_inline_in_16_bytes() {
        assert_eq!(std::mem::size_of::<KeyTimers>(), 16);
        let mut timers: KeyTimers = [5, 3, 5, 9].into_iter().collect();
        assert_eq!(timers.as_slice(), [5, 3, 9]);
        assert!(timers.remove(3) && !timers.remove(3));
        assert!(timers.remove(9));
        assert_eq!(timers, KeyTimers::One(5));
        assert!(!timers.remove(4) && timers.remove(5));
        assert!(timers.is_empty() && timers.as_slice().is_empty());
    }
}
