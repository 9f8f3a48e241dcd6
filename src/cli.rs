//! Command-line flags, parsed with clap, and their translation into a job config.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::flags::{
    Count, Rate, millis, now_rounded_to_second, parse_count, parse_duration, parse_rate,
    parse_size_arg, parse_split_size, parse_start,
};

use tidelake_runtime::config::CommitScope;
use tidelake_runtime::config::{
    AutoCompactConfig, CheckpointConfig, ClusterConfig, ClusterSecret, ReferenceConfig, RuleConfig,
    ScoringConfig,
};
use tidelake_runtime::jobs::features::{FEATURES, PREDICTIONS, QUALITY};
use tidelake_runtime::kafka::sink::KafkaSinkConfig;
use tidelake_runtime::model::alert::AlertOn;
use tidelake_runtime::sources::delta::{
    DEFAULT_PARTITIONS as DELTA_PARTITIONS, DeltaConfig, DeltaStart,
};
use tidelake_runtime::sources::generator::GeneratorConfig;
use tidelake_runtime::sources::kafka::{KafkaConfig, KafkaFormat, KafkaStart};
use tidelake_runtime::sources::split_size::SplitSize;
use tidelake_runtime::sources::walkthrough::WalkthroughConfig;
use tidelake_runtime::{AlertOutput, JobConfig, LakeConfig, SourceConfig, TimeMode};
use tidelake_sinks::parquet::WriterOptions;

/// tidelake: fraud detection on timely dataflow, into Delta Lake, exactly once.
///
/// Exit codes: 0 ok, 1 the job failed, 2 usage or configuration error, 3 (`worker`)
/// this process could not listen on its cluster address.
#[derive(Debug, Parser)]
#[command(
    name = "tidelake",
    version,
    about,
    long_about,
    args_override_self = true
)]
pub struct Cli {
    /// How log lines are written to stderr: `text`, or `json` (one object a line, with
    /// timestamp, level, target, message and fields). RUST_LOG filters them (default
    /// `info`; `debug` shows every commit).
    #[arg(long, value_enum, global = true, default_value = "text")]
    pub log_format: crate::logging::LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the fraud-detection job (the default, on embedded defaults).
    Run(Box<RunArgs>),
    /// Read a Delta table back (its history, its files, whether it is valid) or
    /// maintain it (optimize, vacuum, checkpoint).
    ///
    /// Exit codes: 0 ok, 1 `validate` found problems, `optimize` failed, or the store
    /// failed (unreachable, denied); 2 there is no table, its log or a feature it uses
    /// cannot be read or handled, an argument is wrong, or `vacuum` refused a retention
    /// shorter than the table's without `--force`.
    Table(crate::table_cmd::TableArgs),
    /// Read a job's checkpoint directory back: `list` its checkpoints (id, kind, rule
    /// time, size, parts, workers, whether each can be restored) or `show` one in full.
    ///
    /// Exit codes: 0 ok, 1 the store failed or a part does not read back whole, 2 there
    /// is no such directory or checkpoint.
    Checkpoints(crate::checkpoints_cmd::CheckpointsArgs),
    /// One process of a cluster of several machines: every process runs `worker` with
    /// the same hostfile, flags and `--job-id`, and its own `--process` index. Global
    /// worker index = process × --workers + local index.
    Worker(Box<WorkerArgs>),
    /// A cluster of --processes processes on this host, each with --workers workers on
    /// a free loopback port: their alerts merged on stdout (or --alerts FILE), their
    /// logs on stderr prefixed with the process index, Ctrl-C forwarded to all. Exits
    /// non-zero, naming the process and why, if any process fails.
    Launch(Box<LaunchArgs>),
    /// Measure the end-to-end job: events/s in total and per worker, alert latency in
    /// ingestion mode, peak RSS, state bytes per active account, bytes, files and commits
    /// written; a table on stdout and JSON in --json. Defaults: the bench workload of
    /// BENCHMARKS.md.
    Bench(Box<crate::bench::BenchArgs>),
    /// Load transactions from the generator (--count, --rate, its flags) or from CSV /
    /// JSON-lines files (--input) into a Kafka topic, keyed by account id, in the format
    /// `run --source kafka` reads: the seed's Flink `KafkaSink`. Creates the topic if
    /// it does not exist. A summary on stdout, a progress bar on a terminal.
    ///
    /// Exit codes: 0 every message acknowledged, 1 the brokers failed, 2 a flag is wrong.
    Produce(Box<crate::produce_cmd::ProduceArgs>),
    /// Load every file under a directory or URL (Parquet, CSV or JSON lines) into a Delta
    /// table exactly once, as Databricks Auto Loader does: `--once` what is there, or
    /// `--follow` new files as they land. Small files are coalesced into files near the
    /// target size; `--partition-by date` and `--rename dt=timestamp` shape the rows;
    /// files that cannot be loaded go to the dead letters whole (docs/ingest.md).
    ///
    /// Exit codes: 0 every file found was loaded or put in the dead letters, 1 the input
    /// or the table failed, 2 a flag is wrong or the table cannot be written safely.
    Ingest(Box<crate::ingest_cmd::IngestArgs>),
    /// Generate data that goes with the generator's transactions: `accounts`, the
    /// reference data of its accounts (home country, birth year, credit limit, opening
    /// time) with their later changes, deterministic from --seed.
    ///
    /// Exit codes: 0 written, 1 the file could not be written, 2 a flag is wrong.
    Generate(crate::generate_cmd::GenerateArgs),
    /// Train the fraud classifier on a features table (`run --rule features` writes it):
    /// a logistic regression over named features, the latest labelled rows held out by
    /// event time; writes the model file `run --model` scores with and prints precision,
    /// recall, F1 and ROC AUC on the held-out rows next to the rule's (docs/scoring.md).
    ///
    /// Exit codes: 0 written, 1 the table or the file failed, 2 a flag is wrong or the
    /// table cannot be trained on.
    Train(Box<crate::train_cmd::TrainArgs>),
    /// Read a model's predictions table (`dt`, `label`, `ruleAlert`, `probability`,
    /// `prediction`, `modelVersion`) into a report: precision and recall over time, the
    /// confusion matrices, the score distributions of fraud and non-fraud, and the rule
    /// against the model; a self-contained HTML page (`--out report.html`) or SVG charts
    /// and `report.json` in a directory (docs/scoring.md §4).
    ///
    /// Exit codes: 0 written, 1 the store failed or the report could not be written,
    /// 2 a flag is wrong, there is no table, or it lacks a column the report needs.
    Report(crate::report_cmd::ReportArgs),
}

