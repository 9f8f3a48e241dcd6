//! What `tidelake bench --scenario writers` reports: the settings, a row of figures per
//! simulated hour, and what the log says at the end.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use tidelake_sinks::delta::Snapshot;
use tidelake_sinks::delta::maintenance::auto_compact::CompactionTotals;
use tidelake_sinks::parquet::stats::parse_num_records;

use super::{CheckpointsArg, HOUR_MS, START_MS, Sample, TableState, app_id};
use crate::bench::BenchArgs;
use crate::bench::delta_rs::Opened;
use crate::cli::CommitScopeArg;

/// The scenario's settings.
#[derive(Clone, Debug, Serialize)]
pub struct WritersSettings {
    /// Writer threads, one `appId` each.
    pub writers: usize,
    /// Simulated time per epoch (ms).
    pub epoch_ms: u64,
    /// Simulated time in all (ms).
    pub duration_ms: u64,
    /// Rows each writer commits per epoch.
    pub rows_per_epoch: u64,
    /// Simulated seconds per wall second (`None`: as fast as commits go).
    pub speedup: Option<f64>,
    /// Who shares a commit.
    #[serde(serialize_with = "serialize_scope")]
    pub commit_scope: CommitScopeArg,
    /// How the writers checkpoint.
    pub checkpoints: CheckpointsArg,
    /// Auto-compaction on.
    pub auto_compact: bool,
    /// Auto-compaction: commits between runs.
    pub compact_every: u64,
    /// Auto-compaction: small files that make a partition worth compacting.
    pub compact_min_files: usize,
}

fn serialize_scope<S: serde::Serializer>(
    scope: &CommitScopeArg,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match scope {
        CommitScopeArg::Worker => "worker",
        CommitScopeArg::Process => "process",
    })
}

impl WritersSettings {
    /// The settings `args` give, checked.
    pub fn of(args: &BenchArgs) -> anyhow::Result<WritersSettings> {
        let epoch_ms = u64::try_from(args.epoch.as_millis()).unwrap_or(u64::MAX);
        let duration_ms = u64::try_from(args.duration.as_millis()).unwrap_or(u64::MAX);
        if args.writers == 0 || args.rows_per_epoch == 0 {
            bail!("--writers and --rows-per-epoch must be at least 1");
        }
        if epoch_ms == 0 || !HOUR_MS.is_multiple_of(epoch_ms) {
            bail!("--epoch must divide an hour (1s, 10s, 1min, …)");
        }
        if duration_ms < epoch_ms || !duration_ms.is_multiple_of(epoch_ms) {
            bail!("--duration must be a whole number of epochs");
        }
        if args.speedup.is_some_and(|s| s.is_nan() || s <= 0.0) {
            bail!("--speedup must be above 0");
        }
        Ok(WritersSettings {
            writers: args.writers,
            epoch_ms,
            duration_ms,
            rows_per_epoch: args.rows_per_epoch,
            speedup: args.speedup,
            commit_scope: args.commit_scope,
            checkpoints: args.checkpoints,
            auto_compact: !args.no_auto_compact,
            compact_every: args.auto_compact_every,
            compact_min_files: args.auto_compact_min_files,
        })
    }

    /// Simulated hours (the last may be partial).
    pub fn hours(&self) -> u64 {
        self.duration_ms.div_ceil(HOUR_MS)
    }

    /// The epochs of simulated hour `hour`.
    pub fn epochs_of_hour(&self, hour: u64) -> std::ops::Range<u64> {
        let first = START_MS / self.epoch_ms;
        let end = first + self.duration_ms / self.epoch_ms;
        let per_hour = HOUR_MS / self.epoch_ms;
        (first + hour * per_hour).min(end)..(first + (hour + 1) * per_hour).min(end)
    }

