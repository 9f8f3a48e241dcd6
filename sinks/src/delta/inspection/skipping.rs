//! Data skipping: for point lookups of values of one column, how many live files a
//! reader must open — those whose `stats` bounds of the column contain the value —
//! out of how many. Z-order exists to make this small (docs/semantics.md §6).
//!
//! Values compare as the column's Delta type: strings by their UTF-8 bytes (as Spark
//! and delta-rs do), integers and floating-point numbers as numbers, dates as
//! `YYYY-MM-DD`, booleans, and timestamps as instants. A timestamp is written RFC 3339
//! (`2024-05-01T10:02:00.123456Z`); the stats' max is floored to the millisecond, so
//! it is widened by 999 µs, as readers do. A partition column is looked up by its
//! partition value (`__HIVE_DEFAULT_PARTITION__` for null). A file without bounds for
//! the column (no stats, an all-null column, a NaN) cannot be skipped.

use serde::Serialize;
use serde_json::Value;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::Add;
use crate::delta::protocol::schema::Schema;
use crate::delta::protocol::snapshot::Snapshot;
use crate::parquet::NULL_PARTITION;
use crate::parquet::stats::timestamp_bound_micros as micros;

/// What point lookups of one column must read.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippingReport {
    /// The snapshot's version.
    pub version: u64,
    /// The column looked up.
    pub column: String,
    /// Live files.
    pub files: u64,
    /// Live files without bounds for the column: every lookup reads them.
    pub files_without_bounds: u64,
    /// Each lookup, in the order given.
    pub lookups: Vec<Lookup>,
    /// The mean of the lookups' files read.
    pub average_files_read: f64,
    /// The mean of the lookups' shares of the live files read (0 without files).
    pub average_share: f64,
}

/// One point lookup.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lookup {
    /// The value looked up, as given.
    pub value: String,
    /// Live files whose bounds contain it (or that have none).
    pub files_read: u64,
    /// `files_read` over the live files (0 without files).
    pub share: f64,
}

/// The skipping figure of lookups of `values` in `column` of `snapshot`; see the
/// [module docs](self). An error for a column the table does not have, of a type
/// without bounds (binary, decimal, nested), or a value that is not of its type.
pub fn skipping(
    snapshot: &Snapshot,
    column: &str,
    values: &[String],
) -> Result<SkippingReport, DeltaError> {
    let metadata = snapshot
        .metadata
        .as_ref()
        .ok_or_else(|| DeltaError::Corrupt("the log has no metaData".into()))?;
    let schema = Schema::from_schema_string(&metadata.schema_string)
        .map_err(|e| DeltaError::Corrupt(format!("metaData.schemaString does not parse: {e}")))?;
    let field = schema
        .fields
        .iter()
        .find(|f| f.name == column)
        .ok_or_else(|| {
            let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
            DeltaError::InvalidArgument(format!(
                "cannot look up `{column}`: the table has no such column (its columns: {})",
                names.join(", ")
            ))
        })?;
    let files: Vec<FileRange> = if metadata.partition_columns.iter().any(|c| c == column) {
        snapshot
            .files
            .values()
            .map(|add| FileRange::partition(add, column))
            .collect()
    } else {
        let kind = Kind::of(field.data_type.as_str().unwrap_or_default()).ok_or_else(|| {
            DeltaError::InvalidArgument(format!(
                "cannot look up `{column}`: its type {} has no min/max stats here",
                field.data_type
            ))
        })?;
        snapshot
            .files
            .values()
            .map(|add| FileRange::of(add, column, kind))
            .collect()
    };
    let total = files.len() as u64;
    let lookups = values
        .iter()
        .map(|value| {
            let files_read = files
                .iter()
                .map(|file| file.may_hold(value))
                .collect::<Result<Vec<bool>, String>>()
                .map_err(|why| {
                    DeltaError::InvalidArgument(format!(
                        "cannot look up {column} = {value:?}: {why}"
                    ))
                })?
                .into_iter()
                .filter(|&read| read)
                .count() as u64;
            Ok(Lookup {
                value: value.clone(),
                files_read,
                share: share(files_read, total),
            })
        })
        .collect::<Result<Vec<_>, DeltaError>>()?;
    let mean = |f: fn(&Lookup) -> f64| match lookups.len() {
        0 => 0.0,
        n => lookups.iter().map(f).sum::<f64>() / n as f64,
    };
    Ok(SkippingReport {
        version: snapshot.version,
        column: column.to_owned(),
        files: total,
        files_without_bounds: files.iter().filter(|f| f.is_unbounded()).count() as u64,
        average_files_read: mean(|l| l.files_read as f64),
        average_share: mean(|l| l.share),
        lookups,
    })
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// How a column's values compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Strings, and dates as `YYYY-MM-DD`.
    Text,
    Integer,
    Float,
    Boolean,
    Timestamp,
}

