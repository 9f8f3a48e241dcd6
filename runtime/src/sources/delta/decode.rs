//! Rows of a Delta table as records (docs/delta-source.md §3): transactions from their
//! columns, any serde record type from the row as a JSON object.
//!
//! Transactions read the event time from `dt`, `timestamp` or `ts` (the first the table
//! has: a timestamp, or an integer of ms), the account from `accountId` or `account_id`
//! (a string, or an integer written as one) and `amount` (any number). A record type of
//! a pipeline's own is deserialized from the row's columns by name, timestamps as ms
//! since the epoch and dates as `yyyy-MM-dd`. A row whose values are invalid is an
//! [`Outcome::Invalid`], as a bad line of a file is.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, Schema as ArrowSchema, TimeUnit,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tidelake_operators::Transaction;

use crate::dead_letter::Reason;
use crate::sources::SourceRecord;
use crate::sources::files::Outcome;
use crate::sources::validate;

/// How rows become records `R`.
pub struct Decoder<R> {
    /// Why tables of this Arrow schema (the data files', without partition columns)
    /// cannot be read as `R`, naming the columns; `None` when they can.
    pub check: fn(&ArrowSchema) -> Option<String>,
    /// The records of a batch, one outcome per row.
    pub decode: fn(&RecordBatch) -> Result<Vec<Outcome<R>>, String>,
}

impl<R> Clone for Decoder<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Decoder<R> {}

/// The decoder of transactions.
pub fn transactions() -> Decoder<Transaction> {
    Decoder {
        check: check_transactions,
        decode: decode_transactions,
    }
}

/// The decoder of a pipeline's own record type.
pub fn records<R: SourceRecord + DeserializeOwned>() -> Decoder<R> {
    Decoder {
        check: |_| None,
        decode: decode_records::<R>,
    }
}

const ACCOUNT_COLUMNS: [&str; 2] = ["accountId", "account_id"];

/// The first of `names` that `schema` has.
fn column<'a>(schema: &ArrowSchema, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .copied()
        .find(|name| schema.field_with_name(name).is_ok())
}

fn check_transactions(schema: &ArrowSchema) -> Option<String> {
    let mut problems = Vec::new();
    let columns = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match column(schema, &super::log::TIME_COLUMNS) {
        None => problems.push(format!(
            "no event time column ({})",
            columns(&super::log::TIME_COLUMNS)
        )),
        Some(name) => {
            let data_type = schema.field_with_name(name).map(|f| f.data_type().clone());
            if !matches!(
                data_type,
                Ok(DataType::Timestamp(_, _) | DataType::Int64 | DataType::Int32)
            ) {
                problems.push(format!(
                    "column `{name}` is not a timestamp or an integer of ms"
                ));
            }
        }
    }
    if column(schema, &ACCOUNT_COLUMNS).is_none() {
        problems.push(format!("no account column ({})", columns(&ACCOUNT_COLUMNS)));
    }
    match schema.field_with_name("amount").map(|f| f.data_type()) {
        Err(_) => problems.push("no `amount` column".to_owned()),
        Ok(t) if !t.is_numeric() => problems.push("column `amount` is not a number".to_owned()),
        Ok(_) => {}
    }
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    (!problems.is_empty()).then(|| {
        format!(
            "{} (its data columns: {})",
            problems.join("; "),
            names.join(", ")
        )
    })
}

/// `column` as ms since the epoch, per row (`None` for a null).
fn millis(column: &ArrayRef) -> Result<Vec<Option<i64>>, String> {
    let to_ms: fn(i64) -> i64 = match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => |v| v.saturating_mul(1000),
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Int64 | DataType::Int32 => |v| v,
        DataType::Timestamp(TimeUnit::Microsecond, _) => |v| v.div_euclid(1_000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => |v| v.div_euclid(1_000_000),
        other => return Err(format!("an event time of type {other}")),
    };
    let raw = cast(column, &DataType::Int64)?;
    Ok(raw
        .as_primitive::<Int64Type>()
        .iter()
        .map(|v| v.map(to_ms))
        .collect())
}

fn cast(column: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(column, to, &strict).map_err(|e| e.to_string())
}

fn decode_transactions(batch: &RecordBatch) -> Result<Vec<Outcome<Transaction>>, String> {
    let schema = batch.schema();
    let missing = || "the batch lacks a column the table has".to_owned();
    let time_name = column(&schema, &super::log::TIME_COLUMNS).ok_or_else(missing)?;
    let account_name = column(&schema, &ACCOUNT_COLUMNS).ok_or_else(missing)?;
    let by_name = |name: &str| batch.column_by_name(name).ok_or_else(missing);
    let times = millis(by_name(time_name)?)?;
    let accounts = cast(by_name(account_name)?, &DataType::Utf8)?;
    let accounts = accounts.as_string::<i32>();
    let amounts = cast(by_name("amount")?, &DataType::Float64)?;
    let amounts = amounts.as_primitive::<Float64Type>();
    let mut out = Vec::with_capacity(batch.num_rows());
    for (row, time) in times.into_iter().enumerate() {
        let record = (|| {
            let ts = time.ok_or((Reason::Ts, format!("`{time_name}` is null")))?;
            let ts = validate::ts_in_range(i128::from(ts))?;
            if accounts.is_null(row) {
                return Err((Reason::AccountId, format!("`{account_name}` is null")));
            }
            let account_id = validate::account_id(accounts.value(row).as_bytes())?;
            if amounts.is_null(row) {
                return Err((Reason::Amount, "`amount` is null".to_owned()));
            }
            let amount = validate::finite_amount(amounts.value(row))?;
            Ok(Transaction {
                account_id,
                ts,
                amount,
            })
        })();
        out.push(match record {
            Ok(transaction) => Outcome::Valid(transaction),
            Err((reason, detail)) => Outcome::Invalid(reason, detail),
        });
    }
    Ok(out)
}

