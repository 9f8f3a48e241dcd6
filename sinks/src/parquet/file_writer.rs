//! Rows in, complete Parquet files out.
//!
//! A [`DataFileWriter`] groups the rows it is given by partition into Arrow batches,
//! which a [`BatchFileWriter`] encodes into an in-memory Parquet file per partition and
//! uploads with one PUT when it reaches the target size or at
//! [`DataFileWriter::finish`] — so a file is only ever visible complete. Each uploaded
//! file is a [`DataFile`] with its exact size and stats, ready to be committed;
//! committing is the caller's business. Files are laid out as [`super::paths`] says.
//!
//! Before a batch is encoded, the caller's [`RowRules`] (a Delta table's constraints)
//! may keep rows out of it; the writer hands those back as [`Rejected`].

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use object_store::ObjectStore;
use object_store::path::Path;

use super::WriterError;
use super::batch_writer::{BatchFileWriter, DataFile};
use super::options::WriterOptions;
use super::paths::PartitionSpec;
use super::rows::ArrowRows;
use crate::clock::SharedClock;

/// A row kept out of a file because it breaks one of the caller's rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    /// The first rule the row breaks, with its expression:
    /// `CHECK constraint pos_amount (amount > 0)`.
    pub constraint: String,
    /// The row as a JSON object of the table's columns (partition columns too).
    pub row: String,
}

/// Rules every row must pass to be written (a Delta table's constraints).
pub trait RowRules: Send + Sync {
    /// Splits `batch`, of rows of `partition`, into the rows that pass and those that
    /// do not; an error is a failure to check, not a row that breaks a rule.
    fn check(
        &self,
        batch: &RecordBatch,
        partition: &PartitionSpec,
    ) -> Result<(RecordBatch, Vec<Rejected>), String>;
}

/// Writes rows of type `R` as Parquet data files; see the [module docs](self).
///
/// ```no_run
/// # use std::sync::Arc;
/// # use tidelake_sinks::parquet::{ArrowRows, DataFileWriter, WriterError, WriterOptions};
/// # async fn run<R: ArrowRows>(store: Arc<dyn object_store::ObjectStore>, rows: Vec<R>)
/// #     -> Result<(), WriterError> {
/// let mut writer = DataFileWriter::<R>::new(store, Default::default(), 0, WriterOptions::default())?;
/// writer.write(&rows).await?;
/// let files = writer.finish().await?; // commit these with a txn
/// # Ok(()) }
/// ```
pub struct DataFileWriter<R: ArrowRows> {
    /// Encodes, completes and uploads the files, one open file per partition.
    files: BatchFileWriter<R::Partition>,
    batch_rows: usize,
    /// The rows of each partition not encoded yet.
    buffers: BTreeMap<R::Partition, Buffer<R>>,
    /// The caller's rules, if rows are checked against them.
    rules: Option<Arc<dyn RowRules>>,
    /// Rows kept out by the rules since the last [`take_rejected`](Self::take_rejected).
    rejected: Vec<Rejected>,
    /// Rows kept out by the rules in all.
    rejected_rows: u64,
}

/// Rows of one partition in Arrow builders.
struct Buffer<R: ArrowRows> {
    builders: R::Builders,
    rows: usize,
}

