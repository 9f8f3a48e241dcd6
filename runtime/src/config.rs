//! The job's configuration, validated: what to read, how to time it, where to write.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tidelake_operators::time::format_millis;
use tidelake_sinks::delta::files::commit::CheckpointPolicy;
use tidelake_sinks::parquet::WriterOptions;

use crate::kafka::KafkaFormat;
use crate::kafka::sink::KafkaSinkConfig;
use crate::model::alert::AlertOn;
use crate::sources::csv::CsvSource;
use crate::sources::delta::{DeltaConfig, DeltaSource, DeltaStart};
use crate::sources::generator::{GeneratorConfig, GeneratorSource};
use crate::sources::jsonl::JsonlSource;
use crate::sources::kafka::{KafkaConfig, KafkaSource, KafkaStart};
use crate::sources::operator::TimeMode;
use crate::sources::profiled::ProfiledSource;
use crate::sources::split_size::SplitSize;
use crate::sources::walkthrough::{WalkthroughConfig, WalkthroughSource};
use crate::sources::{Source, SourceError};

/// The tick of a job reading live or generated data (docs/semantics.md §2).
pub const DEFAULT_TICK_MS: u64 = 100;
/// The tick of a job replaying csv or jsonl files (docs/semantics.md §2).
pub const FILE_TICK_MS: u64 = 1_000;

/// What the job reads.
#[derive(Clone, Debug)]
pub enum SourceConfig {
    /// Synthetic transactions.
    Generator(GeneratorConfig),
    /// Flink's walkthrough data, cycled.
    Walkthrough(WalkthroughConfig),
    /// CSV files `account_id,ts_millis,amount`.
    Csv {
        /// Paths or globs.
        inputs: Vec<String>,
        /// How each file is split into byte ranges.
        split_size: SplitSize,
    },
    /// JSON lines files with `accountId`, `ts`, `amount`.
    Jsonl {
        /// Paths or globs.
        inputs: Vec<String>,
        /// How each file is split into byte ranges.
        split_size: SplitSize,
    },
    /// Kafka topics.
    Kafka(KafkaConfig),
    /// A Delta table, read as a stream.
    Delta(DeltaConfig),
}

impl SourceConfig {
    /// The source's part of [`JobConfig::cluster_settings`].
    fn cluster_settings(&self) -> Vec<ClusterSetting> {
        let some = |v: Option<String>| v.unwrap_or_else(|| "(none)".into());
        let count = |n: Option<u64>| n.map_or("unbounded".into(), |n| n.to_string());
        let rate = |r: Option<f64>| r.map_or("unthrottled".into(), |r| r.to_string());
        match self {
            SourceConfig::Generator(g) => vec![
                ("--source", "generator".into()),
                ("--count", count(g.count)),
                ("--rate", rate(g.rate)),
                ("--seed", g.seed.to_string()),
                ("--accounts", g.accounts.to_string()),
                ("--density", g.density.to_string()),
                ("--start", format_millis(g.start_ms)),
                ("--partitions", g.partitions.to_string()),
                ("--small-share", g.small_share.to_string()),
                ("--large-share", g.large_share.to_string()),
                ("--fraud-every", some(g.fraud_every.map(|n| n.to_string()))),
                ("--disorder", format!("{}ms", g.out_of_orderness_ms)),
                ("--profiles", g.profiles.to_string()),
                ("--profile-span", format!("{}ms", g.profile_span_ms)),
                ("--update-share", g.update_share.to_string()),
            ],
            SourceConfig::Walkthrough(w) => vec![
                ("--source", "walkthrough".into()),
                ("--count", count(w.count)),
                ("--rate", rate(w.rate)),
            ],
            SourceConfig::Kafka(k) => {
                let start = match k.start {
                    KafkaStart::Earliest => "earliest".to_owned(),
                    KafkaStart::Latest => "latest".to_owned(),
                    KafkaStart::Time(ms) => format_millis(ms),
                };
                vec![
                    ("--source", "kafka".into()),
                    ("--kafka-brokers", k.brokers.clone()),
                    ("--kafka-topic", k.topics.join(" ")),
                    ("--kafka-format", k.format.name().into()),
                    ("--kafka-start", start),
                    ("--kafka-bounded", k.bounded.to_string()),
                ]
            }
            SourceConfig::Delta(d) => vec![
                ("--source", "delta".into()),
                ("--input", d.table.clone()),
                (
                    "--starting-version",
                    match d.start {
                        DeltaStart::Version(v) => v.to_string(),
                        _ => "(none)".into(),
                    },
                ),
                (
                    "--starting-timestamp",
                    match d.start {
                        DeltaStart::Timestamp(ms) => format_millis(ms),
                        _ => "(none)".into(),
                    },
                ),
                ("--follow", d.follow.to_string()),
                ("--ignore-deletes", d.ignore_deletes.to_string()),
                ("--source-partitions", d.partitions.to_string()),
            ],
            SourceConfig::Csv { inputs, split_size }
            | SourceConfig::Jsonl { inputs, split_size } => {
                let kind = if matches!(self, SourceConfig::Csv { .. }) {
                    "csv"
                } else {
                    "jsonl"
                };
                vec![
                    ("--source", kind.into()),
                    ("--input", inputs.join(" ")),
                    ("--split-size", split_size.to_string()),
                ]
            }
        }
    }

