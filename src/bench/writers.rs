//! `tidelake bench --scenario writers`: many per-worker writers committing to one table,
//! simulated (docs/scaling.md §1).
//!
//! `--writers N` threads of this process each play one worker of a job: its own `appId`
//! (`bench-writers-w<i>`), its own [`DeltaSink`] — the real commit path: Parquet files,
//! the `txn`, put-if-absent, re-reading lost races and retrying, checkpoints — and the
//! table's one auto-compactor, as `tidelake run` sets them up. Each commits
//! `--rows-per-epoch` rows per `--epoch` of simulated time for `--duration`, simulated
//! time running as fast as the commits go, or `--speedup` times real time.
//!
//! The writers meet at the end of each simulated hour; the bench then measures the table
//! (live files, the log's bytes, the newest checkpoint, and, with `--delta-rs PYTHON`,
//! the time delta-rs takes to open it) before the next hour starts, so measuring costs
//! the writers nothing. At the end it checks what the log says: every writer's `txn` is
//! its last epoch, and the table holds every row once.

use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde::Serialize;

use tidelake_operators::EnrichedTransaction;
use tidelake_runtime::LakeConfig;
use tidelake_runtime::config::AutoCompactConfig;
use tidelake_runtime::lake::{Lake, LakeJob, TRANSACTIONS, TableCompaction, TableDecl};
use tidelake_runtime::transactions_table::TransactionRow;
use tidelake_sinks::delta::files::commit::CheckpointPolicy;
use tidelake_sinks::delta::files::job_identity;
use tidelake_sinks::delta::files::sink::DeltaSink;
use tidelake_sinks::delta::maintenance::auto_compact::CompactionTotals;
use tidelake_sinks::delta::protocol::checkpoint::read_last_checkpoint_file;
use tidelake_sinks::delta::protocol::log::log_size;
use tidelake_sinks::delta::protocol::store::put_if_absent_latency;
use tidelake_sinks::delta::{DeltaTable, Snapshot};
use tidelake_sinks::epochs::{EpochOutcome, EpochWriter};

use super::{BenchArgs, work_dir, write_results};
use crate::io_runtime;

mod output;

use super::delta_rs::DeltaRsOpener;
pub use output::{HourFigures, WritersReport, WritersSettings};

/// The job id the writers commit as: their `appId`s are `bench-writers-w<i>`.
const JOB_ID: &str = "bench-writers";
/// Simulated time starts at 2024-05-01T00:00:00Z (ms).
const START_MS: u64 = 1_714_521_600_000;
const HOUR_MS: u64 = 3_600_000;

/// How the writers checkpoint (`--checkpoints`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointsArg {
    /// By log size (tidelake's default; see docs/scaling.md §3).
    LogSize,
    /// Every 10 versions, as Spark.
    Every10,
}

impl CheckpointsArg {
    fn policy(self) -> CheckpointPolicy {
        match self {
            CheckpointsArg::LogSize => CheckpointPolicy::default(),
            CheckpointsArg::Every10 => CheckpointPolicy::EveryVersions(10),
        }
    }
}

/// One commit a writer made (or tried).
#[derive(Clone, Debug)]
pub struct Sample {
    /// Sealing the epoch: its file finished and uploaded, the commit, and the
    /// checkpoint if this writer wrote one.
    pub latency: Duration,
    /// Puts the commit took.
    pub puts: u32,
    /// The checkpoint written after it: bytes and time.
    pub checkpoint: Option<(u64, Duration)>,
}

/// What the writers share: the hour's samples and the first failure.
#[derive(Default)]
struct Shared {
    samples: Mutex<Vec<Sample>>,
    failure: Mutex<Option<String>>,
}

/// Runs the scenario: prints the table and writes the JSON (and the charts).
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let settings = WritersSettings::of(args)?;
    let work = work_dir(args, "tidelake-bench-writers-")?;
    let url = match &args.table {
        Some(url) => url.clone(),
        None => work.path().join("table").display().to_string(),
    };
    let mut report = measure(&settings, &url, args.delta_rs.as_deref())?;
    report.dir = args.keep.then(|| work.path().display().to_string());

    write_results(args, &report.table(), &report)?;
    if let Some(dir) = &args.plot {
        report.plot(dir)?;
    }
    match &report.verified.problem {
        Some(problem) => bail!("the table is not what the writers committed: {problem}"),
        None => Ok(()),
    }
}

