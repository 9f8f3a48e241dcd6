//! The keyed store of one worker: each key's state and registered timers, and the
//! queue of pending timers.
//!
//! Keys are looked up by their [`StableHash`] and compared in full, so a hash collision
//! never merges two keys. A key's entry is dropped as soon as its state is empty and it
//! has no timer. The store serialises (serde) as a list of `(key, state, timers)`, which
//! is what a state snapshot holds.

use std::collections::BTreeMap;

use hashbrown::HashTable;
use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::key::StableHash;
use crate::snapshot::{GroupSnapshot, key_group};
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
        if self.queue.needs_compaction() {
            self.drop_deleted_timers();
        }
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
    /// when it comes up, or dropped with the others once they outnumber the live ones).
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
                self.queue.unregistered();
                return Some((time, key));
            }
        }
        None
    }

    /// Drops the queue's entries of deleted timers.
    fn drop_deleted_timers(&mut self) {
        let table = &self.table;
        self.queue.retain_live(|time, key| {
            table
                .find(key.stable_hash(), |slot| slot.key == *key)
                .is_some_and(|slot| slot.timers.contains(&time))
        });
    }

    /// Inserts `key` with `state` and `timers` (the key must be absent).
    fn insert(&mut self, key: K, state: S, timers: Vec<u64>) {
        for &time in &timers {
            self.queue.push(time, key.clone());
        }
        self.table.insert_unique(
            key.stable_hash(),
            Slot {
                key,
                state,
                timers: timers.into_iter().collect(),
            },
            |slot| slot.key.stable_hash(),
        );
    }

    /// The number of keys holding state or timers.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no key holds state or timers.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The number of pending timer entries (deleted ones not yet dropped included).
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

impl<K, S> KeyedStore<K, S>
where
    K: Ord + Clone + StableHash + Serialize + DeserializeOwned,
    S: KeyState,
{
    /// The store's entries by key group (`crate::snapshot`), each group's
    /// `(key, state, timer times)` encoded with bincode 1, in group order; empty groups
    /// are left out.
    pub fn snapshot(&self, key_groups: u32) -> Vec<GroupSnapshot> {
        let mut groups: BTreeMap<u32, Vec<&Slot<K, S>>> = BTreeMap::new();
        for slot in self.table.iter() {
            let group = key_group(slot.key.stable_hash(), key_groups);
            groups.entry(group).or_default().push(slot);
        }
        groups
            .into_iter()
            .map(|(group, slots)| {
                let entries: Vec<(&K, &S, &[u64])> = slots
                    .iter()
                    .map(|slot| (&slot.key, &slot.state, slot.timers.as_slice()))
                    .collect();
                GroupSnapshot {
                    group,
                    keys: slots.len() as u64,
                    timers: slots.iter().map(|s| s.timers.len() as u64).sum(),
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
        while let Some((time, key)) = store.pop_timer_before(u64::MAX) {
            fired.push((time, key.to_string()));
            store.entry(&key).run(|_, _, _| ());
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
            while let Some((time, _)) = half.pop_timer_before(u64::MAX) {
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
        assert_eq!(back.pop_timer_before(100), Some((99, a)));
    }
}
