//! Per-key state: [`ValueState`] and [`MapState`], composed by a rule into one state type.
//!
//! A rule's state for one key is a plain struct of these cells, so it can be snapshotted
//! with serde. The runtime drops a key's state when [`KeyState::is_empty`] says it holds
//! nothing and the key has no pending timer, so memory follows the active keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The state a rule keeps for one key.
pub trait KeyState: Default + Serialize + DeserializeOwned + 'static {
    /// True when the state holds nothing worth keeping.
    fn is_empty(&self) -> bool;
}

impl KeyState for () {
    fn is_empty(&self) -> bool {
        true
    }
}

impl<T: Serialize + DeserializeOwned + 'static> KeyState for ValueState<T> {
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl<K, V> KeyState for MapState<K, V>
where
    K: Ord + Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One value per key, like Flink's `ValueState<T>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueState<T>(Option<T>);

impl<T> Default for ValueState<T> {
    fn default() -> Self {
        ValueState(None)
    }
}

impl<T> ValueState<T> {
    /// The value, if set.
    #[inline]
    pub fn value(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// Sets the value.
    #[inline]
    pub fn update(&mut self, value: T) {
        self.0 = Some(value);
    }

    /// Removes and returns the value.
    #[inline]
    pub fn take(&mut self) -> Option<T> {
        self.0.take()
    }

    /// Removes the value.
    #[inline]
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// True when no value is set.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// A map per key, like Flink's `MapState<K, V>`, iterated in key order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Ord, V: Serialize",
    deserialize = "K: Deserialize<'de> + Ord, V: Deserialize<'de>"
))]
pub struct MapState<K, V>(BTreeMap<K, V>);

impl<K, V> Default for MapState<K, V> {
    fn default() -> Self {
        MapState(BTreeMap::new())
    }
}

impl<K: Ord, V> MapState<K, V> {
    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.0.get(key)
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.0.get_mut(key)
    }

    /// The value under `key`, inserting `V::default()` first if absent.
    pub fn entry_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.0.entry(key).or_default()
    }

    /// The value of `key`, inserting `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.0.entry(key).or_insert_with(make)
    }

    /// Puts `value` under `key`, returning the previous value.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        self.0.insert(key, value)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.0.remove(key)
    }

    /// True when `key` is present.
    pub fn contains(&self, key: &K) -> bool {
        self.0.contains_key(key)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter()
    }

    /// Entries in key order, their values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.0.iter_mut()
    }

    /// Entries whose key is in `range`, in key order.
    pub fn range<R: std::ops::RangeBounds<K>>(&self, range: R) -> impl Iterator<Item = (&K, &V)> {
        self.0.range(range)
    }

    /// Removes every entry whose key is below `bound`.
    pub fn remove_below(&mut self, bound: &K)
    where
        K: Clone,
    {
        let kept = self.0.split_off(bound);
        self.0 = kept;
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0.clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_and_map_state() {
        let mut v = ValueState::default();
        assert!(v.is_empty());
        v.update(3);
        assert_eq!(v.value(), Some(&3));
        assert_eq!(v.take(), Some(3));
        assert!(v.is_empty());

        let mut m = MapState::default();
        m.put(5u64, 1u32);
        *m.entry_or_default(7) += 2;
        m.put(9, 3);
        m.remove_below(&7);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![(&7, &2), (&9, &3)]);
        let json = serde_json::to_string(&m).expect("serialises");
        let back: MapState<u64, u32> = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, m);
    }
}
