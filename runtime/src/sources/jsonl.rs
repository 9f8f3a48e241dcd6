//! The JSON lines file source: one object per line with `accountId` (or
//! `account_id`), `ts` (integer ms) and `amount` (docs/semantics.md §4).
//!
//! Objects are read with a small serde visitor that borrows the account id and skips
//! other fields, so a line allocates nothing beyond its transaction, and a missing or
//! mistyped field is reported by name.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::files::{
    ByteRange, FileSource, LineReader, Outcome, Parsed, RangeReader, RecordFormat, is_blank,
};
use super::{SourceError, validate};
use crate::dead_letter::Reason;
use tidelake_operators::{AccountId, Transaction};

/// JSON-lines files of transactions, split into byte ranges.
pub type JsonlSource = FileSource<JsonlFormat>;

/// The reader of one JSON-lines partition.
pub type JsonlReader = RangeReader<JsonlFormat>;

/// Parses one JSON object per line.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonlFormat;

impl RecordFormat for JsonlFormat {
    type Record = Transaction;

    fn open(_range: &ByteRange) -> Result<Self, SourceError> {
        Ok(JsonlFormat)
    }

    fn next_record<'a>(
        &'a mut self,
        lines: &'a mut LineReader,
    ) -> Result<Option<Parsed<'a>>, SourceError> {
        let Some(line) = lines.advance()? else {
            return Ok(None);
        };
        let raw = lines.current();
        let outcome = if is_blank(raw) {
            Outcome::Blank
        } else {
            match parse(raw) {
                Ok(tx) => Outcome::Valid(tx),
                Err((reason, detail)) => Outcome::Invalid(reason, detail),
            }
        };
        Ok(Some(Parsed { line, raw, outcome }))
    }
}

/// Parses and validates one line (or message value).
pub(crate) fn parse(raw: &[u8]) -> Result<Transaction, validate::Invalid> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        (
            Reason::Encoding,
            format!("the line is not valid UTF-8 ({e})"),
        )
    })?;
    let object: Object<'_> = serde_json::from_str(text).map_err(|e| {
        let what = if e.classify() == serde_json::error::Category::Data {
            "not a JSON object"
        } else {
            "not valid JSON"
        };
        (Reason::Parse, format!("the line is {what}: {e}"))
    })?;
    object.transaction()
}

/// The fields of a line's object that matter.
#[derive(Default)]
struct Object<'de> {
    account_camel: Option<Value<'de>>,
    account_snake: Option<Value<'de>>,
    ts: Option<Value<'de>>,
    amount: Option<Value<'de>>,
    duplicate: Option<&'static str>,
}

impl Object<'_> {
    fn transaction(self) -> Result<Transaction, validate::Invalid> {
        if let Some(key) = self.duplicate {
            return Err(parse_error(format!("field {key} appears more than once")));
        }
        let (key, account) = match (self.account_camel, self.account_snake) {
            (Some(_), Some(_)) => {
                return Err(parse_error(
                    "both accountId and account_id are present".to_owned(),
                ));
            }
            (Some(v), None) => ("accountId", v),
            (None, Some(v)) => ("account_id", v),
            (None, None) => {
                return Err(parse_error(
                    "missing field accountId (or account_id)".to_owned(),
                ));
            }
        };
        let account_id: AccountId = match account {
            Value::Str(s) => validate::account_id(s.as_bytes())?,
            other => {
                return Err(parse_error(format!(
                    "{key} is {}, not a string",
                    other.kind()
                )));
            }
        };
        let ts = match self.ts {
            None => return Err(parse_error("missing field ts".to_owned())),
            Some(Value::UInt(v)) => validate::ts_in_range(i128::from(v))?,
            Some(Value::Int(v)) => validate::ts_in_range(i128::from(v))?,
            // A number with a fraction or an exponent (`1e12`), or an integer beyond 64
            // bits, comes as a float: fine if it is a whole number in range.
            Some(Value::Float(v)) => validate::ts_number(v)?,
            Some(other) => {
                return Err(parse_error(format!(
                    "ts is {}, not an integer",
                    other.kind()
                )));
            }
        };
        let amount = match self.amount {
            None => return Err(parse_error("missing field amount".to_owned())),
            Some(Value::UInt(v)) => v as f64,
            Some(Value::Int(v)) => v as f64,
            Some(Value::Float(v)) => v,
            Some(other) => {
                return Err(parse_error(format!(
                    "amount is {}, not a number",
                    other.kind()
                )));
            }
        };
        let amount = validate::finite_amount(amount)?;
        Ok(Transaction {
            account_id,
            ts,
            amount,
        })
    }
}

