//! Arrow batches in, Parquet data files and what a log records of each out: the
//! file-level half of the [`file_writer`](super::file_writer), for batches of a schema
//! known only at run time (OPTIMIZE reads it from the table's `schemaString`).
//!
//! A [`BatchFileWriter`] keeps one open file per key (a partition), encodes each batch
//! into it with exact [stats](super::stats), completes the file once its estimated size
//! reaches the target, and uploads each completed file with one PUT, so a file is only
//! ever visible whole. Files are laid out and named as [`super::paths`] says; their
//! Parquet settings are those of the [layer's docs](super).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use super::WriterError;
use super::options::{Codec, WriterOptions};
use super::paths::{PartitionSpec, log_escape, new_file_path};
use super::stats::FileStats;
use crate::clock::{self, SharedClock};

/// A complete, uploaded data file: what a table log records of it (a Delta `add`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataFile {
    /// The file's path relative to the root, URI-encoded as `add.path` is (see
    /// [`super::paths`]).
    pub path: String,
    /// Partition column → value (`None` for null).
    pub partition_values: BTreeMap<String, Option<String>>,
    /// The file's exact size in bytes.
    pub size: i64,
    /// When it was uploaded, ms since the epoch (by the writer's clock).
    pub modification_time: i64,
    /// Its statistics, as the JSON text of `add.stats`.
    pub stats: String,
}

/// Writes batches of one schema as data files, one open file per key `K`; see the
/// [module docs](self).
pub struct BatchFileWriter<K> {
    store: Arc<dyn ObjectStore>,
    root: Path,
    writer_index: usize,
    target_file_size: usize,
    codec: Codec,
    properties: WriterProperties,
    schema: SchemaRef,
    /// The file being written for each key.
    open: BTreeMap<K, OpenFile>,
    /// Completed files not uploaded yet (a failed upload stays here).
    completed: Vec<CompletedFile>,
    /// Files uploaded since the last `finish`.
    uploaded: Vec<DataFile>,
    /// Modification times and file ids.
    clock: SharedClock,
}

/// A file being written.
struct OpenFile {
    /// Relative to the table root, as stored (Hive-escaped).
    relative: String,
    partition_values: BTreeMap<String, Option<String>>,
    writer: ArrowWriter<Vec<u8>>,
    stats: FileStats,
}

/// A complete file waiting for its upload.
struct CompletedFile {
    relative: String,
    partition_values: BTreeMap<String, Option<String>>,
    bytes: Bytes,
    stats: String,
}

