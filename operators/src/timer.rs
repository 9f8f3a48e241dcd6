//! The timer service: per-key timers in rule time, like Flink's `TimerService`.
//!
//! Each key keeps the set of times it has registered; a shared queue orders all pending
//! timers by `(time, key hash)`, where the key hash is 32 bits of the key's stable hash
//! (the store finds the key by it and checks that the key registered the time, so keys
//! whose hashes are equal stay apart, ordered by key). Timers in the later buckets of
//! about a second of rule time cost the queue 4 bytes a key and bucket ([`TimerQueue`]).
//! Deleting a timer only removes it from the key's set; the queue entry is skipped when it
//! comes up (lazy deletion), so register, delete and re-register are all cheap and a
//! timer fires at most once per registration. The queue counts its live timers, and once
//! deleted entries outnumber them the store drops the deleted ones at once
//! ([`TimerQueue::needs_compaction`]): a rule that deletes most of its timers (the fraud
//! rule clears its flag's timer on the next transaction) would otherwise keep them queued
//! for the rest of their time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// The times one key has registered timers for: none or one inline (the usual case),
/// more in a vector in time order. A store keeps it packed in 8 bytes ([`PackedTimers`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum KeyTimers {
    /// No timer.
    #[default]
    None,
    /// One timer.
    One(u64),
    /// Two or more timers, in time order.
    Many(Vec<u64>),
}

impl KeyTimers {
    /// The registered times, in time order.
    #[inline]
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
    #[inline]
    pub fn contains(&self, time: u64) -> bool {
        self.as_slice().binary_search(&time).is_ok()
    }

    /// Adds `time`; false if it was registered already.
    #[inline]
    fn insert(&mut self, time: u64) -> bool {
        match self {
            KeyTimers::None => *self = KeyTimers::One(time),
            KeyTimers::One(first) if *first == time => return false,
            KeyTimers::One(first) => {
                let first = *first;
                *self = KeyTimers::Many(vec![first.min(time), first.max(time)]);
            }
            KeyTimers::Many(times) => match times.binary_search(&time) {
                Ok(_) => return false,
                Err(i) => times.insert(i, time),
            },
        }
        true
    }

    /// True when another registered time is in `time`'s bucket of the queue.
    #[inline]
    fn shares_bucket(&self, time: u64) -> bool {
        let KeyTimers::Many(times) = self else {
            return false;
        };
        let i = times.partition_point(|&t| t < time);
        let near = |t: Option<&u64>| t.is_some_and(|&t| bucket(t) == bucket(time));
        near(i.checked_sub(1).and_then(|j| times.get(j))) || near(times.get(i + 1))
    }

    /// Removes `time`; true if it was registered.
    #[inline]
    pub(crate) fn remove(&mut self, time: u64) -> bool {
        let KeyTimers::Many(times) = self else {
            let registered = *self == KeyTimers::One(time);
            if registered {
                *self = KeyTimers::None;
            }
            return registered;
        };
        let Ok(i) = times.binary_search(&time) else {
            return false;
        };
        times.remove(i);
        if let [last] = times[..] {
            *self = KeyTimers::One(last);
        }
        true
    }
}

/// A key's registered times as its slot keeps them, 8 bytes: none, one time, or a mark
/// that the store keeps them in a vector apart (two or more times, or one of
/// `u64::MAX - 1` or later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedTimers(u64);

impl PackedTimers {
    const NONE: u64 = u64::MAX;
    const APART: u64 = u64::MAX - 1;

    /// No timer.
    pub(crate) const EMPTY: PackedTimers = PackedTimers(Self::NONE);

    /// True when no time is registered.
    #[inline]
    pub(crate) fn is_empty(self) -> bool {
        self.0 == Self::NONE
    }

    /// True when the times are in a vector apart.
    #[inline]
    pub(crate) fn is_apart(self) -> bool {
        self.0 == Self::APART
    }

    /// The time held inline, if one is.
    #[inline]
    pub(crate) fn inline(&self) -> &[u64] {
        match self.0 {
            Self::NONE | Self::APART => &[],
            _ => std::slice::from_ref(&self.0),
        }
    }
}

impl KeyTimers {
    /// The packed form, and the vector to keep apart if it is marked so.
    #[inline]
    pub(crate) fn pack(self) -> (PackedTimers, Option<Vec<u64>>) {
        match self {
            KeyTimers::None => (PackedTimers::EMPTY, None),
            KeyTimers::One(time) if time < PackedTimers::APART => (PackedTimers(time), None),
            KeyTimers::One(time) => (PackedTimers(PackedTimers::APART), Some(vec![time])),
            KeyTimers::Many(times) => (PackedTimers(PackedTimers::APART), Some(times)),
        }
    }

