//! The `fraud_predictions` table (docs/scoring.md §3): every transaction the model scored
//! — `dt` (timestamp, µs, UTC), `accountId`, `amount`, `merchant`, `country`, `label` (1,
//! 0 or null), `ruleAlert` (the fraud rule's verdict), `probability`, `prediction` (1 or
//! 0), `modelVersion` — partitioned by `date` (`yyyy-MM-dd` of `dt` in UTC).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use tidelake_sinks::parquet::ArrowRows;

use crate::model::score::Scored;
use crate::transactions_table::{date_partition_values, day_of, micros, utc_micros};

/// A scored transaction as a row of the `fraud_predictions` table.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictionRow(pub Scored);

/// Column builders for [`PredictionRow`]s.
pub struct PredictionBuilders {
    dt: TimestampMicrosecondBuilder,
    account_id: StringBuilder,
    amount: Float64Builder,
    merchant: StringBuilder,
    country: StringBuilder,
    label: Int32Builder,
    rule_alert: BooleanBuilder,
    probability: Float64Builder,
    prediction: Int32Builder,
    model_version: StringBuilder,
}

impl ArrowRows for PredictionRow {
    type Builders = PredictionBuilders;
    /// Days since the Unix epoch.
    type Partition = u64;

    fn arrow_schema() -> SchemaRef {
        let column = |name: &str, data_type: DataType| Field::new(name, data_type, true);
        Arc::new(ArrowSchema::new(vec![
            column("dt", utc_micros()),
            column("accountId", DataType::Utf8),
            column("amount", DataType::Float64),
            column("merchant", DataType::Utf8),
            column("country", DataType::Utf8),
            column("label", DataType::Int32),
            column("ruleAlert", DataType::Boolean),
            column("probability", DataType::Float64),
            column("prediction", DataType::Int32),
            column("modelVersion", DataType::Utf8),
        ]))
    }

    fn partition_columns() -> &'static [&'static str] {
        &["date"]
    }

    #[inline]
    fn partition(&self) -> u64 {
        day_of(self.0.row.record.tx.ts)
    }

    fn partition_values(day: &u64) -> Vec<Option<String>> {
        date_partition_values(*day)
    }

    fn new_builders(capacity: usize) -> PredictionBuilders {
        let strings = |bytes: usize| StringBuilder::with_capacity(capacity, capacity * bytes);
        PredictionBuilders {
            dt: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            account_id: strings(8),
            amount: Float64Builder::with_capacity(capacity),
            merchant: strings(8),
            country: strings(2),
            label: Int32Builder::with_capacity(capacity),
            rule_alert: BooleanBuilder::with_capacity(capacity),
            probability: Float64Builder::with_capacity(capacity),
            prediction: Int32Builder::with_capacity(capacity),
            model_version: strings(16),
        }
    }

    fn append(&self, b: &mut PredictionBuilders) {
        let Scored {
            row,
            probability,
            prediction,
            model_version,
        } = &self.0;
        let tx = &row.record.tx;
        b.dt.append_value(micros(tx.ts));
        b.account_id.append_value(&tx.account_id);
        b.amount.append_value(tx.amount);
        b.merchant.append_option(tx.merchant.as_deref());
        b.country
            .append_option(tx.country.as_ref().map(|c| c.as_str()));
        b.label.append_option(tx.label.map(i32::from));
        b.rule_alert.append_value(row.record.rule_alert);
        b.probability.append_value(*probability);
        b.prediction.append_value(i32::from(*prediction));
        b.model_version.append_value(model_version);
    }

    fn finish(b: &mut PredictionBuilders) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(b.dt.finish()),
            Arc::new(b.account_id.finish()),
            Arc::new(b.amount.finish()),
            Arc::new(b.merchant.finish()),
            Arc::new(b.country.finish()),
            Arc::new(b.label.finish()),
            Arc::new(b.rule_alert.finish()),
            Arc::new(b.probability.finish()),
            Arc::new(b.prediction.finish()),
            Arc::new(b.model_version.finish()),
        ];
        RecordBatch::try_new(Self::arrow_schema(), columns)
    }
}
