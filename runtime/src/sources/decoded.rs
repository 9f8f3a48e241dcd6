//! CSV and JSON-lines files of any serde record type (docs/semantics.md §4): the
//! sources a pipeline's own [`SourceRecord`] gets from [`source`].
//!
//! A JSON line is one object, deserialized into the record (unknown keys are ignored
//! unless the type says otherwise). A CSV file starts with a header line naming the
//! columns; every record is deserialized by those names, with RFC 4180 quoting as for
//! transactions ([`csv`](super::csv)); the ranges after the first read the header from
//! the file's first line. Then the record's event time must be in range (reason `ts`)
//! and it must pass [`SourceRecord::validate`]. A record that does not deserialize is
//! a `parse` dead letter naming the field, as serde says it.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::csv::{CsvFormat, Fields};
use super::delta::DeltaSource;
use super::files::{ByteRange, FileSource, LineReader, Outcome, Parsed, RecordFormat, is_blank};
use super::kafka::KafkaSource;
use super::validate;
use super::{Source, SourceError, SourceRecord};
use crate::config::SourceConfig;
use crate::dead_letter::Reason;

/// The source `config` configures for records `R`: CSV or JSON-lines files, Kafka
/// topics of JSON values, or a Delta table. The generator and the walkthrough make transactions, so they
/// are refused.
pub fn source<R>(config: &SourceConfig) -> Result<Arc<dyn Source<R>>, SourceError>
where
    R: SourceRecord + DeserializeOwned,
{
    match config {
        SourceConfig::Csv { inputs, split_size } => {
            Ok(Arc::new(FileSource::<CsvOf<R>>::new(inputs, *split_size)?))
        }
        SourceConfig::Jsonl { inputs, split_size } => Ok(Arc::new(
            FileSource::<JsonLinesOf<R>>::new(inputs, *split_size)?,
        )),
        SourceConfig::Generator(_) => Err(makes_transactions::<R>("generator")),
        SourceConfig::Walkthrough(_) => Err(makes_transactions::<R>("walkthrough")),
        SourceConfig::Kafka(config) => Ok(Arc::new(KafkaSource::<R>::decoded(config.clone())?)),
        SourceConfig::Delta(config) => Ok(Arc::new(DeltaSource::<R>::decoded(config.clone())?)),
    }
}

/// The refusal of `--source name`, which makes transactions, for a job reading `R`.
fn makes_transactions<R>(name: &str) -> SourceError {
    let short = super::record::short_type_name::<R>();
    SourceError::Config(format!(
        "--source {name} makes transactions, and this job reads {short} records: use --source csv or --source jsonl"
    ))
}

/// The checks every decoded record goes through after serde: its event time, then
/// its own [`SourceRecord::validate`].
pub(crate) fn checked<R: SourceRecord>(record: R) -> Outcome<R> {
    if let Err((reason, detail)) = validate::ts_in_range(i128::from(record.event_time())) {
        return Outcome::Invalid(reason, detail);
    }
    match record.validate() {
        Ok(()) => Outcome::Valid(record),
        Err((reason, detail)) => Outcome::Invalid(reason, detail),
    }
}

/// JSON-lines files of records `R`, one object per line.
pub struct JsonLinesOf<R>(PhantomData<fn() -> R>);

impl<R: SourceRecord + DeserializeOwned> RecordFormat for JsonLinesOf<R> {
    type Record = R;

    fn open(_range: &ByteRange) -> Result<Self, SourceError> {
        Ok(JsonLinesOf(PhantomData))
    }

    fn next_record<'a>(
        &'a mut self,
        lines: &'a mut LineReader,
    ) -> Result<Option<Parsed<'a, R>>, SourceError> {
        let Some(line) = lines.advance()? else {
            return Ok(None);
        };
        let raw = lines.current();
        let outcome = json_record(raw);
        Ok(Some(Parsed { line, raw, outcome }))
    }
}

/// One JSON object (a line, a message value) as a record `R`, checked.
pub(crate) fn json_record<R: SourceRecord + DeserializeOwned>(raw: &[u8]) -> Outcome<R> {
    if is_blank(raw) {
        return Outcome::Blank;
    }
    match std::str::from_utf8(raw) {
        Err(e) => Outcome::Invalid(
            Reason::Encoding,
            format!("the record is not valid UTF-8 ({e})"),
        ),
        Ok(text) => match serde_json::from_str::<R>(text) {
            Ok(record) => checked(record),
            Err(e) => Outcome::Invalid(Reason::Parse, format!("bad JSON record: {e}")),
        },
    }
}

/// CSV files of records `R`, by the names of their header line.
pub struct CsvOf<R> {
    split: CsvFormat,
    /// The field names of `R` (empty when `R` is not a struct).
    fields: &'static [&'static str],
    /// The header's column names, once read and found to name a field of `R`.
    header: Option<csv::StringRecord>,
    record: csv::ByteRecord,
    kind: PhantomData<fn() -> R>,
}

impl<R: SourceRecord + DeserializeOwned> RecordFormat for CsvOf<R> {
    type Record = R;

