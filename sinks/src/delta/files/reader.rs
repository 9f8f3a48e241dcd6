//! Reading a table's data files back as Arrow batches of the table's schema, whoever
//! wrote them: tidelake, delta-rs or Spark (notes §5).
//!
//! A file is read with the parquet crate's Arrow reader, then each batch is made to fit
//! the table's data file schema ([`conform`]):
//! - a column the file lacks reads as null (the protocol allows files without a column);
//! - a column of another Arrow type is cast strictly (a value that does not fit is an
//!   error, never a silent null): a string read as a view or dictionary, an integer
//!   narrower than the table's, and so on;
//! - timestamps are instants in Delta, whatever unit or time zone the file labels them
//!   with (Spark's INT96 reads as nanoseconds without a zone): they are converted to
//!   the table's unit and relabelled with its zone, never shifted;
//! - columns the table does not have (a partition column written into the file, a
//!   dropped column) are left out.

use std::ops::Range;

use arrow::array::{ArrayRef, make_array, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use bytes::Bytes;
use object_store::ObjectStoreExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::FOOTER_SIZE;
use parquet::file::metadata::{FooterTail, ParquetMetaData, ParquetMetaDataReader};
use parquet::schema::types::SchemaDescriptor;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::Add;
use crate::delta::protocol::features::{self, Operation};
use crate::delta::protocol::table::DeltaTable;
use crate::parquet::data_file_location;

/// Rows per batch read.
const BATCH_ROWS: usize = 8192;

/// What a reader of a table's newest version reads ([`scan`]).
#[derive(Clone, Debug)]
pub struct TableScan {
    /// The version read.
    pub version: u64,
    /// The table's data file schema (its columns but the partition columns).
    pub schema: SchemaRef,
    /// The table's live data files.
    pub files: Vec<Add>,
}

/// The newest version of `table` for reading its rows: each of `files` read with
/// [`open_data_file`] in `schema`. A table with a reader feature tidelake does not
/// implement (deletion vectors, column mapping, …) is refused, naming it.
pub async fn scan(table: &DeltaTable) -> Result<TableScan, DeltaError> {
    let snapshot = table.existing_snapshot().await?;
    features::check(&snapshot, table.location(), Operation::Read)?;
    let (metadata, schema) = snapshot.schema(table.location())?;
    let schema = schema
        .data_file_schema(&metadata.partition_columns)
        .map_err(|detail| DeltaError::Unsupported {
            table: table.location().to_owned(),
            detail: format!("its rows cannot be read: {detail}"),
        })?;
    Ok(TableScan {
        version: snapshot.version,
        schema,
        files: snapshot.files.into_values().collect(),
    })
}

/// The rows of the data file of `add`, as batches of `schema` (the table's data file
/// schema); see the [module docs](self).
pub async fn read_data_file(
    table: &DeltaTable,
    add: &Add,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, DeltaError> {
    open_data_file(table, add, schema).await?.collect()
}

/// The data file of `add`, fetched whole and decoded a batch of `schema` at a time as
/// the iterator is advanced (for readers that need not hold a file's rows at once).
/// Only the file's columns that `schema` names are decoded, so a reader of a few
/// columns passes a schema of just those.
pub async fn open_data_file(
    table: &DeltaTable,
    add: &Add,
    schema: &SchemaRef,
) -> Result<DataFileBatches, DeltaError> {
    decode_data_file(add, fetch_data_file(table, add).await?, schema)
}

/// The bytes of the data file of `add`, fetched whole.
pub async fn fetch_data_file(table: &DeltaTable, add: &Add) -> Result<Bytes, DeltaError> {
    get_data_file(table, add, None).await
}

/// The bytes of the data file of `add`: all of them, or those of `range`.
async fn get_data_file(
    table: &DeltaTable,
    add: &Add,
    range: Option<Range<u64>>,
) -> Result<Bytes, DeltaError> {
    let location =
        data_file_location(table.root(), &add.path).map_err(|e| DeltaError::ReadFile {
            path: add.path.clone(),
            detail: format!("the path names no object: {e}"),
        })?;
    let store = table.store();
    let bytes = match range {
        Some(range) => store.get_range(&location, range).await,
        None => match store.get(&location).await {
            Ok(result) => result.bytes().await,
            Err(e) => Err(e),
        },
    };
    bytes.map_err(|source| DeltaError::Store {
        path: location.to_string(),
        source,
    })
}

/// The Parquet footer of the data file of `add` (of `add.size` bytes), fetched with
/// one ranged GET of its last 64 KiB, or two if the footer is longer.
pub async fn fetch_footer(table: &DeltaTable, add: &Add) -> Result<ParquetMetaData, DeltaError> {
    const GUESS: u64 = 64 * 1024;
    let unreadable = |detail: String| DeltaError::ReadFile {
        path: add.path.clone(),
        detail,
    };
    let size = u64::try_from(add.size).map_err(|_| unreadable("a negative size".into()))?;
    let tail_bytes = get_data_file(table, add, Some(size.saturating_sub(GUESS)..size)).await?;
    let tail: [u8; FOOTER_SIZE] = tail_bytes
        .get(tail_bytes.len().saturating_sub(FOOTER_SIZE)..)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| unreadable("shorter than a Parquet footer".into()))?;
    let length = FooterTail::try_new(&tail).map_err(|e| unreadable(e.to_string()))?;
    let needed = (length.metadata_length() + FOOTER_SIZE) as u64;
    let footer = if needed <= tail_bytes.len() as u64 {
        tail_bytes.slice(tail_bytes.len() - needed as usize..tail_bytes.len() - FOOTER_SIZE)
    } else {
        let start = size
            .checked_sub(needed)
            .ok_or_else(|| unreadable("its footer is longer than the file".into()))?;
        get_data_file(table, add, Some(start..size - FOOTER_SIZE as u64)).await?
    };
    ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| unreadable(e.to_string()))
}