/// `tidelake worker`: the cluster, this process's place in it, and the job's flags.
#[derive(Clone, Debug, Args)]
pub struct WorkerArgs {
    /// The cluster: one `host:port` per process, in process order (blank lines and
    /// `#` comments are skipped). This process listens on its own line's port; the
    /// others must reach it there.
    #[arg(long, value_name = "FILE")]
    pub hostfile: PathBuf,
    /// This process's index in the hostfile, from 0.
    #[arg(long, value_name = "I")]
    pub process: usize,
    /// Listen on ADDR (e.g. `0.0.0.0:2101`) rather than on this process's own line of
    /// the hostfile, for a host or pod whose name does not resolve to itself.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A file holding the cluster's secret (at least 16 bytes; a trailing newline is
    /// ignored), the same for every process: each proves it knows it before any
    /// setting is exchanged, and connections that do not are dropped. Or set
    /// TIDELAKE_CLUSTER_SECRET. Without a secret, every address of the hostfile (and
    /// --listen) must be a loopback address.
    #[arg(long, value_name = "FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Set by `tidelake launch`: its pid. The process stops when its parent is no
    /// longer that launcher.
    #[arg(long, value_name = "PID", hide = true)]
    pub launcher_pid: Option<u32>,
    /// The job, as for `tidelake run`.
    #[command(flatten)]
    pub run: RunArgs,
}

impl WorkerArgs {
    /// The job config of this process of the cluster.
    pub fn job_config(&self) -> Result<JobConfig, String> {
        let mut config = self.run.job_config()?;
        let addresses = read_hostfile(&self.hostfile)?;
        if self.process >= addresses.len() {
            return Err(format!(
                "--process {} is not in {}, which names {} processes (0 to {})",
                self.process,
                self.hostfile.display(),
                addresses.len(),
                addresses.len().saturating_sub(1)
            ));
        }
        let writes_tables = config.lake.transactions.is_some() || config.lake.alerts.is_some();
        if writes_tables && config.lake.job_id.is_none() {
            return Err(
                "tidelake worker needs --job-id when it writes a table: every process of the cluster must commit as the same job"
                    .into(),
            );
        }
        config.cluster = Some(ClusterConfig {
            process: self.process,
            addresses,
            listen: self.listen.clone(),
            start_timeout: self.run.start_timeout,
            secret: cluster_secret(self.cluster_secret_file.as_deref())?,
        });
        Ok(config)
    }
}

/// The environment variable that holds the cluster secret when no file names it.
pub const CLUSTER_SECRET_ENV: &str = "TIDELAKE_CLUSTER_SECRET";

/// The cluster secret: the contents of `file` if given, else of
/// [`CLUSTER_SECRET_ENV`], without surrounding whitespace; none if neither is set.
fn cluster_secret(file: Option<&std::path::Path>) -> Result<Option<ClusterSecret>, String> {
    let (bytes, from) = match file {
        Some(path) => (
            std::fs::read(path)
                .map_err(|e| format!("cannot read the cluster secret {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => match std::env::var_os(CLUSTER_SECRET_ENV) {
            Some(value) => (value.into_encoded_bytes(), CLUSTER_SECRET_ENV.to_owned()),
            None => return Ok(None),
        },
    };
    let trimmed = bytes.trim_ascii();
    if trimmed.len() < ClusterSecret::MIN_LEN {
        return Err(format!(
            "the cluster secret in {from} is {} bytes; use at least {} (e.g. `head -c 32 /dev/urandom | base64 > secret`)",
            trimmed.len(),
            ClusterSecret::MIN_LEN
        ));
    }
    Ok(Some(ClusterSecret::new(trimmed.to_vec())))
}

/// The `host:port` lines of a hostfile.
fn read_hostfile(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the hostfile {}: {e}", path.display()))?;
    let mut addresses = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let port = line.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
        if !matches!(port, Some(Ok(_))) {
            return Err(format!(
                "{}, line {}: {line:?} is not host:port",
                path.display(),
                i + 1
            ));
        }
        addresses.push(line.to_owned());
    }
    if addresses.is_empty() {
        return Err(format!("the hostfile {} names no process", path.display()));
    }
    Ok(addresses)
}

/// Which source to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// Synthetic transactions, deterministic from --seed.
    Generator,
    /// Flink's 50-transaction walkthrough list, cycled.
    Walkthrough,
    /// CSV files `account_id,ts_millis,amount` (--input).
    Csv,
    /// JSON lines with accountId, ts, amount (--input).
    Jsonl,
    /// Kafka topics (--kafka-brokers, --kafka-topic), one record per message value.
    Kafka,
    /// A Delta table (--input TABLE, a path or URL), read as a stream (docs/delta-source.md).
    Delta,
}