    fn open(range: &ByteRange) -> Result<Self, SourceError> {
        let mut format = CsvOf {
            split: CsvFormat::default(),
            fields: struct_fields::<R>(),
            header: None,
            record: csv::ByteRecord::new(),
            kind: PhantomData,
        };
        if range.start > 0 {
            // The header is the file's first line, which another range reads.
            let first = ByteRange {
                path: range.path.clone(),
                start: 0,
                end: 1,
                stream: false,
            };
            let mut lines = LineReader::open(&first, 64 << 10)?;
            if lines.advance()?.is_some() {
                let fields = format.split.split(&mut lines)?;
                format.header = header_of(&fields, format.fields);
            }
        }
        Ok(format)
    }

    fn next_record<'a>(
        &'a mut self,
        lines: &'a mut LineReader,
    ) -> Result<Option<Parsed<'a, R>>, SourceError> {
        let Some(line) = lines.advance()? else {
            return Ok(None);
        };
        if is_blank(lines.current()) {
            let raw = lines.current();
            return Ok(Some(Parsed {
                line,
                raw,
                outcome: Outcome::Blank,
            }));
        }
        let fields = self.split.split(lines)?;
        let raw = fields.raw;
        let outcome = if let Err(e) = std::str::from_utf8(raw) {
            Outcome::Invalid(
                Reason::Encoding,
                format!("the record is not valid UTF-8 ({e})"),
            )
        } else if !fields.complete {
            Outcome::Invalid(
                Reason::Parse,
                "a quoted field is not closed before the end of the file or of its byte range"
                    .to_owned(),
            )
        } else if line.offset == 0 {
            self.header = header_of(&fields, self.fields);
            match self.header {
                Some(_) => Outcome::Header,
                None => Outcome::Invalid(
                    Reason::Parse,
                    format!(
                        "the file's first line is not a header: it names none of the columns ({})",
                        self.fields.join(",")
                    ),
                ),
            }
        } else {
            match &self.header {
                None => Outcome::Invalid(
                    Reason::Parse,
                    "the file has no header line naming its columns".to_owned(),
                ),
                Some(header) => {
                    self.record.clear();
                    fields
                        .iter()
                        .for_each(|field| self.record.push_field(field));
                    decode_csv(&self.record, header)
                }
            }
        };
        Ok(Some(Parsed { line, raw, outcome }))
    }
}

/// The field names serde's derive gives a struct type `R` (empty for other types):
/// asked of `R`'s `Deserialize` with a deserializer that only listens.
fn struct_fields<R: DeserializeOwned>() -> &'static [&'static str] {
    struct Listen<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Listen<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("listened"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = R::deserialize(Listen(&mut fields));
    fields
}

/// The column names of a header line, whitespace trimmed, if they name one of `R`'s
/// `fields` (any header goes when `R` is not a struct).
fn header_of(line: &Fields<'_>, fields: &[&str]) -> Option<csv::StringRecord> {
    let header: csv::StringRecord = line
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_owned())
        .collect();
    let names_a_field = fields.is_empty() || header.iter().any(|c| fields.contains(&c));
    names_a_field.then_some(header)
}

/// Deserializes one CSV record by the header's names.
fn decode_csv<R: SourceRecord + DeserializeOwned>(
    record: &csv::ByteRecord,
    header: &csv::StringRecord,
) -> Outcome<R> {
    if record.len() != header.len() {
        return Outcome::Invalid(
            Reason::Parse,
            format!(
                "expected {} fields ({}), found {}",
                header.len(),
                header.iter().collect::<Vec<_>>().join(","),
                record.len()
            ),
        );
    }
    match record.deserialize::<R>(Some(header.as_byte_record())) {
        Ok(record) => checked(record),
        Err(e) => Outcome::Invalid(Reason::Parse, csv_error(&e, header)),
    }
}

