//! Stable key hashing for routing records to workers.
//!
//! Every process of a cluster must send a key to the same worker, so the hash is a
//! fixed, seedless function of the key's bytes (XXH3-64), never `RandomState`.

use compact_str::CompactString;

/// A hash of a key that is the same in every process, build and platform.
pub trait StableHash {
    /// The key's stable 64-bit hash.
    fn stable_hash(&self) -> u64;
}

impl StableHash for [u8] {
    #[inline]
    fn stable_hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self)
    }
}

impl StableHash for str {
    #[inline]
    fn stable_hash(&self) -> u64 {
        self.as_bytes().stable_hash()
    }
}

impl StableHash for String {
    #[inline]
    fn stable_hash(&self) -> u64 {
        self.as_bytes().stable_hash()
    }
}

impl StableHash for CompactString {
    #[inline]
    fn stable_hash(&self) -> u64 {
        self.as_bytes().stable_hash()
    }
}

impl StableHash for u64 {
    #[inline]
    fn stable_hash(&self) -> u64 {
        self.to_le_bytes().stable_hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_pinned() {
        // Changing this value re-routes every key of every running cluster.
        assert_eq!("3".stable_hash(), xxhash_rust::xxh3::xxh3_64(b"3"));
        assert_eq!("3".stable_hash(), CompactString::from("3").stable_hash());
        assert_eq!("".stable_hash(), 0x2d06_8005_38d3_94c2);
    }
}