/// Runs the writers against the table at `url` and measures every simulated hour.
fn measure(
    settings: &WritersSettings,
    url: &str,
    delta_rs: Option<&Path>,
) -> anyhow::Result<WritersReport> {
    let runtime = io_runtime()?;
    let table = DeltaTable::open_url(url)?;
    if runtime.block_on(table.snapshot())?.is_some() {
        bail!("{url} is a table already: the scenario needs a new one");
    }
    let put_latency = runtime.block_on(put_if_absent_latency(
        table.store().as_ref(),
        table.root(),
        20,
    ))?;
    // The table, its sinks, commit group and auto-compactor as `tidelake run` opens them.
    let lake = Lake::open(
        &LakeConfig {
            transactions: Some(url.to_owned()),
            job_id: Some(JOB_ID.to_owned()),
            auto_compact: settings.auto_compact.then_some(AutoCompactConfig {
                every_commits: settings.compact_every,
                min_files: settings.compact_min_files,
                asked: true,
            }),
            commit_scope: settings.commit_scope.into(),
            checkpoints: settings.checkpoints.policy(),
            // Each epoch commits as it is sealed, as a live stream's epochs do.
            max_commit_rate: std::time::Duration::ZERO,
            ..LakeConfig::default()
        },
        LakeJob {
            settings: Vec::new(),
            replayable: true,
            may_differ: Vec::new(),
        },
        &[TableDecl::of::<TransactionRow>(TRANSACTIONS)],
    )?;
    let mut opener = delta_rs.map(DeltaRsOpener::start).transpose()?;

    let shared = Arc::new(Shared::default());
    // The writers and this thread meet at the start and at the end of every hour.
    let barrier = Arc::new(Barrier::new(settings.writers + 1));
    let threads: Vec<_> = (0..settings.writers)
        .map(|writer| {
            let sink = lake
                .sink::<TransactionRow>(TRANSACTIONS, writer)
                .context("the lake has no transactions table")??;
            let (settings, shared, barrier) =
                (settings.clone(), Arc::clone(&shared), Arc::clone(&barrier));
            std::thread::Builder::new()
                .name(format!("writer-{writer}"))
                .spawn(move || write_hours(sink, writer, &settings, &shared, &barrier))
                .context("cannot start a writer thread")
        })
        .collect::<anyhow::Result<_>>()?;

    let mut report = WritersReport::new(settings.clone(), url, put_latency);
    let mut version = 0;
    for hour in 0..settings.hours() {
        barrier.wait();
        let started = Instant::now();
        barrier.wait();
        let wall = started.elapsed();
        let samples = std::mem::take(&mut *lock(&shared.samples));
        let state = runtime.block_on(TableState::read(&table))?;
        let opened = opener.as_mut().map(|o| o.open(url)).transpose()?;
        let totals = compaction_totals(lake.compaction());
        report.hours.push(HourFigures::new(
            hour, wall, &samples, version, &state, opened, &totals,
        ));
        version = state.version;
    }
    for thread in threads {
        let _ = thread.join();
    }
    if let Some(failure) = lock(&shared.failure).take() {
        bail!("a writer failed: {failure}");
    }
    report.compaction = settings
        .auto_compact
        .then(|| compaction_totals(lake.finish_compaction()));
    let snapshot = runtime
        .block_on(table.existing_snapshot())
        .context("cannot read the table back")?;
    report.verified = output::Verified::check(&snapshot, settings);
    Ok(report)
}