impl SourceKind {
    /// The name `--source` takes.
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// How Kafka message values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KafkaFormatArg {
    /// `account_id,ts_millis,amount`.
    Csv,
    /// A JSON object with accountId, ts, amount.
    Json,
}

impl From<KafkaFormatArg> for KafkaFormat {
    fn from(format: KafkaFormatArg) -> Self {
        match format {
            KafkaFormatArg::Csv => KafkaFormat::Csv,
            KafkaFormatArg::Json => KafkaFormat::Json,
        }
    }
}

/// Parses `--kafka-start`: `earliest`, `latest`, or a time.
fn parse_kafka_start(text: &str) -> Result<KafkaStart, String> {
    match text {
        "earliest" => Ok(KafkaStart::Earliest),
        "latest" => Ok(KafkaStart::Latest),
        time => parse_start(time)
            .map(KafkaStart::Time)
            .map_err(|e| format!("{e}, 'earliest' or 'latest'")),
    }
}

/// Parses `--kafka-option key=value`.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("'{text}' is not key=value")),
    }
}

/// Which writers of a table share a commit (docs/scaling.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CommitScopeArg {
    /// Each worker commits its own epochs: one table version per worker and epoch.
    Worker,
    /// The workers of a process commit the epochs they seal at the same time together:
    /// one table version, with one txn per worker.
    Process,
}

impl From<CommitScopeArg> for CommitScope {
    fn from(scope: CommitScopeArg) -> Self {
        match scope {
            CommitScopeArg::Worker => CommitScope::Worker,
            CommitScopeArg::Process => CommitScope::Process,
        }
    }
}

/// Which time the rule runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimeArg {
    /// The transaction's own timestamp.
    Event,
    /// The wall-clock time the source read it.
    Ingestion,
}

/// The built-in rule a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuleArg {
    /// A small transaction (< 1.00) followed within a minute by a large one (> 500.00).
    Fraud,
    /// More than --velocity-max transactions of one account within --velocity-window.
    Velocity,
    /// The fraud rule and each account's history features (counts and sums over 1 h,
    /// 24 h and 30 days, the previous transaction, countries) on richer transactions
    /// (optional merchant, country, label), into the `features` table.
    Features,
}

/// What alerts in a job with a model (`--alert-on`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AlertOnArg {
    /// The fraud rule.
    Rule,
    /// The model.
    Model,
    /// The rule or the model.
    Any,
}

/// The source's flags, shared by `run` and `produce`.
#[derive(Clone, Debug, Args)]
pub struct SourceArgs {
    /// The source.
    #[arg(
        long = "source",
        value_enum,
        default_value = "generator",
        help_heading = "Source"
    )]
    pub kind: SourceKind,
    /// Input files or globs, for csv and jsonl.
    #[arg(long, value_name = "PATH", num_args = 1.., action = clap::ArgAction::Append, help_heading = "Source")]
    pub input: Vec<String>,
    /// Byte range an input file is split into, read in parallel: `auto` (each file
    /// into 16 ranges of 1 MiB to 64 MiB) or a size.
    #[arg(long, value_name = "auto|SIZE", default_value = "auto", value_parser = parse_split_size, help_heading = "Source")]
    pub split_size: SplitSize,
    /// Records to produce (generator, walkthrough), or `unbounded`. The generator
    /// produces a fixed default count; the walkthrough cycles forever by default.
    #[arg(long, value_name = "N|unbounded", value_parser = parse_count, help_heading = "Source")]
    pub count: Option<Count>,
    /// Records per second of wall time (generator, walkthrough), or `unthrottled`.
    /// Generator default unthrottled; walkthrough default 10.
    #[arg(long, value_name = "N|unthrottled", value_parser = parse_rate, help_heading = "Source")]
    pub rate: Option<Rate>,
    /// Generator: seed of the pseudo-random data.
    #[arg(long, default_value_t = GeneratorConfig::default().seed, help_heading = "Generator")]
    pub seed: u64,
    /// Generator: number of accounts.
    #[arg(long, default_value_t = GeneratorConfig::default().accounts, help_heading = "Generator")]
    pub accounts: u64,
    /// Generator: events per second of event time.
    #[arg(long, default_value_t = GeneratorConfig::default().density, help_heading = "Generator")]
    pub density: u64,
    /// Generator: start of event time, RFC 3339 (`2024-05-01T00:00:00Z`) or epoch
    /// milliseconds. Default: now, rounded down to the second.
    #[arg(long, value_name = "TIME", value_parser = parse_start, help_heading = "Generator")]
    pub start: Option<u64>,
    /// Generator: logical partitions (the data is the same for any worker count).
    #[arg(long, default_value_t = GeneratorConfig::default().partitions, help_heading = "Generator")]
    pub partitions: u32,
    /// Generator: share of small amounts (< 1.00).
    #[arg(long, default_value_t = GeneratorConfig::default().small_share, help_heading = "Generator")]
    pub small_share: f64,
    /// Generator: share of large amounts (> 500.00).
    #[arg(long, default_value_t = GeneratorConfig::default().large_share, help_heading = "Generator")]
    pub large_share: f64,
    /// Generator: inject a small→large fraud pair every N records of a partition (0: none).
    #[arg(long, default_value_t = GeneratorConfig::default().fraud_every.unwrap_or(0), help_heading = "Generator")]
    pub fraud_every: u64,
    /// Generator: shift each record's ts back by up to this much (out-of-order data).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0ms", help_heading = "Generator")]
    pub disorder: Duration,
    /// Generator: richer transactions (merchant, country, label) from account profiles,
    /// with fraud in several labelled patterns (docs/semantics.md §4).
    #[arg(long, help_heading = "Generator")]
    pub profiles: bool,
    /// Generator with --profiles: how long after --start accounts' reference data change
    /// (as `tidelake generate accounts --span`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1d", help_heading = "Generator")]
    pub profile_span: Duration,
    /// Generator with --profiles: the share of accounts whose reference data change
    /// (as `tidelake generate accounts --update-share`).
    #[arg(long, value_name = "SHARE", default_value_t = GeneratorConfig::default().update_share, help_heading = "Generator")]
    pub update_share: f64,
}

