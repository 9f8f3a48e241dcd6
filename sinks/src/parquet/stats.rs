//! Per-file statistics for `add.stats`, computed exactly from the batches written to the
//! file.
//!
//! The result is a JSON object, which the `add` action carries *as a string*:
//!
//! ```json
//! {"numRecords":3,
//!  "minValues":{"dt":"2024-05-01T10:02:00.123Z","accountId":"a","amount":0.5,"alert":false},
//!  "maxValues":{"dt":"2024-05-01T23:59:59.999Z","accountId":"c","amount":871.15,"alert":true},
//!  "nullCount":{"dt":0,"accountId":0,"amount":0,"alert":0}}
//! ```
//!
//! Readers trust these bounds to skip files, so they are exact (see
//! `shared/notes/delta-writer.md` §2):
//! - `nullCount` for every top-level column of the file (struct columns are left out);
//! - `minValues`/`maxValues` only for columns of the data file, so never for partition
//!   columns, and only where a bound is known and representable: no bounds for a column
//!   that is all null, for a floating-point column holding NaN or an infinity (JSON has
//!   no such numbers), or for types without a Delta stats form (binary, decimal, nested);
//! - timestamps are floored to milliseconds and written as `%Y-%m-%dT%H:%M:%S%.3fZ`
//!   (without `Z` for a timestamp without time zone); the max is floored too, since
//!   readers widen it by just under 1 ms themselves;
//! - strings are full values (no truncation); booleans are included.

