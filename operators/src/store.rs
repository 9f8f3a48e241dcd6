//! The keyed store of one worker: each key's state and registered timers, and the
//! queue of pending timers.
//!
//! The slots (key, state, timers) lie in one vector without holes: a removed slot's
//! place takes the last one. A hash table maps each key's hash (32 bits of its
//! [`StableHash`]) to its slot's index (4 bytes an entry), and keys are compared in full,
//! so a hash collision never merges two keys. The timer queue holds `(time, key hash)`
//! ([`crate::timer`]); a timer that comes up fires for the key of that hash that
//! registered the time (the least such key, if several did). A key's slot is dropped as
//! soon as its state is empty and it has no timer. The store serialises (serde) as a list
//! of `(key, state, timers)`, which is what a state snapshot holds.

use std::borrow::Cow;
use std::collections::BTreeMap;

use hashbrown::hash_map::{Entry, OccupiedEntry};
use hashbrown::{HashMap, HashTable};
use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::key::StableHash;
use crate::snapshot::{GroupSnapshot, key_group};
use crate::state::KeyState;
use crate::stored_key::{KeyRef, StoreKey};
use crate::timer::{self, KeyTimers, PackedTimers, TimerQueue, TimerService};

/// A key's hash in the store and the timer queue: 32 bits of its stable hash.
#[inline]
fn short_hash<K: StableHash>(key: &K) -> u32 {
    key.stable_hash() as u32
}

/// The hash the index files a short hash under: hashbrown places an entry by the low bits
/// and tags it with the top 7.
#[inline]
fn table_hash(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

struct Slot<K, S> {
    key: K,
    state: S,
    timers: PackedTimers,
}

/// One key's entry in a [`KeyedStore`].
#[must_use = "an entry does nothing until it runs"]
pub struct KeyEntry<'a, K: StoreKey, S> {
    store: &'a mut KeyedStore<K, S>,
    hash: u32,
    place: Place<K>,
    /// The time of the timer that came up for it ([`KeyedStore::pop_timer_before`]):
    /// unregistered as the entry runs.
    fired: Option<u64>,
}

/// Where a [`KeyEntry`] is: a slot in the store, or a new key that gets a slot only if
/// it holds something after the rule ran (a key that leaves nothing is never added).
enum Place<K> {
    Occupied(usize),
    Vacant(K),
}

impl<K: StoreKey, S: KeyState> KeyEntry<'_, K, S> {
    /// Runs `f` on the key, its state and its timer service, then drops the entry if its
    /// state is empty and it has no timer.
    #[inline]
    pub fn run<R>(self, f: impl FnOnce(KeyRef<'_, K>, &mut S, TimerService<'_>) -> R) -> R {
        let KeyEntry {
            store,
            hash,
            place,
            fired,
        } = self;
        // One call of `f`, so that the compiler inlines the rule here.
        let mut new_state = S::default();
        let (key, state, packed, lent) = match &place {
            Place::Occupied(index) => {
                let slot = &mut store.slots[*index];
                let lent = if slot.timers.is_apart() {
                    store.apart.lend(*index)
                } else {
                    None
                };
                (
                    KeyRef::Stored(&slot.key),
                    &mut slot.state,
                    slot.timers,
                    lent,
                )
            }
            Place::Vacant(key) => (KeyRef::Key(key), &mut new_state, PackedTimers::EMPTY, None),
        };
        let (apart, lent) = lent.unzip();
        let mut timers = KeyTimers::unpack(packed, apart);
        if let Some(time) = fired {
            timers.remove(time);
        }
        let result = f(
            key,
            state,
            TimerService::new(hash, &mut timers, &mut store.queue),
        );
        let (packed, apart) = timers.pack();
        match place {
            Place::Occupied(index) => {
                match lent {
                    Some(lent) => lent.give_back(apart),
                    None => store.apart.put(index, apart),
                }
                let slot = &mut store.slots[index];
                slot.timers = packed;
                if slot.is_empty() {
                    store.remove(hash, index);
                }
            }
            Place::Vacant(key) => {
                if !(new_state.is_empty() && packed.is_empty()) {
                    let index = store.slots.len();
                    let slot = Slot {
                        key: key.to_stored(),
                        state: new_state,
                        timers: packed,
                    };
                    store.push(hash, slot);
                    store.apart.put(index, apart);
                }
            }
        }
        result
    }
}