/// `tidelake run`: flags. Every long flag is also a key of the `--config` TOML file.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// A TOML job file whose keys are these long flags (e.g. `workers = 2`,
    /// `tick = "10ms"`, `input = ["a.csv", "b.csv"]`); flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where transactions come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Kafka: the brokers, `host:port[,host:port…]`.
    #[arg(long, value_name = "HOST:PORT[,..]", help_heading = "Kafka")]
    pub kafka_brokers: Option<String>,
    /// Kafka: a topic to read (repeat for several; each partition of each is one
    /// source partition).
    #[arg(long, value_name = "TOPIC", action = clap::ArgAction::Append, help_heading = "Kafka")]
    pub kafka_topic: Vec<String>,
    /// Kafka: how message values are written.
    #[arg(long, value_enum, default_value = "csv", help_heading = "Kafka")]
    pub kafka_format: KafkaFormatArg,
    /// Kafka: where partitions start without a checkpoint: `earliest`, `latest`, or
    /// the first message at or after a time (RFC 3339 or epoch milliseconds).
    #[arg(long, value_name = "earliest|latest|TIME", value_parser = parse_kafka_start, default_value = "earliest", help_heading = "Kafka")]
    pub kafka_start: KafkaStart,
    /// Kafka: stop at the end offsets found at start (a batch run over what the
    /// topics hold then).
    #[arg(long, help_heading = "Kafka")]
    pub kafka_bounded: bool,
    /// Kafka: the consumer group complete checkpoints' offsets are committed under,
    /// for lag monitoring only (the job never reads them back) [default: the job id].
    #[arg(long, value_name = "GROUP", help_heading = "Kafka")]
    pub kafka_group: Option<String>,
    /// Kafka: a librdkafka client setting (`security.protocol=SASL_SSL`,
    /// `sasl.mechanism=PLAIN`, …); repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value, action = clap::ArgAction::Append, help_heading = "Kafka")]
    pub kafka_option: Vec<(String, String)>,
    /// Kafka: how long the brokers may be unreachable while the job runs before it fails.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s", help_heading = "Kafka")]
    pub kafka_timeout: Duration,

    /// Delta source: read only the changes of this version (inclusive) and later ones,
    /// rather than the table's snapshot (Spark's `startingVersion`).
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "starting_timestamp",
        help_heading = "Delta source"
    )]
    pub starting_version: Option<u64>,
    /// Delta source: read only the changes of the first version committed at or after
    /// this time, RFC 3339 or epoch milliseconds (Spark's `startingTimestamp`).
    #[arg(long, value_name = "TIME", value_parser = parse_start, help_heading = "Delta source")]
    pub starting_timestamp: Option<u64>,
    /// Delta source: follow the table, reading each new version as it is committed;
    /// otherwise stop at the version found at start.
    #[arg(long, help_heading = "Delta source")]
    pub follow: bool,
    /// Delta source: how often to look for a new version while following.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s", help_heading = "Delta source")]
    pub poll_interval: Duration,
    /// Delta source: skip versions that remove rows (DELETE, UPDATE, MERGE, overwrite;
    /// their added rows too) rather than fail (Spark's `ignoreDeletes`).
    #[arg(long, help_heading = "Delta source")]
    pub ignore_deletes: bool,
    /// Delta source: partitions the table's files are spread over by a hash of their
    /// path (the same for any worker count).
    #[arg(long, value_name = "N", default_value_t = DELTA_PARTITIONS, help_heading = "Delta source")]
    pub source_partitions: u32,

    /// Worker threads.
    #[arg(long, default_value_t = 1, help_heading = "Processing")]
    pub workers: usize,
    /// The rule's time: the transaction's timestamp, or the time it was read.
    #[arg(long, value_enum, default_value = "event", help_heading = "Processing")]
    pub time: TimeArg,
    /// Timely time is the rule's time quantised to this tick (batching and latency, never
    /// results). Default: 1s for csv and jsonl files (not streams) when it divides
    /// --commit-interval, else 100ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Processing")]
    pub tick: Option<Duration>,
    /// Out-of-orderness bound of each partition's watermark; records further behind are
    /// late and go to the dead letters.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0ms", help_heading = "Processing")]
    pub out_of_orderness: Duration,
    /// An unbounded source's partition with no input for this long stops holding the
    /// watermark back.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s", help_heading = "Processing")]
    pub idle_timeout: Duration,
    /// The rule: `fraud` (small then large within a minute) or `velocity` (too many
    /// transactions of one account in a short time).
    #[arg(long, value_enum, default_value = "fraud", help_heading = "Processing")]
    pub rule: RuleArg,
    /// Velocity: an account's transaction alerts when more than N of its transactions
    /// (itself included) fall in the window ending at it [default: 3].
    #[arg(long, value_name = "N", help_heading = "Processing")]
    pub velocity_max: Option<u64>,
    /// Velocity: the window's length [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Processing")]
    pub velocity_window: Option<Duration>,

    /// Where alerts go as JSON lines: `-` for stdout, or a file; or as JSON values keyed
    /// by account id to a Kafka topic, exactly once: `kafka://HOST:PORT[,..]/TOPIC`.
    #[arg(
        long,
        value_name = "-|FILE|kafka://HOST:PORT/TOPIC",
        default_value = "-",
        help_heading = "Outputs"
    )]
    pub alerts: String,
    /// Where bad and late records go as JSON lines.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "dead-letters.jsonl",
        help_heading = "Outputs"
    )]
    pub dead_letters: PathBuf,
    /// Also write every enriched transaction as JSON lines to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub enriched: Option<PathBuf>,
    /// Also write every enriched transaction, as JSON keyed by account id, to a Kafka
    /// topic `kafka://HOST:PORT[,HOST:PORT]/TOPIC`, exactly once (docs/kafka.md).
    #[arg(long, value_name = "kafka://HOST:PORT/TOPIC", help_heading = "Outputs")]
    pub transactions_topic: Option<String>,
    /// Do not print the live status line (it is shown only when stderr is a terminal).
    #[arg(long, help_heading = "Outputs")]
    pub quiet: bool,
    /// Print the status (events/s, watermark, alerts, commits, files) as a plain line
    /// on stderr every DURATION, for logs.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Outputs")]
    pub status_interval: Option<Duration>,
    /// When the job ends, write what it did (events, alerts, commits, files, bytes,
    /// events per worker, peak RSS) as JSON to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub report_json: Option<PathBuf>,
    /// Measure each alert's latency: the wall clock when it leaves the fraud operator
    /// minus its large transaction's rule time, i.e. from the record entering the
    /// source with `--time ingestion`. The summary and `--report-json` give p50, p99,
    /// p99.9 and max.
    #[arg(long, help_heading = "Outputs")]
    pub alert_latency: bool,

    /// The transactions Delta table: a path, file://, s3://bucket/path (configured from
    /// the AWS_* environment variables) or memory://.
    #[arg(
        long,
        value_name = "URL",
        default_value = "./lake/transactions",
        help_heading = "Lake"
    )]
    pub table: String,
    /// Do not write the transactions table.
    #[arg(long, help_heading = "Lake")]
    pub no_table: bool,
    /// Also write the alerts to this Delta table.
    #[arg(long, value_name = "URL", help_heading = "Lake")]
    pub alerts_table: Option<String>,
    /// `--rule features`: the Delta table of every transaction with its verdict and
    /// features (`--no-table` writes none).
    #[arg(
        long,
        value_name = "URL",
        default_value = "./lake/features",
        help_heading = "Lake"
    )]
    pub features_table: String,
    /// --rule features: the `accounts` reference data joined to every transaction as of
    /// its time — a CSV file with a header, JSON lines, or a Delta table followed as it
    /// changes (docs/semantics.md §2, "Reference data"). (`--accounts N` is the
    /// generator's number of accounts.)
    #[arg(long, value_name = "FILE|TABLE", help_heading = "Lake")]
    pub accounts_table: Option<String>,
    /// --rule features: score every transaction with this model (`tidelake train`
    /// writes it) into --predictions-table (docs/scoring.md).
    #[arg(long, value_name = "FILE", help_heading = "Model")]
    pub model: Option<PathBuf>,
    /// With --model: the Delta table of every scored transaction.
    #[arg(
        long,
        value_name = "URL",
        default_value = "./lake/fraud_predictions",
        help_heading = "Model"
    )]
    pub predictions_table: String,
    /// With --model: what alerts — the fraud rule (its alerts as without a model), the
    /// model (transactions it predicts fraud), or any of them.
    #[arg(long, value_enum, default_value = "rule", help_heading = "Model")]
    pub alert_on: AlertOnArg,
    /// With --model: the labels of transactions (`accountId, ts, label`) as they become
    /// known — a CSV file with a header, JSON lines, a Delta table followed as it
    /// changes, or a Kafka topic of JSON values (kafka://HOST:PORT/TOPIC) — joined to the
    /// predictions for the model's quality per account and hour,
    /// corrected as late labels come, into --quality-table (docs/scoring.md §5). Needs
    /// --no-checkpoints.
    #[arg(long, value_name = "FILE|TABLE", help_heading = "Model")]
    pub labels: Option<String>,
    /// With --labels: the Delta table of the model's quality figures, as a changelog.
    #[arg(
        long,
        value_name = "URL",
        default_value = "./lake/fraud_model_quality",
        help_heading = "Model"
    )]
    pub quality_table: String,
    /// Also write the transactions as rolling Parquet files (Flink's FileSink) under
    /// this directory or URL, rolled at the target size and every commit interval.
    #[arg(long, value_name = "URL", help_heading = "Lake")]
    pub parquet_dir: Option<String>,
    /// Names this job's table writers (`<job id>-w<worker>`) for exactly-once: a re-run
    /// with the same id and input commits nothing twice. Default: a fresh id per run.
    #[arg(long, value_name = "ID", help_heading = "Lake")]
    pub job_id: Option<String>,
    /// Each worker commits the rows of each epoch of this much rule time once the
    /// watermark passes it; a multiple of --tick.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s", help_heading = "Lake")]
    pub commit_interval: Duration,
    /// A data file is completed (and a new one started) at about this size.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, default_value = "128MiB", help_heading = "Lake")]
    pub target_file_size: u64,
    /// Which writers share a commit: each worker its own, or the workers of a process
    /// the epochs they seal together (fewer table versions with many workers; see
    /// docs/scaling.md).
    #[arg(long, value_enum, default_value = "worker", help_heading = "Lake")]
    pub commit_scope: CommitScopeArg,
    /// The least wall time between a worker's commits to a table while it seals epochs
    /// faster than that (a replay, a backlog): the epochs sealed meanwhile go into one
    /// commit and the same files, up to the target file size. A live stream still
    /// commits every epoch as it is sealed; `0s` commits every epoch on its own.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s", help_heading = "Lake")]
    pub max_commit_rate: Duration,
    /// Compact the tables in the background while writing them (and once more at the
    /// end): bin-pack the small files of busy partitions into files of the target size.
    /// The default; kept for job files that say so.
    #[arg(long, help_heading = "Lake", overrides_with = "no_auto_compact")]
    pub auto_compact: bool,
    /// Do not compact the tables while writing them.
    #[arg(long, help_heading = "Lake", overrides_with = "auto_compact")]
    pub no_auto_compact: bool,
    /// Auto-compaction: commits between runs.
    #[arg(long, value_name = "N", default_value_t = AutoCompactConfig::default().every_commits, help_heading = "Lake")]
    pub auto_compact_every: u64,
    /// Auto-compaction: small files (under 3/4 of the target size) that make a partition
    /// worth compacting.
    #[arg(long, value_name = "N", default_value_t = AutoCompactConfig::default().min_files, help_heading = "Lake")]
    pub auto_compact_min_files: usize,

    /// Where the job's checkpoints go (a directory or URL). Default, for a job with
    /// --job-id: `_checkpoints/<job id>` beside its first table. A restart with the same
    /// job id resumes from the newest complete one.
    #[arg(long, value_name = "DIR|URL", help_heading = "Checkpoints")]
    pub checkpoint_dir: Option<String>,
    /// Take a checkpoint at every multiple of this much rule time the job passes; a
    /// multiple of --commit-interval. Default: the commit interval.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Checkpoints")]
    pub checkpoint_interval: Option<Duration>,
    /// Complete checkpoints kept; older ones are deleted.
    #[arg(long, value_name = "N", default_value_t = CheckpointConfig::default().retained, help_heading = "Checkpoints")]
    pub checkpoints_retained: usize,
    /// Key groups keyed state is sharded into: a savepoint restores onto any number of
    /// workers up to this one. Fixed for the life of a job id.
    #[arg(long, value_name = "N", default_value_t = CheckpointConfig::default().key_groups, help_heading = "Checkpoints")]
    pub max_parallelism: u32,
    /// Start from the start of the input when the checkpoints in the directory cannot
    /// be restored (all damaged), instead of refusing to start.
    #[arg(long, help_heading = "Checkpoints")]
    pub ignore_checkpoints: bool,
    /// Take no checkpoints (a restart reads the input from its start, skipping the
    /// epochs already committed).
    #[arg(long, help_heading = "Checkpoints", conflicts_with = "checkpoint_dir")]
    pub no_checkpoints: bool,

    /// Stop the job with an error when the end of the dataflow has made no progress for
    /// this long while records are in flight (a stopped peer process, a store that does
    /// not answer); `0s` never stops it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2m", help_heading = "Failure handling")]
    pub stall_timeout: Duration,
    /// Serve Prometheus metrics (`/metrics`), health probes (`/healthz`, `/readyz`)
    /// and a live page of the job (`/`) on HOST:PORT, e.g. `127.0.0.1:9100` (`launch`:
    /// process I on PORT + I, or free ports for port 0).
    #[arg(long, value_name = "HOST:PORT", help_heading = "Monitoring")]
    pub metrics_addr: Option<String>,
    /// Keep serving them this long after the job has ended, so a scraper gets the
    /// final figures (Ctrl-C ends it early).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s", help_heading = "Monitoring")]
    pub metrics_linger: Duration,
    /// `worker` and `launch`: fail when the processes of the cluster have not all
    /// connected to each other within this time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s", help_heading = "Failure handling")]
    pub start_timeout: Duration,
}

