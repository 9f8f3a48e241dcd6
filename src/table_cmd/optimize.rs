//! `tidelake table optimize URL`: bin-packing or Z-ordering through the sinks crate's
//! [`optimize`], with a progress bar on stderr when it is a terminal, and a report of
//! every partition (text, or JSON with `--json`).
//!
//! Exit codes: 0 when done, even if some partitions were given up (the report names
//! them and why); 2 for a bad argument or a missing table; 1 for any other error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tidelake_sinks::delta::maintenance::optimize::{
    OptimizeOptions, OptimizeReport, PartitionOutcome, Progress, default_min_file_size, optimize,
};
use tidelake_sinks::delta::{DeltaError, DeltaTable};

use super::{
    Align, TableOptions, TextTable, count, format_size, partition_name, print_json, print_out,
};
use crate::flags::parse_size_arg;
use crate::progress_bar::ProgressBar;
use crate::status::group;
use tidelake_runtime::job::EXIT_FAILED;

/// `tidelake table optimize` options.
#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// Only the partitions where COLUMN is VALUE, e.g. date=2024-05-01 (repeat for
    /// several columns; __HIVE_DEFAULT_PARTITION__ is null).
    #[arg(long = "where", value_name = "COLUMN=VALUE", value_parser = parse_partition_value)]
    pub partition_filter: Vec<(String, String)>,
    /// Pack small files into files of about this size.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, default_value = "128MiB")]
    pub target_file_size: u64,
    /// Files smaller than this are compacted [default: 3/4 of the target size].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub min_file_size: Option<u64>,
    /// Compact a partition only if it has at least N such files.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_files: usize,
    /// Order rows along a Z-order curve of these columns, so that lookups on any of them
    /// skip most files; every file of a partition is rewritten.
    #[arg(long, value_name = "COLUMN[,COLUMN…]", value_delimiter = ',')]
    pub zorder_by: Vec<String>,
    /// Z-order: memory for sorting a partition's rows; beyond it, sorted runs are
    /// written to --spill-dir and merged.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, default_value = "512MiB")]
    pub sort_memory: u64,
    /// Z-order: where sorted runs are written [default: the temporary directory, TMPDIR].
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
}

impl OptimizeArgs {
    fn options(&self) -> OptimizeOptions {
        OptimizeOptions {
            partition_filter: self.partition_filter.clone(),
            target_file_size: self.target_file_size,
            min_file_size: self
                .min_file_size
                .unwrap_or_else(|| default_min_file_size(self.target_file_size)),
            min_files: self.min_files,
            zorder_by: self.zorder_by.clone(),
            sort_memory: usize::try_from(self.sort_memory).unwrap_or(usize::MAX),
            spill_dir: self.spill_dir.clone().unwrap_or_else(std::env::temp_dir),
            ..OptimizeOptions::default()
        }
    }
}

/// Parses `COLUMN=VALUE`.
fn parse_partition_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((column, value)) if !column.is_empty() => Ok((column.to_owned(), value.to_owned())),
        _ => Err(format!(
            "'{text}' is not COLUMN=VALUE, e.g. date=2024-05-01"
        )),
    }
}

/// Optimizes the table and prints the report. Errors the caller reports as usage
/// errors (exit 2: a missing table, a bad argument) are returned; any other error is
/// printed here and exits 1.
pub async fn show_optimize(
    options: &TableOptions,
    args: &OptimizeArgs,
) -> Result<ExitCode, DeltaError> {
    let table = DeltaTable::open_existing_url(&options.url)?;
    let mut bar = ProgressBar::on_terminal();
    let result = optimize(&table, &args.options(), &mut |p| {
        show_progress(&mut bar, &p)
    })
    .await;
    bar.clear();
    match result {
        Ok(report) => {
            if options.json {
                print_json(serde_json::to_string_pretty(&report));
            } else {
                print_out(&report_text(&options.url, args, &report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_configuration() => Err(e),
        Err(e) => {
            tracing::error!("cannot optimize table {}: {e}", options.url);
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}

fn report_text(url: &str, args: &OptimizeArgs, report: &OptimizeReport) -> String {
    let what = if args.zorder_by.is_empty() {
        "bin-packing".to_owned()
    } else {
        format!("z-ordering by {}", args.zorder_by.join(", "))
    };
    let skipped = report.partitions.len() - report.partitions_compacted - report.partitions_gave_up;
    let mut text = format!(
        "Table {url} from version {}, {what} to {}: {} compacted, {} given up, {} skipped; {} ({}) rewritten as {} ({})\n",
        report.read_version,
        format_size(args.target_file_size),
        count(report.partitions_compacted as u64, "partition"),
        group(report.partitions_gave_up as u64),
        group(skipped as u64),
        count(report.files_removed as u64, "file"),
        format_size(report.bytes_removed),
        count(report.files_added as u64, "file"),
        format_size(report.bytes_added),
    );
    let mut table = TextTable::new(&[
        ("PARTITION", Align::Left),
        ("OUTCOME", Align::Left),
        ("VERSION", Align::Right),
        ("FILES", Align::Right),
        ("BYTES", Align::Right),
        ("ROWS", Align::Right),
        ("WHY", Align::Left),
    ]);
    for outcome in &report.partitions {
        let name = partition_name(outcome.partition());
        table.row(match outcome {
            PartitionOutcome::Compacted {
                version,
                attempts,
                removed,
                added,
                bytes_removed,
                bytes_added,
                rows,
                ..
            } => vec![
                name,
                "compacted".into(),
                version.to_string(),
                format!("{} → {}", group(*removed as u64), group(*added as u64)),
                format!(
                    "{} → {}",
                    format_size(*bytes_removed),
                    format_size(*bytes_added)
                ),
                group(*rows),
                if *attempts > 1 {
                    format!("committed at attempt {attempts}")
                } else {
                    String::new()
                },
            ],
            PartitionOutcome::GaveUp { reason, .. } => {
                vec![
                    name,
                    "given up".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    reason.clone(),
                ]
            }
            PartitionOutcome::Skipped { files, reason, .. } => vec![
                name,
                "skipped".into(),
                "-".into(),
                group(*files as u64),
                "-".into(),
                "-".into(),
                reason.clone(),
            ],
        });
    }
    text.push_str(&table.render());
    text
}

/// Draws optimize's progress: the share of bytes read, and partitions done.
fn show_progress(bar: &mut ProgressBar, progress: &Progress) {
    let done = progress.partitions_done == progress.partitions;
    let fraction = if progress.bytes == 0 {
        1.0
    } else {
        progress.bytes_read as f64 / progress.bytes as f64
    };
    let text = format!(
        "{}/{} partitions, {} of {}",
        progress.partitions_done,
        progress.partitions,
        format_size(progress.bytes_read),
        format_size(progress.bytes),
    );
    bar.show(Some(fraction), &text, done);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_parse_as_column_equals_value() {
        assert_eq!(
            parse_partition_value("date=2024-05-01"),
            Ok(("date".to_owned(), "2024-05-01".to_owned()))
        );
        assert_eq!(
            parse_partition_value("k=a=b"),
            Ok(("k".to_owned(), "a=b".to_owned()))
        );
        assert!(parse_partition_value("=x").is_err());
        assert!(parse_partition_value("date").is_err());
    }
}
