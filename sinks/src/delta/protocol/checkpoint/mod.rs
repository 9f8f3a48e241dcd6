//! Classic (V1) Parquet checkpoints of the Delta log, and `_delta_log/_last_checkpoint`:
//! their file names and schema here, writing one in `write.rs` and reading one (whoever
//! wrote it) in `read.rs`.
//!
//! A checkpoint `_delta_log/<version, 20 digits>.checkpoint.parquet` holds a snapshot's
//! reconciled state, one action per row: each row sets exactly one of the top-level
//! struct columns `add`, `remove`, `metaData`, `protocol` and `txn`, the others are null
//! (see `shared/notes/delta-writer.md` §4). Readers start from the newest checkpoint and
//! replay only the JSON commits after it, so the log can be cleaned up behind it.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::log::log_dir;

pub mod policy;
mod read;
mod write;

pub(in crate::delta) use read::{
    list_log, list_log_objects, read_checkpoint_files, usable_checkpoint,
};
pub use read::{read_checkpoint, read_last_checkpoint, read_last_checkpoint_file};
#[cfg(test)]
pub use write::write_checkpoint;
pub use write::{unwritten, write_checkpoint_at};

/// The name of the file that points at the latest checkpoint.
pub const LAST_CHECKPOINT: &str = "_last_checkpoint";

/// `<root>/_delta_log/<version, 20 digits>.checkpoint.parquet`.
pub fn checkpoint_path(root: &Path, version: u64) -> Path {
    log_dir(root).join(format!("{version:020}.checkpoint.parquet"))
}

/// `<root>/_delta_log/_last_checkpoint`.
pub fn last_checkpoint_path(root: &Path) -> Path {
    log_dir(root).join(LAST_CHECKPOINT)
}

/// What kind of checkpoint file a name in `_delta_log/` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// `<v>.checkpoint.parquet`.
    Single,
    /// `<v>.checkpoint.<part>.<parts>.parquet`, `part` in `1..=parts`.
    Part {
        /// This file's part, from 1.
        part: u32,
        /// How many parts the checkpoint has.
        parts: u32,
    },
    /// `<v>.checkpoint.<uuid>.parquet` or `.json`: a V2 checkpoint, not supported.
    V2,
}

/// The version and kind of a checkpoint file name, or `None` for other names.
pub fn checkpoint_file(file_name: &str) -> Option<(u64, CheckpointKind)> {
    let (digits, rest) = file_name.split_at_checked(20)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = digits.parse().ok()?;
    let rest = rest.strip_prefix(".checkpoint")?;
    if rest == ".parquet" {
        return Some((version, CheckpointKind::Single));
    }
    let middle = rest
        .strip_suffix(".parquet")
        .or_else(|| rest.strip_suffix(".json"))?
        .strip_prefix('.')?;
    let is_number = |s: &str| s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit());
    if rest.ends_with(".parquet")
        && let Some((part, parts)) = middle.split_once('.')
        && is_number(part)
        && is_number(parts)
    {
        let (part, parts) = (part.parse().ok()?, parts.parse().ok()?);
        return (1..=parts)
            .contains(&part)
            .then_some((version, CheckpointKind::Part { part, parts }));
    }
    (!middle.is_empty() && !middle.contains('.')).then_some((version, CheckpointKind::V2))
}

/// The contents of `_last_checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastCheckpoint {
    /// The checkpoint's version.
    pub version: u64,
    /// Its number of actions (rows).
    pub size: u64,
    /// Its size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_in_bytes: Option<u64>,
    /// Its number of `add` actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_of_add_files: Option<u64>,
    /// Its number of parts, for a multi-part checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// The checkpoint schema.

/// `map<string,string>` with nullable values, as Parquet names it (`key_value`, `key`,
/// `value`).
pub(in crate::delta) fn map_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
        false,
    )
}

/// `list<string>` with the Parquet-compliant element name.
pub(in crate::delta) fn list_field() -> Field {
    Field::new("element", DataType::Utf8, false)
}

pub(in crate::delta) fn list_type() -> DataType {
    DataType::List(Arc::new(list_field()))
}

pub(in crate::delta) fn add_fields() -> Fields {
    Fields::from(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("partitionValues", map_type(), false),
        Field::new("size", DataType::Int64, false),
        Field::new("modificationTime", DataType::Int64, false),
        Field::new("dataChange", DataType::Boolean, false),
        Field::new("stats", DataType::Utf8, true),
        Field::new("tags", map_type(), true),
    ])
}

