//! `tidelake table checkpoint URL`: a checkpoint of the latest version, then expired-log
//! cleanup behind it, through the sinks crate's [`checkpoint`] and
//! [`cleanup_expired_logs`]; a report of both (what was removed), as text or JSON.
//!
//! Exit codes: 0 when done; 2 for a missing table or any error.

use std::fmt::Write as _;
use std::process::ExitCode;

use tidelake_sinks::delta::maintenance::cleanup::{
    CheckpointReport, LogCleanupReport, checkpoint, cleanup_expired_logs,
};
use tidelake_sinks::delta::{DeltaError, DeltaTable};

use super::{TableOptions, count, hours, print_json, print_out, timestamp};

/// Checkpoints the table, cleans up its expired log files, and prints both reports.
pub(super) async fn show_checkpoint(options: &TableOptions) -> Result<ExitCode, DeltaError> {
    let table = DeltaTable::open_existing_url(&options.url)?;
    let checkpoint = checkpoint(&table).await?;
    let cleanup = cleanup_expired_logs(&table, table.clock().now_ms()).await?;
    if options.json {
        let json = serde_json::json!({ "checkpoint": checkpoint, "cleanup": cleanup });
        print_json(serde_json::to_string_pretty(&json));
    } else {
        print_out(&checkpoint_text(&options.url, &checkpoint, &cleanup));
    }
    Ok(ExitCode::SUCCESS)
}

fn checkpoint_text(url: &str, checkpoint: &CheckpointReport, cleanup: &LogCleanupReport) -> String {
    let mut text = format!(
        "Table {url}: checkpoint of version {} written ({}: {}, {}; {} left out)\n",
        checkpoint.version,
        count(checkpoint.actions, "action"),
        count(checkpoint.add_files, "live file"),
        count(checkpoint.tombstones, "tombstone"),
        count(checkpoint.expired_tombstones, "expired tombstone"),
    );
    let _ = write!(
        text,
        "Log cleanup (log files older than {}, before {}): ",
        hours(cleanup.retention_ms),
        timestamp(cleanup.cutoff_ms)
    );
    match cleanup.kept_from_checkpoint {
        None => text.push_str(
            "nothing removed: no commit older than the retention has a checkpoint at or before it\n",
        ),
        Some(version) if cleanup.removed.is_empty() => {
            let _ = writeln!(
                text,
                "nothing to remove below the checkpoint of version {version}"
            );
        }
        Some(version) => {
            let _ = writeln!(
                text,
                "removed {} below the checkpoint of version {version}:",
                count(cleanup.removed.len() as u64, "log file")
            );
            for name in &cleanup.removed {
                let _ = writeln!(text, "  _delta_log/{name}");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_what_was_removed() {
        let checkpoint = CheckpointReport {
            version: 12,
            actions: 15,
            add_files: 10,
            tombstones: 2,
            expired_tombstones: 1,
            size_in_bytes: 4096,
        };
        let mut cleanup = LogCleanupReport {
            retention_ms: 30 * 24 * 3_600_000,
            cutoff_ms: 1_714_557_600_000,
            kept_from_checkpoint: Some(10),
            removed: vec![
                "00000000000000000000.json".to_owned(),
                "00000000000000000001.json".to_owned(),
            ],
        };
        assert_eq!(
            checkpoint_text("t", &checkpoint, &cleanup),
            "Table t: checkpoint of version 12 written (15 actions: 10 live files, 2 tombstones; 1 expired tombstone left out)\n\
             Log cleanup (log files older than 720h, before 2024-05-01T10:00:00.000Z): removed 2 log files below the checkpoint of version 10:\n  \
             _delta_log/00000000000000000000.json\n  \
             _delta_log/00000000000000000001.json\n"
        );
        cleanup.removed.clear();
        assert!(
            checkpoint_text("t", &checkpoint, &cleanup)
                .ends_with("nothing to remove below the checkpoint of version 10\n")
        );
        cleanup.kept_from_checkpoint = None;
        assert!(checkpoint_text("t", &checkpoint, &cleanup).ends_with(
            "nothing removed: no commit older than the retention has a checkpoint at or before it\n"
        ));
    }
}
