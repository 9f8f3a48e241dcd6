//! The CSV file source: columns `account_id,ts_millis,amount`, an optional header,
//! RFC 4180 quoting (docs/semantics.md §4).
//!
//! Lines without a `"` are split on `,` in place; lines with one go through
//! `csv-core`, and a quoted field may then span lines. Such a record must end in the
//! byte range it starts in: a record still inside quotes when the range (or the file)
//! ends is a `parse` dead letter, and the next range reads the following lines as its
//! own, so every line is still read exactly once.

use csv_core::{ReadRecordResult, Terminator};

use super::files::{
    ByteRange, FileSource, Line, LineReader, Outcome, Parsed, RangeReader, RecordFormat, is_blank,
};
use super::{SourceError, validate};
use crate::dead_letter::Reason;
use tidelake_operators::Transaction;

/// The column names, in order.
pub const COLUMNS: [&str; 3] = ["account_id", "ts_millis", "amount"];

/// CSV files of transactions, split into byte ranges.
pub type CsvSource = FileSource<CsvFormat>;

/// The reader of one CSV partition.
pub type CsvReader = RangeReader<CsvFormat>;

/// Parses CSV records from lines, reusing its buffers.
pub struct CsvFormat {
    core: csv_core::Reader,
    /// The raw record, when it spans lines.
    raw: Vec<u8>,
    /// The unescaped fields of a quoted record.
    fields: Vec<u8>,
    /// The end of each field in `fields`.
    ends: Vec<usize>,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            core: csv_core::ReaderBuilder::new()
                .terminator(Terminator::Any(b'\n'))
                .build(),
            raw: Vec::new(),
            fields: vec![0; 256],
            ends: vec![0; 4],
        }
    }
}

impl std::fmt::Debug for CsvFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvFormat").finish_non_exhaustive()
    }
}

/// How far a quoted record got.
struct Quoted {
    /// Bytes written to `fields`.
    out: usize,
    /// Entries written to `ends`.
    nends: usize,
    /// The record ended.
    complete: bool,
}

impl CsvFormat {
    /// Feeds `input` to csv-core, growing the buffers as needed; true once the record
    /// ended. `input` must not be empty (csv-core reads that as the end of the data).
    fn feed(&mut self, mut input: &[u8], state: &mut Quoted) -> bool {
        while !input.is_empty() {
            let (result, nin, nout, nend) = self.core.read_record(
                input,
                &mut self.fields[state.out..],
                &mut self.ends[state.nends..],
            );
            input = &input[nin..];
            state.out += nout;
            state.nends += nend;
            match result {
                ReadRecordResult::Record => return true,
                ReadRecordResult::OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::InputEmpty | ReadRecordResult::End => {}
            }
        }
        false
    }

    /// Reads a record whose first line (the current one of `lines`) has a quote.
    fn read_quoted(&mut self, lines: &mut LineReader) -> Result<Quoted, SourceError> {
        self.core.reset();
        self.raw.clear();
        self.raw.extend_from_slice(lines.current());
        let mut state = Quoted {
            out: 0,
            nends: 0,
            complete: false,
        };
        let mut from = 0;
        loop {
            // `raw[from..]` is the line just added; it may be empty inside quotes.
            let line_len = self.raw.len() - from;
            if line_len > 0 {
                let line = std::mem::take(&mut self.raw);
                self.feed(&line[from..], &mut state);
                self.raw = line;
            }
            if self.feed(b"\n", &mut state) {
                state.complete = true;
                return Ok(state);
            }
            // Inside a quoted field: the record goes on on the next line of the range.
            if lines.advance()?.is_none() {
                return Ok(state);
            }
            self.raw.push(b'\n');
            from = self.raw.len();
            self.raw.extend_from_slice(lines.current());
        }
    }
}

impl RecordFormat for CsvFormat {
    type Record = Transaction;

    fn open(_range: &ByteRange) -> Result<Self, SourceError> {
        Ok(Self::default())
    }