fn decode_records<R: SourceRecord + DeserializeOwned>(
    batch: &RecordBatch,
) -> Result<Vec<Outcome<R>>, String> {
    (0..batch.num_rows())
        .map(|row| {
            let object = row_json(batch, row)?;
            Ok(match serde_json::from_value::<R>(Value::Object(object)) {
                Err(e) => Outcome::Invalid(Reason::Parse, format!("bad record: {e}")),
                Ok(record) => super::super::decoded::checked(record),
            })
        })
        .collect()
}

/// Row `row` of `batch` as a JSON object: column name → value (null for a null),
/// timestamps as ms since the epoch, dates as `yyyy-MM-dd`, decimals as numbers.
pub fn row_json(batch: &RecordBatch, row: usize) -> Result<Map<String, Value>, String> {
    let schema = batch.schema();
    let mut object = Map::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let value = match column.is_null(row) {
            true => Value::Null,
            false => value_at(column, row)?,
        };
        object.insert(field.name().clone(), value);
    }
    Ok(object)
}

/// The value at `row` (not null) of `column`.
fn value_at(column: &ArrayRef, row: usize) -> Result<Value, String> {
    Ok(match column.data_type() {
        DataType::Utf8 => Value::from(column.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Value::from(column.as_string::<i64>().value(row)),
        DataType::Utf8View => Value::from(column.as_string_view().value(row)),
        DataType::Boolean => Value::from(column.as_boolean().value(row)),
        DataType::Int8 => Value::from(column.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => Value::from(column.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => Value::from(column.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(column.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => Value::from(column.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => Value::from(column.as_primitive::<Float64Type>().value(row)),
        DataType::Date32 => {
            let days = column.as_primitive::<Date32Type>().value(row);
            let date = crate::transactions_table::date_text(i64::from(days))
                .ok_or_else(|| format!("date {days} days from 1970 is out of range"))?;
            Value::from(date)
        }
        DataType::Timestamp(_, _) => {
            let ms = millis(&column.slice(row, 1))?;
            Value::from(ms[0].unwrap_or_default())
        }
        DataType::Decimal128(_, scale) => {
            let raw = column.as_primitive::<Decimal128Type>().value(row);
            Value::from(raw as f64 / 10f64.powi(i32::from(*scale)))
        }
        DataType::Binary => Value::from(
            column
                .as_binary::<i32>()
                .value(row)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ),
        other => return Err(format!("a column of type {other}")),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("batch")
    }

    #[test]
    fn transactions_read_their_columns_and_bad_rows_are_invalid() {
        let batch = batch(vec![
            (
                "dt",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_700_000_000_123_999),
                        Some(5),
                        None,
                        Some(-1_000),
                    ])
                    .with_timezone("UTC"),
                ) as ArrayRef,
            ),
            (
                "accountId",
                Arc::new(StringArray::from(vec![
                    Some("a-1"),
                    None,
                    Some("b"),
                    Some("c"),
                ])),
            ),
            (
                "amount",
                Arc::new(Float64Array::from(vec![0.5, 1.0, 2.0, f64::NAN])),
            ),
        ]);
        assert!(check_transactions(&batch.schema()).is_none());
        let out = decode_transactions(&batch).expect("decodes");
        match &out[0] {
            Outcome::Valid(t) => {
                assert_eq!(
                    (t.account_id.as_str(), t.ts, t.amount),
                    ("a-1", 1_700_000_000_123, 0.5)
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&out[1], Outcome::Invalid(Reason::AccountId, d) if d.contains("accountId"))
        );
        assert!(matches!(&out[2], Outcome::Invalid(Reason::Ts, d) if d.contains("`dt` is null")));
        assert!(
            matches!(&out[3], Outcome::Invalid(Reason::Ts, _)),
            "before 1970"
        );
    }

    #[test]
    fn integer_times_and_ids_are_read_and_a_missing_column_is_named() {
        let batch = batch(vec![
            ("ts", Arc::new(Int64Array::from(vec![42])) as ArrayRef),
            ("account_id", Arc::new(Int64Array::from(vec![7]))),
            ("amount", Arc::new(Int64Array::from(vec![3]))),
        ]);
        let out = decode_transactions(&batch).expect("decodes");
        assert!(
            matches!(&out[0], Outcome::Valid(t) if t.account_id.as_str() == "7" && t.ts == 42 && t.amount == 3.0)
        );
        let schema = ArrowSchema::new(vec![arrow::datatypes::Field::new(
            "dt",
            DataType::Utf8,
            true,
        )]);
        let problem = check_transactions(&schema).expect("refused");
        assert!(problem.contains("`dt` is not a timestamp"), "{problem}");
        assert!(problem.contains("no `amount` column"), "{problem}");
    }
}
