//! Reading a checkpoint, whoever wrote it.
//!
//! Reading accepts what other writers produce as well: multi-part checkpoints
//! (`<v>.checkpoint.<part, 10 digits>.<parts, 10 digits>.parquet`), extra columns (delta-rs
//! writes `domainMetadata`, `sidecar`, `add.stats_parsed`, …; they are not even read,
//! but for the `deletionVector` of an `add` or `remove`, kept in its `other` fields),
//! missing optional columns (null), and other integer, string and list encodings. V2
//! checkpoints (`<v>.checkpoint.<uuid>.parquet|json`, or sidecar files referenced from a
//! classic one) are refused with an error naming the file.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{
    CheckpointKind, LastCheckpoint, checkpoint_file, checkpoint_path, last_checkpoint_path,
};
use crate::delta::DeltaError;
use crate::delta::protocol::actions::{Action, Add, Format, Metadata, Protocol, Remove, Txn};
use crate::delta::protocol::columns::{
    Bools, DeletionVectors, Ints, Longs, StrLists, StrMaps, Strings, child, column, key_of,
};
use crate::delta::protocol::log::{commit_version, log_dir};
use crate::delta::protocol::snapshot::Snapshot;

/// The columns and fields read from a checkpoint; everything else is skipped.
const READ_FIELDS: &[(&str, &[&str])] = &[
    (
        "add",
        &[
            "path",
            "partitionValues",
            "size",
            "modificationTime",
            "dataChange",
            "stats",
            "tags",
            "deletionVector",
        ],
    ),
    (
        "remove",
        &[
            "path",
            "deletionTimestamp",
            "dataChange",
            "extendedFileMetadata",
            "partitionValues",
            "size",
            "stats",
            "tags",
            "deletionVector",
        ],
    ),
    (
        "metaData",
        &[
            "id",
            "name",
            "description",
            "format",
            "schemaString",
            "partitionColumns",
            "createdTime",
            "configuration",
        ],
    ),
    (
        "protocol",
        &[
            "minReaderVersion",
            "minWriterVersion",
            "readerFeatures",
            "writerFeatures",
        ],
    ),
    ("txn", &["appId", "version", "lastUpdated"]),
    ("sidecar", &["path"]),
];

/// An action's `other` fields holding its deletion vector, if it has one.
fn deletion_vector(
    descriptor: Option<serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    descriptor
        .map(|d| serde_json::Map::from_iter([("deletionVector".to_owned(), d)]))
        .unwrap_or_default()
}

fn required<T>(value: Option<T>, field: &str, row: usize) -> Result<T, String> {
    value.ok_or_else(|| format!("row {row}: {field} is null"))
}

