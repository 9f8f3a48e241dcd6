//! `tidelake checkpoints list|show DIR`: a job's checkpoints read back
//! (`tidelake_runtime::checkpoint`, docs/checkpoints.md), as text tables or JSON.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

use tidelake_runtime::checkpoint::{
    CheckpointError, CheckpointStore, Contents, Manifest, Part, Status, at_rule_time,
};
use tidelake_runtime::job::EXIT_FAILED;

use crate::logging::usage_error;
use crate::status::group;

/// `tidelake checkpoints`: what is in a job's checkpoint directory.
#[derive(Debug, Args)]
pub struct CheckpointsArgs {
    /// What to show.
    #[command(subcommand)]
    pub command: CheckpointsCommand,
}

/// `tidelake checkpoints` subcommands.
#[derive(Debug, Subcommand)]
pub enum CheckpointsCommand {
    /// Every checkpoint: id, kind, rule time, size, parts, workers, and whether it can
    /// be restored (its manifest reads and every part it names is there whole).
    List {
        /// The directory.
        #[command(flatten)]
        dir: DirOptions,
    },
    /// One checkpoint in full, its parts read and checked against their checksums:
    /// each worker's source positions, keyed state and output lengths.
    Show {
        /// The directory.
        #[command(flatten)]
        dir: DirOptions,
        /// The checkpoint (default: the newest).
        #[arg(long, value_name = "ID")]
        id: Option<u64>,
    },
}

/// The directory and the output format.
#[derive(Debug, Args)]
pub struct DirOptions {
    /// The checkpoint directory: a path, file://, s3://bucket/path or memory://.
    #[arg(value_name = "DIR")]
    pub dir: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `tidelake checkpoints` subcommand: exit 0, 1 when the store fails or a
/// checkpoint shown cannot be read, 2 when there is no such directory or checkpoint.
pub fn run(args: &CheckpointsArgs) -> ExitCode {
    let runtime = match crate::io_runtime() {
        Ok(runtime) => runtime,
        Err(e) => return usage_error(e),
    };
    let (options, result) = match &args.command {
        CheckpointsCommand::List { dir } => (dir, runtime.block_on(list(dir))),
        CheckpointsCommand::Show { dir, id } => (dir, runtime.block_on(show(dir, *id))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ CheckpointError::Location { .. }) => usage_error(e.into()),
        Err(e @ CheckpointError::Store { .. }) => {
            tracing::error!("cannot read checkpoints in {}: {e}", options.dir);
            ExitCode::from(EXIT_FAILED)
        }
        Err(e @ CheckpointError::Exists(_)) => usage_error(e.into()),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

async fn list(options: &DirOptions) -> Result<(), CheckpointError> {
    let store = CheckpointStore::open_existing(&options.dir)?;
    let contents = store.contents().await?;
    if options.json {
        print_json(&contents);
    } else {
        print!("{}", list_text(&options.dir, &contents));
    }
    Ok(())
}

/// The text of `checkpoints list`.
fn list_text(dir: &str, contents: &Contents) -> String {
    let mut text = format!(
        "{dir}: {} checkpoint(s)\n",
        group(contents.checkpoints.len() as u64)
    );
    let _ = writeln!(
        text,
        "{:>6}  {:<10}  {:<26}  {:>12}  {:>5}  {:>9}  status",
        "id", "kind", "rule time", "bytes", "parts", "workers"
    );
    for listing in &contents.checkpoints {
        let status = match &listing.status {
            Status::Complete => "complete".to_owned(),
            Status::Unusable(reason) => format!("unusable: {reason}"),
        };
        let (kind, time, parts, workers) = match &listing.manifest {
            Some(m) => (
                m.kind.name().to_owned(),
                rule_time(m.rule_time),
                m.parts.len().to_string(),
                format!("{}×{}", m.layout.processes, m.layout.workers),
            ),
            None => ("?".into(), "?".into(), "?".into(), "?".into()),
        };
        let _ = writeln!(
            text,
            "{:>6}  {kind:<10}  {time:<26}  {:>12}  {parts:>5}  {workers:>9}  {status}",
            listing.id,
            group(listing.bytes)
        );
    }
    if contents.loose_parts > 0 {
        let _ = writeln!(
            text,
            "{} part file(s) ({} bytes) in no checkpoint: being written for the next, or left by a run that stopped",
            group(contents.loose_parts as u64),
            group(contents.loose_bytes)
        );
    }
    text
}

/// A checkpoint read whole, as `checkpoints show --json` prints it.
#[derive(Serialize)]
struct Shown {
    manifest: Manifest,
    parts: Vec<Part>,
}

async fn show(options: &DirOptions, id: Option<u64>) -> Result<(), CheckpointError> {
    let store = CheckpointStore::open_existing(&options.dir)?;
    let contents = store.contents().await?;
    let listing = match id {
        Some(id) => contents.checkpoints.iter().find(|l| l.id == id),
        None => contents.checkpoints.last(),
    };
    let Some(listing) = listing else {
        return Err(CheckpointError::Location {
            url: options.dir.clone(),
            message: match id {
                Some(id) => format!("there is no checkpoint {id} here"),
                None => "there is no checkpoint here".to_owned(),
            },
        });
    };
    let manifest = store.read_manifest(listing.id).await?;
    let parts = store.read_parts(&manifest).await?;
    if options.json {
        print_json(&Shown { manifest, parts });
    } else {
        print!("{}", show_text(&manifest, &parts));
    }
    Ok(())
}

/// The text of `checkpoints show`.
fn show_text(manifest: &Manifest, parts: &[Part]) -> String {
    let mut text = format!(
        "{} {} of job {} (run {}) at {}, taken by {} process(es) of {} worker(s), {} key groups, written {}\n",
        manifest.kind.name(),
        manifest.id,
        manifest.job_id,
        manifest.attempt,
        at_rule_time(manifest.rule_time),
        manifest.layout.processes,
        manifest.layout.workers,
        manifest.layout.key_groups,
        rule_time(manifest.created_ms.max(0) as u64)
    );
    let _ = writeln!(text, "settings:");
    for (name, value) in &manifest.settings {
        let _ = writeln!(text, "  {name} = {value}");
    }
    for (entry, part) in manifest.parts.iter().zip(parts) {
        let _ = writeln!(
            text,
            "worker {}: {} ({} bytes, crc32c {:#010x}): {} keys, {} timers",
            entry.worker,
            entry.file,
            group(entry.size),
            entry.crc32c,
            group(part.keys()),
            group(part.timers())
        );
        for state in &part.sources {
            let _ = writeln!(
                text,
                "  partition {}: resume at {} (after {} lines), read to {}{}",
                state.partition,
                state.resume.offset,
                state.resume.lines,
                state.read_until.offset,
                if state.done { " (the end)" } else { "" },
            );
        }
        for operator in &part.operators {
            let keys: u64 = operator.groups.iter().map(|g| g.keys).sum();
            let _ = writeln!(
                text,
                "  {}: {} key groups, {} keys",
                operator.operator,
                operator.groups.len(),
                group(keys)
            );
        }
        for output in &part.outputs {
            let _ = writeln!(
                text,
                "  {}: {} bytes, {} lines",
                output.output,
                group(output.bytes),
                group(output.lines)
            );
        }
    }
    text
}

fn rule_time(ms: u64) -> String {
    match ms {
        u64::MAX => "end of input".to_owned(),
        ms => tidelake_operators::time::format_millis(ms),
    }
}

fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(json) => println!("{json}"),
        // The listings are plain structs of strings and numbers.
        Err(e) => unreachable!("a listing serialises to JSON: {e}"),
    }
}
