//! JSON lines to a file or stdout, shared by the workers of one process.
//!
//! Each worker's sink operator serialises what it receives into its own buffer and
//! appends the whole buffer to the shared writer under a lock, then flushes, so lines
//! are never interleaved and alerts reach stdout as soon as they are raised. The first
//! write error is kept and reported by [`JsonLinesWriter::finish`].

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Operator;

/// A sink failure.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing to an output failed.
    #[error("cannot write {target}: {source}")]
    Io {
        /// The file, or `stdout`.
        target: String,
        /// The I/O error.
        source: io::Error,
    },
}

struct Output {
    out: Box<dyn Write + Send>,
    /// Written before each batch: on a terminal, clears a status line left on it.
    prefix: &'static [u8],
    error: Option<io::Error>,
    lines: u64,
    /// Bytes of lines written (the file's length, for a file opened by `create` or
    /// `resume`).
    bytes: u64,
}

/// A JSON lines output shared by the workers of a process.
pub struct JsonLinesWriter {
    target: String,
    output: Mutex<Output>,
    /// Writes a file (which a restore can cut back), not stdout.
    file: bool,
}

impl JsonLinesWriter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Arc<Self>, SinkError> {
        let file = File::create(path).map_err(|source| SinkError::Io {
            target: path.display().to_string(),
            source,
        })?;
        Ok(Self::file(
            path.display().to_string(),
            Box::new(BufWriter::new(file)),
            0,
            0,
        ))
    }

    fn file(target: String, out: Box<dyn Write + Send>, bytes: u64, lines: u64) -> Arc<Self> {
        let mut writer = Self::writer(target, out);
        writer.file = true;
        if let Ok(output) = writer.output.get_mut() {
            output.bytes = bytes;
            output.lines = lines;
        }
        Arc::new(writer)
    }

    /// True when it writes a file (not stdout).
    pub fn is_file(&self) -> bool {
        self.file
    }

    /// Opens the file at `path` to write on after its first `bytes` bytes (`lines`
    /// lines), which a checkpoint recorded: what follows them is cut off. A file shorter
    /// than that was changed since, and is an error.
    pub fn resume(path: &Path, bytes: u64, lines: u64) -> Result<Arc<Self>, SinkError> {
        let io_error = |source| SinkError::Io {
            target: path.display().to_string(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        if len < bytes {
            return Err(io_error(io::Error::other(format!(
                "it has {len} bytes, fewer than the {bytes} the checkpoint recorded: it was changed since"
            ))));
        }
        file.set_len(bytes).map_err(io_error)?;
        let mut file = file;
        io::Seek::seek(&mut file, io::SeekFrom::End(0)).map_err(io_error)?;
        let target = path.display().to_string();
        Ok(Self::file(
            target,
            Box::new(BufWriter::new(file)),
            bytes,
            lines,
        ))
    }

    /// Writes to the process's stdout. On a terminal, each batch first clears the
    /// current line, where a status line (on stderr) may stand.
    pub fn stdout() -> Arc<Self> {
        let writer = Self::new("stdout".to_owned(), Box::new(io::stdout()));
        if io::stdout().is_terminal()
            && let Ok(mut output) = writer.output.lock()
        {
            output.prefix = b"\r\x1b[2K";
        }
        writer
    }

    /// Writes to `out`, naming it `target` in errors.
    pub fn new(target: String, out: Box<dyn Write + Send>) -> Arc<Self> {
        Arc::new(Self::writer(target, out))
    }

    fn writer(target: String, out: Box<dyn Write + Send>) -> Self {
        JsonLinesWriter {
            file: false,
            target,
            output: Mutex::new(Output {
                out,
                prefix: b"",
                error: None,
                lines: 0,
                bytes: 0,
            }),
        }
    }

    /// Appends `bytes` (whole lines, `lines` of them) and flushes. After a failure
    /// further writes are dropped and the error is reported by [`finish`](Self::finish).
    pub fn append(&self, bytes: &[u8], lines: u64) {
        let Ok(mut output) = self.output.lock() else {
            return;
        };
        if output.error.is_some() {
            return;
        }
        match output
            .out
            .write_all(bytes)
            .and_then(|()| output.out.flush())
        {
            Ok(()) => {
                output.lines += lines;
                output.bytes += bytes.len() as u64;
            }
            Err(e) => output.error = Some(e),
        }
    }

    /// Bytes and lines written so far, or the first write error.
    pub fn written(&self) -> Result<(u64, u64), SinkError> {
        let mut output = self.output.lock().map_err(|_| SinkError::Io {
            target: self.target.clone(),
            source: io::Error::other("a writer thread panicked"),
        })?;
        match output.error.take() {
            Some(source) => Err(SinkError::Io {
                target: self.target.clone(),
                source,
            }),
            None => Ok((output.bytes, output.lines)),
        }
    }

    /// Appends `records`, one JSON object per line (see [`append`](Self::append)).
    pub fn write_records<T: Serialize>(&self, records: impl IntoIterator<Item = T>) {
        let mut buffer = Vec::new();
        let lines = serialize_lines(records, &mut buffer);
        if lines > 0 {
            self.append(&buffer, lines);
        }
    }

    /// Flushes and returns the number of lines written, or the first write error.
    pub fn finish(&self) -> Result<u64, SinkError> {
        let target = self.target.clone();
        let mut output = self.output.lock().map_err(|_| SinkError::Io {
            target: target.clone(),
            source: io::Error::other("a writer thread panicked"),
        })?;
        if let Some(source) = output.error.take() {
            return Err(SinkError::Io { target, source });
        }
        output
            .out
            .flush()
            .map_err(|source| SinkError::Io { target, source })?;
        Ok(output.lines)
    }
}

/// Appends each of `records` to `buffer` as a JSON line; returns how many.
fn serialize_lines<T: Serialize>(
    records: impl IntoIterator<Item = T>,
    buffer: &mut Vec<u8>,
) -> u64 {
    let mut lines = 0;
    for record in records {
        // Serialising our own record types into memory cannot fail.
        if serde_json::to_writer(&mut *buffer, &record).is_ok() {
            buffer.push(b'\n');
            lines += 1;
        }
    }
    lines
}

/// Writes a stream's records as JSON lines.
pub trait WriteJsonLines {
    /// Writes every record to `writer`, one JSON object per line.
    fn write_json_lines(self, name: &str, writer: Arc<JsonLinesWriter>);
}

impl<D: Serialize + 'static> WriteJsonLines for StreamVec<'_, u64, D> {
    fn write_json_lines(self, name: &str, writer: Arc<JsonLinesWriter>) {
        let mut buffer = Vec::new();
        self.sink(Pipeline, name, move |(input, _frontier)| {
            let mut lines = 0u64;
            input.for_each(|_time, data| {
                lines += serialize_lines(data.drain(..), &mut buffer);
            });
            if !buffer.is_empty() {
                writer.append(&buffer, lines);
                buffer.clear();
            }
        });
    }
}

/// Told `(lo, hi, bytes, lines)`: see [`InOrder::on_written`].
pub type OnWritten = Box<dyn FnMut(u64, u64, u64, u64)>;

/// How a stream is written in the order of its times (see [`WriteJsonLinesInOrder`]).
pub struct InOrder {
    /// Where the lines go: the file or stdout of this worker, if it writes them (worker
    /// 0 of the job); `None` on the others.
    pub writer: Option<Arc<JsonLinesWriter>>,
    /// Told, for a range of times `(lo, hi]`, the bytes and lines written: everything
    /// at times before any time in the range, and nothing at or after it.
    pub on_written: Option<OnWritten>,
    /// Told when nothing more is written.
    pub on_finish: Option<Box<dyn FnOnce()>>,
    /// Records at or after this time are dropped, never written (the job stopped
    /// there).
    pub halt_at: Arc<AtomicU64>,
}

/// Writes a stream's records as JSON lines in the order of their times, all on worker
/// 0: a time's lines are written once the frontier has passed it, so the output is
/// always everything before some time — what a checkpoint records, and what a restore
/// cuts the file back to.
pub trait WriteJsonLinesInOrder {
    /// Writes every record as `in_order` says, one JSON object per line.
    fn write_json_lines_in_order(self, name: &str, in_order: InOrder);
}

impl<D: Serialize + 'static> WriteJsonLinesInOrder for StreamVec<'_, u64, D> {
    fn write_json_lines_in_order(self, name: &str, in_order: InOrder) {
        let InOrder {
            writer,
            mut on_written,
            mut on_finish,
            halt_at,
        } = in_order;
        // Lines by time, serialised as they come.
        let mut pending: BTreeMap<u64, (Vec<u8>, u64)> = BTreeMap::new();
        // The times before this one (exclusive) are written.
        let mut written_to = 0u64;
        let mut told_to = 0u64;
        let mut tell = move |lo: u64, hi: u64, writer: &JsonLinesWriter| {
            if let (Some(on_written), Ok((bytes, lines))) = (on_written.as_mut(), writer.written())
            {
                on_written(lo, hi, bytes, lines);
            }
        };
        // Lines are serialised where they are made and sent to worker 0 as text (some
        // records skip empty fields, which the exchange's own encoding cannot).
        let lines = self.unary::<CapacityContainerBuilder<Vec<(Vec<u8>, u64)>>, _, _, _>(
            Pipeline,
            &format!("{name}Lines"),
            |_, _| {
                move |input, output| {
                    input.for_each(|time, data| {
                        let mut buffer = Vec::new();
                        let lines = serialize_lines(data.drain(..), &mut buffer);
                        if lines > 0 {
                            output.session(&time).give((buffer, lines));
                        }
                    });
                }
            },
        );
        lines.sink(
            Exchange::new(|_: &(Vec<u8>, u64)| 0),
            name,
            move |(input, frontier)| {
                let halt = halt_at.load(Ordering::Acquire);
                input.for_each(|time, data| {
                    let Some(&t) = time.least() else { return };
                    if t >= halt {
                        return;
                    }
                    let (buffer, lines) = pending.entry(t).or_default();
                    for (bytes, count) in data.drain(..) {
                        buffer.extend_from_slice(&bytes);
                        *lines += count;
                    }
                });
                let Some(writer) = writer.as_ref() else {
                    return;
                };
                let upto = frontier
                    .frontier()
                    .first()
                    .copied()
                    .unwrap_or(u64::MAX)
                    .min(halt);
                while let Some(entry) = pending.first_entry() {
                    let t = *entry.key();
                    if t >= upto {
                        break;
                    }
                    let (buffer, lines) = entry.remove();
                    if t > told_to {
                        // Before t is written, the file holds every time before t.
                        tell(told_to.max(written_to), t, writer);
                        told_to = t;
                    }
                    writer.append(&buffer, lines);
                    written_to = t;
                }
                if upto > told_to {
                    tell(told_to.max(written_to), upto, writer);
                    told_to = upto;
                }
                if frontier.is_empty()
                    && let Some(on_finish) = on_finish.take()
                {
                    on_finish();
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timely::dataflow::operators::ToStream;

    #[test]
    fn writes_every_record_as_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        let writer = JsonLinesWriter::create(&path).expect("create");
        let w = Arc::clone(&writer);
        timely::example(move |scope| {
            (0..1000u64)
                .map(|i| serde_json::json!({ "i": i }))
                .to_stream(scope)
                .write_json_lines("Out", Arc::clone(&w));
        });
        assert_eq!(writer.finish().expect("finish"), 1000);
        let text = std::fs::read_to_string(&path).expect("read");
        let values: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["i"]
                    .as_u64()
                    .expect("i")
            })
            .collect();
        assert_eq!(values, (0..1000).collect::<Vec<_>>());
    }
}
