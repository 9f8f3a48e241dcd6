//! Writing your own job (README, "Writing your own job"): a record type of its own, a
//! keyed rule with value state, map state and timers, a Delta table and dead letters,
//! on 2 workers, through the public pipeline API only.
//!
//! Card purchases arrive as JSON lines `{"card":"c1","merchant":"m7","ts":…,"amount":…}`
//! or as CSV files with the header `card,merchant,ts,amount` (a file ending in `.csv`).
//! The rule, *merchant hopping*: for each card, in `(ts, partition, sequence)` order, a
//! purchase alerts iff its merchant is not one the card used in the window before it
//! (purchases with `ts > its ts − WINDOW`) and, with it, the card has used at least
//! `MERCHANTS` different merchants in that window. Each alert carries that number and
//! how many alerts the card has had (itself included). Alerts go to the Delta table
//! `merchant_alerts` and as JSON lines to `alerts.jsonl`; a line that does not decode,
//! or whose amount is not a positive number, goes to `dead-letters.jsonl`. Input may be
//! out of order by up to a minute.
//!
//! `cargo run --example custom_rule -- OUT_DIR INPUT...`, or `… OUT_DIR
//! kafka://HOST:PORT/TOPIC` to read the purchases as JSON values of a Kafka topic, up to
//! its end when the job starts; `--commit-every-epoch` first commits each epoch on its
//! own (docs/semantics.md §5).

use std::convert::Infallible;
use std::sync::Arc;

use arrow::array::{Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use tidelake_operators::{
    Collector, Context, KeyState, KeyedProcessFunction, MapState, ValueState,
};
use tidelake_runtime::dead_letter::Reason;
use tidelake_runtime::sources::kafka::{KafkaConfig, KafkaFormat};
use tidelake_runtime::sources::split_size::SplitSize;
use tidelake_runtime::sources::{Source, SourceError, SourceRecord, decoded};
use tidelake_runtime::{
    AlertOutput, Events, Job, JobConfig, Pipeline, SourceConfig, Stage, TableDecl,
};
use tidelake_sinks::parquet::ArrowRows;

/// The window a card's merchants are counted in (ms).
const WINDOW: u64 = 10 * 60_000;
/// Different merchants within the window that alert.
const MERCHANTS: usize = 3;

/// A card purchase: the record type of this job.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Purchase {
    card: String,
    merchant: String,
    /// Event time, ms since the Unix epoch.
    ts: u64,
    amount: f64,
}

impl SourceRecord for Purchase {
    fn event_time(&self) -> u64 {
        self.ts
    }

    fn validate(&self) -> Result<(), (Reason, String)> {
        if self.amount.is_finite() && self.amount > 0.0 {
            Ok(())
        } else {
            Err((
                Reason::Invalid,
                format!("amount {} is not a positive number", self.amount),
            ))
        }
    }

    fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError> {
        decoded::source(config)
    }
}

/// A card that hopped between merchants.
#[derive(Clone, Debug, Serialize)]
struct HoppingAlert {
    card: String,
    merchant: String,
    ts: u64,
    /// Different merchants of the card in the window ending at this purchase.
    merchants: u64,
    /// This card's alerts so far, this one included.
    nth: u64,
}

/// Per card: the last time each merchant was used, and the number of alerts.
#[derive(Default, Serialize, Deserialize)]
struct CardState {
    last_used: MapState<String, u64>,
    alerts: ValueState<u64>,
}

impl KeyState for CardState {
    fn is_empty(&self) -> bool {
        self.last_used.is_empty() && self.alerts.is_empty()
    }
}

/// The merchant-hopping rule, as a Flink user would write a `KeyedProcessFunction`.
struct MerchantHopping;

impl KeyedProcessFunction for MerchantHopping {
    type Key = String;
    type Input = Purchase;
    type State = CardState;
    type Output = HoppingAlert;
    type SideOutput = Infallible;

    fn key(purchase: &Purchase) -> &String {
        &purchase.card
    }

    fn process_element(
        &mut self,
        ctx: &mut Context<'_, String, CardState>,
        purchase: Purchase,
        out: &mut Collector<'_, HoppingAlert, Infallible>,
    ) {
        let now = ctx.timestamp();
        let in_window = |last: u64| last + WINDOW > now;
        let state = ctx.state();
        let recent = state
            .last_used
            .iter()
            .filter(|(_, t)| in_window(**t))
            .count();
        let new = !state
            .last_used
            .get(&purchase.merchant)
            .is_some_and(|t| in_window(*t));
        state.last_used.put(purchase.merchant.clone(), now);
        if new && recent + 1 >= MERCHANTS {
            let nth = state.alerts.value().copied().unwrap_or(0) + 1;
            state.alerts.update(nth);
            out.emit(HoppingAlert {
                card: purchase.card,
                merchant: purchase.merchant,
                ts: purchase.ts,
                merchants: (recent + 1) as u64,
                nth,
            });
        }
        // Forget the merchant once it has left every window.
        ctx.timers().register(now + WINDOW);
    }

    fn on_timer(
        &mut self,
        ctx: &mut Context<'_, String, CardState>,
        time: u64,
        _out: &mut Collector<'_, HoppingAlert, Infallible>,
    ) {
        let last_used = &mut ctx.state().last_used;
        let gone: Vec<String> = last_used
            .iter()
            .filter(|(_, last)| **last + WINDOW <= time)
            .map(|(merchant, _)| merchant.clone())
            .collect();
        for merchant in gone {
            last_used.remove(&merchant);
        }
    }
}

