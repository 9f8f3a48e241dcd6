//! Log lines on stderr, through `tracing`: what the program says as it starts, forms a
//! cluster, commits (at debug level), retries, drops a connection or fails.
//!
//! Two formats (`--log-format`): `text` (the default) writes `tidelake: <message>`,
//! with `warning: ` or `error: ` after the prefix for those levels, as the command has
//! always written; `json` writes one JSON object a line with `timestamp`, `level`,
//! `target`, `message` and the event's fields (a commit's table, epoch and version, a
//! status line's counters, …), which the text form leaves to the message. Which events show is set like
//! `RUST_LOG` (`RUST_LOG=debug`, `RUST_LOG=tidelake_sinks=debug`; default `info`, without
//! the Delta Kernel's events). The
//! live status line of a terminal is not a log line and stays as it is.

use std::fmt;
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::ValueEnum;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `tidelake: message key=value`, for people.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

impl LogFormat {
    /// The flag's value.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// What shows without `RUST_LOG`: tidelake's events from info up. The Delta Kernel's
/// own events (each snapshot it builds, each error it returns, which tidelake reports
/// itself) show only when `RUST_LOG` asks for them, e.g. `RUST_LOG=info,delta_kernel=debug`.
const DEFAULT_FILTER: &str = "info,delta_kernel=off,delta_kernel_default_engine=off";

/// Installs the log writer for the process (the first call wins).
pub fn init(format: LogFormat) {
    if FORMAT.set(format).is_err() {
        return;
    }
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.event_format(Plain).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// The format logs are written in.
pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Writes a report meant to be read whole (a job's summary): as it is in the text
/// format, as one `info` event in the JSON format.
pub fn report(text: &str) {
    match format() {
        LogFormat::Text => eprintln!("{text}"),
        LogFormat::Json => tracing::info!(target: "tidelake::summary", "{text}"),
    }
}

/// The text format: `tidelake[ launch| bench]: [warning: |error: |debug: ]message`.
struct Plain;

/// Takes an event's `message`.
#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let target = event.metadata().target();
        let command = if target.starts_with("tidelake::launch") {
            "tidelake launch"
        } else if target.starts_with("tidelake::bench") {
            "tidelake bench"
        } else {
            "tidelake"
        };
        write!(writer, "{command}: ")?;
        match *event.metadata().level() {
            Level::ERROR => write!(writer, "error: ")?,
            Level::WARN => write!(writer, "warning: ")?,
            Level::DEBUG => write!(writer, "debug: ")?,
            Level::TRACE => write!(writer, "trace: ")?,
            Level::INFO => {}
        }
        let mut message = Message::default();
        event.record(&mut message);
        writeln!(writer, "{}", message.0)
    }
}

/// Reports a usage error (a clap error as clap prints it, help and version included)
/// and returns the exit code it means: 0 for help and version, 2 for the rest.
pub fn usage_error(e: anyhow::Error) -> ExitCode {
    if let Some(clap_error) = e.downcast_ref::<clap::Error>() {
        let _ = clap_error.print();
        return match clap_error.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                ExitCode::SUCCESS
            }
            _ => ExitCode::from(tidelake_runtime::job::EXIT_USAGE),
        };
    }
    tracing::error!("{e:#}");
    ExitCode::from(tidelake_runtime::job::EXIT_USAGE)
}