impl<K, S: KeyState> Slot<K, S> {
    /// True when the key holds no state and no timer.
    fn is_empty(&self) -> bool {
        self.state.is_empty() && self.timers.is_empty()
    }
}

/// Where [`KeyedStore::locate`] found a key: its hash and its slot, if it had one.
#[derive(Clone, Copy, Debug)]
pub struct Located {
    hash: u32,
    slot: Option<u32>,
}

/// The registered times of the keys whose slots mark them apart ([`PackedTimers`]), by
/// slot index.
#[derive(Default)]
struct Apart {
    times: HashMap<u32, Vec<u64>>,
    /// The vectors' capacity, in times.
    capacity: usize,
}

impl Apart {
    /// Removes and returns the times of the slot at `index`.
    fn take(&mut self, index: usize) -> Option<Vec<u64>> {
        let times = self.times.remove(&(index as u32))?;
        self.capacity -= times.capacity();
        Some(times)
    }

    /// Keeps `times` (if any) as those of the slot at `index`.
    fn put(&mut self, index: usize, times: Option<Vec<u64>>) {
        if let Some(times) = times {
            self.capacity += times.capacity();
            self.times.insert(index as u32, times);
        }
    }

    /// Lends the times of the slot at `index` (one lookup), their place kept for
    /// [`Lent::give_back`].
    fn lend(&mut self, index: usize) -> Option<(Vec<u64>, Lent<'_>)> {
        let Entry::Occupied(mut entry) = self.times.entry(index as u32) else {
            return None;
        };
        let times = std::mem::take(entry.get_mut());
        self.capacity -= times.capacity();
        Some((
            times,
            Lent {
                entry,
                capacity: &mut self.capacity,
            },
        ))
    }

    /// Bytes allocated: the map's buckets and the vectors.
    fn allocation_size(&self) -> usize {
        self.times.capacity() * (std::mem::size_of::<(u32, Vec<u64>)>() + 1)
            + self.capacity * std::mem::size_of::<u64>()
    }
}

/// The place of times [`Apart::lend`] lent.
struct Lent<'a> {
    entry: OccupiedEntry<'a, u32, Vec<u64>>,
    capacity: &'a mut usize,
}

impl Lent<'_> {
    /// Puts the slot's times back, or drops their place if the slot keeps none apart.
    fn give_back(mut self, times: Option<Vec<u64>>) {
        match times {
            Some(times) => {
                *self.capacity += times.capacity();
                *self.entry.get_mut() = times;
            }
            None => {
                self.entry.remove();
            }
        }
    }
}

/// The slots of the keys whose hash is `hash`.
fn slots_with_hash<'s, T: StableHash, S>(
    index: &'s HashTable<u32>,
    slots: &'s [Slot<T, S>],
    hash: u32,
) -> impl Iterator<Item = usize> + 's {
    index
        .iter_hash(table_hash(hash))
        .map(|&i| i as usize)
        .filter(move |&i| short_hash(&slots[i].key) == hash)
}

/// The registered times of the slot at `index`, in time order.
fn times_of<'s, T, S>(slots: &'s [Slot<T, S>], apart: &'s Apart, index: usize) -> &'s [u64] {
    let timers = &slots[index].timers;
    if timers.is_apart() {
        apart.times.get(&(index as u32)).map_or(&[], Vec::as_slice)
    } else {
        timers.inline()
    }
}

/// Per-key state and timers of one worker.
pub struct KeyedStore<K: StoreKey, S> {
    /// The index of each key's slot, by the key's hash.
    index: HashTable<u32>,
    /// The keys' slots, without holes.
    slots: Vec<Slot<K::Stored, S>>,
    /// The times of keys with more than one timer.
    apart: Apart,
    queue: TimerQueue,
}

impl<K: StoreKey, S> Default for KeyedStore<K, S> {
    fn default() -> Self {
        KeyedStore {
            index: HashTable::new(),
            slots: Vec::new(),
            apart: Apart::default(),
            queue: TimerQueue::default(),
        }
    }
}

