//! The `alerts` table of a job that alerts on the model (`--alert-on model|any`,
//! docs/scoring.md §3): `accountId`, `dt` (timestamp, µs, UTC: the transaction's event
//! time), `amount`, `probability`, `ruleAlert`, `modelAlert`, `modelVersion`, partitioned
//! by `date` (`yyyy-MM-dd` of `dt` in UTC).

use std::sync::Arc;

use arrow::array::{BooleanBuilder, Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use tidelake_sinks::parquet::ArrowRows;

use crate::model::alert::ModelAlert;
use crate::transactions_table::{date_partition_values, day_of, micros, utc_micros};

/// A model's alert as a row of the `alerts` table.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelAlertRow(pub ModelAlert);

/// Column builders for [`ModelAlertRow`]s.
pub struct ModelAlertBuilders {
    account_id: StringBuilder,
    dt: TimestampMicrosecondBuilder,
    amount: Float64Builder,
    probability: Float64Builder,
    rule_alert: BooleanBuilder,
    model_alert: BooleanBuilder,
    model_version: StringBuilder,
}

impl ArrowRows for ModelAlertRow {
    type Builders = ModelAlertBuilders;
    /// Days since the Unix epoch (of `dt`).
    type Partition = u64;

    fn arrow_schema() -> SchemaRef {
        Arc::new(ArrowSchema::new(vec![
            Field::new("accountId", DataType::Utf8, true),
            Field::new("dt", utc_micros(), true),
            Field::new("amount", DataType::Float64, true),
            Field::new("probability", DataType::Float64, true),
            Field::new("ruleAlert", DataType::Boolean, true),
            Field::new("modelAlert", DataType::Boolean, true),
            Field::new("modelVersion", DataType::Utf8, true),
        ]))
    }

    fn partition_columns() -> &'static [&'static str] {
        &["date"]
    }

    #[inline]
    fn partition(&self) -> u64 {
        day_of(self.0.ts)
    }

    fn partition_values(day: &u64) -> Vec<Option<String>> {
        date_partition_values(*day)
    }

    fn new_builders(capacity: usize) -> ModelAlertBuilders {
        ModelAlertBuilders {
            account_id: StringBuilder::with_capacity(capacity, capacity * 8),
            dt: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            amount: Float64Builder::with_capacity(capacity),
            probability: Float64Builder::with_capacity(capacity),
            rule_alert: BooleanBuilder::with_capacity(capacity),
            model_alert: BooleanBuilder::with_capacity(capacity),
            model_version: StringBuilder::with_capacity(capacity, capacity * 16),
        }
    }

    fn append(&self, b: &mut ModelAlertBuilders) {
        let a = &self.0;
        b.account_id.append_value(&a.account_id);
        b.dt.append_value(micros(a.ts));
        b.amount.append_value(a.amount);
        b.probability.append_value(a.probability);
        b.rule_alert.append_value(a.rule_alert);
        b.model_alert.append_value(a.model_alert);
        b.model_version.append_value(&a.model_version);
    }

    fn finish(b: &mut ModelAlertBuilders) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(
            Self::arrow_schema(),
            vec![
                Arc::new(b.account_id.finish()),
                Arc::new(b.dt.finish()),
                Arc::new(b.amount.finish()),
                Arc::new(b.probability.finish()),
                Arc::new(b.rule_alert.finish()),
                Arc::new(b.model_alert.finish()),
                Arc::new(b.model_version.finish()),
            ],
        )
    }
}
