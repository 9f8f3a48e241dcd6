//! The record types sources read: [`Transaction`] and any type a pipeline names
//! (docs/semantics.md §4).

use std::sync::Arc;

use tidelake_operators::{RichTransaction, Transaction};

use crate::config::SourceConfig;
use crate::dead_letter::Reason;
use crate::sources::decoded;
use crate::sources::profiled::ProfiledSource;
use crate::sources::validate::{self, Invalid};
use crate::sources::{Source, SourceError};

/// A record type a job's source decodes and its pipeline reads: its event time, the
/// check a decoded record must pass, and the source each `--source` makes of it.
///
/// A serde type gets CSV (by header) and JSON-lines files from
/// [`decoded::source`](crate::sources::decoded::source):
///
/// ```
/// use std::sync::Arc;
/// use serde::{Deserialize, Serialize};
/// use tidelake_runtime::SourceConfig;
/// use tidelake_runtime::dead_letter::Reason;
/// use tidelake_runtime::sources::{Source, SourceError, SourceRecord, decoded};
///
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// struct Reading { sensor: String, ts: u64, celsius: f64 }
///
/// impl SourceRecord for Reading {
///     fn event_time(&self) -> u64 { self.ts }
///     fn validate(&self) -> Result<(), (Reason, String)> {
///         match self.celsius.is_finite() {
///             true => Ok(()),
///             false => Err((Reason::Invalid, "celsius is not finite".into())),
///         }
///     }
///     fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError> {
///         decoded::source(config)
///     }
/// }
/// ```
pub trait SourceRecord: timely::ExchangeData + Clone + std::fmt::Debug {
    /// The record's event time, ms since the Unix epoch (UTC); it must be below
    /// year 10000 ([`MAX_TS`](crate::sources::validate::MAX_TS)).
    fn event_time(&self) -> u64;

    /// Checks a decoded record: a bad one goes to the dead letters with this reason and
    /// detail (name the field). Every record passes by default.
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }

    /// The source `config` configures, decoding records of this type; a source that
    /// cannot make them (the generator makes transactions) is a
    /// [`SourceError::Config`] naming it.
    fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError>;
}

/// The last segment of `R`'s type name (`Reading`), for messages about the records a
/// job reads.
pub(crate) fn short_type_name<R>() -> &'static str {
    let name = std::any::type_name::<R>();
    name.rsplit("::").next().unwrap_or(name)
}

/// Richer transactions (docs/semantics.md §1) come from the generator with `--profiles`,
/// CSV files with a header, JSON lines, Kafka JSON values and Delta tables, checked as
/// transactions are: the account id (1–128 bytes, no NUL), a finite amount; and a
/// merchant of at most 128 bytes.
impl SourceRecord for RichTransaction {
    #[inline]
    fn event_time(&self) -> u64 {
        self.ts
    }

    fn validate(&self) -> Result<(), Invalid> {
        validate::account_id_text(&self.account_id)?;
        validate::finite_amount(self.amount)?;
        match &self.merchant {
            Some(m) if m.len() > validate::MAX_ACCOUNT_ID_BYTES => Err((
                Reason::Invalid,
                format!(
                    "merchant is {} bytes, more than {}",
                    m.len(),
                    validate::MAX_ACCOUNT_ID_BYTES
                ),
            )),
            _ => Ok(()),
        }
    }

    fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError> {
        match config {
            SourceConfig::Generator(generator) if generator.profiles => {
                Ok(Arc::new(ProfiledSource::new(generator.clone())?))
            }
            SourceConfig::Generator(_) => Err(SourceError::Config(
                "--source generator makes transactions without merchant, country and label: add --profiles for richer ones".to_owned(),
            )),
            _ => decoded::source(config),
        }
    }
}

impl SourceRecord for Transaction {
    #[inline]
    fn event_time(&self) -> u64 {
        self.ts
    }

    fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError> {
        config.build()
    }
}

#[cfg(test)]
mod rich_tests {
    use tidelake_operators::RichTransaction;

    use super::*;
    use crate::sources::files::testing::{read_all, write_file};

    /// The records and the dead letters (line, reason, detail) of `content`.
    fn read(content: &str, name: &str) -> (Vec<RichTransaction>, Vec<(u64, String, String)>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(dir.path(), name, content.as_bytes());
        let inputs = vec![path];
        let config = match name.ends_with(".csv") {
            true => SourceConfig::Csv {
                inputs,
                split_size: 7.into(),
            },
            false => SourceConfig::Jsonl {
                inputs,
                split_size: 7.into(),
            },
        };
        let source = RichTransaction::source(&config).expect("source");
        let (mut records, mut letters) = (Vec::new(), Vec::new());
        for batch in read_all(source.as_ref(), 2, u64::MAX) {
            records.extend(batch.events.into_iter().map(|e| e.record));
            letters.extend(
                batch
                    .dead_letters
                    .into_iter()
                    .map(|d| (d.line.unwrap_or(0), d.reason.name().to_owned(), d.detail)),
            );
        }
        (records, letters)
    }

    #[test]
    fn csv_headers_name_the_optional_columns_present() {
        let six = "account_id,ts_millis,amount,merchant,country,label\n7,1,2.5,m-1,DE,1\n8,2,3,,,\n9,3,4,m,de,0\n10,4,5,m,US,2\n11,5,6,\"m, quoted\",FR,0\n";
        let (records, letters) = read(six, "six.csv");
        let summary: Vec<String> = records
            .iter()
            .map(|r| {
                let country = r.country.map(|c| c.to_string());
                format!(
                    "{} {:?} {country:?} {:?}",
                    r.account_id, r.merchant, r.label
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                r#"7 Some("m-1") Some("DE") Some(true)"#,
                "8 None None None",
                r#"11 Some("m, quoted") Some("FR") Some(false)"#,
            ]
        );
        let lines: Vec<(u64, &str)> = letters.iter().map(|(l, r, _)| (*l, r.as_str())).collect();
        assert_eq!(lines, [(4, "parse"), (5, "parse")], "{letters:?}");
        assert!(letters[0].2.contains("country"), "{letters:?}");
        assert!(letters[1].2.contains("label"), "{letters:?}");

        let three = "account_id,ts_millis,amount\n7,1,2.5\n,2,1\n7,3,inf\n";
        let (records, letters) = read(three, "three.csv");
        assert_eq!(records, [RichTransaction::new("7", 1, 2.5)]);
        let reasons: Vec<&str> = letters.iter().map(|(_, r, _)| r.as_str()).collect();
        assert_eq!(reasons, ["account_id", "amount"], "{letters:?}");
    }

    #[test]
    fn json_lines_carry_the_same_fields() {
        let content = "{\"accountId\":\"7\",\"ts\":1,\"amount\":2,\"country\":\"JP\",\"label\":false}\n{\"accountId\":\"8\",\"ts\":2,\"amount\":3,\"merchant\":\"x\"}\n";
        let (records, letters) = read(content, "r.jsonl");
        assert!(letters.is_empty(), "{letters:?}");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].label, Some(false));
        assert_eq!(records[1].merchant.as_deref(), Some("x"));
    }
}
