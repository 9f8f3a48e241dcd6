//! `tidelake ingest`: files under a directory into a Delta table, each exactly once
//! ([`tidelake_runtime::ingest`], docs/ingest.md), with a status line on a terminal
//! and a summary on stdout.
//!
//! Exit codes: 0 every file found was loaded or put in the dead letters; 1 the input
//! or the table failed; 2 a flag is wrong, the data does not fit the flags, or the
//! table cannot be written safely (a feature, another job's settings).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cli::parse_key_value;
use crate::flags::{parse_duration, parse_size_arg};
use crate::progress_bar::ProgressBar;
use crate::status::group;
use tidelake_runtime::ingest::{IngestConfig, IngestProgress, IngestReport, InputFormat, ingest};
use tidelake_runtime::job::{EXIT_FAILED, EXIT_USAGE};

/// `tidelake ingest` flags.
#[derive(Clone, Debug, Args)]
pub struct IngestArgs {
    /// The directory (or `s3://` URL) whose files are loaded; files and directories
    /// whose names start with `_` or `.` are skipped.
    #[arg(long, value_name = "DIR|URL")]
    pub input: String,
    /// The Delta table to load them into (created if there is none).
    #[arg(long, value_name = "PATH|URL", default_value = "./lake/transactions")]
    pub table: String,
    /// How the input files are encoded.
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: FormatArg,
    /// Add the column `date` (`yyyy-MM-dd`, UTC) from the timestamp column and
    /// partition the table by it.
    #[arg(long, value_enum, value_name = "COLUMN")]
    pub partition_by: Option<PartitionArg>,
    /// The column `--partition-by date` derives the date from (a timestamp, a date,
    /// or a long of ms since the epoch); default: `timestamp`, `dt` or `ts`.
    #[arg(long, value_name = "COLUMN")]
    pub timestamp_column: Option<String>,
    /// Rename an input column (`dt=timestamp`); repeatable.
    #[arg(long, value_name = "FROM=TO", value_parser = parse_key_value, action = clap::ArgAction::Append)]
    pub rename: Vec<(String, String)>,
    /// The input's columns (`accountId string, ts long, amount double`) instead of the
    /// first file's, when the table does not exist yet.
    #[arg(long, value_name = "DDL")]
    pub schema: Option<String>,
    /// Load the files there are now, then stop (the default).
    #[arg(long, conflicts_with = "follow")]
    pub once: bool,
    /// Keep loading new files as they arrive, until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// How often `--follow` lists the input.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub poll_interval: Duration,
    /// The most input files one commit loads.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_files_per_commit: u64,
    /// Output files are cut at about this size; many small inputs are coalesced into
    /// files up to it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, default_value = "128MiB")]
    pub target_file_size: u64,
    /// The ingest job's id (default: `ingest-` and a digest of --input): the files a
    /// job loaded are never loaded again by the same job.
    #[arg(long, value_name = "ID")]
    pub job_id: Option<String>,
    /// Where files that cannot be loaded are appended, one JSON line each.
    #[arg(long, value_name = "FILE", default_value = "dead-letters.jsonl")]
    pub dead_letters: PathBuf,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Parquet files.
    Parquet,
    /// CSV files with a header line.
    Csv,
    /// JSON lines, one object per line.
    Jsonl,
}

/// `--partition-by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PartitionArg {
    /// The UTC date of the timestamp column.
    Date,
}

impl IngestArgs {
    fn config(&self) -> IngestConfig {
        IngestConfig {
            input: self.input.clone(),
            table: self.table.clone(),
            format: match self.format {
                FormatArg::Parquet => InputFormat::Parquet,
                FormatArg::Csv => InputFormat::Csv,
                FormatArg::Jsonl => InputFormat::Jsonl,
            },
            partition_by_date: self.partition_by == Some(PartitionArg::Date),
            timestamp_column: self.timestamp_column.clone(),
            renames: self.rename.clone(),
            schema: self.schema.clone(),
            follow: self.follow,
            poll_interval: self.poll_interval,
            max_files_per_commit: usize::try_from(self.max_files_per_commit).unwrap_or(usize::MAX),
            target_file_size: self.target_file_size,
            job_id: self.job_id.clone(),
            dead_letters: self.dead_letters.clone(),
        }
    }
}

/// Runs `tidelake ingest`.
pub fn run(args: &IngestArgs) -> ExitCode {
    let config = args.config();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // First Ctrl-C: finish the commit being made and stop; second: exit at once.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        tracing::info!("stopping after the commit being made (Ctrl-C again to exit at once)");
    });
    let runtime = match crate::io_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let mut bar = ProgressBar::on_terminal();
    let follow = config.follow;
    let result = runtime.block_on(ingest(&config, &stop, &mut |p: &IngestProgress| {
        let text = format!(
            "{} files, {} rows, {} commits, {} files to go",
            group(p.files),
            group(p.rows),
            group(p.commits),
            group(p.pending)
        );
        let fraction = (!follow).then(|| p.files as f64 / (p.files + p.pending).max(1) as f64);
        bar.show(fraction, &text, false);
    }));
    bar.clear();
    match result {
        Ok(report) => {
            println!("{}", summary(&config, &report));
            ExitCode::SUCCESS
        }
        Err(e) if e.is_configuration() => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The summary line: what was loaded where, what was skipped, how fast.
fn summary(config: &IngestConfig, report: &IngestReport) -> String {
    let versions = match report.versions {
        Some((first, last)) if first == last => format!(" (version {first})"),
        Some((first, last)) => format!(" (versions {first}–{last})"),
        None => String::new(),
    };
    let created = if report.created_table {
        ", created"
    } else {
        ""
    };
    let rate = report.rows as f64 / report.seconds.max(1e-9);
    format!(
        "ingest {}: loaded {} files ({} rows, {:.1} MB) into {}{created} in {} commits{versions} as {} data files; skipped {} files already loaded, {} to the dead letters{}, {} changed after loading; {:.2} s ({} rows/s)",
        report.job_id,
        group(report.files),
        group(report.rows),
        report.bytes as f64 / 1e6,
        config.table,
        group(report.commits),
        group(report.data_files),
        group(report.already_loaded),
        group(report.dead_letters),
        if report.dead_letters > 0 {
            format!(" ({})", config.dead_letters.display())
        } else {
            String::new()
        },
        group(report.changed),
        report.seconds,
        group(rate.round() as u64),
    )
}
