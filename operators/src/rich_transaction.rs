//! Richer transactions: a transaction with its optional merchant, country and ground
//! truth label, the records of the enrichment pipeline (docs/semantics.md §1, "Richer
//! transactions").
//!
//! Read by name from CSV (`account_id,ts_millis,amount[,merchant,country[,label]]`, the
//! header naming the columns present) and JSON lines (`accountId`, `ts`, `amount`,
//! `merchant`, `country`, `label`; `account_id` and `ts_millis` too); a missing or empty
//! optional field is null. `country` is an ISO 3166 alpha-2 code (two letters, upper
//! case); `label` is 1 (fraud) or 0, also written `true` / `false`.

use compact_str::CompactString;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::fraud::Payment;
use crate::transaction::AccountId;

/// An ISO 3166 alpha-2 country code: two ASCII upper-case letters, held inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country([u8; 2]);

impl Country {
    /// `text` as a country code, or why it is not one.
    pub fn parse(text: &str) -> Result<Country, String> {
        match text.as_bytes() {
            &[a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Country([a, b])),
            _ => Err(format!(
                "country {text:?} is not an ISO 3166 alpha-2 code (two upper-case letters)"
            )),
        }
    }

    /// The code, `"US"`.
    pub fn as_str(&self) -> &str {
        // Two ASCII letters, checked by `parse`.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = CompactString::deserialize(deserializer)?;
        Country::parse(&text).map_err(de::Error::custom)
    }
}

/// A card transaction with the optional fields of docs/semantics.md §1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichTransaction {
    /// The account the transaction belongs to.
    #[serde(alias = "account_id")]
    pub account_id: AccountId,
    /// Event time, milliseconds since the Unix epoch (UTC).
    #[serde(alias = "ts_millis")]
    pub ts: u64,
    /// The amount.
    pub amount: f64,
    /// The merchant, if known.
    #[serde(default, deserialize_with = "non_empty")]
    pub merchant: Option<CompactString>,
    /// Where the card was used, if known.
    #[serde(default)]
    pub country: Option<Country>,
    /// Ground truth, if known: true for fraud.
    #[serde(
        default,
        deserialize_with = "label",
        serialize_with = "label_as_number"
    )]
    pub label: Option<bool>,
}

impl RichTransaction {
    /// A transaction of `account_id` at `ts` for `amount`, without the optional fields.
    pub fn new(account_id: &str, ts: u64, amount: f64) -> Self {
        RichTransaction {
            account_id: AccountId::from(account_id),
            ts,
            amount,
            merchant: None,
            country: None,
            label: None,
        }
    }
}

/// A richer transaction with the fraud rule's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RichVerdict {
    /// The transaction.
    pub tx: RichTransaction,
    /// True on the large transaction of a small-then-large pair.
    pub rule_alert: bool,
}

impl Payment for RichTransaction {
    type Verdict = RichVerdict;

    #[inline]
    fn account_id(&self) -> &AccountId {
        &self.account_id
    }

    #[inline]
    fn ts(&self) -> u64 {
        self.ts
    }

    #[inline]
    fn amount(&self) -> f64 {
        self.amount
    }

    #[inline]
    fn with_verdict(self, alert: bool) -> RichVerdict {
        RichVerdict {
            tx: self,
            rule_alert: alert,
        }
    }
}

/// An optional string field: empty is null (a CSV field with nothing in it).
fn non_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<CompactString>, D::Error> {
    let value = Option::<CompactString>::deserialize(deserializer)?;
    Ok(value.filter(|v| !v.is_empty()))
}

/// The label: 1 / 0, `true` / `false` (as numbers, booleans or text), or null (also for
/// empty text). For `#[serde(deserialize_with)]`.
pub fn label<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Option::<Label>::deserialize(deserializer).map(|label| label.and_then(|l| l.0))
}

fn label_as_number<S: Serializer>(label: &Option<bool>, serializer: S) -> Result<S::Ok, S::Error> {
    match label {
        Some(fraud) => serializer.serialize_some(&u8::from(*fraud)),
        None => serializer.serialize_none(),
    }
}

/// A label as it is written; `None` inside for an empty text field.
struct Label(Option<bool>);

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelVisitor;

        impl Visitor<'_> for LabelVisitor {
            type Value = Label;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a label: 1 or 0, true or false")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Label, E> {
                Ok(Label(Some(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Label, E> {
                match v {
                    0 => Ok(Label(Some(false))),
                    1 => Ok(Label(Some(true))),
                    _ => Err(E::custom(format!("label {v} is not 1 or 0"))),
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Label, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("label {v} is not 1 or 0")))
                    .and_then(|v| self.visit_u64(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Label, E> {
                match v.trim() {
                    "" => Ok(Label(None)),
                    "1" | "true" => Ok(Label(Some(true))),
                    "0" | "false" => Ok(Label(Some(false))),
                    other => Err(E::custom(format!("label {other:?} is not 1 or 0"))),
                }
            }
        }

        // Binary formats (the exchange between workers) carry the number as written.
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(LabelVisitor)
        } else {
            deserializer.deserialize_u8(LabelVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_with_and_without_the_optional_fields() {
        let full: RichTransaction = serde_json::from_str(
            r#"{"accountId":"7","ts":1700000000000,"amount":12.5,"merchant":"m-1","country":"DE","label":1}"#,
        )
        .expect("full");
        assert_eq!(full.country.map(|c| c.to_string()), Some("DE".to_owned()));
        assert_eq!(
            (full.merchant.as_deref(), full.label),
            (Some("m-1"), Some(true))
        );
        let plain: RichTransaction =
            serde_json::from_str(r#"{"account_id":"7","ts_millis":1,"amount":2}"#).expect("plain");
        assert_eq!(plain, RichTransaction::new("7", 1, 2.0));
        let text: RichTransaction =
            serde_json::from_str(r#"{"accountId":"7","ts":1,"amount":2,"label":"false"}"#)
                .expect("text label");
        assert_eq!(text.label, Some(false));
        for bad in [
            r#"{"accountId":"7","ts":1,"amount":2,"country":"de"}"#,
            r#"{"accountId":"7","ts":1,"amount":2,"country":"DEU"}"#,
            r#"{"accountId":"7","ts":1,"amount":2,"label":2}"#,
        ] {
            let error = serde_json::from_str::<RichTransaction>(bad).expect_err(bad);
            assert!(
                error.to_string().contains("country") || error.to_string().contains("label"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_label_is_written_as_a_number() {
        let mut tx = RichTransaction::new("7", 1, 2.0);
        tx.label = Some(true);
        tx.country = Country::parse("GB").ok();
        let json = serde_json::to_string(&tx).expect("json");
        assert!(
            json.contains(r#""label":1"#) && json.contains(r#""country":"GB""#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<RichTransaction>(&json).expect("back"),
            tx
        );
    }

    #[test]
    fn records_cross_processes_in_bincode_whole() {
        let mut tx = RichTransaction::new("Ünïcode, \"7\"", 1_700_000_000_000, 0.5);
        for (merchant, country, label) in [
            (None, None, None),
            (Some("m"), Some("US"), Some(false)),
            (Some("a merchant, quoted \"x\""), None, Some(true)),
        ] {
            tx.merchant = merchant.map(CompactString::from);
            tx.country = country.and_then(|c| Country::parse(c).ok());
            tx.label = label;
            let bytes = bincode::serialize(&tx).expect("encode");
            let back: RichTransaction = bincode::deserialize(&bytes).expect("decode");
            assert_eq!(back, tx);
        }
    }
}