/// The job: purchases keyed by card through the rule, its alerts to a Delta table.
struct MerchantHoppingJob;

impl Pipeline for MerchantHoppingJob {
    type Record = Purchase;

    fn settings(&self) -> Vec<(String, String)> {
        vec![(
            "--rule".to_owned(),
            format!("merchant hopping: {MERCHANTS} merchants within {WINDOW} ms"),
        )]
    }

    fn tables(&self) -> Vec<TableDecl> {
        vec![TableDecl::of::<AlertRow>("merchant_alerts")]
    }

    fn build<'s>(&self, stage: &Stage<'s, '_>, purchases: Events<'s, Purchase>) {
        let (alerts, _) = stage.keyed("MerchantHopping", MerchantHopping, purchases);
        let alerts = stage.alerts(alerts);
        stage.table("merchant_alerts", alerts, AlertRow);
    }
}

/// An alert as a row of `merchant_alerts`: `card`, `merchant`, `dt` (timestamp, UTC),
/// `merchants`, `nth`.
#[derive(Clone, Debug)]
struct AlertRow(HoppingAlert);

impl ArrowRows for AlertRow {
    type Builders = (
        StringBuilder,
        StringBuilder,
        TimestampMicrosecondBuilder,
        Int64Builder,
        Int64Builder,
    );
    type Partition = ();

    fn arrow_schema() -> SchemaRef {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("card", DataType::Utf8, true),
            Field::new("merchant", DataType::Utf8, true),
            Field::new("dt", utc, true),
            Field::new("merchants", DataType::Int64, true),
            Field::new("nth", DataType::Int64, true),
        ]))
    }

    fn partition_columns() -> &'static [&'static str] {
        &[]
    }

    fn partition(&self) {}

    fn partition_values(_: &()) -> Vec<Option<String>> {
        Vec::new()
    }

    fn new_builders(capacity: usize) -> Self::Builders {
        (
            StringBuilder::with_capacity(capacity, capacity * 8),
            StringBuilder::with_capacity(capacity, capacity * 8),
            TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            Int64Builder::with_capacity(capacity),
            Int64Builder::with_capacity(capacity),
        )
    }

    fn append(&self, (card, merchant, dt, merchants, nth): &mut Self::Builders) {
        let alert = &self.0;
        card.append_value(&alert.card);
        merchant.append_value(&alert.merchant);
        dt.append_option(
            i64::try_from(alert.ts)
                .ok()
                .and_then(|ms| ms.checked_mul(1_000)),
        );
        merchants.append_option(i64::try_from(alert.merchants).ok());
        nth.append_option(i64::try_from(alert.nth).ok());
    }

    fn finish(
        (card, merchant, dt, merchants, nth): &mut Self::Builders,
    ) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(
            Self::arrow_schema(),
            vec![
                Arc::new(card.finish()),
                Arc::new(merchant.finish()),
                Arc::new(dt.finish()),
                Arc::new(merchants.finish()),
                Arc::new(nth.finish()),
            ],
        )
    }
}

const USAGE: &str = "usage: custom_rule [--commit-every-epoch] OUT_DIR INPUT...";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let every_epoch = args.next_if(|a| a == "--commit-every-epoch").is_some();
    let (Some(out), inputs) = (args.next(), args.collect::<Vec<_>>()) else {
        anyhow::bail!(USAGE);
    };
    anyhow::ensure!(!inputs.is_empty(), USAGE);
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out)?;

    let split_size = SplitSize::Auto;
    let kafka = inputs.first().and_then(|i| i.strip_prefix("kafka://"));
    let source = match (kafka, inputs.iter().all(|i| i.ends_with(".csv"))) {
        // kafka://HOST:PORT/TOPIC: the topic's JSON values, up to its end at start.
        (Some(address), _) => {
            let (brokers, topic) = address
                .split_once('/')
                .ok_or_else(|| anyhow::anyhow!("a Kafka input is kafka://HOST:PORT/TOPIC"))?;
            let mut kafka = KafkaConfig::new(brokers, vec![topic.to_owned()]);
            kafka.format = KafkaFormat::Json;
            kafka.bounded = true;
            SourceConfig::Kafka(kafka)
        }
        (None, true) => SourceConfig::Csv { inputs, split_size },
        (None, false) => SourceConfig::Jsonl { inputs, split_size },
    };
    let mut config = JobConfig::new(source);
    // A job id of its own: exactly-once commits, and checkpoints beside the table, so
    // running it again after a crash resumes where it was.
    config.lake.job_id = Some("merchant-hopping".to_owned());
    if every_epoch {
        // Each epoch its own commit, as a live stream's, rather than the epochs a replay
        // seals within `max_commit_rate` together: more commits, and so more complete
        // checkpoints to restart from, in a short run.
        config.lake.max_commit_rate = std::time::Duration::ZERO;
    }
    config.workers = 2;
    config.out_of_orderness_ms = 60_000;
    config.alerts = AlertOutput::File(out.join("alerts.jsonl"));
    config.dead_letters = out.join("dead-letters.jsonl");
    let table = out.join("merchant_alerts").to_string_lossy().into_owned();
    config
        .lake
        .tables
        .insert("merchant_alerts".to_owned(), table.clone());

    let report = Job::with_pipeline(config, Arc::new(MerchantHoppingJob))?.run()?;
    let totals = &report.totals;
    println!(
        "{} purchases, {} dead letters, {} alerts, {} commits to {table}",
        totals.events, totals.dead_letters, totals.alerts, totals.commits
    );
    Ok(())
}