    /// The tick when none is given, for commits every `commit_interval_ms`
    /// (docs/semantics.md §2): [`FILE_TICK_MS`] for csv and jsonl files, which are
    /// history replayed as fast as they are read, so a coarser tick batches more of
    /// their records per timely time (a 3-hour file of 10 M lines has 11,520 ticks
    /// instead of 115,200) and wall-time latency means little; [`DEFAULT_TICK_MS`] for
    /// live and generated sources, for stream inputs, and when 1 s does not divide the
    /// commit interval.
    pub fn default_tick_ms(&self, commit_interval_ms: u64) -> u64 {
        let files = matches!(self, SourceConfig::Csv { .. } | SourceConfig::Jsonl { .. });
        if files && !self.is_stream() && commit_interval_ms.is_multiple_of(FILE_TICK_MS) {
            FILE_TICK_MS
        } else {
            DEFAULT_TICK_MS
        }
    }

    /// True when an input is a stream (stdin, a pipe, a FIFO): read once, never again.
    pub fn is_stream(&self) -> bool {
        !self.streams().is_empty()
    }

    /// The stream inputs, by name.
    pub fn streams(&self) -> Vec<String> {
        match self {
            SourceConfig::Csv { inputs, .. } | SourceConfig::Jsonl { inputs, .. } => inputs
                .iter()
                .filter(|input| {
                    input.as_str() == crate::sources::files::STDIN
                        || std::fs::metadata(input).is_ok_and(|meta| !meta.is_file())
                })
                .cloned()
                .collect(),
            SourceConfig::Generator(_)
            | SourceConfig::Walkthrough(_)
            | SourceConfig::Kafka(_)
            | SourceConfig::Delta(_) => Vec::new(),
        }
    }

    /// Builds the source: validates options and resolves files.
    pub fn build(&self) -> Result<Arc<dyn Source>, SourceError> {
        Ok(match self {
            SourceConfig::Generator(config) if config.profiles => {
                Arc::new(ProfiledSource::new(config.clone())?)
            }
            SourceConfig::Generator(config) => Arc::new(GeneratorSource::new(config.clone())?),
            SourceConfig::Walkthrough(config) => Arc::new(WalkthroughSource::new(config.clone())?),
            SourceConfig::Csv { inputs, split_size } => {
                Arc::new(CsvSource::new(inputs, *split_size)?)
            }
            SourceConfig::Jsonl { inputs, split_size } => {
                Arc::new(JsonlSource::new(inputs, *split_size)?)
            }
            SourceConfig::Kafka(config) => Arc::new(KafkaSource::new(config.clone())?),
            SourceConfig::Delta(config) => Arc::new(DeltaSource::new(config.clone())?),
        })
    }
}

/// The built-in rule a job runs (each is a [`Pipeline`](crate::pipeline::Pipeline) of
/// [`crate::jobs`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RuleConfig {
    /// The small-then-large rule (docs/semantics.md §2).
    #[default]
    Fraud,
    /// More than `max` transactions of one account within `window_ms` of rule time.
    Velocity {
        /// Transactions allowed within a window.
        max: u64,
        /// The window (ms).
        window_ms: u64,
    },
    /// The small-then-large rule and the history features, on richer transactions,
    /// joined with the accounts reference data if given.
    Features {
        /// `--accounts-table`: the reference data, if any.
        accounts: Option<ReferenceConfig>,
        /// `--model`: the model that scores every transaction, if any.
        scoring: Option<ScoringConfig>,
    },
}

