//! Writing a checkpoint: a snapshot's reconciled state as one Parquet file, one action
//! per row, then `_last_checkpoint` pointing at it.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, MapFieldNames,
    StringBuilder, StructArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::Fields;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::read::read_last_checkpoint;
use super::{
    LastCheckpoint, add_fields, checkpoint_path, checkpoint_schema, format_fields,
    last_checkpoint_path, list_field, metadata_fields, protocol_fields, remove_fields, txn_fields,
};
use crate::delta::DeltaError;
use crate::delta::protocol::actions::{Add, Metadata, Protocol, Remove, Txn};
use crate::delta::protocol::features::{self, Operation};
use crate::delta::protocol::retention::{cutoff_ms, deleted_file_retention, tombstone_expired};
use crate::delta::protocol::snapshot::Snapshot;

/// One row of a checkpoint.
#[derive(Clone, Copy)]
enum Row<'a> {
    Protocol(&'a Protocol),
    Metadata(&'a Metadata),
    Txn(&'a Txn),
    Add(&'a Add),
    Remove(&'a Remove),
}

/// The first field of `snapshot`'s state that a checkpoint would not hold, as
/// `action.field (of what)`: a field tidelake does not model (kept in an action's
/// `other`, such as `add.deletionVector`), or an action it does not model (such as
/// `domainMetadata`). `None` when the checkpoint holds the whole state.
pub fn unwritten(snapshot: &Snapshot) -> Option<String> {
    let field = |action: &str, other: &serde_json::Map<String, serde_json::Value>, of: &str| {
        other
            .iter()
            .find(|(_, value)| !value.is_null())
            .map(|(name, _)| format!("{action}.{name} (of {of})"))
    };
    let protocol = snapshot.protocol.as_ref();
    let metadata = snapshot.metadata.as_ref();
    protocol
        .and_then(|p| field("protocol", &p.other, "the protocol"))
        .or_else(|| metadata.and_then(|m| field("metaData", &m.other, "the metadata")))
        .or_else(|| {
            snapshot
                .txns
                .values()
                .find_map(|t| field("txn", &t.other, &t.app_id))
        })
        .or_else(|| {
            snapshot
                .files
                .values()
                .find_map(|a| field("add", &a.other, &a.path))
        })
        .or_else(|| {
            snapshot
                .tombstones
                .values()
                .find_map(|r| field("remove", &r.other, &r.path))
        })
        .or_else(|| {
            snapshot
                .unmodeled_actions
                .iter()
                .next()
                .map(|name| format!("{name} actions"))
        })
}

/// The rows of `snapshot`'s checkpoint, in a deterministic order (so racing writers of
/// the same checkpoint write the same bytes): protocol, metaData, txns by appId, adds and
/// tombstones by path.
fn rows(snapshot: &Snapshot, tombstone_cutoff_ms: i64) -> Vec<Row<'_>> {
    let mut txns: Vec<&Txn> = snapshot.txns.values().collect();
    txns.sort_by(|a, b| a.app_id.cmp(&b.app_id));
    let mut rows = Vec::with_capacity(2 + txns.len() + snapshot.files.len());
    rows.extend(snapshot.protocol.as_ref().map(Row::Protocol));
    rows.extend(snapshot.metadata.as_ref().map(Row::Metadata));
    rows.extend(txns.into_iter().map(Row::Txn));
    rows.extend(snapshot.files.values().map(Row::Add));
    rows.extend(
        snapshot
            .tombstones
            .values()
            .filter(|remove| !tombstone_expired(remove, tombstone_cutoff_ms))
            .map(Row::Remove),
    );
    rows
}

pub(super) type StrMapBuilder = MapBuilder<StringBuilder, StringBuilder>;

pub(super) fn map_builder() -> StrMapBuilder {
    let names = MapFieldNames {
        entry: "key_value".to_owned(),
        key: "key".to_owned(),
        value: "value".to_owned(),
    };
    MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
}

/// Appends one map: `None` is a null map.
fn append_map<'a, V: Into<Option<&'a str>>>(
    builder: &mut StrMapBuilder,
    map: Option<impl IntoIterator<Item = (&'a String, V)>>,
) -> Result<(), ArrowError> {
    let Some(map) = map else {
        return builder.append(false);
    };
    for (key, value) in map {
        builder.keys().append_value(key);
        builder.values().append_option(value.into());
    }
    builder.append(true)
}

fn list_builder() -> ListBuilder<StringBuilder> {
    ListBuilder::new(StringBuilder::new()).with_field(Arc::new(list_field()))
}

fn finish(fields: Fields, arrays: Vec<ArrayRef>, valid: Vec<bool>) -> Result<ArrayRef, ArrowError> {
    Ok(Arc::new(StructArray::try_new(
        fields,
        arrays,
        Some(NullBuffer::from(valid)),
    )?))
}

/// The `add` column. Non-nullable fields get placeholder values in rows where the struct
/// is null (they are not written).
fn add_column(rows: &[Row]) -> Result<ArrayRef, ArrowError> {
    let mut path = StringBuilder::new();
    let mut partition_values = map_builder();
    let mut size = Int64Builder::new();
    let mut modification_time = Int64Builder::new();
    let mut data_change = BooleanBuilder::new();
    let mut stats = StringBuilder::new();
    let mut tags = map_builder();
    let mut valid = Vec::with_capacity(rows.len());
    for row in rows {
        if let Row::Add(add) = row {
            path.append_value(&add.path);
            append_map(
                &mut partition_values,
                Some(add.partition_values.iter().map(|(k, v)| (k, v.as_deref()))),
            )?;
            size.append_value(add.size);
            modification_time.append_value(add.modification_time);
            data_change.append_value(add.data_change);
            stats.append_option(add.stats.as_deref());
            append_map(
                &mut tags,
                add.tags
                    .as_ref()
                    .map(|t| t.iter().map(|(k, v)| (k, v.as_deref()))),
            )?;
            valid.push(true);
        } else {
            path.append_value("");
            partition_values.append(true)?;
            size.append_value(0);
            modification_time.append_value(0);
            data_change.append_value(false);
            stats.append_null();
            tags.append(false)?;
            valid.push(false);
        }
    }
    finish(
        add_fields(),
        vec![
            Arc::new(path.finish()),
            Arc::new(partition_values.finish()),
            Arc::new(size.finish()),
            Arc::new(modification_time.finish()),
            Arc::new(data_change.finish()),
            Arc::new(stats.finish()),
            Arc::new(tags.finish()),
        ],
        valid,
    )
}

fn remove_column(rows: &[Row]) -> Result<ArrayRef, ArrowError> {
    let mut path = StringBuilder::new();
    let mut deletion_timestamp = Int64Builder::new();
    let mut data_change = BooleanBuilder::new();
    let mut extended = BooleanBuilder::new();
    let mut partition_values = map_builder();
    let mut size = Int64Builder::new();
    let mut stats = StringBuilder::new();
    let mut tags = map_builder();
    let mut valid = Vec::with_capacity(rows.len());
    for row in rows {
        if let Row::Remove(remove) = row {
            path.append_value(&remove.path);
            deletion_timestamp.append_option(remove.deletion_timestamp);
            data_change.append_value(remove.data_change);
            extended.append_option(remove.extended_file_metadata);
            append_map(
                &mut partition_values,
                remove
                    .partition_values
                    .as_ref()
                    .map(|p| p.iter().map(|(k, v)| (k, v.as_deref()))),
            )?;
            size.append_option(remove.size);
            stats.append_option(remove.stats.as_deref());
            append_map(
                &mut tags,
                remove
                    .tags
                    .as_ref()
                    .map(|t| t.iter().map(|(k, v)| (k, v.as_deref()))),
            )?;
            valid.push(true);
        } else {
            path.append_value("");
            deletion_timestamp.append_null();
            data_change.append_value(false);
            extended.append_null();
            partition_values.append(false)?;
            size.append_null();
            stats.append_null();
            tags.append(false)?;
            valid.push(false);
        }
    }
    finish(
        remove_fields(),
        vec![
            Arc::new(path.finish()),
            Arc::new(deletion_timestamp.finish()),
            Arc::new(data_change.finish()),
            Arc::new(extended.finish()),
            Arc::new(partition_values.finish()),
            Arc::new(size.finish()),
            Arc::new(stats.finish()),
            Arc::new(tags.finish()),
        ],
        valid,
    )
}

fn metadata_column(rows: &[Row]) -> Result<ArrayRef, ArrowError> {
    let mut id = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut description = StringBuilder::new();
    let mut provider = StringBuilder::new();
    let mut options = map_builder();
    let mut schema_string = StringBuilder::new();
    let mut partition_columns = list_builder();
    let mut created_time = Int64Builder::new();
    let mut configuration = map_builder();
    let mut valid = Vec::with_capacity(rows.len());
    for row in rows {
        if let Row::Metadata(m) = row {
            id.append_value(&m.id);
            name.append_option(m.name.as_deref());
            description.append_option(m.description.as_deref());
            provider.append_value(&m.format.provider);
            append_map(
                &mut options,
                Some(m.format.options.iter().map(|(k, v)| (k, v.as_str()))),
            )?;
            schema_string.append_value(&m.schema_string);
            partition_columns.append_value(m.partition_columns.iter().map(Some));
            created_time.append_option(m.created_time);
            append_map(
                &mut configuration,
                Some(m.configuration.iter().map(|(k, v)| (k, v.as_str()))),
            )?;
            valid.push(true);
        } else {
            id.append_value("");
            name.append_null();
            description.append_null();
            provider.append_value("");
            options.append(true)?;
            schema_string.append_value("");
            partition_columns.append(true);
            created_time.append_null();
            configuration.append(true)?;
            valid.push(false);
        }
    }
    let format = StructArray::try_new(
        format_fields(),
        vec![Arc::new(provider.finish()), Arc::new(options.finish())],
        None,
    )?;
    finish(
        metadata_fields(),
        vec![
            Arc::new(id.finish()),
            Arc::new(name.finish()),
            Arc::new(description.finish()),
            Arc::new(format),
            Arc::new(schema_string.finish()),
            Arc::new(partition_columns.finish()),
            Arc::new(created_time.finish()),
            Arc::new(configuration.finish()),
        ],
        valid,
    )
}

fn protocol_column(rows: &[Row]) -> Result<ArrayRef, ArrowError> {
    let mut reader = Int32Builder::new();
    let mut writer = Int32Builder::new();
    let mut reader_features = list_builder();
    let mut writer_features = list_builder();
    let mut valid = Vec::with_capacity(rows.len());
    for row in rows {
        if let Row::Protocol(p) = row {
            reader.append_value(p.min_reader_version);
            writer.append_value(p.min_writer_version);
            reader_features.append_option(
                p.reader_features
                    .as_ref()
                    .map(|f| f.iter().map(Some).collect::<Vec<_>>()),
            );
            writer_features.append_option(
                p.writer_features
                    .as_ref()
                    .map(|f| f.iter().map(Some).collect::<Vec<_>>()),
            );
            valid.push(true);
        } else {
            reader.append_value(0);
            writer.append_value(0);
            reader_features.append_null();
            writer_features.append_null();
            valid.push(false);
        }
    }
    finish(
        protocol_fields(),
        vec![
            Arc::new(reader.finish()),
            Arc::new(writer.finish()),
            Arc::new(reader_features.finish()),
            Arc::new(writer_features.finish()),
        ],
        valid,
    )
}

fn txn_column(rows: &[Row]) -> Result<ArrayRef, ArrowError> {
    let mut app_id = StringBuilder::new();
    let mut version = Int64Builder::new();
    let mut last_updated = Int64Builder::new();
    let mut valid = Vec::with_capacity(rows.len());
    for row in rows {
        if let Row::Txn(t) = row {
            app_id.append_value(&t.app_id);
            version.append_value(t.version);
            last_updated.append_option(t.last_updated);
            valid.push(true);
        } else {
            app_id.append_value("");
            version.append_value(0);
            last_updated.append_null();
            valid.push(false);
        }
    }
    finish(
        txn_fields(),
        vec![
            Arc::new(app_id.finish()),
            Arc::new(version.finish()),
            Arc::new(last_updated.finish()),
        ],
        valid,
    )
}

/// The checkpoint of `snapshot` as Parquet bytes, and its number of rows.
pub(super) fn encode(
    snapshot: &Snapshot,
    tombstone_cutoff_ms: i64,
) -> Result<(Vec<u8>, usize), String> {
    let rows = rows(snapshot, tombstone_cutoff_ms);
    let columns = || -> Result<Vec<ArrayRef>, ArrowError> {
        Ok(vec![
            add_column(&rows)?,
            remove_column(&rows)?,
            metadata_column(&rows)?,
            protocol_column(&rows)?,
            txn_column(&rows)?,
        ])
    };
    let batch = RecordBatch::try_new(checkpoint_schema(), columns().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), checkpoint_schema(), Some(properties))
        .map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    let bytes = writer.into_inner().map_err(|e| e.to_string())?;
    Ok((bytes, rows.len()))
}

/// Writes the classic checkpoint of `snapshot` (`_delta_log/<version>.checkpoint.parquet`)
/// and then points `_last_checkpoint` at it, leaving out the tombstones expired now (by
/// the system clock): see [`write_checkpoint_at`]. For tests.
#[cfg(test)]
pub async fn write_checkpoint(
    store: &dyn ObjectStore,
    root: &Path,
    snapshot: &Snapshot,
) -> Result<(), DeltaError> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    write_checkpoint_at(store, root, snapshot, now_ms)
        .await
        .map(drop)
}

/// Writes the classic checkpoint of `snapshot` as of `now_ms` (ms since the epoch) and
/// then points `_last_checkpoint` at it; returns what `_last_checkpoint` says of it.
///
/// The checkpoint holds the latest protocol and metaData, every live file, the latest
/// txn of every application, and the tombstones that have not expired at `now_ms`:
/// like delta-rs and Spark, it leaves out a `remove` whose `deletionTimestamp` (0 if
/// missing) is older than the table's `delta.deletedFileRetentionDuration` (see
/// [`deleted_file_retention`]; an error naming the property if it does not parse). Both
/// objects are plain overwriting PUTs: writers racing to checkpoint the same version
/// write the same state (at most a tombstone apart, when it expired between them).
/// Checkpoint only a version whose commit exists.
pub async fn write_checkpoint_at(
    store: &dyn ObjectStore,
    root: &Path,
    snapshot: &Snapshot,
    now_ms: i64,
) -> Result<LastCheckpoint, DeltaError> {
    let table = root.to_string();
    features::check(snapshot, &table, Operation::Checkpoint)?;
    if let Some(field) = unwritten(snapshot) {
        return Err(DeltaError::UnsupportedFeature {
            table,
            feature: field,
            operation: "writing a checkpoint",
            detail:
                "tidelake's checkpoints do not hold it, so readers of the checkpoint would lose it"
                    .to_owned(),
        });
    }
    let tombstone_cutoff_ms = cutoff_ms(now_ms, deleted_file_retention(snapshot)?);
    let path = checkpoint_path(root, snapshot.version);
    let (bytes, rows) =
        encode(snapshot, tombstone_cutoff_ms).map_err(|detail| DeltaError::Checkpoint {
            path: path.to_string(),
            detail,
        })?;
    let last = LastCheckpoint {
        version: snapshot.version,
        size: rows as u64,
        size_in_bytes: Some(bytes.len() as u64),
        num_of_add_files: Some(snapshot.files.len() as u64),
        parts: None,
    };
    store
        .put(&path, PutPayload::from(Bytes::from(bytes)))
        .await
        .map_err(|source| DeltaError::Store {
            path: path.to_string(),
            source,
        })?;
    // Another writer may have checkpointed a later version meanwhile: keep its hint.
    if let Ok(Some(newer)) = read_last_checkpoint(store, root).await
        && newer > snapshot.version
    {
        return Ok(last);
    }
    let last_path = last_checkpoint_path(root);
    let json = serde_json::to_vec(&last).map_err(|e| DeltaError::Checkpoint {
        path: last_path.to_string(),
        detail: e.to_string(),
    })?;
    store
        .put(&last_path, PutPayload::from(Bytes::from(json)))
        .await
        .map_err(|source| DeltaError::Store {
            path: last_path.to_string(),
            source,
        })?;
    Ok(last)
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::super::read::{get_bytes, read_checkpoint, read_last_checkpoint_file};
    use super::super::tests::{block_on, sample_table};
    use super::*;
    use crate::delta::protocol::actions::Action;
    use crate::delta::protocol::retention::{
        DEFAULT_DELETED_FILE_RETENTION, DELETED_FILE_RETENTION,
    };
    use crate::delta::protocol::table::DeltaTable;

    async fn round_trip(table: &DeltaTable) {
        let (store, root) = (table.store().as_ref(), table.root());
        let replayed = sample_table(table).await;
        write_checkpoint(store, root, &replayed)
            .await
            .expect("checkpoint");
        let read = read_checkpoint(store, root, 5).await.expect("read");
        assert_eq!(read, replayed);
        assert_eq!(read.txn_version("job-w0"), Some(2));
        assert_eq!(read.txn_version("job-w2"), Some(5));
        assert_eq!(
            read.metadata.as_ref().map(|m| m.configuration.len()),
            Some(3)
        );

        assert_eq!(
            read_last_checkpoint(store, root).await.expect("read"),
            Some(5)
        );
        let size = store
            .head(&checkpoint_path(root, 5))
            .await
            .expect("checkpoint exists")
            .size;
        let last = read_last_checkpoint_file(store, root)
            .await
            .expect("read")
            .expect("exists");
        // protocol, metaData, 3 txns, 2 adds, 2 removes.
        assert_eq!(
            last,
            LastCheckpoint {
                version: 5,
                size: 9,
                size_in_bytes: Some(size),
                num_of_add_files: Some(2),
                parts: None,
            }
        );
        let text = get_bytes(store, &last_checkpoint_path(root))
            .await
            .expect("get");
        assert_eq!(
            std::str::from_utf8(&text).expect("utf-8"),
            format!(r#"{{"version":5,"size":9,"sizeInBytes":{size},"numOfAddFiles":2}}"#)
        );

        // Checkpointing again (a racing writer) writes the same bytes.
        let before = get_bytes(store, &checkpoint_path(root, 5))
            .await
            .expect("get");
        write_checkpoint(store, root, &replayed)
            .await
            .expect("checkpoint");
        let after = get_bytes(store, &checkpoint_path(root, 5))
            .await
            .expect("get");
        assert_eq!(before, after);
    }

    #[test]
    fn checkpoints_round_trip_the_replayed_snapshot_in_memory() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            round_trip(&table).await;
        });
    }

    #[test]
    fn checkpoints_round_trip_the_replayed_snapshot_in_a_directory() {
        block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = dir.path().join("tx").display().to_string();
            let table = DeltaTable::open_url(&url).expect("open");
            round_trip(&table).await;
            assert!(
                dir.path()
                    .join("tx/_delta_log/00000000000000000005.checkpoint.parquet")
                    .is_file()
            );
            assert!(dir.path().join("tx/_delta_log/_last_checkpoint").is_file());
        });
    }

    const PART_A: &str = "date=2024-05-01/part-a.parquet";
    const PART_B: &str = "date=__HIVE_DEFAULT_PARTITION__/part-b.parquet";

    /// The paths of the tombstones in the checkpoint of `version`.
    async fn checkpointed_tombstones(table: &DeltaTable, version: u64) -> Vec<String> {
        read_checkpoint(table.store().as_ref(), table.root(), version)
            .await
            .expect("read")
            .tombstones
            .into_keys()
            .collect()
    }

    #[test]
    fn tombstones_older_than_the_retention_are_left_out() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            let replayed = sample_table(&table).await;
            let removed_at = |path: &str| replayed.tombstones[path].deletion_timestamp;
            let (a, b) = (
                removed_at(PART_A).expect("ts"),
                removed_at(PART_B).expect("ts"),
            );
            let week = DEFAULT_DELETED_FILE_RETENTION.as_millis() as i64;

            // A week after part-b's removal, part-a's tombstone (removed before) has
            // expired; part-b's expires only after that very millisecond.
            let last = write_checkpoint_at(store, root, &replayed, b + week)
                .await
                .expect("checkpoint");
            assert!(a < b);
            assert_eq!(checkpointed_tombstones(&table, 5).await, [PART_B]);
            assert_eq!(last.size, 8, "one remove row less");
            let mut expected = replayed.clone();
            expected.tombstones.remove(PART_A);
            assert_eq!(
                Snapshot::load(store, root).await.expect("load"),
                Some(expected),
                "the table loads from the checkpoint without the expired tombstone"
            );

            write_checkpoint_at(store, root, &replayed, b + week + 1)
                .await
                .expect("checkpoint");
            assert!(checkpointed_tombstones(&table, 5).await.is_empty());
            // A remove without deletionTimestamp counts as removed at 0.
            let mut undated = replayed.clone();
            for remove in undated.tombstones.values_mut() {
                remove.deletion_timestamp = None;
            }
            write_checkpoint_at(store, root, &undated, week + 1)
                .await
                .expect("checkpoint");
            assert!(checkpointed_tombstones(&table, 5).await.is_empty());
        });
    }

    #[test]
    fn the_tables_deleted_file_retention_decides_and_a_bad_one_is_an_error() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            let replayed = sample_table(&table).await;
            let set_retention = |value: &str| {
                let mut metadata = replayed.metadata.clone().expect("metaData");
                metadata
                    .configuration
                    .insert(DELETED_FILE_RETENTION.to_owned(), value.to_owned());
                metadata
            };
            // part-a was removed an hour ago, part-b a minute ago.
            table
                .try_commit(6, &[Action::Metadata(set_retention("interval 30 minutes"))])
                .await
                .expect("commit");
            let v6 = table.snapshot().await.expect("load").expect("exists");
            write_checkpoint(store, root, &v6)
                .await
                .expect("checkpoint");
            assert_eq!(checkpointed_tombstones(&table, 6).await, [PART_B]);

            table
                .try_commit(7, &[Action::Metadata(set_retention("a while"))])
                .await
                .expect("commit");
            let v7 = table.snapshot().await.expect("load").expect("exists");
            let err = write_checkpoint(store, root, &v7)
                .await
                .expect_err("bad retention");
            assert!(
                err.to_string().contains(
                    "table property delta.deletedFileRetentionDuration = \"a while\": `a` is not a whole number"
                ),
                "{err}"
            );
            assert!(
                store.head(&checkpoint_path(root, 7)).await.is_err(),
                "nothing is written"
            );
            assert_eq!(
                read_last_checkpoint(store, root).await.expect("read"),
                Some(6)
            );
        });
    }

    #[test]
    fn the_checkpoint_has_the_five_action_columns() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            let snapshot = sample_table(&table).await;
            write_checkpoint(store, root, &snapshot)
                .await
                .expect("checkpoint");
            let bytes = get_bytes(store, &checkpoint_path(root, 5))
                .await
                .expect("get");
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("parquet");
            let schema = builder.schema().clone();

            let names = |fields: &Fields| -> Vec<String> {
                fields.iter().map(|f| f.name().clone()).collect()
            };
            let top: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(top, ["add", "remove", "metaData", "protocol", "txn"]);
            assert!(schema.fields().iter().all(|f| f.is_nullable()));
            let column = |name: &str| -> Fields {
                match schema.field_with_name(name).expect("column").data_type() {
                    DataType::Struct(fields) => fields.clone(),
                    other => panic!("{name} is {other}"),
                }
            };
            let type_of = |fields: &Fields, name: &str| -> DataType {
                fields
                    .find(name)
                    .map(|(_, f)| f.data_type().clone())
                    .unwrap_or_else(|| panic!("no field {name}"))
            };
            let string_map = |t: &DataType| match t {
                DataType::Map(entries, _) => match entries.data_type() {
                    DataType::Struct(kv) => {
                        kv.len() == 2
                            && kv[0].data_type() == &DataType::Utf8
                            && kv[1].data_type() == &DataType::Utf8
                    }
                    _ => false,
                },
                _ => false,
            };
            let string_list = |t: &DataType| matches!(t, DataType::List(item) if item.data_type() == &DataType::Utf8);

            let add = column("add");
            assert_eq!(
                names(&add),
                [
                    "path",
                    "partitionValues",
                    "size",
                    "modificationTime",
                    "dataChange",
                    "stats",
                    "tags"
                ]
            );
            assert_eq!(type_of(&add, "path"), DataType::Utf8);
            assert!(string_map(&type_of(&add, "partitionValues")));
            assert_eq!(type_of(&add, "size"), DataType::Int64);
            assert_eq!(type_of(&add, "modificationTime"), DataType::Int64);
            assert_eq!(type_of(&add, "dataChange"), DataType::Boolean);
            assert_eq!(type_of(&add, "stats"), DataType::Utf8);
            assert!(string_map(&type_of(&add, "tags")));

            let remove = column("remove");
            assert_eq!(
                names(&remove),
                [
                    "path",
                    "deletionTimestamp",
                    "dataChange",
                    "extendedFileMetadata",
                    "partitionValues",
                    "size",
                    "stats",
                    "tags"
                ]
            );
            assert_eq!(type_of(&remove, "deletionTimestamp"), DataType::Int64);
            assert_eq!(type_of(&remove, "extendedFileMetadata"), DataType::Boolean);
            assert!(string_map(&type_of(&remove, "partitionValues")));
            assert_eq!(type_of(&remove, "size"), DataType::Int64);

            let meta = column("metaData");
            assert_eq!(
                names(&meta),
                [
                    "id",
                    "name",
                    "description",
                    "format",
                    "schemaString",
                    "partitionColumns",
                    "createdTime",
                    "configuration"
                ]
            );
            let DataType::Struct(format) = type_of(&meta, "format") else {
                panic!("format is a struct")
            };
            assert_eq!(names(&format), ["provider", "options"]);
            assert!(string_map(&type_of(&format, "options")));
            assert_eq!(type_of(&meta, "schemaString"), DataType::Utf8);
            assert!(string_list(&type_of(&meta, "partitionColumns")));
            assert_eq!(type_of(&meta, "createdTime"), DataType::Int64);
            assert!(string_map(&type_of(&meta, "configuration")));

            let protocol = column("protocol");
            assert_eq!(
                names(&protocol),
                [
                    "minReaderVersion",
                    "minWriterVersion",
                    "readerFeatures",
                    "writerFeatures"
                ]
            );
            assert_eq!(type_of(&protocol, "minReaderVersion"), DataType::Int32);
            assert_eq!(type_of(&protocol, "minWriterVersion"), DataType::Int32);
            assert!(string_list(&type_of(&protocol, "readerFeatures")));
            assert!(string_list(&type_of(&protocol, "writerFeatures")));

            let txn = column("txn");
            assert_eq!(names(&txn), ["appId", "version", "lastUpdated"]);
            assert_eq!(type_of(&txn, "appId"), DataType::Utf8);
            assert_eq!(type_of(&txn, "version"), DataType::Int64);
            assert_eq!(type_of(&txn, "lastUpdated"), DataType::Int64);

            assert_eq!(schema, checkpoint_schema());
            // The Parquet schema uses the standard MAP and LIST layouts.
            let parquet_paths: Vec<String> = (0..builder.parquet_schema().num_columns())
                .map(|i| builder.parquet_schema().column(i).path().string())
                .collect();
            assert!(parquet_paths.contains(&"add.partitionValues.key_value.key".to_owned()));
            assert!(parquet_paths.contains(&"metaData.partitionColumns.list.element".to_owned()));
        });
    }
}
