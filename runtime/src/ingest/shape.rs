//! From an input file's columns to the table's rows (docs/ingest.md, "Formats and
//! schemas"): the table schema a first file gives, `--schema`, `--rename`, the `date`
//! partition column, and the check that a later file has the table's columns.
//!
//! A file fits the table when, after the renames, it has exactly the table's data
//! columns (by name, in any order) and every value casts strictly to the table's type
//! of its column (an integer to a wider one, a timestamp of any unit; never a value
//! that does not fit). Anything else is another schema: the file goes to the dead
//! letters whole.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{
    DataType, Date32Type, Field, Int64Type, Schema as ArrowSchema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use tidelake_sinks::delta::Schema;
use tidelake_sinks::delta::files::reader::conform;
use tidelake_sinks::delta::protocol::schema::arrow_type;

use crate::transactions_table::date_text;

/// The partition column `--partition-by date` adds.
pub const DATE_COLUMN: &str = "date";

/// The columns `--partition-by date` derives the date from, in order of preference,
/// when `--timestamp-column` does not name one.
pub const TIMESTAMP_COLUMNS: [&str; 3] = ["timestamp", "dt", "ts"];

/// `from=to` pairs of `--rename`.
pub type Renames = [(String, String)];

/// How the rows of input files become the table's; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Shape {
    /// The input columns (before renames), of the table's types.
    input: SchemaRef,
    /// The table's data file columns (no partition column).
    data: SchemaRef,
    renames: Vec<(String, String)>,
    /// The data column the `date` partition derives from.
    date_from: Option<(usize, DayUnit)>,
}

/// How a column's values count days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DayUnit {
    /// A timestamp, µs since the epoch.
    Micros,
    /// A long, ms since the epoch.
    Millis,
    /// A date, days since the epoch.
    Days,
}

/// The table schema for input files of schema `input`: its columns renamed, each of
/// the Delta type of its Arrow type (timestamps of any unit or zone are `timestamp`,
/// instants in UTC; unsigned integers widen to the next signed type), all nullable,
/// and `date` last if `partition_by_date`. An error names a rename whose column the
/// input lacks, a column type no Delta table holds, or a clash of names.
pub fn table_schema(
    input: &ArrowSchema,
    renames: &Renames,
    partition_by_date: bool,
) -> Result<Schema, String> {
    let names: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
    for (from, to) in renames {
        if !names.contains(&from.as_str()) {
            return Err(format!(
                "--rename {from}={to}: the input has no column `{from}` (its columns: {})",
                names.join(", ")
            ));
        }
    }
    let fields: Vec<Field> = input
        .fields()
        .iter()
        .map(|f| {
            let name = renamed(f.name(), renames);
            Field::new(name, table_type(f.data_type()), true)
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for field in &fields {
        if !seen.insert(field.name().as_str()) {
            return Err(format!(
                "two input columns would be named `{}` (check --rename)",
                field.name()
            ));
        }
    }
    if partition_by_date && seen.contains(DATE_COLUMN) {
        return Err(format!(
            "--partition-by date adds a column `{DATE_COLUMN}`, but the input has one already (rename it with --rename {DATE_COLUMN}=<name>)"
        ));
    }
    let partition: &[&str] = if partition_by_date {
        &[DATE_COLUMN]
    } else {
        &[]
    };
    let schema = Schema::from_arrow(&ArrowSchema::new(fields), partition);
    match schema.unwritable() {
        Some(problem) => Err(problem),
        None => Ok(schema),
    }
}

/// The Arrow type a table column of an input column of type `data_type` has; see
/// [`table_schema`].
fn table_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Dictionary(_, values) => table_type(values),
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        other => other.clone(),
    }
}

