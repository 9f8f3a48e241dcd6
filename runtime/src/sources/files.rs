//! File inputs: resolving paths and globs, splitting files into byte ranges, and
//! reading the lines of one range (shared by the [`csv`](super::csv) and
//! [`jsonl`](super::jsonl) sources).
//!
//! A file of `S` bytes is split into ranges `[k·R, min((k+1)·R, S))` of the split size
//! `R`, a function of `S` alone ([`SplitSize`]), whatever the worker count; an empty
//! file has one empty range. A stream input
//! (`-` for stdin, a pipe, a FIFO, a character device) cannot be split or read twice:
//! it is one partition, read from its start to its end. A file named twice (the same
//! path, a link to it, overlapping globs) is read once. Partitions are
//! numbered in file order, so `(partition, byte offset)` is file order. A line belongs
//! to the range its first byte lies in: the reader of `[s, e)` with `s > 0` skips the
//! partial line before `s` (up to and including the first `\n` at or after `s − 1`),
//! then reads every line that starts before `e`, the last one possibly ending past `e`.
//! So every line of the file is read by exactly one partition.
//!
//! A format ([`RecordFormat`]) turns lines into records; [`RangeReader`] drives it
//! over one range and hands the results to the [`Emitter`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use tidelake_operators::Transaction;

use super::split_size::SplitSize;
use super::{Emitter, PartitionReader, Position, ReadStatus, Source, SourceError, SourceRecord};
use crate::dead_letter::Reason;

/// The read buffer of a range reader.
const BUF_SIZE: usize = 1 << 20;
/// The smallest read buffer, for ranges much smaller than [`BUF_SIZE`].
const MIN_BUF_SIZE: usize = 64 << 10;
/// The UTF-8 byte order mark some tools write at the start of a text file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One input as resolved: a regular file, split into byte ranges, or a stream (`-` for
/// stdin, a pipe, a FIFO, a character device), read whole as one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The path (`-` for stdin).
    pub path: PathBuf,
    /// How the input was named (a path as given, or a glob's match).
    pub name: String,
    /// True for a stream: read sequentially, once, never split.
    pub stream: bool,
}

/// The inputs that named a file already named before (the same path, a link to it, or
/// an overlapping glob), and were therefore not read again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateInput {
    /// The input as named the second time.
    pub name: String,
    /// The input as named first, which is read.
    pub same_as: String,
}

/// Resolves inputs, each `-` (stdin), a path or a glob (it contains `*`, `?` or `[`),
/// into files, in the given order; the matches of a glob are sorted by path. A file
/// named more than once (the same device and inode, or stdin twice) is kept the first
/// time and returned among the duplicates after that.
///
/// Glob matching is shell-like: `*` does not cross `/` nor match a leading `.`, and
/// directories matched by a glob are skipped. An input matching no file is
/// [`SourceError::NoFiles`]; a path naming a directory is [`SourceError::Config`].
pub fn resolve_inputs(inputs: &[String]) -> Result<(Vec<Input>, Vec<DuplicateInput>), SourceError> {
    let mut found: Vec<(Input, FileId)> = Vec::new();
    for input in inputs {
        if input == STDIN {
            found.push((
                Input {
                    path: PathBuf::from(STDIN),
                    name: "stdin".to_owned(),
                    stream: true,
                },
                FileId::Stdin,
            ));
        } else if input.contains(['*', '?', '[']) {
            let options = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: true,
            };
            let paths = glob::glob_with(input, options).map_err(|e| SourceError::Pattern {
                pattern: input.clone(),
                message: e.to_string(),
            })?;
            let mut matched = Vec::new();
            for entry in paths {
                let path = entry.map_err(|e| SourceError::Io {
                    path: e.path().to_path_buf(),
                    source: e.into(),
                })?;
                let meta = std::fs::metadata(&path).map_err(|source| io_error(&path, source))?;
                if !meta.is_dir() {
                    matched.push((path, meta));
                }
            }
            if matched.is_empty() {
                return Err(SourceError::NoFiles(input.clone()));
            }
            matched.sort_by(|a, b| a.0.cmp(&b.0));
            for (path, meta) in matched {
                found.push(input_of(path, &meta));
            }
        } else {
            let path = PathBuf::from(input);
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {
                    return Err(SourceError::Config(format!(
                        "input '{input}' is a directory; name its files or use a glob such as '{input}/*'"
                    )));
                }
                Ok(meta) => found.push(input_of(path, &meta)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(SourceError::NoFiles(input.clone()));
                }
                Err(source) => return Err(io_error(&path, source)),
            }
        }
    }
    let mut files: Vec<(Input, FileId)> = Vec::new();
    let mut duplicates = Vec::new();
    for (input, id) in found {
        match files.iter().find(|(_, seen)| *seen == id) {
            Some((first, _)) => duplicates.push(DuplicateInput {
                name: input.name,
                same_as: first.name.clone(),
            }),
            None => files.push((input, id)),
        }
    }
    Ok((files.into_iter().map(|(i, _)| i).collect(), duplicates))
}

