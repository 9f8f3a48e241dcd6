//! The rules a Delta table sets on every row written to it: CHECK constraints
//! (`delta.constraints.<name>` table properties), column invariants (`delta.invariants`
//! column metadata), NOT NULL columns (`nullable: false`) and generated columns
//! (`delta.generationExpression`, which the row's value must equal).
//!
//! The protocol has a writer abort a transaction with a row that breaks one. tidelake
//! instead keeps such a row out of the table and hands it back as [`Rejected`], for the
//! job's dead letters (reason `constraint`), so that one bad row does not stop a stream.
//! A row passes a rule only when its expression is TRUE: NULL breaks it, as in Spark and
//! delta-rs. [`Constraints::of_table`] parses every rule when the table is opened; one
//! that tidelake cannot evaluate refuses the table (see [`crate::expression`] for what
//! it can).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::compute::{CastOptions, and, cast_with_options, filter_record_batch, not};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Value};

use crate::delta::DeltaError;
use crate::delta::protocol::actions::Metadata;
use crate::delta::protocol::schema::{Schema, arrow_type};
use crate::expression::{self, Compare, Expr};
pub use crate::parquet::Rejected;
use crate::parquet::{PartitionSpec, RowRules};

/// One rule of a table.
#[derive(Clone, Debug)]
pub struct Constraint {
    /// What the rule is, for messages: `CHECK constraint pos_amount`, `the invariant of
    /// column amount`, `NOT NULL column accountId`, `generated column date`.
    pub name: String,
    /// The SQL text as the table stores it (`accountId IS NOT NULL` for NOT NULL).
    pub expression: String,
    /// What a row must make TRUE.
    expr: Expr,
}

/// Every rule of one table; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct Constraints {
    rules: Vec<Constraint>,
    /// Partition column → its Arrow type, to add the partition values to a batch.
    partition_types: Vec<(String, DataType)>,
}

impl Constraints {
    /// The rules of the table described by `metadata` (named `table` in errors): an
    /// error naming the rule if one cannot be parsed or uses what tidelake cannot
    /// evaluate.
    pub fn of_table(metadata: &Metadata, table: &str) -> Result<Constraints, DeltaError> {
        let schema = Schema::from_schema_string(&metadata.schema_string).map_err(|e| {
            DeltaError::Corrupt(format!(
                "{table}: metaData.schemaString does not parse: {e}"
            ))
        })?;
        let columns: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
        let compile = |name: String, expression: String| {
            let expr = expression::parse(&expression, &columns).map_err(|why| {
                DeltaError::UnsupportedFeature {
                    table: table.to_owned(),
                    feature: format!("{name} ({expression})"),
                    operation: "appending",
                    detail: format!("tidelake cannot evaluate it: {why}"),
                }
            })?;
            Ok::<_, DeltaError>(Constraint {
                name,
                expression,
                expr,
            })
        };
        let mut rules = Vec::new();
        for field in &schema.fields {
            if !field.nullable {
                rules.push(Constraint {
                    name: format!("NOT NULL column {}", field.name),
                    expression: format!("{} IS NOT NULL", field.name),
                    expr: Expr::Is {
                        expr: Box::new(Expr::Column(field.name.clone())),
                        test: expression::IsTest::Null,
                        negated: true,
                    },
                });
            }
            if let Some(invariant) = field.metadata.get("delta.invariants") {
                let sql = invariant_expression(invariant).ok_or_else(|| {
                    DeltaError::Corrupt(format!(
                        "{table}: the delta.invariants of column {} is not {{\"expression\":{{\"expression\":\"…\"}}}}: {invariant}",
                        field.name
                    ))
                })?;
                rules.push(compile(
                    format!("the invariant of column {}", field.name),
                    sql,
                )?);
            }
            if let Some(generation) = field.metadata.get("delta.generationExpression") {
                let Some(sql) = generation.as_str() else {
                    return Err(DeltaError::Corrupt(format!(
                        "{table}: the delta.generationExpression of column {} is not a string",
                        field.name
                    )));
                };
                let mut rule = compile(format!("generated column {}", field.name), sql.to_owned())?;
                rule.expr = Expr::Compare(
                    Compare::NullSafeEq,
                    Box::new(Expr::Column(field.name.clone())),
                    Box::new(rule.expr),
                );
                rules.push(rule);
            }
        }
        for (key, sql) in &metadata.configuration {
            if let Some(name) = key.strip_prefix("delta.constraints.") {
                rules.push(compile(format!("CHECK constraint {name}"), sql.clone())?);
            }
        }
        let partition_types = metadata
            .partition_columns
            .iter()
            .map(|column| {
                let data_type = schema
                    .fields
                    .iter()
                    .find(|f| &f.name == column)
                    .and_then(|f| f.data_type.as_str().and_then(arrow_type))
                    .unwrap_or(DataType::Utf8);
                (column.clone(), data_type)
            })
            .collect();
        Ok(Constraints {
            rules,
            partition_types,
        })
    }