    /// The times of `packed`, whose vector apart (if it is marked so) is `apart`.
    #[inline]
    pub(crate) fn unpack(packed: PackedTimers, apart: Option<Vec<u64>>) -> KeyTimers {
        match packed.0 {
            PackedTimers::NONE => KeyTimers::None,
            PackedTimers::APART => match apart.unwrap_or_default() {
                times if times.len() >= 2 => KeyTimers::Many(times),
                times => times.into_iter().collect(),
            },
            time => KeyTimers::One(time),
        }
    }
}

impl FromIterator<u64> for KeyTimers {
    fn from_iter<I: IntoIterator<Item = u64>>(times: I) -> Self {
        let mut times: Vec<u64> = times.into_iter().collect();
        times.sort_unstable();
        times.dedup();
        match times[..] {
            [] => KeyTimers::None,
            [time] => KeyTimers::One(time),
            _ => KeyTimers::Many(times),
        }
    }
}

/// Deleted entries the queue may hold beyond its live timers before it is compacted.
const DELETED_SLACK: usize = 4096;

/// A bucket of the queue spans 2^`BUCKET_BITS` ms of rule time (about a second).
const BUCKET_BITS: u32 = 10;

/// The bucket of a timer at `time`.
pub(crate) fn bucket(time: u64) -> u64 {
    time >> BUCKET_BITS
}

/// The queue of pending timers of one worker, ordered by `(time, key hash)`.
///
/// The buckets up to the earliest pending timer's are open: their entries `(time, key
/// hash)` are in a binary heap. Later buckets hold only the hashes of the keys with a
/// time in them (4 bytes a key); the store opens the next one when the heap runs dry
/// ([`open_next`](Self::open_next)), reading those keys' times in it from their slots.
#[derive(Debug, Default)]
pub struct TimerQueue {
    /// Entries of the open buckets, earliest first.
    near: BinaryHeap<Reverse<(u64, u32)>>,
    /// The later buckets: for each, the hash of the key of each timer registered in it.
    far: BTreeMap<u64, Vec<u32>>,
    /// Buckets below this one are open.
    opened: u64,
    /// Hashes in `far`, deleted timers' included.
    far_len: usize,
    /// The capacity of `far`'s vectors, in hashes.
    far_capacity: usize,
    /// Registered timers: queued entries not deleted.
    live: usize,
}

impl TimerQueue {
    /// The earliest time in the open buckets; may belong to a deleted timer.
    #[inline]
    pub(crate) fn peek_near(&self) -> Option<u64> {
        self.near.peek().map(|Reverse((t, _))| *t)
    }

    /// Removes and returns the earliest `(time, key hash)` of the open buckets.
    pub(crate) fn pop_near(&mut self) -> Option<(u64, u32)> {
        self.near.pop().map(|Reverse(entry)| entry)
    }

    /// Opens the earliest bucket not open yet (and every empty one before it): returns
    /// its number and the hashes of the keys that registered a time in it (a hash may
    /// repeat). The store pushes those keys' times in it with
    /// [`push_opened`](Self::push_opened).
    pub(crate) fn open_next(&mut self) -> Option<(u64, Vec<u32>)> {
        let (bucket, hashes) = self.far.pop_first()?;
        self.opened = bucket + 1;
        self.far_len -= hashes.len();
        self.far_capacity -= hashes.capacity();
        Some((bucket, hashes))
    }

    /// Queues a registered timer of a bucket just opened (it is counted live already).
    pub(crate) fn push_opened(&mut self, time: u64, hash: u32) {
        self.near.push(Reverse((time, hash)));
    }

