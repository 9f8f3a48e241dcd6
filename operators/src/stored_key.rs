//! How a keyed store keeps its keys ([`crate::store`]): as they are, or packed smaller.
//!
//! An account id is a `CompactString` (24 bytes, inline up to 24 bytes) in records; the
//! store keeps it as a [`PackedStr`] (16 bytes, inline up to 15 bytes, a longer one boxed),
//! so a million accounts' slots take 8 MB less. A rule still sees the key as its type
//! (`Context::key` loads it from the kept form when asked).

use std::borrow::Cow;
use std::num::NonZeroU8;

use compact_str::CompactString;

use crate::key::StableHash;

/// A key type a keyed store can keep.
pub trait StoreKey: Ord + Clone + StableHash {
    /// The form the store keeps; its stable hash is the key's.
    type Stored: StableHash;

    /// The form the store keeps of `self`.
    fn to_stored(&self) -> Self::Stored;

    /// The key back from the form kept.
    fn load(stored: &Self::Stored) -> Cow<'_, Self>;

    /// True when `stored` is the form kept of `self`.
    fn is_stored_as(&self, stored: &Self::Stored) -> bool;
}

/// A key as a rule reaches it: the key itself (a key the store does not hold yet), or
/// the form the store keeps.
pub enum KeyRef<'a, K: StoreKey> {
    /// The key.
    Key(&'a K),
    /// The form kept.
    Stored(&'a K::Stored),
}

impl<'a, K: StoreKey> KeyRef<'a, K> {
    /// The key.
    #[inline]
    pub fn load(&self) -> Cow<'a, K> {
        match *self {
            KeyRef::Key(key) => Cow::Borrowed(key),
            KeyRef::Stored(stored) => K::load(stored),
        }
    }
}

/// Keys kept as they are.
macro_rules! kept_as_they_are {
    ($($key:ty),*) => {$(
        impl StoreKey for $key {
            type Stored = $key;

            #[inline]
            fn to_stored(&self) -> $key {
                self.clone()
            }

            #[inline]
            fn load(stored: &$key) -> Cow<'_, $key> {
                Cow::Borrowed(stored)
            }

            #[inline]
            fn is_stored_as(&self, stored: &$key) -> bool {
                self == stored
            }
        }
    )*};
}

#[cfg(test)]
pub(crate) use kept_as_they_are;

kept_as_they_are!(String, u64);

impl StoreKey for CompactString {
    type Stored = PackedStr;

    #[inline]
    fn to_stored(&self) -> PackedStr {
        PackedStr::new(self)
    }

    #[inline]
    fn load(stored: &PackedStr) -> Cow<'_, CompactString> {
        // The bytes are a `str`'s, so nothing is replaced.
        Cow::Owned(CompactString::from_utf8_lossy(stored.as_bytes()))
    }

    #[inline]
    fn is_stored_as(&self, stored: &PackedStr) -> bool {
        stored.as_bytes() == self.as_bytes()
    }
}

/// A string of up to 15 bytes inline, a longer one boxed: 16 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackedStr {
    /// Up to 15 bytes; `len_plus_one` is their number plus one, so 0 marks the other
    /// variant and the whole fits in 16 bytes.
    Inline {
        /// The bytes, then zeros.
        bytes: [u8; 15],
        /// The number of bytes plus one.
        len_plus_one: NonZeroU8,
    },
    /// A longer string.
    Boxed(Box<Box<str>>),
}

impl PackedStr {
    /// `text`, packed.
    #[inline]
    pub fn new(text: &str) -> Self {
        let text_bytes = text.as_bytes();
        match u8::try_from(text_bytes.len()) {
            Ok(len) if len <= 15 => {
                let mut bytes = [0; 15];
                bytes[..text_bytes.len()].copy_from_slice(text_bytes);
                PackedStr::Inline {
                    bytes,
                    len_plus_one: NonZeroU8::MIN.saturating_add(len),
                }
            }
            _ => PackedStr::Boxed(Box::new(text.into())),
        }
    }

    /// The string's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PackedStr::Inline {
                bytes,
                len_plus_one,
            } => &bytes[..usize::from(len_plus_one.get() - 1)],
            PackedStr::Boxed(text) => text.as_bytes(),
        }
    }
}

impl StableHash for PackedStr {
    #[inline]
    fn stable_hash(&self) -> u64 {
        self.as_bytes().stable_hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_strings_take_16_bytes_and_round_trip() {
        assert_eq!(std::mem::size_of::<PackedStr>(), 16);
        let long = "x".repeat(300);
        for text in [
            "",
            "3",
            "acct_000123",
            "123456789012345",
            "1234567890123456",
            "é☃",
            &long,
        ] {
            let key = CompactString::from(text);
            let stored = key.to_stored();
            assert_eq!(stored.as_bytes(), text.as_bytes());
            assert!(matches!(stored, PackedStr::Inline { .. }) == (text.len() <= 15));
            assert_eq!(*CompactString::load(&stored), key);
            assert!(key.is_stored_as(&stored));
            assert_eq!(stored.stable_hash(), key.stable_hash());
            let other = CompactString::from(format!("{text}0"));
            assert!(!other.is_stored_as(&stored));
        }
    }
}