/// The name of the standard input among the inputs.
pub const STDIN: &str = "-";

/// What makes two inputs the same file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileId {
    /// Device and inode.
    Inode(u64, u64),
    /// The standard input.
    Stdin,
}

/// `path` (with its metadata) as an input: a regular file, or a stream for anything
/// else (a FIFO, a character device, a socket).
fn input_of(path: PathBuf, meta: &std::fs::Metadata) -> (Input, FileId) {
    use std::os::unix::fs::MetadataExt;
    let input = Input {
        name: path.display().to_string(),
        stream: !meta.is_file(),
        path,
    };
    (input, FileId::Inode(meta.dev(), meta.ino()))
}

/// Opens an input for reading: a file, or (for `-`) a handle on the standard input.
fn open_input(path: &Path) -> io::Result<File> {
    if path.as_os_str() == STDIN {
        use std::os::fd::AsFd;
        return Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?));
    }
    File::open(path)
}

/// One input file and the partitions it is split into.
#[derive(Clone, Debug)]
struct FileEntry {
    path: PathBuf,
    name: String,
    size: u64,
    /// The size of its ranges.
    split_size: u64,
    stream: bool,
    first_partition: u32,
    partitions: u32,
}

/// A byte range `[start, end)` of one file: one partition of a file source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// The file.
    pub path: PathBuf,
    /// The first byte of the range.
    pub start: u64,
    /// One past the last byte of the range (lines starting before it are read);
    /// `u64::MAX` for a stream, read to its end.
    pub end: u64,
    /// True for a stream input: read once, from its start, never reopened.
    pub stream: bool,
}

/// A file source: input files split into byte ranges, each read with format `F`.
pub struct FileSource<F> {
    files: FileSet,
    format: PhantomData<fn() -> F>,
}

impl<F: RecordFormat> FileSource<F> {
    /// Resolves `inputs` (paths or globs) and splits the files into ranges as
    /// `split_size` says.
    pub fn new(inputs: &[String], split_size: impl Into<SplitSize>) -> Result<Self, SourceError> {
        Ok(FileSource {
            files: FileSet::new(inputs, split_size)?,
            format: PhantomData,
        })
    }

    /// The files and their ranges.
    pub fn files(&self) -> &FileSet {
        &self.files
    }
}

impl<F: RecordFormat> Source<F::Record> for FileSource<F> {
    fn partitions(&self) -> u32 {
        self.files.partitions()
    }

    fn bounded(&self) -> bool {
        true
    }

    fn source_name(&self, partition: u32) -> String {
        self.files.name(partition).unwrap_or_default().to_owned()
    }

    fn open(&self, partition: u32) -> Result<Box<dyn PartitionReader<F::Record>>, SourceError> {
        Ok(Box::new(self.files.open::<F>(partition)?))
    }

    fn open_at(
        &self,
        partition: u32,
        position: Position,
    ) -> Result<Box<dyn PartitionReader<F::Record>>, SourceError> {
        let range = self.files.range_of(partition)?;
        if range.stream {
            return Err(SourceError::Config(format!(
                "{} is a stream: it cannot be read again from a checkpoint's position",
                self.source_name(partition)
            )));
        }
        Ok(Box::new(RangeReader::<F>::open_at(range, position)?))
    }

    fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = Vec::new();
        for d in self.files.duplicates() {
            let note = if d.name == d.same_as {
                format!("input {} is named more than once: it was read once", d.name)
            } else {
                format!(
                    "input {} is the same file as {}: it was read once, as {}",
                    d.name, d.same_as, d.same_as
                )
            };
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        notes
    }