pub(in crate::delta) fn remove_fields() -> Fields {
    Fields::from(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("deletionTimestamp", DataType::Int64, true),
        Field::new("dataChange", DataType::Boolean, false),
        Field::new("extendedFileMetadata", DataType::Boolean, true),
        Field::new("partitionValues", map_type(), true),
        Field::new("size", DataType::Int64, true),
        Field::new("stats", DataType::Utf8, true),
        Field::new("tags", map_type(), true),
    ])
}

pub(in crate::delta) fn format_fields() -> Fields {
    Fields::from(vec![
        Field::new("provider", DataType::Utf8, false),
        Field::new("options", map_type(), false),
    ])
}

pub(in crate::delta) fn metadata_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("format", DataType::Struct(format_fields()), false),
        Field::new("schemaString", DataType::Utf8, false),
        Field::new("partitionColumns", list_type(), false),
        Field::new("createdTime", DataType::Int64, true),
        Field::new("configuration", map_type(), false),
    ])
}

pub(in crate::delta) fn protocol_fields() -> Fields {
    Fields::from(vec![
        Field::new("minReaderVersion", DataType::Int32, false),
        Field::new("minWriterVersion", DataType::Int32, false),
        Field::new("readerFeatures", list_type(), true),
        Field::new("writerFeatures", list_type(), true),
    ])
}