    /// When, after the start of hour `hour`, `epoch` closes at `speedup` times real
    /// time.
    pub fn wall_offset(&self, hour: u64, epoch: u64, speedup: f64) -> Duration {
        let hour_start = START_MS + hour * HOUR_MS;
        let close = (epoch + 1) * self.epoch_ms;
        Duration::from_secs_f64(close.saturating_sub(hour_start) as f64 / 1000.0 / speedup)
    }

    /// Epochs each writer commits.
    pub fn epochs(&self) -> u64 {
        self.duration_ms / self.epoch_ms
    }
}

/// The figures of one simulated hour.
#[derive(Clone, Debug, Serialize)]
pub struct HourFigures {
    /// The hour, from 0.
    pub hour: u64,
    /// Wall time the writers took for it (s).
    pub wall_seconds: f64,
    /// Epochs committed (one per writer per epoch).
    pub commits: u64,
    /// Commits per wall second.
    pub commits_per_second: f64,
    /// Table versions made (compactions included).
    pub versions: u64,
    /// Lost races per commit: puts beyond the first, on average.
    pub conflicts_per_commit: f64,
    /// Share of commits that took more than one put.
    pub retried_share: f64,
    /// Most puts one commit took.
    pub max_puts: u32,
    /// Commit latency (sealing an epoch: file, commit, checkpoint if due), ms.
    pub latency_p50_ms: f64,
    /// p99 of it.
    pub latency_p99_ms: f64,
    /// The longest.
    pub latency_max_ms: f64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// The largest checkpoint's bytes.
    pub checkpoint_bytes: u64,
    /// The longest checkpoint write (reading the table at the version, encoding,
    /// writing), ms.
    pub checkpoint_max_ms: f64,
    /// The table's version at the end of the hour.
    pub version: u64,
    /// Live files at the end of the hour.
    pub live_files: u64,
    /// Live files of the fullest partition.
    pub max_partition_files: u64,
    /// Bytes under `_delta_log/`.
    pub log_bytes: u64,
    /// JSON commits under `_delta_log/`.
    pub log_commits: u64,
    /// The newest checkpoint's version.
    pub last_checkpoint: Option<u64>,
    /// Commits a reader replays after that checkpoint.
    pub commits_after_checkpoint: u64,
    /// delta-rs opening the table and listing its files, ms (with `--delta-rs`).
    pub delta_rs_open_ms: Option<f64>,
    /// Auto-compaction so far: small files removed.
    pub compacted_files: u64,
}

impl HourFigures {
    /// The figures of hour `hour` from its commits' `samples`, the table's `state` at its
    /// end and its `version` at its start.
    pub fn new(
        hour: u64,
        wall: Duration,
        samples: &[Sample],
        version: u64,
        state: &TableState,
        opened: Option<Opened>,
        compaction: &CompactionTotals,
    ) -> HourFigures {
        let mut latencies: Vec<f64> = samples
            .iter()
            .map(|s| s.latency.as_secs_f64() * 1e3)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let commits = samples.len() as u64;
        let per_commit = |x: u64| match commits {
            0 => 0.0,
            n => x as f64 / n as f64,
        };
        let checkpoints: Vec<(u64, Duration)> =
            samples.iter().filter_map(|s| s.checkpoint).collect();
        let wall_seconds = wall.as_secs_f64();
        HourFigures {
            hour,
            wall_seconds,
            commits,
            commits_per_second: commits as f64 / wall_seconds.max(1e-9),
            versions: state.version - version,
            conflicts_per_commit: per_commit(samples.iter().map(|s| u64::from(s.puts) - 1).sum()),
            retried_share: per_commit(samples.iter().filter(|s| s.puts > 1).count() as u64),
            max_puts: samples.iter().map(|s| s.puts).max().unwrap_or(0),
            latency_p50_ms: quantile(&latencies, 0.5),
            latency_p99_ms: quantile(&latencies, 0.99),
            latency_max_ms: latencies.last().copied().unwrap_or(0.0),
            checkpoints: checkpoints.len() as u64,
            checkpoint_bytes: checkpoints.iter().map(|c| c.0).max().unwrap_or(0),
            checkpoint_max_ms: checkpoints
                .iter()
                .map(|c| c.1.as_secs_f64() * 1e3)
                .fold(0.0, f64::max),
            version: state.version,
            live_files: state.live_files,
            max_partition_files: state.max_partition_files,
            log_bytes: state.log_bytes,
            log_commits: state.log_commits,
            last_checkpoint: state.checkpoint.map(|c| c.0),
            commits_after_checkpoint: (state.version)
                .saturating_sub(state.checkpoint.map_or(0, |c| c.0)),
            delta_rs_open_ms: opened.map(|o| o.ms),
            compacted_files: compaction.files_removed,
        }
    }
}