impl<K, S> KeyedStore<K, S>
where
    K: StoreKey,
    S: KeyState,
{
    /// The entry of `key`, created with empty state if absent. Run the rule on it with
    /// [`KeyEntry::run`], which drops the entry afterwards if it holds nothing.
    #[inline]
    pub fn entry(&mut self, key: &K) -> KeyEntry<'_, K, S> {
        let located = Located {
            hash: short_hash(key),
            slot: None,
        };
        self.entry_located(key, located)
    }

    /// Where `key`'s slot is now, for [`entry_located`](Self::entry_located). Locating
    /// a batch of keys first and then running the rule on each lets the processor
    /// overlap the lookups' cache misses: they do not depend on each other, while each
    /// rule run depends on the one before.
    #[inline]
    pub fn locate(&self, key: &K) -> Located {
        let hash = short_hash(key);
        Located {
            hash,
            slot: self.find(hash, key),
        }
    }

    /// The index of `key`'s slot (its hash `hash`), if it has one.
    #[inline(always)]
    fn find(&self, hash: u32, key: &K) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(table_hash(hash), |&i| {
                key.is_stored_as(&slots[i as usize].key)
            })
            .copied()
    }

    /// The entry of `key`, as [`entry`](Self::entry), where `located` is what
    /// [`locate`](Self::locate) said of it, perhaps before other keys were added or
    /// dropped: a slot that no longer holds the key is looked up again.
    #[inline]
    pub fn entry_located(&mut self, key: &K, located: Located) -> KeyEntry<'_, K, S> {
        if self.queue.needs_compaction() {
            self.drop_deleted_timers();
        }
        let Located { hash, slot } = located;
        let still_there =
            |&i: &u32| (self.slots.get(i as usize)).is_some_and(|s| key.is_stored_as(&s.key));
        let place = match slot.filter(still_there).or_else(|| self.find(hash, key)) {
            Some(index) => Place::Occupied(index as usize),
            None => Place::Vacant(key.clone()),
        };
        KeyEntry {
            store: self,
            hash,
            place,
            fired: None,
        }
    }

    /// Adds `slot` (its key absent) under `hash`.
    fn push(&mut self, hash: u32, slot: Slot<K::Stored, S>) {
        let index = self.slots.len();
        let Ok(entry) = u32::try_from(index) else {
            panic!("a worker's keyed store holds at most {} keys", u32::MAX)
        };
        self.slots.push(slot);
        let slots = &self.slots;
        self.index.insert_unique(table_hash(hash), entry, |&i| {
            table_hash(short_hash(&slots[i as usize].key))
        });
    }

    /// Removes the slot at `index` (its key's hash `hash`); the last slot takes its place.
    fn remove(&mut self, hash: u32, index: usize) {
        let found = self
            .index
            .find_entry(table_hash(hash), |&i| i as usize == index);
        if let Ok(entry) = found {
            entry.remove();
        }
        self.slots.swap_remove(index);
        if let Some(moved) = self.slots.get(index) {
            let last = self.slots.len();
            if moved.timers.is_apart() {
                let times = self.apart.take(last);
                self.apart.put(index, times);
            }
            if let Some(i) = self
                .index
                .find_mut(table_hash(short_hash(&moved.key)), |&i| i as usize == last)
            {
                *i = index as u32;
            }
        }
    }

    /// The index of the slot of the least key whose hash is `hash` and which registered
    /// a timer at `time`, if any.
    fn timer_slot(&self, time: u64, hash: u32) -> Option<usize> {
        slots_with_hash(&self.index, &self.slots, hash)
            .filter(|&i| {
                times_of(&self.slots, &self.apart, i)
                    .binary_search(&time)
                    .is_ok()
            })
            .min_by(|&i, &j| K::load(&self.slots[i].key).cmp(&K::load(&self.slots[j].key)))
    }

    /// The time of the earliest pending timer (possibly a deleted one, which is skipped
    /// when it comes up, or dropped with the others once they outnumber the live ones).
    /// Opens the queue's next bucket if none is open.
    #[inline]
    pub fn next_timer(&mut self) -> Option<u64> {
        match self.queue.peek_near() {
            Some(time) => Some(time),
            None => self.open_next_bucket(),
        }
    }

    /// Opens the queue's next bucket that holds a registered timer, and returns the
    /// earliest time in the open buckets, if there is one.
    #[inline(never)]
    fn open_next_bucket(&mut self) -> Option<u64> {
        loop {
            if let Some(time) = self.queue.peek_near() {
                return Some(time);
            }
            // A key's hash is in a bucket once for its times in it, unless a time was
            // deleted and another registered; a time read twice is queued twice, and the
            // second comes up unregistered and is skipped.
            let (bucket, hashes) = self.queue.open_next()?;
            for hash in hashes {
                for i in slots_with_hash(&self.index, &self.slots, hash) {
                    // A key's times are in order: read those in the bucket.
                    let times = times_of(&self.slots, &self.apart, i);
                    let first = times.partition_point(|&t| timer::bucket(t) < bucket);
                    for &time in &times[first..] {
                        if timer::bucket(time) > bucket {
                            break;
                        }
                        self.queue.push_opened(time, hash);
                    }
                }
            }
        }
    }

    /// Pops the earliest registered timer with time below `bound` and returns its time and
    /// its key's entry; deleted timers are discarded on the way. Running the entry (with
    /// [`KeyEntry::run`]) unregisters the timer, so it runs exactly once.
    #[inline]
    pub fn pop_timer_before(&mut self, bound: u64) -> Option<(u64, KeyEntry<'_, K, S>)> {
        if self.next_timer()? >= bound {
            return None;
        }
        let (time, hash, index) = self.pop_due_timer(bound)?;
        let entry = KeyEntry {
            store: self,
            hash,
            place: Place::Occupied(index),
            fired: Some(time),
        };
        Some((time, entry))
    }

    /// [`pop_timer_before`](Self::pop_timer_before) once a timer below `bound` is queued:
    /// the timer's time, its key's hash and the key's slot.
    #[inline(never)]
    fn pop_due_timer(&mut self, bound: u64) -> Option<(u64, u32, usize)> {
        while self.next_timer()? < bound {
            let (time, hash) = self.queue.pop_near()?;
            if let Some(index) = self.timer_slot(time, hash) {
                self.queue.unregistered();
                return Some((time, hash, index));
            }
        }
        None
    }

    /// Drops the queue's entries of deleted timers: the queue is rebuilt from the
    /// timers the keys registered, read in one pass over the slots.
    fn drop_deleted_timers(&mut self) {
        let (slots, apart) = (&self.slots, &self.apart);
        self.queue.replace((0..slots.len()).flat_map(|i| {
            let hash = short_hash(&slots[i].key);
            times_of(slots, apart, i)
                .iter()
                .map(move |&time| (time, hash))
        }));
    }

    /// Inserts `key` with `state` and `timers` (the key must be absent).
    fn insert(&mut self, key: K, state: S, timers: Vec<u64>) {
        let hash = short_hash(&key);
        for &time in &timers {
            self.queue.push(time, hash, false);
        }
        let (packed, apart) = timers.into_iter().collect::<KeyTimers>().pack();
        let index = self.slots.len();
        self.push(
            hash,
            Slot {
                key: key.to_stored(),
                state,
                timers: packed,
            },
        );
        self.apart.put(index, apart);
    }

    /// The number of keys holding state or timers.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no key holds state or timers.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The number of pending timer entries (deleted ones not yet dropped included).
    pub fn queued_timers(&self) -> usize {
        self.queue.len()
    }

    /// How many keys the store holds and the bytes it has allocated for them: the slots
    /// (their capacity × the slot of key, state and timers), the index (its capacity ×
    /// 4 bytes, plus control bytes), the times of keys with several timers, and the timer
    /// queue's capacity. Heap memory a key or state owns itself is not counted: the fraud
    /// rule has none for account ids up to 15 bytes (kept inline, `crate::stored_key`),
    /// and its state is one inline value.
    pub fn size(&self) -> StoreSize {
        StoreSize {
            keys: self.slots.len(),
            bytes: self.slots.capacity() * std::mem::size_of::<Slot<K::Stored, S>>()
                + self.index.allocation_size()
                + self.apart.allocation_size()
                + self.queue.allocation_size(),
        }
    }
}

