//! The `features` table (docs/semantics.md §2, "History features"): every transaction of
//! the features job with the fraud rule's verdict and its history features — `dt`
//! (timestamp, µs, UTC), `accountId`, `amount`, `merchant`, `country`, `label` (1, 0 or
//! null), `ruleAlert`, `txCount1h`, `txSum1h`, `txCount24h`, `txSum24h`, `txCount30d`,
//! `txSum30d`, `msSincePrev`, `prevAmount`, `countries24h`, and from the account's
//! reference data valid at `dt` (docs/semantics.md §2, "Reference data"):
//! `foreignCountry` (the country differs from the home country, when both are known),
//! `homeCountry`, `birthYear`, `creditLimit` (null without `--accounts` or for an unknown
//! account) — partitioned by `date` (`yyyy-MM-dd` of `dt` in UTC).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use tidelake_operators::history::Featured;

use crate::reference::as_of_join::WithAccount;
use tidelake_sinks::parquet::ArrowRows;

use crate::transactions_table::{date_partition_values, day_of, micros, utc_micros};

/// A transaction with its features and account, as a row of the `features` table.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureRow(pub WithAccount<Featured>);

/// The columns of a transaction with the rule's verdict — `dt`, `accountId`, `amount`,
/// `merchant`, `country`, `label`, `ruleAlert` — that the `features` and
/// `fraud_predictions` tables begin with.
pub(crate) struct VerdictColumns {
    dt: TimestampMicrosecondBuilder,
    account_id: StringBuilder,
    amount: Float64Builder,
    merchant: StringBuilder,
    country: StringBuilder,
    label: Int32Builder,
    rule_alert: BooleanBuilder,
}

impl VerdictColumns {
    /// The columns' fields.
    pub(crate) fn fields() -> Vec<Field> {
        let column = |name: &str, data_type: DataType| Field::new(name, data_type, true);
        vec![
            column("dt", utc_micros()),
            column("accountId", DataType::Utf8),
            column("amount", DataType::Float64),
            column("merchant", DataType::Utf8),
            column("country", DataType::Utf8),
            column("label", DataType::Int32),
            column("ruleAlert", DataType::Boolean),
        ]
    }

    pub(crate) fn with_capacity(capacity: usize) -> Self {
        VerdictColumns {
            dt: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            account_id: StringBuilder::with_capacity(capacity, capacity * 8),
            amount: Float64Builder::with_capacity(capacity),
            merchant: StringBuilder::with_capacity(capacity, capacity * 8),
            country: StringBuilder::with_capacity(capacity, capacity * 2),
            label: Int32Builder::with_capacity(capacity),
            rule_alert: BooleanBuilder::with_capacity(capacity),
        }
    }

    #[inline]
    pub(crate) fn append(&mut self, featured: &Featured) {
        let tx = &featured.tx;
        self.dt.append_value(micros(tx.ts));
        self.account_id.append_value(&tx.account_id);
        self.amount.append_value(tx.amount);
        self.merchant.append_option(tx.merchant.as_deref());
        self.country
            .append_option(tx.country.as_ref().map(|c| c.as_str()));
        self.label.append_option(tx.label.map(i32::from));
        self.rule_alert.append_value(featured.rule_alert);
    }

    pub(crate) fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.dt.finish()),
            Arc::new(self.account_id.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.merchant.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.label.finish()),
            Arc::new(self.rule_alert.finish()),
        ]
    }
}

/// Column builders for [`FeatureRow`]s.
pub struct FeatureBuilders {
    verdict: VerdictColumns,
    counts: [Int32Builder; 3],
    sums: [Float64Builder; 3],
    ms_since_prev: Int64Builder,
    prev_amount: Float64Builder,
    countries_24h: Int32Builder,
    foreign_country: BooleanBuilder,
    home_country: StringBuilder,
    birth_year: Int32Builder,
    credit_limit: Float64Builder,
}

impl ArrowRows for FeatureRow {
    type Builders = FeatureBuilders;
    /// Days since the Unix epoch.
    type Partition = u64;

