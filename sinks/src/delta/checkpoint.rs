//! Classic (V1) Parquet checkpoints of the Delta log, and `_delta_log/_last_checkpoint`.
//!
//! A checkpoint `_delta_log/<version, 20 digits>.checkpoint.parquet` holds a snapshot's
//! reconciled state, one action per row: each row sets exactly one of the top-level
//! struct columns `add`, `remove`, `metaData`, `protocol` and `txn`, the others are null
//! (see `shared/notes/delta-writer.md` §4). Readers start from the newest checkpoint and
//! replay only the JSON commits after it, so the log can be cleaned up behind it.
//!
//! Reading accepts what other writers produce as well: multi-part checkpoints
//! (`<v>.checkpoint.<part, 10 digits>.<parts, 10 digits>.parquet`), extra columns (delta-rs
//! writes `domainMetadata`, `sidecar`, `add.stats_parsed`, …; they are not even read),
//! missing optional columns (null), and other integer, string and list encodings. V2
//! checkpoints (`<v>.checkpoint.<uuid>.parquet|json`, or sidecar files referenced from a
//! classic one) are refused with an error naming the file.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int32Builder, Int64Builder, ListArray,
    ListBuilder, MapArray, MapBuilder, MapFieldNames, PrimitiveArray, StringArray, StringBuilder,
    StructArray,
};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Fields, Int32Type, Int64Type, Schema, SchemaRef,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use super::DeltaError;
use super::actions::{Action, Add, Format, Metadata, Protocol, Remove, Txn};
use super::log::{commit_version, log_dir};
use super::snapshot::Snapshot;

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
fn map_type() -> DataType {
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
fn list_field() -> Field {
    Field::new("element", DataType::Utf8, false)
}

fn list_type() -> DataType {
    DataType::List(Arc::new(list_field()))
}

fn add_fields() -> Fields {
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

fn remove_fields() -> Fields {
    Fields::from(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("deletionTimestamp", DataType::Int64, true),
        Field::new("dataChange", DataType::Boolean, false),
        Field::new("extendedFileMetadata", DataType::Boolean, true),
        Field::new("partitionValues", map_type(), true),
        Field::new("size", DataType::Int64, true),
    ])
}

fn format_fields() -> Fields {
    Fields::from(vec![
        Field::new("provider", DataType::Utf8, false),
        Field::new("options", map_type(), false),
    ])
}

fn metadata_fields() -> Fields {
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

fn protocol_fields() -> Fields {
    Fields::from(vec![
        Field::new("minReaderVersion", DataType::Int32, false),
        Field::new("minWriterVersion", DataType::Int32, false),
        Field::new("readerFeatures", list_type(), true),
        Field::new("writerFeatures", list_type(), true),
    ])
}

fn txn_fields() -> Fields {
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

// ---------------------------------------------------------------------------------------
// Writing.

/// One row of a checkpoint.
#[derive(Clone, Copy)]
enum Row<'a> {
    Protocol(&'a Protocol),
    Metadata(&'a Metadata),
    Txn(&'a Txn),
    Add(&'a Add),
    Remove(&'a Remove),
}

/// The rows of `snapshot`'s checkpoint, in a deterministic order (so racing writers of
/// the same checkpoint write the same bytes): protocol, metaData, txns by appId, adds and
/// tombstones by path.
fn rows(snapshot: &Snapshot) -> Vec<Row<'_>> {
    let mut txns: Vec<&Txn> = snapshot.txns.values().collect();
    txns.sort_by(|a, b| a.app_id.cmp(&b.app_id));
    let mut rows = Vec::with_capacity(2 + txns.len() + snapshot.files.len());
    rows.extend(snapshot.protocol.as_ref().map(Row::Protocol));
    rows.extend(snapshot.metadata.as_ref().map(Row::Metadata));
    rows.extend(txns.into_iter().map(Row::Txn));
    rows.extend(snapshot.files.values().map(Row::Add));
    rows.extend(snapshot.tombstones.values().map(Row::Remove));
    rows
}

type StrMapBuilder = MapBuilder<StringBuilder, StringBuilder>;

fn map_builder() -> StrMapBuilder {
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
            valid.push(true);
        } else {
            path.append_value("");
            deletion_timestamp.append_null();
            data_change.append_value(false);
            extended.append_null();
            partition_values.append(false)?;
            size.append_null();
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
fn encode(snapshot: &Snapshot) -> Result<(Vec<u8>, usize), String> {
    let rows = rows(snapshot);
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
/// and then points `_last_checkpoint` at it.
///
/// The checkpoint holds the latest protocol and metaData, every live file, every
/// tombstone and the latest txn of every application. Both objects are plain
/// overwriting PUTs: writers racing to checkpoint the same version write the same
/// content. Checkpoint only a version whose commit exists.
pub async fn write_checkpoint(
    store: &dyn ObjectStore,
    root: &Path,
    snapshot: &Snapshot,
) -> Result<(), DeltaError> {
    let path = checkpoint_path(root, snapshot.version);
    let (bytes, rows) = encode(snapshot).map_err(|detail| DeltaError::Checkpoint {
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
        return Ok(());
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
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading.

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

fn child<'a>(parent: Option<&'a StructArray>, name: &str) -> Option<&'a ArrayRef> {
    parent.and_then(|p| p.column_by_name(name))
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StructArray> {
    batch.column_by_name(name).and_then(|c| c.as_struct_opt())
}

/// A field read as strings, whatever its string encoding.
struct Strings(Option<StringArray>);

impl Strings {
    fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        Ok(Strings(
            array
                .map(|a| cast(a, &DataType::Utf8).map(|c| c.as_string::<i32>().clone()))
                .transpose()?,
        ))
    }

    fn get(&self, i: usize) -> Option<String> {
        self.0
            .as_ref()
            .filter(|a| a.is_valid(i))
            .map(|a| a.value(i).to_owned())
    }
}

/// A field read as integers of type `T`, whatever integer width the file uses.
struct Primitives<T: ArrowPrimitiveType>(Option<PrimitiveArray<T>>);

/// A field read as 64-bit integers.
type Longs = Primitives<Int64Type>;
/// A field read as 32-bit integers.
type Ints = Primitives<Int32Type>;

impl<T: ArrowPrimitiveType> Primitives<T> {
    fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        Ok(Primitives(
            array
                .map(|a| cast(a, &T::DATA_TYPE).map(|c| c.as_primitive::<T>().clone()))
                .transpose()?,
        ))
    }

    fn get(&self, i: usize) -> Option<T::Native> {
        self.0
            .as_ref()
            .filter(|a| a.is_valid(i))
            .map(|a| a.value(i))
    }
}

/// A boolean field.
struct Bools(Option<BooleanArray>);

impl Bools {
    fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        Ok(Bools(
            array
                .map(|a| cast(a, &DataType::Boolean).map(|c| c.as_boolean().clone()))
                .transpose()?,
        ))
    }

    fn get(&self, i: usize) -> Option<bool> {
        self.0
            .as_ref()
            .filter(|a| a.is_valid(i))
            .map(|a| a.value(i))
    }
}

/// A `map<string,string>` field.
struct StrMaps(Option<(MapArray, StringArray, StringArray)>);

impl StrMaps {
    fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        let Some(array) = array else {
            return Ok(StrMaps(None));
        };
        let map = array.as_map_opt().ok_or_else(|| {
            ArrowError::SchemaError(format!("expected a map, found {}", array.data_type()))
        })?;
        let keys = cast(map.keys(), &DataType::Utf8)?
            .as_string::<i32>()
            .clone();
        let values = cast(map.values(), &DataType::Utf8)?
            .as_string::<i32>()
            .clone();
        Ok(StrMaps(Some((map.clone(), keys, values))))
    }

    fn get(&self, i: usize) -> Option<BTreeMap<String, Option<String>>> {
        let (map, keys, values) = self.0.as_ref().filter(|(m, _, _)| m.is_valid(i))?;
        let offsets = map.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        Some(
            (start..end)
                .map(|j| {
                    let value = values.is_valid(j).then(|| values.value(j).to_owned());
                    (keys.value(j).to_owned(), value)
                })
                .collect(),
        )
    }

    /// The map without its null values (for maps whose values are never null).
    fn get_non_null(&self, i: usize) -> Option<BTreeMap<String, String>> {
        self.get(i).map(|m| {
            m.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect()
        })
    }
}

/// A `list<string>` field.
struct StrLists(Option<ListArray>);

impl StrLists {
    fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        let target = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        Ok(StrLists(
            array
                .map(|a| cast(a, &target).map(|c| c.as_list::<i32>().clone()))
                .transpose()?,
        ))
    }

    fn get(&self, i: usize) -> Option<Vec<String>> {
        let list = self.0.as_ref().filter(|a| a.is_valid(i))?;
        let values = list.value(i);
        Some(
            values
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// The key field of a struct column in row `i`, if the struct is set there: rows where
/// the struct is null, or set with a null key (some writers leave structs non-null), hold
/// no such action.
fn key_of(parent: Option<&StructArray>, key: &Strings, i: usize) -> Option<String> {
    parent.filter(|p| p.is_valid(i))?;
    key.get(i)
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

    let remove = column(batch, "remove");
    let rm_path = Strings::new(child(remove, "path")).map_err(arrow)?;
    let rm_time = Longs::new(child(remove, "deletionTimestamp")).map_err(arrow)?;
    let rm_change = Bools::new(child(remove, "dataChange")).map_err(arrow)?;
    let rm_extended = Bools::new(child(remove, "extendedFileMetadata")).map_err(arrow)?;
    let rm_partition = StrMaps::new(child(remove, "partitionValues")).map_err(arrow)?;
    let rm_size = Longs::new(child(remove, "size")).map_err(arrow)?;

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
            }));
        }
        if let Some(app_id) = key_of(txn, &txn_app, i) {
            out.push(Action::Txn(Txn {
                app_id,
                version: required(txn_version.get(i), "txn.version", row)?,
                last_updated: txn_updated.get(i),
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

async fn get_bytes(store: &dyn ObjectStore, path: &Path) -> Result<Bytes, object_store::Error> {
    store.get(path).await?.bytes().await
}

/// The snapshot at `version` from the checkpoint files `parts` (one file, or every part
/// of a multi-part checkpoint).
pub(super) async fn read_checkpoint_files(
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
pub(super) struct LogListing {
    /// Versions of the JSON commits, sorted.
    pub commits: Vec<u64>,
    /// Checkpoint files by version.
    pub checkpoints: BTreeMap<u64, Vec<(Path, CheckpointKind)>>,
}

/// Lists `_delta_log/` (only the objects after version `from`'s names, if given; its
/// checkpoint and commit are included).
pub(super) async fn list_log(
    store: &dyn ObjectStore,
    root: &Path,
    from: Option<u64>,
) -> Result<LogListing, DeltaError> {
    let dir = log_dir(root);
    let stream = match from {
        Some(version) => {
            let offset = dir.clone().join(format!("{version:020}"));
            store.list_with_offset(Some(&dir), &offset)
        }
        None => store.list(Some(&dir)),
    };
    let objects: Vec<_> = stream
        .try_collect()
        .await
        .map_err(|source| DeltaError::Store {
            path: dir.to_string(),
            source,
        })?;
    let depth = dir.parts().count() + 1;
    let mut listing = LogListing::default();
    for meta in objects {
        // Only direct children: `_delta_log/_commits/` and `_sidecars/` hold other files.
        if meta.location.parts().count() != depth {
            continue;
        }
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
pub(super) fn usable_checkpoint(
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
        return Err(DeltaError::Checkpoint {
            path: path.to_string(),
            detail: "V2 (UUID-named) checkpoints are not supported".to_owned(),
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
pub(super) mod tests {
    use super::*;
    use crate::delta::actions::CommitInfo;
    use crate::delta::schema::Schema as TableSchema;
    use crate::delta::table::DeltaTable;
    pub(crate) use crate::delta::testing::block_on;
    use arrow::array::Int64Array;

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
        }
    }

    fn txn(app: &str, version: i64, last_updated: Option<i64>) -> Action {
        Action::Txn(Txn {
            app_id: app.to_owned(),
            version,
            last_updated,
        })
    }

    fn info() -> Action {
        Action::CommitInfo(CommitInfo {
            operation: Some("STREAMING UPDATE".to_owned()),
            ..CommitInfo::default()
        })
    }

    /// Builds versions 0 to 5 of a table (adds with stats and tags, null partition
    /// values, removes with and without the extended fields, txns with and without
    /// `lastUpdated`, a metaData and a protocol change) and returns its replayed snapshot.
    pub(crate) async fn sample_table(table: &DeltaTable) -> Snapshot {
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
                    deletion_timestamp: Some(1_714_521_700_000),
                    data_change: false,
                    extended_file_metadata: Some(true),
                    partition_values: Some(BTreeMap::from([(
                        "date".to_owned(),
                        Some("2024-05-01".to_owned()),
                    )])),
                    size: Some(1030),
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
                    }),
                    Action::Metadata(metadata.clone()),
                    info(),
                ]
            },
            vec![
                Action::Remove(Remove {
                    path: "date=__HIVE_DEFAULT_PARTITION__/part-b.parquet".to_owned(),
                    deletion_timestamp: Some(1_714_521_800_000),
                    data_change: true,
                    extended_file_metadata: None,
                    partition_values: None,
                    size: None,
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
                    "size"
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

    /// Writes `snapshot`'s rows as one checkpoint file at `path`.
    async fn put_encoded(store: &dyn ObjectStore, path: &Path, snapshot: &Snapshot) {
        let (bytes, _) = encode(snapshot).expect("encode");
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
                    .delete(&crate::delta::log::commit_path(root, version))
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
            })
        );
        assert!(snapshot.tombstones.is_empty());

        let err = decode(Bytes::from(foreign_checkpoint(Some("sc.parquet")))).expect_err("sidecar");
        assert!(err.contains("sidecar file sc.parquet"), "{err}");
    }
}
