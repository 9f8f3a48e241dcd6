//! Table schemas as the Delta log stores them: Spark `StructType` JSON in
//! `metaData.schemaString`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

fn type_name(data_type: &Value) -> String {
    match data_type {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