impl<R: ArrowRows> DataFileWriter<R> {
    /// A writer of files under table `root` in `store`. `writer_index` (e.g. the global
    /// worker index) goes into every file name.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        root: Path,
        writer_index: usize,
        options: WriterOptions,
    ) -> Result<Self, WriterError> {
        if options.batch_rows == 0 {
            return Err(WriterError::Options("batch_rows must be positive".into()));
        }
        Ok(DataFileWriter {
            files: BatchFileWriter::new(store, root, writer_index, R::arrow_schema(), &options)?,
            batch_rows: options.batch_rows,
            buffers: BTreeMap::new(),
            rules: None,
            rejected: Vec::new(),
            rejected_rows: 0,
        })
    }

    /// Takes modification times and file ids from `clock` (the system's by default).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.files = self.files.with_clock(clock);
        self
    }

    /// Checks every row against `rules` before it is written: rows that break one are
    /// not written, and are handed out by [`take_rejected`](Self::take_rejected).
    pub fn with_rules(mut self, rules: Option<Arc<dyn RowRules>>) -> Self {
        self.rules = rules;
        self
    }

    /// The rows kept out by the table's constraints since the last call.
    pub fn take_rejected(&mut self) -> Vec<Rejected> {
        std::mem::take(&mut self.rejected)
    }

    /// How many rows the table's constraints kept out, in all.
    pub fn rejected_rows(&self) -> u64 {
        self.rejected_rows
    }

    /// Buffers `rows`, encoding them into their partitions' files; completes and
    /// uploads the files that reach the target size.
    ///
    /// On an upload error every row is still held (in a buffered or completed file):
    /// a later `write` or `finish` retries the upload.
    pub async fn write(&mut self, rows: &[R]) -> Result<(), WriterError> {
        for row in rows {
            let key = row.partition();
            let buffer = self.buffers.entry(key.clone()).or_insert_with(|| Buffer {
                builders: R::new_builders(self.batch_rows),
                rows: 0,
            });
            row.append(&mut buffer.builders);
            buffer.rows += 1;
            if buffer.rows >= self.batch_rows {
                self.encode(&key)?;
            }
        }
        self.files.upload_completed().await
    }

    /// Completes every open file, uploads every completed file, and returns all files
    /// uploaded since the last successful `finish` (in upload order). On an upload
    /// error nothing is lost: call `finish` again to retry.
    pub async fn finish(&mut self) -> Result<Vec<DataFile>, WriterError> {
        self.encode_buffered()?;
        self.buffers.clear();
        self.files.finish().await
    }

    /// Encodes every row buffered so far into its partition's file (so that the rules
    /// have checked them all: see [`take_rejected`](Self::take_rejected)).
    pub fn encode_buffered(&mut self) -> Result<(), WriterError> {
        let keys: Vec<R::Partition> = self.buffers.keys().cloned().collect();
        keys.iter().try_for_each(|key| self.encode(key))
    }

    /// Bytes of the files written so far: complete ones, and what the open ones have
    /// encoded (rows still buffered are not counted).
    pub fn bytes(&self) -> u64 {
        self.files.bytes()
    }

    /// The table root.
    pub fn root(&self) -> &Path {
        self.files.root()
    }

    /// Rows buffered or encoded in files that are not complete yet.
    pub fn open_rows(&self) -> u64 {
        let buffered: usize = self.buffers.values().map(|b| b.rows).sum();
        self.files.open_rows() + buffered as u64
    }

    /// Encodes the rows buffered for partition `key` into its file.
    fn encode(&mut self, key: &R::Partition) -> Result<(), WriterError> {
        let Some(buffer) = self.buffers.get_mut(key).filter(|b| b.rows > 0) else {
            return Ok(());
        };
        let partition = || partition_spec::<R>(key);
        let batch = R::finish(&mut buffer.builders).map_err(|source| WriterError::Arrow {
            path: partition()
                .iter()
                .map(|(column, value)| format!("{column}={}/", value.as_deref().unwrap_or("")))
                .collect(),
            source,
        })?;
        buffer.rows = 0;
        let batch = match &self.rules {
            Some(rules) => {
                let (kept, rejected) = rules
                    .check(&batch, &partition())
                    .map_err(WriterError::Rules)?;
                self.rejected_rows += rejected.len() as u64;
                self.rejected.extend(rejected);
                kept
            }
            None => batch,
        };
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.files.write(key, partition, &batch)
    }
}

/// The partition columns and values of rows of partition `key`.
fn partition_spec<R: ArrowRows>(key: &R::Partition) -> PartitionSpec {
    let values = R::partition_values(key);
    R::partition_columns()
        .iter()
        .enumerate()
        .map(|(i, column)| ((*column).to_owned(), values.get(i).cloned().flatten()))
        .collect()
}