/// The value at quantile `q` of `sorted` (nearest rank; 0 if empty).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
    }
}

/// What the log says at the end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verified {
    /// The table's version.
    pub version: u64,
    /// Rows in the live files (their `numRecords`).
    pub rows: u64,
    /// Rows the writers committed.
    pub expected_rows: u64,
    /// Writers whose `txn` is their last epoch.
    pub writers_complete: usize,
    /// What is wrong, if anything.
    pub problem: Option<String>,
}

impl Verified {
    /// Checks `snapshot` (the table at the end; reading it checked that its versions are
    /// contiguous) against what the writers of `settings` committed.
    pub fn check(snapshot: &Snapshot, settings: &WritersSettings) -> Verified {
        let rows: u64 = snapshot
            .files
            .values()
            .filter_map(|add| add.stats.as_deref())
            .map(|stats| parse_num_records(stats).ok().flatten().unwrap_or(0))
            .sum();
        let last_epoch = settings.epochs_of_hour(settings.hours() - 1).end - 1;
        let writers_complete = (0..settings.writers)
            .filter(|&w| snapshot.txn_version(&app_id(w)) == i64::try_from(last_epoch).ok())
            .count();
        let expected_rows = settings.writers as u64 * settings.epochs() * settings.rows_per_epoch;
        let problem = if rows != expected_rows {
            Some(format!(
                "{rows} rows in the live files, {expected_rows} committed"
            ))
        } else if writers_complete != settings.writers {
            Some(format!(
                "{} writer(s) without a txn of their last epoch {last_epoch}",
                settings.writers - writers_complete
            ))
        } else {
            None
        };
        Verified {
            version: snapshot.version,
            rows,
            expected_rows,
            writers_complete,
            problem,
        }
    }
}

/// The scenario's results, as `--json` writes them.
#[derive(Debug, Serialize)]
pub struct WritersReport {
    /// The tidelake version measured.
    pub version: &'static str,
    /// `writers`.
    pub scenario: &'static str,
    /// The settings.
    pub settings: WritersSettings,
    /// The table.
    pub table: String,
    /// The median put-if-absent of a small object to the table's store, ms.
    pub store_put_ms: f64,
    /// One row per simulated hour.
    pub hours: Vec<HourFigures>,
    /// What auto-compaction did in all.
    pub compaction: Option<CompactionTotals>,
    /// What the log says at the end.
    pub verified: Verified,
    /// The kept temporary directory (`--keep`).
    pub dir: Option<String>,
}

impl WritersReport {
    /// A report with no hours yet.
    pub fn new(settings: WritersSettings, table: &str, put: Duration) -> Self {
        WritersReport {
            version: env!("CARGO_PKG_VERSION"),
            scenario: "writers",
            settings,
            table: table.to_owned(),
            store_put_ms: put.as_secs_f64() * 1e3,
            hours: Vec::new(),
            compaction: None,
            verified: Verified::default(),
            dir: None,
        }
    }

