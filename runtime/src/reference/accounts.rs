//! The `accounts` reference data (docs/semantics.md §2, "Reference data"): one row per
//! version of an account's attributes, with the time it holds from —
//! `accountId, homeCountry, birthYear, creditLimit, openedAt, validFrom` — as
//! `tidelake generate accounts` writes it.
//!
//! Read by name from a CSV file with a header, JSON lines, or a Delta table: the account
//! id a string or an integer, `openedAt` and `validFrom` RFC 3339 text or ms since the
//! epoch (a Delta timestamp), the other attributes optional (empty or null). A row whose
//! account id or `validFrom` is missing or bad goes to the dead letters, naming the field.

use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use tidelake_operators::Country;
use tidelake_operators::transaction::AccountId;

use crate::config::SourceConfig;
use crate::sources::validate::{self, Invalid};
use crate::sources::{Source, SourceError, SourceRecord, decoded};

/// One row of the `accounts` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRecord {
    /// The account.
    #[serde(alias = "account_id", deserialize_with = "account_id")]
    pub account_id: AccountId,
    /// From when these attributes hold, ms since the epoch.
    #[serde(alias = "valid_from", deserialize_with = "millis")]
    pub valid_from: u64,
    /// ISO 3166 alpha-2.
    #[serde(default, alias = "home_country", deserialize_with = "country")]
    pub home_country: Option<Country>,
    /// The holder's year of birth.
    #[serde(default, alias = "birth_year")]
    pub birth_year: Option<i32>,
    /// The credit limit.
    #[serde(default, alias = "credit_limit")]
    pub credit_limit: Option<f64>,
    /// When the account was opened, ms since the epoch.
    #[serde(default, alias = "opened_at", deserialize_with = "optional_millis")]
    pub opened_at: Option<u64>,
}

impl AccountRecord {
    /// The row as the arrangement holds it: by account, its version.
    pub fn into_version(self) -> (AccountId, AccountVersion) {
        let version = AccountVersion {
            valid_from: self.valid_from,
            home_country: self.home_country,
            birth_year: self.birth_year,
            credit_limit: self.credit_limit.map(Amount),
            opened_at: self.opened_at,
        };
        (self.account_id, version)
    }
}

/// An account's attributes from a time on: what the as-of join attaches to a
/// transaction. Ordered (as the arrangement needs) by `valid_from` first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountVersion {
    /// From when these attributes hold, ms since the epoch.
    pub valid_from: u64,
    /// ISO 3166 alpha-2.
    pub home_country: Option<Country>,
    /// The holder's year of birth.
    pub birth_year: Option<i32>,
    /// The credit limit.
    pub credit_limit: Option<Amount>,
    /// When the account was opened, ms since the epoch.
    pub opened_at: Option<u64>,
}

/// An amount that orders and compares by [`f64::total_cmp`], as a key or value of an
/// arrangement must.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(pub f64);

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Amount {}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl std::hash::Hash for Amount {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

/// Accounts come from CSV files with a header, JSON lines or a Delta table; the account
/// id is checked as a transaction's, the credit limit must be finite.
impl SourceRecord for AccountRecord {
    fn event_time(&self) -> u64 {
        self.valid_from
    }

    fn validate(&self) -> Result<(), Invalid> {
        validate::account_id_text(&self.account_id)?;
        match self.credit_limit {
            Some(limit) if !limit.is_finite() => Err((
                crate::dead_letter::Reason::Invalid,
                format!("creditLimit {limit} is not a finite number"),
            )),
            _ => Ok(()),
        }
    }

    fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError> {
        decoded::source(config)
    }
}

/// A string, or an integer written as one.
pub(crate) fn account_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<AccountId, D::Error> {
    struct Id;
    impl Visitor<'_> for Id {
        type Value = AccountId;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an account id (a string or an integer)")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<AccountId, E> {
            Ok(AccountId::from(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<AccountId, E> {
            Ok(compact_str::format_compact!("{v}"))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<AccountId, E> {
            Ok(compact_str::format_compact!("{v}"))
        }
    }
    deserializer.deserialize_any(Id)
}

/// ms since the epoch: an integer, or RFC 3339 text.
pub(crate) fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    optional_millis(deserializer)?.ok_or_else(|| de::Error::custom("a time is required"))
}

/// [`millis`], or nothing (null, an empty field).
fn optional_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct Millis;
    impl<'de> Visitor<'de> for Millis {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a time (RFC 3339 text or ms since the epoch)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("time {v} is before 1970")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.is_empty() {
                return Ok(None);
            }
            if let Ok(ms) = v.parse::<u64>() {
                return Ok(Some(ms));
            }
            chrono::DateTime::parse_from_rfc3339(v)
                .ok()
                .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
                .map(Some)
                .ok_or_else(|| E::custom(format!("{v:?} is not an RFC 3339 time after 1970")))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Millis)
        }
    }
    deserializer.deserialize_any(Millis)
}

/// An optional country: empty is none.
fn country<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Country>, D::Error> {
    let text = Option::<compact_str::CompactString>::deserialize(deserializer)?;
    match text.as_deref() {
        None | Some("") => Ok(None),
        Some(code) => Country::parse(code).map(Some).map_err(de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_ids_and_times_in_either_form() {
        let json = r#"{"accountId":17,"homeCountry":"DE","birthYear":1980,"creditLimit":2500.0,"openedAt":"2023-01-01T00:00:00Z","validFrom":1700000000000}"#;
        let row: AccountRecord = serde_json::from_str(json).expect("row");
        assert_eq!(row.account_id, "17");
        assert_eq!(row.valid_from, 1_700_000_000_000);
        assert_eq!(row.opened_at, Some(1_672_531_200_000));
        assert_eq!(row.home_country, Country::parse("DE").ok());
        assert_eq!(row.credit_limit, Some(2500.0));
        let bare = r#"{"accountId":"a","validFrom":"2024-05-01T00:00:00.250Z"}"#;
        let row: AccountRecord = serde_json::from_str(bare).expect("row");
        assert_eq!(row.valid_from, 1_714_521_600_250);
        assert_eq!(row.home_country, None);
        for bad in [
            r#"{"accountId":"a"}"#,
            r#"{"accountId":"a","validFrom":"yesterday"}"#,
            r#"{"accountId":"a","validFrom":1,"homeCountry":"Germany"}"#,
        ] {
            assert!(serde_json::from_str::<AccountRecord>(bad).is_err(), "{bad}");
        }
    }
}
