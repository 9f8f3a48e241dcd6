//! The velocity job's `alerts` table: how a velocity alert becomes a row — `accountId`,
//! `dt` (timestamp, µs, UTC: the event time of the transaction that crossed the limit),
//! `count` (the account's transactions in the window ending at it), partitioned by
//! `date` (`yyyy-MM-dd` of `dt` in UTC, as in the `transactions` table).

use std::sync::Arc;

use arrow::array::{Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use tidelake_operators::VelocityAlert;
use tidelake_sinks::parquet::ArrowRows;

use crate::transactions_table::{date_partition_values, day_of, micros, utc_micros};

/// A velocity alert as a row of the velocity job's `alerts` table.
#[derive(Clone, Debug, PartialEq)]
pub struct VelocityAlertRow(pub VelocityAlert);

/// Column builders for [`VelocityAlertRow`]s.
pub struct VelocityAlertBuilders {
    account_id: StringBuilder,
    dt: TimestampMicrosecondBuilder,
    count: Int64Builder,
}

impl ArrowRows for VelocityAlertRow {
    type Builders = VelocityAlertBuilders;
    /// Days since the Unix epoch (of `dt`).
    type Partition = u64;

    fn arrow_schema() -> SchemaRef {
        Arc::new(ArrowSchema::new(vec![
            Field::new("accountId", DataType::Utf8, true),
            Field::new("dt", utc_micros(), true),
            Field::new("count", DataType::Int64, true),
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

    fn new_builders(capacity: usize) -> VelocityAlertBuilders {
        VelocityAlertBuilders {
            account_id: StringBuilder::with_capacity(capacity, capacity * 8),
            dt: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            count: Int64Builder::with_capacity(capacity),
        }
    }

    #[inline]
    fn append(&self, b: &mut VelocityAlertBuilders) {
        b.account_id.append_value(&self.0.account_id);
        b.dt.append_value(micros(self.0.ts));
        // A count of transactions in a window never nears i64::MAX.
        b.count
            .append_value(i64::try_from(self.0.count).unwrap_or(i64::MAX));
    }

    fn finish(b: &mut VelocityAlertBuilders) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(
            Self::arrow_schema(),
            vec![
                Arc::new(b.account_id.finish()),
                Arc::new(b.dt.finish()),
                Arc::new(b.count.finish()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use tidelake_sinks::delta::Schema;

    use super::*;

    #[test]
    fn the_delta_schema_is_derived_from_the_arrow_columns() {
        let delta: Vec<_> = Schema::of_rows::<VelocityAlertRow>()
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.data_type.as_str().map(str::to_owned)))
            .collect();
        assert_eq!(
            delta,
            [
                ("accountId", "string"),
                ("dt", "timestamp"),
                ("count", "long"),
                ("date", "string")
            ]
            .map(|(n, t)| (n.to_owned(), Some(t.to_owned())))
        );
    }
}