/// Scoring with a model (`--model FILE`, docs/scoring.md §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoringConfig {
    /// The model file `tidelake train` wrote.
    pub model: PathBuf,
    /// What alerts (`--alert-on`).
    pub alert_on: AlertOn,
    /// `--labels`: the labels joined to the predictions for the model's quality figures
    /// (`fraud_model_quality`), if any.
    pub labels: Option<ReferenceConfig>,
}

/// Where reference data comes from: the `accounts` (`--accounts-table FILE|TABLE`,
/// docs/semantics.md §2, "Reference data"), the model's late labels (`--labels`,
/// docs/scoring.md §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceConfig {
    /// A CSV file with a header (`.csv`), JSON lines (`.jsonl`, `.json`, `.ndjson`), a
    /// Kafka topic of JSON values (`kafka://HOST:PORT[,HOST:PORT]/TOPIC`, read from the
    /// earliest offsets and followed), or otherwise a Delta table's path or URL, followed
    /// as it changes.
    pub location: String,
    /// How often a followed table is polled for new versions.
    pub poll_interval: Duration,
}

impl ReferenceConfig {
    /// The source the location names; an error if a Kafka URL is malformed.
    pub fn source_config(&self) -> Result<SourceConfig, String> {
        let location = self.location.as_str();
        if location.starts_with("kafka://") {
            let topic = KafkaSinkConfig::parse(location)?;
            return Ok(SourceConfig::Kafka(KafkaConfig {
                format: KafkaFormat::Json,
                ..KafkaConfig::new(topic.brokers, vec![topic.topic])
            }));
        }
        let extension = location
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase());
        Ok(match extension.as_deref() {
            Some("csv") => SourceConfig::Csv {
                inputs: vec![self.location.clone()],
                split_size: SplitSize::Auto,
            },
            Some("jsonl" | "json" | "ndjson") => SourceConfig::Jsonl {
                inputs: vec![self.location.clone()],
                split_size: SplitSize::Auto,
            },
            _ => SourceConfig::Delta(DeltaConfig {
                follow: true,
                poll_interval: self.poll_interval,
                partitions: 1,
                ..DeltaConfig::new(location)
            }),
        })
    }
}

/// Where alerts go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertOutput {
    /// JSON lines on stdout.
    Stdout,
    /// JSON lines in a file.
    File(PathBuf),
    /// JSON values in a Kafka topic, keyed by account id, exactly once
    /// (`kafka://HOST:PORT/TOPIC`, [`crate::kafka::sink`]).
    Kafka(KafkaSinkConfig),
    /// Counted only.
    Discard,
}

/// The job's lake outputs: Delta tables and rolling Parquet files, committed in epochs
/// of the rule's time (docs/semantics.md §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LakeConfig {
    /// The `transactions` Delta table (a path or object-store URL).
    pub transactions: Option<String>,
    /// The `alerts` Delta table.
    pub alerts: Option<String>,
    /// Other tables a pipeline writes, by the name it declares them with.
    pub tables: BTreeMap<String, String>,
    /// A directory of rolling Parquet files of the transactions (Flink's FileSink).
    pub parquet_dir: Option<String>,
    /// Names the writers for exactly-once (`<job id>-w<worker>`); a fresh id per run if
    /// `None`.
    pub job_id: Option<String>,
    /// The commit epoch (ms of rule time), a multiple of the tick; also the roll
    /// interval of the Parquet file sink.
    pub commit_interval_ms: u64,
    /// How data files are written (target size, codec).
    pub writer: WriterOptions,
    /// Compact the tables in the background while the job writes them.
    pub auto_compact: Option<AutoCompactConfig>,
    /// Which writers of a table share a commit.
    pub commit_scope: CommitScope,
    /// The least wall time between a writer's commits while it seals epochs faster
    /// (`--max-commit-rate`): sealed epochs wait for it and go into one commit, up to the
    /// target file size (docs/semantics.md §5). Zero commits every epoch on its own.
    pub max_commit_rate: std::time::Duration,
    /// When the writers checkpoint the tables (docs/scaling.md §3): by log size, unless
    /// a benchmark compares another policy.
    pub checkpoints: CheckpointPolicy,
}

/// Which writers of a table share a commit (docs/scaling.md §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommitScope {
    /// Each worker commits its own epochs.
    #[default]
    Worker,
    /// The workers of a process commit the epochs they seal at the same time together,
    /// one txn per worker (a [`CommitGroup`](tidelake_sinks::delta::files::group_commit)).
    Process,
}

