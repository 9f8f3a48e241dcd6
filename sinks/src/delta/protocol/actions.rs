//! The Delta log's actions as plain serde types named after the protocol: one JSON
//! object per line of a commit, keyed by the action's name.
//!
//! Field names and optionality follow the Delta protocol (`PROTOCOL.md`) and what real
//! readers are strict about (see `shared/notes/delta-writer.md`): `configuration`,
//! `format.options`, `partitionValues`, `size`, `modificationTime` and `dataChange` are
//! always written; `stats` is a JSON object *encoded as a string*.
//!
//! Fields of an action that tidelake does not model (a feature's fields, such as
//! `add.deletionVector` or `add.baseRowId`) are kept in each action's `other` map, so a
//! commit rewritten from them keeps them, and the checkpoint writer can refuse to drop
//! them (see [`crate::delta::protocol::checkpoint`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::parquet::DataFile;

/// `protocol`: the reader and writer versions a client needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    /// Minimum reader version.
    pub min_reader_version: i32,
    /// Minimum writer version.
    pub min_writer_version: i32,
    /// Reader features (reader version 3 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_features: Option<Vec<String>>,
    /// Writer features (writer version 7 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_features: Option<Vec<String>>,
    /// Fields tidelake does not model, kept as read.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub other: Map<String, Value>,
}

impl Protocol {
    /// Reader 1 / writer 2: what delta-rs writes for a UTC `timestamp` column, and the
    /// most widely readable choice.
    pub fn reader1_writer2() -> Self {
        Protocol {
            min_reader_version: 1,
            min_writer_version: 2,
            reader_features: None,
            writer_features: None,
            other: Map::new(),
        }
    }
}

/// `metaData.format`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Format {
    /// Always `parquet`.
    pub provider: String,
    /// Required by readers even when empty.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// `metaData`: the table's id, schema, partitioning and configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// A unique id (a v4 UUID).
    pub id: String,
    /// An optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The data file format.
    pub format: Format,
    /// The schema as Spark StructType JSON, in a string (empty if the action has none,
    /// as some Delta Live Tables commits do).
    #[serde(default)]
    pub schema_string: String,
    /// Partition columns, in order.
    pub partition_columns: Vec<String>,
    /// Creation time, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    /// Table properties (`delta.*` and others). Required by readers even when empty.
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    /// Fields tidelake does not model, kept as read.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub other: Map<String, Value>,
}

/// `add`: a data file that is part of the table from this version on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Add {
    /// The file's path relative to the table root, URI-encoded.
    pub path: String,
    /// Partition column → value (`None` for null).
    pub partition_values: BTreeMap<String, Option<String>>,
    /// The file's exact size in bytes (readers find the footer with it).
    pub size: i64,
    /// Modification time, ms since the epoch.
    pub modification_time: i64,
    /// False for compaction, which changes no data.
    pub data_change: bool,
    /// Per-file statistics: a JSON object encoded as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, Option<String>>>,
    /// Fields tidelake does not model, kept as read.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub other: Map<String, Value>,
}

