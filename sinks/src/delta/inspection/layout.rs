//! The layout of a table's live data files: per partition, how many files, rows and
//! bytes, and how file sizes spread. Streaming writers make many small files (docs/semantics.md §6);
//! this shows how many, and where.
//!
//! Row counts come from each file's `stats.numRecords`, less the rows its deletion vector
//! deletes (`deletionVector.cardinality`); files without `numRecords` are counted in
//! [`FileGroup::files_without_row_count`] and add no rows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::delta::protocol::actions::Add;
use crate::delta::protocol::snapshot::Snapshot;
use crate::parquet::stats::parse_num_records;

const MIB: u64 = 1024 * 1024;

/// The lower bounds of the file size buckets, in bytes: < 1 MiB, 1–8 MiB, 8–32 MiB,
/// 32–128 MiB (128 MiB is the writer's default target size) and ≥ 128 MiB.
pub const SIZE_BUCKETS: [u64; 5] = [0, MIB, 8 * MIB, 32 * MIB, 128 * MIB];

/// Counts and sizes of a group of live files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileGroup {
    /// Live files.
    pub files: u64,
    /// Rows a reader sees in the files whose stats give `numRecords`: net of the rows
    /// their deletion vectors delete.
    pub rows: u64,
    /// Rows of those files that deletion vectors delete (not in `rows`).
    pub deleted_rows: u64,
    /// Files whose stats give no `numRecords` (or do not parse): their rows are unknown.
    pub files_without_row_count: u64,
    /// Total size in bytes.
    pub bytes: u64,
    /// The smallest file's size (0 without files).
    pub min_file_size: u64,
    /// The median file size: the mean of the two middle sizes for an even count,
    /// rounded down (0 without files).
    pub median_file_size: u64,
    /// The largest file's size (0 without files).
    pub max_file_size: u64,
}

impl FileGroup {
    /// The counts and sizes of `files`.
    pub fn of<'a>(files: impl IntoIterator<Item = &'a Add>) -> Self {
        let mut group = FileGroup::default();
        let mut sizes = Vec::new();
        for add in files {
            let size = file_size(add);
            sizes.push(size);
            group.files += 1;
            group.bytes += size;
            match add.stats.as_deref().map(parse_num_records) {
                Some(Ok(Some(rows))) => {
                    let deleted = add.deleted_rows().min(rows);
                    group.rows += rows - deleted;
                    group.deleted_rows += deleted;
                }
                _ => group.files_without_row_count += 1,
            }
        }
        sizes.sort_unstable();
        let n = sizes.len();
        if n > 0 {
            group.min_file_size = sizes[0];
            group.max_file_size = sizes[n - 1];
            group.median_file_size = if n % 2 == 1 {
                sizes[n / 2]
            } else {
                sizes[n / 2 - 1].midpoint(sizes[n / 2])
            };
        }
        group
    }
}

/// The live files of one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLayout {
    /// The partition: column → value (`None` for null), as in `add.partitionValues`.
    pub partition_values: BTreeMap<String, Option<String>>,
    /// Its files.
    #[serde(flatten)]
    pub files: FileGroup,
}

/// The live files whose size is in `[min_bytes, max_bytes)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SizeBucket {
    /// The smallest size in the bucket.
    pub min_bytes: u64,
    /// The end of the bucket (exclusive); `None` for the last bucket.
    pub max_bytes: Option<u64>,
    /// Files in the bucket.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
}

/// The layout of a snapshot's live files; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableLayout {
    /// The snapshot's version.
    pub version: u64,
    /// The table's partition columns.
    pub partition_columns: Vec<String>,
    /// Every partition with live files, ordered by partition values (null first).
    pub partitions: Vec<PartitionLayout>,
    /// The file size histogram over all live files, one bucket per [`SIZE_BUCKETS`]
    /// entry.
    pub size_histogram: Vec<SizeBucket>,
    /// All live files.
    pub total: FileGroup,
}

impl TableLayout {
    /// The layout of `snapshot`'s live files.
    pub fn of(snapshot: &Snapshot) -> Self {
        let partitions = snapshot
            .files_by_partition()
            .into_iter()
            .map(|(values, files)| PartitionLayout {
                partition_values: values.clone(),
                files: FileGroup::of(files),
            })
            .collect();

        let mut size_histogram: Vec<SizeBucket> = SIZE_BUCKETS
            .iter()
            .enumerate()
            .map(|(i, &min_bytes)| SizeBucket {
                min_bytes,
                max_bytes: SIZE_BUCKETS.get(i + 1).copied(),
                files: 0,
                bytes: 0,
            })
            .collect();
        for add in snapshot.files.values() {
            let size = file_size(add);
            let i = SIZE_BUCKETS.partition_point(|&min| min <= size) - 1;
            size_histogram[i].files += 1;
            size_histogram[i].bytes += size;
        }

        TableLayout {
            version: snapshot.version,
            partition_columns: snapshot
                .metadata
                .as_ref()
                .map(|m| m.partition_columns.clone())
                .unwrap_or_default(),
            partitions,
            size_histogram,
            total: FileGroup::of(snapshot.files.values()),
        }
    }
}