/// Appends the actions of one record batch of a checkpoint; `first_row` numbers its rows
/// in messages.
fn batch_actions(
    batch: &RecordBatch,
    first_row: usize,
    out: &mut Vec<Action>,
) -> Result<(), String> {
    let arrow = |e: ArrowError| e.to_string();

    let add = column(batch, "add");
    let add_path = Strings::new(child(add, "path")).map_err(arrow)?;
    let add_partition = StrMaps::new(child(add, "partitionValues")).map_err(arrow)?;
    let add_size = Longs::new(child(add, "size")).map_err(arrow)?;
    let add_time = Longs::new(child(add, "modificationTime")).map_err(arrow)?;
    let add_change = Bools::new(child(add, "dataChange")).map_err(arrow)?;
    let add_stats = Strings::new(child(add, "stats")).map_err(arrow)?;
    let add_tags = StrMaps::new(child(add, "tags")).map_err(arrow)?;
    let add_dv = DeletionVectors::new(child(add, "deletionVector")).map_err(arrow)?;

    let remove = column(batch, "remove");
    let rm_path = Strings::new(child(remove, "path")).map_err(arrow)?;
    let rm_time = Longs::new(child(remove, "deletionTimestamp")).map_err(arrow)?;
    let rm_change = Bools::new(child(remove, "dataChange")).map_err(arrow)?;
    let rm_extended = Bools::new(child(remove, "extendedFileMetadata")).map_err(arrow)?;
    let rm_partition = StrMaps::new(child(remove, "partitionValues")).map_err(arrow)?;
    let rm_size = Longs::new(child(remove, "size")).map_err(arrow)?;
    let rm_stats = Strings::new(child(remove, "stats")).map_err(arrow)?;
    let rm_tags = StrMaps::new(child(remove, "tags")).map_err(arrow)?;
    let rm_dv = DeletionVectors::new(child(remove, "deletionVector")).map_err(arrow)?;

    let meta = column(batch, "metaData");
    let meta_id = Strings::new(child(meta, "id")).map_err(arrow)?;
    let meta_name = Strings::new(child(meta, "name")).map_err(arrow)?;
    let meta_description = Strings::new(child(meta, "description")).map_err(arrow)?;
    let format = child(meta, "format").and_then(|f| f.as_struct_opt());
    let meta_provider = Strings::new(child(format, "provider")).map_err(arrow)?;
    let meta_options = StrMaps::new(child(format, "options")).map_err(arrow)?;
    let meta_schema = Strings::new(child(meta, "schemaString")).map_err(arrow)?;
    let meta_partitions = StrLists::new(child(meta, "partitionColumns")).map_err(arrow)?;
    let meta_created = Longs::new(child(meta, "createdTime")).map_err(arrow)?;
    let meta_config = StrMaps::new(child(meta, "configuration")).map_err(arrow)?;

    let protocol = column(batch, "protocol");
    let min_reader = Ints::new(child(protocol, "minReaderVersion")).map_err(arrow)?;
    let min_writer = Ints::new(child(protocol, "minWriterVersion")).map_err(arrow)?;
    let reader_features = StrLists::new(child(protocol, "readerFeatures")).map_err(arrow)?;
    let writer_features = StrLists::new(child(protocol, "writerFeatures")).map_err(arrow)?;

    let txn = column(batch, "txn");
    let txn_app = Strings::new(child(txn, "appId")).map_err(arrow)?;
    let txn_version = Longs::new(child(txn, "version")).map_err(arrow)?;
    let txn_updated = Longs::new(child(txn, "lastUpdated")).map_err(arrow)?;

    let sidecar = column(batch, "sidecar");
    let sidecar_path = Strings::new(child(sidecar, "path")).map_err(arrow)?;

    for i in 0..batch.num_rows() {
        let row = first_row + i;
        if let Some(path) = key_of(add, &add_path, i) {
            out.push(Action::Add(Add {
                path,
                partition_values: add_partition.get(i).unwrap_or_default(),
                size: required(add_size.get(i), "add.size", row)?,
                modification_time: required(add_time.get(i), "add.modificationTime", row)?,
                data_change: required(add_change.get(i), "add.dataChange", row)?,
                stats: add_stats.get(i),
                tags: add_tags.get(i),
                other: deletion_vector(add_dv.get(i)),
            }));
        }
        if let Some(path) = key_of(remove, &rm_path, i) {
            out.push(Action::Remove(Remove {
                path,
                deletion_timestamp: rm_time.get(i),
                data_change: required(rm_change.get(i), "remove.dataChange", row)?,
                extended_file_metadata: rm_extended.get(i),
                partition_values: rm_partition.get(i),
                size: rm_size.get(i),
                stats: rm_stats.get(i),
                tags: rm_tags.get(i),
                other: deletion_vector(rm_dv.get(i)),
            }));
        }
        if let Some(id) = key_of(meta, &meta_id, i) {
            out.push(Action::Metadata(Metadata {
                id,
                name: meta_name.get(i),
                description: meta_description.get(i),
                format: Format {
                    provider: meta_provider.get(i).unwrap_or_else(|| "parquet".to_owned()),
                    options: meta_options.get_non_null(i).unwrap_or_default(),
                },
                schema_string: required(meta_schema.get(i), "metaData.schemaString", row)?,
                partition_columns: meta_partitions.get(i).unwrap_or_default(),
                created_time: meta_created.get(i),
                configuration: meta_config.get_non_null(i).unwrap_or_default(),
                ..Metadata::default()
            }));
        }
        if protocol.is_some_and(|p| p.is_valid(i))
            && let Some(min_reader_version) = min_reader.get(i)
        {
            out.push(Action::Protocol(Protocol {
                min_reader_version,
                min_writer_version: required(min_writer.get(i), "protocol.minWriterVersion", row)?,
                reader_features: reader_features.get(i),
                writer_features: writer_features.get(i),
                ..Protocol::default()
            }));
        }
        if let Some(app_id) = key_of(txn, &txn_app, i) {
            out.push(Action::Txn(Txn {
                app_id,
                version: required(txn_version.get(i), "txn.version", row)?,
                last_updated: txn_updated.get(i),
                ..Txn::default()
            }));
        }
        if let Some(file) = key_of(sidecar, &sidecar_path, i) {
            return Err(format!(
                "row {row} references the sidecar file {file}: V2 checkpoints with sidecars are not supported"
            ));
        }
    }
    Ok(())
}

