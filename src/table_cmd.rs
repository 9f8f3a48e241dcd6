//! `tidelake table history|files|validate URL`: a Delta table read back, through the
//! sinks crate's [`history`], [`TableLayout`] and [`validate`], printed as text tables
//! or (with `--json`) as JSON; its maintenance in submodules (`optimize`, `vacuum`,
//! `checkpoint`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tidelake_operators::time::format_millis;
use tidelake_sinks::delta::inspection::history::{History, history};
use tidelake_sinks::delta::inspection::layout::{FileGroup, SizeBucket, TableLayout};
use tidelake_sinks::delta::inspection::validate::{ValidationReport, validate};
use tidelake_sinks::delta::protocol::kernel::read_existing_snapshot;
use tidelake_sinks::delta::{DeltaError, DeltaTable};

use crate::logging::usage_error;
use crate::status::group;
use tidelake_runtime::job::EXIT_FAILED;

mod checkpoint;
mod optimize;
mod skipping;
mod vacuum;

/// `tidelake table`: read a Delta table back (exit codes: see `Command::Table`).
#[derive(Debug, Args)]
pub struct TableArgs {
    /// What to show.
    #[command(subcommand)]
    pub command: TableCommand,
}

/// `tidelake table` subcommands.
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// The table's commits, newest first, as far back as JSON commits exist.
    History {
        /// The table.
        #[command(flatten)]
        table: TableOptions,
        /// Show only the newest N commits.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// The live files per partition (files, rows, sizes) and a histogram of file sizes.
    Files {
        /// The table.
        #[command(flatten)]
        table: TableOptions,
        /// Also show how many files a point lookup of each VALUE must read: those whose
        /// min/max stats of COLUMN contain it (repeat for other columns).
        #[arg(long, value_name = "COLUMN=VALUE[,VALUE…]", value_parser = skipping::parse_lookups)]
        skipping: Vec<skipping::Lookups>,
        /// Also draw the file-size histogram and the files of each partition as an SVG
        /// chart in FILE.
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
    },
    /// Rewrite the small files of each partition into files near a target size (one
    /// commit per partition), or z-order them; exit 0 even if a partition is given up
    /// (a concurrent writer removed one of its files), 1 on an error.
    Optimize {
        /// The table.
        #[command(flatten)]
        table: TableOptions,
        /// What to optimize, and how.
        #[command(flatten)]
        args: optimize::OptimizeArgs,
    },
    /// Check that every live file exists with the size and row count the log gives;
    /// exit 1, listing every problem, if not.
    Validate {
        /// The table.
        #[command(flatten)]
        table: TableOptions,
    },
    /// Delete the data files no live version references that are older than the
    /// retention: removed files by their removal time, untracked files by their last
    /// modification (`_delta_log/` and `_`/`.` paths are never touched).
    Vacuum {
        /// The table.
        #[command(flatten)]
        table: TableOptions,
        /// The retention, and whether to delete.
        #[command(flatten)]
        args: vacuum::VacuumArgs,
    },
    /// Write a checkpoint of the latest version, then delete the log files older than
    /// delta.logRetentionDuration (720h if unset) below the newest checkpoint they
    /// leave the table loadable from.
    Checkpoint {
        /// The table.
        #[command(flatten)]
        table: TableOptions,
    },
}