/// Checkpoints (docs/checkpoints.md): where and how often a job snapshots its state so
/// that a restart resumes where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// False with `--no-checkpoints`.
    pub enabled: bool,
    /// `--checkpoint-dir`; by default `_checkpoints/<job id>` beside the job's first
    /// table, when the job has a job id of its own.
    pub dir: Option<String>,
    /// Rule time between checkpoint boundaries (ms), a multiple of the commit interval;
    /// `None`: the commit interval.
    pub interval_ms: Option<u64>,
    /// Complete checkpoints kept (`--checkpoints-retained`, at least 1).
    pub retained: usize,
    /// Key groups keyed state is sharded into (`--max-parallelism`).
    pub key_groups: u32,
    /// Start from scratch even if no checkpoint in the directory can be restored
    /// (`--ignore-checkpoints`).
    pub ignore_unusable: bool,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            enabled: true,
            dir: None,
            interval_ms: None,
            retained: 2,
            key_groups: tidelake_operators::snapshot::DEFAULT_KEY_GROUPS,
            ignore_unusable: false,
        }
    }
}

/// Auto-compaction (docs/semantics.md §6): after every `every_commits` commits to a table, compact
/// its partitions that hold at least `min_files` small files (smaller than 3/4 of the
/// target file size) into files of the target size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoCompactConfig {
    /// Commits (of all this process's workers) between runs.
    pub every_commits: u64,
    /// Small files that make a partition worth compacting.
    pub min_files: usize,
    /// Asked for (`--auto-compact`), not the default: a table whose features OPTIMIZE
    /// does not implement is then refused rather than written without compaction.
    pub asked: bool,
}

impl Default for AutoCompactConfig {
    fn default() -> Self {
        AutoCompactConfig {
            every_commits: 10,
            min_files: 10,
            asked: false,
        }
    }
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            transactions: None,
            alerts: None,
            tables: BTreeMap::new(),
            parquet_dir: None,
            job_id: None,
            commit_interval_ms: 10_000,
            writer: WriterOptions::default(),
            auto_compact: None,
            commit_scope: CommitScope::Worker,
            max_commit_rate: std::time::Duration::from_secs(1),
            checkpoints: CheckpointPolicy::default(),
        }
    }
}

/// The secret the processes of a cluster prove to each other that they know (see
/// `cluster`'s handshake). Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(Vec<u8>);

impl ClusterSecret {
    /// The fewest bytes a secret may have.
    pub const MIN_LEN: usize = 16;

    /// A secret of `bytes` (see [`MIN_LEN`](Self::MIN_LEN) for what a caller should
    /// require).
    pub fn new(bytes: Vec<u8>) -> Self {
        ClusterSecret(bytes)
    }

    /// A fresh random secret, for the processes one launcher starts.
    pub fn random() -> std::io::Result<Self> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
        Ok(ClusterSecret(bytes))
    }

    /// The secret's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterSecret({} bytes)", self.0.len())
    }
}

/// The processes of a cluster and this process's place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This process's index in `addresses`.
    pub process: usize,
    /// `host:port` of every process, in process order.
    pub addresses: Vec<String>,
    /// The address to listen on, when it is not this process's own entry of
    /// `addresses` (e.g. `0.0.0.0:2101` in a container reached by a DNS name).
    pub listen: Option<String>,
    /// How long the processes may take to connect to each other before the start fails.
    pub start_timeout: Duration,
    /// The secret every process must prove it knows before it is let in (`None`: no
    /// authentication, allowed only on loopback addresses).
    pub secret: Option<ClusterSecret>,
}