    fn single_process_only(&self) -> Option<String> {
        let streams: Vec<&str> = self.files.streams().collect();
        (!streams.is_empty()).then(|| {
            format!(
                "{} can only be read by one process (it is a stream, read once: every process would have its own); use tidelake run, or files",
                streams.join(", ")
            )
        })
    }
}

/// Resolved input files split into fixed byte ranges, one per partition; a stream input
/// is one partition.
#[derive(Clone, Debug)]
pub struct FileSet {
    files: Vec<FileEntry>,
    partitions: u32,
    duplicates: Vec<DuplicateInput>,
}

impl FileSet {
    /// Resolves `inputs` (see [`resolve_inputs`]) and splits each file into ranges as
    /// `split_size` says.
    pub fn new(inputs: &[String], split_size: impl Into<SplitSize>) -> Result<Self, SourceError> {
        let split_size = split_size.into();
        if split_size == SplitSize::Bytes(0) {
            return Err(SourceError::Config(
                "the split size must be at least 1 byte".to_owned(),
            ));
        }
        let mut files = Vec::new();
        let mut partitions: u32 = 0;
        let (inputs, duplicates) = resolve_inputs(inputs)?;
        for Input { path, name, stream } in inputs {
            let size = match stream {
                true => u64::MAX,
                false => std::fs::metadata(&path)
                    .map_err(|source| io_error(&path, source))?
                    .len(),
            };
            let file_split = split_size.for_file(size);
            let count = if stream {
                1
            } else {
                size.div_ceil(file_split).max(1)
            };
            let total = u64::from(partitions) + count;
            let Ok(next) = u32::try_from(total) else {
                return Err(SourceError::Config(format!(
                    "splitting the input files at {file_split} bytes gives more than {} partitions; \
                     use a larger split size",
                    u32::MAX
                )));
            };
            files.push(FileEntry {
                name,
                path,
                size,
                split_size: file_split,
                stream,
                first_partition: partitions,
                partitions: next - partitions,
            });
            partitions = next;
        }
        Ok(FileSet {
            files,
            partitions,
            duplicates,
        })
    }

    /// The inputs not read because they named a file named before.
    pub fn duplicates(&self) -> &[DuplicateInput] {
        &self.duplicates
    }

    /// The stream inputs (stdin, pipes, FIFOs), by name.
    pub fn streams(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|f| f.stream)
            .map(|f| f.name.as_str())
    }

    /// The number of partitions (byte ranges) over all files.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The files, in partition order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    fn entry(&self, partition: u32) -> Option<&FileEntry> {
        let index = self
            .files
            .partition_point(|f| f.first_partition <= partition);
        let entry = self.files.get(index.checked_sub(1)?)?;
        (partition - entry.first_partition < entry.partitions).then_some(entry)
    }

    /// The name of `partition`'s file as given or matched (its display form).
    pub fn name(&self, partition: u32) -> Option<&str> {
        self.entry(partition).map(|f| f.name.as_str())
    }

    /// The byte range of `partition`.
    pub fn range(&self, partition: u32) -> Option<ByteRange> {
        let entry = self.entry(partition)?;
        let start = u64::from(partition - entry.first_partition) * entry.split_size;
        Some(ByteRange {
            path: entry.path.clone(),
            start,
            end: match entry.stream {
                true => u64::MAX,
                false => start.saturating_add(entry.split_size).min(entry.size),
            },
            stream: entry.stream,
        })
    }

    /// Opens a reader of `partition` parsing its lines with `F`.
    pub fn open<F: RecordFormat>(&self, partition: u32) -> Result<RangeReader<F>, SourceError> {
        RangeReader::open(self.range_of(partition)?)
    }

    /// The byte range of `partition`, or an error naming it if there is none.
    fn range_of(&self, partition: u32) -> Result<ByteRange, SourceError> {
        self.range(partition).ok_or_else(|| {
            SourceError::Config(format!(
                "partition {partition} does not exist (the source has {})",
                self.partitions
            ))
        })
    }
}

fn io_error(path: &Path, source: io::Error) -> SourceError {
    SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a line starts, as [`LineReader::advance`] returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// Byte offset of the line's first byte in the file.
    pub offset: u64,
    /// The number of `\n` between the range start and the line (see [`LineNumbers`]).
    pub newlines: u64,
}

