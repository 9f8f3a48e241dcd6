//! Time helpers: ticks and RFC 3339 formatting.

use chrono::{DateTime, SecondsFormat};

/// The tick of `t`: `t − t mod tick` (docs/semantics.md §2). The timely timestamp of a record.
#[inline]
pub fn tick_of(t: u64, tick: u64) -> u64 {
    t - t % tick
}

/// `ts` (milliseconds since the Unix epoch) as RFC 3339 UTC with milliseconds,
/// e.g. `2019-01-01T02:42:00.000Z`.
pub fn format_millis(ts: u64) -> String {
    i64::try_from(ts)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map(|dt| dt.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ts}ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_formatting() {
        assert_eq!(tick_of(1_234, 100), 1_200);
        assert_eq!(tick_of(1_234, 1), 1_234);
        assert_eq!(format_millis(1_546_310_520_000), "2019-01-01T02:42:00.000Z");
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
    }
}