    /// True when the table sets no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules.
    pub fn rules(&self) -> &[Constraint] {
        &self.rules
    }

    /// Splits `batch` (the data columns of rows of partition `partition`) into the rows
    /// that pass every rule, as a batch of the same schema, and the ones that do not.
    pub fn check(
        &self,
        batch: &RecordBatch,
        partition: &PartitionSpec,
    ) -> Result<(RecordBatch, Vec<Rejected>), String> {
        if self.rules.is_empty() || batch.num_rows() == 0 {
            return Ok((batch.clone(), Vec::new()));
        }
        let full = self.with_partition_columns(batch, partition)?;
        let mut passes = BooleanArray::from(vec![true; batch.num_rows()]);
        let mut broken: Vec<Option<usize>> = vec![None; batch.num_rows()];
        for (r, rule) in self.rules.iter().enumerate() {
            let value = expression::eval(&rule.expr, &full)
                .map_err(|e| format!("evaluating {} ({}): {e}", rule.name, rule.expression))?;
            let value = value
                .as_boolean_opt()
                .ok_or_else(|| format!("{} ({}) is not a condition", rule.name, rule.expression))?;
            for (i, first) in broken.iter_mut().enumerate() {
                let is_true = value.is_valid(i) && value.value(i);
                if !is_true && first.is_none() {
                    *first = Some(r);
                }
            }
            let is_true: BooleanArray = value.iter().map(|v| Some(v == Some(true))).collect();
            passes = and(&passes, &is_true).map_err(|e| e.to_string())?;
        }
        if passes.true_count() == batch.num_rows() {
            return Ok((batch.clone(), Vec::new()));
        }
        let kept = filter_record_batch(batch, &passes).map_err(|e| e.to_string())?;
        let failing = not(&passes).map_err(|e| e.to_string())?;
        let rejected_rows = filter_record_batch(&full, &failing).map_err(|e| e.to_string())?;
        let rules: Vec<usize> = broken.into_iter().flatten().collect();
        let rejected = rows_as_json(&rejected_rows)?
            .into_iter()
            .zip(rules)
            .map(|(row, r)| Rejected {
                constraint: format!("{} ({})", self.rules[r].name, self.rules[r].expression),
                row,
            })
            .collect();
        Ok((kept, rejected))
    }

    /// `batch` with a constant column per partition column, of its table type.
    fn with_partition_columns(
        &self,
        batch: &RecordBatch,
        partition: &PartitionSpec,
    ) -> Result<RecordBatch, String> {
        let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (column, data_type) in &self.partition_types {
            let value = partition
                .iter()
                .find(|(c, _)| c == column)
                .and_then(|(_, v)| v.as_deref())
                .filter(|v| !v.is_empty());
            let strings: ArrayRef = Arc::new(StringArray::from(vec![value; batch.num_rows()]));
            let options = CastOptions {
                safe: true,
                ..CastOptions::default()
            };
            let typed =
                cast_with_options(&strings, data_type, &options).map_err(|e| e.to_string())?;
            fields.push(Arc::new(Field::new(column, data_type.clone(), true)));
            columns.push(typed);
        }
        RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), columns).map_err(|e| e.to_string())
    }
}

/// A timestamp column (any unit, UTC) as RFC 3339 strings with as many fraction digits
/// as needed.
fn rfc3339(column: &ArrayRef) -> Result<ArrayRef, String> {
    let micros = expression::cast_to(column, expression::Type::Timestamp)?;
    let micros = micros.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    let text: StringArray = micros
        .iter()
        .map(|v| {
            v.and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        })
        .collect();
    Ok(Arc::new(text))
}

/// The SQL of a `delta.invariants` value: `{"expression":{"expression":"<sql>"}}`, as
/// a JSON string (or, leniently, as the object itself).
fn invariant_expression(value: &Value) -> Option<String> {
    let object: Value = match value {
        Value::String(text) => serde_json::from_str(text).ok()?,
        other => other.clone(),
    };
    object
        .get("expression")?
        .get("expression")?
        .as_str()
        .map(str::to_owned)
}