/// Reads the lines of one byte range: `\n` terminated, a trailing `\r` stripped, the
/// last line of the file possibly unterminated, a UTF-8 byte order mark at offset 0
/// dropped. Lines that fit in the read buffer are not copied.
pub struct LineReader {
    path: PathBuf,
    inner: BufReader<File>,
    /// Offset of the next unread byte (the start of the next line).
    pos: u64,
    end: u64,
    /// `\n` read in `[range start, pos)`.
    newlines: u64,
    /// Bytes of the current line (with terminator) still to consume from the buffer.
    pending: usize,
    /// Where the current line's bytes are.
    current: Current,
    /// A line that did not fit in the buffer.
    spill: Vec<u8>,
    eof: bool,
}

#[derive(Clone, Copy, Debug)]
enum Current {
    Buffer { from: usize, to: usize },
    Spill { from: usize, to: usize },
}

impl LineReader {
    /// Opens `range` with a read buffer of up to `max_buf` bytes and skips the partial
    /// line before its start.
    pub fn open(range: &ByteRange, max_buf: usize) -> Result<Self, SourceError> {
        let file = open_input(&range.path).map_err(|e| io_error(&range.path, e))?;
        let len = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
        let capacity = max_buf.min(len.max(MIN_BUF_SIZE));
        let mut reader = LineReader {
            path: range.path.clone(),
            inner: BufReader::with_capacity(capacity, file),
            pos: range.start,
            end: range.end,
            newlines: 0,
            pending: 0,
            current: Current::Buffer { from: 0, to: 0 },
            spill: Vec::new(),
            eof: false,
        };
        if range.start > 0 {
            reader.skip_partial_line()?;
        }
        Ok(reader)
    }

    /// Opens `range` at `offset`, the start of a line of it after `lines` line breaks in
    /// the range (a restored checkpoint's position).
    pub fn open_at(
        range: &ByteRange,
        max_buf: usize,
        offset: u64,
        lines: u64,
    ) -> Result<Self, SourceError> {
        let mut reader = Self::open(
            &ByteRange {
                start: 0,
                ..range.clone()
            },
            max_buf,
        )?;
        reader
            .inner
            .seek(SeekFrom::Start(offset))
            .map_err(|e| io_error(&range.path, e))?;
        reader.pos = offset;
        reader.newlines = lines;
        Ok(reader)
    }

    /// Where the next line starts, and the line breaks read before it in the range.
    pub fn position(&self) -> (u64, u64) {
        (self.pos, self.newlines)
    }

    /// Skips up to and including the first `\n` at or after `start − 1`: the tail of
    /// a line that belongs to the previous range.
    fn skip_partial_line(&mut self) -> Result<(), SourceError> {
        let before = self.pos - 1;
        self.inner
            .seek(SeekFrom::Start(before))
            .map_err(|e| io_error(&self.path, e))?;
        let mut skipped = 0;
        let first = self
            .inner
            .fill_buf()
            .map_err(|e| io_error(&self.path, e))?
            .first()
            .copied();
        match first {
            None => {
                self.eof = true;
                skipped = 1;
            }
            Some(b'\n') => {
                self.inner.consume(1);
                skipped = 1;
            }
            Some(_) => loop {
                // `before` is not `\n`: the `\n` found lies at or after the start.
                let buf = self.inner.fill_buf().map_err(|e| io_error(&self.path, e))?;
                if buf.is_empty() {
                    self.eof = true;
                    break;
                }
                if let Some(i) = memchr::memchr(b'\n', buf) {
                    self.inner.consume(i + 1);
                    skipped += (i + 1) as u64;
                    self.newlines += 1;
                    break;
                }
                let n = buf.len();
                self.inner.consume(n);
                skipped += n as u64;
            },
        }
        self.pos = before + skipped;
        Ok(())
    }

    /// True when no line of the range is left.
    pub fn at_end(&mut self) -> Result<bool, SourceError> {
        self.release();
        if self.eof || self.pos >= self.end {
            return Ok(true);
        }
        let empty = self
            .inner
            .fill_buf()
            .map_err(|e| io_error(&self.path, e))?
            .is_empty();
        self.eof = empty;
        Ok(empty)
    }

    fn release(&mut self) {
        self.inner.consume(self.pending);
        self.pending = 0;
    }

