//! `tidelake bench`: the end-to-end fraud job (generator or CSV file → fraud operator →
//! null, alerts-file or Delta sink on local disk), measured.
//!
//! Two runs by default, each a child process (`tidelake run --report-json`, or
//! `tidelake launch` for several processes), so each run's peak RSS is its own. The
//! throughput run reads `--events` records in event time. The latency run offers
//! `--latency-rate` events/s in ingestion mode with a `--latency-tick` tick and
//! measures each alert's latency (`--alert-latency`, see `tidelake_runtime::latency`).
//! `--scaling` runs the throughput run on 1, 2 and 4 workers and on 2 processes × 1.
//! `--scenario growth` watches one long throughput run as it goes (`growth`), and
//! `--scenario writers` simulates many writers of one table (`writers`).

mod delta_rs;
mod growth;
mod output;
pub mod writers;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use tidelake_runtime::config::FILE_TICK_MS;
use tidelake_runtime::report::{ClusterReport, ProcessReport};

use crate::flags::parse_duration;
use output::{BenchReport, LatencyResult, Settings, ThroughputResult};

/// The bench's fixed workload (BENCHMARKS.md): rule-time tick of the generator's
/// throughput run (a CSV input runs at the files' default tick, [`FILE_TICK_MS`]) and
/// commit interval, event-time density and start of the generator.
const TICK: &str = "100ms";
const COMMIT_INTERVAL: &str = "10s";
const DENSITY: u64 = 100_000;
const START_MS: u64 = 0;
/// The `--scaling` runs: (workers per process, processes).
const SCALING: [(usize, usize); 4] = [(1, 1), (2, 1), (4, 1), (1, 2)];

/// Where the bench sends the job's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Alerts discarded (`/dev/null`), no table.
    Null,
    /// Alerts to a JSON-lines file, no table.
    Alerts,
    /// The transactions Delta table on local disk (alerts discarded).
    Delta,
}

/// What the bench measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The end-to-end fraud job (the runs of --phase, or --scaling).
    Fraud,
    /// Many per-worker writers committing to one table, simulated (docs/scaling.md).
    Writers,
    /// One long throughput run of the fraud job, measured stretch by stretch as it goes:
    /// events/s, RSS and rule state (BENCHMARKS.md, "Growth").
    Growth,
}

/// Which runs to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// The throughput run, then the latency run.
    All,
    /// The throughput run only.
    Throughput,
    /// The latency run only.
    Latency,
}

