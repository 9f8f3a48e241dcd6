//! How long a table keeps what it no longer needs: removed data files (until VACUUM may
//! delete them, and until checkpoints drop their tombstones) and log files (until log
//! cleanup may delete them).
//!
//! Both are table properties in `metaData.configuration`, written in Delta's interval
//! syntax (`interval 1 week`, `interval 30 days`): [`DELETED_FILE_RETENTION`] (default 1
//! week) and [`LOG_RETENTION`] (default 30 days). Something has expired when its
//! timestamp is before the [`cutoff_ms`] of its retention.

use std::time::Duration;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::Remove;
use crate::delta::protocol::snapshot::Snapshot;

/// How long removed data files stay restorable by time travel: VACUUM deletes them, and
/// checkpoints leave out their tombstones, only after this.
pub const DELETED_FILE_RETENTION: &str = "delta.deletedFileRetentionDuration";

/// How long log files (JSON commits, checkpoints) stay: log cleanup deletes older ones.
pub const LOG_RETENTION: &str = "delta.logRetentionDuration";

/// [`DELETED_FILE_RETENTION`] when the table does not set it: 1 week.
pub const DEFAULT_DELETED_FILE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// [`LOG_RETENTION`] when the table does not set it: 30 days.
pub const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The table's [`DELETED_FILE_RETENTION`], or its default; an error naming the property
/// if its value does not parse.
pub fn deleted_file_retention(snapshot: &Snapshot) -> Result<Duration, DeltaError> {
    interval_property(
        snapshot,
        DELETED_FILE_RETENTION,
        DEFAULT_DELETED_FILE_RETENTION,
    )
}

/// The table's [`LOG_RETENTION`], or its default; an error naming the property if its
/// value does not parse.
pub fn log_retention(snapshot: &Snapshot) -> Result<Duration, DeltaError> {
    interval_property(snapshot, LOG_RETENTION, DEFAULT_LOG_RETENTION)
}

/// Checks that the table's retention properties parse. A writer calls it when it opens
/// the table: its checkpoints and log cleanup read them after its commits, so a bad
/// value must stop it before it writes, not after its tenth commit.
pub fn check_retention_properties(snapshot: &Snapshot, table: &str) -> Result<(), DeltaError> {
    deleted_file_retention(snapshot)
        .and_then(|_| log_retention(snapshot))
        .map(|_| ())
        .map_err(|e| DeltaError::Unsupported {
            table: table.to_owned(),
            detail: e.to_string(),
        })
}

fn interval_property(
    snapshot: &Snapshot,
    key: &str,
    default: Duration,
) -> Result<Duration, DeltaError> {
    let value = snapshot
        .metadata
        .as_ref()
        .and_then(|m| m.configuration.get(key));
    match value {
        None => Ok(default),
        Some(value) => parse_interval(value).map_err(|detail| DeltaError::InvalidProperty {
            key: key.to_owned(),
            value: value.clone(),
            detail,
        }),
    }
}

/// The time (ms since the epoch) before which something kept for `retention` has
/// expired at `now_ms`: it has expired if its timestamp is earlier than this.
pub fn cutoff_ms(now_ms: i64, retention: Duration) -> i64 {
    now_ms.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
}

/// True if `remove`'s tombstone has expired at `cutoff_ms` (see [`cutoff_ms`]): its
/// `deletionTimestamp` is earlier, or missing (taken as 0, as Spark and delta-rs do).
pub fn tombstone_expired(remove: &Remove, cutoff_ms: i64) -> bool {
    remove.deletion_timestamp.unwrap_or(0) < cutoff_ms
}

