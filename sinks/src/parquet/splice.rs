//! Joining Parquet files of one schema into one by copying their row groups as they are
//! encoded: no decoding, no re-encoding. Bin-packing OPTIMIZE does this when its input
//! files' row groups are large enough to keep (docs/semantics.md §6), which makes
//! compaction cost about what copying the bytes costs.
//!
//! A file can be spliced only if its Parquet schema is exactly the one
//! [`BatchFileWriter`](super::BatchFileWriter) writes for the table's Arrow schema (the
//! same columns, physical and logical types, and repetition); [`Splice::accepts`] says so.
//! Each column chunk keeps its encoding, codec and Parquet statistics; page indexes and
//! bloom filters are not carried over. The file's `add.stats` are the inputs' stats
//! merged ([`FileStats::merge_file`]).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescriptor;

use super::stats::FileStats;

/// One new file being spliced from others, in memory.
pub struct Splice {
    schema: SchemaDescriptor,
    writer: SerializedFileWriter<Vec<u8>>,
    stats: FileStats,
}

impl Splice {
    /// A new file of `schema` (the data file's columns), in a buffer of `capacity`
    /// bytes to start with (the inputs' size is enough: no reallocation).
    pub fn new(schema: &SchemaRef, capacity: usize) -> Result<Splice, ParquetError> {
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
            writer,
            stats: FileStats::new(schema),
        })
    }

    /// Whether the file with footer `metadata` and `add.stats` `stats` can be appended:
    /// it has exactly the Parquet schema of the new file, and its stats are complete
    /// enough to merge (see [`FileStats::merge_file`]).
    pub fn accepts(&self, metadata: &ParquetMetaData, stats: &str) -> bool {
        let theirs = metadata.file_metadata().schema_descr();
        theirs.num_columns() == self.schema.num_columns()
            && (0..theirs.num_columns()).all(|i| theirs.column(i) == self.schema.column(i))
            && self.stats.clone().merge_file(stats, file_rows(metadata))
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
        if !self.accepts(metadata, stats) {
            return Err(ParquetError::General(
                "the file's Parquet schema or stats cannot be spliced into the new file".into(),
            ));
        }
        self.stats.merge_file(stats, file_rows(metadata));
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