/// The input schema `--schema` gives: `name type[, name type …]`, with Delta's type
/// names (`string`, `long`, `integer`, `short`, `byte`, `double`, `float`, `boolean`,
/// `date`, `timestamp`, `binary`, `decimal(p,s)`) or Spark SQL's (`bigint`, `int`,
/// `smallint`, `tinyint`, `real`, `bool`).
pub fn parse_schema(text: &str) -> Result<ArrowSchema, String> {
    let mut fields = Vec::new();
    for column in split_columns(text) {
        let column = column.trim();
        let (name, type_name) = column
            .split_once(char::is_whitespace)
            .map(|(n, t)| (n.trim().trim_matches('`'), t.trim().to_ascii_lowercase()))
            .filter(|(n, t)| !n.is_empty() && !t.is_empty())
            .ok_or_else(|| format!("--schema: `{column}` is not `name type`"))?;
        let delta_name = match type_name.as_str() {
            "bigint" => "long",
            "int" => "integer",
            "smallint" => "short",
            "tinyint" => "byte",
            "real" => "float",
            "bool" => "boolean",
            other => other,
        };
        let data_type = arrow_type(&delta_name.replace(' ', ""))
            .ok_or_else(|| format!("--schema: column `{name}` has unknown type `{type_name}`"))?;
        fields.push(Field::new(name, data_type, true));
    }
    if fields.is_empty() {
        return Err("--schema names no column".to_owned());
    }
    Ok(ArrowSchema::new(fields))
}

/// `text` split at the commas outside parentheses (`decimal(10,2)` is one type).
fn split_columns(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

impl Shape {
    /// The shape of rows written to a table of `table` schema partitioned by
    /// `partition_columns`, from input columns renamed by `renames`; the `date`
    /// partition (if `partition_by_date`) derives from `timestamp_column`, or the first
    /// of [`TIMESTAMP_COLUMNS`] the table has. An error says why the table cannot take
    /// such rows.
    pub fn new(
        table: &Schema,
        partition_columns: &[String],
        renames: &Renames,
        partition_by_date: bool,
        timestamp_column: Option<&str>,
    ) -> Result<Shape, String> {
        let wanted: &[&str] = if partition_by_date {
            &[DATE_COLUMN]
        } else {
            &[]
        };
        if partition_columns != wanted {
            return Err(format!(
                "the table is partitioned by [{}], but this ingest writes rows partitioned by [{}] (--partition-by)",
                partition_columns.join(", "),
                wanted.join(", ")
            ));
        }
        let data = table.data_file_schema(partition_columns)?;
        for (from, to) in renames {
            if data.field_with_name(to).is_err() {
                return Err(format!(
                    "--rename {from}={to}: the table has no column `{to}`"
                ));
            }
        }
        let input_fields: Vec<Field> = data
            .fields()
            .iter()
            .map(|f| {
                let name = renames
                    .iter()
                    .find(|(_, to)| to == f.name())
                    .map_or(f.name().as_str(), |(from, _)| from.as_str());
                Field::new(name, f.data_type().clone(), true)
            })
            .collect();
        let date_from = if partition_by_date {
            Some(date_source(&data, timestamp_column)?)
        } else {
            None
        };
        Ok(Shape {
            input: Arc::new(ArrowSchema::new(input_fields)),
            data,
            renames: renames.to_vec(),
            date_from,
        })
    }

    /// The table's data file columns (no partition column): what the rows are written
    /// as.
    pub fn data_schema(&self) -> &SchemaRef {
        &self.data
    }

    /// The input columns (before renames), of the table's types: what CSV and JSON
    /// values are read as.
    pub fn input_schema(&self) -> &SchemaRef {
        &self.input
    }

    /// The rows of `batch` (an input file's) as the table's, split by their `date`
    /// partition value (`None` for a null time, or when there is no partition); an
    /// error says how the file's columns differ or which value does not fit.
    pub fn apply(&self, batch: &RecordBatch) -> Result<Vec<(Option<String>, RecordBatch)>, String> {
        let renamed = self.rename(batch)?;
        let rows = conform(&renamed, &self.data).map_err(|e| e.to_string())?;
        let Some((index, unit)) = self.date_from else {
            return Ok(vec![(None, rows)]);
        };
        let days = days(rows.column(index), unit);
        if let Some(&first) = days.first()
            && days.iter().all(|&day| day == first)
        {
            return Ok(vec![(first.and_then(date_text), rows)]);
        }
        let mut groups: BTreeMap<Option<i64>, Vec<u32>> = BTreeMap::new();
        for (row, day) in days.iter().enumerate() {
            groups.entry(*day).or_default().push(row as u32);
        }
        groups
            .into_iter()
            .map(|(day, indices)| {
                let part = take_record_batch(&rows, &UInt32Array::from(indices))
                    .map_err(|e| e.to_string())?;
                Ok((day.and_then(date_text), part))
            })
            .collect()
    }

    /// `batch` with its columns renamed; an error if they are not the table's.
    fn rename(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_name(renamed(f.name(), &self.renames))
            })
            .collect();
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        same_columns(&names, &self.data)?;
        RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), batch.columns().to_vec())
            .map_err(|e| e.to_string())
    }
}