/// A fraud job.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// The source.
    pub source: SourceConfig,
    /// The built-in rule (ignored by a job given a pipeline of its own).
    pub rule: RuleConfig,
    /// Worker threads in this process.
    pub workers: usize,
    /// Event or ingestion time.
    pub time: TimeMode,
    /// The tick timely time is quantised to (ms, ≥ 1).
    pub tick_ms: u64,
    /// Out-of-orderness bound of each partition's watermark (ms).
    pub out_of_orderness_ms: u64,
    /// How long an idle partition of an unbounded source holds the watermark.
    pub idle_timeout: Duration,
    /// Where alerts go.
    pub alerts: AlertOutput,
    /// The dead-letter file.
    pub dead_letters: PathBuf,
    /// Where enriched transactions go as JSON lines, if anywhere.
    pub enriched: Option<PathBuf>,
    /// The Kafka topic enriched transactions go to, exactly once, if any
    /// (`--transactions-topic`).
    pub transactions_topic: Option<KafkaSinkConfig>,
    /// Delta tables and Parquet files.
    pub lake: LakeConfig,
    /// The cluster this process is part of (`None`: one process).
    pub cluster: Option<ClusterConfig>,
    /// Records per source read call.
    pub batch_size: usize,
    /// Records a worker may read ahead of a frontier another worker holds back.
    pub max_in_flight: u64,
    /// Stop the job when its frontier has not moved for this long while records are
    /// in flight (`None`: never).
    pub stall_timeout: Option<Duration>,
    /// Measure each alert's latency (see [`crate::latency`]) into the report.
    pub alert_latency: bool,
    /// Serve metrics, health probes and the job's page on this `host:port` (see
    /// [`crate::monitor`]).
    pub metrics_addr: Option<String>,
    /// How long to keep serving them after the job has ended.
    pub metrics_linger: Duration,
    /// Checkpoints.
    pub checkpoints: CheckpointConfig,
}

