//! Sorting more rows than fit in memory, by a fixed-width byte key per row (Z-order's,
//! see [`crate::delta::maintenance::zorder`]), as a database sorts: the rows are taken
//! batch by batch until they hold the memory allowed, then sorted and written to a
//! temporary file (a *run*, in Arrow IPC with the key as an extra column); at the end
//! the runs are merged, reading each a small batch at a time.
//!
//! The sort is stable: rows with equal keys come out in the order they were pushed
//! (runs are merged with ties going to the earlier run), so the result is the same
//! whatever the memory allowed. Rows that fit in memory are never written out.
//!
//! Memory: the rows buffered for a run (at most the allowance, counted as arrow's
//! buffer sizes, plus the batch that crosses it), and while merging one batch of each
//! run plus the batch being assembled. Disk: the rows once more, in the temporary
//! directory (removed when the sort is dropped).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeBinaryArray};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;

/// Rows per batch the sort hands out (and writes to its runs), unless the rows are so
/// wide that [`BATCH_BYTES`] bounds them first.
const BATCH_ROWS: usize = 8192;

/// The most bytes of rows in one batch the sort hands out or writes to a run, so that
/// merging many runs of wide rows holds little of each.
const BATCH_BYTES: usize = 4 << 20;

/// The column of a run's file that holds the keys.
const KEY_COLUMN: &str = "__tidelake_sort_key";

/// A sort that failed: a run could not be written or read, or arrow refused the rows.
#[derive(Debug, thiserror::Error)]
pub enum SortError {
    /// The temporary directory or a run's file failed.
    #[error("sort spill file {path}: {source}")]
    Spill {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Arrow failed to sort, write or read rows.
    #[error("sorting rows: {0}")]
    Arrow(#[from] ArrowError),
}

/// Rows being sorted by their keys in at most `memory` bytes; see the
/// [module docs](self).
pub struct ExternalSort {
    schema: SchemaRef,
    width: usize,
    memory: usize,
    spill_dir: PathBuf,
    /// The directory of the runs, made at the first spill.
    dir: Option<tempfile::TempDir>,
    runs: Vec<PathBuf>,
    buffered: Vec<(RecordBatch, Vec<u8>)>,
    buffered_bytes: usize,
}

impl ExternalSort {
    /// A sort of rows of `schema` by keys of `width` bytes, holding at most about
    /// `memory` bytes of rows before writing a run to a new directory in `spill_dir`.
    pub fn new(schema: SchemaRef, width: usize, memory: usize, spill_dir: &Path) -> Self {
        ExternalSort {
            schema,
            width,
            memory,
            spill_dir: spill_dir.to_owned(),
            dir: None,
            runs: Vec::new(),
            buffered: Vec::new(),
            buffered_bytes: 0,
        }
    }

    /// Adds the rows of `batch`, with `keys` holding each row's key (`width` bytes per
    /// row, one after the other).
    pub fn push(&mut self, batch: RecordBatch, keys: Vec<u8>) -> Result<(), SortError> {
        if keys.len() != batch.num_rows() * self.width {
            return Err(SortError::Arrow(ArrowError::InvalidArgumentError(format!(
                "{} bytes of keys for {} rows of {} bytes",
                keys.len(),
                batch.num_rows(),
                self.width
            ))));
        }
        self.buffered_bytes += batch.get_array_memory_size() + keys.len();
        self.buffered.push((batch, keys));
        if self.buffered_bytes > self.memory {
            self.spill()?;
        }
        Ok(())
    }

    /// The runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Every row pushed, in key order, a batch at a time.
    pub fn finish(mut self) -> Result<SortedBatches, SortError> {
        let last = SortedRun::new(std::mem::take(&mut self.buffered), self.width)?;
        let mut sources = Vec::with_capacity(self.runs.len() + 1);
        for path in &self.runs {
            sources.push(RunSource::File(RunFile::open(path, self.schema.clone())?));
        }
        sources.push(RunSource::Memory(last));
        Merge::start(sources, self.width, self.dir.take())
    }

    /// Sorts the buffered rows and writes them as a run.
    fn spill(&mut self) -> Result<(), SortError> {
        let mut run = SortedRun::new(std::mem::take(&mut self.buffered), self.width)?;
        self.buffered_bytes = 0;
        let dir = match &self.dir {
            Some(dir) => dir,
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("tidelake-sort-")
                    .tempdir_in(&self.spill_dir)
                    .map_err(|source| SortError::Spill {
                        path: self.spill_dir.clone(),
                        source,
                    })?;
                self.dir.insert(dir)
            }
        };
        let path = dir.path().join(format!("run-{:05}.arrow", self.runs.len()));
        let spill_error = |source| SortError::Spill {
            path: path.clone(),
            source,
        };
        let file = File::create(&path).map_err(spill_error)?;
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(
            KEY_COLUMN,
            DataType::FixedSizeBinary(self.width as i32),
            false,
        ));
        let run_schema = Arc::new(Schema::new(fields));
        let mut writer = FileWriter::try_new(BufWriter::new(file), &run_schema)?;
        while let Some((batch, keys)) = run.next_batch()? {
            let mut columns = batch.columns().to_vec();
            columns.push(key_array(keys, self.width)?);
            writer.write(&RecordBatch::try_new(run_schema.clone(), columns)?)?;
        }
        writer.finish()?;
        self.runs.push(path);
        Ok(())
    }
}