/// The rows of `rows` that break `rules`, found without writing anything: for rows
/// whose epoch a table holds already, whose rejections are reported again.
pub fn rejected_rows<R: ArrowRows>(
    rows: &[R],
    rules: &dyn RowRules,
) -> Result<Vec<Rejected>, WriterError> {
    let mut builders: BTreeMap<R::Partition, R::Builders> = BTreeMap::new();
    for row in rows {
        let partition = builders
            .entry(row.partition())
            .or_insert_with(|| R::new_builders(rows.len()));
        row.append(partition);
    }
    let mut rejected = Vec::new();
    for (key, mut partition) in builders {
        let spec = partition_spec::<R>(&key);
        let batch = R::finish(&mut partition).map_err(|source| WriterError::Arrow {
            path: spec
                .iter()
                .map(|(column, value)| format!("{column}={}/", value.as_deref().unwrap_or("")))
                .collect(),
            source,
        })?;
        let (_, kept_out) = rules.check(&batch, &spec).map_err(WriterError::Rules)?;
        rejected.extend(kept_out);
    }
    Ok(rejected)
}

#[cfg(test)]
mod tests {
    use crate::testing::block_on;
    use std::collections::HashMap;

    use arrow::array::AsArray;
    use arrow::datatypes::{
        DataType, Field, Schema as ArrowSchema, SchemaRef, TimestampMicrosecondType,
    };
    use arrow::error::ArrowError;
    use arrow::record_batch::RecordBatch;
    use bytes::Bytes;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::basic::{Encoding, LogicalType, PageType, Type as PhysicalType};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use serde_json::Value;

    use super::*;
    use crate::parquet::rows::test_rows::{MICROS_PER_DAY, TestRow, date_of_day};
    use crate::parquet::{Codec, data_file_location, hive_escape, log_escape};

    /// A small deterministic generator (splitmix64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// 2024-05-01.
    const FIRST_DAY: i64 = 19_844;