/// Each row of `batch` as a JSON object: booleans and numbers as JSON values (a
/// non-finite double as its name), timestamps in RFC 3339 (UTC), everything else as
/// Arrow displays it.
fn rows_as_json(batch: &RecordBatch) -> Result<Vec<String>, String> {
    let options = FormatOptions::default();
    // Timestamps are formatted here: Arrow's formatter parses zone names only with
    // chrono-tz.
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Timestamp(_, _) => rfc3339(c),
            _ => Ok(Arc::clone(c)),
        })
        .collect::<Result<_, _>>()?;
    let formatters = columns
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let schema = batch.schema();
    Ok((0..batch.num_rows())
        .map(|i| {
            let mut row = Map::new();
            for (c, field) in schema.fields().iter().enumerate() {
                let column = &columns[c];
                let value = if column.is_null(i) {
                    Value::Null
                } else {
                    match column.data_type() {
                        DataType::Boolean => Value::Bool(column.as_boolean().value(i)),
                        DataType::Float64 | DataType::Float32 => {
                            let text = formatters[c].value(i).to_string();
                            match text
                                .parse::<f64>()
                                .ok()
                                .and_then(serde_json::Number::from_f64)
                            {
                                Some(n) => Value::Number(n),
                                None => Value::String(text),
                            }
                        }
                        t if t.is_integer() => formatters[c]
                            .value(i)
                            .to_string()
                            .parse::<i64>()
                            .map_or(Value::Null, Value::from),
                        _ => Value::String(formatters[c].value(i).to_string()),
                    }
                };
                row.insert(field.name().clone(), value);
            }
            Value::Object(row).to_string()
        })
        .collect())
}

impl RowRules for Constraints {
    fn check(
        &self,
        batch: &RecordBatch,
        partition: &PartitionSpec,
    ) -> Result<(RecordBatch, Vec<Rejected>), String> {
        Constraints::check(self, batch, partition)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::{Float64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::TimeUnit;

    use super::*;

    const SCHEMA: &str = r#"{"type":"struct","fields":[
        {"name":"dt","type":"timestamp","nullable":true,"metadata":{}},
        {"name":"accountId","type":"string","nullable":false,"metadata":{}},
        {"name":"amount","type":"double","nullable":true,"metadata":{"delta.invariants":"{\"expression\":{\"expression\":\"amount > -100\"}}"}},
        {"name":"date","type":"string","nullable":true,"metadata":{"delta.generationExpression":"DATE_FORMAT(dt, 'yyyy-MM-dd')"}}]}"#;

    fn metadata(configuration: &[(&str, &str)]) -> Metadata {
        Metadata {
            schema_string: SCHEMA.replace('\n', ""),
            partition_columns: vec!["date".into()],
            configuration: configuration
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            ..Metadata::default()
        }
    }

    fn batch() -> RecordBatch {
        let day = 1_714_521_600_000_000i64; // 2024-05-01T00:00:00Z
        let schema = ArrowSchema::new(vec![
            Field::new(
                "dt",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("accountId", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(vec![day, day + 1, day - 1, day, day])
                        .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("c"),
                    None,
                    Some("e"),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(5.0),
                    Some(-3.0),
                    Some(1.0),
                    Some(2.0),
                    Some(-200.0),
                ])),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn rows_that_break_a_rule_are_kept_out_and_named() {
        let constraints =
            Constraints::of_table(&metadata(&[("delta.constraints.pos", "amount > 0")]), "t")
                .expect("compiles");
        let names: Vec<&str> = constraints
            .rules()
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "NOT NULL column accountId",
                "the invariant of column amount",
                "generated column date",
                "CHECK constraint pos"
            ]
        );
        let partition = vec![("date".to_owned(), Some("2024-05-01".to_owned()))];
        let (kept, rejected) = constraints.check(&batch(), &partition).expect("check");
        // Row 0 passes; 1 breaks pos; 2 is dated 2024-04-30; 3 has no account; 4 breaks
        // the invariant (and pos).
        assert_eq!(kept.num_rows(), 1);
        assert_eq!(kept.schema(), batch().schema());
        let reasons: Vec<&str> = rejected.iter().map(|r| r.constraint.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "CHECK constraint pos (amount > 0)",
                "generated column date (DATE_FORMAT(dt, 'yyyy-MM-dd'))",
                "NOT NULL column accountId (accountId IS NOT NULL)",
                "the invariant of column amount (amount > -100)",
            ]
        );
        let row: Value = serde_json::from_str(&rejected[0].row).expect("json");
        assert_eq!(row["accountId"], "b");
        assert_eq!(row["amount"], -3.0);
        assert_eq!(row["date"], "2024-05-01");
        assert_eq!(row["dt"], "2024-05-01T00:00:00.000001Z");
    }

    #[test]
    fn a_table_without_rules_passes_everything_and_bad_rules_are_refused() {
        let plain = Metadata {
            schema_string: r#"{"type":"struct","fields":[{"name":"amount","type":"double","nullable":true,"metadata":{}}]}"#.into(),
            ..Metadata::default()
        };
        assert!(Constraints::of_table(&plain, "t").expect("none").is_empty());
        let err = Constraints::of_table(
            &metadata(&[("delta.constraints.odd", "sha1(accountId) <> ''")]),
            "t",
        )
        .expect_err("unsupported");
        let message = err.to_string();
        assert!(
            message.contains("CHECK constraint odd (sha1(accountId) <> '')")
                && message.contains("the function sha1 is not supported"),
            "{message}"
        );
    }
}
