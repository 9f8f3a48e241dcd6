//! The `alerts` table (docs/semantics.md §1): how an alert becomes a row — `accountId`, `dt`
//! (timestamp, µs, UTC: the large transaction's event time), `smallDt` (the small transaction's
//! event time), `smallAmount`, `largeAmount`, partitioned by `date` (`yyyy-MM-dd` of
//! `dt` in UTC, as in the `transactions` table).

use std::sync::Arc;

use arrow::array::{Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use tidelake_operators::Alert;
use tidelake_sinks::parquet::ArrowRows;

use crate::transactions_table::{date_partition_values, day_of, micros, utc_micros};

/// An alert as a row of the `alerts` table.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRow(pub Alert);

/// Column builders for [`AlertRow`]s.
pub struct AlertBuilders {
    account_id: StringBuilder,
    dt: TimestampMicrosecondBuilder,
    small_dt: TimestampMicrosecondBuilder,
    small_amount: Float64Builder,
    large_amount: Float64Builder,
}

impl ArrowRows for AlertRow {
    type Builders = AlertBuilders;
    /// Days since the Unix epoch (of `dt`).
    type Partition = u64;

    fn arrow_schema() -> SchemaRef {
        Arc::new(ArrowSchema::new(vec![
            Field::new("accountId", DataType::Utf8, true),
            Field::new("dt", utc_micros(), true),
            Field::new("smallDt", utc_micros(), true),
            Field::new("smallAmount", DataType::Float64, true),
            Field::new("largeAmount", DataType::Float64, true),
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

    fn new_builders(capacity: usize) -> AlertBuilders {
        AlertBuilders {
            account_id: StringBuilder::with_capacity(capacity, capacity * 8),
            dt: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            small_dt: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            small_amount: Float64Builder::with_capacity(capacity),
            large_amount: Float64Builder::with_capacity(capacity),
        }
    }

    #[inline]
    fn append(&self, b: &mut AlertBuilders) {
        b.account_id.append_value(&self.0.account_id);
        b.dt.append_value(micros(self.0.ts));
        b.small_dt.append_value(micros(self.0.small_ts));
        b.small_amount.append_value(self.0.small_amount);
        b.large_amount.append_value(self.0.large_amount);
    }

    fn finish(b: &mut AlertBuilders) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(
            Self::arrow_schema(),
            vec![
                Arc::new(b.account_id.finish()),
                Arc::new(b.dt.finish()),
                Arc::new(b.small_dt.finish()),
                Arc::new(b.small_amount.finish()),
                Arc::new(b.large_amount.finish()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::{AsArray, RecordBatchReader};
    use arrow::datatypes::{Float64Type, TimeUnit, TimestampMicrosecondType};
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use tidelake_operators::AccountId;
    use tidelake_sinks::delta::Schema;
    use tidelake_sinks::parquet::{DataFileWriter, WriterOptions};

    use super::*;

    fn alert(account: &str, ts: u64, small_ts: u64, small: f64, large: f64) -> AlertRow {
        AlertRow(Alert {
            account_id: AccountId::from(account),
            ts,
            small_ts,
            small_amount: small,
            large_amount: large,
        })
    }

    /// (dt µs, accountId, smallDt µs, smallAmount, largeAmount) of a file's rows.
    type Values = (i64, String, i64, f64, f64);

    #[test]
    fn alerts_schema_is_the_spec_table_with_utc_micros_timestamps() {
        let arrow = AlertRow::arrow_schema();
        let columns: Vec<_> = arrow
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect();
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(
            columns,
            [
                ("accountId", DataType::Utf8),
                ("dt", utc.clone()),
                ("smallDt", utc),
                ("smallAmount", DataType::Float64),
                ("largeAmount", DataType::Float64),
            ]
        );
        let delta: Vec<_> = Schema::of_rows::<AlertRow>()
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.data_type.as_str().map(str::to_owned)))
            .collect();
        assert_eq!(
            delta,
            [
                ("accountId", "string"),
                ("dt", "timestamp"),
                ("smallDt", "timestamp"),
                ("smallAmount", "double"),
                ("largeAmount", "double"),
                ("date", "string"),
            ]
            .map(|(n, t)| (n.to_owned(), Some(t.to_owned())))
        );
        assert_eq!(AlertRow::partition_columns(), ["date"]);
    }

    #[test]
    fn alerts_are_partitioned_by_the_utc_date_of_the_large_transaction() {
        // The small transaction on 2024-05-01, the large one on 2024-05-02 at midnight:
        // the alert belongs to 2024-05-02. Also the epoch's first day.
        let rows = [
            alert("3", 1_714_608_000_000, 1_714_607_990_000, 0.5, 871.15),
            alert("3", 1_714_607_999_999, 1_714_607_950_000, 0.99, 500.01),
            alert("e", 0, 0, 0.01, 600.0),
        ];
        let dates: Vec<_> = rows
            .iter()
            .map(|r| AlertRow::partition_values(&r.partition()))
            .collect();
        assert_eq!(
            dates,
            [
                vec![Some("2024-05-02".to_owned())],
                vec![Some("2024-05-01".to_owned())],
                vec![Some("1970-01-01".to_owned())],
            ]
        );
    }

    #[test]
    fn alerts_are_written_as_parquet_files_per_date() {
        let rows = vec![
            alert("3", 1_714_608_000_000, 1_714_607_990_000, 0.5, 871.15),
            alert("7", 1_714_608_000_123, 1_714_607_999_999, 0.99, 500.01),
            alert(
                "acct-ü",
                1_714_607_999_999,
                1_714_607_950_000,
                0.01,
                1_000.0,
            ),
        ];
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let adds = runtime.block_on(async {
            let mut writer = DataFileWriter::<AlertRow>::new(
                Arc::clone(&store),
                Path::default(),
                0,
                WriterOptions::default(),
            )
            .expect("the row type matches the table schema");
            writer.write(&rows).await.expect("write");
            writer.finish().await.expect("finish")
        });
        let mut by_date: BTreeMap<String, Vec<Values>> = BTreeMap::new();
        for add in &adds {
            let date = add.partition_values["date"].clone().expect("date");
            assert!(
                add.path.starts_with(&format!("date={date}/")),
                "{}",
                add.path
            );
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
            assert_eq!(reader.schema(), AlertRow::arrow_schema(), "no date column");
            for batch in reader {
                let batch = batch.expect("batch");
                let account = batch.column(0).as_string::<i32>();
                let dt = batch.column(1).as_primitive::<TimestampMicrosecondType>();
                let small_dt = batch.column(2).as_primitive::<TimestampMicrosecondType>();
                let small = batch.column(3).as_primitive::<Float64Type>();
                let large = batch.column(4).as_primitive::<Float64Type>();
                for i in 0..batch.num_rows() {
                    by_date.entry(date.clone()).or_default().push((
                        dt.value(i),
                        account.value(i).to_owned(),
                        small_dt.value(i),
                        small.value(i),
                        large.value(i),
                    ));
                }
            }
        }
        assert_eq!(
            by_date,
            BTreeMap::from([
                (
                    "2024-05-01".to_owned(),
                    vec![(
                        1_714_607_999_999_000,
                        "acct-ü".to_owned(),
                        1_714_607_950_000_000,
                        0.01,
                        1_000.0
                    )]
                ),
                (
                    "2024-05-02".to_owned(),
                    vec![
                        (
                            1_714_608_000_000_000,
                            "3".to_owned(),
                            1_714_607_990_000_000,
                            0.5,
                            871.15
                        ),
                        (
                            1_714_608_000_123_000,
                            "7".to_owned(),
                            1_714_607_999_999_000,
                            0.99,
                            500.01
                        )
                    ]
                ),
            ])
        );
        // The stats the log will carry: exact bounds of both timestamps (floored to ms).
        let may_2 = adds
            .iter()
            .find(|a| a.partition_values["date"].as_deref() == Some("2024-05-02"))
            .map(|a| a.stats.as_str())
            .expect("stats of 2024-05-02");
        let stats: serde_json::Value = serde_json::from_str(may_2).expect("stats JSON");
        assert_eq!(stats["numRecords"], 2);
        assert_eq!(stats["minValues"]["dt"], "2024-05-02T00:00:00.000Z");
        assert_eq!(stats["maxValues"]["dt"], "2024-05-02T00:00:00.123Z");
        assert_eq!(stats["minValues"]["smallDt"], "2024-05-01T23:59:50.000Z");
        assert_eq!(stats["maxValues"]["largeAmount"], 871.15);
    }
}
