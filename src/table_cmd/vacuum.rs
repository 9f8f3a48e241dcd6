//! `tidelake table vacuum URL`: deleting the data files no live version references
//! that are older than the retention, through the sinks crate's [`vacuum`]; a report of
//! every file deleted (or, with `--dry-run`, to delete), as text or JSON.
//!
//! Exit codes: 0 when done; 2 for a retention shorter than the table's without
//! `--force`, a missing table or any other error.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tidelake_sinks::delta::maintenance::vacuum::{
    Unreferenced, VacuumOptions, VacuumReport, vacuum,
};
use tidelake_sinks::delta::{DeltaError, DeltaTable};

use super::{
    Align, TableOptions, TextTable, count, format_size, hours, print_json, print_out, timestamp,
};
use crate::flags::parse_duration;

/// `tidelake table vacuum` options.
#[derive(Debug, Args)]
pub struct VacuumArgs {
    /// Keep unreferenced files this long, e.g. 168h [default: the table's
    /// delta.deletedFileRetentionDuration, 168h if unset]; shorter than that needs
    /// --force.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    retention: Option<Duration>,
    /// Only list the files that would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// Allow a retention shorter than the table's: files that readers of older versions,
    /// or writers that have not committed yet, still need may be deleted.
    #[arg(long)]
    force: bool,
}

impl VacuumArgs {
    /// The library's options, as of now.
    fn options(&self) -> VacuumOptions {
        VacuumOptions {
            retention: self.retention,
            dry_run: self.dry_run,
            enforce_retention: !self.force,
            ..VacuumOptions::default()
        }
    }
}

/// Vacuums the table (or only lists what it would delete) and prints the report.
pub(super) async fn show_vacuum(
    options: &TableOptions,
    args: &VacuumArgs,
) -> Result<ExitCode, DeltaError> {
    let table = DeltaTable::open_existing_url(&options.url)?;
    let report = vacuum(&table, &args.options()).await?;
    if options.json {
        print_json(serde_json::to_string_pretty(&report));
    } else {
        print_out(&vacuum_text(&options.url, &report));
    }
    Ok(ExitCode::SUCCESS)
}

fn vacuum_text(url: &str, report: &VacuumReport) -> String {
    let (verb, commits) = match report.commits.as_slice() {
        _ if report.dry_run => ("would delete", String::new()),
        [] => ("deleted", String::new()),
        [start, end, ..] => (
            "deleted",
            format!(", committed as VACUUM START (version {start}) and END (version {end})"),
        ),
        [start] => (
            "deleted",
            format!(", committed as VACUUM START (version {start})"),
        ),
    };
    let mut text = format!(
        "Table {url} at version {}: vacuum {verb} {} ({}) unreferenced for longer than {} (before {}){commits}\n",
        report.version,
        count(report.files.len() as u64, "file"),
        format_size(report.bytes),
        hours(report.retention_ms),
        timestamp(report.cutoff_ms),
    );
    if !report.files.is_empty() {
        let mut files = TextTable::new(&[
            ("PATH", Align::Left),
            ("SIZE", Align::Right),
            ("UNREFERENCED", Align::Left),
            ("SINCE", Align::Left),
        ]);
        for file in &report.files {
            let reason = match file.reason {
                Unreferenced::Removed => "removed",
                Unreferenced::Untracked => "untracked",
            };
            files.row(vec![
                file.path.clone(),
                format_size(file.size),
                reason.to_owned(),
                timestamp(file.since_ms),
            ]);
        }
        text.push_str(&files.render());
    }
    let _ = writeln!(
        text,
        "Kept: {} and {} within the retention.",
        count(report.live_files, "live file"),
        count(report.retained_files, "unreferenced file")
    );
    text
}

#[cfg(test)]
mod tests {
    use tidelake_sinks::delta::maintenance::vacuum::VacuumFile;

    use super::*;

    #[test]
    fn the_report_names_every_file_and_what_was_kept() {
        let mut report = VacuumReport {
            version: 7,
            dry_run: true,
            retention_ms: 0,
            cutoff_ms: 1_714_557_600_000,
            files: vec![VacuumFile {
                path: "date=2024-05-01/part-0.parquet".to_owned(),
                size: 2048,
                reason: Unreferenced::Removed,
                since_ms: 1_714_557_000_000,
            }],
            bytes: 2048,
            live_files: 3,
            retained_files: 0,
            commits: Vec::new(),
        };
        assert_eq!(
            vacuum_text("t", &report),
            "Table t at version 7: vacuum would delete 1 file (2 KiB) unreferenced for longer than 0h (before 2024-05-01T10:00:00.000Z)\n\
             PATH                             SIZE  UNREFERENCED  SINCE\n\
             date=2024-05-01/part-0.parquet  2 KiB  removed       2024-05-01T09:50:00.000Z\n\
             Kept: 3 live files and 0 unreferenced files within the retention.\n"
        );
        report.dry_run = false;
        report.commits = vec![8, 9];
        let text = vacuum_text("t", &report);
        assert!(
            text.starts_with("Table t at version 7: vacuum deleted 1 file (2 KiB) unreferenced for longer than 0h (before 2024-05-01T10:00:00.000Z), committed as VACUUM START (version 8) and END (version 9)\n"),
            "{text}"
        );
    }
}