fn parse_error(detail: String) -> validate::Invalid {
    (Reason::Parse, detail)
}

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Object::default();
        while let Some(key) = map.next_key::<Key>()? {
            let (slot, name) = match key {
                Key::AccountCamel => (&mut object.account_camel, "accountId"),
                Key::AccountSnake => (&mut object.account_snake, "account_id"),
                Key::Ts => (&mut object.ts, "ts"),
                Key::Amount => (&mut object.amount, "amount"),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value = map.next_value::<Value<'de>>()?;
            if slot.replace(value).is_some() {
                object.duplicate.get_or_insert(name);
            }
        }
        Ok(object)
    }
}

/// A key of the object.
enum Key {
    AccountCamel,
    AccountSnake,
    Ts,
    Amount,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "accountId" => Key::AccountCamel,
            "account_id" => Key::AccountSnake,
            "ts" => Key::Ts,
            "amount" => Key::Amount,
            _ => Key::Other,
        })
    }
}

/// A field value, kept only as far as the checks need it.
enum Value<'de> {
    Str(Cow<'de, str>),
    UInt(u64),
    Int(i64),
    Float(f64),
    /// Any other JSON value, by kind (`null`, `a boolean`, …).
    Other(&'static str),
}

impl Value<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::UInt(_) | Value::Int(_) | Value::Float(_) => "a number",
            Value::Other(kind) => kind,
        }
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Value::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Value::UInt(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Value::Other("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Source;
    use crate::sources::files::testing::{read_all, write_file};

    const LINES: [&[u8]; 16] = [
        br#"{"accountId":"a","ts":1000,"amount":1.5}"#,
        br#"{"amount":2,"other":[1,{"x":null}],"account_id":"b","ts":1001}"#,
        br#"{"ts":1002,"amount":1}"#,
        br#"{"accountId":"c","ts":1.5,"amount":1}"#,
        br#"{"accountId":"c","ts":-1,"amount":1}"#,
        b"{\"accountId\":\"c\xff\",\"ts\":1003,\"amount\":1}",
        br#"[1,2,3]"#,
        br#"{"accountId":"","ts":1004,"amount":1}"#,
        br#"{"accountId":"d","ts":1005}"#,
        br#"{"accountId":"d","ts":"1005","amount":1}"#,
        br#"{"accountId":7,"ts":1005,"amount":1}"#,
        br#"{"accountId":"e","ts":1006,"amount":1} x"#,
        b" \t",
        br#"{"accountId":"e","account_id":"e","ts":1006,"amount":1}"#,
        br#"{"accountId":"esc\u0041","ts":253402300799999,"amount":-3}"#,
        br#"{"accountId":"f","ts":253402300800000,"amount":1}"#,
    ];

    fn jsonl_source(content: &[u8], split: u64) -> (tempfile::TempDir, JsonlSource) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(dir.path(), "tx.jsonl", content);
        let source = JsonlSource::new(&[path], split).expect("source");
        (dir, source)
    }

    #[test]
    fn amounts_are_the_doubles_they_were_printed_from() {
        // 17 significant digits: a best-effort parser lands a unit in the last place off.
        for amount in [
            510.450_000_000_000_05_f64,
            597.790_000_000_000_1,
            0.1 + 0.2,
            1e-7,
        ] {
            let line = format!(r#"{{"accountId":"a","ts":1,"amount":{amount}}}"#);
            let tx = parse(line.as_bytes()).expect("parses");
            assert_eq!(tx.amount.to_bits(), amount.to_bits(), "{line}");
        }
    }

    #[test]
    fn lines_parse_or_go_to_the_dead_letters() {
        let content = LINES.join(&b'\n');
        let offsets: Vec<u64> = LINES
            .iter()
            .scan(0, |at, line| {
                let offset = *at;
                *at += line.len() as u64 + 1;
                Some(offset)
            })
            .collect();
        let want = [
            (2, Reason::Parse, "missing field accountId (or account_id)"),
            (3, Reason::Parse, "ts 1.5 is not an integer"),
            (4, Reason::Ts, "ts -1 is outside"),
            (5, Reason::Encoding, "not valid UTF-8"),
            (6, Reason::Parse, "not a JSON object"),
            (7, Reason::AccountId, "account id is empty"),
            (8, Reason::Parse, "missing field amount"),
            (9, Reason::Parse, "ts is a string, not an integer"),
            (10, Reason::Parse, "accountId is a number, not a string"),
            (11, Reason::Parse, "not valid JSON"),
            (13, Reason::Parse, "both accountId and account_id"),
            (15, Reason::Ts, "253402300800000 is outside"),
        ];
        for split in [1 << 20, 50, 7] {
            let (_dir, source) = jsonl_source(&content, split);
            let batches = read_all(&source, 4, 0);
            let events: Vec<_> = batches.iter().flat_map(|b| &b.events).collect();
            let got: Vec<_> = events
                .iter()
                .map(|e| {
                    (
                        e.seq,
                        e.record.account_id.as_str(),
                        e.record.ts,
                        e.record.amount,
                    )
                })
                .collect();
            assert_eq!(
                got,
                [
                    (offsets[0], "a", 1000, 1.5),
                    (offsets[1], "b", 1001, 2.0),
                    (offsets[14], "escA", 253_402_300_799_999, -3.0),
                ],
                "split size {split}"
            );
            let dead: Vec<_> = batches.iter().flat_map(|b| &b.dead_letters).collect();
            assert_eq!(dead.len(), want.len(), "split size {split}: {dead:?}");
            for (d, (index, reason, detail)) in dead.iter().zip(want) {
                assert_eq!(
                    (d.position, d.line, d.reason),
                    (Some(offsets[index]), Some(index as u64 + 1), reason)
                );
                assert!(
                    d.detail.contains(detail),
                    "{} should contain {detail}",
                    d.detail
                );
            }
            assert!(dead[3].raw_base64.is_some(), "invalid UTF-8 kept as base64");
            assert_eq!(batches.iter().map(|b| b.blank_lines).sum::<u64>(), 1);
        }
    }

    #[test]
    fn first_ts_skips_bad_lines_and_consumes_nothing() {
        let content = b"\n{\"ts\":1}\n{\"accountId\":\"a\",\"ts\":9,\"amount\":1}\r\n{\"accountId\":\"b\",\"ts\":8,\"amount\":1}\n";
        let (_dir, source) = jsonl_source(content, 1 << 20);
        let expected = read_all(&source, 100, 0);
        let mut reader = source.open(0).expect("open");
        assert_eq!(reader.first_ts().expect("first ts"), Some(9));
        let mut watermark = crate::sources::Watermark::new(0);
        let mut batch = crate::sources::ReadBatch::default();
        let name = source.source_name(0);
        let mut emit = crate::sources::Emitter::new(
            &name,
            0,
            crate::sources::RuleTime::Event,
            &mut watermark,
            0,
            1,
            &mut batch,
        );
        assert_eq!(
            reader.read(100, &mut emit).expect("read"),
            crate::sources::ReadStatus::Done
        );
        assert_eq!(batch.events, expected[0].events);
        assert_eq!(batch.dead_letters, expected[0].dead_letters);
        assert_eq!(batch.dead_letters.len(), 2, "the bad line and the late one");
        assert_eq!(batch.dead_letters[1].reason, Reason::Late);
    }
}
