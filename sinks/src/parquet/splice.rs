//! Joining Parquet files of one schema into one by copying their row groups as they are
//! encoded: no decoding, no re-encoding. Bin-packing OPTIMIZE does this when its input
//! files' row groups are large enough to keep (docs/semantics.md §6), which makes
//! compaction cost about what copying the bytes costs.
//!
//! A file can be spliced only if its Parquet schema is exactly the one
//! [`BatchFileWriter`](super::BatchFileWriter) writes for the table's Arrow schema (the
//! same columns, physical and logical types, and repetition) and its column chunks are
//! compressed with the codec the writer would use, so that splicing never keeps a
//! file less compact than rewriting it would make it (a snappy file rewritten as zstd
//! is about half the size); [`Splice::accepts`] says so.
//! Each column chunk keeps its encoding, codec and Parquet statistics; page indexes and
//! bloom filters are not carried over. The file's `add.stats` are the inputs' stats
//! merged ([`FileStats::merge_file`]).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::Compression;
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescriptor;

use super::options::Codec;
use super::stats::FileStats;

/// One new file being spliced from others, in memory.
pub struct Splice {
    schema: SchemaDescriptor,
    codec: Codec,
    writer: SerializedFileWriter<Vec<u8>>,
    stats: FileStats,
}

impl Splice {
    /// A new file of `schema` (the data file's columns) of inputs compressed with
    /// `codec`, in a buffer of `capacity` bytes to start with (the inputs' size is
    /// enough: no reallocation).
    pub fn new(schema: &SchemaRef, codec: Codec, capacity: usize) -> Result<Splice, ParquetError> {
        let parquet_schema = ArrowSchemaConverter::new().convert(schema)?;
        let mut properties = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .build();
        // Readers get the Arrow types back from it, as from the sink's files.
        add_encoded_arrow_schema_to_metadata(schema, &mut properties);
        let writer = SerializedFileWriter::new(
            Vec::with_capacity(capacity),
            parquet_schema.root_schema_ptr(),
            Arc::new(properties),
        )?;
        Ok(Splice {
            schema: parquet_schema,
            codec,
            writer,
            stats: FileStats::new(schema),
        })
    }

    /// Whether the file with footer `metadata` and `add.stats` `stats` can be appended:
    /// it has exactly the Parquet schema of the new file, every column chunk is
    /// compressed with the splice's codec, and its stats are complete enough to merge
    /// (see [`FileStats::merge_file`]).
    pub fn accepts(&self, metadata: &ParquetMetaData, stats: &str) -> bool {
        self.fits(metadata) && self.stats.clone().merge_file(stats, file_rows(metadata))
    }

    /// Whether the file with footer `metadata` has exactly the Parquet schema of the
    /// new file and every column chunk compressed with the splice's codec.
    fn fits(&self, metadata: &ParquetMetaData) -> bool {
        let theirs = metadata.file_metadata().schema_descr();
        let codec = |compression| {
            matches!(
                (self.codec, compression),
                (Codec::Zstd { .. }, Compression::ZSTD(_)) | (Codec::Snappy, Compression::SNAPPY)
            )
        };
        theirs.num_columns() == self.schema.num_columns()
            && (0..theirs.num_columns()).all(|i| theirs.column(i) == self.schema.column(i))
            && (metadata.row_groups().iter())
                .all(|group| group.columns().iter().all(|c| codec(c.compression())))
    }

    /// Appends every row group of the file `bytes`, whose footer is `metadata` and
    /// which the splice [accepts](Self::accepts), and merges its `add.stats` `stats`
    /// into the new file's.
    pub fn append(
        &mut self,
        bytes: &Bytes,
        metadata: &ParquetMetaData,
        stats: &str,
    ) -> Result<(), ParquetError> {
        // `merge_file` merges nothing when it refuses.
        if !self.fits(metadata) || !self.stats.merge_file(stats, file_rows(metadata)) {
            return Err(ParquetError::General(
                "the file's Parquet schema or stats cannot be spliced into the new file".into(),
            ));
        }
        for group in metadata.row_groups() {
            let mut writer = self.writer.next_row_group()?;
            let rows = u64::try_from(group.num_rows()).unwrap_or(0);
            for column in group.columns() {
                writer.append_column(
                    bytes,
                    ColumnCloseResult {
                        bytes_written: u64::try_from(column.compressed_size()).unwrap_or(0),
                        rows_written: rows,
                        metadata: column.clone(),
                        bloom_filter: None,
                        column_index: None,
                        offset_index: None,
                    },
                )?;
            }
            writer.close()?;
        }
        Ok(())
    }