/// `name` after `renames`.
fn renamed(name: &str, renames: &Renames) -> String {
    renames
        .iter()
        .find(|(from, _)| from == name)
        .map_or(name, |(_, to)| to.as_str())
        .to_owned()
}

/// The data column the date derives from, and how it counts days.
fn date_source(data: &SchemaRef, named: Option<&str>) -> Result<(usize, DayUnit), String> {
    let candidates: Vec<&str> = match named {
        Some(name) => vec![name],
        None => TIMESTAMP_COLUMNS.to_vec(),
    };
    let Some((index, field)) = candidates
        .iter()
        .find_map(|name| data.column_with_name(name))
    else {
        return Err(format!(
            "--partition-by date derives the date from {}, which the table does not have (its columns: {}); name one with --timestamp-column",
            candidates.join(" or "),
            data.fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let unit = match field.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => DayUnit::Micros,
        DataType::Int64 => DayUnit::Millis,
        DataType::Date32 => DayUnit::Days,
        other => {
            return Err(format!(
                "--partition-by date: column `{}` is {other}; the date derives from a timestamp, a date or a long (ms since the epoch)",
                field.name()
            ));
        }
    };
    Ok((index, unit))
}

/// The day (since the epoch, UTC) of each value of `column`.
fn days(column: &ArrayRef, unit: DayUnit) -> Vec<Option<i64>> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    const MILLIS_PER_DAY: i64 = 86_400_000;
    match unit {
        DayUnit::Micros => column
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| v.map(|us| us.div_euclid(MICROS_PER_DAY)))
            .collect(),
        DayUnit::Millis => column
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|ms| ms.div_euclid(MILLIS_PER_DAY)))
            .collect(),
        DayUnit::Days => column
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
    }
}

/// Checks that a file's columns `names` are those of `schema`, in any order; an error
/// names the ones it has that the schema does not and the ones it lacks.
pub fn same_columns(names: &[&str], schema: &SchemaRef) -> Result<(), String> {
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| schema.field_with_name(n).is_err())
        .collect();
    let missing: Vec<&str> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|n| !names.contains(n))
        .collect();
    if unknown.is_empty() && missing.is_empty() {
        Ok(())
    } else {
        Err(column_difference(&unknown, &missing))
    }
}