    fn next_record<'a>(
        &'a mut self,
        lines: &'a mut LineReader,
    ) -> Result<Option<Parsed<'a>>, SourceError> {
        let Some(line) = lines.advance()? else {
            return Ok(None);
        };
        let current = lines.current();
        if is_blank(current) {
            return Ok(Some(Parsed {
                line,
                raw: lines.current(),
                outcome: Outcome::Blank,
            }));
        }
        if memchr::memchr(b'"', current).is_none() {
            let raw = lines.current();
            let outcome = parse_plain(line, raw);
            return Ok(Some(Parsed { line, raw, outcome }));
        }
        let state = self.read_quoted(lines)?;
        let raw = &self.raw[..];
        let outcome = if let Err(e) = std::str::from_utf8(raw) {
            not_utf8(e)
        } else if !state.complete {
            Outcome::Invalid(
                Reason::Parse,
                "a quoted field is not closed before the end of the file or of its byte range"
                    .to_owned(),
            )
        } else {
            let ends = &self.ends[..state.nends];
            let field = |i: usize| &self.fields[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
            if ends.len() == 3 {
                split_fields_outcome(line, [field(0), field(1), field(2)])
            } else {
                wrong_field_count(ends.len())
            }
        };
        Ok(Some(Parsed { line, raw, outcome }))
    }
}

/// One record's fields as csv-core split them (quotes and escapes removed).
pub(super) struct Fields<'a> {
    /// The record's bytes without the line terminator (lines joined with `\n`).
    pub(super) raw: &'a [u8],
    data: &'a [u8],
    ends: &'a [usize],
    /// False when a quoted field is still open at the end of the range or file.
    pub(super) complete: bool,
}

impl<'a> Fields<'a> {
    /// The fields, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let data = self.data;
        self.ends.iter().scan(0, move |start, &end| {
            let field = &data[*start..end];
            *start = end;
            Some(field)
        })
    }
}

impl CsvFormat {
    /// Reads the next record (its first line the current one of `lines`) through
    /// csv-core, whatever its quoting: for formats that want every field.
    pub(super) fn split<'a>(
        &'a mut self,
        lines: &mut LineReader,
    ) -> Result<Fields<'a>, SourceError> {
        let state = self.read_quoted(lines)?;
        Ok(Fields {
            raw: &self.raw,
            data: &self.fields[..state.out],
            ends: &self.ends[..state.nends],
            complete: state.complete,
        })
    }
}