impl Kind {
    fn of(delta_type: &str) -> Option<Kind> {
        Some(match delta_type {
            "string" | "date" => Kind::Text,
            "long" | "integer" | "short" | "byte" => Kind::Integer,
            "double" | "float" => Kind::Float,
            "boolean" => Kind::Boolean,
            "timestamp" | "timestamp_ntz" => Kind::Timestamp,
            _ => return None,
        })
    }
}

/// A value of a column, comparable with the others of its kind.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    /// µs since the epoch.
    Micros(i64),
}

impl Scalar {
    /// A lookup value of `kind`.
    fn parse(kind: Kind, text: &str) -> Result<Scalar, String> {
        let bad = |what: &str| format!("not {what}");
        Ok(match kind {
            Kind::Text => Scalar::Text(text.to_owned()),
            Kind::Integer => Scalar::Integer(text.parse().map_err(|_| bad("an integer"))?),
            Kind::Float => Scalar::Float(text.parse().map_err(|_| bad("a number"))?),
            Kind::Boolean => Scalar::Boolean(text.parse().map_err(|_| bad("true or false"))?),
            Kind::Timestamp => Scalar::Micros(
                micros(text).ok_or_else(|| bad("a time like 2024-05-01T10:02:00.123Z"))?,
            ),
        })
    }

    /// A stats bound of `kind`, if it is one.
    fn of_json(kind: Kind, value: &Value) -> Option<Scalar> {
        Some(match kind {
            Kind::Text => Scalar::Text(value.as_str()?.to_owned()),
            Kind::Integer => Scalar::Integer(value.as_i64()?),
            Kind::Float => Scalar::Float(value.as_f64()?),
            Kind::Boolean => Scalar::Boolean(value.as_bool()?),
            Kind::Timestamp => Scalar::Micros(micros(value.as_str()?)?),
        })
    }
}

/// What a file's stats or partition say of a column.
enum FileRange {
    /// The column's bounds; `None` if the stats give none.
    Bounds {
        kind: Kind,
        bounds: Option<(Scalar, Scalar)>,
    },
    /// A partition column's value in the file.
    Partition(Option<String>),
}