/// The actions in one checkpoint file.
fn decode(bytes: Bytes) -> Result<Vec<Action>, String> {
    let parquet = |e: parquet::errors::ParquetError| e.to_string();
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet)?;
    let schema = builder.parquet_schema();
    let wanted = |parts: &[String]| match parts {
        [column, field, ..] => READ_FIELDS
            .iter()
            .any(|(c, fields)| c == column && fields.contains(&field.as_str())),
        _ => false,
    };
    let leaves: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| wanted(schema.column(i).path().parts()))
        .collect();
    let mask = ProjectionMask::leaves(schema, leaves);
    let reader = builder.with_projection(mask).build().map_err(parquet)?;
    let mut actions = Vec::new();
    let mut first_row = 0;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        batch_actions(&batch, first_row, &mut actions)?;
        first_row += batch.num_rows();
    }
    Ok(actions)
}

pub(super) async fn get_bytes(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Bytes, object_store::Error> {
    store.get(path).await?.bytes().await
}

/// The snapshot at `version` from the checkpoint files `parts` (one file, or every part
/// of a multi-part checkpoint).
pub(in crate::delta) async fn read_checkpoint_files(
    store: &dyn ObjectStore,
    version: u64,
    parts: &[Path],
) -> Result<Snapshot, DeltaError> {
    let mut snapshot = Snapshot {
        version,
        ..Snapshot::default()
    };
    for path in parts {
        let bytes = get_bytes(store, path)
            .await
            .map_err(|source| DeltaError::Store {
                path: path.to_string(),
                source,
            })?;
        let actions = decode(bytes).map_err(|detail| DeltaError::Checkpoint {
            path: path.to_string(),
            detail,
        })?;
        snapshot.apply(version, actions);
    }
    Ok(snapshot)
}

/// The objects of `_delta_log/`, as far as replay needs them.
#[derive(Clone, Debug, Default)]
pub(in crate::delta) struct LogListing {
    /// Versions of the JSON commits, sorted.
    pub commits: Vec<u64>,
    /// Checkpoint files by version.
    pub checkpoints: BTreeMap<u64, Vec<(Path, CheckpointKind)>>,
}

/// The objects directly in `_delta_log/` (only those from version `from`'s names on, if
/// given; its checkpoint and commit are included), in no particular order. Objects in
/// its subdirectories (`_delta_log/_commits/`, `_sidecars/`) are left out.
pub(in crate::delta) async fn list_log_objects(
    store: &dyn ObjectStore,
    root: &Path,
    from: Option<u64>,
) -> Result<Vec<ObjectMeta>, DeltaError> {
    let dir = log_dir(root);
    let stream = match from {
        Some(version) => {
            let offset = dir.clone().join(format!("{version:020}"));
            store.list_with_offset(Some(&dir), &offset)
        }
        None => store.list(Some(&dir)),
    };
    let mut objects: Vec<ObjectMeta> =
        stream
            .try_collect()
            .await
            .map_err(|source| DeltaError::Store {
                path: dir.to_string(),
                source,
            })?;
    let depth = dir.parts().count() + 1;
    objects.retain(|meta| meta.location.parts().count() == depth);
    Ok(objects)
}

/// Lists `_delta_log/` (only the objects after version `from`'s names, if given; its
/// checkpoint and commit are included).
pub(in crate::delta) async fn list_log(
    store: &dyn ObjectStore,
    root: &Path,
    from: Option<u64>,
) -> Result<LogListing, DeltaError> {
    let mut listing = LogListing::default();
    for meta in list_log_objects(store, root, from).await? {
        let Some(name) = meta.location.filename() else {
            continue;
        };
        if let Some(version) = commit_version(name) {
            listing.commits.push(version);
        } else if let Some((version, kind)) = checkpoint_file(name) {
            listing
                .checkpoints
                .entry(version)
                .or_default()
                .push((meta.location.clone(), kind));
        }
    }
    listing.commits.sort_unstable();
    for files in listing.checkpoints.values_mut() {
        files.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
    }
    Ok(listing)
}

/// The files of a usable classic checkpoint among `files` (all of one version): the
/// single file, or every part of a complete multi-part checkpoint. `Ok(None)` if there is
/// none (an incomplete multi-part checkpoint is skipped), an error naming the file if the
/// only checkpoint is a V2 one.
pub(in crate::delta) fn usable_checkpoint(
    files: &[(Path, CheckpointKind)],
) -> Result<Option<Vec<Path>>, DeltaError> {
    if let Some((path, _)) = files.iter().find(|(_, k)| *k == CheckpointKind::Single) {
        return Ok(Some(vec![path.clone()]));
    }
    let mut by_count: BTreeMap<u32, BTreeMap<u32, &Path>> = BTreeMap::new();
    for (path, kind) in files {
        if let CheckpointKind::Part { part, parts } = kind {
            by_count.entry(*parts).or_default().insert(*part, path);
        }
    }
    if let Some(parts) = by_count
        .iter()
        .find(|(count, parts)| parts.len() == **count as usize)
        .map(|(_, parts)| parts.values().map(|p| (*p).clone()).collect())
    {
        return Ok(Some(parts));
    }
    if let Some((path, _)) = files.iter().find(|(_, k)| *k == CheckpointKind::V2) {
        return Err(DeltaError::UnsupportedFeature {
            table: path.to_string(),
            feature: "a V2 (UUID-named) checkpoint, of the reader feature v2Checkpoint".to_owned(),
            operation: "reading the log",
            detail: "tidelake reads and writes only classic (V1) checkpoints".to_owned(),
        });
    }
    Ok(None)
}

/// Reads the classic checkpoint at `version` (single-file or multi-part) into the
/// snapshot at that version.
pub async fn read_checkpoint(
    store: &dyn ObjectStore,
    root: &Path,
    version: u64,
) -> Result<Snapshot, DeltaError> {
    let single = checkpoint_path(root, version);
    match get_bytes(store, &single).await {
        Ok(bytes) => {
            let actions = decode(bytes).map_err(|detail| DeltaError::Checkpoint {
                path: single.to_string(),
                detail,
            })?;
            let mut snapshot = Snapshot::default();
            snapshot.apply(version, actions);
            return Ok(snapshot);
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(source) => {
            return Err(DeltaError::Store {
                path: single.to_string(),
                source,
            });
        }
    }
    let listing = list_log(store, root, Some(version)).await?;
    let files = listing
        .checkpoints
        .get(&version)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match usable_checkpoint(files)? {
        Some(parts) => read_checkpoint_files(store, version, &parts).await,
        None => Err(DeltaError::Checkpoint {
            path: single.to_string(),
            detail: format!("no complete checkpoint of version {version}"),
        }),
    }
}

/// The contents of `_last_checkpoint`, or `None` if there is no such file.
pub async fn read_last_checkpoint_file(
    store: &dyn ObjectStore,
    root: &Path,
) -> Result<Option<LastCheckpoint>, DeltaError> {
    let path = last_checkpoint_path(root);
    let bytes = match get_bytes(store, &path).await {
        Ok(bytes) => bytes,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(source) => {
            return Err(DeltaError::Store {
                path: path.to_string(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| DeltaError::Checkpoint {
            path: path.to_string(),
            detail: format!("does not parse: {e}"),
        })
}

/// The version `_last_checkpoint` points at, or `None` if there is no such file.
pub async fn read_last_checkpoint(
    store: &dyn ObjectStore,
    root: &Path,
) -> Result<Option<u64>, DeltaError> {
    Ok(read_last_checkpoint_file(store, root)
        .await?
        .map(|last| last.version))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Int64Array, ListBuilder, StringArray, StringBuilder, StructArray,
    };
    use arrow::buffer::NullBuffer;
    use arrow::datatypes::{DataType, Field, Fields};
    use object_store::PutPayload;
    use parquet::arrow::ArrowWriter;

    use super::super::tests::{block_on, sample_table};
    use super::super::write::{encode, map_builder};
    use super::super::{format_fields, map_type};
    use super::*;
    use crate::delta::protocol::table::DeltaTable;

    /// Writes `snapshot`'s rows as one checkpoint file at `path`.
    async fn put_encoded(store: &dyn ObjectStore, path: &Path, snapshot: &Snapshot) {
        let (bytes, _) = encode(snapshot, i64::MIN).expect("encode");
        store
            .put(path, PutPayload::from(Bytes::from(bytes)))
            .await
            .expect("put");
    }

    #[test]
    fn multi_part_checkpoints_are_read_and_incomplete_ones_skipped() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            let full = sample_table(&table).await;
            let part = |n: u32| {
                log_dir(root).join(format!(
                    "{:020}.checkpoint.{n:010}.{:010}.parquet",
                    full.version, 2
                ))
            };
            let first = Snapshot {
                files: BTreeMap::new(),
                tombstones: BTreeMap::new(),
                ..full.clone()
            };
            let second = Snapshot {
                protocol: None,
                metadata: None,
                txns: Default::default(),
                ..full.clone()
            };
            put_encoded(store, &part(1), &first).await;
            // Only part 1 of 2: not a checkpoint yet.
            assert!(matches!(
                read_checkpoint(store, root, 5).await,
                Err(DeltaError::Checkpoint { .. })
            ));
            put_encoded(store, &part(2), &second).await;
            assert_eq!(read_checkpoint(store, root, 5).await.expect("read"), full);

            for version in 0..=5 {
                store
                    .delete(&crate::delta::protocol::log::commit_path(root, version))
                    .await
                    .expect("delete");
            }
            assert_eq!(Snapshot::load(store, root).await.expect("load"), Some(full));
        });
    }

    #[test]
    fn v2_checkpoints_are_refused_naming_the_file() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            sample_table(&table).await;
            let name = "00000000000000000005.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.json";
            store
                .put(&log_dir(root).join(name), PutPayload::from_static(b"{}"))
                .await
                .expect("put");
            let err = Snapshot::load(store, root).await.expect_err("V2");
            assert!(
                err.to_string().contains(name) && err.to_string().contains("V2"),
                "{err}"
            );
            let err = read_checkpoint(store, root, 5).await.expect_err("V2");
            assert!(err.to_string().contains(name), "{err}");
        });
    }

    /// A checkpoint as another writer might write it: extra columns (`domainMetadata`,
    /// `sidecar`, `add.stats_parsed`), other integer widths, large strings, no `remove`
    /// column and no `add.tags`.
    fn foreign_checkpoint(sidecar: Option<&str>) -> Vec<u8> {
        use arrow::array::{Int32Array, LargeStringArray, NullArray};
        let n = 4;
        let strings = |v: [Option<&str>; 4]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
        let valid = |row: usize| {
            Some(NullBuffer::from(
                (0..n).map(|i| i == row).collect::<Vec<_>>(),
            ))
        };

        let mut pv = map_builder();
        for i in 0..n {
            if i == 3 {
                pv.keys().append_value("date");
                pv.values().append_value("2024-05-01");
            }
            pv.append(true).expect("map");
        }
        let stats_parsed = StructArray::try_new(
            Fields::from(vec![Field::new("numRecords", DataType::Int64, true)]),
            vec![Arc::new(Int64Array::from(vec![None, None, None, Some(3)]))],
            None,
        )
        .expect("stats_parsed");
        let add = StructArray::try_new(
            Fields::from(vec![
                Field::new("path", DataType::LargeUtf8, true),
                Field::new("partitionValues", map_type(), true),
                Field::new("size", DataType::Int32, true),
                Field::new("modificationTime", DataType::Int64, true),
                Field::new("dataChange", DataType::Boolean, true),
                Field::new("stats", DataType::Utf8, true),
                Field::new("stats_parsed", stats_parsed.data_type().clone(), true),
            ]),
            vec![
                Arc::new(LargeStringArray::from(vec![
                    None,
                    None,
                    None,
                    Some("f.parquet"),
                ])),
                Arc::new(pv.finish()),
                Arc::new(Int32Array::from(vec![None, None, None, Some(77)])),
                Arc::new(Int64Array::from(vec![None, None, None, Some(5)])),
                Arc::new(BooleanArray::from(vec![None, None, None, Some(true)])),
                strings([None, None, None, Some(r#"{"numRecords":3}"#)]),
                Arc::new(stats_parsed),
            ],
            valid(3),
        )
        .expect("add");

        let mut options = map_builder();
        let mut configuration = map_builder();
        for _ in 0..n {
            options.append(true).expect("map");
            configuration.append(true).expect("map");
        }
        let format = StructArray::try_new(
            format_fields(),
            vec![
                strings([Some("parquet"), Some(""), Some(""), Some("")]),
                Arc::new(options.finish()),
            ],
            None,
        )
        .expect("format");
        let mut partition_columns = ListBuilder::new(StringBuilder::new());
        partition_columns.append_value([Some("date")]);
        for _ in 1..n {
            partition_columns.append(true);
        }
        let meta = StructArray::try_new(
            Fields::from(vec![
                Field::new("id", DataType::Utf8, true),
                Field::new("format", format.data_type().clone(), true),
                Field::new("schemaString", DataType::Utf8, true),
                Field::new(
                    "partitionColumns",
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                    true,
                ),
                Field::new("configuration", map_type(), true),
                Field::new("createdTime", DataType::Int64, true),
            ]),
            vec![
                strings([Some("id-1"), None, None, None]),
                Arc::new(format),
                strings([Some(r#"{"type":"struct","fields":[]}"#), None, None, None]),
                Arc::new(partition_columns.finish()),
                Arc::new(configuration.finish()),
                Arc::new(Int64Array::from(vec![None::<i64>; 4])),
            ],
            valid(0),
        )
        .expect("metaData");
        let protocol = StructArray::try_new(
            Fields::from(vec![
                Field::new("minReaderVersion", DataType::Int64, true),
                Field::new("minWriterVersion", DataType::Int64, true),
            ]),
            vec![
                Arc::new(Int64Array::from(vec![None, Some(1), None, None])),
                Arc::new(Int64Array::from(vec![None, Some(2), None, None])),
            ],
            valid(1),
        )
        .expect("protocol");
        let txn = StructArray::try_new(
            Fields::from(vec![
                Field::new("appId", DataType::Utf8, true),
                Field::new("version", DataType::Int64, true),
            ]),
            vec![
                strings([None, None, Some("app"), None]),
                Arc::new(Int64Array::from(vec![None, None, Some(9), None])),
            ],
            valid(2),
        )
        .expect("txn");
        let domain = StructArray::try_new(
            Fields::from(vec![Field::new("domain", DataType::Utf8, true)]),
            vec![strings([None; 4])],
            Some(NullBuffer::new_null(n)),
        )
        .expect("domainMetadata");
        let sidecar_row = sidecar.map(|_| 3);
        let sidecar = StructArray::try_new(
            Fields::from(vec![Field::new("path", DataType::Utf8, true)]),
            vec![strings([None, None, None, sidecar])],
            Some(NullBuffer::from(
                (0..n).map(|i| Some(i) == sidecar_row).collect::<Vec<_>>(),
            )),
        )
        .expect("sidecar");
        let columns: Vec<(&str, ArrayRef, bool)> = vec![
            ("txn", Arc::new(txn), true),
            ("add", Arc::new(add), true),
            ("metaData", Arc::new(meta), true),
            ("protocol", Arc::new(protocol), true),
            ("domainMetadata", Arc::new(domain), true),
            ("sidecar", Arc::new(sidecar), true),
            ("unused", Arc::new(NullArray::new(n)), true),
        ];
        let batch = RecordBatch::try_from_iter_with_nullable(columns).expect("batch");
        let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), None).expect("writer");
        writer.write(&batch).expect("write");
        writer.into_inner().expect("close")
    }

    #[test]
    fn other_writers_checkpoints_are_read() {
        let actions = decode(Bytes::from(foreign_checkpoint(None))).expect("decode");
        let mut snapshot = Snapshot::default();
        snapshot.apply(3, actions);
        assert_eq!(snapshot.protocol, Some(Protocol::reader1_writer2()));
        let metadata = snapshot.metadata.clone().expect("metaData");
        assert_eq!(metadata.id, "id-1");
        assert_eq!(metadata.partition_columns, ["date"]);
        assert_eq!(metadata.format.provider, "parquet");
        assert!(metadata.configuration.is_empty());
        assert_eq!(snapshot.txn_version("app"), Some(9));
        assert_eq!(snapshot.txns["app"].last_updated, None);
        assert_eq!(
            snapshot.files.get("f.parquet"),
            Some(&Add {
                path: "f.parquet".to_owned(),
                partition_values: BTreeMap::from([(
                    "date".to_owned(),
                    Some("2024-05-01".to_owned())
                )]),
                size: 77,
                modification_time: 5,
                data_change: true,
                stats: Some(r#"{"numRecords":3}"#.to_owned()),
                tags: None,
                ..Default::default()
            })
        );
        assert!(snapshot.tombstones.is_empty());

        let err = decode(Bytes::from(foreign_checkpoint(Some("sc.parquet")))).expect_err("sidecar");
        assert!(err.contains("sidecar file sc.parquet"), "{err}");
    }
}