/// `add.size`, with a (corrupt) negative size as 0.
fn file_size(add: &Add) -> u64 {
    u64::try_from(add.size).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::protocol::actions::Action;

    fn file(path: &str, date: Option<&str>, size: u64, rows: Option<u64>) -> Action {
        Action::Add(Add {
            path: path.to_owned(),
            partition_values: BTreeMap::from([("date".to_owned(), date.map(str::to_owned))]),
            size: size as i64,
            modification_time: 1,
            data_change: true,
            stats: rows.map(|n| format!(r#"{{"numRecords":{n},"nullCount":{{}}}}"#)),
            tags: None,
            ..Default::default()
        })
    }

    #[test]
    fn rows_deleted_by_deletion_vectors_are_not_counted() {
        let mut snapshot = Snapshot::default();
        let Action::Add(mut add) = file("a", None, 100, Some(10)) else {
            unreachable!()
        };
        add.other.insert(
            "deletionVector".into(),
            serde_json::json!({"storageType":"i","pathOrInlineDv":"wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L","sizeInBytes":40,"cardinality":3}),
        );
        snapshot.apply(1, [Action::Add(add), file("b", None, 100, Some(5))]);
        let total = TableLayout::of(&snapshot).total;
        assert_eq!((total.rows, total.deleted_rows), (12, 3));
    }

    #[test]
    fn partitions_count_files_rows_and_sizes() {
        let mut snapshot = Snapshot::default();
        snapshot.apply(
            3,
            [
                file("d1/a", Some("2024-05-01"), 100, Some(10)),
                file("d1/b", Some("2024-05-01"), 300, Some(30)),
                file("d1/c", Some("2024-05-01"), 200, None),
                file("d2/a", Some("2024-05-02"), 2 * MIB, Some(5)),
                file("d2/b", Some("2024-05-02"), 10 * MIB, Some(7)),
                file("null/a", None, 128 * MIB, Some(1)),
                file("gone", Some("2024-05-03"), 5, Some(1)),
            ],
        );
        snapshot.files.remove("gone");
        let layout = TableLayout::of(&snapshot);
        assert_eq!(layout.version, 3);
        let keys: Vec<Option<&str>> = layout
            .partitions
            .iter()
            .map(|p| p.partition_values["date"].as_deref())
            .collect();
        assert_eq!(keys, [None, Some("2024-05-01"), Some("2024-05-02")]);
        assert_eq!(
            layout.partitions[1].files,
            FileGroup {
                files: 3,
                rows: 40,
                deleted_rows: 0,
                files_without_row_count: 1,
                bytes: 600,
                min_file_size: 100,
                median_file_size: 200,
                max_file_size: 300,
            }
        );
        assert_eq!(layout.partitions[2].files.median_file_size, 6 * MIB);
        assert_eq!(layout.partitions[2].files.rows, 12);
        assert_eq!(layout.partitions[0].files.files, 1);
        assert_eq!(layout.total.files, 6);
        assert_eq!(layout.total.rows, 53);
        assert_eq!(layout.total.bytes, 600 + 12 * MIB + 128 * MIB);
        assert_eq!(layout.total.max_file_size, 128 * MIB);
        assert_eq!(layout.total.median_file_size, 300u64.midpoint(2 * MIB));

        let histogram: Vec<(u64, Option<u64>, u64)> = layout
            .size_histogram
            .iter()
            .map(|b| (b.min_bytes, b.max_bytes, b.files))
            .collect();
        assert_eq!(
            histogram,
            [
                (0, Some(MIB), 3),
                (MIB, Some(8 * MIB), 1),
                (8 * MIB, Some(32 * MIB), 1),
                (32 * MIB, Some(128 * MIB), 0),
                (128 * MIB, None, 1),
            ]
        );
        assert_eq!(layout.size_histogram[0].bytes, 600);
    }

    #[test]
    fn an_empty_table_has_empty_buckets_and_zero_totals() {
        let layout = TableLayout::of(&Snapshot::default());
        assert!(layout.partitions.is_empty());
        assert_eq!(layout.total, FileGroup::default());
        assert_eq!(layout.size_histogram.len(), SIZE_BUCKETS.len());
        assert!(layout.size_histogram.iter().all(|b| b.files == 0));
    }

    #[test]
    fn json_names_follow_the_log() {
        let mut snapshot = Snapshot::default();
        snapshot.apply(1, [file("a", Some("2024-05-01"), 10, Some(2))]);
        let json = serde_json::to_value(TableLayout::of(&snapshot)).expect("JSON");
        assert_eq!(
            json["partitions"][0]["partitionValues"]["date"],
            "2024-05-01"
        );
        assert_eq!(json["partitions"][0]["files"], 1);
        assert_eq!(json["partitions"][0]["rows"], 2);
        assert_eq!(json["total"]["medianFileSize"], 10);
        assert_eq!(
            json["sizeHistogram"][4]["maxBytes"],
            serde_json::Value::Null
        );
    }
}
