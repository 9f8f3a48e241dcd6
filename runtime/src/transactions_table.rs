//! The `transactions` table (docs/semantics.md §1): how an enriched transaction becomes a row —
//! `dt` (timestamp, µs, UTC), `accountId`, `amount`, `alert`, partitioned by `date`
//! (`yyyy-MM-dd` of `dt` in UTC).

use std::sync::Arc;

use arrow::array::{BooleanBuilder, Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use tidelake_operators::EnrichedTransaction;
use tidelake_sinks::parquet::ArrowRows;

const MILLIS_PER_DAY: u64 = 86_400_000;

/// The Arrow type of event-time columns: `Timestamp(Microsecond, "UTC")`, which Parquet
/// stores as INT64 `TIMESTAMP(MICROS, isAdjustedToUTC=true)` and Delta reads as
/// `timestamp` (shared by every table of the job).
pub(crate) fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Event time `ts` (ms since the epoch) in µs, as event-time columns store it.
#[inline]
pub(crate) fn micros(ts: u64) -> i64 {
    // ts < year 10000 (validated at the source), so micros fit in i64.
    ts as i64 * 1_000
}

/// The `date` partition of event time `ts` (ms): days since the Unix epoch, UTC.
#[inline]
pub(crate) fn day_of(ts: u64) -> u64 {
    ts / MILLIS_PER_DAY
}

/// The partition values of a `date` partition: day `day` since the epoch as
/// `yyyy-MM-dd`.
pub(crate) fn date_partition_values(day: u64) -> Vec<Option<String>> {
    vec![i64::try_from(day).ok().and_then(date_text)]
}

/// Day `day` since the Unix epoch as `yyyy-MM-dd`, if it is a date chrono knows.
pub(crate) fn date_text(day: i64) -> Option<String> {
    day.checked_mul(86_400)
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map(|t| t.format("%Y-%m-%d").to_string())
}

/// An enriched transaction as a row of the `transactions` table.
#[derive(Clone, Debug, PartialEq)]
pub struct TransactionRow(pub EnrichedTransaction);

/// Column builders for [`TransactionRow`]s.
pub struct TransactionBuilders {
    dt: TimestampMicrosecondBuilder,
    account_id: StringBuilder,
    amount: Float64Builder,
    alert: BooleanBuilder,
}

impl ArrowRows for TransactionRow {
    type Builders = TransactionBuilders;
    /// Days since the Unix epoch.
    type Partition = u64;

    fn arrow_schema() -> SchemaRef {
        Arc::new(ArrowSchema::new(vec![
            Field::new("dt", utc_micros(), true),
            Field::new("accountId", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("alert", DataType::Boolean, true),
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

    fn new_builders(capacity: usize) -> TransactionBuilders {
        TransactionBuilders {
            dt: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            account_id: StringBuilder::with_capacity(capacity, capacity * 8),
            amount: Float64Builder::with_capacity(capacity),
            alert: BooleanBuilder::with_capacity(capacity),
        }
    }

    #[inline]
    fn append(&self, b: &mut TransactionBuilders) {
        b.dt.append_value(micros(self.0.ts));
        b.account_id.append_value(&self.0.account_id);
        b.amount.append_value(self.0.amount);
        b.alert.append_value(self.0.alert);
    }

    fn finish(b: &mut TransactionBuilders) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(
            Self::arrow_schema(),
            vec![
                Arc::new(b.dt.finish()),
                Arc::new(b.account_id.finish()),
                Arc::new(b.amount.finish()),
                Arc::new(b.alert.finish()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::{AsArray, RecordBatchReader};
    use arrow::datatypes::{Float64Type, TimestampMicrosecondType};
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use tidelake_operators::AccountId;
    use tidelake_sinks::parquet::{DataFileWriter, WriterOptions};

    use super::*;

    fn row(account: &str, ts: u64, amount: f64, alert: bool) -> TransactionRow {
        TransactionRow(EnrichedTransaction {
            account_id: AccountId::from(account),
            ts,
            amount,
            alert,
        })
    }

    #[test]
    fn rows_are_partitioned_by_utc_date_and_written_as_the_seed_schema() {
        // 2024-05-01T23:59:59.999Z and 2024-05-02T00:00:00.000Z.
        let rows = vec![
            row("3", 1_714_607_999_999, 0.5, false),
            row("3", 1_714_608_000_000, 871.15, true),
            row("7", 1_714_608_000_001, 12.0, false),
        ];
        let dates: Vec<_> = rows
            .iter()
            .map(|r| TransactionRow::partition_values(&r.partition()))
            .collect();
        assert_eq!(
            dates,
            [
                vec![Some("2024-05-01".to_owned())],
                vec![Some("2024-05-02".to_owned())],
                vec![Some("2024-05-02".to_owned())]
            ]
        );

        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let adds = runtime.block_on(async {
            let mut writer = DataFileWriter::<TransactionRow>::new(
                Arc::clone(&store),
                Path::default(),
                0,
                WriterOptions::default(),
            )
            .expect("the row type matches the table schema");
            writer.write(&rows).await.expect("write");
            writer.finish().await.expect("finish")
        });
        let mut by_date: BTreeMap<String, Vec<(i64, String, f64, bool)>> = BTreeMap::new();
        for add in &adds {
            let date = add.partition_values["date"].clone().expect("date");
            let bytes = runtime.block_on(async {
                let path = Path::parse(&add.path).expect("path");
                store
                    .get(&path)
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("bytes")
            });
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .expect("parquet")
                .build()
                .expect("reader");
            assert_eq!(
                reader.schema().fields().len(),
                4,
                "no date column in the file"
            );
            for batch in reader {
                let batch = batch.expect("batch");
                let dt = batch.column(0).as_primitive::<TimestampMicrosecondType>();
                let account = batch.column(1).as_string::<i32>();
                let amount = batch.column(2).as_primitive::<Float64Type>();
                let alert = batch.column(3).as_boolean();
                for i in 0..batch.num_rows() {
                    by_date.entry(date.clone()).or_default().push((
                        dt.value(i),
                        account.value(i).to_owned(),
                        amount.value(i),
                        alert.value(i),
                    ));
                }
            }
        }
        assert_eq!(
            by_date,
            BTreeMap::from([
                (
                    "2024-05-01".to_owned(),
                    vec![(1_714_607_999_999_000, "3".to_owned(), 0.5, false)]
                ),
                (
                    "2024-05-02".to_owned(),
                    vec![
                        (1_714_608_000_000_000, "3".to_owned(), 871.15, true),
                        (1_714_608_000_001_000, "7".to_owned(), 12.0, false)
                    ]
                ),
            ])
        );
    }
}