/// How a file's columns differ from the table's: those it has that the table does not
/// (`unknown`) and those it lacks (`missing`).
fn column_difference(unknown: &[&str], missing: &[&str]) -> String {
    let quoted = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !unknown.is_empty() {
        parts.push(format!(
            "has column(s) {} the table does not",
            quoted(unknown)
        ));
    }
    if !missing.is_empty() {
        parts.push(format!("lacks column(s) {}", quoted(missing)));
    }
    format!("another schema: the file {}", parts.join(" and "))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampMillisecondArray};

    use super::*;

    fn seed_batch() -> RecordBatch {
        let day = 86_400_000;
        RecordBatch::try_from_iter([
            (
                "dt",
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(day * 19_000 + 5),
                    Some(day * 19_001),
                    None,
                    Some(day * 19_000 + 7),
                ])) as ArrayRef,
            ),
            (
                "accountId",
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ),
            (
                "amount",
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])),
            ),
        ])
        .expect("batch")
    }

    fn renames() -> Vec<(String, String)> {
        vec![("dt".to_owned(), "timestamp".to_owned())]
    }

    #[test]
    fn the_seed_job_renames_dt_and_partitions_by_its_utc_date() {
        let batch = seed_batch();
        let schema = table_schema(&batch.schema(), &renames(), true).expect("schema");
        let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["timestamp", "accountId", "amount", "date"]);
        assert_eq!(schema.fields[0].data_type, "timestamp");
        let shape =
            Shape::new(&schema, &["date".to_owned()], &renames(), true, None).expect("shape");
        assert_eq!(shape.input_schema().field(0).name(), "dt");
        let parts = shape.apply(&batch).expect("apply");
        let summary: Vec<(Option<&str>, usize)> = parts
            .iter()
            .map(|(d, b)| (d.as_deref(), b.num_rows()))
            .collect();
        assert_eq!(
            summary,
            [(None, 1), (Some("2022-01-08"), 2), (Some("2022-01-09"), 1)]
        );
        let (_, first) = &parts[1];
        assert_eq!(first.schema().field(0).name(), "timestamp");
        assert_eq!(first.num_columns(), 3, "no date column in the data files");
    }

    #[test]
    fn a_file_with_other_columns_is_another_schema() {
        let batch = seed_batch();
        let schema = table_schema(&batch.schema(), &renames(), true).expect("schema");
        let shape =
            Shape::new(&schema, &["date".to_owned()], &renames(), true, None).expect("shape");
        let other = RecordBatch::try_from_iter([
            ("dt", batch.column(0).clone()),
            ("account", batch.column(1).clone()),
        ])
        .expect("batch");
        let error = shape.apply(&other).expect_err("another schema");
        assert!(
            error.contains("`account`") && error.contains("`accountId`"),
            "{error}"
        );
        assert!(error.contains("`amount`"), "{error}");
        let retyped = RecordBatch::try_from_iter([
            ("dt", batch.column(0).clone()),
            ("accountId", batch.column(1).clone()),
            ("amount", batch.column(1).clone()),
        ])
        .expect("batch");
        let error = shape.apply(&retyped).expect_err("a string as a double");
        assert!(error.contains("amount"), "{error}");
    }

    #[test]
    fn long_millis_partition_too_and_bad_flags_are_named() {
        let batch = RecordBatch::try_from_iter([
            ("ts", Arc::new(Int64Array::from(vec![-1, 0])) as ArrayRef),
            ("v", Arc::new(Int64Array::from(vec![1, 2]))),
        ])
        .expect("batch");
        let schema = table_schema(&batch.schema(), &[], true).expect("schema");
        let shape = Shape::new(&schema, &["date".to_owned()], &[], true, None).expect("shape");
        let days: Vec<Option<String>> = shape
            .apply(&batch)
            .expect("apply")
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(
            days,
            [Some("1969-12-31".to_owned()), Some("1970-01-01".to_owned())]
        );
        assert!(Shape::new(&schema, &["date".to_owned()], &[], true, Some("v")).is_ok());
    }

    #[test]
    fn flags_that_cannot_work_are_refused_naming_the_column() {
        let batch = seed_batch();
        let missing = [("when".to_owned(), "timestamp".to_owned())];
        let error = table_schema(&batch.schema(), &missing, true).expect_err("no `when`");
        assert!(
            error.contains("`when`") && error.contains("accountId"),
            "{error}"
        );
        let schema = table_schema(&batch.schema(), &[], false).expect("schema");
        let error = Shape::new(&schema, &[], &[], false, None).map(drop);
        assert!(error.is_ok());
        let error = Shape::new(&schema, &[], &[], true, None).expect_err("partitioning");
        assert!(error.contains("partitioned by []"), "{error}");
        let partitioned = table_schema(&batch.schema(), &[], true).expect("schema");
        let error = Shape::new(
            &partitioned,
            &["date".to_owned()],
            &[],
            true,
            Some("accountId"),
        )
        .expect_err("a string");
        assert!(error.contains("`accountId` is Utf8"), "{error}");
        let clash = [("dt".to_owned(), "amount".to_owned())];
        let error = table_schema(&batch.schema(), &clash, false).expect_err("clash");
        assert!(error.contains("`amount`"), "{error}");
    }

    #[test]
    fn schemas_parse_from_ddl_with_spark_names() {
        let schema = parse_schema("accountId string, ts BIGINT, amount decimal(10, 2), ok bool")
            .expect("parse");
        let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [
                &DataType::Utf8,
                &DataType::Int64,
                &DataType::Decimal128(10, 2),
                &DataType::Boolean
            ]
        );
        assert!(
            parse_schema("a strang")
                .expect_err("type")
                .contains("strang")
        );
        assert!(parse_schema("a").is_err());
        assert!(parse_schema(" ").is_err());
    }
}