impl<K, S> KeyedStore<K, S>
where
    K: StoreKey + Serialize + DeserializeOwned,
    S: KeyState,
{
    /// The store's entries by key group (`crate::snapshot`), each group's
    /// `(key, state, timer times)` encoded with bincode 1, in group order; empty groups
    /// are left out.
    pub fn snapshot(&self, key_groups: u32) -> Vec<GroupSnapshot> {
        let mut groups: BTreeMap<u32, Vec<SnapshotEntry<'_, K, S>>> = BTreeMap::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let group = key_group(slot.key.stable_hash(), key_groups);
            let times = times_of(&self.slots, &self.apart, i);
            groups
                .entry(group)
                .or_default()
                .push((K::load(&slot.key), &slot.state, times));
        }
        groups
            .into_iter()
            .map(|(group, entries)| {
                GroupSnapshot {
                    group,
                    keys: entries.len() as u64,
                    timers: entries.iter().map(|e| e.2.len() as u64).sum(),
                    // Plain data into memory: bincode cannot fail on it.
                    entries: bincode::serialize(&entries).unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Adds the entries of `groups` (as [`snapshot`](Self::snapshot) encodes them) to
    /// the store, their timers included.
    pub fn restore(&mut self, groups: &[GroupSnapshot]) -> Result<(), String> {
        for group in groups {
            let entries: Vec<(K, S, Vec<u64>)> = bincode::deserialize(&group.entries)
                .map_err(|e| format!("key group {} does not decode: {e}", group.group))?;
            for (key, state, timers) in entries {
                self.insert(key, state, timers);
            }
        }
        Ok(())
    }
}

/// A key's entry in a snapshot: the key, its state and its timers' times.
type SnapshotEntry<'s, K, S> = (Cow<'s, K>, &'s S, &'s [u64]);

/// The size of a [`KeyedStore`] at one moment: see [`KeyedStore::size`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreSize {
    /// Keys holding state or timers.
    pub keys: usize,
    /// Bytes allocated for them.
    pub bytes: usize,
}

impl<K: StoreKey + Serialize, S: Serialize> Serialize for KeyedStore<K, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut seq = serializer.serialize_seq(Some(self.slots.len()))?;
        for (i, slot) in self.slots.iter().enumerate() {
            let times = times_of(&self.slots, &self.apart, i);
            seq.serialize_element(&(K::load(&slot.key), &slot.state, times))?;
        }
        seq.end()
    }
}

