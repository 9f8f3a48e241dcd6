//! Rows that append themselves to Arrow builders.
//!
//! The data file writer ([`super::file_writer`]) writes any record type that implements
//! [`ArrowRows`]: the type names its Arrow schema (the data file's columns) and its
//! partition columns, and knows how to append itself to a set of column builders. The
//! Delta schema of a table of such rows is derived from those two
//! ([`Schema::of_rows`](crate::delta::Schema::of_rows)), so a row type declares its
//! columns once. So `sinks` knows nothing of fraud; the runtime implements the trait
//! for its enriched transactions.
//!
//! Partitioning is split in two so the per-row cost stays small: [`ArrowRows::partition`]
//! returns a cheap, ordered key (for a `date` partition, the day number), and
//! [`ArrowRows::partition_values`] turns a key into the strings the Delta log stores
//! once per file, not once per row.

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// A record type that writes itself into Arrow column builders.
///
/// The data file's columns ([`arrow_schema`](ArrowRows::arrow_schema)) are the table's
/// columns without the partition columns, which a table has after them.
///
/// Event times must be `Timestamp(Microsecond, Some("UTC"))` in Arrow (`timestamp` in
/// Delta), which Parquet stores as INT64 `TIMESTAMP(MICROS, isAdjustedToUTC=true)`:
/// the one timestamp encoding every Delta reader handles.
pub trait ArrowRows: Sized + 'static {
    /// Column builders for a batch of these rows.
    type Builders: Send;

    /// A row's partition: a cheap key ordered like the partition values (e.g. the day
    /// number for a `date` partition). Rows with equal keys go to the same files.
    type Partition: Clone + Ord + Send;

    /// The Arrow schema of the data file (partition columns excluded).
    fn arrow_schema() -> SchemaRef;

    /// Partition column names, in order (empty for an unpartitioned table).
    fn partition_columns() -> &'static [&'static str];

    /// This row's partition.
    fn partition(&self) -> Self::Partition;

    /// The partition values of `partition`, one per partition column, as the Delta log
    /// stores them (`date` as `yyyy-MM-dd`); `None` is a null value.
    fn partition_values(partition: &Self::Partition) -> Vec<Option<String>>;

    /// Empty builders with room for `capacity` rows.
    fn new_builders(capacity: usize) -> Self::Builders;

    /// Appends this row (its data columns only) to `builders`.
    fn append(&self, builders: &mut Self::Builders);

    /// The rows appended so far, as a batch of [`arrow_schema`](ArrowRows::arrow_schema);
    /// leaves `builders` empty and ready for more rows.
    fn finish(builders: &mut Self::Builders) -> Result<RecordBatch, ArrowError>;

    /// `rows` as one batch (a convenience over `new_builders`, `append` and `finish`).
    fn to_batch<'a>(rows: impl IntoIterator<Item = &'a Self>) -> Result<RecordBatch, ArrowError> {
        let rows = rows.into_iter();
        let mut builders = Self::new_builders(rows.size_hint().0);
        for row in rows {
            row.append(&mut builders);
        }
        Self::finish(&mut builders)
    }
}

/// Row types for the tests of this crate.
#[cfg(test)]
pub(crate) mod test_rows {
    use std::sync::Arc;

    use arrow::array::{
        BooleanBuilder, Float64Builder, StringBuilder, TimestampMicrosecondBuilder,
    };
    use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, TimeUnit};

    use super::*;

    /// The seed's `transactions` row: `dt` (µs, UTC), `accountId`, `amount`, `alert`,
    /// partitioned by `date` = `yyyy-MM-dd` of `dt` in UTC.
    #[derive(Clone, Debug, PartialEq)]
    pub(crate) struct TestRow {
        pub dt_micros: i64,
        pub account_id: String,
        pub amount: f64,
        pub alert: bool,
    }

    pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

    /// `yyyy-MM-dd` of day `days` since the epoch.
    pub(crate) fn date_of_day(days: i64) -> String {
        chrono::DateTime::from_timestamp(days * 86_400, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    }

    pub(crate) struct TestBuilders {
        dt: TimestampMicrosecondBuilder,
        account_id: StringBuilder,
        amount: Float64Builder,
        alert: BooleanBuilder,
    }

    impl ArrowRows for TestRow {
        type Builders = TestBuilders;
        type Partition = i64;

        fn arrow_schema() -> SchemaRef {
            Arc::new(ArrowSchema::new(vec![
                Field::new(
                    "dt",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    true,
                ),
                Field::new("accountId", DataType::Utf8, true),
                Field::new("amount", DataType::Float64, true),
                Field::new("alert", DataType::Boolean, true),
            ]))
        }

        fn partition_columns() -> &'static [&'static str] {
            &["date"]
        }

        fn partition(&self) -> i64 {
            self.dt_micros.div_euclid(MICROS_PER_DAY)
        }

        fn partition_values(day: &i64) -> Vec<Option<String>> {
            vec![Some(date_of_day(*day))]
        }

        fn new_builders(capacity: usize) -> TestBuilders {
            TestBuilders {
                dt: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
                account_id: StringBuilder::with_capacity(capacity, capacity * 8),
                amount: Float64Builder::with_capacity(capacity),
                alert: BooleanBuilder::with_capacity(capacity),
            }
        }

        fn append(&self, b: &mut TestBuilders) {
            b.dt.append_value(self.dt_micros);
            b.account_id.append_value(&self.account_id);
            b.amount.append_value(self.amount);
            b.alert.append_value(self.alert);
        }

        fn finish(b: &mut TestBuilders) -> Result<RecordBatch, ArrowError> {
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

    #[test]
    fn test_rows_build_batches_of_the_seed_schema() {
        let rows = [
            TestRow {
                dt_micros: 1_714_521_600_000_001,
                account_id: "a".into(),
                amount: 1.5,
                alert: false,
            },
            TestRow {
                dt_micros: 1_714_608_000_000_000,
                account_id: "b".into(),
                amount: 600.0,
                alert: true,
            },
        ];
        let batch = TestRow::to_batch(&rows).expect("batch");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), TestRow::arrow_schema());
        assert_eq!(
            rows.iter()
                .map(|r| TestRow::partition_values(&r.partition()))
                .collect::<Vec<_>>(),
            [
                vec![Some("2024-05-01".to_owned())],
                vec![Some("2024-05-02".to_owned())]
            ]
        );
        // The builders are reusable after finish.
        let mut builders = TestRow::new_builders(1);
        rows[0].append(&mut builders);
        assert_eq!(TestRow::finish(&mut builders).expect("batch").num_rows(), 1);
        assert_eq!(TestRow::finish(&mut builders).expect("batch").num_rows(), 0);
    }
}
