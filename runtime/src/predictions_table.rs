//! The `fraud_predictions` table (docs/scoring.md §3): every transaction the model scored
//! — `dt` (timestamp, µs, UTC), `accountId`, `amount`, `merchant`, `country`, `label` (1,
//! 0 or null), `ruleAlert` (the fraud rule's verdict), `probability`, `prediction` (1 or
//! 0), `modelVersion` — partitioned by `date` (`yyyy-MM-dd` of `dt` in UTC).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, Int32Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use tidelake_sinks::parquet::ArrowRows;

use crate::features_table::VerdictColumns;
use crate::model::score::Scored;
use crate::transactions_table::{date_partition_values, day_of};

/// A scored transaction as a row of the `fraud_predictions` table.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictionRow(pub Scored);

/// Column builders for [`PredictionRow`]s.
pub struct PredictionBuilders {
    verdict: VerdictColumns,
    probability: Float64Builder,
    prediction: Int32Builder,
    model_version: StringBuilder,
}

impl ArrowRows for PredictionRow {
    type Builders = PredictionBuilders;
    /// Days since the Unix epoch.
    type Partition = u64;

    fn arrow_schema() -> SchemaRef {
        let mut fields = VerdictColumns::fields();
        fields.extend([
            Field::new("probability", DataType::Float64, true),
            Field::new("prediction", DataType::Int32, true),
            Field::new("modelVersion", DataType::Utf8, true),
        ]);
        Arc::new(ArrowSchema::new(fields))
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
        PredictionBuilders {
            verdict: VerdictColumns::with_capacity(capacity),
            probability: Float64Builder::with_capacity(capacity),
            prediction: Int32Builder::with_capacity(capacity),
            model_version: StringBuilder::with_capacity(capacity, capacity * 16),
        }
    }

    fn append(&self, b: &mut PredictionBuilders) {
        let scored = &self.0;
        b.verdict.append(&scored.row.record);
        b.probability.append_value(scored.probability);
        b.prediction.append_value(i32::from(scored.prediction));
        b.model_version.append_value(&scored.model_version);
    }

    fn finish(b: &mut PredictionBuilders) -> Result<RecordBatch, ArrowError> {
        let mut columns = b.verdict.finish();
        columns.extend::<[ArrayRef; 3]>([
            Arc::new(b.probability.finish()),
            Arc::new(b.prediction.finish()),
            Arc::new(b.model_version.finish()),
        ]);
        RecordBatch::try_new(Self::arrow_schema(), columns)
    }
}