    /// Moves to the next line of the range, whose bytes are then [`current`]; `None`
    /// when the range has no more lines.
    ///
    /// [`current`]: LineReader::current
    pub fn advance(&mut self) -> Result<Option<Line>, SourceError> {
        if self.at_end()? {
            return Ok(None);
        }
        let line = Line {
            offset: self.pos,
            newlines: self.newlines,
        };
        let buf = self.inner.fill_buf().map_err(|e| io_error(&self.path, e))?;
        let (mut from, mut to, in_spill) = if let Some(i) = memchr::memchr(b'\n', buf) {
            self.pending = i + 1;
            self.pos += (i + 1) as u64;
            self.newlines += 1;
            (0, i, false)
        } else {
            self.read_long_line()?;
            (0, self.spill.len(), true)
        };
        let bytes = if in_spill {
            &self.spill[..to]
        } else {
            &self.inner.buffer()[..to]
        };
        if bytes.last() == Some(&b'\r') {
            to -= 1;
        }
        if line.offset == 0 && bytes[..to].starts_with(UTF8_BOM) {
            from = UTF8_BOM.len();
        }
        self.current = if in_spill {
            Current::Spill { from, to }
        } else {
            Current::Buffer { from, to }
        };
        Ok(Some(line))
    }

    /// Copies a line that does not end in the buffer into `spill`.
    fn read_long_line(&mut self) -> Result<(), SourceError> {
        self.spill.clear();
        loop {
            let buf = self.inner.fill_buf().map_err(|e| io_error(&self.path, e))?;
            if buf.is_empty() {
                self.eof = true;
                return Ok(());
            }
            if let Some(i) = memchr::memchr(b'\n', buf) {
                self.spill.extend_from_slice(&buf[..i]);
                self.inner.consume(i + 1);
                self.pos += (i + 1) as u64;
                self.newlines += 1;
                return Ok(());
            }
            let n = buf.len();
            self.spill.extend_from_slice(buf);
            self.inner.consume(n);
            self.pos += n as u64;
        }
    }

    /// The bytes of the line [`advance`](LineReader::advance) moved to, without its
    /// terminator.
    pub fn current(&self) -> &[u8] {
        match self.current {
            Current::Buffer { from, to } => &self.inner.buffer()[from..to],
            Current::Spill { from, to } => &self.spill[from..to],
        }
    }
}

/// Turns [`Line::newlines`] into 1-based line numbers. For a range that does not
/// start at 0, the newlines before it are counted once, when first needed.
#[derive(Debug)]
pub struct LineNumbers {
    path: PathBuf,
    start: u64,
    before: Option<u64>,
}

impl LineNumbers {
    /// Line numbers for the range starting at `start` of `path`.
    pub fn new(path: &Path, start: u64) -> Self {
        LineNumbers {
            path: path.to_path_buf(),
            start,
            before: (start == 0).then_some(0),
        }
    }

    /// The 1-based line number of `line`.
    pub fn number(&mut self, line: Line) -> Result<u64, SourceError> {
        let before = match self.before {
            Some(n) => n,
            None => {
                let n = count_newlines(&self.path, self.start)
                    .map_err(|source| io_error(&self.path, source))?;
                self.before = Some(n);
                n
            }
        };
        Ok(1 + before + line.newlines)
    }
}

/// Counts the `\n` in the first `len` bytes of `path`.
fn count_newlines(path: &Path, len: u64) -> io::Result<u64> {
    let mut file = File::open(path)?.take(len);
    let mut buf = vec![0; BUF_SIZE];
    let mut count = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(count),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

/// True for a line that is empty or only ASCII whitespace: not a record.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// What a format made of the next record of a range.
#[derive(Debug, PartialEq)]
pub enum Outcome<R = Transaction> {
    /// A blank line.
    Blank,
    /// A header line, skipped.
    Header,
    /// A valid record.
    Valid(R),
    /// A bad record: the dead letter's reason and detail.
    Invalid(Reason, String),
}

/// One record (or blank line or header) of a range.
#[derive(Debug)]
pub struct Parsed<'a, R = Transaction> {
    /// Its first line.
    pub line: Line,
    /// Its original bytes without the line terminator (lines joined with `\n`).
    pub raw: &'a [u8],
    /// What it is.
    pub outcome: Outcome<R>,
}

/// A line-based file format: reads the next record from the lines of a range.
pub trait RecordFormat: Sized + Send + 'static {
    /// The records it decodes.
    type Record: SourceRecord;

    /// The format's state for reading `range` (a format that needs the file's header
    /// reads it here).
    fn open(range: &ByteRange) -> Result<Self, SourceError>;

    /// Parses the next record, taking one or more lines from `lines`; `None` when the
    /// range has no more lines.
    fn next_record<'a>(
        &'a mut self,
        lines: &'a mut LineReader,
    ) -> Result<Option<Parsed<'a, Self::Record>>, SourceError>;
}