impl<'de, K, S> Deserialize<'de> for KeyedStore<K, S>
where
    K: StoreKey + Deserialize<'de>,
    S: KeyState,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries: Vec<(K, S, Vec<u64>)> = Vec::deserialize(deserializer)?;
        let mut store = KeyedStore::default();
        for (key, state, timers) in entries {
            store.insert(key, state, timers);
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ValueState;
    use compact_str::CompactString;

    type Store = KeyedStore<CompactString, ValueState<u32>>;

    /// Pops the next timer below `bound` and runs nothing on it: its time and key.
    fn pop<K: StoreKey, S: KeyState>(store: &mut KeyedStore<K, S>, bound: u64) -> Option<(u64, K)> {
        let (time, entry) = store.pop_timer_before(bound)?;
        Some((time, entry.run(|key, _, _| key.load().into_owned())))
    }

    /// A key whose stable hash is the same for every value: every key collides.
    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Colliding(u64);

    impl StableHash for Colliding {
        fn stable_hash(&self) -> u64 {
            7
        }
    }

    crate::stored_key::kept_as_they_are!(Colliding);

    /// Random updates, clears, timer registrations and deletions, and timers fired, on
    /// `keys` keys made by `key`, against a plain model (a map of each key's value and
    /// set of timer times): the same values, the same timers fired (time order; keys
    /// apart at equal times), and the store holds exactly the keys with a value or a timer.
    fn matches_a_plain_model<K>(keys: u64, key: impl Fn(u64) -> K)
    where
        K: StoreKey + std::fmt::Debug,
    {
        use std::collections::BTreeSet;
        let mut store: KeyedStore<K, ValueState<u64>> = KeyedStore::default();
        let mut model: BTreeMap<K, (Option<u64>, BTreeSet<u64>)> = BTreeMap::new();
        let mut rng = 0x5eed_u64;
        let mut next = move |n: u64| {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (rng >> 33) % n
        };
        let mut now = 0;
        for step in 0..20_000u64 {
            let k = key(next(keys));
            // Times over a few of the queue's buckets (1,024 ms), so buckets open while
            // keys register in them and in later ones.
            let (op, time) = (next(7), now + 1 + next(3_000));
            let (before, registered) = store.entry(&k).run(|_, state, mut timers| {
                let before = state.value().copied();
                match op {
                    0 | 1 => state.update(step),
                    2 => state.clear(),
                    3 => timers.register(time),
                    4 => {
                        if let Some(&t) = timers.registered().iter().min() {
                            timers.delete(t);
                        }
                    }
                    5 => timers.delete_all(),
                    _ => {}
                }
                let registered: BTreeSet<u64> = timers.registered().iter().copied().collect();
                (before, registered)
            });
            let (value, timers) = model.entry(k.clone()).or_default();
            assert_eq!(before, *value, "step {step}: value of {k:?}");
            match op {
                0 | 1 => *value = Some(step),
                2 => *value = None,
                3 => {
                    timers.insert(time);
                }
                4 => {
                    timers.pop_first();
                }
                5 => timers.clear(),
                _ => {}
            }
            assert_eq!(registered, *timers, "step {step}: timers of {k:?}");
            model.retain(|_, (value, timers)| value.is_some() || !timers.is_empty());
            assert_eq!(store.len(), model.len(), "step {step}");
            if step % 97 == 0 {
                now += 20;
                let mut fired = Vec::new();
                while let Some((t, k)) = pop(&mut store, now) {
                    fired.push((t, k));
                }
                let mut want = Vec::new();
                for (k, (_, timers)) in &mut model {
                    while let Some(&t) = timers.first().filter(|&&t| t < now) {
                        timers.remove(&t);
                        want.push((t, k.clone()));
                    }
                }
                model.retain(|_, (value, timers)| value.is_some() || !timers.is_empty());
                assert!(fired.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
                fired.sort();
                want.sort();
                assert_eq!(fired, want, "step {step}: fired");
                assert_eq!(store.len(), model.len(), "step {step}");
            }
        }
    }

    #[test]
    fn store_matches_a_plain_model() {
        matches_a_plain_model(300, |i| CompactString::from(format!("acct_{i:06}")));
    }

    #[test]
    fn store_of_long_keys_matches_a_plain_model() {
        // Longer than 15 bytes: kept boxed (crate::stored_key).
        matches_a_plain_model(300, |i| {
            CompactString::from(format!("customer-account-{i:08}"))
        });
    }

    #[test]
    fn keys_whose_hashes_are_equal_stay_apart() {
        matches_a_plain_model(40, Colliding);
    }

    #[test]
    fn empty_state_without_timers_is_dropped() {
        let mut store = Store::default();
        let a = CompactString::from("a");
        store.entry(&a).run(|_, state, _| state.update(1));
        assert_eq!(store.len(), 1);
        store.entry(&a).run(|_, state, _| state.clear());
        assert_eq!(store.len(), 0);
        store.entry(&a).run(|_, _, mut timers| timers.register(10));
        assert_eq!(store.len(), 1, "a pending timer keeps the key");
    }

    #[test]
    fn timers_fire_once_in_time_order_and_deletes_are_skipped() {
        let mut store = Store::default();
        let (a, b) = (CompactString::from("a"), CompactString::from("b"));
        store.entry(&a).run(|_, _, mut t| {
            t.register(30);
            t.register(10);
            t.register(10);
        });
        store.entry(&b).run(|_, _, mut t| {
            t.register(20);
            t.delete(20);
            t.register(20);
        });
        store.entry(&a).run(|_, _, mut t| t.delete(30));
        let mut fired = Vec::new();
        while let Some((time, key)) = pop(&mut store, u64::MAX) {
            fired.push((time, key.to_string()));
        }
        assert_eq!(fired, vec![(10, "a".to_string()), (20, "b".to_string())]);
        assert_eq!(pop(&mut store, u64::MAX), None);
    }

    #[test]
    fn deleted_timers_are_dropped_once_they_outnumber_the_live_ones() {
        // Like the fraud rule: every record of a key deletes its timer and sets a later one.
        let mut store = Store::default();
        let keys: Vec<CompactString> = (0..100)
            .map(|i| CompactString::from(format!("k{i}")))
            .collect();
        for round in 0..1_000u64 {
            for (i, key) in keys.iter().enumerate() {
                store.entry(key).run(|_, _, mut t| {
                    if round > 0 {
                        t.delete(round * 1_000 + i as u64 - 1_000 + 60_000);
                    }
                    t.register(round * 1_000 + i as u64 + 60_000);
                });
            }
            assert!(
                store.queued_timers() <= 2 * keys.len() + 4096 + 1,
                "round {round}: {} queued",
                store.queued_timers()
            );
        }
        // Exactly the live timers fire, in order.
        let mut fired = Vec::new();
        while let Some((time, key)) = pop(&mut store, u64::MAX) {
            fired.push((time, key.to_string()));
        }
        let want: Vec<(u64, String)> = (0..100u64)
            .map(|i| (999 * 1_000 + i + 60_000, format!("k{i}")))
            .collect();
        assert_eq!(fired, want);
        assert!(store.is_empty());
    }

    #[test]
    fn size_counts_live_keys_and_allocated_bytes() {
        let mut store = Store::default();
        assert_eq!(store.size(), StoreSize::default());
        for i in 0..100 {
            let key = CompactString::from(i.to_string());
            store.entry(&key).run(|_, state, mut t| {
                state.update(i);
                t.register(u64::from(i));
            });
        }
        let size = store.size();
        assert_eq!(size.keys, 100);
        let entry = std::mem::size_of::<Slot<CompactString, ValueState<u32>>>();
        assert!(size.bytes >= 100 * entry, "{size:?}, entry {entry}");
    }

    #[test]
    fn key_groups_snapshot_and_restore_apart() {
        let mut store = Store::default();
        for i in 0..200u32 {
            let key = CompactString::from(format!("account-{i}"));
            store.entry(&key).run(|_, state, mut t| {
                state.update(i);
                if i % 3 == 0 {
                    t.register(u64::from(i) * 10);
                }
            });
        }
        let groups = store.snapshot(16);
        assert!(groups.windows(2).all(|w| w[0].group < w[1].group));
        assert_eq!(groups.iter().map(|g| g.keys).sum::<u64>(), 200);
        assert_eq!(groups.iter().map(|g| g.timers).sum::<u64>(), 67);
        // Two workers each restore the groups they own; together they hold everything.
        let mut halves = [Store::default(), Store::default()];
        for group in &groups {
            let owner = (group.group % 2) as usize;
            halves[owner]
                .restore(std::slice::from_ref(group))
                .expect("decodes");
        }
        assert_eq!(halves[0].len() + halves[1].len(), 200);
        for i in 0..200u32 {
            let key = CompactString::from(format!("account-{i}"));
            let owner = (key_group(key.stable_hash(), 16) % 2) as usize;
            let value = halves[owner]
                .entry(&key)
                .run(|_, state, _| state.value().copied());
            assert_eq!(value, Some(i), "{key}");
        }
        let mut fired = Vec::new();
        for half in &mut halves {
            while let Some((time, _)) = pop(half, u64::MAX) {
                fired.push(time);
            }
        }
        fired.sort_unstable();
        let want: Vec<u64> = (0..200u64).filter(|i| i % 3 == 0).map(|i| i * 10).collect();
        assert_eq!(fired, want);
        let err = Store::default()
            .restore(&[GroupSnapshot {
                group: 3,
                keys: 1,
                timers: 0,
                entries: vec![9; 3],
            }])
            .expect_err("garbage");
        assert!(err.contains("key group 3"), "{err}");
    }

    #[test]
    fn snapshot_round_trips() {
        let mut store = Store::default();
        let a = CompactString::from("a");
        store.entry(&a).run(|_, state, mut t| {
            state.update(7);
            t.register(99);
        });
        let json = serde_json::to_string(&store).expect("serialises");
        let mut back: Store = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(
            back.entry(&a).run(|_, state, _| state.value().copied()),
            Some(7)
        );
        assert_eq!(pop(&mut back, 100), Some((99, a)));
    }
}