/// One setting every process of a cluster must share, named by its flag: `(flag, value)`.
pub type ClusterSetting = (&'static str, String);

impl JobConfig {
    /// The settings every process of a cluster must run with, since they decide what is
    /// read, how it is timed and where it is written. Per-process outputs (alerts, dead
    /// letters, reports) and failure timeouts are not among them.
    pub fn cluster_settings(&self) -> Vec<ClusterSetting> {
        let ms = |n: u64| format!("{n}ms");
        let some = |v: Option<String>| v.unwrap_or_else(|| "(none)".into());
        let mut settings = vec![("--job-id", some(self.lake.job_id.clone()))];
        settings.extend(self.source.cluster_settings());
        let time = match self.time {
            TimeMode::Event => "event",
            TimeMode::Ingestion => "ingestion",
        };
        settings.extend([
            ("--time", time.to_owned()),
            ("--tick", ms(self.tick_ms)),
            ("--out-of-orderness", ms(self.out_of_orderness_ms)),
            ("--idle-timeout", ms(self.idle_timeout.as_millis() as u64)),
            ("--table", some(self.lake.transactions.clone())),
            ("--alerts-table", some(self.lake.alerts.clone())),
            (
                "named tables",
                some((!self.lake.tables.is_empty()).then(|| {
                    let named = self.lake.tables.iter().map(|(n, url)| format!("{n}={url}"));
                    named.collect::<Vec<_>>().join(",")
                })),
            ),
            ("--parquet-dir", some(self.lake.parquet_dir.clone())),
            (
                "Kafka alerts",
                some(match &self.alerts {
                    AlertOutput::Kafka(kafka) => Some(kafka.url()),
                    _ => None,
                }),
            ),
            (
                "--transactions-topic",
                some(self.transactions_topic.as_ref().map(KafkaSinkConfig::url)),
            ),
            ("--commit-interval", ms(self.lake.commit_interval_ms)),
            (
                "--target-file-size",
                self.lake.writer.target_file_size.to_string(),
            ),
            (
                "--auto-compact",
                some(
                    self.lake.auto_compact.map(|c| {
                        format!("every {} commits, {} files", c.every_commits, c.min_files)
                    }),
                ),
            ),
        ]);
        settings
    }
}

impl JobConfig {
    /// Worker threads over every process of the cluster: the number of writers of each
    /// table, and what decides which worker owns an account.
    pub fn total_workers(&self) -> usize {
        self.workers * self.cluster.as_ref().map_or(1, |c| c.addresses.len())
    }

    /// The settings that decide which rows each of the job's table writers commits in
    /// which epoch, recorded in every commit and compared when a job with the same id
    /// runs again (see `tidelake_sinks::delta::files::job_identity`): the source and every flag
    /// that decides what it reads (its pace, `--rate`, does not), the rule's time, tick,
    /// out-of-orderness and commit interval, the rule and its settings (`rule`: the
    /// pipeline's [`settings`](crate::pipeline::Pipeline::settings)), and the number of
    /// workers in all processes, which decides who owns an account (not how they are
    /// spread over processes).
    pub fn identity_settings(&self, rule: &[(String, String)]) -> Vec<(String, String)> {
        const DECIDE_ROWS: [&str; 4] = [
            "--time",
            "--tick",
            "--out-of-orderness",
            "--commit-interval",
        ];
        let mut settings: Vec<(String, String)> = self
            .source
            .cluster_settings()
            .into_iter()
            .filter(|(name, _)| !matches!(*name, "--rate" | "--kafka-bounded" | "--follow"))
            .chain(
                self.cluster_settings()
                    .into_iter()
                    .filter(|(name, _)| DECIDE_ROWS.contains(name)),
            )
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        settings.extend_from_slice(rule);
        settings.push((
            "--workers (in all processes)".to_owned(),
            self.total_workers().to_string(),
        ));
        settings
    }

    /// The settings a checkpoint records and a restore compares: the job's identity
    /// ([`identity_settings`](Self::identity_settings)) and where it writes.
    pub fn checkpoint_settings(&self, rule: &[(String, String)]) -> Vec<(String, String)> {
        const OUTPUTS: [&str; 6] = [
            "--table",
            "--alerts-table",
            "named tables",
            "--parquet-dir",
            "Kafka alerts",
            "--transactions-topic",
        ];
        let mut settings = self.identity_settings(rule);
        settings.extend(
            self.cluster_settings()
                .into_iter()
                .filter(|(name, _)| OUTPUTS.contains(name))
                .map(|(name, value)| (name.to_owned(), value)),
        );
        settings
    }

    /// A job on `source` with the defaults of `tidelake run`; its tick is the source's
    /// [default](SourceConfig::default_tick_ms) for the default commit interval.
    pub fn new(source: SourceConfig) -> Self {
        let lake = LakeConfig::default();
        JobConfig {
            tick_ms: source.default_tick_ms(lake.commit_interval_ms),
            source,
            rule: RuleConfig::Fraud,
            workers: 1,
            time: TimeMode::Event,
            out_of_orderness_ms: 0,
            idle_timeout: Duration::from_secs(10),
            alerts: AlertOutput::Stdout,
            dead_letters: PathBuf::from("dead-letters.jsonl"),
            enriched: None,
            transactions_topic: None,
            lake,
            cluster: None,
            batch_size: 4096,
            max_in_flight: 1 << 20,
            stall_timeout: Some(Duration::from_secs(120)),
            alert_latency: false,
            metrics_addr: None,
            metrics_linger: Duration::ZERO,
            checkpoints: CheckpointConfig::default(),
        }
    }

    /// Where the job's checkpoints go, if it takes any: `--checkpoint-dir`, or by default
    /// `_checkpoints/<job id>` beside its first table when it has a job id of its own
    /// (`./lake/_checkpoints/<job id>` for the default table). A job whose restart
    /// could not reproduce what it read (ingestion time, a stream input) takes none
    /// unless asked, and is refused if asked ([`validate`](Self::validate)).
    pub fn checkpoint_location(&self) -> Option<String> {
        let checkpoints = &self.checkpoints;
        if !checkpoints.enabled {
            return None;
        }
        if let Some(dir) = &checkpoints.dir {
            return Some(dir.clone());
        }
        let job_id = self.lake.job_id.as_deref()?;
        if self.time != TimeMode::Event || self.source.is_stream() {
            return None;
        }
        let first = [&self.lake.transactions, &self.lake.alerts]
            .into_iter()
            .flatten()
            .chain(self.lake.tables.values())
            .next()?;
        Some(format!("{}/_checkpoints/{job_id}", parent_location(first)))
    }

    /// Rule time between checkpoint boundaries (ms).
    pub fn checkpoint_interval_ms(&self) -> u64 {
        self.checkpoints
            .interval_ms
            .unwrap_or(self.lake.commit_interval_ms)
    }

    /// Checks the options that do not depend on the source, and that every output's
    /// directory exists (before any output is created).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError::NoWorkers);
        }
        if self.tick_ms == 0 {
            return Err(ConfigError::ZeroTick);
        }
        let interval = self.lake.commit_interval_ms;
        if interval == 0 || !interval.is_multiple_of(self.tick_ms) {
            return Err(ConfigError::CommitInterval {
                interval_ms: interval,
                tick_ms: self.tick_ms,
            });
        }
        if self.lake.writer.target_file_size == 0 {
            return Err(ConfigError::TargetFileSize);
        }
        if let Some(id) = &self.lake.job_id
            && !tidelake_sinks::delta::files::job_identity::is_valid_job_id(id)
        {
            return Err(ConfigError::JobId(id.clone()));
        }
        if self.batch_size == 0 {
            return Err(ConfigError::BatchSize);
        }
        self.validate_checkpoints()?;
        let alerts = match &self.alerts {
            AlertOutput::File(path) => Some(path),
            AlertOutput::Stdout | AlertOutput::Discard | AlertOutput::Kafka(_) => None,
        };
        for path in alerts
            .into_iter()
            .chain([&self.dead_letters])
            .chain(self.enriched.as_ref())
        {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
                && !dir.is_dir()
            {
                return Err(ConfigError::NoDirectory {
                    path: path.clone(),
                    dir: dir.to_path_buf(),
                });
            }
        }
        Ok(())
    }
}