impl Add {
    /// The rows of the file that its deletion vector deletes (`deletionVector.cardinality`):
    /// 0 without one.
    pub fn deleted_rows(&self) -> u64 {
        self.other
            .get("deletionVector")
            .and_then(|dv| dv.get("cardinality"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

/// The key of the logical file an `add` or `remove` names: its path, and, if it has a
/// deletion vector (in `other`), the vector's unique id (`<storageType><pathOrInlineDv>`,
/// then `@<offset>` if set), so that a same-path `remove` and `add` that swap a file's
/// deletion vector name two logical files, as the protocol's log replay has it.
pub fn logical_file_key<'a>(path: &'a str, other: &Map<String, Value>) -> Cow<'a, str> {
    let Some(dv) = other.get("deletionVector") else {
        return Cow::Borrowed(path);
    };
    let field = |name: &str| match dv.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let offset = field("offset");
    let offset = if offset.is_empty() {
        offset
    } else {
        format!("@{offset}")
    };
    Cow::Owned(format!(
        "{path}\u{0}{}{}{offset}",
        field("storageType"),
        field("pathOrInlineDv")
    ))
}

impl From<DataFile> for Add {
    /// The `add` of a file just written (`dataChange` true).
    fn from(file: DataFile) -> Add {
        Add {
            path: file.path,
            partition_values: file.partition_values,
            size: file.size,
            modification_time: file.modification_time,
            data_change: true,
            stats: Some(file.stats),
            tags: None,
            other: Map::new(),
        }
    }
}

/// `remove`: a data file that is no longer part of the table (a tombstone until VACUUM).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    /// The path, encoded exactly as in its `add`.
    pub path: String,
    /// When it was removed, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<i64>,
    /// False for compaction.
    pub data_change: bool,
    /// True when `partitionValues` and `size` are present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_file_metadata: Option<bool>,
    /// The removed file's partition values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_values: Option<BTreeMap<String, Option<String>>>,
    /// The removed file's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// The removed file's statistics, as in its `add`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    /// The removed file's tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, Option<String>>>,
    /// Fields tidelake does not model, kept as read.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub other: Map<String, Value>,
}

/// `txn`: the latest version an application committed, for idempotent writes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Txn {
    /// The application (for tidelake's sink: `<job id>-w<worker>`).
    pub app_id: String,
    /// The application's version (for tidelake's sink: the commit epoch).
    pub version: i64,
    /// When, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<i64>,
    /// Fields tidelake does not model, kept as read.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub other: Map<String, Value>,
}

/// `commitInfo`: free-form provenance; the fields tidelake writes and reads are named,
/// anything else another writer put there is kept in `other`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    /// Commit time, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// `WRITE`, `STREAMING UPDATE`, `OPTIMIZE`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The operation's parameters, as strings. Spark writes them as JSON-encoded
    /// strings, but some writers put nulls, booleans or numbers there: those are kept
    /// as their JSON text (`null`, `false`, `3`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "parameters_as_strings"
    )]
    pub operation_parameters: Option<BTreeMap<String, String>>,
    /// The version the commit was based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_version: Option<i64>,
    /// True for pure appends, which concurrent transactions need not treat as conflicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_blind_append: Option<bool>,
    /// A unique id of the commit, to recognise it after an ambiguous write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_id: Option<String>,
    /// The writer, e.g. `tidelake/0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_info: Option<String>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `commitInfo.operationParameters` with every value as a string: a string as it is,
/// anything else as its JSON text.
fn parameters_as_strings<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let parameters: Option<BTreeMap<String, Value>> = Option::deserialize(deserializer)?;
    Ok(parameters.map(|parameters| {
        parameters
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(text) => (key, text),
                other => (key, other.to_string()),
            })
            .collect()
    }))
}

/// One line of a commit.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `protocol`.
    Protocol(Protocol),
    /// `metaData`.
    Metadata(Metadata),
    /// `add`.
    Add(Add),
    /// `remove`.
    Remove(Remove),
    /// `txn`.
    Txn(Txn),
    /// `commitInfo`.
    CommitInfo(CommitInfo),
    /// An action this writer does not act on (`cdc`, `domainMetadata`, …), by name.
    Other(String),
}

impl Action {
    /// Parses one line of a commit.
    pub fn from_json(line: &str) -> Result<Action, serde_json::Error> {
        let object: Map<String, Value> = serde_json::from_str(line)?;
        let Some((name, value)) = object.into_iter().next() else {
            return Ok(Action::Other(String::new()));
        };
        Ok(match name.as_str() {
            "protocol" => Action::Protocol(serde_json::from_value(value)?),
            "metaData" => Action::Metadata(serde_json::from_value(value)?),
            "add" => Action::Add(serde_json::from_value(value)?),
            "remove" => Action::Remove(serde_json::from_value(value)?),
            "txn" => Action::Txn(serde_json::from_value(value)?),
            "commitInfo" => Action::CommitInfo(serde_json::from_value(value)?),
            _ => Action::Other(name),
        })
    }

