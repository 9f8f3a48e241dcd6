//! Parsers of flag values (durations, sizes, counts, rates, times) that every command
//! shares: a leaf module, importing nothing of the binary's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tidelake_runtime::sources::split_size::SplitSize;

/// A record count, or no end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Exactly this many records.
    Finite(u64),
    /// No end.
    Unbounded,
}

/// A rate limit, or none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// Records per second of wall time.
    PerSecond(f64),
    /// As fast as possible.
    Unthrottled,
}

/// A duration in whole milliseconds.
pub fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The generator's default start: now, rounded down to the second.
pub fn now_rounded_to_second() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_secs() * 1000
}

/// Parses a duration such as `250ms`, `10s` or `168h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("'{text}' is not a duration like 250ms, 10s or 168h ({e})"))
}

/// Parses a size such as `128MiB` or `64MB`.
pub fn parse_size_arg(text: &str) -> Result<u64, String> {
    parse_size::parse_size(text)
        .map_err(|e| format!("'{text}' is not a size like 128MiB or 64MB ({e})"))
}

/// Parses `--split-size`: `auto`, or a size like 64MiB.
pub fn parse_split_size(text: &str) -> Result<SplitSize, String> {
    match text {
        "auto" => Ok(SplitSize::Auto),
        size => parse_size_arg(size).map(SplitSize::Bytes),
    }
}

/// Parses a record count: a whole number, or `unbounded`.
pub fn parse_count(text: &str) -> Result<Count, String> {
    match text {
        "unbounded" => Ok(Count::Unbounded),
        n => n
            .replace('_', "")
            .parse()
            .map(Count::Finite)
            .map_err(|_| format!("'{text}' is not a count (a whole number, or `unbounded`)")),
    }
}

/// Parses a rate: records per second above 0, or `unthrottled`.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    match text {
        "unthrottled" => Ok(Rate::Unthrottled),
        n => match n.replace('_', "").parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "'{text}' is not a rate (records per second > 0, or `unthrottled`)"
            )),
        },
    }
}

/// Parses a start time: RFC 3339, or epoch milliseconds.
pub fn parse_start(text: &str) -> Result<u64, String> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
        .ok_or_else(|| {
            format!("'{text}' is neither RFC 3339 (2024-05-01T00:00:00Z) nor epoch milliseconds")
        })
}