impl<K: Ord + Clone> BatchFileWriter<K> {
    /// A writer of files of `schema` (the data file's columns: no partition column)
    /// under table `root` in `store`, with `options`' target size and codec (its
    /// `batch_rows` is for row writers, not used here). `writer_index` goes into every
    /// file name.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        root: Path,
        writer_index: usize,
        schema: SchemaRef,
        options: &WriterOptions,
    ) -> Result<Self, WriterError> {
        if options.target_file_size == 0 {
            return Err(WriterError::Options(
                "target_file_size must be positive".into(),
            ));
        }
        let compression = match options.codec {
            Codec::Zstd { level } => Compression::ZSTD(
                ZstdLevel::try_new(level).map_err(|e| WriterError::Options(e.to_string()))?,
            ),
            Codec::Snappy => Compression::SNAPPY,
        };
        let properties = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(compression)
            .set_dictionary_enabled(true);
        // Event times are mostly distinct and rise almost in order: a dictionary would
        // intern each one for nothing, while their differences pack into a few bits each.
        let properties = (schema.fields().iter())
            .filter(|f| matches!(f.data_type(), DataType::Timestamp(..)))
            .fold(properties, |properties, f| {
                let column = ColumnPath::from(f.name().as_str());
                properties
                    .set_column_dictionary_enabled(column.clone(), false)
                    .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED)
            })
            // `created_by` stays parquet-rs's own: parquet-mr ignores the binary column
            // statistics of files whose writer string it cannot parse.
            .build();
        Ok(BatchFileWriter {
            store,
            root,
            writer_index,
            target_file_size: options.target_file_size,
            codec: options.codec,
            properties,
            schema,
            open: BTreeMap::new(),
            completed: Vec::new(),
            uploaded: Vec::new(),
            clock: clock::system(),
        })
    }

    /// Takes modification times and file ids from `clock` (the system's by default).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Encodes `batch` (of the writer's schema) into the open file of `key`, opening
    /// one in `partition` (called only then) if there is none; completes the file if it
    /// reached the target size. Nothing is uploaded: see
    /// [`upload_completed`](Self::upload_completed) and [`finish`](Self::finish).
    pub fn write(
        &mut self,
        key: &K,
        partition: impl FnOnce() -> PartitionSpec,
        batch: &RecordBatch,
    ) -> Result<(), WriterError> {
        let file = match self.open.get_mut(key) {
            Some(file) => file,
            None => {
                let file = self.open_file(partition())?;
                self.open.entry(key.clone()).or_insert(file)
            }
        };
        file.writer
            .write(batch)
            .map_err(|source| WriterError::Parquet {
                path: file.relative.clone(),
                source,
            })?;
        file.stats.update(batch);
        let size = file.writer.bytes_written() + file.writer.in_progress_size();
        if size >= self.target_file_size
            && let Some(file) = self.open.remove(key)
        {
            self.completed.push(file.complete()?);
        }
        Ok(())
    }

    /// Adds a file encoded elsewhere (`bytes`: a whole Parquet file of the writer's
    /// schema, with `add.stats` `stats`, e.g. [spliced](super::splice)) as a completed
    /// file in `partition`, named as the writer names its own; uploaded with the next
    /// [`upload_completed`](Self::upload_completed) or [`finish`](Self::finish).
    pub fn complete_encoded(&mut self, partition: PartitionSpec, bytes: Bytes, stats: String) {
        let (relative, partition_values) = new_file_path(
            partition,
            self.writer_index,
            self.clock.new_id(),
            self.codec,
        );
        self.completed.push(CompletedFile {
            stats,
            relative,
            partition_values,
            bytes,
        });
    }

    /// Uploads the completed files, in order, each with one PUT. On an error the file
    /// stays and the next call (or [`finish`](Self::finish)) uploads it again.
    pub async fn upload_completed(&mut self) -> Result<(), WriterError> {
        while let Some(file) = self.completed.first() {
            let location = self.location(&file.relative)?;
            let size = file.bytes.len();
            self.store
                .put(&location, PutPayload::from_bytes(file.bytes.clone()))
                .await
                .map_err(|source| WriterError::Store {
                    path: location.to_string(),
                    source,
                })?;
            let file = self.completed.remove(0);
            self.uploaded.push(DataFile {
                path: log_escape(&file.relative),
                partition_values: file.partition_values,
                size: size as i64,
                modification_time: self.clock.now_ms(),
                stats: file.stats,
            });
        }
        Ok(())
    }

    /// Completes every open file, uploads every completed file, and returns all files
    /// uploaded since the last successful `finish` (in upload order). On an upload
    /// error nothing is lost: call `finish` again to retry.
    pub async fn finish(&mut self) -> Result<Vec<DataFile>, WriterError> {
        for (_, file) in std::mem::take(&mut self.open) {
            self.completed.push(file.complete()?);
        }
        self.upload_completed().await?;
        Ok(std::mem::take(&mut self.uploaded))
    }

    /// The files uploaded since the last [`finish`](Self::finish) or call, taken out of
    /// the writer (for a caller that records each file as soon as it is uploaded).
    pub fn take_uploaded(&mut self) -> Vec<DataFile> {
        std::mem::take(&mut self.uploaded)
    }

    /// The table root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Bytes of the files written since the last [`finish`](Self::finish): uploaded,
    /// completed and (as encoded so far) open.
    pub fn bytes(&self) -> u64 {
        let open: usize = (self.open.values())
            .map(|f| f.writer.bytes_written() + f.writer.in_progress_size())
            .sum();
        let completed: usize = self.completed.iter().map(|f| f.bytes.len()).sum();
        let uploaded: i64 = self.uploaded.iter().map(|f| f.size).sum();
        (open + completed) as u64 + uploaded.max(0) as u64
    }

    /// Rows encoded in files that are not complete yet.
    pub fn open_rows(&self) -> u64 {
        self.open.values().map(|f| f.stats.num_records()).sum()
    }

    fn open_file(&self, partition: PartitionSpec) -> Result<OpenFile, WriterError> {
        let (relative, partition_values) = new_file_path(
            partition,
            self.writer_index,
            self.clock.new_id(),
            self.codec,
        );
        let writer = ArrowWriter::try_new(
            Vec::new(),
            self.schema.clone(),
            Some(self.properties.clone()),
        )
        .map_err(|source| WriterError::Parquet {
            path: relative.clone(),
            source,
        })?;
        Ok(OpenFile {
            partition_values,
            writer,
            stats: FileStats::new(&self.schema),
            relative,
        })
    }

    /// The object of a path relative to the root (already escaped: parsed, not encoded).
    fn location(&self, relative: &str) -> Result<Path, WriterError> {
        let full = if self.root.as_ref().is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.root)
        };
        Path::parse(&full).map_err(|e| WriterError::Options(format!("bad object path {full}: {e}")))
    }
}