impl CsvFormat {
    /// Parses one whole record held in memory (a message value): blank, a transaction,
    /// or why not. A value never counts as a header.
    pub(crate) fn parse_record(&mut self, raw: &[u8]) -> Outcome {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if is_blank(raw) {
            return Outcome::Blank;
        }
        let not_first = Line {
            offset: 1,
            newlines: 0,
        };
        if memchr::memchr(b'"', raw).is_none() {
            return parse_plain(not_first, raw);
        }
        if let Err(e) = std::str::from_utf8(raw) {
            return not_utf8(e);
        }
        self.core.reset();
        let mut state = Quoted {
            out: 0,
            nends: 0,
            complete: false,
        };
        self.feed(raw, &mut state);
        if !self.feed(b"\n", &mut state) {
            return Outcome::Invalid(
                Reason::Parse,
                "a quoted field is not closed before the end of the message".to_owned(),
            );
        }
        let ends = &self.ends[..state.nends];
        let field = |i: usize| &self.fields[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
        match ends.len() {
            3 => split_fields_outcome(not_first, [field(0), field(1), field(2)]),
            n => wrong_field_count(n),
        }
    }
}

/// Parses a line without quotes.
fn parse_plain(line: Line, raw: &[u8]) -> Outcome {
    let text = match std::str::from_utf8(raw) {
        Ok(text) => text,
        Err(e) => return not_utf8(e),
    };
    let mut commas = memchr::memchr_iter(b',', raw);
    match (commas.next(), commas.next(), commas.next()) {
        (Some(a), Some(b), None) => {
            fields_outcome(line, [&text[..a], &text[a + 1..b], &text[b + 1..]])
        }
        (a, b, _) => {
            let count = if b.is_some() {
                4 + commas.count()
            } else {
                1 + usize::from(a.is_some())
            };
            wrong_field_count(count)
        }
    }
}

/// The outcome of a record with three fields: a header, a transaction or a bad field.
fn fields_outcome(line: Line, fields: [&str; 3]) -> Outcome {
    if line.offset == 0 && is_header(fields) {
        return Outcome::Header;
    }
    match validate::transaction(fields[0], fields[1], fields[2]) {
        Ok(tx) => Outcome::Valid(tx),
        Err((reason, detail)) => Outcome::Invalid(reason, detail),
    }
}

/// The outcome of a record whose three fields csv-core split (quotes removed): each is
/// valid UTF-8, as the record was checked to be.
fn split_fields_outcome(line: Line, fields: [&[u8]; 3]) -> Outcome {
    match fields.map(std::str::from_utf8) {
        [Ok(a), Ok(b), Ok(c)] => fields_outcome(line, [a, b, c]),
        [Err(e), ..] | [_, Err(e), _] | [.., Err(e)] => not_utf8(e),
    }
}

/// True when the fields are the column names, case-insensitively, whitespace trimmed.
fn is_header(fields: [&str; 3]) -> bool {
    fields
        .iter()
        .zip(COLUMNS)
        .all(|(field, name)| field.trim_ascii().eq_ignore_ascii_case(name))
}

fn not_utf8(e: std::str::Utf8Error) -> Outcome {
    Outcome::Invalid(
        Reason::Encoding,
        format!("the record is not valid UTF-8 ({e})"),
    )
}

fn wrong_field_count(found: usize) -> Outcome {
    Outcome::Invalid(
        Reason::Parse,
        format!("expected 3 fields ({}), found {found}", COLUMNS.join(",")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::DeadLetter;
    use crate::sources::Source;
    use crate::sources::files::testing::{read_all, sample_lines, write_file};
    use crate::sources::{Emitter, ReadBatch, ReadStatus, RuleTime, Watermark};

    fn csv_source(content: &[u8], split: u64) -> (tempfile::TempDir, CsvSource) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(dir.path(), "tx.csv", content);
        let source = CsvSource::new(&[path], split).expect("source");
        (dir, source)
    }

    /// (seq, account, ts, amount) of every event, in partition order.
    fn events(batches: &[ReadBatch]) -> Vec<(u64, String, u64, f64)> {
        batches
            .iter()
            .flat_map(|b| &b.events)
            .map(|e| {
                (
                    e.seq,
                    e.record.account_id.to_string(),
                    e.record.ts,
                    e.record.amount,
                )
            })
            .collect()
    }

    fn dead_letters(batches: &[ReadBatch]) -> Vec<&DeadLetter> {
        batches.iter().flat_map(|b| &b.dead_letters).collect()
    }

    fn blanks(batches: &[ReadBatch]) -> u64 {
        batches.iter().map(|b| b.blank_lines).sum()
    }

    #[test]
    fn every_record_is_read_once_for_every_split_size() {
        let (content, lines) = sample_lines();
        let records: Vec<u64> = lines
            .iter()
            .filter(|(_, l)| !is_blank(l))
            .map(|(o, _)| *o)
            .collect();
        let blank = (lines.len() - records.len()) as u64;
        for split in (1..=64).chain([1 << 20]) {
            let (_dir, source) = csv_source(&content, split);
            let batches = read_all(&source, 7, 0);
            let seqs: Vec<u64> = events(&batches).into_iter().map(|e| e.0).collect();
            assert_eq!(seqs, records, "split size {split}");
            assert_eq!(blanks(&batches), blank, "split size {split}");
            assert!(dead_letters(&batches).is_empty(), "split size {split}");
        }
    }

    #[test]
    fn header_is_skipped_only_at_the_start_of_a_file() {
        let content = b" Account_ID , TS_MILLIS,amount\r\na,1,2\naccount_id,ts_millis,amount\n";
        let (_dir, source) = csv_source(content, 1 << 20);
        let batches = read_all(&source, 100, 0);
        assert_eq!(events(&batches), [(32, "a".to_owned(), 1, 2.0)]);
        assert_eq!(blanks(&batches), 0);
        let dead = dead_letters(&batches);
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].reason, dead[0].position, dead[0].line),
            (Reason::Parse, Some(38), Some(3))
        );
        assert!(
            dead[0].detail.contains("ts 'ts_millis'"),
            "{}",
            dead[0].detail
        );
        assert_eq!(dead[0].raw.as_deref(), Some("account_id,ts_millis,amount"));
        // A quoted header is a header too; a header-like first line of another range is not.
        let (_dir, source) =
            csv_source(b"\"account_id\",\"ts_millis\",\"amount\"\nb,2,3\n", 1 << 20);
        assert_eq!(
            events(&read_all(&source, 100, 0)),
            [(34, "b".to_owned(), 2, 3.0)]
        );
    }

    #[test]
    fn quoted_fields_parse() {
        let content = "account_id,ts_millis,amount\n\
                       \"acc,1\",1000,\"1.5\"\n\
                       \"say \"\"hi\"\"\",1001,2\n\
                       \"multi\r\nline\",1002,3\r\n\
                       k,1003,4\n\
                       \"bad\n\nfield\",x,1\n\
                       \"open,1004,5\n\
                       m,1005,1\n";
        let (_dir, source) = csv_source(content.as_bytes(), 1 << 20);
        let batches = read_all(&source, 2, 0);
        let offset = |needle: &str| content.find(needle).expect("in content") as u64;
        assert_eq!(
            events(&batches),
            [
                (offset("\"acc"), "acc,1".to_owned(), 1000, 1.5),
                (offset("\"say"), "say \"hi\"".to_owned(), 1001, 2.0),
                (offset("\"multi"), "multi\nline".to_owned(), 1002, 3.0),
                (offset("k,"), "k".to_owned(), 1003, 4.0),
            ]
        );
        let dead = dead_letters(&batches);
        assert_eq!(dead.len(), 2, "{dead:?}");
        assert_eq!(
            (
                dead[0].reason,
                dead[0].position,
                dead[0].line,
                dead[0].raw.as_deref()
            ),
            (
                Reason::Parse,
                Some(offset("\"bad")),
                Some(7),
                Some("\"bad\n\nfield\",x,1")
            )
        );
        assert_eq!(
            (
                dead[1].reason,
                dead[1].position,
                dead[1].line,
                dead[1].raw.as_deref()
            ),
            (
                Reason::Parse,
                Some(offset("\"open")),
                Some(10),
                Some("\"open,1004,5\nm,1005,1")
            )
        );
        assert!(dead[1].detail.contains("not closed"), "{}", dead[1].detail);
        assert_eq!(blanks(&batches), 0, "a blank line inside quotes is data");
    }

    #[test]
    fn a_quoted_record_does_not_run_past_its_range() {
        // Range [0, 8) holds `a,1,1` and the first line of the quoted record; its
        // second line starts at 9, in the next range, which reads it as its own.
        let content = b"a,1,1\n\"x\ny\",2,2\nz,3,3\n";
        let (_dir, source) = csv_source(content, 8);
        let batches = read_all(&source, 100, 0);
        let dead = dead_letters(&batches);
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(
            (dead[0].reason, dead[0].position, dead[0].line),
            (Reason::Parse, Some(6), Some(2))
        );
        assert_eq!(dead[0].raw.as_deref(), Some("\"x"));
        let seqs: Vec<u64> = events(&batches).into_iter().map(|e| e.0).collect();
        assert_eq!(seqs, [0, 9, 16], "each line read once");
        // Unsplit, the record is whole.
        let (_dir, source) = csv_source(content, 1 << 20);
        let accounts: Vec<String> = events(&read_all(&source, 100, 0))
            .into_iter()
            .map(|e| e.1)
            .collect();
        assert_eq!(accounts, ["a", "x\ny", "z"]);
    }

    /// A dead letter's (position, line, reason).
    type Expected = (u64, u64, Reason);

    /// A file with one of each kind of bad line; the expected dead letters as
    /// (position, line, reason), the late one last.
    fn malformed() -> (Vec<u8>, Vec<u64>, Vec<Expected>) {
        let lines: [&[u8]; 15] = [
            b"account_id,ts_millis,amount",
            b"a,1000,1.5",
            b"b,x,2",
            b",1001,2",
            b"c,1002,NaN",
            b"d,1003",
            b"e,1004,1,9",
            b"",
            b"f\xff,1005,1",
            b"\xff,1006,1,2",
            b"g,253402300800000,1",
            b"h,999,1",
            b"i,2000,3\r",
            b"account_id,ts_millis,amount",
            b"j,2001,4",
        ];
        let reasons = [
            None,
            None,
            Some(Reason::Parse),
            Some(Reason::AccountId),
            Some(Reason::Amount),
            Some(Reason::Parse),
            Some(Reason::Parse),
            None,
            Some(Reason::Encoding),
            Some(Reason::Encoding),
            Some(Reason::Ts),
            Some(Reason::Late),
            None,
            Some(Reason::Parse),
            None,
        ];
        let content = lines.join(&b'\n');
        let mut offset = 0;
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for (i, (line, reason)) in lines.iter().zip(reasons).enumerate() {
            match reason {
                Some(reason) => bad.push((offset, i as u64 + 1, reason)),
                None if i == 1 || i >= 12 => good.push(offset),
                None => {}
            }
            offset += line.len() as u64 + 1;
        }
        bad.sort_by_key(|&(position, _, reason)| (reason == Reason::Late, position));
        (content, good, bad)
    }

    #[test]
    fn malformed_lines_are_dead_letters_in_every_range() {
        let (content, good, bad) = malformed();
        let (late, bad) = bad.split_last().expect("late line");
        let first_good = good[0];
        for split in (1..=content.len() as u64 + 1).chain([1 << 20]) {
            let (_dir, source) = csv_source(&content, split);
            let batches = read_all(&source, 3, 0);
            let mut want = bad.to_vec();
            let mut want_good = good.clone();
            // `h,999` is late only after `a,1000` in the same partition.
            if late.0 / split == first_good / split {
                want.push(*late);
            } else {
                want_good.push(late.0);
                want_good.sort();
            }
            let seqs: Vec<u64> = events(&batches).into_iter().map(|e| e.0).collect();
            assert_eq!(seqs, want_good, "split size {split}");
            assert_eq!(blanks(&batches), 1, "split size {split}");
            want.sort_by_key(|d| d.0);
            let mut got: Vec<_> = dead_letters(&batches)
                .iter()
                .map(|d| {
                    (
                        d.position.expect("position"),
                        d.line.expect("line"),
                        d.reason,
                    )
                })
                .collect();
            got.sort_by_key(|d| d.0);
            assert_eq!(got, want, "split size {split}");
        }
        let (_dir, source) = csv_source(&content, 1 << 20);
        let batches = read_all(&source, 100, 0);
        let details: Vec<&str> = dead_letters(&batches)
            .iter()
            .map(|d| d.detail.as_str())
            .collect();
        assert!(details.contains(&"expected 3 fields (account_id,ts_millis,amount), found 2"));
        assert!(details.contains(&"expected 3 fields (account_id,ts_millis,amount), found 4"));
        let encoded = dead_letters(&batches)
            .into_iter()
            .find(|d| d.reason == Reason::Encoding)
            .expect("encoding dead letter");
        assert_eq!(
            (encoded.raw.as_deref(), encoded.raw_base64.as_deref()),
            (None, Some("Zv8sMTAwNSwx"))
        );
    }

    #[test]
    fn read_reports_more_until_the_range_is_done() {
        let (_dir, source) = csv_source(b"a,1,1\n\nb,2,2\n", 1 << 20);
        let mut reader = source.open(0).expect("open");
        let mut watermark = Watermark::new(0);
        let mut batch = ReadBatch::default();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let mut emit = Emitter::new(
                "tx.csv",
                0,
                RuleTime::Event,
                &mut watermark,
                0,
                1,
                &mut batch,
            );
            statuses.push(reader.read(1, &mut emit).expect("read"));
        }
        assert_eq!(
            statuses,
            [ReadStatus::More, ReadStatus::More, ReadStatus::Done]
        );
        assert_eq!((batch.events.len(), batch.blank_lines), (2, 1));
        let mut emit = Emitter::new(
            "tx.csv",
            0,
            RuleTime::Event,
            &mut watermark,
            0,
            1,
            &mut batch,
        );
        assert_eq!(reader.read(1, &mut emit).expect("read"), ReadStatus::Done);
        assert!(source.bounded());
        assert_eq!(source.source_name(0), source.files().name(0).expect("name"));
    }

    #[test]
    fn first_ts_skips_bad_lines_and_consumes_nothing() {
        let content = b"account_id,ts_millis,amount\n\nbad\n,5,1\nx,7,1\ny,3,1\n";
        let (_dir, source) = csv_source(content, 1 << 20);
        let expected = read_all(&source, 100, 0);
        let mut reader = source.open(0).expect("open");
        assert_eq!(reader.first_ts().expect("first ts"), Some(7));
        assert_eq!(reader.first_ts().expect("cached"), Some(7));
        let mut watermark = Watermark::new(0);
        let mut batch = ReadBatch::default();
        let name = source.source_name(0);
        let mut emit = Emitter::new(&name, 0, RuleTime::Event, &mut watermark, 0, 1, &mut batch);
        assert_eq!(reader.read(100, &mut emit).expect("read"), ReadStatus::Done);
        assert_eq!(batch.events, expected[0].events);
        assert_eq!(batch.dead_letters, expected[0].dead_letters);
        assert_eq!(batch.blank_lines, 1);
        // A later range, and a range without a valid record.
        let (_dir, source) = csv_source(content, 40);
        let firsts: Vec<_> = (0..source.partitions())
            .map(|p| {
                source
                    .open(p)
                    .and_then(|mut r| r.first_ts())
                    .expect("first ts")
            })
            .collect();
        assert_eq!(firsts, [Some(7), Some(3)]);
        let (_dir, source) = csv_source(b"bad\n\n", 1 << 20);
        assert_eq!(
            source
                .open(0)
                .and_then(|mut r| r.first_ts())
                .expect("first ts"),
            None
        );
    }
}
