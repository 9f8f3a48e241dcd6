//! `tidelake generate accounts`: the reference data of generated accounts
//! ([`tidelake_runtime::profiles`]) as a CSV file — every version of each account,
//! with the time it holds from — for a join by event time, or for `tidelake ingest
//! --format csv` into an `accounts` Delta table.
//!
//! Exit codes: 0 written; 1 the file could not be written; 2 a flag is wrong.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::flags::{millis, parse_duration, parse_start};
use tidelake_operators::time::format_millis;
use tidelake_runtime::job::{EXIT_FAILED, EXIT_USAGE};
use tidelake_runtime::profiles::{AccountVersion, ProfileConfig, accounts};

/// `tidelake generate` flags.
#[derive(Clone, Debug, Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[command(subcommand)]
    pub what: GenerateCommand,
}

/// What `tidelake generate` writes.
#[derive(Clone, Debug, Subcommand)]
pub enum GenerateCommand {
    /// The `accounts` reference table of the generator's accounts `0` to `N − 1`:
    /// `accountId,homeCountry,birthYear,creditLimit,openedAt,validFrom`, one row per
    /// version of an account's data (a changed credit limit, a moved home country),
    /// times in RFC 3339 UTC.
    Accounts(AccountsArgs),
}

/// `tidelake generate accounts` flags.
#[derive(Clone, Debug, Args)]
pub struct AccountsArgs {
    /// The seed, as the generator's: the same seed gives the same accounts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Accounts `0` to `N − 1`, as the generator's `--accounts`.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub accounts: u64,
    /// The start of the transactions' event time (RFC 3339 or epoch ms), as the
    /// generator's `--start`: accounts are opened before it.
    #[arg(long, value_name = "TIME", value_parser = parse_start, default_value = "1700000000000")]
    pub start: u64,
    /// How long the transactions' event time lasts: changes fall in it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1d")]
    pub span: Duration,
    /// The share of accounts whose data change during the span (0 to 1).
    #[arg(long, value_name = "SHARE", default_value_t = 0.1)]
    pub update_share: f64,
    /// The CSV file to write (`-` for stdout).
    #[arg(long, value_name = "FILE", default_value = "accounts.csv")]
    pub out: PathBuf,
}

/// Runs `tidelake generate`.
pub fn run(args: &GenerateArgs) -> ExitCode {
    match &args.what {
        GenerateCommand::Accounts(accounts) => write_accounts(accounts),
    }
}

fn write_accounts(args: &AccountsArgs) -> ExitCode {
    if !(0.0..=1.0).contains(&args.update_share) {
        tracing::error!(
            "--update-share {} is not between 0 and 1",
            args.update_share
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let config = ProfileConfig {
        seed: args.seed,
        accounts: args.accounts,
        start_ms: args.start,
        span_ms: millis(args.span),
        update_share: args.update_share,
    };
    let to_stdout = args.out.as_os_str() == "-";
    let out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty());
        let created = parent.map_or(Ok(()), std::fs::create_dir_all);
        match created.and_then(|()| std::fs::File::create(&args.out)) {
            Ok(file) => Box::new(file),
            Err(e) => {
                tracing::error!("cannot create {}: {e}", args.out.display());
                return ExitCode::from(EXIT_FAILED);
            }
        }
    };
    let mut out = BufWriter::new(out);
    let mut rows = 0u64;
    let written = writeln!(
        out,
        "accountId,homeCountry,birthYear,creditLimit,openedAt,validFrom"
    )
    .and_then(|()| {
        for version in accounts(&config) {
            writeln!(out, "{}", csv_line(&version))?;
            rows += 1;
        }
        out.flush()
    });
    if let Err(e) = written {
        tracing::error!("writing {}: {e}", args.out.display());
        return ExitCode::from(EXIT_FAILED);
    }
    if !to_stdout {
        println!(
            "wrote {rows} versions of {} accounts to {}",
            args.accounts,
            args.out.display()
        );
    }
    ExitCode::SUCCESS
}

/// A version as a CSV line (no field needs quoting).
fn csv_line(v: &AccountVersion) -> String {
    format!(
        "{},{},{},{},{},{}",
        v.account_id,
        v.home_country,
        v.birth_year,
        v.credit_limit,
        format_millis(v.opened_at),
        format_millis(v.valid_from)
    )
}