    /// The action as one line of a commit (without the newline).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        /// `{"<name>": value}`, with value's fields in declaration order.
        struct Keyed<'a, T>(&'a str, &'a T);
        impl<T: Serialize> Serialize for Keyed<'_, T> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(self.0, self.1)?;
                map.end()
            }
        }
        fn keyed<T: Serialize>(name: &str, value: &T) -> Result<String, serde_json::Error> {
            serde_json::to_string(&Keyed(name, value))
        }
        match self {
            Action::Protocol(a) => keyed("protocol", a),
            Action::Metadata(a) => keyed("metaData", a),
            Action::Add(a) => keyed("add", a),
            Action::Remove(a) => keyed("remove", a),
            Action::Txn(a) => keyed("txn", a),
            Action::CommitInfo(a) => keyed("commitInfo", a),
            Action::Other(name) => Err(serde::ser::Error::custom(format!(
                "cannot write the unknown action '{name}'"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_the_protocol_names() {
        let add = Action::Add(Add {
            path: "date=2024-05-01/part-00000-x-c000.zstd.parquet".into(),
            partition_values: BTreeMap::from([("date".to_owned(), Some("2024-05-01".to_owned()))]),
            size: 1234,
            modification_time: 1_714_521_600_000,
            data_change: true,
            stats: Some(r#"{"numRecords":3}"#.into()),
            tags: None,
            ..Default::default()
        });
        let line = add.to_json().expect("serialises");
        assert_eq!(
            line,
            r#"{"add":{"path":"date=2024-05-01/part-00000-x-c000.zstd.parquet","partitionValues":{"date":"2024-05-01"},"size":1234,"modificationTime":1714521600000,"dataChange":true,"stats":"{\"numRecords\":3}"}}"#
        );
        assert_eq!(Action::from_json(&line).expect("parses"), add);

        let txn = r#"{"txn":{"appId":"job-w0","version":7,"lastUpdated":1}}"#;
        assert_eq!(
            Action::from_json(txn)
                .expect("parses")
                .to_json()
                .expect("serialises"),
            txn
        );
        let meta = r#"{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{}","partitionColumns":["date"],"configuration":{}}}"#;
        assert_eq!(
            Action::from_json(meta)
                .expect("parses")
                .to_json()
                .expect("serialises"),
            meta
        );
    }

    #[test]
    fn foreign_commit_info_and_unknown_actions_are_kept_or_skipped() {
        let info = Action::from_json(
            r#"{"commitInfo":{"timestamp":5,"operation":"WRITE","clientVersion":"delta-rs.1"}}"#,
        )
        .expect("parses");
        let Action::CommitInfo(info) = info else {
            panic!("commitInfo")
        };
        assert_eq!(info.operation.as_deref(), Some("WRITE"));
        assert_eq!(info.other["clientVersion"], "delta-rs.1");

        // As Spark and Databricks write them: a null and a boolean among the strings.
        let info = Action::from_json(
            r#"{"commitInfo":{"operationParameters":{"isManaged":"false","description":null,"statsOnLoad":false,"n":3}}}"#,
        )
        .expect("parses");
        let Action::CommitInfo(info) = info else {
            panic!("commitInfo")
        };
        let parameters = info.operation_parameters.expect("parameters");
        assert_eq!(parameters["isManaged"], "false");
        assert_eq!(parameters["description"], "null");
        assert_eq!(parameters["statsOnLoad"], "false");
        assert_eq!(parameters["n"], "3");
        let meta = Action::from_json(
            r#"{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"partitionColumns":[],"configuration":{}}}"#,
        )
        .expect("a metaData without schemaString parses");
        assert!(matches!(meta, Action::Metadata(m) if m.schema_string.is_empty()));
        assert_eq!(
            Action::from_json(r#"{"domainMetadata":{"domain":"d"}}"#).expect("parses"),
            Action::Other("domainMetadata".into())
        );
    }
}