impl FileRange {
    fn of(add: &Add, column: &str, kind: Kind) -> FileRange {
        let stats: Option<Value> = add
            .stats
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok());
        let bound = |key: &str| {
            let value = stats.as_ref()?.get(key)?.get(column)?;
            Scalar::of_json(kind, value)
        };
        let bounds = match (bound("minValues"), bound("maxValues")) {
            (Some(min), Some(Scalar::Micros(max))) => {
                // The max is floored to the millisecond.
                Some((min, Scalar::Micros(max.saturating_add(999))))
            }
            (Some(min), Some(max)) => Some((min, max)),
            _ => None,
        };
        FileRange::Bounds { kind, bounds }
    }

    fn partition(add: &Add, column: &str) -> FileRange {
        FileRange::Partition(add.partition_values.get(column).cloned().flatten())
    }

    fn is_unbounded(&self) -> bool {
        matches!(self, FileRange::Bounds { bounds: None, .. })
    }

    /// True if the file may hold rows with `value` (an error if `value` is not of the
    /// column's type).
    fn may_hold(&self, value: &str) -> Result<bool, String> {
        match self {
            FileRange::Partition(Some(actual)) => Ok(actual == value),
            FileRange::Partition(None) => Ok(value == NULL_PARTITION),
            FileRange::Bounds { kind, bounds } => {
                let value = Scalar::parse(*kind, value)?;
                Ok(match bounds {
                    None => true,
                    Some((min, max)) => *min <= value && value <= *max,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::delta::protocol::actions::{Action, Format, Metadata};

    fn file(path: &str, date: Option<&str>, stats: Option<&str>) -> Action {
        Action::Add(Add {
            path: path.to_owned(),
            partition_values: BTreeMap::from([("date".to_owned(), date.map(str::to_owned))]),
            size: 1,
            modification_time: 1,
            data_change: true,
            stats: stats.map(str::to_owned),
            tags: None,
            ..Default::default()
        })
    }

    fn snapshot() -> Snapshot {
        let schema = Schema::of(&[
            ("dt", "timestamp"),
            ("accountId", "string"),
            ("amount", "double"),
            ("price", "decimal(5,2)"),
            ("date", "string"),
        ]);
        let mut snapshot = Snapshot::default();
        snapshot.apply(
            4,
            [
                Action::Metadata(Metadata {
                    id: "t".into(),
                    name: None,
                    description: None,
                    format: Format {
                        provider: "parquet".into(),
                        options: BTreeMap::new(),
                    },
                    schema_string: schema.to_schema_string(),
                    partition_columns: vec!["date".into()],
                    created_time: None,
                    configuration: BTreeMap::new(),
                    ..Default::default()
                }),
                file(
                    "a",
                    Some("2024-05-01"),
                    Some(
                        r#"{"numRecords":2,"minValues":{"accountId":"10","amount":1.5,"dt":"2024-05-01T10:00:00.000Z"},"maxValues":{"accountId":"19","amount":9,"dt":"2024-05-01T10:02:00.123Z"}}"#,
                    ),
                ),
                file(
                    "b",
                    Some("2024-05-02"),
                    Some(r#"{"numRecords":2,"minValues":{"accountId":"15"},"maxValues":{"accountId":"30"}}"#),
                ),
                file("c", None, None),
            ],
        );
        snapshot
    }

    fn reads(report: &SkippingReport) -> Vec<u64> {
        report.lookups.iter().map(|l| l.files_read).collect()
    }

    #[test]
    fn lookups_read_the_files_whose_bounds_contain_the_value() {
        let snapshot = snapshot();
        let values: Vec<String> = ["05", "10", "17", "2", "31"].map(String::from).to_vec();
        let report = skipping(&snapshot, "accountId", &values).expect("figure");
        assert_eq!(
            (report.version, report.files, report.files_without_bounds),
            (4, 3, 1)
        );
        // Strings compare as strings: "2" is between "15" and "30".
        assert_eq!(reads(&report), [1, 2, 3, 2, 1]);
        assert_eq!(report.lookups[2].share, 1.0);
        assert_eq!(report.average_files_read, 9.0 / 5.0);
        assert!((report.average_share - 9.0 / 15.0).abs() < 1e-12);

        let report = skipping(&snapshot, "amount", &["9".into(), "9.5".into()]).expect("figure");
        assert_eq!(
            reads(&report),
            [3, 2],
            "numbers compare as numbers; b has no bounds"
        );

        // The max is floored to ms: .123999 is still in, .124 is not.
        let times = [
            "2024-05-01T10:02:00.123999Z",
            "2024-05-01T12:02:00.124+02:00",
        ];
        let report = skipping(&snapshot, "dt", &times.map(String::from)).expect("figure");
        assert_eq!(reads(&report), [3, 2]);

        let dates = ["2024-05-02", NULL_PARTITION, "2024-05-03"];
        let report = skipping(&snapshot, "date", &dates.map(String::from)).expect("figure");
        assert_eq!(reads(&report), [1, 1, 0], "partition values");
    }

    #[test]
    fn unknown_columns_types_without_bounds_and_bad_values_are_refused() {
        let snapshot = snapshot();
        let err = |column: &str, value: &str| {
            skipping(&snapshot, column, &[value.to_owned()])
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(
            err("account", "1"),
            "cannot look up `account`: the table has no such column (its columns: dt, accountId, amount, price, date)"
        );
        assert_eq!(
            err("price", "1"),
            "cannot look up `price`: its type \"decimal(5,2)\" has no min/max stats here"
        );
        assert_eq!(
            err("amount", "lots"),
            "cannot look up amount = \"lots\": not a number"
        );
        assert!(err("dt", "yesterday").contains("not a time like"));
    }
}