/// `tidelake launch`: how many processes, and the job's flags.
#[derive(Clone, Debug, Args)]
pub struct LaunchArgs {
    /// Processes to start on this host, each with --workers worker threads.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..))]
    pub processes: u16,
    /// The job, as for `tidelake run`.
    #[command(flatten)]
    pub run: RunArgs,
}

impl SourceArgs {
    /// The source these flags describe; Kafka topics are read by `run` alone
    /// ([`RunArgs::job_config`]).
    pub fn config(&self) -> Result<SourceConfig, String> {
        let count = |default: Option<u64>| match self.count {
            Some(Count::Finite(n)) => Some(n),
            Some(Count::Unbounded) => None,
            None => default,
        };
        let rate = |default: Option<f64>| match self.rate {
            Some(Rate::PerSecond(r)) => Some(r),
            Some(Rate::Unthrottled) => None,
            None => default,
        };
        let split_size = self.split_size;
        let needs_input = matches!(self.kind, SourceKind::Csv | SourceKind::Jsonl);
        if needs_input && self.input.is_empty() {
            return Err(format!(
                "--source {} needs --input FILE (one or more files or globs)",
                self.kind.name()
            ));
        }
        if !needs_input && !self.input.is_empty() {
            return Err("--input is only for --source csv or jsonl".into());
        }
        Ok(match self.kind {
            SourceKind::Generator => SourceConfig::Generator(GeneratorConfig {
                seed: self.seed,
                partitions: self.partitions,
                accounts: self.accounts,
                count: count(GeneratorConfig::default().count),
                density: self.density,
                rate: rate(None),
                start_ms: self.start.unwrap_or_else(now_rounded_to_second),
                small_share: self.small_share,
                large_share: self.large_share,
                fraud_every: (self.fraud_every > 0).then_some(self.fraud_every),
                out_of_orderness_ms: millis(self.disorder),
                profiles: self.profiles,
                profile_span_ms: millis(self.profile_span),
                update_share: self.update_share,
            }),
            SourceKind::Walkthrough => SourceConfig::Walkthrough(WalkthroughConfig {
                rate: rate(Some(10.0)),
                count: count(None),
            }),
            SourceKind::Csv => SourceConfig::Csv {
                inputs: self.input.clone(),
                split_size,
            },
            SourceKind::Jsonl => SourceConfig::Jsonl {
                inputs: self.input.clone(),
                split_size,
            },
            SourceKind::Kafka | SourceKind::Delta => {
                return Err(format!(
                    "this command cannot read --source {}",
                    self.kind.name()
                ));
            }
        })
    }
}