/// `tidelake bench`: flags. Defaults are the bench workload of BENCHMARKS.md.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value = "fraud")]
    pub scenario: Scenario,
    /// Read this CSV file (`account_id,ts_millis,amount`) in the throughput run instead
    /// of the generator. The latency run always uses the generator.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Where the job writes.
    #[arg(long, value_enum, default_value = "delta")]
    pub sink: SinkKind,
    /// Generator records of the throughput run.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Generator accounts.
    #[arg(long, default_value_t = 100_000)]
    pub accounts: u64,
    /// Worker threads per process.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Processes of each run (more than 1 runs `tidelake launch`).
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// Which runs to make.
    #[arg(long, value_enum, default_value = "all")]
    pub phase: Phase,
    /// Latency run: events per second offered (evenly, at millisecond granularity).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub latency_rate: u64,
    /// Latency run: how long to offer them.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub latency_duration: Duration,
    /// Latency run: the tick.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1ms")]
    pub latency_tick: Duration,
    /// Run the throughput run on 1, 2 and 4 workers in one process and on 2 processes ×
    /// 1 worker, one row each (instead of the runs of --phase).
    #[arg(long)]
    pub scaling: bool,
    /// Write the results as JSON to FILE, or `-` for stdout (the table then goes to
    /// stderr).
    #[arg(long, value_name = "FILE|-", default_value = "bench.json")]
    pub json: String,
    /// Make the bench's temporary directory (tables, alerts, reports) under DIR.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the temporary directory (its path is printed and in the JSON).
    #[arg(long)]
    pub keep: bool,
    /// Also draw the figures as SVG charts in DIR: `scaling.svg` (with --scaling),
    /// `throughput.svg` (events/s in total and per worker) and `latency.svg`.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Writers scenario: writer threads, each with its own appId.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        help_heading = "Writers scenario"
    )]
    pub writers: usize,
    /// Writers scenario: simulated time per epoch (each writer commits once per epoch).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s", help_heading = "Writers scenario")]
    pub epoch: Duration,
    /// Writers scenario: simulated time in all.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h", help_heading = "Writers scenario")]
    pub duration: Duration,
    /// Writers scenario: rows each writer commits per epoch.
    #[arg(
        long,
        value_name = "R",
        default_value_t = 100,
        help_heading = "Writers scenario"
    )]
    pub rows_per_epoch: u64,
    /// Writers scenario: the table (a path or URL; S3 settings from the environment).
    /// Default: a new table in the bench's temporary directory.
    #[arg(long, value_name = "URL", help_heading = "Writers scenario")]
    pub table: Option<String>,
    /// Writers scenario: simulated seconds per wall second. Default: each epoch commits
    /// as soon as the writer's previous one is done.
    #[arg(long, value_name = "X", help_heading = "Writers scenario")]
    pub speedup: Option<f64>,
    /// Writers scenario: which writers share a commit.
    #[arg(
        long,
        value_enum,
        default_value = "worker",
        help_heading = "Writers scenario"
    )]
    pub commit_scope: crate::cli::CommitScopeArg,
    /// Writers scenario: when the writers checkpoint.
    #[arg(
        long,
        value_enum,
        default_value = "log-size",
        help_heading = "Writers scenario"
    )]
    pub checkpoints: writers::CheckpointsArg,
    /// Writers scenario: no auto-compaction.
    #[arg(long, help_heading = "Writers scenario")]
    pub no_auto_compact: bool,
    /// Writers scenario: auto-compaction runs after this many commits.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        help_heading = "Writers scenario"
    )]
    pub auto_compact_every: u64,
    /// Writers scenario: small files that make a partition worth compacting.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        help_heading = "Writers scenario"
    )]
    pub auto_compact_min_files: usize,
    /// Writers scenario: time delta-rs opening the table after every hour, with this
    /// Python (which has the `deltalake` package). Growth scenario: after the run.
    #[arg(long, value_name = "PYTHON", help_heading = "Writers scenario")]
    pub delta_rs: Option<PathBuf>,
    /// Growth scenario: the stretches of `--events` measured one by one.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        help_heading = "Growth scenario"
    )]
    pub samples: u64,
    /// More `tidelake run` flags for every run, after `--` (e.g. `-- --seed 7`).
    #[arg(last = true, value_name = "RUN FLAGS")]
    pub run_flags: Vec<String>,
}

/// Runs the bench: prints the table and writes the JSON.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.workers == 0 || args.processes == 0 {
        bail!("--workers and --processes must be at least 1");
    }
    match args.scenario {
        Scenario::Writers => return writers::run(args),
        Scenario::Growth => return growth::run(args),
        Scenario::Fraud => {}
    }
    if args.latency_rate == 0 || args.latency_duration.is_zero() {
        bail!("--latency-rate and --latency-duration must be above 0");
    }
    let work = work_dir(args, "tidelake-bench-")?;
    let mut report = BenchReport::new(Settings::of(args));
    if args.scaling {
        for (workers, processes) in SCALING {
            let name = format!("scaling-w{workers}-p{processes}");
            report.scaling.push(throughput_run(
                args,
                workers,
                processes,
                &subdir(work.path(), &name)?,
            )?);
        }
    } else {
        if args.phase != Phase::Latency {
            let dir = subdir(work.path(), "throughput")?;
            report.throughput = Some(throughput_run(args, args.workers, args.processes, &dir)?);
        }
        if args.phase != Phase::Throughput {
            report.latency = Some(latency_run(args, &subdir(work.path(), "latency")?)?);
        }
    }
    report.dir = args.keep.then(|| work.path().display().to_string());
    if args.keep {
        tracing::info!("kept {}", work.path().display());
    }
    write_results(args, &report.table(), &report)?;
    if let Some(dir) = &args.plot {
        plot(&report, dir)?;
    }
    Ok(())
}

/// A new temporary directory for the bench's files under `--dir` (or the system's),
/// named `<prefix>…`, kept with `--keep`.
fn work_dir(args: &BenchArgs, prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .disable_cleanup(args.keep)
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))
}

