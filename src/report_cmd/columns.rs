//! The columns of a predictions table the report reads, checked against the table's
//! schema, and the rows of a batch of them.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::figures::Row;

/// A column the report needs, and the kind of type it must have.
struct Needed {
    name: &'static str,
    kind: &'static str,
    fits: fn(&DataType) -> bool,
}

/// The columns read, in the order of [`Columns::schema`].
const NEEDED: [Needed; 6] = [
    Needed {
        name: "dt",
        kind: "a timestamp",
        fits: |t| matches!(t, DataType::Timestamp(..)),
    },
    Needed {
        name: "label",
        kind: "an integer",
        fits: DataType::is_integer,
    },
    Needed {
        name: "ruleAlert",
        kind: "a boolean",
        fits: |t| *t == DataType::Boolean,
    },
    Needed {
        name: "probability",
        kind: "a floating-point number",
        fits: DataType::is_floating,
    },
    Needed {
        name: "prediction",
        kind: "an integer",
        fits: DataType::is_integer,
    },
    Needed {
        name: "modelVersion",
        kind: "a string",
        fits: |t| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
    },
];

/// The columns the report reads of a table.
#[derive(Clone, Debug)]
pub struct Columns {
    schema: SchemaRef,
    dt_unit: TimeUnit,
}

impl Columns {
    /// The needed columns of `table` (its data file schema `table_schema`); an error
    /// naming every column that is missing or of another type.
    pub fn of(table: &str, table_schema: &Schema) -> Result<Columns, String> {
        let mut fields = Vec::new();
        let mut problems = Vec::new();
        for needed in &NEEDED {
            match table_schema.field_with_name(needed.name) {
                Ok(field) if (needed.fits)(field.data_type()) => fields.push(field.clone()),
                Ok(field) => problems.push(format!(
                    "column `{}` is {}, not {}",
                    needed.name,
                    field.data_type(),
                    needed.kind
                )),
                Err(_) => problems.push(format!(
                    "there is no column `{}` ({})",
                    needed.name, needed.kind
                )),
            }
        }
        if !problems.is_empty() {
            return Err(format!(
                "table {table} is not a predictions table: {}",
                problems.join("; ")
            ));
        }
        let dt_unit = match fields[0].data_type() {
            DataType::Timestamp(unit, _) => *unit,
            _ => TimeUnit::Microsecond,
        };
        Ok(Columns {
            schema: Arc::new(Schema::new(fields)),
            dt_unit,
        })
    }

    /// The schema of the needed columns, to read the table's files in.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Calls `each` with every row of `batch` (a batch of [`schema`](Self::schema)).
    pub fn rows(
        &self,
        batch: &RecordBatch,
        mut each: impl FnMut(&Row<'_>),
    ) -> Result<(), ArrowError> {
        let as_type =
            |i: usize, to: &DataType| -> Result<ArrayRef, ArrowError> { cast(batch.column(i), to) };
        // A timestamp casts to its raw count of units.
        let dt = as_type(0, &DataType::Int64)?;
        let dt = dt.as_primitive::<Int64Type>();
        let label = as_type(1, &DataType::Int64)?;
        let label = label.as_primitive::<Int64Type>();
        let rule = batch.column(2).as_boolean();
        let probability = as_type(3, &DataType::Float64)?;
        let probability = probability.as_primitive::<Float64Type>();
        let prediction = as_type(4, &DataType::Int64)?;
        let prediction = prediction.as_primitive::<Int64Type>();
        let version = as_type(5, &DataType::Utf8)?;
        let version = version.as_string::<i32>();
        let per_us = |t: i64| match self.dt_unit {
            TimeUnit::Second => t.saturating_mul(1_000_000),
            TimeUnit::Millisecond => t.saturating_mul(1000),
            TimeUnit::Microsecond => t,
            TimeUnit::Nanosecond => t.div_euclid(1000),
        };
        for i in 0..batch.num_rows() {
            each(&Row {
                dt_us: dt.is_valid(i).then(|| per_us(dt.value(i))),
                label: label.is_valid(i).then(|| label.value(i) != 0),
                rule_alert: rule.is_valid(i).then(|| rule.value(i)),
                probability: probability.is_valid(i).then(|| probability.value(i)),
                prediction: prediction.is_valid(i).then(|| prediction.value(i) != 0),
                model_version: version.is_valid(i).then(|| version.value(i)),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::Field;

    use super::*;

    fn field(name: &str, data_type: DataType) -> Field {
        Field::new(name, data_type, true)
    }

    #[test]
    fn missing_and_mistyped_columns_are_named() {
        let schema = Schema::new(vec![
            field(
                "dt",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ),
            field("label", DataType::Utf8),
            field("ruleAlert", DataType::Boolean),
            field("prediction", DataType::Int32),
            field("modelVersion", DataType::Utf8),
        ]);
        let err = Columns::of("lake/p", &schema).expect_err("not a predictions table");
        assert_eq!(
            err,
            "table lake/p is not a predictions table: column `label` is Utf8, not an integer; \
             there is no column `probability` (a floating-point number)"
        );
    }
}