impl RunArgs {
    /// The Kafka sink `url` names, with the Kafka client flags.
    fn kafka_sink(&self, url: &str) -> Result<KafkaSinkConfig, String> {
        let mut sink = KafkaSinkConfig::parse(url)?;
        sink.options = self.kafka_option.clone();
        sink.timeout = self.kafka_timeout;
        Ok(sink)
    }

    /// The source these flags describe: [`SourceArgs::config`], or Kafka topics.
    fn source_config(&self) -> Result<SourceConfig, String> {
        if self.source.kind == SourceKind::Delta {
            return self.delta_config();
        }
        if self.starting_version.is_some() || self.starting_timestamp.is_some() || self.follow {
            return Err(
                "--starting-version, --starting-timestamp and --follow are only for --source delta"
                    .into(),
            );
        }
        let is_kafka = self.source.kind == SourceKind::Kafka;
        if !is_kafka {
            if self.kafka_brokers.is_some() || !self.kafka_topic.is_empty() {
                return Err("--kafka-brokers and --kafka-topic are only for --source kafka".into());
            }
            return self.source.config();
        }
        let (Some(brokers), false) = (&self.kafka_brokers, self.kafka_topic.is_empty()) else {
            return Err(
                "--source kafka needs --kafka-brokers HOST:PORT and --kafka-topic TOPIC".into(),
            );
        };
        if !self.source.input.is_empty() {
            return Err("--input is only for --source csv or jsonl".into());
        }
        Ok(SourceConfig::Kafka(KafkaConfig {
            brokers: brokers.clone(),
            topics: self.kafka_topic.clone(),
            format: self.kafka_format.into(),
            start: self.kafka_start,
            bounded: self.kafka_bounded,
            group: self.kafka_group.clone().or_else(|| self.job_id.clone()),
            options: self.kafka_option.clone(),
            start_timeout: self.start_timeout,
            timeout: self.kafka_timeout,
        }))
    }

