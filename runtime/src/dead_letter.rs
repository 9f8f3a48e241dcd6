//! The dead-letter output: bad and late input, kept with its position and raw bytes
//! (docs/semantics.md §1), and rows a table's constraints keep out, kept with the table and the row.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Why a record went to the dead letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The record does not parse (missing or extra field, not a number, bad JSON).
    Parse,
    /// The account id is empty or longer than 128 bytes.
    AccountId,
    /// The amount is not finite.
    Amount,
    /// The time is outside `0 ≤ ts < 253402300800000`.
    Ts,
    /// The record is below its partition's watermark.
    Late,
    /// The record is not valid UTF-8.
    Encoding,
    /// The row breaks a constraint of the table it was to be written to (a CHECK
    /// constraint, an invariant, a NOT NULL or generated column).
    Constraint,
    /// A pipeline's own record type decoded it, and its check
    /// ([`SourceRecord::validate`](crate::sources::SourceRecord::validate)) refused it.
    Invalid,
    /// A whole input file `tidelake ingest` did not load: its columns are not the
    /// table's, or a value does not fit the table's type.
    Schema,
    /// A whole input file `tidelake ingest` could not read: not a file of its format
    /// (a corrupt Parquet file), or a line that does not parse.
    Unreadable,
}

impl Reason {
    /// Every reason, in the order of [`index`](Self::index).
    pub const ALL: [Reason; 10] = [
        Reason::Parse,
        Reason::AccountId,
        Reason::Amount,
        Reason::Ts,
        Reason::Late,
        Reason::Encoding,
        Reason::Constraint,
        Reason::Invalid,
        Reason::Schema,
        Reason::Unreadable,
    ];

    /// The reason's place in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The reason as dead letters name it (`account_id`, …).
    pub fn name(self) -> &'static str {
        match self {
            Reason::Parse => "parse",
            Reason::AccountId => "account_id",
            Reason::Amount => "amount",
            Reason::Ts => "ts",
            Reason::Late => "late",
            Reason::Encoding => "encoding",
            Reason::Constraint => "constraint",
            Reason::Invalid => "invalid",
            Reason::Schema => "schema",
            Reason::Unreadable => "unreadable",
        }
    }
}

/// One dead letter, written as a JSON line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The file name or source name the record came from; for a row a table's
    /// constraint kept out, the table.
    pub source: String,
    /// The source partition (not for a row a table kept out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// Byte offset of the record in its file, or its index / offset in the source (not
    /// for a row a table kept out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// 1-based line number, where the reader knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Why the record was rejected.
    pub reason: Reason,
    /// A human sentence saying what is wrong.
    pub detail: String,
    /// The original bytes, when they are UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The original bytes in base64, when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
}

impl DeadLetter {
    /// A dead letter for `raw` (the record's original bytes, without line terminator).
    pub fn new(
        source: &str,
        partition: u32,
        position: u64,
        line: Option<u64>,
        reason: Reason,
        detail: String,
        raw: &[u8],
    ) -> Self {
        let (raw, raw_base64) = match std::str::from_utf8(raw) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(raw)),
            ),
        };
        DeadLetter {
            source: source.to_owned(),
            partition: Some(partition),
            position: Some(position),
            line,
            reason,
            detail,
            raw,
            raw_base64,
        }
    }

    /// The record's original bytes, as [`new`](Self::new) was given them.
    pub fn raw_bytes(&self) -> Vec<u8> {
        match (&self.raw, &self.raw_base64) {
            (Some(text), _) => text.clone().into_bytes(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

impl DeadLetter {
    /// A dead letter for a whole input file that `tidelake ingest` did not load.
    pub fn file(path: &str, reason: Reason, detail: String) -> Self {
        DeadLetter {
            source: path.to_owned(),
            partition: None,
            position: None,
            line: None,
            reason,
            detail,
            raw: None,
            raw_base64: None,
        }
    }

    /// A dead letter for a row that `table` kept out because it breaks `constraint`
    /// (`CHECK constraint pos_amount (amount > 0)`); `row` is the row as a JSON object.
    pub fn constraint(table: &str, constraint: &str, row: String) -> Self {
        DeadLetter {
            source: table.to_owned(),
            partition: None,
            position: None,
            line: None,
            reason: Reason::Constraint,
            detail: format!("the row breaks the table's {constraint}, so it was not written"),
            raw: Some(row),
            raw_base64: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form() {
        let d = DeadLetter::new(
            "tx.csv",
            0,
            12,
            Some(2),
            Reason::Amount,
            "amount is NaN".into(),
            b"a,1,NaN",
        );
        assert_eq!(
            serde_json::to_string(&d).expect("serialises"),
            r#"{"source":"tx.csv","partition":0,"position":12,"line":2,"reason":"amount","detail":"amount is NaN","raw":"a,1,NaN"}"#
        );
        let d = DeadLetter::new(
            "tx.csv",
            1,
            0,
            None,
            Reason::Encoding,
            "not UTF-8".into(),
            b"\xff,1,2",
        );
        assert_eq!(d.raw, None);
        assert_eq!(d.raw_base64.as_deref(), Some("/ywxLDI="));
        assert_eq!(d.raw_bytes(), b"\xff,1,2");
    }
}