impl JobConfig {
    fn validate_checkpoints(&self) -> Result<(), ConfigError> {
        let checkpoints = &self.checkpoints;
        let interval = self.checkpoint_interval_ms();
        let commit = self.lake.commit_interval_ms;
        if interval == 0 || !interval.is_multiple_of(commit) {
            return Err(ConfigError::CheckpointInterval {
                interval_ms: interval,
                commit_ms: commit,
            });
        }
        if checkpoints.key_groups == 0 {
            return Err(ConfigError::Checkpoints(
                "--max-parallelism must be at least 1".into(),
            ));
        }
        if checkpoints.retained == 0 {
            return Err(ConfigError::Checkpoints(
                "--checkpoints-retained must be at least 1".into(),
            ));
        }
        let Some(dir) = checkpoints.dir.as_ref().filter(|_| checkpoints.enabled) else {
            return Ok(());
        };
        if self.lake.job_id.is_none() {
            return Err(ConfigError::Checkpoints(format!(
                "--checkpoint-dir {dir} needs --job-id: a restart resumes the checkpoints of the same job id"
            )));
        }
        if self.time != TimeMode::Event {
            return Err(ConfigError::Checkpoints(
                "--checkpoint-dir with --time ingestion: a restart cannot give the records it reads again the ingestion times they had, so it could not resume exactly; use event time".into(),
            ));
        }
        if self.source.is_stream() {
            return Err(ConfigError::Checkpoints(format!(
                "--checkpoint-dir with a stream input ({}): a restart cannot read it again from where the checkpoint was; use files",
                self.source.streams().join(", ")
            )));
        }
        Ok(())
    }
}

/// The location `url` (a path or object-store URL) is in: its parent directory, or the
/// bucket of an object at a bucket's root.
fn parent_location(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let path_start = trimmed.find("://").map_or(0, |i| i + 3);
    match trimmed[path_start..].rfind('/') {
        Some(i) => trimmed[..path_start + i].to_owned(),
        // `s3://bucket`: checkpoints go in the bucket.
        None if path_start > 0 => trimmed.to_owned(),
        // A bare name: the working directory.
        None => ".".to_owned(),
    }
}

