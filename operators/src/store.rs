//! The keyed store of one worker: each key's state and registered timers, and the
//! queue of pending timers.
//!
//! Keys are looked up by their [`StableHash`] and compared in full, so a hash collision
//! never merges two keys. A key's entry is dropped as soon as its state is empty and it
//! has no timer. The store serialises (serde) as a list of `(key, state, timers)`, which
//! is what a state snapshot holds.

use hashbrown::HashTable;
use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::key::StableHash;
use crate::state::KeyState;
use crate::timer::{KeyTimers, TimerQueue, TimerService};

struct Slot<K, S> {
    key: K,
    state: S,
    timers: KeyTimers,
}

/// One key's entry in a [`KeyedStore`].
pub struct KeyEntry<'a, K: Ord, S> {
    entry: hashbrown::hash_table::OccupiedEntry<'a, Slot<K, S>>,
    queue: &'a mut TimerQueue<K>,
}

impl<K: Ord + Clone, S: KeyState> KeyEntry<'_, K, S> {
    /// Runs `f` on the key, its state and its timer service, then drops the entry if
    /// its state is empty and it has no timer.
    #[inline]
    pub fn run<R>(mut self, f: impl FnOnce(&K, &mut S, TimerService<'_, K>) -> R) -> R {
        let slot = self.entry.get_mut();
        let result = f(
            &slot.key,
            &mut slot.state,
            TimerService::new(&slot.key, &mut slot.timers, self.queue),
        );
        if slot.state.is_empty() && slot.timers.is_empty() {
            self.entry.remove();
        }
        result
    }
}

/// Per-key state and timers of one worker.
pub struct KeyedStore<K: Ord, S> {
    table: HashTable<Slot<K, S>>,
    queue: TimerQueue<K>,
}

impl<K: Ord, S> Default for KeyedStore<K, S> {
    fn default() -> Self {
        KeyedStore {
            table: HashTable::new(),
            queue: TimerQueue::default(),
        }
    }
}

impl<K, S> KeyedStore<K, S>
where
    K: Ord + Clone + StableHash,
    S: KeyState,
{
    /// The entry of `key`, created with empty state if absent. Run the rule on it with
    /// [`KeyEntry::run`], which drops the entry afterwards if it holds nothing.
    #[inline]
    pub fn entry(&mut self, key: &K) -> KeyEntry<'_, K, S> {
        let hash = key.stable_hash();
        let entry = match self.table.find_entry(hash, |slot| slot.key == *key) {
            Ok(entry) => entry,
            Err(absent) => absent.into_table().insert_unique(
                hash,
                Slot {
                    key: key.clone(),
                    state: S::default(),
                    timers: KeyTimers::new(),
                },
                |slot| slot.key.stable_hash(),
            ),
        };
        KeyEntry {
            entry,
            queue: &mut self.queue,
        }
    }

    /// The time of the earliest pending timer (possibly a deleted one, which is skipped
    /// when it comes up).
    pub fn next_timer(&self) -> Option<u64> {
        self.queue.peek_time()
    }

    /// Pops the earliest registered timer with time below `bound` and returns its time and
    /// key; deleted timers are discarded on the way. The timer is unregistered, so the
    /// caller fires it (through [`entry`](Self::entry)) exactly once.
    pub fn pop_timer_before(&mut self, bound: u64) -> Option<(u64, K)> {
        while let Some((time, key)) = self.queue.pop_before(bound) {
            let hash = key.stable_hash();
            if let Some(slot) = self.table.find_mut(hash, |slot| slot.key == key)
                && let Some(i) = slot.timers.iter().position(|&t| t == time)
            {
                slot.timers.swap_remove(i);
                return Some((time, key));
            }
        }
        None
    }

    /// The number of keys holding state or timers.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no key holds state or timers.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The number of pending timer entries (deleted ones not yet skipped included).
    pub fn queued_timers(&self) -> usize {
        self.queue.len()
    }

    /// How many keys the store holds and the bytes it has allocated for them: the hash
    /// table (its capacity × the entry of key, state and timers, plus control bytes) and
    /// the timer queue's capacity. Heap memory a key or state owns itself is not
    /// counted: the fraud rule has none (account ids up to 24 bytes are inline in a
    /// `CompactString`, and its state is two inline values).
    pub fn size(&self) -> StoreSize {
        StoreSize {
            keys: self.table.len(),
            bytes: self.table.allocation_size() + self.queue.allocation_size(),
        }
    }
}

/// The size of a [`KeyedStore`] at one moment: see [`KeyedStore::size`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreSize {
    /// Keys holding state or timers.
    pub keys: usize,
    /// Bytes allocated for them.
    pub bytes: usize,
}

impl<K: Ord + Serialize, S: Serialize> Serialize for KeyedStore<K, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut seq = serializer.serialize_seq(Some(self.table.len()))?;
        for slot in self.table.iter() {
            seq.serialize_element(&(&slot.key, &slot.state, slot.timers.as_slice()))?;
        }
        seq.end()
    }
}

impl<'de, K, S> Deserialize<'de> for KeyedStore<K, S>
where
    K: Ord + Clone + StableHash + Deserialize<'de>,
    S: KeyState,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries: Vec<(K, S, Vec<u64>)> = Vec::deserialize(deserializer)?;
        let mut store = KeyedStore::default();
        for (key, state, timers) in entries {
            for &time in &timers {
                store.queue.push(time, key.clone());
            }
            store.table.insert_unique(
                key.stable_hash(),
                Slot {
                    key,
                    state,
                    timers: timers.into_iter().collect(),
                },
                |slot| slot.key.stable_hash(),
            );
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
        while let Some((time, key)) = store.pop_timer_before(u64::MAX) {
            fired.push((time, key.to_string()));
        }
        assert_eq!(fired, vec![(10, "a".to_string()), (20, "b".to_string())]);
        assert_eq!(store.pop_timer_before(u64::MAX), None);
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
        assert_eq!(back.pop_timer_before(100), Some((99, a)));
    }
}