/// The data file of `add`, already fetched as `bytes`, decoded as [`open_data_file`]
/// decodes it.
fn decode_data_file(
    add: &Add,
    bytes: Bytes,
    schema: &SchemaRef,
) -> Result<DataFileBatches, DeltaError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|builder| {
            let projection = projection(builder.parquet_schema(), schema);
            builder
                .with_projection(projection)
                .with_batch_size(BATCH_ROWS)
                .build()
        })
        .map_err(|e| DeltaError::ReadFile {
            path: add.path.clone(),
            detail: e.to_string(),
        })?;
    Ok(DataFileBatches {
        path: add.path.clone(),
        schema: schema.clone(),
        reader,
    })
}

/// The file's top-level columns that `schema` names ([`conform`] leaves the others out
/// anyway); all of them if it names none, so that batches still count the file's rows.
fn projection(file: &SchemaDescriptor, schema: &SchemaRef) -> ProjectionMask {
    let roots: Vec<usize> = file
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, column)| schema.field_with_name(column.name()).is_ok())
        .map(|(i, _)| i)
        .collect();
    if roots.is_empty() {
        ProjectionMask::all()
    } else {
        ProjectionMask::roots(file, roots)
    }
}

/// The batches of one data file ([`open_data_file`]).
pub struct DataFileBatches {
    path: String,
    schema: SchemaRef,
    reader: ParquetRecordBatchReader,
}

impl Iterator for DataFileBatches {
    type Item = Result<RecordBatch, DeltaError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.reader.next()?;
        Some(
            batch
                .and_then(|batch| conform(&batch, &self.schema))
                .map_err(|e| DeltaError::ReadFile {
                    path: self.path.clone(),
                    detail: e.to_string(),
                }),
        )
    }
}

/// `batch` as a batch of `schema`; see the [module docs](self).
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let rows = batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            None => Ok(new_null_array(field.data_type(), rows)),
            Some(column) => cast_column(column, field.data_type())
                .map_err(|e| ArrowError::CastError(format!("column `{}`: {e}", field.name()))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options)
}

