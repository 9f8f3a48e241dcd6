//! Windows through the pipeline API, into Delta tables: every account's spend per hour
//! (tumbling windows) and its sessions (runs of transactions less than 30 minutes
//! apart: how many, and their spend), on 200 000 generated transactions of 20 000
//! accounts over about three hours of event time, on 2 workers. Written to
//! `spend_per_hour` and `sessions` under the directory given (default: a fresh one in
//! the temp directory), exactly once per window, readable by any Delta reader.
//!
//! `cargo run --release --example windows [DIR]`

use std::sync::Arc;

use arrow::array::{
    Float64Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use tidelake_operators::window::{Fold, Sum, WindowFunction, WindowResult, Windows};
use tidelake_operators::{AccountId, Transaction};
use tidelake_runtime::sources::generator::GeneratorConfig;
use tidelake_runtime::{Events, Job, JobConfig, Pipeline, SourceConfig, Stage, TableDecl};
use tidelake_sinks::parquet::ArrowRows;

const HOUR: u64 = 3_600_000;
const SESSION_GAP: u64 = 30 * 60_000;

/// Spend per hour and sessions per account.
struct SpendAndSessions;

impl Pipeline for SpendAndSessions {
    type Record = Transaction;

    fn settings(&self) -> Vec<(String, String)> {
        vec![(
            "--rule".to_owned(),
            "spend per hour and sessions".to_owned(),
        )]
    }

    fn tables(&self) -> Vec<TableDecl> {
        vec![
            TableDecl::of::<WindowRow>("spend_per_hour"),
            TableDecl::of::<WindowRow>("sessions"),
        ]
    }

    fn build<'s>(&self, stage: &Stage<'s, '_>, transactions: Events<'s, Transaction>) {
        let spend = WindowFunction::new(
            Windows::Tumbling { size: HOUR },
            Sum(|t: &Transaction| t.amount),
            0,
        );
        let (hourly, _) = stage.keyed("SpendPerHour", spend, transactions.clone());
        stage.table("spend_per_hour", hourly, |r| {
            WindowRow::of(r, |spend| (None, spend))
        });

        let sessions = WindowFunction::new(
            Windows::Session { gap: SESSION_GAP },
            Fold {
                init: (0u64, 0.0f64),
                step: |acc: &mut (u64, f64), t: &Transaction| {
                    acc.0 += 1;
                    acc.1 += t.amount;
                },
                combine: |acc, other| {
                    acc.0 += other.0;
                    acc.1 += other.1;
                },
            },
            0,
        );
        let (sessions, _) = stage.keyed("Sessions", sessions, transactions);
        stage.table("sessions", sessions, |r| {
            WindowRow::of(r, |(n, spend)| (Some(n), spend))
        });
    }
}

/// A window's row: `accountId`, `windowStart`, `windowEnd` (timestamps, UTC), the
/// number of transactions (sessions only), their `spend`, and its `firing`.
#[derive(Clone, Debug)]
struct WindowRow {
    account_id: AccountId,
    start: u64,
    end: u64,
    transactions: Option<u64>,
    spend: f64,
    firing: u32,
}

impl WindowRow {
    fn of<O>(r: WindowResult<AccountId, O>, value: impl Fn(O) -> (Option<u64>, f64)) -> Self {
        let (transactions, spend) = value(r.value);
        WindowRow {
            account_id: r.key,
            start: r.start,
            end: r.end,
            transactions,
            spend,
            firing: r.firing,
        }
    }
}

struct WindowBuilders {
    account_id: StringBuilder,
    start: TimestampMicrosecondBuilder,
    end: TimestampMicrosecondBuilder,
    transactions: Int64Builder,
    spend: Float64Builder,
    firing: Int32Builder,
}

impl ArrowRows for WindowRow {
    type Builders = WindowBuilders;
    type Partition = ();

    fn arrow_schema() -> SchemaRef {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("accountId", DataType::Utf8, true),
            Field::new("windowStart", utc.clone(), true),
            Field::new("windowEnd", utc, true),
            Field::new("transactions", DataType::Int64, true),
            Field::new("spend", DataType::Float64, true),
            Field::new("firing", DataType::Int32, true),
        ]))
    }

    fn partition_columns() -> &'static [&'static str] {
        &[]
    }

    fn partition(&self) {}

    fn partition_values(_: &()) -> Vec<Option<String>> {
        Vec::new()
    }

    fn new_builders(capacity: usize) -> WindowBuilders {
        WindowBuilders {
            account_id: StringBuilder::with_capacity(capacity, capacity * 8),
            start: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            end: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            transactions: Int64Builder::with_capacity(capacity),
            spend: Float64Builder::with_capacity(capacity),
            firing: Int32Builder::with_capacity(capacity),
        }
    }

    fn append(&self, b: &mut WindowBuilders) {
        let micros = |ms: u64| i64::try_from(ms).unwrap_or(i64::MAX / 1_000) * 1_000;
        b.account_id.append_value(&self.account_id);
        b.start.append_value(micros(self.start));
        b.end.append_value(micros(self.end));
        b.transactions
            .append_option(self.transactions.and_then(|n| i64::try_from(n).ok()));
        b.spend.append_value(self.spend);
        b.firing
            .append_value(i32::try_from(self.firing).unwrap_or(i32::MAX));
    }

    fn finish(b: &mut WindowBuilders) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(
            Self::arrow_schema(),
            vec![
                Arc::new(b.account_id.finish()),
                Arc::new(b.start.finish()),
                Arc::new(b.end.finish()),
                Arc::new(b.transactions.finish()),
                Arc::new(b.spend.finish()),
                Arc::new(b.firing.finish()),
            ],
        )
    }
}

fn main() -> anyhow::Result<()> {
    let dir = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("tidelake-windows-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let generator = GeneratorConfig {
        count: Some(200_000),
        accounts: 20_000,
        density: 20,
        ..GeneratorConfig::default()
    };
    let mut config = JobConfig::new(SourceConfig::Generator(generator));
    config.workers = 2;
    config.dead_letters = dir.join("dead-letters.jsonl");
    for table in ["spend_per_hour", "sessions"] {
        let location = dir.join(table).to_string_lossy().into_owned();
        config.lake.tables.insert(table.to_owned(), location);
    }
    let report = Job::with_pipeline(config, Arc::new(SpendAndSessions))?.run()?;
    eprintln!(
        "{} events, {} commits; tables spend_per_hour and sessions in {}",
        report.totals.events,
        report.totals.commits,
        dir.display()
    );
    Ok(())
}