    fn arrow_schema() -> SchemaRef {
        let column = |name: &str, data_type: DataType| Field::new(name, data_type, true);
        let mut fields = VerdictColumns::fields();
        fields.extend([
            column("txCount1h", DataType::Int32),
            column("txSum1h", DataType::Float64),
            column("txCount24h", DataType::Int32),
            column("txSum24h", DataType::Float64),
            column("txCount30d", DataType::Int32),
            column("txSum30d", DataType::Float64),
            column("msSincePrev", DataType::Int64),
            column("prevAmount", DataType::Float64),
            column("countries24h", DataType::Int32),
            column("foreignCountry", DataType::Boolean),
            column("homeCountry", DataType::Utf8),
            column("birthYear", DataType::Int32),
            column("creditLimit", DataType::Float64),
        ]);
        Arc::new(ArrowSchema::new(fields))
    }

    fn partition_columns() -> &'static [&'static str] {
        &["date"]
    }

    #[inline]
    fn partition(&self) -> u64 {
        day_of(self.0.record.tx.ts)
    }

    fn partition_values(day: &u64) -> Vec<Option<String>> {
        date_partition_values(*day)
    }

    fn new_builders(capacity: usize) -> FeatureBuilders {
        let ints = || Int32Builder::with_capacity(capacity);
        let doubles = || Float64Builder::with_capacity(capacity);
        FeatureBuilders {
            verdict: VerdictColumns::with_capacity(capacity),
            counts: [ints(), ints(), ints()],
            sums: [doubles(), doubles(), doubles()],
            ms_since_prev: Int64Builder::with_capacity(capacity),
            prev_amount: doubles(),
            countries_24h: ints(),
            foreign_country: BooleanBuilder::with_capacity(capacity),
            home_country: StringBuilder::with_capacity(capacity, capacity * 2),
            birth_year: ints(),
            credit_limit: doubles(),
        }
    }

    fn append(&self, b: &mut FeatureBuilders) {
        let WithAccount { record, account } = &self.0;
        b.verdict.append(record);
        let (tx, f) = (&record.tx, &record.features);
        let windows = [
            (f.tx_count_1h, f.tx_sum_1h),
            (f.tx_count_24h, f.tx_sum_24h),
            (f.tx_count_30d, f.tx_sum_30d),
        ];
        for (i, (count, sum)) in windows.into_iter().enumerate() {
            b.counts[i].append_value(i32::try_from(count).unwrap_or(i32::MAX));
            b.sums[i].append_value(sum);
        }
        b.ms_since_prev.append_option(
            f.ms_since_prev
                .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        );
        b.prev_amount.append_option(f.prev_amount);
        b.countries_24h.append_option(
            f.countries_24h
                .map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        );
        let home = account.as_ref().and_then(|a| a.home_country);
        b.foreign_country
            .append_option(tx.country.zip(home).map(|(c, h)| c != h));
        b.home_country
            .append_option(home.as_ref().map(|c| c.as_str()));
        b.birth_year
            .append_option(account.as_ref().and_then(|a| a.birth_year));
        b.credit_limit
            .append_option(account.as_ref().and_then(|a| a.credit_limit).map(|l| l.0));
    }

    fn finish(b: &mut FeatureBuilders) -> Result<RecordBatch, ArrowError> {
        let [c1, c24, c30] = &mut b.counts;
        let [s1, s24, s30] = &mut b.sums;
        let mut columns = b.verdict.finish();
        columns.extend::<[ArrayRef; 13]>([
            Arc::new(c1.finish()),
            Arc::new(s1.finish()),
            Arc::new(c24.finish()),
            Arc::new(s24.finish()),
            Arc::new(c30.finish()),
            Arc::new(s30.finish()),
            Arc::new(b.ms_since_prev.finish()),
            Arc::new(b.prev_amount.finish()),
            Arc::new(b.countries_24h.finish()),
            Arc::new(b.foreign_country.finish()),
            Arc::new(b.home_country.finish()),
            Arc::new(b.birth_year.finish()),
            Arc::new(b.credit_limit.finish()),
        ]);
        RecordBatch::try_new(Self::arrow_schema(), columns)
    }
}
