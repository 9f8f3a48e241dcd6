//! Table schemas as the Delta log stores them: Spark `StructType` JSON in
//! `metaData.schemaString`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field as ArrowField, Schema as ArrowSchema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::parquet::ArrowRows;

/// One column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// Column name.
    pub name: String,
    /// Type: a primitive name (`string`, `double`, `timestamp`, …) or a nested type object.
    #[serde(rename = "type")]
    pub data_type: Value,
    /// Whether the column may hold nulls (readers require the key).
    pub nullable: bool,
    /// Column metadata (readers require the key, even when empty).
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// A table schema: a struct of fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// Always `struct`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The columns, in order.
    pub fields: Vec<Field>,
}

impl Schema {
    /// A schema of nullable primitive columns `(name, type)`.
    pub fn of(columns: &[(&str, &str)]) -> Self {
        Schema {
            kind: "struct".to_owned(),
            fields: columns
                .iter()
                .map(|(name, data_type)| Field {
                    name: (*name).to_owned(),
                    data_type: Value::String((*data_type).to_owned()),
                    nullable: true,
                    metadata: Map::new(),
                })
                .collect(),
        }
    }

    /// The table schema of data files of schema `arrow` plus `partition_columns`
    /// (strings, last): each column of the Delta type of its Arrow type (see
    /// [`delta_type`]; a type without one keeps its Arrow name, which no table accepts
    /// and the data file writer refuses, naming the column).
    pub fn from_arrow(arrow: &ArrowSchema, partition_columns: &[&str]) -> Self {
        let data = arrow.fields().iter().map(|f| Field {
            name: f.name().clone(),
            data_type: Value::String(
                delta_type(f.data_type()).unwrap_or_else(|| f.data_type().to_string()),
            ),
            nullable: f.is_nullable(),
            metadata: Map::new(),
        });
        let partitions = partition_columns.iter().map(|name| Field {
            name: (*name).to_owned(),
            data_type: Value::String("string".to_owned()),
            nullable: true,
            metadata: Map::new(),
        });
        Schema {
            kind: "struct".to_owned(),
            fields: data.chain(partitions).collect(),
        }
    }

    /// The table schema of rows `R`: their data file columns, then their partition
    /// columns (see [`from_arrow`](Self::from_arrow)).
    pub fn of_rows<R: ArrowRows>() -> Self {
        Self::from_arrow(&R::arrow_schema(), R::partition_columns())
    }

    /// The first column of a primitive type that is no Delta type (a column of rows
    /// whose Arrow type has none), named with its type; `None` if every column has one.
    pub fn unwritable(&self) -> Option<String> {
        self.fields.iter().find_map(|field| match &field.data_type {
            Value::String(name) if arrow_type(name).is_none() => Some(format!(
                "column `{}` is {name}, which has no Delta type tidelake writes",
                field.name
            )),
            _ => None,
        })
    }