/// The [`PartitionReader`] of a line-based file format over one byte range.
pub struct RangeReader<F> {
    range: ByteRange,
    lines: LineReader,
    numbers: LineNumbers,
    format: F,
    first_ts: Option<Option<u64>>,
}

impl<F: RecordFormat> RangeReader<F> {
    /// Opens `range`.
    pub fn open(range: ByteRange) -> Result<Self, SourceError> {
        let lines = LineReader::open(&range, BUF_SIZE)?;
        Ok(RangeReader {
            numbers: LineNumbers::new(&range.path, range.start),
            format: F::open(&range)?,
            range,
            lines,
            first_ts: None,
        })
    }

    /// Opens `range` at a [`position`](PartitionReader::position) a reader of it
    /// returned.
    pub fn open_at(range: ByteRange, position: Position) -> Result<Self, SourceError> {
        if position.offset <= range.start {
            return Self::open(range);
        }
        let lines = LineReader::open_at(&range, BUF_SIZE, position.offset, position.lines)?;
        // A format that reads a header from the file's first line does so for a range
        // that starts after it.
        let from = ByteRange {
            start: position.offset,
            ..range.clone()
        };
        Ok(RangeReader {
            numbers: LineNumbers::new(&range.path, range.start),
            format: F::open(&from)?,
            range,
            lines,
            first_ts: None,
        })
    }

    /// The byte range read.
    pub fn range(&self) -> &ByteRange {
        &self.range
    }
}

impl<F: RecordFormat> PartitionReader<F::Record> for RangeReader<F> {
    /// Scans the range with its own file handle for the first valid record, so the
    /// reads are unaffected; the answer is cached.
    fn first_ts(&mut self) -> Result<Option<u64>, SourceError> {
        if let Some(ts) = self.first_ts {
            return Ok(ts);
        }
        if self.range.stream {
            // A stream cannot be read twice: nothing is known before it is read.
            return Ok(None);
        }
        let mut lines = LineReader::open(&self.range, MIN_BUF_SIZE)?;
        let mut format = F::open(&self.range)?;
        let mut found = None;
        while let Some(parsed) = format.next_record(&mut lines)? {
            if let Outcome::Valid(record) = parsed.outcome {
                found = Some(record.event_time());
                break;
            }
        }
        self.first_ts = Some(found);
        Ok(found)
    }

    fn read(
        &mut self,
        max: usize,
        emit: &mut Emitter<'_, F::Record>,
    ) -> Result<ReadStatus, SourceError> {
        for _ in 0..max {
            let Some(parsed) = self.format.next_record(&mut self.lines)? else {
                return Ok(ReadStatus::Done);
            };
            let line = parsed.line;
            match parsed.outcome {
                Outcome::Blank => emit.blank_line(),
                Outcome::Header => {}
                Outcome::Valid(record) => {
                    if let Err(late) = emit.record(line.offset, record) {
                        let number = self.numbers.number(line)?;
                        emit.reject(
                            line.offset,
                            Some(number),
                            parsed.raw,
                            Reason::Late,
                            late.detail,
                        );
                    }
                }
                Outcome::Invalid(reason, detail) => {
                    let number = self.numbers.number(line)?;
                    emit.reject(line.offset, Some(number), parsed.raw, reason, detail);
                }
            }
        }
        Ok(if self.lines.at_end()? {
            ReadStatus::Done
        } else {
            ReadStatus::More
        })
    }

    fn position(&self) -> Option<Position> {
        let (offset, lines) = self.lines.position();
        (!self.range.stream).then_some(Position { offset, lines })
    }
}

