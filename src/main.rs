//! The `tidelake` command: flags → validated job config → the runtime.

mod allocator;
mod bench;
mod checkpoints_cmd;
mod cli;
mod flags;
mod generate_cmd;
mod ingest_cmd;
mod job_file;
mod launch;
mod logging;
mod plot;
mod produce_cmd;
mod progress_bar;
mod report_cmd;
mod status;
mod table_cmd;
mod train_cmd;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{CommandFactory, FromArgMatches, Parser};

use cli::{Cli, Command, RunArgs};
use tidelake_runtime::cluster::launcher_watch::LauncherWatch;
use tidelake_runtime::job::{EXIT_FAILED, EXIT_USAGE};
use tidelake_runtime::jobs::{self, BuiltIn};
use tidelake_runtime::sources::SourceRecord;
use tidelake_runtime::{Job, JobConfig, JobError};

fn main() -> ExitCode {
    allocator::fix_mmap_threshold();
    tidelake_runtime::panic::abort_on_any_panic();
    let args: Vec<String> = std::env::args().collect();
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(e) => {
            logging::init(logging::LogFormat::default());
            return logging::usage_error(e);
        }
    };
    logging::init(cli.log_format);
    match cli
        .command
        .unwrap_or_else(|| Command::Run(Box::new(default_run_args())))
    {
        Command::Run(run_args) => run(run_args.job_config(), &run_args, None),
        Command::Table(table_args) => table_cmd::run(&table_args),
        Command::Checkpoints(checkpoints_args) => checkpoints_cmd::run(&checkpoints_args),
        Command::Worker(worker_args) => run(
            worker_args.job_config(),
            &worker_args.run,
            worker_args.launcher_pid,
        ),
        Command::Launch(launch_args) => launch::launch(&launch_args, &args[2..]),
        Command::Produce(produce_args) => produce_cmd::run(&produce_args),
        Command::Ingest(ingest_args) => ingest_cmd::run(&ingest_args),
        Command::Generate(generate_args) => generate_cmd::run(&generate_args),
        Command::Train(train_args) => train_cmd::run(&train_args),
        Command::Report(report_args) => report_cmd::run(&report_args),
        Command::Bench(bench_args) => match bench::run(&bench_args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::from(EXIT_FAILED)
            }
        },
    }
}

/// Parses the command line, merging a `--config` job file under the flags given.
fn parse(args: &[String]) -> anyhow::Result<Cli> {
    let cli = Cli::try_parse_from(args)?;
    let (name, run_args) = match &cli.command {
        Some(Command::Run(run_args)) => ("run", &**run_args),
        Some(Command::Worker(worker_args)) => ("worker", &worker_args.run),
        Some(Command::Launch(launch_args)) => ("launch", &launch_args.run),
        Some(
            Command::Table(_)
            | Command::Checkpoints(_)
            | Command::Bench(_)
            | Command::Produce(_)
            | Command::Ingest(_)
            | Command::Generate(_)
            | Command::Train(_)
            | Command::Report(_),
        )
        | None => {
            return Ok(cli);
        }
    };
    let Some(path) = &run_args.config else {
        return Ok(cli);
    };
    let command = Cli::command();
    let subcommand = command
        .find_subcommand(name)
        .expect("the subcommand exists");
    let given = &args[2..];
    let mut merged: Vec<String> = args[..2].to_vec();
    merged.extend(job_file::flags_from_file(path, subcommand, given)?);
    merged.extend(given.iter().cloned());
    // The command line alone parsed, so an error now comes from the job file's values.
    Cli::try_parse_from(&merged).map_err(|e| {
        anyhow::anyhow!(
            "in job file {}: {}",
            path.display(),
            e.render()
                .to_string()
                .trim_start_matches("error: ")
                .trim_end()
        )
    })
}

fn default_run_args() -> RunArgs {
    let matches = Cli::command().get_matches_from(["tidelake", "run"]);
    match Cli::from_arg_matches(&matches).map(|c| c.command) {
        Ok(Some(Command::Run(args))) => *args,
        _ => unreachable!("`tidelake run` parses"),
    }
}

/// A single-threaded Tokio runtime for the commands that read and write tables and
/// checkpoints from synchronous code (`table`, `checkpoints`, `ingest`, `train`, `report`).
pub(crate) fn io_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the I/O runtime: {e}"))
}

/// Runs a job (`run`, or one `worker` of a cluster, started by the `launcher` pid if
/// given) and prints its summary.
fn run(config: Result<JobConfig, String>, args: &RunArgs, launcher: Option<u32>) -> ExitCode {
    let config = match config {
        Ok(config) => config,
        Err(message) => return logging::usage_error(anyhow::anyhow!(message)),
    };
    match jobs::pipeline(&config.rule) {
        Err(e) => logging::usage_error(e.into()),
        Ok(BuiltIn::Transactions(pipeline)) => {
            run_job(Job::with_pipeline(config, pipeline), args, launcher)
        }
        Ok(BuiltIn::Rich(pipeline)) => {
            run_job(Job::with_pipeline(config, pipeline), args, launcher)
        }
    }
}

/// Runs `job` (records `R`) and prints its summary.
fn run_job<R: SourceRecord>(
    job: Result<Job<R>, JobError>,
    args: &RunArgs,
    launcher: Option<u32>,
) -> ExitCode {
    let job = match job {
        Ok(job) => job,
        Err(e) => return logging::usage_error(e.into()),
    };
    let control = job.control();
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    // First Ctrl-C: stop reading and finish cleanly; second: exit at once.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        tracing::info!("stopping (Ctrl-C again to exit at once)");
        control.request_stop();
    });

    let watch = launcher.map(|pid| LauncherWatch::start(pid, job.control()));
    let status = status::StatusLine::start(job.metrics(), args.quiet, args.status_interval);
    let result = job.run();
    drop(status);
    drop(watch);
    match result {
        Ok(report) => {
            logging::report(&status::summary(&report));
            if let Some(path) = &args.report_json
                && let Err(e) = launch::write_json(path, &report.process_report())
            {
                tracing::error!("{e:#}");
                return ExitCode::from(EXIT_FAILED);
            }
            job.linger();
            ExitCode::SUCCESS
        }
        Err(e) if e.exit_code() == EXIT_USAGE => logging::usage_error(e.into()),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