/// What serde said about a CSV record, naming the column, without csv's position
/// (the dead letter has the line).
fn csv_error(e: &csv::Error, header: &csv::StringRecord) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let column = err
                .field()
                .and_then(|i| header.get(usize::try_from(i).ok()?));
            match column {
                Some(column) => format!("column {column}: {}", err.kind()),
                None => err.kind().to_string(),
            }
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::sources::files::testing::{read_all, write_file};
    use crate::sources::generator::GeneratorConfig;
    use crate::sources::split_size::SplitSize;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Reading {
        sensor: String,
        ts: u64,
        celsius: f64,
    }

    impl SourceRecord for Reading {
        fn event_time(&self) -> u64 {
            self.ts
        }

        fn validate(&self) -> Result<(), crate::sources::validate::Invalid> {
            match self.celsius >= -273.15 {
                true => Ok(()),
                false => Err((Reason::Invalid, "celsius is below absolute zero".into())),
            }
        }

        fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError> {
            source(config)
        }
    }

    /// A dead letter as (line, reason, detail).
    type Letter = (u64, String, String);

    /// Reads `content` as `config` (its inputs the file written) at every split size
    /// up to the file's length: the records and the dead letters as (line, reason,
    /// detail), the same for every split.
    fn read(content: &str, name: &str, csv: bool) -> (Vec<(u64, Reading)>, Vec<Letter>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(dir.path(), name, content.as_bytes());
        let mut first = None;
        for split in (1..=content.len() as u64)
            .map(SplitSize::Bytes)
            .chain([SplitSize::Auto])
        {
            let inputs = vec![path.clone()];
            let config = match csv {
                true => SourceConfig::Csv {
                    inputs,
                    split_size: split,
                },
                false => SourceConfig::Jsonl {
                    inputs,
                    split_size: split,
                },
            };
            let source = Reading::source(&config).expect("source");
            let (mut records, mut letters) = (Vec::new(), Vec::new());
            for batch in read_all(source.as_ref(), 3, u64::MAX) {
                records.extend(batch.events.into_iter().map(|e| (e.seq, e.record)));
                letters.extend(
                    batch
                        .dead_letters
                        .into_iter()
                        .map(|d| (d.line.expect("line"), d.reason.name().to_owned(), d.detail)),
                );
            }
            match &first {
                None => first = Some((records, letters)),
                Some(want) => assert_eq!(&(records, letters), want, "split size {split}"),
            }
        }
        first.expect("read")
    }

    fn reading(sensor: &str, ts: u64, celsius: f64) -> Reading {
        Reading {
            sensor: sensor.into(),
            ts,
            celsius,
        }
    }

    #[test]
    fn csv_records_are_decoded_by_the_header_in_every_range() {
        let content = "ts, sensor ,celsius\n5,s1,20.5\n\n\"7\",\"s,2\",-3\n8,s3\n9,s4,hot\n10,s5,-300\n12,s6,1\n";
        let (records, letters) = read(content, "r.csv", true);
        let offset = |needle: &str| content.find(needle).expect("in content") as u64;
        assert_eq!(
            records,
            vec![
                (offset("5,s1"), reading("s1", 5, 20.5)),
                (offset("\"7\""), reading("s,2", 7, -3.0)),
                (offset("12,"), reading("s6", 12, 1.0)),
            ]
        );
        let reasons: Vec<(u64, &str)> = letters.iter().map(|(l, r, _)| (*l, r.as_str())).collect();
        assert_eq!(reasons, vec![(5, "parse"), (6, "parse"), (7, "invalid")]);
        assert!(letters[0].2.contains("expected 3 fields"), "{letters:?}");
        assert!(letters[1].2.contains("column celsius"), "{letters:?}");
        assert!(letters[2].2.contains("absolute zero"), "{letters:?}");
    }

    #[test]
    fn a_csv_without_a_header_is_dead_letters_not_a_lost_line() {
        let content = "s1,5,20.5\ns2,6,21\n";
        let (records, letters) = read(content, "r.csv", true);
        assert!(records.is_empty());
        assert_eq!(letters.len(), 2, "{letters:?}");
        assert!(letters[0].2.contains("not a header"), "{letters:?}");
        assert!(letters[1].2.contains("no header line"), "{letters:?}");
    }

    #[test]
    fn json_lines_are_decoded_checked_and_bad_ones_name_the_field() {
        let content = concat!(
            "{\"sensor\":\"a\",\"ts\":1,\"celsius\":2.5,\"extra\":true}\n",
            "{\"sensor\":\"b\",\"ts\":2}\n",
            "{\"sensor\":\"c\",\"ts\":\"3\",\"celsius\":1}\n",
            "{\"sensor\":\"d\",\"ts\":253402300800000,\"celsius\":1}\n",
            "not json\n",
            "   \n",
            "{\"sensor\":\"e\",\"ts\":4,\"celsius\":-274}\n",
            "{\"sensor\":\"f\",\"ts\":5,\"celsius\":0}",
        );
        let (records, letters) = read(content, "r.jsonl", false);
        assert_eq!(
            records.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
            vec![reading("a", 1, 2.5), reading("f", 5, 0.0)]
        );
        let reasons: Vec<(u64, &str)> = letters.iter().map(|(l, r, _)| (*l, r.as_str())).collect();
        assert_eq!(
            reasons,
            vec![
                (2, "parse"),
                (3, "parse"),
                (4, "ts"),
                (5, "parse"),
                (7, "invalid")
            ]
        );
        assert!(
            letters[0].2.contains("missing field `celsius`"),
            "{letters:?}"
        );
        assert!(
            letters[1].2.contains("invalid type: string \"3\""),
            "{letters:?}"
        );
    }

    #[test]
    fn the_generator_is_refused_naming_the_record_type() {
        let config = SourceConfig::Generator(GeneratorConfig::default());
        let Err(SourceError::Config(message)) = Reading::source(&config) else {
            panic!("the generator makes transactions");
        };
        assert!(
            message.contains("--source generator makes transactions"),
            "{message}"
        );
        assert!(message.contains("Reading records"), "{message}");
    }

    #[test]
    fn struct_fields_lists_a_derived_structs_fields() {
        assert_eq!(struct_fields::<Reading>(), &["sensor", "ts", "celsius"]);
        assert!(struct_fields::<u64>().is_empty());
    }
}