/// `keys` (`width` bytes each) as a fixed-size binary array.
fn key_array(keys: Vec<u8>, width: usize) -> Result<ArrayRef, ArrowError> {
    let rows = keys.len() / width.max(1);
    let array = if width == 0 {
        FixedSizeBinaryArray::new_null(0, rows)
    } else {
        FixedSizeBinaryArray::try_new(width as i32, keys.into(), None)?
    };
    Ok(Arc::new(array))
}

/// Rows per batch for rows of `batch`'s width: [`BATCH_ROWS`], fewer for wide rows.
fn batch_rows(batch: &RecordBatch) -> usize {
    let row_bytes = batch.get_array_memory_size() / batch.num_rows().max(1);
    (BATCH_BYTES / row_bytes.max(1)).clamp(1, BATCH_ROWS)
}

/// Buffered rows sorted in memory, handed out a batch at a time.
struct SortedRun {
    batches: Vec<RecordBatch>,
    keys: Vec<Vec<u8>>,
    /// (batch, row) of every row, in key order.
    order: Vec<(usize, usize)>,
    next: usize,
    width: usize,
    rows_per_batch: usize,
}

impl SortedRun {
    fn new(buffered: Vec<(RecordBatch, Vec<u8>)>, width: usize) -> Result<Self, SortError> {
        let (batches, keys): (Vec<RecordBatch>, Vec<Vec<u8>>) = buffered.into_iter().unzip();
        let key = |&(batch, row): &(usize, usize)| &keys[batch][row * width..(row + 1) * width];
        let mut order: Vec<(usize, usize)> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |row| (b, row)))
            .collect();
        // Stable: equal keys keep the order the rows were pushed in.
        order.sort_by(|a, b| key(a).cmp(key(b)));
        let rows_per_batch = batches.first().map_or(BATCH_ROWS, batch_rows);
        Ok(SortedRun {
            batches,
            keys,
            order,
            next: 0,
            width,
            rows_per_batch,
        })
    }

    /// The next batch of rows in order, with their keys.
    fn next_batch(&mut self) -> Result<Option<(RecordBatch, Vec<u8>)>, SortError> {
        if self.next == self.order.len() {
            return Ok(None);
        }
        let end = (self.next + self.rows_per_batch).min(self.order.len());
        let rows = &self.order[self.next..end];
        self.next = end;
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        let batch = interleave_record_batch(&batches, rows)?;
        let mut keys = Vec::with_capacity(rows.len() * self.width);
        for &(b, row) in rows {
            keys.extend_from_slice(&self.keys[b][row * self.width..(row + 1) * self.width]);
        }
        Ok(Some((batch, keys)))
    }
}

/// A run written to disk, read back a batch at a time.
struct RunFile {
    path: PathBuf,
    reader: FileReader<BufReader<File>>,
    schema: SchemaRef,
}

impl RunFile {
    fn open(path: &Path, schema: SchemaRef) -> Result<Self, SortError> {
        let file = File::open(path).map_err(|source| SortError::Spill {
            path: path.to_owned(),
            source,
        })?;
        Ok(RunFile {
            path: path.to_owned(),
            reader: FileReader::try_new(BufReader::new(file), None)?,
            schema,
        })
    }

