//! Where data files go and how their paths are written.
//!
//! A file is stored at `<root>/<col>=<value>/…/part-<writer:05>-<uuid>-c000.<codec>.parquet`,
//! where the writer index (e.g. the global worker index) and a v4 UUID keep names
//! unique across workers and runs. Two layers of escaping apply
//! (`shared/notes/delta-writer.md` §2):
//! 1. *On disk*, partition column names and values are percent-encoded (`%XX`,
//!    uppercase, UTF-8 bytes) except for `A-Z a-z 0-9 . _ -`; a null or empty value is
//!    `__HIVE_DEFAULT_PARTITION__`. So `a b/c:d%e` is stored under
//!    `date=a%20b%2Fc%3Ad%25e/`.
//! 2. *In the log*, `add.path` is that relative path URI-encoded again, so every `%`
//!    becomes `%25`: `date=a%2520b%252Fc%253Ad%2525e/part-…`. Readers decode it once to
//!    find the object.
//!
//! Values made of `A-Z a-z 0-9 . _ -` (such as `date=2024-05-01`) are unchanged by
//! both layers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use object_store::path::Path;

use super::options::Codec;

/// The directory name of a null partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// A partition: `(column, value)` in the table's partition column order; `None` (or an
/// empty value) is null.
pub type PartitionSpec = Vec<(String, Option<String>)>;

/// The stored path (relative to the root, Hive-escaped) of a new file of `partition`
/// written by writer `writer_index`, with its partition values (an empty value is
/// null): `<col>=<value>/…/part-<writer:05>-<id>-c000.<codec suffix>`.
pub fn new_file_path(
    partition: PartitionSpec,
    writer_index: usize,
    id: uuid::Uuid,
    codec: Codec,
) -> (String, BTreeMap<String, Option<String>>) {
    let mut relative = String::new();
    let mut partition_values = BTreeMap::new();
    for (column, value) in partition {
        let value = value.filter(|v| !v.is_empty());
        let dir = value.as_deref().map_or(NULL_PARTITION.into(), hive_escape);
        let _ = write!(relative, "{}={dir}/", hive_escape(&column));
        partition_values.insert(column, value);
    }
    let _ = write!(
        relative,
        "part-{writer_index:05}-{id}-c000.{}",
        codec.suffix()
    );
    (relative, partition_values)
}

/// Percent-encodes (`%XX`, uppercase) every byte of `text`'s UTF-8 except those in
/// `keep` and ASCII letters and digits.
fn percent_encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A partition column name or value as a directory name component (layer 1): every
/// byte but `A-Z a-z 0-9 . _ -` percent-encoded.
pub fn hive_escape(text: &str) -> String {
    percent_encode(text, b"._-")
}

/// A stored path relative to the table root as `add.path` (layer 2): a URI path, so
/// every byte but unreserved characters, `/` and `=` is percent-encoded (after layer 1,
/// that is every `%`).
pub fn log_escape(relative: &str) -> String {
    percent_encode(relative, b"._-~/=")
}

/// The object an `add.path` (or `remove.path`) of the table at `root` names: the inverse
/// of [`log_escape`], which percent-decodes the URI path once and parses the result
/// (already Hive-escaped, so not encoded again) relative to the root.
pub fn data_file_location(root: &Path, log_path: &str) -> Result<Path, object_store::path::Error> {
    let relative = Path::from_url_path(log_path)?;
    let mut location = root.clone();
    location.extend(relative.parts());
    Ok(location)
}