/// The table and the output format, common to every `tidelake table` subcommand.
#[derive(Debug, Args)]
pub struct TableOptions {
    /// The table: a path, file://, s3://bucket/path (configured from the AWS_*
    /// environment variables) or memory://.
    #[arg(value_name = "URL")]
    pub url: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `tidelake table` subcommand.
pub fn run(args: &TableArgs) -> ExitCode {
    let runtime = match crate::io_runtime() {
        Ok(runtime) => runtime,
        Err(e) => return usage_error(e),
    };
    let result = match &args.command {
        TableCommand::History { table, limit } => runtime.block_on(show_history(table, *limit)),
        TableCommand::Files {
            table,
            skipping,
            plot,
        } => runtime.block_on(show_files(table, skipping, plot.as_deref())),
        TableCommand::Optimize { table, args } => {
            runtime.block_on(optimize::show_optimize(table, args))
        }
        TableCommand::Validate { table } => runtime.block_on(show_validation(table)),
        TableCommand::Vacuum { table, args } => runtime.block_on(vacuum::show_vacuum(table, args)),
        TableCommand::Checkpoint { table } => runtime.block_on(checkpoint::show_checkpoint(table)),
    };
    match result {
        Ok(code) => code,
        // The error names the URL already.
        Err(
            e @ (DeltaError::Url { .. }
            | DeltaError::Refused { .. }
            | DeltaError::UnsupportedFeature { .. }),
        ) => usage_error(e.into()),
        // A store that fails (unreachable, denied) fails the command, as it fails a job.
        Err(e @ DeltaError::Store { .. }) => {
            tracing::error!("cannot read table {}: {e}", args.command.table().url);
            ExitCode::from(EXIT_FAILED)
        }
        Err(e) => usage_error(anyhow::anyhow!(
            "cannot read table {}: {e}",
            args.command.table().url
        )),
    }
}

impl TableCommand {
    fn table(&self) -> &TableOptions {
        match self {
            TableCommand::History { table, .. }
            | TableCommand::Files { table, .. }
            | TableCommand::Optimize { table, .. }
            | TableCommand::Validate { table }
            | TableCommand::Vacuum { table, .. }
            | TableCommand::Checkpoint { table } => table,
        }
    }
}

async fn show_history(
    options: &TableOptions,
    limit: Option<usize>,
) -> Result<ExitCode, DeltaError> {
    let table = DeltaTable::open_existing_url(&options.url)?;
    let history = history(&table, limit).await?;
    if options.json {
        print_json(serde_json::to_string_pretty(&history));
    } else {
        print_out(&history_text(&options.url, &history));
    }
    Ok(ExitCode::SUCCESS)
}

async fn show_files(
    options: &TableOptions,
    lookups: &[skipping::Lookups],
    plot: Option<&std::path::Path>,
) -> Result<ExitCode, DeltaError> {
    let table = DeltaTable::open_existing_url(&options.url)?;
    let snapshot = read_existing_snapshot(&table, None).await?;
    let layout = TableLayout::of(&snapshot);
    if let Some(path) = plot
        && let Err(e) = plot_layout(&options.url, &layout, path)
    {
        tracing::error!("{e:#}");
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    let figures = skipping::figures(&snapshot, lookups)?;
    if options.json {
        print_json(skipping::files_json(&layout, &figures));
    } else {
        let text = layout_text(&options.url, &layout) + &skipping::figures_text(&figures);
        print_out(&text);
    }
    Ok(ExitCode::SUCCESS)
}

/// Draws the file-size histogram and the files of each partition of `layout` in
/// `path`.
fn plot_layout(url: &str, layout: &TableLayout, path: &std::path::Path) -> anyhow::Result<()> {
    let sizes: Vec<(String, f64)> = layout
        .size_histogram
        .iter()
        .map(|b| (bucket_label(b), b.files as f64))
        .collect();
    let partitions: Vec<(String, f64)> = layout
        .partitions
        .iter()
        .map(|p| (partition_name(&p.partition_values), p.files.files as f64))
        .collect();
    crate::plot::two_bars(
        path,
        (&format!("{url}: live files by size"), "files", &sizes),
        ("Live files per partition", "files", &partitions),
    )
}

/// Validates the table and prints the report; exit code 1 if it found problems.
async fn show_validation(options: &TableOptions) -> Result<ExitCode, DeltaError> {
    let table = DeltaTable::open_existing_url(&options.url)?;
    let report = validate(&table).await?;
    if options.json {
        print_json(serde_json::to_string_pretty(&report));
    } else {
        print_out(&validation_text(&options.url, &report));
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Writes `text` to stdout, ignoring errors: a reader that stops early (`| head`)
/// is not a failure.
fn print_out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn print_json(json: serde_json::Result<String>) {
    match json {
        Ok(json) => print_out(&format!("{json}\n")),
        // The reports are plain structs of strings and numbers.
        Err(e) => unreachable!("a report serialises to JSON: {e}"),
    }
}

fn history_text(url: &str, history: &History) -> String {
    let mut text = match (history.available_from, history.latest_version) {
        (Some(from), Some(latest)) => format!(
            "Table {url}: version {latest}; history available from version {from} ({}{})\n",
            count(history.available_commits as u64, "commit"),
            if from > 0 {
                ", older commits were cleaned up after a checkpoint"
            } else {
                ""
            }
        ),
        _ => format!("Table {url}: no JSON commits left (only checkpoints)\n"),
    };
    let mut table = TextTable::new(&[
        ("VERSION", Align::Right),
        ("TIMESTAMP", Align::Left),
        ("OPERATION", Align::Left),
        ("ADDS", Align::Right),
        ("REMOVES", Align::Right),
        ("BYTES ADDED", Align::Right),
        ("ENGINE", Align::Left),
        ("TXNS", Align::Left),
        ("PARAMETERS", Align::Left),
    ]);
    for commit in &history.commits {
        let txns: Vec<String> = commit
            .txns
            .iter()
            .map(|t| format!("{}={}", t.app_id, t.version))
            .collect();
        let parameters: Vec<String> = commit
            .operation_parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        table.row(vec![
            commit.version.to_string(),
            commit.timestamp.map_or_else(|| "-".to_owned(), timestamp),
            commit.operation.clone().unwrap_or_else(|| "-".to_owned()),
            group(commit.adds),
            group(commit.removes),
            format_size(commit.bytes_added),
            commit.engine_info.clone().unwrap_or_else(|| "-".to_owned()),
            txns.join(" "),
            parameters.join(" "),
        ]);
    }
    text.push_str(&table.render());
    if history.commits.len() < history.available_commits {
        let _ = writeln!(
            text,
            "({} not shown)",
            count(
                (history.available_commits - history.commits.len()) as u64,
                "older commit"
            )
        );
    }
    text
}

fn layout_text(url: &str, layout: &TableLayout) -> String {
    let total = &layout.total;
    let mut text = format!(
        "Table {url} at version {}: {}, {} rows, {} in {}\n",
        layout.version,
        count(total.files, "live file"),
        rows_cell(total),
        format_size(total.bytes),
        count(layout.partitions.len() as u64, "partition")
    );
    let mut partitions = TextTable::new(&[
        ("PARTITION", Align::Left),
        ("FILES", Align::Right),
        ("ROWS", Align::Right),
        ("BYTES", Align::Right),
        ("MIN FILE", Align::Right),
        ("MEDIAN FILE", Align::Right),
        ("MAX FILE", Align::Right),
    ]);
    for partition in &layout.partitions {
        let name = partition_name(&partition.partition_values);
        partitions.row(group_cells(name, &partition.files));
    }
    partitions.row(group_cells("total".to_owned(), total));
    text.push_str(&partitions.render());
    if total.files_without_row_count > 0 {
        let _ = writeln!(
            text,
            "(≥: {} without numRecords in the stats)",
            count(total.files_without_row_count, "file")
        );
    }
    if total.deleted_rows > 0 {
        let _ = writeln!(
            text,
            "(rows are net of {} that deletion vectors delete)",
            group(total.deleted_rows)
        );
    }

    text.push_str("\nFile sizes:\n");
    let mut sizes = TextTable::new(&[
        ("SIZE", Align::Left),
        ("FILES", Align::Right),
        ("BYTES", Align::Right),
    ]);
    for bucket in &layout.size_histogram {
        sizes.row(vec![
            bucket_label(bucket),
            group(bucket.files),
            format_size(bucket.bytes),
        ]);
    }
    text.push_str(&sizes.render());
    text
}

fn validation_text(url: &str, report: &ValidationReport) -> String {
    let version = report
        .version
        .map_or_else(String::new, |v| format!(" at version {v}"));
    let mut text = format!(
        "Table {url}{version}: {} checked, ",
        count(report.files_checked, "live file")
    );
    if report.is_ok() {
        text.push_str("no problems\n");
        return text;
    }
    let _ = writeln!(text, "{}:", count(report.problems.len() as u64, "problem"));
    for problem in &report.problems {
        let _ = writeln!(text, "  {problem}");
    }
    text
}

/// A duration in ms as hours, as `--retention` takes it: `168h`, `0.5h`.
fn hours(ms: u64) -> String {
    format!("{}h", ms as f64 / 3_600_000.0)
}

/// A time in ms since the epoch as RFC 3339 (`-` before 1970).
fn timestamp(ms: i64) -> String {
    u64::try_from(ms).map_or_else(|_| "-".to_owned(), format_millis)
}

/// A partition as `col=value/…` (`(null)` for a null value), or `(unpartitioned)`.
fn partition_name(values: &BTreeMap<String, Option<String>>) -> String {
    let name: Vec<String> = values
        .iter()
        .map(|(column, value)| format!("{column}={}", value.as_deref().unwrap_or("(null)")))
        .collect();
    if name.is_empty() {
        "(unpartitioned)".to_owned()
    } else {
        name.join("/")
    }
}

/// `n` and `noun`, plural unless `n` is 1: `1 file`, `1,024 files`.
fn count(n: u64, noun: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {noun}{s}", group(n))
}

/// The cells of a partition (or total) row of `tidelake table files`.
fn group_cells(name: String, files: &FileGroup) -> Vec<String> {
    vec![
        name,
        group(files.files),
        rows_cell(files),
        format_size(files.bytes),
        format_size(files.min_file_size),
        format_size(files.median_file_size),
        format_size(files.max_file_size),
    ]
}

/// The row count, marked `≥` when some files' counts are unknown.
fn rows_cell(files: &FileGroup) -> String {
    let at_least = if files.files_without_row_count > 0 {
        "≥"
    } else {
        ""
    };
    format!("{at_least}{}", group(files.rows))
}

fn bucket_label(bucket: &SizeBucket) -> String {
    match (bucket.min_bytes, bucket.max_bytes) {
        (0, Some(max)) => format!("< {}", format_size(max)),
        (min, Some(max)) => format!("{} – {}", format_size(min), format_size(max)),
        (min, None) => format!("≥ {}", format_size(min)),
    }
}

/// `bytes` in binary units: `812 B`, `1.5 KiB`, `8 MiB`.
fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 1024u64;
    for name in UNITS {
        if bytes < unit * 1024 || name == "PiB" {
            return if bytes.is_multiple_of(unit) {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
        unit *= 1024;
    }
    unreachable!("PiB ends the loop")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A text table: a header row and rows of cells, columns padded to their widest cell.
struct TextTable {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    fn new(columns: &[(&'static str, Align)]) -> Self {
        TextTable {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let header: Vec<String> = self.columns.iter().map(|(h, _)| (*h).to_owned()).collect();
        let lines: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                lines
                    .iter()
                    .map(|cells| cells.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        for cells in lines {
            let mut line = String::new();
            for (i, ((_, align), width)) in self.columns.iter().zip(&widths).enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                if i > 0 {
                    line.push_str("  ");
                }
                match align {
                    Align::Left => {
                        let _ = write!(line, "{cell:<width$}");
                    }
                    Align::Right => {
                        let _ = write!(line, "{cell:>width$}");
                    }
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(8 * 1024 * 1024), "8 MiB");
        assert_eq!(format_size(128 * 1024 * 1024 + 1), "128.0 MiB");
        assert_eq!(format_size(1 << 50), "1 PiB");
        assert_eq!(format_size(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn text_tables_pad_columns_to_the_widest_cell() {
        let mut table = TextTable::new(&[("NAME", Align::Left), ("N", Align::Right)]);
        table.row(vec!["a".into(), "1,000".into()]);
        table.row(vec!["longer".into(), "≥2".into()]);
        assert_eq!(
            table.render(),
            "NAME        N\na       1,000\nlonger     ≥2\n"
        );
    }
}