    fn next_batch(&mut self) -> Result<Option<(RecordBatch, Vec<u8>)>, SortError> {
        let Some(batch) = self.reader.next().transpose()? else {
            return Ok(None);
        };
        let columns = self.schema.fields().len();
        let keys = batch
            .column(columns)
            .as_any()
            .downcast_ref::<FixedSizeBinaryArray>()
            .ok_or_else(|| {
                ArrowError::SchemaError(format!(
                    "{}: the last column holds no keys",
                    self.path.display()
                ))
            })?
            .value_data()
            .to_vec();
        let rows = RecordBatch::try_new(self.schema.clone(), batch.columns()[..columns].to_vec())?;
        Ok(Some((rows, keys)))
    }
}

/// Where a merge reads a run from.
enum RunSource {
    Memory(SortedRun),
    File(RunFile),
}

impl RunSource {
    fn next_batch(&mut self) -> Result<Option<(RecordBatch, Vec<u8>)>, SortError> {
        match self {
            RunSource::Memory(run) => run.next_batch(),
            RunSource::File(run) => run.next_batch(),
        }
    }
}

/// A run's place in the merge: its current batch (an index into the batches the merge
/// holds), that batch's keys, and the next row.
struct Cursor {
    source: RunSource,
    batch: usize,
    keys: Vec<u8>,
    row: usize,
    rows: usize,
}

/// The smallest key of a run still to merge; ties go to the earlier run.
#[derive(PartialEq, Eq)]
struct Head {
    key: Vec<u8>,
    run: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.key, self.run).cmp(&(&other.key, other.run))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The sorted rows of an [`ExternalSort`], a batch at a time (an iterator of
/// `Result<RecordBatch, SortError>`).
pub struct SortedBatches {
    merge: Merge,
}

impl Iterator for SortedBatches {
    type Item = Result<RecordBatch, SortError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.merge.next_batch().transpose()
    }
}

/// A k-way merge of sorted runs.
struct Merge {
    width: usize,
    cursors: Vec<Cursor>,
    heap: BinaryHeap<Reverse<Head>>,
    /// The batches rows are taken from for the batch being assembled.
    batches: Vec<RecordBatch>,
    rows_per_batch: usize,
    /// Keeps the runs' files until the merge is done.
    _dir: Option<tempfile::TempDir>,
}

impl Merge {
    /// The merge of `sources`, each a sorted run with keys of `width` bytes; `dir`
    /// holds the runs' files.
    fn start(
        sources: Vec<RunSource>,
        width: usize,
        dir: Option<tempfile::TempDir>,
    ) -> Result<SortedBatches, SortError> {
        let mut merge = Merge {
            width,
            cursors: Vec::new(),
            heap: BinaryHeap::new(),
            batches: Vec::new(),
            rows_per_batch: BATCH_ROWS,
            _dir: dir,
        };
        for mut source in sources {
            if let Some((batch, keys)) = source.next_batch()? {
                merge.rows_per_batch = merge.rows_per_batch.min(batch_rows(&batch));
                let run = merge.cursors.len();
                merge.heap.push(Reverse(Head {
                    key: keys[..merge.width].to_vec(),
                    run,
                }));
                merge.cursors.push(Cursor {
                    source,
                    batch: merge.batches.len(),
                    rows: batch.num_rows(),
                    keys,
                    row: 0,
                });
                merge.batches.push(batch);
            }
        }
        Ok(SortedBatches { merge })
    }

    /// The next batch of merged rows; `None` when every run is done.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, SortError> {
        if self.cursors.len() == 1 {
            // One run: its batches are already in order.
            return self.next_of_single_run();
        }
        let mut rows = Vec::with_capacity(self.rows_per_batch);
        while rows.len() < self.rows_per_batch {
            let Some(Reverse(mut head)) = self.heap.pop() else {
                break;
            };
            let cursor = &mut self.cursors[head.run];
            rows.push((cursor.batch, cursor.row));
            cursor.row += 1;
            if cursor.row == cursor.rows {
                let Some((batch, keys)) = cursor.source.next_batch()? else {
                    continue;
                };
                cursor.batch = self.batches.len();
                cursor.rows = batch.num_rows();
                cursor.keys = keys;
                cursor.row = 0;
                self.batches.push(batch);
            }
            let at = cursor.row * self.width;
            head.key.clear();
            head.key
                .extend_from_slice(&cursor.keys[at..at + self.width]);
            self.heap.push(Reverse(head));
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        let batch = interleave_record_batch(&batches, &rows)?;
        self.keep_current_batches();
        Ok(Some(batch))
    }