/// `column` as `to`: strictly cast, or for timestamps converted and relabelled.
fn cast_column(column: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    match (column.data_type(), to) {
        (from, to) if from == to => Ok(column.clone()),
        (DataType::Timestamp(_, from_zone), DataType::Timestamp(unit, _)) => {
            // Converting units within the file's own zone keeps the instant; arrow would
            // otherwise read a zoneless value as wall-clock time (and needs chrono-tz to).
            let converted = cast_with_options(
                column,
                &DataType::Timestamp(*unit, from_zone.clone()),
                &strict,
            )?;
            let relabelled = converted.to_data().into_builder().data_type(to.clone());
            Ok(make_array(relabelled.build()?))
        }
        _ => cast_with_options(column, to, &strict),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, Int32Array, StringViewArray, TimestampNanosecondArray};
    use arrow::datatypes::TimestampMicrosecondType;

    use super::*;
    use crate::parquet::ArrowRows;
    use crate::parquet::rows::test_rows::TestRow;

    /// `dt` (µs, UTC), `accountId`, `amount`, `alert`.
    fn table_schema() -> SchemaRef {
        TestRow::arrow_schema()
    }

    #[test]
    fn foreign_batches_fit_the_table_schema() {
        // Spark-like: INT96 times (ns, no zone), a string view, an int amount, no
        // `amount`… and a partition column the table's data files do not hold.
        let file = RecordBatch::try_from_iter([
            (
                "dt",
                Arc::new(TimestampNanosecondArray::from(vec![
                    1_714_521_600_123_456_789,
                    -1_000,
                ])) as ArrayRef,
            ),
            (
                "accountId",
                Arc::new(StringViewArray::from(vec!["a", "b"])) as ArrayRef,
            ),
            (
                "date",
                Arc::new(StringViewArray::from(vec!["x", "y"])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let batch = conform(&file, &table_schema()).expect("conforms");
        assert_eq!(batch.schema(), table_schema());
        let dt = batch.column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(
            dt.values(),
            &[1_714_521_600_123_456, -1],
            "same instants, in µs"
        );
        assert_eq!(batch.column(1).as_string::<i32>().value(1), "b");
        assert_eq!(
            batch.column(2).null_count(),
            2,
            "a missing column reads as null"
        );

        let ints = RecordBatch::try_from_iter([(
            "amount",
            Arc::new(Int32Array::from(vec![7])) as ArrayRef,
        )])
        .expect("batch");
        let batch = conform(&ints, &table_schema()).expect("conforms");
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column(0).null_count(), 1);
        assert_eq!(
            batch
                .column(2)
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(0),
            7.0
        );

        let text = RecordBatch::try_from_iter([(
            "amount",
            Arc::new(StringViewArray::from(vec!["12.5", "lots"])) as ArrayRef,
        )])
        .expect("batch");
        let err = conform(&text, &table_schema()).expect_err("strict");
        assert!(err.to_string().contains("column `amount`"), "{err}");
    }

    #[test]
    fn a_footer_is_fetched_from_the_end_however_long_it_is() {
        crate::testing::block_on(async {
            let table = DeltaTable::open_url("memory://footers").expect("table");
            let ids = Int32Array::from_iter_values(0..3_000);
            let batch =
                RecordBatch::try_from_iter([("id", Arc::new(ids) as ArrayRef)]).expect("batch");
            // One row group of 3,000 rows (a short footer), or 3,000 of one row each
            // (a footer far longer than the first GET).
            for rows_per_group in [3_000, 1] {
                let properties = parquet::file::properties::WriterProperties::builder()
                    .set_max_row_group_row_count(Some(rows_per_group))
                    .build();
                let mut writer = parquet::arrow::ArrowWriter::try_new(
                    Vec::new(),
                    batch.schema(),
                    Some(properties),
                )
                .expect("writer");
                writer.write(&batch).expect("write");
                let bytes = Bytes::from(writer.into_inner().expect("close"));
                let path = format!("f{rows_per_group}.parquet");
                table
                    .store()
                    .put(
                        &object_store::path::Path::from(path.as_str()),
                        bytes.clone().into(),
                    )
                    .await
                    .expect("put");
                let add = Add {
                    path,
                    size: bytes.len() as i64,
                    ..Default::default()
                };
                let tail = &bytes[bytes.len() - 8..bytes.len() - 4];
                let length = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
                assert_eq!(length > 64 * 1024, rows_per_group == 1, "{length}");
                let footer = fetch_footer(&table, &add).await.expect("footer");
                let whole = ParquetMetaDataReader::new()
                    .parse_and_finish(&bytes)
                    .expect("whole");
                assert_eq!(footer.num_row_groups(), 3_000 / rows_per_group);
                assert_eq!(footer.file_metadata().num_rows(), 3_000);
                assert_eq!(footer.row_groups(), whole.row_groups());
                let short = Add { size: 4, ..add };
                assert!(matches!(
                    fetch_footer(&table, &short).await,
                    Err(DeltaError::ReadFile { .. })
                ));
            }
        });
    }
}
