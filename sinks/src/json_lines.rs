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

use serde::Serialize;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
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
}

/// A JSON lines output shared by the workers of a process.
pub struct JsonLinesWriter {
    target: String,
    output: Mutex<Output>,
}

impl JsonLinesWriter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Arc<Self>, SinkError> {
        let file = File::create(path).map_err(|source| SinkError::Io {
            target: path.display().to_string(),
            source,
        })?;
        Ok(Self::new(
            path.display().to_string(),
            Box::new(BufWriter::new(file)),
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
        Arc::new(JsonLinesWriter {
            target,
            output: Mutex::new(Output {
                out,
                prefix: b"",
                error: None,
                lines: 0,
            }),
        })
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
            Ok(()) => output.lines += lines,
            Err(e) => output.error = Some(e),
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