    /// Drops the batches no run is reading any more.
    fn keep_current_batches(&mut self) {
        let mut kept = Vec::with_capacity(self.cursors.len());
        for cursor in &mut self.cursors {
            if cursor.row < cursor.rows {
                kept.push(self.batches[cursor.batch].clone());
                cursor.batch = kept.len() - 1;
            }
        }
        self.batches = kept;
    }

    fn next_of_single_run(&mut self) -> Result<Option<RecordBatch>, SortError> {
        let cursor = &mut self.cursors[0];
        if cursor.row < cursor.rows {
            cursor.row = cursor.rows;
            return Ok(Some(self.batches[cursor.batch].clone()));
        }
        self.batches.clear();
        Ok(cursor.source.next_batch()?.map(|(batch, _)| batch))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray, StringArray, UInt64Array};
    use arrow::datatypes::UInt64Type;

    use super::*;

    /// Rows `(seq, text)` with 2-byte keys from few values (many ties), pushed in
    /// batches of uneven sizes; returns the sort's output as `(key, seq)`.
    fn sort(memory: usize, rows: u64, dir: &Path) -> (Vec<(u16, u64)>, usize) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("seq", DataType::UInt64, false),
            Field::new("text", DataType::Utf8, true),
        ]));
        let key_of = |seq: u64| (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as u16 % 37;
        let mut sort = ExternalSort::new(schema.clone(), 2, memory, dir);
        let mut seq = 0;
        let mut size = 1;
        while seq < rows {
            let n = size.min(rows - seq);
            let seqs: Vec<u64> = (seq..seq + n).collect();
            let texts: Vec<Option<String>> = seqs
                .iter()
                .map(|s| (s % 5 != 0).then(|| "x".repeat((s % 40) as usize)))
                .collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(UInt64Array::from(seqs.clone())),
                    Arc::new(StringArray::from(texts)),
                ],
            )
            .expect("batch");
            let keys: Vec<u8> = seqs.iter().flat_map(|&s| key_of(s).to_be_bytes()).collect();
            sort.push(batch, keys).expect("push");
            seq += n;
            size = size * 3 % 997 + 1;
        }
        let runs = sort.runs();
        let mut out = Vec::new();
        for batch in sort.finish().expect("finish") {
            let batch = batch.expect("batch");
            let seqs = batch.column(0).as_primitive::<UInt64Type>();
            let texts = batch.column(1).as_string::<i32>();
            for (i, s) in seqs.values().iter().enumerate() {
                let text = texts.is_valid(i).then(|| texts.value(i).len() as u64);
                assert_eq!(
                    text,
                    (s % 5 != 0).then_some(s % 40),
                    "row {s} kept its text"
                );
                out.push((key_of(*s), *s));
            }
        }
        (out, runs)
    }

    #[test]
    fn rows_come_out_in_key_order_stably_whatever_the_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = 50_000;
        let mut expected: Vec<(u16, u64)> = Vec::new();
        let (in_memory, runs) = sort(usize::MAX, rows, dir.path());
        assert_eq!(runs, 0, "everything fits: nothing spilled");
        expected.extend(
            (0..rows).map(|s| ((s.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as u16 % 37, s)),
        );
        expected.sort();
        assert_eq!(in_memory, expected);
        for memory in [64 << 10, 300 << 10, 1] {
            let (spilled, runs) = sort(memory, rows, dir.path());
            assert!(runs > 1, "{memory} bytes: {runs} runs");
            assert_eq!(spilled, expected, "{memory} bytes, {runs} runs");
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            0,
            "the runs' directories are removed"
        );
        let (none, _) = sort(1, 0, dir.path());
        assert!(none.is_empty());
    }

    #[test]
    fn keys_of_the_wrong_length_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::UInt64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(UInt64Array::from(vec![1, 2]))],
        )
        .expect("batch");
        let mut sort = ExternalSort::new(schema, 4, 1 << 20, dir.path());
        assert!(sort.push(batch, vec![0; 7]).is_err());
    }
}