/// One writer: commits its epochs hour by hour, meeting the others at each hour's start
/// and end. After a failure it only meets them, so the bench can end.
fn write_hours(
    mut sink: DeltaSink<TransactionRow>,
    writer: usize,
    settings: &WritersSettings,
    shared: &Shared,
    barrier: &Barrier,
) {
    let runtime = match io_runtime() {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            fail(shared, format!("writer {writer}: {e}"));
            None
        }
    };
    for hour in 0..settings.hours() {
        barrier.wait();
        let hour_started = Instant::now();
        let mut samples = Vec::new();
        for epoch in settings.epochs_of_hour(hour) {
            if lock(&shared.failure).is_some() {
                break;
            }
            let Some(runtime) = &runtime else { break };
            if let Some(speedup) = settings.speedup {
                let due = settings.wall_offset(hour, epoch, speedup);
                std::thread::sleep(due.saturating_sub(hour_started.elapsed()));
            }
            let rows = rows(writer, epoch, settings);
            let started = Instant::now();
            let result = runtime.block_on(async {
                sink.write(epoch, rows).await?;
                sink.seal(epoch).await
            });
            match result.map(|mut reports| reports.pop()) {
                Ok(Some(report)) => match report.outcome {
                    EpochOutcome::Committed { attempts, .. } => samples.push(Sample {
                        latency: started.elapsed(),
                        puts: attempts,
                        checkpoint: report.checkpoint.map(|c| (c.bytes, c.took)),
                    }),
                    outcome => fail(
                        shared,
                        format!("writer {writer}, epoch {epoch}: {outcome:?}, not committed"),
                    ),
                },
                Ok(None) => fail(shared, format!("writer {writer}, epoch {epoch}: no report")),
                Err(e) => fail(shared, format!("writer {writer}, epoch {epoch}: {e}")),
            }
        }
        lock(&shared.samples).extend(samples);
        barrier.wait();
    }
}

/// The rows writer `writer` commits in `epoch`: `rows_per_epoch` transactions spread
/// over the epoch, of 1,000 accounts of its own (`acct_<writer>_<n>`).
fn rows(writer: usize, epoch: u64, settings: &WritersSettings) -> Vec<TransactionRow> {
    let (n, epoch_ms) = (settings.rows_per_epoch, settings.epoch_ms);
    (0..n)
        .map(|i| {
            let ts = epoch * epoch_ms + i * epoch_ms / n;
            TransactionRow(EnrichedTransaction {
                account_id: format!("acct_{writer:03}_{:04}", (epoch + i) % 1_000).into(),
                ts,
                amount: ((epoch * 7 + i * 13) % 100_000) as f64 / 100.0,
                alert: false,
            })
        })
        .collect()
}

/// The `appId` of writer `writer`.
pub fn app_id(writer: usize) -> String {
    job_identity::app_id(JOB_ID, writer)
}

/// What the table's auto-compactor did (nothing without one).
fn compaction_totals(tables: Vec<TableCompaction>) -> CompactionTotals {
    tables
        .into_iter()
        .next()
        .map(|t| t.totals)
        .unwrap_or_default()
}

fn fail(shared: &Shared, failure: String) {
    lock(&shared.failure).get_or_insert(failure);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the bench reads of the table at the end of an hour.
#[derive(Clone, Debug, Default)]
pub struct TableState {
    /// The table version.
    pub version: u64,
    /// Live files.
    pub live_files: u64,
    /// Live files of the partition with the most.
    pub max_partition_files: u64,
    /// Bytes of every object under `_delta_log/`.
    pub log_bytes: u64,
    /// JSON commits under `_delta_log/`.
    pub log_commits: u64,
    /// The newest checkpoint: version and bytes.
    pub checkpoint: Option<(u64, u64)>,
}

impl TableState {
    async fn read(table: &DeltaTable) -> anyhow::Result<TableState> {
        // The checkpoint first: writers may still commit and checkpoint, and a snapshot
        // read after it is at least as new.
        let last = read_last_checkpoint_file(table.store().as_ref(), table.root()).await?;
        let snapshot: Snapshot = table.existing_snapshot().await?;
        let log = log_size(table.store().as_ref(), table.root()).await?;
        Ok(TableState {
            version: snapshot.version,
            live_files: snapshot.files.len() as u64,
            max_partition_files: snapshot
                .files_by_partition()
                .values()
                .map(|files| files.len() as u64)
                .max()
                .unwrap_or(0),
            log_bytes: log.bytes,
            log_commits: log.commits,
            checkpoint: last.map(|l| (l.version, l.size_in_bytes.unwrap_or(0))),
        })
    }
}