    /// `n` rows over `days` days from 2024-05-01, microsecond times.
    fn rows(n: usize, days: i64, seed: u64) -> Vec<TestRow> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|_| TestRow {
                dt_micros: (FIRST_DAY + rng.below(days as u64) as i64) * MICROS_PER_DAY
                    + rng.below(MICROS_PER_DAY as u64) as i64,
                account_id: format!("acct-{}", rng.below(700)),
                amount: rng.below(100_000) as f64 / 100.0,
                alert: rng.below(10) == 0,
            })
            .collect()
    }

    fn sort(rows: &mut [TestRow]) {
        rows.sort_by(|a, b| {
            (a.dt_micros, &a.account_id, a.amount.to_bits(), a.alert).cmp(&(
                b.dt_micros,
                &b.account_id,
                b.amount.to_bits(),
                b.alert,
            ))
        });
    }

    async fn object(store: &dyn ObjectStore, root: &Path, add: &DataFile) -> (Path, Bytes) {
        // What a reader does: URI-decode add.path once, then take it as a store key.
        let relative = Path::from_url_path(&add.path).expect("add.path decodes");
        let location = Path::parse(if root.as_ref().is_empty() {
            relative.to_string()
        } else {
            format!("{root}/{relative}")
        })
        .expect("key");
        let bytes = store
            .get(&location)
            .await
            .expect("the add's file exists")
            .bytes()
            .await
            .expect("read");
        (location, bytes)
    }

    fn read_rows(bytes: &Bytes) -> Vec<TestRow> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .expect("parquet")
            .build()
            .expect("reader");
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.expect("batch");
            assert_eq!(batch.schema(), TestRow::arrow_schema(), "no `date` column");
            let dt = batch.column(0).as_primitive::<TimestampMicrosecondType>();
            let account = batch.column(1).as_string::<i32>();
            let amount = batch
                .column(2)
                .as_primitive::<arrow::datatypes::Float64Type>();
            let alert = batch.column(3).as_boolean();
            for i in 0..batch.num_rows() {
                out.push(TestRow {
                    dt_micros: dt.value(i),
                    account_id: account.value(i).to_owned(),
                    amount: amount.value(i),
                    alert: alert.value(i),
                });
            }
        }
        out
    }

    /// The stats of `rows`, computed by plain iteration.
    fn expected_stats(rows: &[TestRow]) -> Value {
        let ms = |micros: i64| {
            chrono::DateTime::from_timestamp_millis(micros.div_euclid(1000))
                .expect("time")
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        };
        let mut min_dt = i64::MAX;
        let mut max_dt = i64::MIN;
        let mut min_acct = None::<&str>;
        let mut max_acct = None::<&str>;
        let mut min_amount = f64::INFINITY;
        let mut max_amount = f64::NEG_INFINITY;
        let mut any_alert = false;
        let mut all_alert = true;
        let mut nan = false;
        for r in rows {
            min_dt = min_dt.min(r.dt_micros);
            max_dt = max_dt.max(r.dt_micros);
            if min_acct.is_none_or(|m| r.account_id.as_str() < m) {
                min_acct = Some(&r.account_id);
            }
            if max_acct.is_none_or(|m| r.account_id.as_str() > m) {
                max_acct = Some(&r.account_id);
            }
            if r.amount.is_nan() {
                nan = true;
            } else {
                min_amount = min_amount.min(r.amount);
                max_amount = max_amount.max(r.amount);
            }
            any_alert |= r.alert;
            all_alert &= r.alert;
        }
        let mut min =
            serde_json::json!({"dt": ms(min_dt), "accountId": min_acct, "alert": all_alert});
        let mut max =
            serde_json::json!({"dt": ms(max_dt), "accountId": max_acct, "alert": any_alert});
        if !nan {
            min["amount"] = min_amount.into();
            max["amount"] = max_amount.into();
        }
        serde_json::json!({
            "numRecords": rows.len(),
            "minValues": min,
            "maxValues": max,
            "nullCount": {"dt": 0, "accountId": 0, "amount": 0, "alert": 0},
        })
    }

    /// Checks every add against its object and returns the rows read back, per date.
    async fn check_files(
        store: &dyn ObjectStore,
        root: &Path,
        adds: &[DataFile],
        suffix: &str,
    ) -> BTreeMap<String, Vec<TestRow>> {
        let mut by_date: BTreeMap<String, Vec<TestRow>> = BTreeMap::new();
        let mut names = std::collections::HashSet::new();
        for add in adds {
            let date = add.partition_values["date"].clone().expect("date");
            assert_eq!(add.partition_values.len(), 1);
            let (location, bytes) = object(store, root, add).await;
            let name = location.filename().expect("name").to_owned();
            assert!(names.insert(name.clone()), "unique names: {name}");
            assert!(
                name.starts_with("part-00007-") && name.ends_with(&format!("-c000.{suffix}")),
                "{name}"
            );
            assert_eq!(add.path, format!("date={date}/{name}"));
            assert_eq!(add.size, bytes.len() as i64, "size is exact");
            assert_eq!(
                store.head(&location).await.expect("head").size,
                add.size as u64
            );
            assert!(add.modification_time > 1_700_000_000_000);

            let rows = read_rows(&bytes);
            for row in &rows {
                assert_eq!(date_of_day(row.dt_micros.div_euclid(MICROS_PER_DAY)), date);
            }
            let stats: Value = serde_json::from_str(&add.stats).expect("JSON");
            assert_eq!(stats, expected_stats(&rows), "{}", add.path);
            by_date.entry(date).or_default().extend(rows);
        }
        by_date
    }

    fn check_parquet_layout(bytes: Bytes, compression: Compression) {
        let reader = SerializedFileReader::new(bytes).expect("parquet");
        let meta = reader.metadata();
        let schema = meta.file_metadata().schema_descr();
        let names: Vec<_> = schema
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        assert_eq!(names, ["dt", "accountId", "amount", "alert"]);
        let dt = schema.column(0);
        assert_eq!(dt.physical_type(), PhysicalType::INT64);
        assert_eq!(
            dt.logical_type_ref(),
            Some(&LogicalType::timestamp(
                true,
                parquet::basic::TimeUnit::MICROS
            ))
        );
        assert_eq!(schema.column(1).physical_type(), PhysicalType::BYTE_ARRAY);
        assert_eq!(
            schema.column(1).logical_type_ref(),
            Some(&LogicalType::String)
        );
        assert_eq!(schema.column(2).physical_type(), PhysicalType::DOUBLE);
        assert_eq!(schema.column(3).physical_type(), PhysicalType::BOOLEAN);
        let mut dictionary_pages = 0;
        for g in 0..reader.num_row_groups() {
            let group = meta.row_group(g);
            for c in 0..group.num_columns() {
                assert_eq!(group.column(c).compression(), compression);
            }
            let account = group.column(1);
            assert!(account.dictionary_page_offset().is_some());
            assert!(account.encodings().any(|e| e == Encoding::RLE_DICTIONARY));
            // Every page is a dictionary page or a V1 data page; accountId's data pages
            // are dictionary-encoded.
            let row_group = reader.get_row_group(g).expect("row group");
            for c in 0..group.num_columns() {
                let pages = row_group.get_column_page_reader(c).expect("pages");
                for page in pages {
                    let page = page.expect("page");
                    assert!(
                        matches!(
                            page.page_type(),
                            PageType::DATA_PAGE | PageType::DICTIONARY_PAGE
                        ),
                        "{:?}",
                        page.page_type()
                    );
                    if c == 1 && page.page_type() == PageType::DATA_PAGE {
                        assert_eq!(page.encoding(), Encoding::RLE_DICTIONARY);
                        dictionary_pages += 1;
                    }
                }
            }
        }
        assert!(
            dictionary_pages > 0,
            "accountId has dictionary-encoded data pages"
        );
    }

    async fn write_and_check(store: Arc<dyn ObjectStore>, root: Path) -> Vec<DataFile> {
        let mut input = rows(5_000, 3, 1);
        let mut writer = DataFileWriter::<TestRow>::new(
            store.clone(),
            root.clone(),
            7,
            WriterOptions::default(),
        )
        .expect("writer");
        for chunk in input.chunks(777) {
            writer.write(chunk).await.expect("write");
        }
        assert_eq!(writer.open_rows(), 5_000);
        let adds = writer.finish().await.expect("finish");
        assert_eq!(writer.open_rows(), 0);
        assert_eq!(adds.len(), 3, "one file per date");
        assert_eq!(
            writer.finish().await.expect("finish").len(),
            0,
            "nothing new"
        );

        let mut by_date = check_files(store.as_ref(), &root, &adds, "zstd.parquet").await;
        assert_eq!(
            by_date.keys().collect::<Vec<_>>(),
            ["2024-05-01", "2024-05-02", "2024-05-03"]
        );
        let mut read: Vec<TestRow> = by_date.values_mut().flat_map(std::mem::take).collect();
        sort(&mut read);
        sort(&mut input);
        assert_eq!(read, input, "the rows read back are the rows written");

        for add in &adds {
            let (_, bytes) = object(store.as_ref(), &root, add).await;
            check_parquet_layout(bytes, Compression::ZSTD(ZstdLevel::default()));
        }
        // Nothing else was written.
        let listed: Vec<_> = store.list(Some(&root)).try_collect().await.expect("list");
        assert_eq!(listed.len(), 3);
        adds
    }

    #[test]
    fn rows_over_three_dates_round_trip_through_an_in_memory_store() {
        block_on(async {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            write_and_check(store, Path::parse("lake/transactions").expect("root")).await;
        });
    }

    #[test]
    fn rows_over_three_dates_round_trip_through_a_local_directory() {
        block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let store: Arc<dyn ObjectStore> =
                Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("store"));
            let adds = write_and_check(store, Path::default()).await;
            for add in adds {
                let file = dir.path().join(&add.path);
                assert_eq!(
                    std::fs::metadata(&file).expect("on disk").len(),
                    add.size as u64
                );
            }
        });
    }

    #[test]
    fn a_small_target_size_splits_files_whose_rows_add_up() {
        block_on(async {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let target = 64 * 1024;
            let options = WriterOptions {
                target_file_size: target,
                batch_rows: 1024,
                codec: Codec::Snappy,
            };
            let mut writer =
                DataFileWriter::<TestRow>::new(store.clone(), Path::default(), 7, options)
                    .expect("writer");
            let mut input = rows(60_000, 2, 2);
            writer.write(&input).await.expect("write");
            let early = writer.finish().await.expect("finish");
            assert!(early.len() >= 6, "{} files", early.len());
            let by_date =
                check_files(store.as_ref(), &Path::default(), &early, "snappy.parquet").await;
            let mut total = 0;
            let mut sizes = Vec::new();
            let mut per_date: HashMap<&str, usize> = HashMap::new();
            for add in &early {
                let stats: Value = serde_json::from_str(&add.stats).expect("JSON");
                let n = stats["numRecords"].as_u64().expect("count") as usize;
                total += n;
                *per_date
                    .entry(add.partition_values["date"].as_deref().expect("date"))
                    .or_default() += n;
                assert!(add.size < 2 * target as i64, "{} bytes", add.size);
                sizes.push(add.size);
                let (_, bytes) = object(store.as_ref(), &Path::default(), add).await;
                check_parquet_layout(bytes, Compression::SNAPPY);
            }
            assert_eq!(total, input.len());
            // Only the last file of each date may be much smaller than the target.
            sizes.sort_unstable();
            assert!(sizes[2] > target as i64 / 2, "{sizes:?}");
            assert_eq!(per_date.len(), 2);
            let mut read: Vec<TestRow> = by_date.into_values().flatten().collect();
            sort(&mut read);
            sort(&mut input);
            assert_eq!(read, input);
        });
    }

    #[test]
    fn files_reaching_the_target_are_uploaded_by_write_before_finish() {
        block_on(async {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let options = WriterOptions {
                target_file_size: 16 * 1024,
                batch_rows: 512,
                ..WriterOptions::default()
            };
            let mut writer =
                DataFileWriter::<TestRow>::new(store.clone(), Path::default(), 7, options)
                    .expect("writer");
            writer.write(&rows(20_000, 1, 3)).await.expect("write");
            let listed: Vec<_> = store.list(None).try_collect().await.expect("list");
            assert!(!listed.is_empty(), "complete files are uploaded early");
            assert!(writer.open_rows() < 20_000);
            let adds = writer.finish().await.expect("finish");
            assert_eq!(adds.len(), listed.len() + 1);
        });
    }

    #[test]
    fn nan_amounts_leave_the_amount_bounds_out() {
        block_on(async {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let mut writer = DataFileWriter::<TestRow>::new(
                store.clone(),
                Path::default(),
                7,
                WriterOptions::default(),
            )
            .expect("writer");
            let mut input = rows(100, 1, 4);
            input[50].amount = f64::NAN;
            writer.write(&input).await.expect("write");
            let adds = writer.finish().await.expect("finish");
            let stats: Value = serde_json::from_str(&adds[0].stats).expect("JSON");
            assert_eq!(stats, expected_stats(&input));
            assert_eq!(stats["minValues"].get("amount"), None);
            assert_eq!(stats["maxValues"].get("amount"), None);
            assert!(stats["minValues"].get("dt").is_some());
            assert_eq!(stats["numRecords"], 100);
        });
    }

    /// A row partitioned by an arbitrary (possibly null) string, for the escaping rules.
    struct KeyedRow {
        key: Option<String>,
        n: Option<i64>,
    }

    impl ArrowRows for KeyedRow {
        type Builders = arrow::array::Int64Builder;
        type Partition = Option<String>;

        fn arrow_schema() -> SchemaRef {
            Arc::new(ArrowSchema::new(vec![Field::new(
                "n",
                DataType::Int64,
                true,
            )]))
        }
        fn partition_columns() -> &'static [&'static str] {
            &["date"]
        }
        fn partition(&self) -> Option<String> {
            self.key.clone()
        }
        fn partition_values(key: &Option<String>) -> Vec<Option<String>> {
            vec![key.clone()]
        }
        fn new_builders(capacity: usize) -> Self::Builders {
            arrow::array::Int64Builder::with_capacity(capacity)
        }
        fn append(&self, builders: &mut Self::Builders) {
            builders.append_option(self.n);
        }
        fn finish(builders: &mut Self::Builders) -> Result<RecordBatch, ArrowError> {
            RecordBatch::try_new(Self::arrow_schema(), vec![Arc::new(builders.finish())])
        }
    }

    #[test]
    fn partition_values_are_hive_escaped_on_disk_and_uri_escaped_in_the_log() {
        assert_eq!(hive_escape("a b/c:d%e"), "a%20b%2Fc%3Ad%25e");
        assert_eq!(hive_escape("2024-05-01"), "2024-05-01");
        assert_eq!(hive_escape("é~=#?*[]\n"), "%C3%A9%7E%3D%23%3F%2A%5B%5D%0A");
        assert_eq!(
            log_escape("date=a%20b%2Fc%3Ad%25e/part-00000-x-c000.zstd.parquet"),
            "date=a%2520b%252Fc%253Ad%2525e/part-00000-x-c000.zstd.parquet"
        );
        assert_eq!(
            log_escape("date=2024-05-01/p.parquet"),
            "date=2024-05-01/p.parquet"
        );
        let stored = "date=a%20b%2Fc%3Ad%25e/part-00000-x-c000.zstd.parquet";
        assert_eq!(
            data_file_location(&Path::from("lake/t"), &log_escape(stored)).expect("decodes"),
            Path::parse(format!("lake/t/{stored}")).expect("path")
        );
        assert_eq!(
            data_file_location(&Path::default(), &log_escape(stored)).expect("decodes"),
            Path::parse(stored).expect("path")
        );
        assert!(data_file_location(&Path::default(), "s3://bucket/x.parquet").is_err());

        block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let local: Arc<dyn ObjectStore> =
                Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("store"));
            let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            for store in [local, memory] {
                let mut writer = DataFileWriter::<KeyedRow>::new(
                    store.clone(),
                    Path::default(),
                    3,
                    WriterOptions::default(),
                )
                .expect("writer");
                let keys = [Some("a b/c:d%e"), None, Some(""), Some("2024-05-01")];
                let input: Vec<KeyedRow> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| KeyedRow {
                        key: k.map(str::to_owned),
                        n: (i != 1).then_some(i as i64),
                    })
                    .collect();
                writer.write(&input).await.expect("write");
                let adds = writer.finish().await.expect("finish");
                // Null and empty values both go to the null partition (in two files:
                // the row type's keys differ).
                assert_eq!(adds.len(), 4);
                let mut seen: BTreeMap<String, Vec<_>> = BTreeMap::new();
                for add in &adds {
                    let (dir_part, name) = add.path.rsplit_once('/').expect("dir");
                    let on_disk = Path::from_url_path(&add.path).expect("decodes");
                    let (location, bytes) = object(store.as_ref(), &Path::default(), add).await;
                    assert_eq!(location, on_disk);
                    assert_eq!(bytes.len() as i64, add.size);
                    assert!(name.starts_with("part-00003-"), "{name}");
                    seen.entry(dir_part.to_owned()).or_default().push((
                        add.partition_values["date"].clone(),
                        on_disk.as_ref().rsplit_once('/').expect("dir").0.to_owned(),
                        add.stats.clone(),
                    ));
                }
                assert_eq!(
                    seen["date=a%2520b%252Fc%253Ad%2525e"],
                    [(
                        Some("a b/c:d%e".to_owned()),
                        "date=a%20b%2Fc%3Ad%25e".to_owned(),
                        r#"{"numRecords":1,"minValues":{"n":0},"maxValues":{"n":0},"nullCount":{"n":0}}"#
                            .to_owned()
                    )]
                );
                let mut nulls = seen["date=__HIVE_DEFAULT_PARTITION__"].clone();
                nulls.sort();
                assert_eq!(
                    nulls,
                    [
                        (
                            None,
                            "date=__HIVE_DEFAULT_PARTITION__".to_owned(),
                            r#"{"numRecords":1,"minValues":{"n":2},"maxValues":{"n":2},"nullCount":{"n":0}}"#
                                .to_owned()
                        ),
                        (
                            None,
                            "date=__HIVE_DEFAULT_PARTITION__".to_owned(),
                            r#"{"numRecords":1,"minValues":{},"maxValues":{},"nullCount":{"n":1}}"#
                                .to_owned()
                        ),
                    ]
                );
                assert_eq!(seen["date=2024-05-01"][0].1, "date=2024-05-01");
                assert_eq!(seen.len(), 3);
            }
            // The file is really in a directory named with the layer-1 escape.
            let escaped = dir.path().join("date=a%20b%2Fc%3Ad%25e");
            let files: Vec<_> = std::fs::read_dir(&escaped)
                .expect("the escaped directory exists")
                .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
                .collect();
            assert_eq!(files.len(), 1);
            assert!(
                files[0].starts_with("part-00003-") && files[0].ends_with("-c000.zstd.parquet")
            );
        });
    }

    #[test]
    fn a_failed_upload_keeps_the_file_and_the_next_finish_retries_it() {
        block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let store: Arc<dyn ObjectStore> =
                Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("store"));
            // A plain file where the partition directory must go makes the PUT fail.
            let blocker = dir.path().join("date=2024-05-02");
            std::fs::write(&blocker, b"x").expect("blocker");
            let mut writer = DataFileWriter::<TestRow>::new(
                store.clone(),
                Path::default(),
                7,
                WriterOptions::default(),
            )
            .expect("writer");
            let input = rows(300, 2, 5);
            writer.write(&input).await.expect("write buffers only");
            let err = writer.finish().await.expect_err("upload fails");
            let message = err.to_string();
            assert!(
                message.contains("date=2024-05-02/part-00007-") && message.contains("retried"),
                "{message}"
            );
            std::fs::remove_file(&blocker).expect("unblock");
            let adds = writer.finish().await.expect("retry");
            assert_eq!(
                adds.len(),
                2,
                "both files, including the one uploaded before the error"
            );
            let by_date =
                check_files(store.as_ref(), &Path::default(), &adds, "zstd.parquet").await;
            assert_eq!(by_date.values().map(Vec::len).sum::<usize>(), 300);
        });
    }

    #[test]
    fn bad_options_are_refused() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let err = DataFileWriter::<TestRow>::new(
            store.clone(),
            Path::default(),
            0,
            WriterOptions {
                batch_rows: 0,
                ..WriterOptions::default()
            },
        )
        .err()
        .expect("no batch rows");
        assert!(
            err.to_string().contains("batch_rows must be positive"),
            "{err}"
        );
        let err = DataFileWriter::<TestRow>::new(
            store,
            Path::default(),
            0,
            WriterOptions {
                codec: Codec::Zstd { level: 99 },
                ..WriterOptions::default()
            },
        )
        .err()
        .expect("bad level");
        assert!(matches!(err, WriterError::Options(_)), "{err}");
    }

    #[test]
    fn the_write_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut writer =
            DataFileWriter::<TestRow>::new(store, Path::default(), 0, WriterOptions::default())
                .expect("writer");
        let rows = rows(1, 1, 6);
        assert_send(&writer.write(&rows));
        assert_send(&writer.finish());
    }
}