    /// The figures as a text table.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "{} writers, epoch {} s, {} rows/epoch, commit scope {}, checkpoints {:?}, auto-compaction {}; store put {:.2} ms\n",
            s.writers,
            s.epoch_ms / 1000,
            s.rows_per_epoch,
            if s.commit_scope == CommitScopeArg::Process {
                "process"
            } else {
                "worker"
            },
            s.checkpoints,
            if s.auto_compact { "on" } else { "off" },
            self.store_put_ms
        );
        out.push_str(
            "hour  commits  commits/s  versions  conflicts/commit  p50 ms  p99 ms  max ms  ckpts  ckpt KB  ckpt ms  live files  max/part  log MB  replay  delta-rs ms\n",
        );
        for h in &self.hours {
            let _ = writeln!(
                out,
                "{:>4}  {:>7}  {:>9.1}  {:>8}  {:>16.2}  {:>6.1}  {:>6.1}  {:>6.1}  {:>5}  {:>7.1}  {:>7.1}  {:>10}  {:>8}  {:>6.1}  {:>6}  {:>11}",
                h.hour,
                h.commits,
                h.commits_per_second,
                h.versions,
                h.conflicts_per_commit,
                h.latency_p50_ms,
                h.latency_p99_ms,
                h.latency_max_ms,
                h.checkpoints,
                h.checkpoint_bytes as f64 / 1024.0,
                h.checkpoint_max_ms,
                h.live_files,
                h.max_partition_files,
                h.log_bytes as f64 / 1e6,
                h.commits_after_checkpoint,
                h.delta_rs_open_ms
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0}")),
            );
        }
        let v = &self.verified;
        let _ = writeln!(
            out,
            "version {}: {} of {} rows, {} of {} writers complete{}",
            v.version,
            v.rows,
            v.expected_rows,
            v.writers_complete,
            s.writers,
            v.problem
                .as_ref()
                .map_or_else(String::new, |p| format!(" — {p}"))
        );
        out
    }

    /// Draws the hours as SVG charts in `dir`: `writers-latency.svg` (p50, p99, max),
    /// `writers-log.svg` (live files, commits after the checkpoint) and, with delta-rs
    /// timings, `writers-open.svg`.
    pub fn plot(&self, dir: &Path) -> anyhow::Result<()> {
        use crate::plot::{Line, lines};
        use plotters::style::RGBColor;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let line =
            |name: &str, color: RGBColor, value: &dyn Fn(&HourFigures) -> Option<f64>| Line {
                name: name.to_owned(),
                color,
                dashed: false,
                points: self
                    .hours
                    .iter()
                    .map(|h| (h.hour as f64, value(h)))
                    .collect(),
            };
        let hour = |x: f64| format!("{x:.0} h");
        let title = format!("{} writers", self.settings.writers);
        let charts = [
            (
                "writers-latency.svg",
                lines(
                    &format!("{title}: commit latency"),
                    "ms",
                    &hour,
                    &[
                        line("p50", crate::plot::MODEL_COLOR, &|h| Some(h.latency_p50_ms)),
                        line("p99", crate::plot::RULE_COLOR, &|h| Some(h.latency_p99_ms)),
                        line("max", crate::plot::ANY_COLOR, &|h| Some(h.latency_max_ms)),
                    ],
                )?,
            ),
            (
                "writers-log.svg",
                lines(
                    &format!("{title}: live files and log replay"),
                    "count",
                    &hour,
                    &[
                        line("live files", crate::plot::MODEL_COLOR, &|h| {
                            Some(h.live_files as f64)
                        }),
                        line(
                            "commits after the checkpoint",
                            crate::plot::RULE_COLOR,
                            &|h| Some(h.commits_after_checkpoint as f64),
                        ),
                    ],
                )?,
            ),
        ];
        for (name, svg) in charts {
            let path = dir.join(name);
            std::fs::write(&path, svg)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        if self.hours.iter().any(|h| h.delta_rs_open_ms.is_some()) {
            let svg = lines(
                &format!("{title}: delta-rs opening the table"),
                "ms",
                &hour,
                &[line("open + list files", crate::plot::MODEL_COLOR, &|h| {
                    h.delta_rs_open_ms
                })],
            )?;
            let path = dir.join("writers-open.svg");
            std::fs::write(&path, svg)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}