    /// Parses `metaData.schemaString`.
    pub fn from_schema_string(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The schema as `metaData.schemaString`.
    pub fn to_schema_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// What keeps data of schema `self` from being written to a table of schema
    /// `table`, naming the columns; `None` when they match (names and types, in any
    /// order; nullability is not compared).
    pub fn mismatch(&self, table: &Schema) -> Option<String> {
        let mut problems = Vec::new();
        for field in &self.fields {
            match table.fields.iter().find(|f| f.name == field.name) {
                None => problems.push(format!("column `{}` is not in the table", field.name)),
                Some(t) if t.data_type != field.data_type => problems.push(format!(
                    "column `{}` is {} in the table but {} here",
                    field.name,
                    type_name(&t.data_type),
                    type_name(&field.data_type)
                )),
                Some(_) => {}
            }
        }
        for t in &table.fields {
            if !self.fields.iter().any(|f| f.name == t.name) {
                problems.push(format!(
                    "the table has column `{}`, which is not written here",
                    t.name
                ));
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

impl Schema {
    /// The Arrow schema of the table's data files: every column but `leave_out` (the
    /// partition columns), in order, each of the Arrow type of its Delta type (see
    /// [`arrow_type`]). An error naming the column if a type has none here (nested
    /// types, …).
    pub fn data_file_schema(&self, leave_out: &[String]) -> Result<SchemaRef, String> {
        let fields = self
            .fields
            .iter()
            .filter(|f| !leave_out.contains(&f.name))
            .map(|f| {
                let data_type = f.data_type.as_str().and_then(arrow_type).ok_or_else(|| {
                    format!(
                        "column `{}` is of type {}, which tidelake cannot read or write",
                        f.name,
                        type_name(&f.data_type)
                    )
                })?;
                Ok(ArrowField::new(f.name.clone(), data_type, f.nullable))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Arc::new(ArrowSchema::new(fields)))
    }
}

/// The Delta primitive type of an Arrow type, where there is one (the inverse of
/// [`arrow_type`]).
pub fn delta_type(data_type: &DataType) -> Option<String> {
    Some(
        match data_type {
            DataType::Boolean => "boolean",
            DataType::Int8 => "byte",
            DataType::Int16 => "short",
            DataType::Int32 => "integer",
            DataType::Int64 => "long",
            DataType::Float32 => "float",
            DataType::Float64 => "double",
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary",
            DataType::Date32 => "date",
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if !tz.is_empty() => "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, _) => "timestamp_ntz",
            DataType::Decimal128(precision, scale) => {
                return Some(format!("decimal({precision},{scale})"));
            }
            DataType::Dictionary(_, values) => return delta_type(values),
            _ => return None,
        }
        .to_owned(),
    )
}

/// The Arrow type data files hold for a Delta primitive type, as delta-rs writes them:
/// `timestamp` is `Timestamp(Microsecond, "UTC")` (INT64 `TIMESTAMP(MICROS,
/// isAdjustedToUTC=true)` in Parquet), `timestamp_ntz` the same without a time zone,
/// `decimal(p,s)` a 128-bit decimal. `None` for anything else.
pub fn arrow_type(delta: &str) -> Option<DataType> {
    Some(match delta {
        "string" => DataType::Utf8,
        "long" => DataType::Int64,
        "integer" => DataType::Int32,
        "short" => DataType::Int16,
        "byte" => DataType::Int8,
        "double" => DataType::Float64,
        "float" => DataType::Float32,
        "boolean" => DataType::Boolean,
        "binary" => DataType::Binary,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "timestamp_ntz" => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => {
            let (precision, scale) = other
                .strip_prefix("decimal(")?
                .strip_suffix(')')?
                .split_once(',')?;
            DataType::Decimal128(precision.trim().parse().ok()?, scale.trim().parse().ok()?)
        }
    })
}

fn type_name(data_type: &Value) -> String {
    match data_type {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parquet::rows::test_rows::TestRow;

    #[test]
    fn a_row_type_declares_its_columns_once() {
        let schema = Schema::of_rows::<TestRow>();
        let columns: Vec<(&str, String)> = schema
            .fields
            .iter()
            .map(|f| (f.name.as_str(), type_name(&f.data_type)))
            .collect();
        assert_eq!(
            columns,
            [
                ("dt", "timestamp".to_owned()),
                ("accountId", "string".to_owned()),
                ("amount", "double".to_owned()),
                ("alert", "boolean".to_owned()),
                ("date", "string".to_owned()),
            ]
        );
        assert_eq!(schema.unwritable(), None);

        let arrow = ArrowSchema::new(vec![
            ArrowField::new("n", DataType::Int64, true),
            ArrowField::new("u", DataType::UInt64, true),
        ]);
        assert_eq!(
            Schema::from_arrow(&arrow, &[]).unwritable().as_deref(),
            Some("column `u` is UInt64, which has no Delta type tidelake writes")
        );
    }

    #[test]
    fn a_table_of_a_column_without_a_delta_type_is_not_created() {
        crate::testing::block_on(async {
            let table = crate::delta::DeltaTable::open_url("memory://t").expect("open");
            let arrow = ArrowSchema::new(vec![ArrowField::new("u", DataType::UInt32, true)]);
            let err = table
                .create_or_open(
                    &Schema::from_arrow(&arrow, &[]),
                    &[],
                    Default::default(),
                    "t",
                )
                .await
                .expect_err("refused");
            assert!(err.to_string().contains("column `u` is UInt32"), "{err}");
            assert_eq!(table.snapshot().await.expect("read"), None);
        });
    }

    #[test]
    fn schema_string_has_every_key_readers_require() {
        let schema = Schema::of(&[("dt", "timestamp"), ("date", "string")]);
        assert_eq!(
            schema.to_schema_string(),
            r#"{"type":"struct","fields":[{"name":"dt","type":"timestamp","nullable":true,"metadata":{}},{"name":"date","type":"string","nullable":true,"metadata":{}}]}"#
        );
        assert_eq!(
            Schema::from_schema_string(&schema.to_schema_string()).expect("parses"),
            schema
        );
    }

    #[test]
    fn data_files_hold_every_column_but_the_partition_columns_as_arrow_types() {
        let schema = Schema::of(&[
            ("dt", "timestamp"),
            ("accountId", "string"),
            ("price", "decimal(10, 2)"),
            ("date", "string"),
        ]);
        let arrow = schema
            .data_file_schema(&["date".to_owned()])
            .expect("schema");
        let fields: Vec<(&str, &DataType)> = arrow
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "dt",
                    &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                ),
                ("accountId", &DataType::Utf8),
                ("price", &DataType::Decimal128(10, 2)),
            ]
        );
        let mut nested = Schema::of(&[("tags", "string")]);
        nested.fields[0].data_type = serde_json::json!({"type": "array"});
        let err = nested.data_file_schema(&[]).expect_err("nested");
        assert!(err.contains("column `tags` is of type {"), "{err}");
        assert_eq!(arrow_type("interval"), None);
    }

    #[test]
    fn mismatch_names_the_columns() {
        let ours = Schema::of(&[
            ("dt", "timestamp"),
            ("amount", "double"),
            ("alert", "boolean"),
        ]);
        let table = Schema::of(&[("dt", "timestamp"), ("amount", "string"), ("extra", "long")]);
        let message = ours.mismatch(&table).expect("mismatch");
        assert!(
            message.contains("`amount` is string in the table but double here"),
            "{message}"
        );
        assert!(message.contains("`alert` is not in the table"), "{message}");
        assert!(
            message.contains("the table has column `extra`"),
            "{message}"
        );
        assert_eq!(ours.mismatch(&ours.clone()), None);
    }
}