/// Helpers for the file sources' tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use crate::sources::{
        Emitter, ReadBatch, ReadStatus, RuleTime, Source, SourceRecord, Watermark,
    };

    /// Writes `content` to `dir/name` and returns the path as a string.
    pub(crate) fn write_file(dir: &Path, name: &str, content: &[u8]) -> String {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write test file");
        path.display().to_string()
    }

    /// A file of a few hundred lines of varying length, some CRLF, some blank, the
    /// last without a newline; and its lines as (offset, bytes without terminator).
    pub(crate) fn sample_lines() -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
        let mut content = Vec::new();
        let mut lines = Vec::new();
        let mut seed: u64 = 7;
        for k in 0..300u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = seed >> 33;
            let text = match r % 10 {
                0 if k < 299 => String::new(),
                1 if k < 299 => " \t ".to_owned(),
                _ => format!(
                    "acct{},{},{}.{}",
                    "x".repeat((r % 23) as usize),
                    1000 + k,
                    r % 900,
                    k % 100
                ),
            };
            lines.push((content.len() as u64, text.clone().into_bytes()));
            content.extend_from_slice(text.as_bytes());
            if k < 299 {
                content.extend_from_slice(if r.is_multiple_of(3) { b"\r\n" } else { b"\n" });
            }
        }
        (content, lines)
    }

    /// Reads every partition of `source` to the end, `max` records per call, each
    /// partition with its own watermark of out-of-orderness `bound`.
    pub(crate) fn read_all<R: SourceRecord>(
        source: &dyn Source<R>,
        max: usize,
        bound: u64,
    ) -> Vec<ReadBatch<R>> {
        (0..source.partitions())
            .map(|p| {
                let name = source.source_name(p);
                let mut reader = source.open(p).expect("open partition");
                let mut watermark = Watermark::new(bound);
                let mut batch = ReadBatch::default();
                loop {
                    let mut emit =
                        Emitter::new(&name, p, RuleTime::Event, &mut watermark, 0, 1, &mut batch);
                    match reader.read(max, &mut emit).expect("read") {
                        ReadStatus::More => {}
                        ReadStatus::Done => break,
                        ReadStatus::Idle | ReadStatus::Waiting => {
                            panic!("a file partition is never idle")
                        }
                    }
                }
                batch
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_read_once_for_every_split_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (content, expected) = testing::sample_lines();
        let path = testing::write_file(dir.path(), "lines.csv", &content);
        for split in (1..=64).chain([1 << 20]) {
            let files = FileSet::new(std::slice::from_ref(&path), split).expect("file set");
            assert_eq!(
                u64::from(files.partitions()),
                (content.len() as u64).div_ceil(split)
            );
            let mut got = Vec::new();
            let mut numbers_seen = Vec::new();
            for p in 0..files.partitions() {
                let range = files.range(p).expect("range");
                let mut lines = LineReader::open(&range, BUF_SIZE).expect("open");
                let mut numbers = LineNumbers::new(&range.path, range.start);
                while let Some(line) = lines.advance().expect("advance") {
                    assert!(line.offset >= range.start && line.offset < range.end);
                    got.push((line.offset, lines.current().to_vec()));
                    numbers_seen.push(numbers.number(line).expect("line number"));
                }
                assert!(lines.at_end().expect("at end"));
            }
            assert_eq!(got, expected, "split size {split}");
            let want: Vec<u64> = (1..=expected.len() as u64).collect();
            assert_eq!(numbers_seen, want, "line numbers, split size {split}");
        }
    }

    #[test]
    fn long_lines_spill_past_the_buffer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let long = "y".repeat(3 * MIN_BUF_SIZE);
        let content = format!("a\r\n{long}\r\nb\n\n{long}");
        let path = testing::write_file(dir.path(), "long.txt", content.as_bytes());
        let range = ByteRange {
            path: path.into(),
            start: 0,
            end: content.len() as u64,
            stream: false,
        };
        let mut lines = LineReader::open(&range, MIN_BUF_SIZE).expect("open");
        let mut got = Vec::new();
        while let Some(line) = lines.advance().expect("advance") {
            got.push((line.offset, line.newlines, lines.current().to_vec()));
        }
        let second = 3;
        let third = second + long.len() as u64 + 2;
        assert_eq!(
            got,
            vec![
                (0, 0, b"a".to_vec()),
                (second, 1, long.clone().into_bytes()),
                (third, 2, b"b".to_vec()),
                (third + 2, 3, Vec::new()),
                (third + 3, 4, long.into_bytes()),
            ]
        );
    }

    #[test]
    fn byte_order_mark_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path =
            testing::write_file(dir.path(), "bom.csv", b"\xEF\xBB\xBFa,1,2\n\xEF\xBB\xBFb\n");
        let files = FileSet::new(&[path], 1 << 20).expect("file set");
        let mut lines = LineReader::open(&files.range(0).expect("range"), BUF_SIZE).expect("open");
        assert_eq!(lines.advance().expect("line").map(|l| l.offset), Some(0));
        assert_eq!(lines.current(), b"a,1,2");
        assert_eq!(lines.advance().expect("line").map(|l| l.offset), Some(9));
        assert_eq!(
            lines.current(),
            b"\xEF\xBB\xBFb",
            "only at the start of the file"
        );
        assert_eq!(lines.advance().expect("end"), None);
    }

    #[test]
    fn inputs_resolve_in_order_with_sorted_globs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let b = testing::write_file(d, "b.csv", b"0123456789");
        let a = testing::write_file(d, "a.csv", b"");
        let c = testing::write_file(d, "c.csv", b"0123");
        testing::write_file(d, ".hidden.csv", b"x");
        std::fs::create_dir(d.join("sub.csv")).expect("mkdir");
        let glob = format!("{}/*.csv", d.display());
        let files = FileSet::new(&[c.clone(), glob], 4).expect("file set");
        let names: Vec<_> = (0..files.partitions())
            .map(|p| files.name(p).expect("name"))
            .collect();
        // c.csv is named first, then matched by the glob again: read once.
        assert_eq!(names, [&c, &a, &b, &b, &b].map(String::as_str));
        assert_eq!(
            files.duplicates(),
            [DuplicateInput {
                name: c.clone(),
                same_as: c.clone()
            }]
        );
        let ranges: Vec<_> = (0..files.partitions())
            .map(|p| files.range(p).map(|r| (r.start, r.end)).expect("range"))
            .collect();
        assert_eq!(ranges, [(0, 4), (0, 0), (0, 4), (4, 8), (8, 10)]);
        assert!(files.range(5).is_none() && files.name(5).is_none());
        assert!(matches!(
            files.open::<crate::sources::csv::CsvFormat>(5),
            Err(SourceError::Config(_))
        ));
    }

    #[test]
    fn a_file_named_by_a_link_or_another_path_is_read_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let a = testing::write_file(d, "a.csv", b"x,1,2\n");
        let link = d.join("link.csv");
        std::os::unix::fs::symlink(&a, &link).expect("symlink");
        let dotted = format!("{}/./a.csv", d.display());
        let inputs = [a.clone(), link.display().to_string(), dotted.clone()];
        let files = FileSet::new(&inputs, 1 << 20).expect("file set");
        assert_eq!(files.partitions(), 1);
        let same_as: Vec<(&str, &str)> = files
            .duplicates()
            .iter()
            .map(|d| (d.name.as_str(), d.same_as.as_str()))
            .collect();
        assert_eq!(
            same_as,
            [
                (link.display().to_string().as_str(), a.as_str()),
                (dotted.as_str(), a.as_str())
            ]
        );
    }

    #[test]
    fn a_fifo_is_one_stream_partition_read_to_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("in.csv");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let lines: Vec<String> = (0..5000).map(|i| format!("acct-{i},{i},1.5")).collect();
        let text = lines.join("\n") + "\n";
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, text).expect("write the fifo"))
        };
        // A split size far below the data: a stream is never split.
        let source =
            crate::sources::csv::CsvSource::new(&[fifo.display().to_string()], 64).expect("source");
        assert_eq!(source.partitions(), 1);
        assert!(source.single_process_only().is_some());
        let batches = testing::read_all(&source, 1000, 0);
        writer.join().expect("writer");
        let events: usize = batches.iter().map(|b| b.events.len()).sum();
        assert_eq!(events, 5000);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let a = testing::write_file(d, "a.csv", b"x\n");
        let missing = format!("{}/missing.csv", d.display());
        let nothing = format!("{}/*.jsonl", d.display());
        assert!(
            matches!(FileSet::new(std::slice::from_ref(&missing), 10), Err(SourceError::NoFiles(p)) if p == missing)
        );
        assert!(
            matches!(FileSet::new(&[a.clone(), nothing.clone()], 10), Err(SourceError::NoFiles(p)) if p == nothing)
        );
        assert!(matches!(
            FileSet::new(&["[a".to_owned()], 10),
            Err(SourceError::Pattern { .. })
        ));
        assert!(matches!(
            FileSet::new(std::slice::from_ref(&a), 0),
            Err(SourceError::Config(_))
        ));
        let dir_input = d.display().to_string();
        assert!(matches!(
            FileSet::new(&[dir_input], 10),
            Err(SourceError::Config(_))
        ));
        assert!(matches!(FileSet::new(&[a], u64::MAX), Ok(f) if f.partitions() == 1));
    }
}
