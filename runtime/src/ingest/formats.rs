//! The file formats `tidelake ingest` reads, each file decoded whole into Arrow
//! batches (docs/ingest.md, "Formats and schemas"):
//!
//! - **Parquet**: any Parquet file; its columns are its own.
//! - **CSV**: a header line naming the columns (in any order), then RFC 4180 records.
//! - **JSON lines**: one object per line; a key a line lacks is null, a key the schema
//!   does not have makes the file another schema.
//!
//! The first file (when there is no table yet and no `--schema`) gives the schema:
//! Parquet's own, or types inferred from CSV values or JSON values (every line read).

use std::io::{BufReader, Cursor};
use std::sync::Arc;

use arrow::datatypes::{Schema as ArrowSchema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Rows per batch read.
const BATCH_ROWS: usize = 8192;

/// How input files are encoded (`--format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputFormat {
    /// Parquet files.
    #[default]
    Parquet,
    /// CSV files with a header line.
    Csv,
    /// JSON lines.
    Jsonl,
}

impl InputFormat {
    /// The format as `--format` names it.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Parquet => "parquet",
            InputFormat::Csv => "csv",
            InputFormat::Jsonl => "jsonl",
        }
    }

    /// The schema of a file of this format: its own (Parquet, a CSV header with the
    /// types its values have) or inferred from its values (JSON lines).
    pub fn infer_schema(self, bytes: &Bytes) -> Result<ArrowSchema, String> {
        match self {
            InputFormat::Parquet => ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
                .map(|builder| builder.schema().as_ref().clone())
                .map_err(|e| e.to_string()),
            InputFormat::Csv => arrow::csv::reader::Format::default()
                .with_header(true)
                .infer_schema(Cursor::new(bytes), None)
                .map(|(schema, _)| schema)
                .map_err(|e| e.to_string()),
            InputFormat::Jsonl => {
                arrow::json::reader::infer_json_schema(BufReader::new(Cursor::new(bytes)), None)
                    .map(|(schema, _)| schema)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// The rows of a file of this format, as batches: a Parquet file's own columns, CSV
    /// and JSON values read as the types of `expected` (the input columns, by name). An
    /// error says why the file cannot be read (the line of a bad value, a column or key
    /// `expected` lacks).
    pub fn read(self, bytes: Bytes, expected: &SchemaRef) -> Result<Vec<RecordBatch>, String> {
        match self {
            InputFormat::Parquet => ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|builder| builder.with_batch_size(BATCH_ROWS).build())
                .map_err(|e| e.to_string())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string()),
            InputFormat::Csv => {
                let schema = csv_schema(&bytes, expected)?;
                arrow::csv::ReaderBuilder::new(schema)
                    .with_header(true)
                    .with_batch_size(BATCH_ROWS)
                    .build(Cursor::new(bytes))
                    .map_err(|e| e.to_string())?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())
            }
            InputFormat::Jsonl => arrow::json::ReaderBuilder::new(expected.clone())
                .with_batch_size(BATCH_ROWS)
                .with_strict_mode(true)
                .build(BufReader::new(Cursor::new(bytes)))
                .map_err(|e| e.to_string())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string()),
        }
    }
}

/// The schema to read a CSV file with: its header's columns, in its order, of the
/// types `expected` gives them. An error names the columns the header has that
/// `expected` does not, and those it lacks.
fn csv_schema(bytes: &Bytes, expected: &SchemaRef) -> Result<SchemaRef, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(Cursor::new(bytes));
    let header = reader
        .headers()
        .map_err(|e| format!("the header line does not parse: {e}"))?;
    let names: Vec<&str> = header.iter().collect();
    super::shape::same_columns(&names, expected)?;
    let fields: Vec<_> = names
        .iter()
        .filter_map(|n| expected.field_with_name(n).ok().cloned())
        .collect();
    Ok(Arc::new(ArrowSchema::new(fields)))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    use super::*;

    fn expected() -> SchemaRef {
        Arc::new(ArrowSchema::new(vec![
            Field::new("accountId", DataType::Utf8, true),
            Field::new("ts", DataType::Int64, true),
            Field::new("amount", DataType::Float64, true),
        ]))
    }

    #[test]
    fn csv_columns_are_matched_by_header_name_in_any_order() {
        let bytes = Bytes::from("amount,accountId,ts\n0.5,a7,1000\n600,b-12,2000\n");
        let batches = InputFormat::Csv.read(bytes, &expected()).expect("read");
        let batch = &batches[0];
        let ids = batch.column_by_name("accountId").expect("column");
        let ids = ids.as_any().downcast_ref::<StringArray>().expect("strings");
        assert_eq!(ids.value(1), "b-12");
        let ts = batch.column_by_name("ts").expect("column");
        let ts = ts.as_any().downcast_ref::<Int64Array>().expect("longs");
        assert_eq!(ts.value(0), 1000);
        let amount = batch.column_by_name("amount").expect("column");
        let amount = amount
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("doubles");
        assert_eq!(amount.value(1), 600.0);
    }

    #[test]
    fn csv_with_other_columns_or_a_bad_value_is_an_error_naming_them() {
        let other = Bytes::from("accountId,ts,amount,merchant\na,1,2,m\n");
        let error = InputFormat::Csv
            .read(other, &expected())
            .expect_err("other");
        assert!(error.contains("`merchant`"), "{error}");
        let missing = Bytes::from("accountId,ts\na,1\n");
        let error = InputFormat::Csv
            .read(missing, &expected())
            .expect_err("missing");
        assert!(error.contains("`amount`"), "{error}");
        let bad = Bytes::from("accountId,ts,amount\na,1,2\nb,x,3\n");
        let error = InputFormat::Csv.read(bad, &expected()).expect_err("bad");
        assert!(error.contains("line"), "{error}");
    }

    #[test]
    fn json_lines_missing_keys_are_null_and_unknown_keys_an_error() {
        let bytes = Bytes::from(
            "{\"accountId\":\"a\",\"ts\":1,\"amount\":2.5}\n{\"accountId\":\"b\",\"ts\":2}\n",
        );
        let batches = InputFormat::Jsonl.read(bytes, &expected()).expect("read");
        assert_eq!(batches[0].num_rows(), 2);
        assert!(batches[0].column(2).is_null(1));
        let unknown = Bytes::from("{\"accountId\":\"a\",\"ts\":1,\"amount\":2.5,\"x\":1}\n");
        let error = InputFormat::Jsonl
            .read(unknown, &expected())
            .expect_err("unknown");
        assert!(error.contains('x'), "{error}");
    }

    #[test]
    fn schemas_are_inferred_from_csv_and_json_values() {
        let csv = Bytes::from("accountId,ts,amount\na,1,2.5\n");
        let schema = InputFormat::Csv.infer_schema(&csv).expect("csv");
        assert_eq!(schema.field(1).data_type(), &DataType::Int64);
        assert_eq!(schema.field(2).data_type(), &DataType::Float64);
        let json = Bytes::from("{\"accountId\":\"a\",\"ts\":1,\"amount\":2}\n{\"amount\":2.5}\n");
        let schema = InputFormat::Jsonl.infer_schema(&json).expect("json");
        assert_eq!(
            schema
                .field_with_name("amount")
                .expect("amount")
                .data_type(),
            &DataType::Float64
        );
        assert!(InputFormat::Parquet.infer_schema(&csv).is_err());
    }
}