    /// The rows appended so far.
    pub fn rows(&self) -> u64 {
        self.stats.num_records()
    }

    /// The complete file and its `add.stats`.
    pub fn finish(self) -> Result<(Bytes, String), ParquetError> {
        let stats = self.stats.to_json();
        let bytes = self.writer.into_inner()?;
        Ok((Bytes::from(bytes), stats))
    }
}

/// The rows of the file with footer `metadata`.
fn file_rows(metadata: &ParquetMetaData) -> u64 {
    u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::ZstdLevel;
    use parquet::file::metadata::ParquetMetaDataReader;

    use super::*;
    use crate::parquet::stats::stats_json;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]))
    }

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let n = Int64Array::from_iter((from..from + rows).map(|i| (i % 7 != 0).then_some(i)));
        let s = StringArray::from_iter((from..from + rows).map(|i| Some(format!("v{}", i % 13))));
        RecordBatch::try_new(schema(), vec![Arc::new(n), Arc::new(s)]).expect("batch")
    }

    /// `batch` as a Parquet file compressed with `compression`, in row groups of
    /// `group_rows`, with its footer and stats.
    fn file(
        batch: &RecordBatch,
        compression: Compression,
        group_rows: usize,
    ) -> (Bytes, ParquetMetaData, String) {
        let properties = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(group_rows))
            .build();
        let mut writer =
            ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties)).expect("writer");
        writer.write(batch).expect("write");
        let bytes = Bytes::from(writer.into_inner().expect("close"));
        let footer = ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .expect("footer");
        let stats = stats_json(&batch.schema(), std::slice::from_ref(batch));
        (bytes, footer, stats)
    }

    /// The rows of `batch`.
    fn values(batch: &RecordBatch) -> Vec<(Option<i64>, String)> {
        let n = batch.column(0).as_primitive::<Int64Type>();
        let s = batch.column(1).as_string::<i32>();
        (0..batch.num_rows())
            .map(|i| (n.is_valid(i).then(|| n.value(i)), s.value(i).to_owned()))
            .collect()
    }

    fn zstd() -> Compression {
        Compression::ZSTD(ZstdLevel::default())
    }

    #[test]
    fn spliced_files_read_back_as_their_rows_with_their_row_groups_and_merged_stats() {
        let batches = [batch(0, 1000), batch(1000, 10), batch(-50, 300)];
        let files: Vec<_> = batches.iter().map(|b| file(b, zstd(), 256)).collect();
        let size = files.iter().map(|f| f.0.len()).sum();
        let mut splice = Splice::new(&schema(), Codec::default(), size).expect("splice");
        for (bytes, footer, stats) in &files {
            assert!(splice.accepts(footer, stats));
            splice.append(bytes, footer, stats).expect("append");
        }
        assert_eq!(splice.rows(), 1310);
        let (bytes, stats) = splice.finish().expect("finish");
        assert_eq!(stats, stats_json(&schema(), &batches));

        let footer = ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .expect("footer");
        let groups: usize = files.iter().map(|f| f.1.num_row_groups()).sum();
        assert_eq!(footer.num_row_groups(), groups);
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("reader")
            .build()
            .expect("reader");
        let mut read = Vec::new();
        for b in reader {
            let b = b.expect("batch");
            assert_eq!(b.schema(), schema(), "the Arrow schema, from the footer");
            read.extend(values(&b));
        }
        let expected: Vec<_> = batches.iter().flat_map(values).collect();
        assert_eq!(read, expected, "every row, in order");
    }

    #[test]
    fn files_of_another_codec_schema_or_incomplete_stats_are_not_accepted() {
        let splice = Splice::new(&schema(), Codec::default(), 0).expect("splice");
        let b = batch(0, 100);
        let (_, footer, stats) = file(&b, zstd(), 100);
        assert!(splice.accepts(&footer, &stats));
        let (_, snappy, _) = file(&b, Compression::SNAPPY, 100);
        assert!(!splice.accepts(&snappy, &stats), "snappy, not zstd");
        assert!(!splice.accepts(&footer, r#"{"numRecords":100,"nullCount":{"n":15}}"#));
        assert!(!splice.accepts(&footer, r#"{"numRecords":99,"nullCount":{"n":15,"s":0}}"#));
        let narrower = RecordBatch::try_from_iter([
            ("n", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
            ("s", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ])
        .expect("batch");
        let (bytes, other, other_stats) = file(&narrower, zstd(), 10);
        assert!(!splice.accepts(&other, &other_stats), "int32, not int64");
        let mut splice = splice;
        assert!(splice.append(&bytes, &other, &other_stats).is_err());
    }
}