/// Why a [`JobConfig`] is not valid (named by the `tidelake run` flag that sets it).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A job built for one record type was asked to run a built-in rule of another.
    #[error("{0}")]
    RecordType(String),
    /// No worker threads.
    #[error("--workers must be at least 1")]
    NoWorkers,
    /// A tick of 0.
    #[error("--tick must be at least 1ms")]
    ZeroTick,
    /// A commit interval that is not a positive multiple of the tick.
    #[error(
        "--commit-interval ({interval_ms}ms) must be a positive multiple of --tick ({tick_ms}ms)"
    )]
    CommitInterval {
        /// The commit interval.
        interval_ms: u64,
        /// The tick.
        tick_ms: u64,
    },
    /// A target file size of 0.
    #[error("--target-file-size must be positive")]
    TargetFileSize,
    /// A job id with characters a Delta `appId` and a file name should not hold.
    #[error("--job-id {0:?}: use letters, digits, '-', '_' and '.' only")]
    JobId(String),
    /// A read batch of 0 records.
    #[error("the batch size must be at least 1")]
    BatchSize,
    /// A source a cluster of processes cannot read (each process has its own stdin).
    #[error("{0}")]
    SingleProcessOnly(String),
    /// A checkpoint interval that is not a positive multiple of the commit interval.
    #[error(
        "--checkpoint-interval ({interval_ms}ms) must be a positive multiple of --commit-interval ({commit_ms}ms): a checkpoint is taken where epochs end"
    )]
    CheckpointInterval {
        /// The checkpoint interval.
        interval_ms: u64,
        /// The commit interval.
        commit_ms: u64,
    },
    /// Checkpoints asked for where they cannot work, or bad checkpoint options.
    #[error("{0}")]
    Checkpoints(String),
    /// An output in a directory that does not exist.
    #[error("cannot write {}: the directory {} does not exist", path.display(), dir.display())]
    NoDirectory {
        /// The output.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(start_ms: u64) -> JobConfig {
        JobConfig::new(SourceConfig::Generator(GeneratorConfig {
            start_ms,
            ..GeneratorConfig::default()
        }))
    }

    #[test]
    fn cluster_settings_leave_out_per_process_outputs() {
        let mut one = generator(0);
        let mut other = generator(0);
        other.alerts = AlertOutput::File("p1-alerts.jsonl".into());
        other.dead_letters = "p1-dead.jsonl".into();
        other.stall_timeout = None;
        assert_eq!(one.cluster_settings(), other.cluster_settings());

        one.lake.job_id = Some("nightly".into());
        one.tick_ms = 50;
        let differing: Vec<&str> = one
            .cluster_settings()
            .iter()
            .zip(other.cluster_settings().iter())
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.0)
            .collect();
        assert_eq!(differing, ["--job-id", "--tick"]);
    }

    #[test]
    fn files_default_to_a_one_second_tick_where_it_divides_the_commit_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tx.csv");
        std::fs::write(&file, "7,1,2.5\n").expect("write");
        let inputs = vec![file.display().to_string()];
        let csv = SourceConfig::Csv {
            inputs: inputs.clone(),
            split_size: SplitSize::Auto,
        };
        let jsonl = SourceConfig::Jsonl {
            inputs,
            split_size: SplitSize::Auto,
        };
        let stdin = SourceConfig::Csv {
            inputs: vec!["-".into()],
            split_size: SplitSize::Auto,
        };
        for (source, interval, tick) in [
            (&csv, 10_000, FILE_TICK_MS),
            (&jsonl, 3_600_000, FILE_TICK_MS),
            (&csv, 1_500, DEFAULT_TICK_MS),
            (&jsonl, 500, DEFAULT_TICK_MS),
            (&stdin, 10_000, DEFAULT_TICK_MS),
            (&generator(0).source, 10_000, DEFAULT_TICK_MS),
        ] {
            assert_eq!(
                source.default_tick_ms(interval),
                tick,
                "{source:?} {interval}"
            );
        }
        assert_eq!(JobConfig::new(csv).tick_ms, FILE_TICK_MS);
        assert_eq!(generator(0).tick_ms, DEFAULT_TICK_MS);
    }

    #[test]
    fn checkpoints_go_beside_the_first_table_for_a_job_id_of_its_own() {
        let mut config = generator(0);
        config.lake.transactions = Some("./lake/transactions".into());
        assert_eq!(
            config.checkpoint_location(),
            None,
            "no job id, no checkpoints"
        );
        config.lake.job_id = Some("nightly".into());
        assert_eq!(
            config.checkpoint_location().as_deref(),
            Some("./lake/_checkpoints/nightly")
        );
        config.lake.transactions = Some("s3://bucket/lake/transactions/".into());
        assert_eq!(
            config.checkpoint_location().as_deref(),
            Some("s3://bucket/lake/_checkpoints/nightly")
        );
        config.lake.transactions = Some("s3://bucket".into());
        assert_eq!(
            config.checkpoint_location().as_deref(),
            Some("s3://bucket/_checkpoints/nightly")
        );
        config.lake.transactions = Some("table".into());
        assert_eq!(
            config.checkpoint_location().as_deref(),
            Some("./_checkpoints/nightly")
        );
        config.time = TimeMode::Ingestion;
        assert_eq!(config.checkpoint_location(), None, "ingestion time: none");
        config.checkpoints.dir = Some("/ckpt".into());
        let err = config
            .validate()
            .expect_err("asked for with ingestion time");
        assert!(err.to_string().contains("ingestion"), "{err}");
        config.time = TimeMode::Event;
        config.checkpoints.interval_ms = Some(15_000);
        let err = config.validate().expect_err("not a multiple");
        assert!(err.to_string().contains("--checkpoint-interval"), "{err}");
        config.checkpoints.interval_ms = Some(60_000);
        assert_eq!(config.validate(), Ok(()));
        config.checkpoints.enabled = false;
        assert_eq!(config.checkpoint_location(), None);
    }

    #[test]
    fn the_generator_start_reads_as_the_flag_takes_it() {
        let settings = generator(1_546_300_800_000).cluster_settings();
        assert!(settings.contains(&("--start", "2019-01-01T00:00:00.000Z".to_owned())));
    }
}