/// Parses Delta's interval syntax, as Spark writes table properties: `interval <n>
/// <unit>`, with `<unit>` one of `nanosecond`, `microsecond`, `millisecond`, `second`,
/// `minute`, `hour`, `day` or `week` (singular or plural), case-insensitive; the leading
/// `interval` may be left out. Months and years are refused: they have no fixed length.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let lower = text.trim().to_ascii_lowercase();
    let mut words = lower.split_whitespace().peekable();
    words.next_if_eq(&"interval");
    let (Some(number), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err("expected `interval <number> <unit>`, e.g. `interval 1 week`".to_owned());
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a whole number ≥ 0"))?;
    let nanos_per_unit: u64 = match unit.strip_suffix('s').unwrap_or(unit) {
        "nanosecond" => 1,
        "microsecond" => 1_000,
        "millisecond" => 1_000_000,
        "second" => 1_000_000_000,
        "minute" => 60 * 1_000_000_000,
        "hour" => 3_600 * 1_000_000_000,
        "day" => 86_400 * 1_000_000_000,
        "week" => 7 * 86_400 * 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit `{unit}`: use nanoseconds, microseconds, milliseconds, seconds, minutes, hours, days or weeks"
            ));
        }
    };
    let nanos = u128::from(n) * u128::from(nanos_per_unit);
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| "too long".to_owned())?;
    // The remainder is below 10^9, so it fits.
    let subsec = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, subsec))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::delta::protocol::actions::{Format, Metadata};

    #[test]
    fn intervals_in_every_unit() {
        let cases = [
            ("interval 1 week", Duration::from_secs(7 * 86_400)),
            ("interval 30 days", Duration::from_secs(30 * 86_400)),
            ("INTERVAL 2 Hours", Duration::from_secs(7_200)),
            ("interval 1 hour", Duration::from_secs(3_600)),
            ("interval 5 minutes", Duration::from_secs(300)),
            ("interval 1 second", Duration::from_secs(1)),
            ("interval 250 milliseconds", Duration::from_millis(250)),
            ("interval 7 microseconds", Duration::from_micros(7)),
            ("interval 3 nanosecond", Duration::from_nanos(3)),
            ("  interval   0   weeks ", Duration::ZERO),
            ("1 day", Duration::from_secs(86_400)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_interval(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_intervals_say_what_is_wrong() {
        for (text, why) in [
            ("", "expected `interval <number> <unit>`"),
            ("interval", "expected `interval <number> <unit>`"),
            ("interval 1", "expected `interval <number> <unit>`"),
            (
                "interval 1 week 2 days",
                "expected `interval <number> <unit>`",
            ),
            ("interval -1 day", "`-1` is not a whole number"),
            ("interval 1.5 days", "`1.5` is not a whole number"),
            ("interval 1 month", "unknown unit `month`"),
            ("interval 1 fortnight", "unknown unit `fortnight`"),
            ("168h", "expected `interval <number> <unit>`"),
        ] {
            let err = parse_interval(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
        assert_eq!(
            parse_interval(&format!("interval {} weeks", u64::MAX)),
            Err("too long".to_owned())
        );
    }

    fn snapshot(configuration: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            metadata: Some(Metadata {
                id: "t".to_owned(),
                name: None,
                description: None,
                format: Format {
                    provider: "parquet".to_owned(),
                    options: BTreeMap::new(),
                },
                schema_string: "{}".to_owned(),
                partition_columns: Vec::new(),
                created_time: None,
                configuration: configuration
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ..Default::default()
            }),
            ..Snapshot::default()
        }
    }

    #[test]
    fn retentions_come_from_the_table_or_default() {
        let unset = snapshot(&[]);
        assert_eq!(
            deleted_file_retention(&unset).expect("default"),
            DEFAULT_DELETED_FILE_RETENTION
        );
        assert_eq!(
            log_retention(&unset).expect("default"),
            DEFAULT_LOG_RETENTION
        );
        assert_eq!(
            log_retention(&Snapshot::default()).expect("no metaData"),
            DEFAULT_LOG_RETENTION
        );
        let set = snapshot(&[
            (DELETED_FILE_RETENTION, "interval 2 days"),
            (LOG_RETENTION, "interval 12 hours"),
        ]);
        assert_eq!(
            deleted_file_retention(&set).expect("set"),
            Duration::from_secs(2 * 86_400)
        );
        assert_eq!(
            log_retention(&set).expect("set"),
            Duration::from_secs(12 * 3_600)
        );

        let bad = snapshot(&[(LOG_RETENTION, "30 days please")]);
        let err = log_retention(&bad).expect_err("bad");
        assert!(
            matches!(&err, DeltaError::InvalidProperty { key, .. } if key == LOG_RETENTION),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("delta.logRetentionDuration = \"30 days please\""),
            "{err}"
        );
    }

    #[test]
    fn a_writer_is_refused_a_table_whose_retention_does_not_parse() {
        assert!(check_retention_properties(&snapshot(&[]), "t").is_ok());
        let bad = snapshot(&[(DELETED_FILE_RETENTION, "a week")]);
        let err = check_retention_properties(&bad, "s3://b/t").expect_err("bad");
        assert!(
            err.to_string().starts_with(
                "table s3://b/t: table property delta.deletedFileRetentionDuration = \"a week\": "
            ),
            "{err}"
        );
    }

    #[test]
    fn cutoffs_count_back_from_now() {
        assert_eq!(cutoff_ms(10_000, Duration::from_secs(3)), 7_000);
        assert_eq!(cutoff_ms(10_000, Duration::ZERO), 10_000);
        assert_eq!(cutoff_ms(0, Duration::MAX), -i64::MAX);
    }
}
