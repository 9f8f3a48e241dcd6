//! The `fraud_model_quality` table (docs/scoring.md §5): the model's quality figures per
//! account and hour of event time as a changelog — `accountId`, `hour` (timestamp, µs,
//! UTC: the hour's start), `count`, `labelled`, `correct`, `truePredictionRate` (null
//! without a label), `falsePositives`, `falseNegatives`, `operation` (`insert` or
//! `delete`), `changedAt` (timestamp: the event time of the tick the change happened
//! at) — partitioned by `date` (`yyyy-MM-dd` of `hour` in UTC). An hour's figures now
//! are its rows inserted and not deleted.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use tidelake_sinks::parquet::ArrowRows;

use crate::model::quality::QualityChange;
use crate::transactions_table::{date_partition_values, day_of, micros, utc_micros};

/// A change of the quality figures as a row of the `fraud_model_quality` table.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityRow(pub QualityChange);

/// Column builders for [`QualityRow`]s.
pub struct QualityBuilders {
    account_id: StringBuilder,
    hour: TimestampMicrosecondBuilder,
    counts: [Int64Builder; 5],
    rate: Float64Builder,
    operation: StringBuilder,
    changed_at: TimestampMicrosecondBuilder,
}

impl ArrowRows for QualityRow {
    type Builders = QualityBuilders;
    /// Days since the Unix epoch (of `hour`).
    type Partition = u64;

    fn arrow_schema() -> SchemaRef {
        let column = |name: &str, data_type: DataType| Field::new(name, data_type, true);
        Arc::new(ArrowSchema::new(vec![
            column("accountId", DataType::Utf8),
            column("hour", utc_micros()),
            column("count", DataType::Int64),
            column("labelled", DataType::Int64),
            column("correct", DataType::Int64),
            column("falsePositives", DataType::Int64),
            column("falseNegatives", DataType::Int64),
            column("truePredictionRate", DataType::Float64),
            column("operation", DataType::Utf8),
            column("changedAt", utc_micros()),
        ]))
    }

    fn partition_columns() -> &'static [&'static str] {
        &["date"]
    }

    #[inline]
    fn partition(&self) -> u64 {
        day_of(self.0.hour)
    }

    fn partition_values(day: &u64) -> Vec<Option<String>> {
        date_partition_values(*day)
    }

    fn new_builders(capacity: usize) -> QualityBuilders {
        let times = || TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC");
        let longs = || Int64Builder::with_capacity(capacity);
        QualityBuilders {
            account_id: StringBuilder::with_capacity(capacity, capacity * 8),
            hour: times(),
            counts: [longs(), longs(), longs(), longs(), longs()],
            rate: Float64Builder::with_capacity(capacity),
            operation: StringBuilder::with_capacity(capacity, capacity * 6),
            changed_at: times(),
        }
    }

    fn append(&self, b: &mut QualityBuilders) {
        let c = &self.0;
        let f = &c.figures;
        b.account_id.append_value(&c.account_id);
        b.hour.append_value(micros(c.hour));
        let counts = [
            f.count,
            f.labelled.total(),
            f.labelled.correct(),
            f.labelled.false_positives,
            f.labelled.false_negatives,
        ];
        for (builder, n) in b.counts.iter_mut().zip(counts) {
            builder.append_value(i64::try_from(n).unwrap_or(i64::MAX));
        }
        b.rate.append_option(f.labelled.accuracy());
        b.operation
            .append_value(if c.insert { "insert" } else { "delete" });
        b.changed_at.append_value(micros(c.at));
    }

    fn finish(b: &mut QualityBuilders) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(b.account_id.finish()), Arc::new(b.hour.finish())];
        columns.extend(
            b.counts
                .iter_mut()
                .map(|c| Arc::new(c.finish()) as ArrayRef),
        );
        columns.extend::<[ArrayRef; 3]>([
            Arc::new(b.rate.finish()),
            Arc::new(b.operation.finish()),
            Arc::new(b.changed_at.finish()),
        ]);
        RecordBatch::try_new(Self::arrow_schema(), columns)
    }
}
