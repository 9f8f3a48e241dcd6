//! `tidelake produce`: transactions from the generator or from files into a Kafka
//! topic ([`tidelake_runtime::kafka::produce`]), with a progress bar on a terminal and
//! a summary on stdout.
//!
//! Exit codes: 0 every message was acknowledged; 1 the brokers could not be reached or
//! a message was not written; 2 a flag is wrong or the source cannot be read.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::cli::{KafkaFormatArg, SourceArgs, parse_key_value};
use crate::flags::parse_duration;
use crate::progress_bar::ProgressBar;
use crate::status::group;
use tidelake_runtime::SourceConfig;
use tidelake_runtime::job::{EXIT_FAILED, EXIT_USAGE};
use tidelake_runtime::kafka::produce::{ProduceConfig, ProduceError, ProduceReport, produce};
use tidelake_runtime::sources::split_size::SplitSize;

/// `tidelake produce` flags.
#[derive(Clone, Debug, Args)]
pub struct ProduceArgs {
    /// Where transactions come from (not `kafka`).
    #[command(flatten)]
    pub source: SourceArgs,
    /// The brokers, `host:port[,host:port…]`.
    #[arg(long, value_name = "HOST:PORT[,..]", help_heading = "Kafka")]
    pub kafka_brokers: String,
    /// The topic to write to.
    #[arg(long, value_name = "TOPIC", help_heading = "Kafka")]
    pub kafka_topic: String,
    /// How message values are written.
    #[arg(long, value_enum, default_value = "csv", help_heading = "Kafka")]
    pub kafka_format: KafkaFormatArg,
    /// Partitions of the topic when `produce` creates it (it does when the topic does
    /// not exist).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Kafka")]
    pub topic_partitions: u32,
    /// A librdkafka client setting (`security.protocol=SASL_SSL`, …); repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value, action = clap::ArgAction::Append, help_heading = "Kafka")]
    pub kafka_option: Vec<(String, String)>,
    /// How long the brokers may take to answer or to acknowledge a message.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s", help_heading = "Kafka")]
    pub kafka_timeout: Duration,
}

/// Runs `tidelake produce`.
pub fn run(args: &ProduceArgs) -> ExitCode {
    let built = args
        .source
        .config()
        .and_then(|config| Ok((expected(&config), build(&config)?)));
    let (total, source) = match built {
        Ok(built) => built,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = ProduceConfig {
        brokers: args.kafka_brokers.clone(),
        topic: args.kafka_topic.clone(),
        format: args.kafka_format.into(),
        topic_partitions: args.topic_partitions,
        options: args.kafka_option.clone(),
        timeout: args.kafka_timeout,
    };
    let mut bar = ProgressBar::on_terminal();
    let result = produce(source.as_ref(), &config, &mut |p| {
        let text = format!(
            "{} sent, {} acknowledged",
            group(p.sent),
            group(p.acknowledged)
        );
        bar.show(
            total.map(|t| p.acknowledged as f64 / t.max(1) as f64),
            &text,
            false,
        );
    });
    bar.clear();
    match result {
        Ok(report) => {
            println!("{}", summary(&config, &report));
            ExitCode::SUCCESS
        }
        Err(ProduceError::Source(e)) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The source, each file read whole as one partition so that its order is kept.
fn build(
    config: &SourceConfig,
) -> Result<std::sync::Arc<dyn tidelake_runtime::sources::Source>, String> {
    let mut config = config.clone();
    if let SourceConfig::Csv { split_size, .. } | SourceConfig::Jsonl { split_size, .. } =
        &mut config
    {
        *split_size = SplitSize::Bytes(u64::MAX);
    }
    config.build().map_err(|e| e.to_string())
}

/// How many messages the source will make, when the flags say (a generator's count).
fn expected(source: &SourceConfig) -> Option<u64> {
    match source {
        SourceConfig::Generator(g) => g.count,
        SourceConfig::Walkthrough(w) => w.count,
        _ => None,
    }
}

/// The summary line: what went where, how fast.
fn summary(config: &ProduceConfig, report: &ProduceReport) -> String {
    let invalid = match report.invalid {
        0 => String::new(),
        n => format!(
            " and {} line{} that {} not valid transactions (sent as they are)",
            group(n),
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" }
        ),
    };
    let created = if report.created { ", created" } else { "" };
    let rate = (report.records + report.invalid) as f64 / report.seconds.max(1e-9);
    format!(
        "produced {} transactions{invalid} ({:.1} MB of {} values) to topic {} ({} partitions{created}) on {} in {:.2} s ({} messages/s)",
        group(report.records),
        report.bytes as f64 / 1e6,
        config.format.name(),
        config.topic,
        report.partitions,
        config.brokers,
        report.seconds,
        group(rate.round() as u64),
    )
}
