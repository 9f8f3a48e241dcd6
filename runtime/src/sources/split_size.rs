//! How an input file is cut into byte ranges (partitions): by default into
//! [`AUTO_SPLITS`] ranges of equal size, each of [`MIN_AUTO_SPLIT`] to [`MAX_AUTO_SPLIT`]
//! bytes, or into ranges of a size given with `--split-size`.
//!
//! Either way the ranges are a function of the file's size alone, never of the worker
//! count, so neither lateness nor results depend on it (docs/semantics.md §4). The
//! default gives a 300 MB file 16 ranges, enough for 4 readers each on up to 4 workers,
//! where fixed 64 MiB ranges gave it 5 (3 on one worker of 2, 2 on the other); files of
//! 1 GiB and more are cut at 64 MiB either way, and files under 1 MiB are not cut.
//!
//! ```
//! use tidelake_runtime::sources::split_size::SplitSize;
//!
//! assert_eq!(SplitSize::Auto.for_file(320 << 20), 20 << 20);
//! assert_eq!(SplitSize::Auto.for_file(10 << 30), 64 << 20);
//! assert_eq!(SplitSize::Auto.for_file(100), 1 << 20);
//! assert_eq!(SplitSize::Bytes(7).for_file(100), 7);
//! ```

use std::fmt;

/// The number of ranges the default cuts a file into, when their size is within bounds.
pub const AUTO_SPLITS: u64 = 16;
/// The smallest range the default cuts a file into.
pub const MIN_AUTO_SPLIT: u64 = 1 << 20;
/// The largest range the default cuts a file into.
pub const MAX_AUTO_SPLIT: u64 = 64 << 20;

/// How input files are cut into byte ranges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitSize {
    /// Each file into [`AUTO_SPLITS`] ranges, each of [`MIN_AUTO_SPLIT`] to
    /// [`MAX_AUTO_SPLIT`] bytes.
    #[default]
    Auto,
    /// Ranges of this many bytes (at least 1).
    Bytes(u64),
}

impl SplitSize {
    /// The size of the ranges a file of `size` bytes is cut into.
    pub fn for_file(self, size: u64) -> u64 {
        match self {
            SplitSize::Auto => size
                .div_ceil(AUTO_SPLITS)
                .clamp(MIN_AUTO_SPLIT, MAX_AUTO_SPLIT),
            SplitSize::Bytes(bytes) => bytes,
        }
    }
}

/// Ranges of `bytes` bytes.
impl From<u64> for SplitSize {
    fn from(bytes: u64) -> Self {
        SplitSize::Bytes(bytes)
    }
}

/// The setting as a job's identity records it: `auto (…)` naming the rule, so a build
/// that cuts files another way is told apart, or the number of bytes.
impl fmt::Display for SplitSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitSize::Auto => write!(
                f,
                "auto ({AUTO_SPLITS} ranges a file, of {MIN_AUTO_SPLIT} to {MAX_AUTO_SPLIT} bytes)"
            ),
            SplitSize::Bytes(bytes) => write!(f, "{bytes}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default against a plain reading of its rule, over sizes around its bounds.
    #[test]
    fn auto_cuts_a_file_into_sixteen_ranges_within_bounds() {
        let sizes = [0, 1, 100, MIN_AUTO_SPLIT - 1, MIN_AUTO_SPLIT, 16 << 20]
            .into_iter()
            .chain([(16 << 20) + 1, 300_000_000, 328_000_000, 1 << 30])
            .chain([(1 << 30) + 1, 5 << 30, u64::MAX]);
        for size in sizes {
            let range = SplitSize::Auto.for_file(size);
            assert!((MIN_AUTO_SPLIT..=MAX_AUTO_SPLIT).contains(&range), "{size}");
            let ranges = size.div_ceil(range).max(1);
            if size <= 16 * MIN_AUTO_SPLIT {
                assert_eq!(range, MIN_AUTO_SPLIT, "{size}");
            } else if size <= 16 * MAX_AUTO_SPLIT {
                assert_eq!(ranges, 16, "{size}");
                // Equal ranges but the last, which is shorter by less than 16 bytes.
                assert!(range * 16 - size < 16, "{size}");
            } else {
                assert_eq!(range, MAX_AUTO_SPLIT, "{size}");
            }
        }
    }

    #[test]
    fn the_identity_names_the_rule_or_the_bytes() {
        assert_eq!(
            SplitSize::Auto.to_string(),
            "auto (16 ranges a file, of 1048576 to 67108864 bytes)"
        );
        assert_eq!(SplitSize::Bytes(67_108_864).to_string(), "67108864");
    }
}