use std::cmp::Ordering;
use std::fmt::Write as _;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::{self, max_boolean, min_boolean};
use arrow::datatypes::{
    ArrowNumericType, DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;

/// A bound of a column, in the form the stats JSON writes it.
#[derive(Clone, Debug, PartialEq)]
enum Bound {
    Int(i64),
    UInt(u64),
    /// Always finite.
    Float(f64),
    Bool(bool),
    Str(String),
    /// Milliseconds since the epoch (already floored); `utc` selects the `Z` suffix.
    Timestamp {
        millis: i64,
        utc: bool,
    },
    /// Days since the epoch.
    Date(i32),
}

impl Bound {
    fn cmp(&self, other: &Bound) -> Option<Ordering> {
        match (self, other) {
            (Bound::Int(a), Bound::Int(b)) => Some(a.cmp(b)),
            (Bound::UInt(a), Bound::UInt(b)) => Some(a.cmp(b)),
            (Bound::Float(a), Bound::Float(b)) => a.partial_cmp(b),
            (Bound::Bool(a), Bound::Bool(b)) => Some(a.cmp(b)),
            (Bound::Str(a), Bound::Str(b)) => Some(a.cmp(b)),
            (Bound::Timestamp { millis: a, utc: x }, Bound::Timestamp { millis: b, utc: y })
                if x == y =>
            {
                Some(a.cmp(b))
            }
            (Bound::Date(a), Bound::Date(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// The bound as a JSON value, or `None` if it cannot be written exactly.
    fn to_json(&self) -> Option<String> {
        Some(match self {
            Bound::Int(v) => v.to_string(),
            Bound::UInt(v) => v.to_string(),
            Bound::Float(v) => serde_json::to_string(v).ok()?,
            Bound::Bool(v) => v.to_string(),
            Bound::Str(v) => serde_json::to_string(v).ok()?,
            Bound::Timestamp { millis, utc } => {
                let time = chrono::DateTime::from_timestamp_millis(*millis)?;
                let text = if *utc {
                    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
                } else {
                    time.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
                };
                serde_json::to_string(&text).ok()?
            }
            Bound::Date(days) => {
                let time = chrono::DateTime::from_timestamp(i64::from(*days) * 86_400, 0)?;
                serde_json::to_string(&time.format("%Y-%m-%d").to_string()).ok()?
            }
        })
    }
}

impl Bound {
    /// The bound a stats JSON `value` gives for a column of `data_type`: the inverse of
    /// [`Bound::to_json`] (timestamps may carry any RFC 3339 offset, and are floored to
    /// ms). `None` if the type has no bounds here or the value is not of its form.
    fn from_json(value: &serde_json::Value, data_type: &DataType) -> Option<Bound> {
        match data_type {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                value.as_i64().map(Bound::Int)
            }
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                value.as_u64().map(Bound::UInt)
            }
            DataType::Float32 | DataType::Float64 => {
                value.as_f64().filter(|v| v.is_finite()).map(Bound::Float)
            }
            DataType::Boolean => value.as_bool().map(Bound::Bool),
            DataType::Dictionary(_, values) => Bound::from_json(value, values),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                value.as_str().map(|s| Bound::Str(s.to_owned()))
            }
            DataType::Date32 => {
                let date = chrono::NaiveDate::parse_from_str(value.as_str()?, "%Y-%m-%d").ok()?;
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
                let days = date.signed_duration_since(epoch).num_days();
                i32::try_from(days).ok().map(Bound::Date)
            }
            DataType::Timestamp(_, tz) => {
                let micros = timestamp_bound_micros(value.as_str()?)?;
                Some(Bound::Timestamp {
                    millis: micros.div_euclid(1_000),
                    utc: tz.as_deref().is_some_and(|t| !t.is_empty()),
                })
            }
            _ => None,
        }
    }
}

/// What is known of a column's bounds so far.
#[derive(Clone, Debug, PartialEq)]
enum Bounds {
    /// No non-null value seen yet.
    Empty,
    /// The smallest and largest non-null values seen.
    Range(Bound, Bound),
    /// No bounds can be written (unsupported type, NaN, infinity, out of range).
    Unknown,
}

impl Bounds {
    fn merge(&mut self, batch: Bounds) {
        *self = match (std::mem::replace(self, Bounds::Unknown), batch) {
            (Bounds::Unknown, _) | (_, Bounds::Unknown) => Bounds::Unknown,
            (Bounds::Empty, other) | (other, Bounds::Empty) => other,
            (Bounds::Range(min, max), Bounds::Range(bmin, bmax)) => {
                match (bmin.cmp(&min), bmax.cmp(&max)) {
                    (Some(lo), Some(hi)) => Bounds::Range(
                        if lo == Ordering::Less { bmin } else { min },
                        if hi == Ordering::Greater { bmax } else { max },
                    ),
                    _ => Bounds::Unknown,
                }
            }
        };
    }
}

/// One column's statistics.
#[derive(Clone, Debug)]
struct ColumnStats {
    name: String,
    data_type: DataType,
    /// False for struct columns, whose stats Delta nests; they are left out.
    counted: bool,
    null_count: u64,
    bounds: Bounds,
}

/// Exact statistics of one data file, accumulated batch by batch.
#[derive(Clone, Debug)]
pub struct FileStats {
    num_records: u64,
    columns: Vec<ColumnStats>,
}

impl FileStats {
    /// Empty statistics for a file of `schema` (the data file's schema: partition
    /// columns are not in it, so they never get bounds).
    pub fn new(schema: &Schema) -> Self {
        FileStats {
            num_records: 0,
            columns: schema
                .fields()
                .iter()
                .map(|field| ColumnStats {
                    name: field.name().clone(),
                    data_type: field.data_type().clone(),
                    counted: !matches!(field.data_type(), DataType::Struct(_)),
                    null_count: 0,
                    bounds: Bounds::Empty,
                })
                .collect(),
        }
    }

    /// Adds the rows of `batch`, whose columns are those of the schema given to
    /// [`FileStats::new`], in order.
    pub fn update(&mut self, batch: &RecordBatch) {
        self.num_records += batch.num_rows() as u64;
        for (column, array) in self.columns.iter_mut().zip(batch.columns()) {
            column.null_count += array.logical_null_count() as u64;
            if column.bounds != Bounds::Unknown {
                column.bounds.merge(bounds_of(array));
            }
        }
    }

    /// Merges in the `add.stats` of a whole file of this schema holding `rows` rows, as
    /// if its rows had been added with [`update`](Self::update): the counts add up and
    /// the bounds widen. A column's bounds become unknown where the file's stats give
    /// none although it has a non-null value (a NaN, a type without bounds, a writer
    /// that left them out). False, and nothing merged, if the stats are not a JSON
    /// object, their `numRecords` is not `rows`, or a counted column has no
    /// `nullCount`: the merged counts could not be exact.
    pub fn merge_file(&mut self, stats: &str, rows: u64) -> bool {
        type Values = serde_json::Map<String, serde_json::Value>;
        #[derive(serde::Deserialize)]
        struct Stats {
            #[serde(rename = "numRecords")]
            num_records: Option<u64>,
            #[serde(rename = "minValues", default)]
            min: Values,
            #[serde(rename = "maxValues", default)]
            max: Values,
            #[serde(rename = "nullCount", default)]
            nulls: Values,
        }
        let Ok(file) = serde_json::from_str::<Stats>(stats) else {
            return false;
        };
        if file.num_records != Some(rows) {
            return false;
        }
        let mut columns = self.columns.clone();
        for column in &mut columns {
            if !column.counted {
                column.bounds = Bounds::Unknown;
                continue;
            }
            let Some(nulls) = file.nulls.get(&column.name).and_then(|n| n.as_u64()) else {
                return false;
            };
            column.null_count += nulls;
            if nulls == rows || column.bounds == Bounds::Unknown {
                continue;
            }
            let bound =
                |values: &Values| Bound::from_json(values.get(&column.name)?, &column.data_type);
            column
                .bounds
                .merge(match (bound(&file.min), bound(&file.max)) {
                    (Some(min), Some(max)) => Bounds::Range(min, max),
                    _ => Bounds::Unknown,
                });
        }
        self.num_records += rows;
        self.columns = columns;
        true
    }

    /// The number of rows added so far.
    pub fn num_records(&self) -> u64 {
        self.num_records
    }

    /// The statistics as the JSON object `add.stats` holds (as a string), with columns
    /// in schema order.
    pub fn to_json(&self) -> String {
        let mut min = Vec::new();
        let mut max = Vec::new();
        let mut nulls = Vec::new();
        for column in self.columns.iter().filter(|c| c.counted) {
            let name = serde_json::to_string(&column.name).unwrap_or_default();
            nulls.push(format!("{name}:{}", column.null_count));
            if let Bounds::Range(lo, hi) = &column.bounds
                && let (Some(lo), Some(hi)) = (lo.to_json(), hi.to_json())
            {
                min.push(format!("{name}:{lo}"));
                max.push(format!("{name}:{hi}"));
            }
        }
        let mut json = String::new();
        let _ = write!(
            json,
            r#"{{"numRecords":{},"minValues":{{{}}},"maxValues":{{{}}},"nullCount":{{{}}}}}"#,
            self.num_records,
            min.join(","),
            max.join(","),
            nulls.join(",")
        );
        json
    }
}

/// The exact stats of `batches` (all of one schema) as `add.stats` JSON.
pub fn stats_json(schema: &Schema, batches: &[RecordBatch]) -> String {
    let mut stats = FileStats::new(schema);
    for batch in batches {
        stats.update(batch);
    }
    stats.to_json()
}

/// µs since the epoch of a timestamp bound of `add.stats`: RFC 3339 (`timestamp`), or
/// without a zone, taken as UTC (`timestamp_ntz`, as [`FileStats`] writes them and
/// Spark too; a space for the `T` is read as well).
pub fn timestamp_bound_micros(text: &str) -> Option<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp_micros());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
        .map(|time| time.and_utc().timestamp_micros())
}