/// Prints `table` and writes `report` as JSON to `--json` (with `--json -`, the JSON to
/// stdout and the table to stderr).
fn write_results(
    args: &BenchArgs,
    table: &str,
    report: &impl serde::Serialize,
) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)? + "\n";
    if args.json == "-" {
        eprint!("{table}");
        print!("{json}");
    } else {
        print!("{table}");
        std::fs::write(&args.json, json)
            .with_context(|| format!("cannot write the results to {}", args.json))?;
    }
    Ok(())
}

/// The sink as the flag names it.
fn sink_name(sink: SinkKind) -> String {
    sink.to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// Draws the report's figures as SVG charts in `dir` (see [`BenchArgs::plot`]).
fn plot(report: &BenchReport, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let millions = |x: f64| x / 1e6;
    if !report.scaling.is_empty() {
        let bars: Vec<(String, f64)> = report
            .scaling
            .iter()
            .map(|r| {
                (
                    format!("{} × {}", r.processes, r.workers),
                    millions(r.events_per_second),
                )
            })
            .collect();
        crate::plot::bars(
            &dir.join("scaling.svg"),
            "Scaling: processes × workers",
            "M events/s",
            &bars,
        )?;
    }
    if let Some(t) = &report.throughput {
        let mut bars = vec![("all".to_owned(), millions(t.events_per_second))];
        let per_worker = t.elapsed_secs.max(1e-9);
        bars.extend(
            t.events_per_worker
                .iter()
                .enumerate()
                .map(|(w, &n)| (format!("worker {w}"), millions(n as f64 / per_worker))),
        );
        crate::plot::bars(
            &dir.join("throughput.svg"),
            &format!(
                "Throughput: {} events, {} sink",
                t.events,
                sink_name(report.settings.sink)
            ),
            "M events/s",
            &bars,
        )?;
    }
    if let Some(l) = &report.latency {
        let ms = |us: u64| us as f64 / 1000.0;
        let s = &l.latency;
        let bars = vec![
            ("p50".to_owned(), ms(s.p50_us)),
            ("p99".to_owned(), ms(s.p99_us)),
            ("p99.9".to_owned(), ms(s.p999_us)),
            ("max".to_owned(), ms(s.max_us)),
        ];
        crate::plot::bars(
            &dir.join("latency.svg"),
            &format!("Alert latency at {} events/s offered", l.offered_rate),
            "ms",
            &bars,
        )?;
    }
    Ok(())
}

/// A new directory `name` under `parent`.
fn subdir(parent: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The throughput run on `workers` × `processes`.
fn throughput_run(
    args: &BenchArgs,
    workers: usize,
    processes: usize,
    dir: &Path,
) -> anyhow::Result<ThroughputResult> {
    let mut flags = args.source_flags();
    flags.extend(args.common_flags(workers, &args.throughput_tick(), dir));
    Ok(ThroughputResult::new(&child_run(flags, processes, dir)?))
}

/// The latency run: the generator at the target rate, ingestion time, each alert's
/// latency measured.
fn latency_run(args: &BenchArgs, dir: &Path) -> anyhow::Result<LatencyResult> {
    let tick = format!("{}ms", args.latency_tick.as_millis());
    let count = (args.latency_rate as f64 * args.latency_duration.as_secs_f64()).ceil() as u64;
    let mut flags = generator_flags(count, args.accounts);
    flags.extend(
        [
            "--time",
            "ingestion",
            "--rate",
            &args.latency_rate.to_string(),
            "--alert-latency",
        ]
        .map(OsString::from),
    );
    flags.extend(args.common_flags(args.workers, &tick, dir));
    let report = child_run(flags, args.processes, dir)?;
    Ok(LatencyResult {
        offered_rate: args.latency_rate,
        tick_ms: args.latency_tick.as_millis() as u64,
        workers: args.workers,
        processes: args.processes,
        events: report.totals.events,
        alerts: report.totals.alerts,
        elapsed_secs: report.elapsed_secs,
        events_per_second: report.events_per_second(),
        latency: report
            .alert_latency
            .context("the latency run reported no alert latency")?
            .summary(),
    })
}

/// Runs the job with `flags` as a child process (`tidelake run`, or `tidelake launch`
/// for several processes), so its peak RSS is its own, and reads its report.
fn child_run(flags: Vec<OsString>, processes: usize, dir: &Path) -> anyhow::Result<ClusterReport> {
    let report_path = dir.join("report.json");
    let output = job_command(&flags, processes, &report_path)?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot start tidelake")?;
    if !output.status.success() {
        return Err(run_failed(
            &flags,
            processes,
            output.status,
            &String::from_utf8_lossy(&output.stderr),
        ));
    }
    read_report(&report_path, processes)
}

/// `tidelake run` (or `tidelake launch` for several processes) with `flags`, writing
/// its report to `report_path`.
fn job_command(
    flags: &[OsString],
    processes: usize,
    report_path: &Path,
) -> anyhow::Result<Command> {
    let mut command = Command::new(std::env::current_exe().context("cannot find tidelake")?);
    if processes == 1 {
        command.arg("run");
    } else {
        command.args(["launch", "--processes", &processes.to_string()]);
    }
    command.args(flags).arg("--report-json").arg(report_path);
    Ok(command)
}

/// The error of a run that ended with `status`, its flags and its stderr.
fn run_failed(
    flags: &[OsString],
    processes: usize,
    status: std::process::ExitStatus,
    stderr: &str,
) -> anyhow::Error {
    anyhow::anyhow!(
        "the run ({} process(es), {}) failed ({}):\n{}",
        processes,
        flags
            .iter()
            .map(|f| f.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        status,
        stderr.trim_end()
    )
}

/// The report a run of `processes` process(es) wrote to `path`.
fn read_report(path: &Path, processes: usize) -> anyhow::Result<ClusterReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(if processes == 1 {
        let process: ProcessReport = serde_json::from_str(&text)?;
        ClusterReport::new(process.elapsed_secs, process.workers, vec![process])
    } else {
        serde_json::from_str(&text)?
    })
}

impl BenchArgs {
    /// The tick of the throughput and growth runs: the files' default for a CSV input,
    /// [`TICK`] for the generator.
    fn throughput_tick(&self) -> String {
        match self.input {
            Some(_) => format!("{FILE_TICK_MS}ms"),
            None => TICK.to_string(),
        }
    }

    /// The throughput run's source.
    fn source_flags(&self) -> Vec<OsString> {
        match &self.input {
            Some(path) => vec![
                "--source".into(),
                "csv".into(),
                "--input".into(),
                path.into(),
            ],
            None => generator_flags(self.events, self.accounts),
        }
    }

    /// The flags every run shares: workers, tick, commit interval, outputs under `dir`,
    /// and the extra run flags.
    fn common_flags(&self, workers: usize, tick: &str, dir: &Path) -> Vec<OsString> {
        let mut flags: Vec<OsString> = [
            "--workers",
            &workers.to_string(),
            "--tick",
            tick,
            "--commit-interval",
            COMMIT_INTERVAL,
            "--quiet",
            "--dead-letters",
        ]
        .map(OsString::from)
        .into();
        flags.push(dir.join("dead-letters.jsonl").into());
        let (alerts, table) = match self.sink {
            SinkKind::Null => (PathBuf::from("/dev/null"), None),
            SinkKind::Alerts => (dir.join("alerts.jsonl"), None),
            SinkKind::Delta => (PathBuf::from("/dev/null"), Some(dir.join("transactions"))),
        };
        flags.extend(["--alerts".into(), alerts.into()]);
        match table {
            Some(table) => flags.extend(["--table".into(), table.into()]),
            None => flags.push("--no-table".into()),
        }
        flags.extend(self.run_flags.iter().map(OsString::from));
        flags
    }
}

/// The generator with the bench's workload: `count` records over `accounts` accounts.
fn generator_flags(count: u64, accounts: u64) -> Vec<OsString> {
    [
        "--source".to_owned(),
        "generator".to_owned(),
        "--count".to_owned(),
        count.to_string(),
        "--accounts".to_owned(),
        accounts.to_string(),
        "--density".to_owned(),
        DENSITY.to_string(),
        "--start".to_owned(),
        START_MS.to_string(),
    ]
    .map(OsString::from)
    .into()
}