impl OpenFile {
    /// Encodes the footer.
    fn complete(self) -> Result<CompletedFile, WriterError> {
        let bytes = self
            .writer
            .into_inner()
            .map_err(|source| WriterError::Parquet {
                path: self.relative.clone(),
                source,
            })?;
        Ok(CompletedFile {
            stats: self.stats.to_json(),
            relative: self.relative,
            partition_values: self.partition_values,
            bytes: Bytes::from(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
    use object_store::memory::InMemory;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::parquet::paths::data_file_location;
    use crate::testing::block_on;

    fn batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
        let ids: Vec<i64> = (from..from + n).collect();
        let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn batches_of_a_run_time_schema_become_one_file_per_key_and_finish() {
        block_on(async {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let schema = Arc::new(ArrowSchema::new(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("name", DataType::Utf8, true),
            ]));
            let options = WriterOptions {
                target_file_size: usize::MAX,
                codec: Codec::Snappy,
                ..WriterOptions::default()
            };
            let mut writer = BatchFileWriter::<u8>::new(
                store.clone(),
                Path::from("t"),
                4,
                schema.clone(),
                &options,
            )
            .expect("writer");
            let day = |d: &'static str| move || vec![("date".to_owned(), Some(d.to_owned()))];
            writer
                .write(&1, day("2024-05-01"), &batch(&schema, 0, 10))
                .expect("write");
            writer
                .write(&1, day("unused"), &batch(&schema, 10, 5))
                .expect("write");
            writer
                .write(
                    &2,
                    || vec![("date".to_owned(), None)],
                    &batch(&schema, 100, 3),
                )
                .expect("write");
            assert_eq!(writer.open_rows(), 18);
            let mut adds = writer.finish().await.expect("finish");
            adds.sort_by(|a, b| a.path.cmp(&b.path));
            assert_eq!(adds.len(), 2, "no size cut: one file per key");
            assert!(adds[0].path.starts_with("date=2024-05-01/part-00004-"));
            assert!(adds[0].path.ends_with("-c000.snappy.parquet"));
            assert_eq!(
                adds[0].stats,
                r#"{"numRecords":15,"minValues":{"id":0,"name":"n0"},"maxValues":{"id":14,"name":"n9"},"nullCount":{"id":0,"name":0}}"#
            );
            assert!(adds[1].path.starts_with("date=__HIVE_DEFAULT_PARTITION__/"));
            assert_eq!(adds[1].partition_values["date"], None);
            for add in &adds {
                let location = data_file_location(&Path::from("t"), &add.path).expect("path");
                let bytes = store
                    .get(&location)
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("bytes");
                assert_eq!(bytes.len() as i64, add.size);
                let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .expect("parquet")
                    .build()
                    .expect("reader");
                let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
                assert!(rows == 15 || rows == 3);
            }
            assert!(writer.finish().await.expect("finish").is_empty());
        });
    }
}