/// The `numRecords` of an `add.stats` string, or `None` if the stats leave it out.
/// An error if the string is not a JSON object (readers refuse such a table) or its
/// `numRecords` is not a non-negative integer.
pub fn parse_num_records(stats: &str) -> Result<Option<u64>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Counted {
        #[serde(rename = "numRecords")]
        num_records: Option<u64>,
    }
    Ok(serde_json::from_str::<Counted>(stats)?.num_records)
}

/// The bounds of one array, with arrow's aggregate kernels.
fn bounds_of(array: &ArrayRef) -> Bounds {
    fn range(min: Option<Bound>, max: Option<Bound>) -> Bounds {
        match (min, max) {
            (Some(min), Some(max)) => Bounds::Range(min, max),
            _ => Bounds::Empty,
        }
    }
    fn primitive<T: ArrowNumericType>(
        array: &ArrayRef,
        to_bound: impl Fn(T::Native) -> Option<Bound>,
    ) -> Bounds {
        let array = array.as_primitive::<T>();
        match (compute::min(array), compute::max(array)) {
            (Some(min), Some(max)) => match (to_bound(min), to_bound(max)) {
                (Some(min), Some(max)) => Bounds::Range(min, max),
                _ => Bounds::Unknown,
            },
            _ => Bounds::Empty,
        }
    }
    // Arrow orders floats totally: a NaN (of either sign) is the max or the min, so a
    // column holds NaN iff its min or max is NaN. Infinities have no JSON form.
    fn float(v: f64) -> Option<Bound> {
        v.is_finite().then_some(Bound::Float(v))
    }
    fn timestamp(millis: Option<i64>, utc: bool) -> Option<Bound> {
        // Only bounds that chrono can format (years -262143..262143).
        let millis = millis?;
        chrono::DateTime::from_timestamp_millis(millis)?;
        Some(Bound::Timestamp { millis, utc })
    }
    let utc = |tz: &Option<std::sync::Arc<str>>| tz.as_deref().is_some_and(|t| !t.is_empty());

    match array.data_type() {
        DataType::Int8 => primitive::<Int8Type>(array, |v| Some(Bound::Int(v.into()))),
        DataType::Int16 => primitive::<Int16Type>(array, |v| Some(Bound::Int(v.into()))),
        DataType::Int32 => primitive::<Int32Type>(array, |v| Some(Bound::Int(v.into()))),
        DataType::Int64 => primitive::<Int64Type>(array, |v| Some(Bound::Int(v))),
        DataType::UInt8 => primitive::<UInt8Type>(array, |v| Some(Bound::UInt(v.into()))),
        DataType::UInt16 => primitive::<UInt16Type>(array, |v| Some(Bound::UInt(v.into()))),
        DataType::UInt32 => primitive::<UInt32Type>(array, |v| Some(Bound::UInt(v.into()))),
        DataType::UInt64 => primitive::<UInt64Type>(array, |v| Some(Bound::UInt(v))),
        DataType::Float32 => primitive::<Float32Type>(array, |v| float(v.into())),
        DataType::Float64 => primitive::<Float64Type>(array, float),
        DataType::Date32 => primitive::<Date32Type>(array, |v| Some(Bound::Date(v))),
        DataType::Timestamp(unit, tz) => {
            let utc = utc(tz);
            match unit {
                TimeUnit::Second => {
                    primitive::<TimestampSecondType>(array, |v| timestamp(v.checked_mul(1000), utc))
                }
                TimeUnit::Millisecond => {
                    primitive::<TimestampMillisecondType>(array, |v| timestamp(Some(v), utc))
                }
                TimeUnit::Microsecond => primitive::<TimestampMicrosecondType>(array, |v| {
                    timestamp(Some(v.div_euclid(1_000)), utc)
                }),
                TimeUnit::Nanosecond => primitive::<TimestampNanosecondType>(array, |v| {
                    timestamp(Some(v.div_euclid(1_000_000)), utc)
                }),
            }
        }
        DataType::Boolean => {
            let array = array.as_boolean();
            range(
                min_boolean(array).map(Bound::Bool),
                max_boolean(array).map(Bound::Bool),
            )
        }
        DataType::Utf8 => {
            let array = array.as_string::<i32>();
            range(
                compute::min_string(array).map(|s| Bound::Str(s.to_owned())),
                compute::max_string(array).map(|s| Bound::Str(s.to_owned())),
            )
        }
        DataType::LargeUtf8 => {
            let array = array.as_string::<i64>();
            range(
                compute::min_string(array).map(|s| Bound::Str(s.to_owned())),
                compute::max_string(array).map(|s| Bound::Str(s.to_owned())),
            )
        }
        DataType::Utf8View => {
            let array = array.as_string_view();
            range(
                compute::min_string_view(array).map(|s| Bound::Str(s.to_owned())),
                compute::max_string_view(array).map(|s| Bound::Str(s.to_owned())),
            )
        }
        // Dictionary-encoded strings: exact bounds over the values actually referenced.
        DataType::Dictionary(_, values)
            if matches!(
                values.as_ref(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) =>
        {
            match compute::cast(array, values) {
                Ok(plain) => bounds_of(&plain),
                Err(_) => Bounds::Unknown,
            }
        }
        _ => Bounds::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BooleanArray, Date32Array, DictionaryArray, Float32Array, Float64Array, Int32Array,
        Int64Array, StringArray, StructArray, TimestampMicrosecondArray, TimestampNanosecondArray,
    };
    use arrow::datatypes::{Field, Int32Type};
    use serde_json::{Value, json};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("batch")
    }

    fn parse(json: &str) -> Value {
        serde_json::from_str(json).expect("stats are JSON")
    }

    #[test]
    fn seed_columns_give_exact_bounds_with_millisecond_timestamps() {
        let b = batch(vec![
            (
                "dt",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        1_714_557_720_123_456,
                        1_714_521_600_000_000,
                        1_714_607_999_999_999,
                    ])
                    .with_timezone("UTC"),
                ),
            ),
            (
                "accountId",
                Arc::new(StringArray::from(vec!["b", "a", "c"])),
            ),
            (
                "amount",
                Arc::new(Float64Array::from(vec![871.15, 0.5, 3.0])),
            ),
            (
                "alert",
                Arc::new(BooleanArray::from(vec![true, false, false])),
            ),
        ]);
        let json = stats_json(&b.schema(), std::slice::from_ref(&b));
        assert_eq!(
            json,
            r#"{"numRecords":3,"minValues":{"dt":"2024-05-01T00:00:00.000Z","accountId":"a","amount":0.5,"alert":false},"maxValues":{"dt":"2024-05-01T23:59:59.999Z","accountId":"c","amount":871.15,"alert":true},"nullCount":{"dt":0,"accountId":0,"amount":0,"alert":0}}"#
        );
    }

    #[test]
    fn bounds_merge_across_batches_and_timestamps_floor_before_the_epoch() {
        let schema = Schema::new(vec![
            Field::new(
                "dt",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Int64, true),
        ]);
        let one = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![1_500]).with_timezone("UTC")),
                Arc::new(Int64Array::from(vec![5])),
            ],
        )
        .expect("batch");
        let two = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                // -1 µs is 1969-12-31T23:59:59.999999Z: floored to .999, not rounded up.
                Arc::new(TimestampMicrosecondArray::from(vec![-1]).with_timezone("UTC")),
                Arc::new(Int64Array::from(vec![-7])),
            ],
        )
        .expect("batch");
        let stats = parse(&stats_json(&schema, &[one, two]));
        assert_eq!(stats["numRecords"], 2);
        assert_eq!(stats["minValues"]["dt"], "1969-12-31T23:59:59.999Z");
        assert_eq!(stats["maxValues"]["dt"], "1970-01-01T00:00:00.001Z");
        assert_eq!(stats["minValues"]["n"], -7);
        assert_eq!(stats["maxValues"]["n"], 5);
    }

    #[test]
    fn nan_or_infinity_drops_the_bounds_of_that_column_only() {
        for values in [
            vec![1.0, f64::NAN, 2.0],
            vec![f64::NAN, 1.0],
            vec![1.0, -f64::NAN],
            vec![f64::NAN],
            vec![1.0, f64::INFINITY],
            vec![f64::NEG_INFINITY, 1.0],
        ] {
            let b = batch(vec![
                ("amount", Arc::new(Float64Array::from(values.clone()))),
                ("n", Arc::new(Int32Array::from(vec![1; values.len()]))),
            ]);
            let stats = parse(&stats_json(&b.schema(), &[b]));
            assert_eq!(stats["minValues"], json!({"n": 1}), "{values:?}");
            assert_eq!(stats["maxValues"], json!({"n": 1}), "{values:?}");
            assert_eq!(stats["nullCount"], json!({"amount": 0, "n": 0}));
        }
        // A NaN in a later batch also drops bounds seen earlier.
        let schema = Schema::new(vec![Field::new("amount", DataType::Float32, true)]);
        let first = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Float32Array::from(vec![1.0, 2.0]))],
        )
        .expect("batch");
        let second = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Float32Array::from(vec![f32::NAN]))],
        )
        .expect("batch");
        let stats = parse(&stats_json(&schema, &[first.clone(), second, first]));
        assert_eq!(stats["minValues"], json!({}));
        assert_eq!(stats["numRecords"], 5);
    }

    #[test]
    fn nulls_are_counted_and_all_null_columns_have_no_bounds() {
        let b = batch(vec![
            (
                "s",
                Arc::new(StringArray::from(vec![None, Some("x"), Some("a"), None])),
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![None, Some(-0.25), None, Some(9.5)])),
            ),
            ("none", Arc::new(Int64Array::from(vec![None::<i64>; 4]))),
            (
                "b",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(true), None])),
            ),
            (
                "d",
                Arc::new(Date32Array::from(vec![Some(19_844), None, Some(0), None])),
            ),
        ]);
        let stats = parse(&stats_json(&b.schema(), &[b]));
        assert_eq!(
            stats,
            json!({
                "numRecords": 4,
                "minValues": {"s": "a", "f": -0.25, "b": true, "d": "1970-01-01"},
                "maxValues": {"s": "x", "f": 9.5, "b": true, "d": "2024-05-01"},
                "nullCount": {"s": 2, "f": 2, "none": 4, "b": 2, "d": 2},
            })
        );
    }

    #[test]
    fn empty_files_strings_and_other_types() {
        // Zero rows: counts only.
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8, true)]);
        assert_eq!(
            FileStats::new(&schema).to_json(),
            r#"{"numRecords":0,"minValues":{},"maxValues":{},"nullCount":{"s":0}}"#
        );

        // Full strings (no truncation), JSON-escaped; dictionary strings use only the
        // values referenced; nanosecond timestamps floor; unsupported types get counts
        // only; struct columns are left out.
        let long = "é\"quoted\"\n".repeat(10);
        let dict: DictionaryArray<Int32Type> =
            DictionaryArray::try_new(Int32Array::from(vec![1, 1]), {
                Arc::new(StringArray::from(vec!["aaa", "m", "zzz"])) as ArrayRef
            })
            .expect("dictionary");
        let inner: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let structs = StructArray::from(vec![(
            Arc::new(Field::new("i", DataType::Int32, true)),
            inner,
        )]);
        let b = batch(vec![
            (
                "s",
                Arc::new(StringArray::from(vec![long.as_str(), "b"])) as ArrayRef,
            ),
            ("dict", Arc::new(dict)),
            (
                "ns",
                Arc::new(TimestampNanosecondArray::from(vec![1_999_999, 1_000_000])),
            ),
            (
                "bin",
                Arc::new(arrow::array::BinaryArray::from(vec![
                    b"x".as_slice(),
                    b"y".as_slice(),
                ])),
            ),
            ("st", Arc::new(structs)),
        ]);
        let stats = parse(&stats_json(&b.schema(), &[b]));
        assert_eq!(stats["minValues"]["s"], "b");
        assert_eq!(stats["maxValues"]["s"], long.as_str());
        assert_eq!(stats["minValues"]["dict"], "m");
        assert_eq!(stats["maxValues"]["dict"], "m");
        // No time zone: timestamp_ntz form, without `Z`.
        assert_eq!(stats["minValues"]["ns"], "1970-01-01T00:00:00.001");
        assert_eq!(stats["maxValues"]["ns"], "1970-01-01T00:00:00.001");
        assert_eq!(stats["minValues"].get("bin"), None);
        assert_eq!(stats["nullCount"]["bin"], 0);
        assert_eq!(stats["nullCount"].get("st"), None);
        assert_eq!(stats["minValues"].get("st"), None);
    }

    #[test]
    fn num_records_is_read_back_from_the_stats_string() {
        let schema = Schema::new(vec![Field::new("n", DataType::Int64, true)]);
        let written = stats_json(
            &schema,
            &[batch(vec![(
                "n",
                Arc::new(Int64Array::from(vec![1, 2, 3])),
            )])],
        );
        assert_eq!(parse_num_records(&written).expect("parses"), Some(3));
        assert_eq!(
            parse_num_records(r#"{"nullCount":{}}"#).expect("parses"),
            None
        );
        assert!(parse_num_records("{nope").is_err());
        assert!(parse_num_records(r#"{"numRecords":-1}"#).is_err());
    }

    /// Batches of every type with bounds (and nulls, NaN and an all-null column), made
    /// from `seed`.
    fn mixed_batch(rows: usize, seed: u64) -> RecordBatch {
        let x = |i: usize, k: u64| {
            ((i as u64 + seed * 7_919 + k * 104_729).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 40
        };
        let maybe = |i: usize, k: u64| !x(i, k).is_multiple_of(5);
        let utc: Option<Arc<str>> = Some("UTC".into());
        batch(vec![
            (
                "i",
                Arc::new(Int64Array::from_iter(
                    (0..rows).map(|i| maybe(i, 1).then(|| x(i, 2) as i64 - 500_000)),
                )),
            ),
            (
                "u",
                Arc::new(arrow::array::UInt32Array::from_iter(
                    (0..rows).map(|i| maybe(i, 3).then(|| x(i, 4) as u32)),
                )),
            ),
            (
                "f",
                Arc::new(Float64Array::from_iter((0..rows).map(|i| {
                    maybe(i, 5).then(|| {
                        if seed == 3 && i == 1 {
                            f64::NAN
                        } else {
                            x(i, 6) as f64 / 8.0 - 99.5
                        }
                    })
                }))),
            ),
            (
                "s",
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|i| maybe(i, 7).then(|| format!("v{}", x(i, 8) % 977))),
                )),
            ),
            (
                "b",
                Arc::new(BooleanArray::from_iter(
                    (0..rows).map(|i| maybe(i, 9).then(|| x(i, 10) % 3 == 0)),
                )),
            ),
            (
                "d",
                Arc::new(Date32Array::from_iter((0..rows).map(|i| {
                    maybe(i, 11).then(|| (x(i, 12) % 40_000) as i32 - 20_000)
                }))),
            ),
            (
                "ts",
                Arc::new(
                    arrow::array::TimestampMicrosecondArray::from_iter(
                        (0..rows)
                            .map(|i| maybe(i, 13).then(|| x(i, 14) as i64 * 997 - 1_000_000_000)),
                    )
                    .with_timezone_opt(utc.clone()),
                ),
            ),
            (
                "ntz",
                Arc::new(TimestampNanosecondArray::from_iter(
                    (0..rows).map(|i| maybe(i, 15).then(|| x(i, 16) as i64 * 999_983)),
                )),
            ),
            ("none", Arc::new(Int64Array::from(vec![None::<i64>; rows]))),
        ])
    }

    #[test]
    fn merged_file_stats_are_the_stats_of_all_the_rows() {
        for files in [1, 2, 5] {
            for nan_file in [false, true] {
                let batches: Vec<RecordBatch> = (0..files as u64)
                    .map(|f| {
                        mixed_batch(
                            50 + 13 * f as usize,
                            if nan_file && f == 1 { 3 } else { f + 10 },
                        )
                    })
                    .collect();
                let schema = batches[0].schema();
                let mut merged = FileStats::new(&schema);
                for b in &batches {
                    let one = stats_json(&schema, std::slice::from_ref(b));
                    assert!(merged.merge_file(&one, b.num_rows() as u64), "{one}");
                }
                assert_eq!(
                    parse(&merged.to_json()),
                    parse(&stats_json(&schema, &batches)),
                    "{files} files, NaN in one: {nan_file}"
                );
                if nan_file && files > 1 {
                    assert_eq!(parse(&merged.to_json())["minValues"].get("f"), None);
                }
            }
        }
        // Bounds another writer wrote with an offset, and a column it gave no bounds.
        let schema = Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Int64, true),
        ]);
        let mut merged = FileStats::new(&schema);
        assert!(merged.merge_file(
            r#"{"numRecords":2,"minValues":{"ts":"2024-05-01T12:00:00.000+02:00"},"maxValues":{"ts":"2024-05-01T12:30:00.5009Z"},"nullCount":{"ts":0,"n":1}}"#,
            2
        ));
        assert_eq!(
            parse(&merged.to_json()),
            json!({
                "numRecords": 2,
                "minValues": {"ts": "2024-05-01T10:00:00.000Z"},
                "maxValues": {"ts": "2024-05-01T12:30:00.500Z"},
                "nullCount": {"ts": 0, "n": 1},
            })
        );
    }

    #[test]
    fn stats_that_cannot_be_merged_exactly_are_refused_and_change_nothing() {
        let schema = Schema::new(vec![Field::new("n", DataType::Int64, true)]);
        let mut stats = FileStats::new(&schema);
        let before = stats.to_json();
        for refused in [
            "{nope",
            r#"{"numRecords":3,"nullCount":{}}"#,
            r#"{"nullCount":{"n":0}}"#,
            r#"{"numRecords":2,"nullCount":{"n":0}}"#,
        ] {
            assert!(!stats.merge_file(refused, 3), "{refused}");
            assert_eq!(stats.to_json(), before);
        }
        assert!(stats.merge_file(
            r#"{"numRecords":3,"minValues":{"n":-4},"maxValues":{"n":9},"nullCount":{"n":1}}"#,
            3
        ));
        assert_eq!(
            stats.to_json(),
            r#"{"numRecords":3,"minValues":{"n":-4},"maxValues":{"n":9},"nullCount":{"n":1}}"#
        );
        // A file whose column is all null has no bounds, and narrows nothing.
        assert!(stats.merge_file(r#"{"numRecords":2,"nullCount":{"n":2}}"#, 2));
        assert_eq!(
            stats.to_json(),
            r#"{"numRecords":5,"minValues":{"n":-4},"maxValues":{"n":9},"nullCount":{"n":3}}"#
        );
    }
}