    /// The number of queued entries, deleted ones included.
    #[inline]
    pub fn len(&self) -> usize {
        self.near.len() + self.far_len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated for queued entries: the heap's capacity, and the buckets' vectors
    /// and map entries (the map's nodes counted as their entries' size).
    pub fn allocation_size(&self) -> usize {
        self.near.capacity() * std::mem::size_of::<Reverse<(u64, u32)>>()
            + self.far.len() * std::mem::size_of::<(u64, Vec<u32>)>()
            + self.far_capacity * std::mem::size_of::<u32>()
    }

    /// True when deleted entries outnumber the live timers (and a slack): time for
    /// [`replace`](Self::replace).
    #[inline]
    pub fn needs_compaction(&self) -> bool {
        self.len() > 2 * self.live + DELETED_SLACK
    }

    /// Replaces the queued entries with `live`, the registered timers `(time, key hash)`.
    pub(crate) fn replace(&mut self, live: impl Iterator<Item = (u64, u32)>) {
        self.near.clear();
        self.far.clear();
        self.far_len = 0;
        self.far_capacity = 0;
        self.live = 0;
        for (time, hash) in live {
            self.push(time, hash, false);
        }
    }

    /// Queues a newly registered timer. `shared`: its key has another timer in its
    /// bucket, so an unopened bucket holds the key's hash already (opening it reads all
    /// of the key's times in it).
    pub(crate) fn push(&mut self, time: u64, hash: u32, shared: bool) {
        self.live += 1;
        let bucket = bucket(time);
        if bucket < self.opened {
            self.near.push(Reverse((time, hash)));
            return;
        }
        if shared {
            return;
        }
        let hashes = self.far.entry(bucket).or_default();
        let capacity = hashes.capacity();
        hashes.push(hash);
        self.far_capacity += hashes.capacity() - capacity;
        self.far_len += 1;
    }

    /// Counts a timer deleted, or popped to fire (its entry is gone or dead).
    pub(crate) fn unregistered(&mut self) {
        self.live = self.live.saturating_sub(1);
    }
}

/// The timer service of the key being processed, handed to a rule through its context.
pub struct TimerService<'a> {
    /// The key's hash in the queue (see [`crate::store`]).
    hash: u32,
    registered: &'a mut KeyTimers,
    queue: &'a mut TimerQueue,
}

impl<'a> TimerService<'a> {
    pub(crate) fn new(hash: u32, registered: &'a mut KeyTimers, queue: &'a mut TimerQueue) -> Self {
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
        if self.registered.insert(time) {
            let shared = self.registered.shares_bucket(time);
            self.queue.push(time, self.hash, shared);
        }
    }

    /// Deletes the current key's timer at `time`, if registered.
    pub fn delete(&mut self, time: u64) {
        if self.registered.remove(time) {
            self.queue.unregistered();
        }
    }

    /// Deletes all of the current key's timers.
    pub fn delete_all(&mut self) {
        for _ in self.registered.as_slice() {
            self.queue.unregistered();
        }
        *self.registered = KeyTimers::None;
    }

    /// The times the current key has timers registered for, in time order.
    pub fn registered(&self) -> &[u64] {
        self.registered.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_timers_are_a_set_in_time_order() {
        let mut timers: KeyTimers = [5, 3, 5, 9].into_iter().collect();
        assert_eq!(timers.as_slice(), [3, 5, 9]);
        assert!(timers.insert(7) && !timers.insert(7) && !timers.insert(3));
        assert_eq!(timers.as_slice(), [3, 5, 7, 9]);
        assert!(timers.contains(7) && !timers.contains(8));
        assert!(timers.remove(3) && !timers.remove(3));
        assert!(timers.remove(9) && timers.remove(7));
        assert_eq!(timers, KeyTimers::One(5));
        assert!(timers.insert(1));
        assert_eq!(timers, KeyTimers::Many(vec![1, 5]));
        assert!(timers.remove(1));
        assert!(!timers.remove(4) && timers.remove(5));
        assert!(timers.is_empty() && timers.as_slice().is_empty());
    }

    #[test]
    fn packed_timers_hold_one_time_in_8_bytes_and_more_apart() {
        assert_eq!(std::mem::size_of::<PackedTimers>(), 8);
        let cases: [&[u64]; 6] = [
            &[],
            &[7],
            &[7, 9, 3],
            &[u64::MAX],
            &[u64::MAX - 1],
            &[u64::MAX - 2, u64::MAX],
        ];
        for times in cases {
            let timers: KeyTimers = times.iter().copied().collect();
            let (packed, apart) = timers.clone().pack();
            assert_eq!(packed.is_empty(), times.is_empty(), "{times:?}");
            let inline = times.len() == 1 && times[0] < u64::MAX - 1;
            assert_eq!(apart.is_none(), times.is_empty() || inline, "{times:?}");
            assert_eq!(
                packed.inline(),
                if inline { times } else { &[] },
                "{times:?}"
            );
            assert_eq!(KeyTimers::unpack(packed, apart), timers, "{times:?}");
        }
    }
}
