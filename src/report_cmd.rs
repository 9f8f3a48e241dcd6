//! `tidelake report --predictions TABLE --out PATH`: a model's predictions table read
//! back into pictures a person looks at — precision and recall over time, the confusion
//! matrices, the score distributions of fraud and non-fraud, and the rule against the
//! model — as one self-contained HTML page, or as SVG files and `report.json`
//! (docs/scoring.md §4).
//!
//! The table is read a batch at a time, only the columns the report needs, into
//! accumulators ([`figures`]); nothing holds the rows.
//!
//! Exit codes: 0 written; 1 the store failed or the report could not be written; 2 a
//! flag is wrong, there is no table, or the table lacks a column the report needs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tidelake_runtime::job::{EXIT_FAILED, EXIT_USAGE};
use tidelake_sinks::delta::DeltaError;
use tidelake_sinks::delta::DeltaTable;
use tidelake_sinks::delta::files::reader::{open_data_file, scan};

use crate::flags::parse_duration;

mod charts;
mod columns;
mod figures;
mod html;

use charts::Charts;
use columns::Columns;
use figures::{Accumulator, Figures};

/// `tidelake report` flags.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The predictions table (`dt`, `label`, `ruleAlert`, `probability`, `prediction`,
    /// `modelVersion`, …): a path, file://, s3://bucket/path (configured from the AWS_*
    /// environment variables) or memory://.
    #[arg(long, value_name = "TABLE")]
    pub predictions: String,
    /// Where to write: a FILE.html page with the charts inline, or a directory (any
    /// path not ending in .html) for `precision_recall.svg`, `confusion.svg`,
    /// `scores.svg`, `rule_vs_model.svg` and the numbers in `report.json`.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// The width of a time bucket of the precision and recall chart, e.g. `30m` or
    /// `1d`. Default: an hour if the event time spans at most three days, else a day.
    #[arg(long, value_name = "DURATION", value_parser = parse_bucket)]
    pub bucket: Option<Duration>,
}

/// Why a report was not written, and the exit code it means.
enum Failure {
    /// A flag is wrong, there is no table, or it is not a predictions table (exit 2).
    Usage(anyhow::Error),
    /// The store failed, or the report could not be written (exit 1).
    Failed(anyhow::Error),
}

/// Runs `tidelake report`.
pub fn run(args: &ReportArgs) -> ExitCode {
    match report(args) {
        Ok(figures) => {
            println!(
                "wrote {}: {} rows ({} labelled) of {} version {}",
                args.out.display(),
                figures.rows,
                figures.labelled_rows,
                figures.table,
                figures.version
            );
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(e)) => {
            tracing::error!("{e:#}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Failed(e)) => {
            tracing::error!("{e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn report(args: &ReportArgs) -> Result<Figures, Failure> {
    let runtime = crate::io_runtime().map_err(Failure::Failed)?;
    let figures = runtime.block_on(read(&args.predictions, args.bucket))?;
    let charts = Charts::draw(&figures).map_err(Failure::Failed)?;
    write(&args.out, &figures, &charts).map_err(Failure::Failed)?;
    Ok(figures)
}

/// The figures of the newest version of the table at `url`.
async fn read(url: &str, bucket: Option<Duration>) -> Result<Figures, Failure> {
    let table = DeltaTable::open_existing_url(url).map_err(|e| table_failure(url, e))?;
    let scan = scan(&table).await.map_err(|e| table_failure(url, e))?;
    let columns = Columns::of(url, &scan.schema).map_err(|e| Failure::Usage(anyhow::anyhow!(e)))?;
    let mut accumulator = Accumulator::new(bucket);
    for add in &scan.files {
        let batches = open_data_file(&table, add, columns.schema())
            .await
            .map_err(|e| table_failure(url, e))?;
        for batch in batches {
            let batch = batch.map_err(|e| table_failure(url, e))?;
            columns
                .rows(&batch, |row| accumulator.add(row))
                .with_context(|| format!("cannot read the data file {} of {url}", add.path))
                .map_err(Failure::Usage)?;
        }
    }
    Ok(accumulator.finish(url, scan.version))
}

/// The failure of reading the table at `url`: a store that fails fails the command (as
/// in `tidelake table`); no table, or one that cannot be read, is a usage error.
fn table_failure(url: &str, e: DeltaError) -> Failure {
    match e {
        e @ (DeltaError::Url { .. }
        | DeltaError::Refused { .. }
        | DeltaError::UnsupportedFeature { .. }) => Failure::Usage(e.into()),
        e @ DeltaError::Store { .. } => {
            Failure::Failed(anyhow::anyhow!("cannot read table {url}: {e}"))
        }
        e => Failure::Usage(anyhow::anyhow!("cannot read table {url}: {e}")),
    }
}

/// Writes the page to `out` if it ends in `.html`, else the charts and `report.json`
/// into the directory `out`.
fn write(out: &Path, figures: &Figures, charts: &Charts) -> anyhow::Result<()> {
    let is_page = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html"));
    if is_page {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let page = html::page(figures, charts);
        return std::fs::write(out, page)
            .with_context(|| format!("cannot write {}", out.display()));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, svg) in charts.files() {
        let path = out.join(name);
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let path = out.join("report.json");
    let json = serde_json::to_string_pretty(figures).context("cannot encode report.json")?;
    std::fs::write(&path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// Parses `--bucket`: a duration of at least a millisecond.
fn parse_bucket(text: &str) -> Result<Duration, String> {
    let bucket = parse_duration(text)?;
    if bucket < Duration::from_millis(1) {
        return Err(format!("'{text}' is shorter than a millisecond"));
    }
    Ok(bucket)
}