pub(in crate::delta) fn txn_fields() -> Fields {
    Fields::from(vec![
        Field::new("appId", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("lastUpdated", DataType::Int64, true),
    ])
}

/// The Arrow schema of the checkpoints [`write_checkpoint`] writes: five nullable struct
/// columns, `add`, `remove`, `metaData`, `protocol` and `txn`, with the fields (and
/// nullability) of the Delta protocol's actions.
pub fn checkpoint_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("add", DataType::Struct(add_fields()), true),
        Field::new("remove", DataType::Struct(remove_fields()), true),
        Field::new("metaData", DataType::Struct(metadata_fields()), true),
        Field::new("protocol", DataType::Struct(protocol_fields()), true),
        Field::new("txn", DataType::Struct(txn_fields()), true),
    ]))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::delta::Snapshot;
    use crate::delta::protocol::actions::{Action, Add, CommitInfo, Protocol, Remove, Txn};
    use crate::delta::protocol::schema::Schema as TableSchema;
    use crate::delta::protocol::table::DeltaTable;
    pub(crate) use crate::testing::block_on;

    fn add(path: &str, date: Option<&str>, data_change: bool) -> Add {
        Add {
            path: path.to_owned(),
            partition_values: BTreeMap::from([("date".to_owned(), date.map(str::to_owned))]),
            size: 1000 + path.len() as i64,
            modification_time: 1_714_521_600_000,
            data_change,
            stats: Some(format!(
                r#"{{"numRecords":3,"minValues":{{"amount":1.5,"accountId":"{path}"}},"maxValues":{{"amount":9.0}},"nullCount":{{"amount":0}}}}"#
            )),
            tags: None,
            ..Default::default()
        }
    }

    fn txn(app: &str, version: i64, last_updated: Option<i64>) -> Action {
        Action::Txn(Txn {
            app_id: app.to_owned(),
            version,
            last_updated,
            ..Default::default()
        })
    }

    fn info() -> Action {
        Action::CommitInfo(CommitInfo {
            operation: Some("STREAMING UPDATE".to_owned()),
            ..CommitInfo::default()
        })
    }

    /// How long before the wall clock [`sample_table`] removes `part-a` and `part-b`:
    /// recently enough that checkpoints keep both tombstones.
    const REMOVED_AGO_MS: [i64; 2] = [3_600_000, 60_000];

    /// Builds versions 0 to 5 of a table (adds with stats and tags, null partition
    /// values, removes with and without the extended fields, txns with and without
    /// `lastUpdated`, a metaData and a protocol change) and returns its replayed snapshot.
    pub(crate) async fn sample_table(table: &DeltaTable) -> Snapshot {
        let now = chrono::Utc::now().timestamp_millis();
        let schema = TableSchema::of(&[
            ("dt", "timestamp"),
            ("accountId", "string"),
            ("amount", "double"),
            ("date", "string"),
        ]);
        let configuration = BTreeMap::from([
            ("delta.checkpointInterval".to_owned(), "10".to_owned()),
            ("delta.appendOnly".to_owned(), "false".to_owned()),
        ]);
        let v0 = table
            .create_or_open(&schema, &["date"], configuration, "tidelake-test")
            .await
            .expect("create");
        let mut metadata = v0.metadata.expect("metaData");
        let commits: Vec<Vec<Action>> = vec![
            vec![
                Action::Add(add(
                    "date=2024-05-01/part-a.parquet",
                    Some("2024-05-01"),
                    true,
                )),
                Action::Add(add(
                    "date=__HIVE_DEFAULT_PARTITION__/part-b.parquet",
                    None,
                    true,
                )),
                txn("job-w0", 1, Some(10)),
                info(),
            ],
            vec![
                Action::Add(Add {
                    tags: Some(BTreeMap::from([
                        ("k".to_owned(), Some("v".to_owned())),
                        ("n".to_owned(), None),
                    ])),
                    stats: None,
                    ..add("date=2024-05-02/part-c.parquet", Some("2024-05-02"), true)
                }),
                txn("job-w1", 1, Some(11)),
                txn("job-w0", 2, Some(12)),
                info(),
            ],
            vec![
                Action::Remove(Remove {
                    path: "date=2024-05-01/part-a.parquet".to_owned(),
                    deletion_timestamp: Some(now - REMOVED_AGO_MS[0]),
                    data_change: false,
                    extended_file_metadata: Some(true),
                    partition_values: Some(BTreeMap::from([(
                        "date".to_owned(),
                        Some("2024-05-01".to_owned()),
                    )])),
                    size: Some(1030),
                    ..Default::default()
                }),
                Action::Add(add(
                    "date=2024-05-01/part-d.parquet",
                    Some("2024-05-01"),
                    false,
                )),
                txn("job-w2", 5, None),
                info(),
            ],
            {
                metadata.configuration.insert(
                    "delta.logRetentionDuration".to_owned(),
                    "interval 30 days".to_owned(),
                );
                metadata.name = Some("transactions".to_owned());
                metadata.description = Some("fraud job output".to_owned());
                vec![
                    Action::Protocol(Protocol {
                        min_reader_version: 1,
                        min_writer_version: 7,
                        reader_features: None,
                        writer_features: Some(vec![
                            "appendOnly".to_owned(),
                            "invariants".to_owned(),
                        ]),
                        ..Default::default()
                    }),
                    Action::Metadata(metadata.clone()),
                    info(),
                ]
            },
            vec![
                Action::Remove(Remove {
                    path: "date=__HIVE_DEFAULT_PARTITION__/part-b.parquet".to_owned(),
                    deletion_timestamp: Some(now - REMOVED_AGO_MS[1]),
                    data_change: true,
                    extended_file_metadata: None,
                    partition_values: None,
                    size: None,
                    ..Default::default()
                }),
                txn("job-w1", 3, Some(13)),
                info(),
            ],
        ];
        for (i, actions) in commits.iter().enumerate() {
            let outcome = table
                .try_commit(i as u64 + 1, actions)
                .await
                .expect("commit");
            assert_eq!(outcome, crate::delta::CommitOutcome::Committed);
        }
        let snapshot = table.snapshot().await.expect("load").expect("exists");
        assert_eq!(snapshot.version, 5);
        assert_eq!(snapshot.files.len(), 2);
        assert_eq!(snapshot.tombstones.len(), 2);
        assert_eq!(snapshot.txns.len(), 3);
        snapshot
    }

    #[test]
    fn checkpoint_file_names() {
        assert_eq!(
            checkpoint_path(&Path::from("t"), 10).as_ref(),
            "t/_delta_log/00000000000000000010.checkpoint.parquet"
        );
        assert_eq!(
            checkpoint_file("00000000000000000010.checkpoint.parquet"),
            Some((10, CheckpointKind::Single))
        );
        assert_eq!(
            checkpoint_file("00000000000000000010.checkpoint.0000000002.0000000003.parquet"),
            Some((10, CheckpointKind::Part { part: 2, parts: 3 }))
        );
        assert_eq!(
            checkpoint_file(
                "00000000000000000010.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.json"
            ),
            Some((10, CheckpointKind::V2))
        );
        assert_eq!(
            checkpoint_file(
                "00000000000000000010.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.parquet"
            ),
            Some((10, CheckpointKind::V2))
        );
        for other in [
            "00000000000000000010.json",
            "00000000000000000010.crc",
            "00000000000000000010.checkpoint.0000000004.0000000003.parquet",
            "0000000000000000010.checkpoint.parquet",
            "_last_checkpoint",
            "00000000000000000010.checkpoint.parquet.tmp",
        ] {
            assert_eq!(checkpoint_file(other), None, "{other}");
        }
    }
}