    /// The Delta source these flags describe.
    fn delta_config(&self) -> Result<SourceConfig, String> {
        let [table] = self.source.input.as_slice() else {
            return Err("--source delta needs --input TABLE (one table: a path or URL)".into());
        };
        if !self.no_table && same_location(table, &self.table) {
            return Err(format!(
                "--input {table} is the table the job writes (--table): read it into another table (--table), or run with --no-table"
            ));
        }
        Ok(SourceConfig::Delta(DeltaConfig {
            table: table.clone(),
            start: match (self.starting_version, self.starting_timestamp) {
                (Some(version), _) => DeltaStart::Version(version),
                (None, Some(ms)) => DeltaStart::Timestamp(ms),
                (None, None) => DeltaStart::Snapshot,
            },
            follow: self.follow,
            poll_interval: self.poll_interval,
            ignore_deletes: self.ignore_deletes,
            partitions: self.source_partitions,
        }))
    }

    /// The job config these flags describe.
    pub fn job_config(&self) -> Result<JobConfig, String> {
        let source = self.source_config()?;
        let mut config = JobConfig::new(source);
        config.rule = self.rule()?;
        config.workers = self.workers;
        config.time = match self.time {
            TimeArg::Event => TimeMode::Event,
            TimeArg::Ingestion => TimeMode::Ingestion,
        };
        config.out_of_orderness_ms = millis(self.out_of_orderness);
        config.idle_timeout = self.idle_timeout;
        config.alerts = match self.alerts.as_str() {
            "-" => AlertOutput::Stdout,
            url if url.starts_with("kafka://") => AlertOutput::Kafka(self.kafka_sink(url)?),
            path => AlertOutput::File(PathBuf::from(path)),
        };
        config.transactions_topic = self
            .transactions_topic
            .as_deref()
            .map(|url| self.kafka_sink(url))
            .transpose()?;
        config.dead_letters = self.dead_letters.clone();
        config.enriched = self.enriched.clone();
        let features = matches!(config.rule, RuleConfig::Features { .. });
        config.lake = LakeConfig {
            transactions: (!self.no_table && !features).then(|| self.table.clone()),
            alerts: self.alerts_table.clone(),
            tables: [
                (FEATURES, &self.features_table, features),
                (PREDICTIONS, &self.predictions_table, self.model.is_some()),
                (QUALITY, &self.quality_table, self.labels.is_some()),
            ]
            .into_iter()
            .filter(|(_, _, written)| !self.no_table && features && *written)
            .map(|(name, location, _)| (name.to_owned(), location.clone()))
            .collect(),
            parquet_dir: self.parquet_dir.clone(),
            job_id: self.job_id.clone(),
            commit_interval_ms: millis(self.commit_interval),
            writer: WriterOptions {
                target_file_size: usize::try_from(self.target_file_size)
                    .map_err(|_| "--target-file-size is too large".to_owned())?,
                ..WriterOptions::default()
            },
            max_commit_rate: self.max_commit_rate,
            auto_compact: (!self.no_auto_compact).then_some(AutoCompactConfig {
                every_commits: self.auto_compact_every,
                min_files: self.auto_compact_min_files,
                asked: self.auto_compact,
            }),
            commit_scope: self.commit_scope.into(),
            ..LakeConfig::default()
        };
        config.checkpoints = CheckpointConfig {
            enabled: !self.no_checkpoints,
            dir: self.checkpoint_dir.clone(),
            interval_ms: self.checkpoint_interval.map(millis),
            retained: self.checkpoints_retained,
            key_groups: self.max_parallelism,
            ignore_unusable: self.ignore_checkpoints,
        };
        config.stall_timeout = (!self.stall_timeout.is_zero()).then_some(self.stall_timeout);
        config.alert_latency = self.alert_latency;
        config.metrics_addr = self.metrics_addr.clone();
        config.metrics_linger = self.metrics_linger;
        config.tick_ms = match self.tick {
            Some(tick) => millis(tick),
            None => config
                .source
                .default_tick_ms(config.lake.commit_interval_ms),
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

impl RunArgs {
    /// The rule these flags choose, with its settings.
    fn rule(&self) -> Result<RuleConfig, String> {
        if self.accounts_table.is_some() && self.rule != RuleArg::Features {
            return Err(
                "--accounts-table is for --rule features (the join with reference data)".into(),
            );
        }
        if self.model.is_some() && self.rule != RuleArg::Features {
            return Err(
                "--model scores the features job's transactions: run it with --rule features"
                    .into(),
            );
        }
        if self.model.is_none() && self.alert_on != AlertOnArg::Rule {
            return Err("--alert-on model or any needs a --model".into());
        }
        if self.model.is_none() && self.labels.is_some() {
            return Err("--labels are joined to a model's predictions: it needs a --model".into());
        }
        if self.labels.is_some() && !self.no_checkpoints {
            return Err(
                "--labels: the model's quality figures (differential dataflow's state) are not in checkpoints, so a restored job would write them wrong; run with --no-checkpoints"
                    .into(),
            );
        }
        match self.rule {
            RuleArg::Fraud => {
                if self.velocity_max.is_some() || self.velocity_window.is_some() {
                    return Err(
                        "--velocity-max and --velocity-window are only for --rule velocity".into(),
                    );
                }
                Ok(RuleConfig::Fraud)
            }
            RuleArg::Features => {
                let transactions_only = [
                    ("--velocity-max", self.velocity_max.is_some()),
                    ("--velocity-window", self.velocity_window.is_some()),
                    ("--parquet-dir", self.parquet_dir.is_some()),
                    ("--enriched", self.enriched.is_some()),
                    ("--transactions-topic", self.transactions_topic.is_some()),
                ];
                if let Some((flag, _)) = transactions_only.iter().find(|(_, set)| *set) {
                    return Err(format!(
                        "{flag} is for --rule fraud and velocity: --rule features writes its rows to --features-table"
                    ));
                }
                let accounts = self
                    .accounts_table
                    .as_ref()
                    .map(|location| ReferenceConfig {
                        location: location.clone(),
                        poll_interval: self.poll_interval,
                    });
                let scoring = self.model.as_ref().map(|model| ScoringConfig {
                    model: model.clone(),
                    alert_on: match self.alert_on {
                        AlertOnArg::Rule => AlertOn::Rule,
                        AlertOnArg::Model => AlertOn::Model,
                        AlertOnArg::Any => AlertOn::Any,
                    },
                    labels: self.labels.as_ref().map(|location| ReferenceConfig {
                        location: location.clone(),
                        poll_interval: self.poll_interval,
                    }),
                });
                Ok(RuleConfig::Features { accounts, scoring })
            }
            RuleArg::Velocity => {
                let window_ms = millis(self.velocity_window.unwrap_or(Duration::from_secs(10)));
                if window_ms == 0 {
                    return Err("--velocity-window must be at least 1ms".into());
                }
                Ok(RuleConfig::Velocity {
                    max: self.velocity_max.unwrap_or(3),
                    window_ms,
                })
            }
        }
    }
}

/// Whether two table locations name the same place: equal, or local paths to the same
/// directory.
fn same_location(a: &str, b: &str) -> bool {
    let canonical = |p: &str| std::fs::canonicalize(p.strip_prefix("file://").unwrap_or(p)).ok();
    a.trim_end_matches('/') == b.trim_end_matches('/')
        || canonical(a).is_some_and(|a| Some(a) == canonical(b))
}
