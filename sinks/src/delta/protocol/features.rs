//! The Delta protocol's table features, and which of them each of tidelake's operations
//! implements: checked before an operation reads or writes a table, so that a feature it
//! does not implement is refused, named, instead of being read wrong or broken.
//!
//! A table's `protocol` names what a client must implement: reader version 1 (nothing),
//! 2 (column mapping) or 3 (the `readerFeatures` list), and writer version 2 (append-only
//! tables, invariants), 3 (+ CHECK constraints), 4 (+ change data feed, generated
//! columns), 5 (+ column mapping), 6 (+ identity columns) or 7 (the `writerFeatures`
//! list). A legacy version's features are in force only when the table enables them (a
//! property or column metadata); a listed feature must be understood whether or not it
//! is in force. What each operation implements:
//!
//! | feature | append | optimize | vacuum, checkpoint |
//! |---|---|---|---|
//! | `appendOnly` | yes: it only appends | yes: its removes have `dataChange=false` | yes |
//! | `invariants`, `checkConstraints` | yes: rows are checked ([`crate::delta::files::constraints`]) | yes: no new rows | yes |
//! | `generatedColumns` | yes: checked like constraints | yes | yes |
//! | `changeDataFeed` | yes: appends need no `cdc` files | yes: no data change | yes |
//! | `columnMapping` | mode `none` only | mode `none` only | yes |
//! | `identityColumns` | no | yes | yes |
//! | `timestampNtz` | yes: the schema is checked | no | yes |
//! | `typeWidening` | no | no | yes |
//! | `vacuumProtocolCheck` | yes | yes | yes: the protocol is checked |
//! | `deletionVectors` | no | no | yes: vacuum keeps the vectors' files as it keeps data files; the Delta Kernel writes the checkpoint |
//! | `rowTracking`, `domainMetadata` | no | no | yes: vacuum adds no files; the Delta Kernel writes the checkpoint |
//! | anything else (`v2Checkpoint`, `inCommitTimestamp`, `icebergCompat*`, `clustering`, …) | no | no | no |
//!
//! Reading is not checked here: `tidelake table files` and `table validate` read the
//! table with the Delta Kernel ([`crate::delta::protocol::kernel`]), which reads every feature it
//! implements (deletion vectors, V2 checkpoints and column mapping among them) and
//! refuses the others; `tidelake table history` reads only commits and needs none.

use std::collections::BTreeSet;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::{Metadata, Protocol};
use crate::delta::protocol::schema::Schema;
use crate::delta::protocol::snapshot::Snapshot;

/// What an operation does to a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Appends new data files (the Delta sink).
    Append,
    /// Rewrites data files without changing the data (OPTIMIZE, Z-order,
    /// auto-compaction).
    Optimize,
    /// Deletes data files no version references, logging VACUUM commits.
    Vacuum,
    /// Writes a checkpoint of the log, or cleans up the log behind one.
    Checkpoint,
    /// Reads the table's data files, as the Delta streaming source does (a reader:
    /// writer features do not concern it).
    Read,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Append => "appending",
            Operation::Optimize => "OPTIMIZE",
            Operation::Vacuum => "VACUUM",
            Operation::Checkpoint => "writing a checkpoint",
            Operation::Read => "the Delta source",
        }
    }

    /// The reader features the operation implements.
    fn reader_features(self) -> &'static [&'static str] {
        match self {
            Operation::Vacuum | Operation::Checkpoint => &[
                "columnMapping",
                "deletionVectors",
                "timestampNtz",
                "typeWidening",
                "typeWidening-preview",
                "vacuumProtocolCheck",
            ],
            Operation::Append => &["columnMapping", "timestampNtz", "vacuumProtocolCheck"],
            Operation::Optimize => &["columnMapping", "vacuumProtocolCheck"],
            // The snapshot is read by the Delta Kernel (V2 checkpoints too); files are
            // cast to the table's current types (widened ones too).
            Operation::Read => &[
                "columnMapping",
                "timestampNtz",
                "typeWidening",
                "typeWidening-preview",
                "v2Checkpoint",
                "vacuumProtocolCheck",
            ],
        }
    }

    /// Whether the operation implements the writer feature `feature`.
    fn implements_writer_feature(self, feature: &str) -> bool {
        // What every writing operation honours: its rows are checked, or it writes none.
        const EVERY: [&str; 7] = [
            "appendOnly",
            "invariants",
            "checkConstraints",
            "generatedColumns",
            "changeDataFeed",
            "columnMapping",
            "vacuumProtocolCheck",
        ];
        EVERY.contains(&feature)
            || match self {
                Operation::Read => true,
                Operation::Append => feature == "timestampNtz",
                Operation::Optimize => feature == "identityColumns",
                Operation::Vacuum | Operation::Checkpoint => matches!(
                    feature,
                    "identityColumns"
                        | "timestampNtz"
                        | "typeWidening"
                        | "typeWidening-preview"
                        | "deletionVectors"
                        | "rowTracking"
                        | "domainMetadata"
                ),
            }
    }

    /// Whether the operation reads or writes data files by column name, so that only
    /// column mapping mode `none` (physical names = logical names) will do.
    fn needs_logical_names(self) -> bool {
        matches!(
            self,
            Operation::Append | Operation::Optimize | Operation::Read
        )
    }
}

/// The features `snapshot`'s table needs of a reader and of a writer, as
/// `(reader, writer)`: the listed ones for protocol versions 3 / 7, else those of the
/// legacy versions that the table puts in force.
pub fn table_features(snapshot: &Snapshot) -> (BTreeSet<String>, BTreeSet<String>) {
    let (Some(protocol), metadata) = (&snapshot.protocol, snapshot.metadata.as_ref()) else {
        return Default::default();
    };
    let reader = match protocol.min_reader_version {
        3.. => listed(&protocol.reader_features),
        2 => in_force(metadata, &["columnMapping"]),
        _ => BTreeSet::new(),
    };
    let writer = match protocol.min_writer_version {
        7.. => listed(&protocol.writer_features),
        version => {
            const LEGACY: [(i32, &str); 8] = [
                (2, "appendOnly"),
                (2, "invariants"),
                (3, "checkConstraints"),
                (4, "changeDataFeed"),
                (4, "generatedColumns"),
                (5, "columnMapping"),
                (6, "identityColumns"),
                (i32::MAX, ""),
            ];
            let implied: Vec<&str> = LEGACY
                .iter()
                .filter(|(since, _)| *since <= version)
                .map(|(_, name)| *name)
                .collect();
            in_force(metadata, &implied)
        }
    };
    (reader, writer)
}

fn listed(features: &Option<Vec<String>>) -> BTreeSet<String> {
    features.iter().flatten().cloned().collect()
}

/// Which of the legacy `features` the table's metadata puts in force.
fn in_force(metadata: Option<&Metadata>, features: &[&str]) -> BTreeSet<String> {
    let Some(metadata) = metadata else {
        return BTreeSet::new();
    };
    let property = |key: &str| metadata.configuration.get(key).map(String::as_str);
    let schema = Schema::from_schema_string(&metadata.schema_string).ok();
    let any_field = |key_prefix: &str| {
        schema.as_ref().is_some_and(|s| {
            s.fields
                .iter()
                .any(|f| f.metadata.keys().any(|k| k.starts_with(key_prefix)))
        })
    };
    features
        .iter()
        .filter(|feature| match **feature {
            "appendOnly" => property("delta.appendOnly") == Some("true"),
            "invariants" => any_field("delta.invariants"),
            "checkConstraints" => metadata
                .configuration
                .keys()
                .any(|k| k.starts_with("delta.constraints.")),
            "changeDataFeed" => property("delta.enableChangeDataFeed") == Some("true"),
            "generatedColumns" => any_field("delta.generationExpression"),
            "columnMapping" => property("delta.columnMapping.mode").is_some_and(|m| m != "none"),
            "identityColumns" => any_field("delta.identity."),
            _ => false,
        })
        .map(|feature| (*feature).to_owned())
        .collect()
}

/// Refuses `operation` on `snapshot`'s table (named `table` in messages) if the table
/// needs a protocol version or feature that the operation does not implement (see the
/// [module docs](self)).
pub fn check(snapshot: &Snapshot, table: &str, operation: Operation) -> Result<(), DeltaError> {
    let refuse = |feature: String, detail: String| DeltaError::UnsupportedFeature {
        table: table.to_owned(),
        feature,
        operation: operation.name(),
        detail,
    };
    let Some(protocol) = &snapshot.protocol else {
        return Err(DeltaError::Corrupt(format!(
            "{table}: the log has no protocol"
        )));
    };
    check_versions(protocol).map_err(|(what, detail)| refuse(what, detail))?;
    let (reader, writer) = table_features(snapshot);
    for feature in &reader {
        if !operation.reader_features().contains(&feature.as_str()) {
            return Err(refuse(
                format!("the reader feature {feature}"),
                feature_detail(feature),
            ));
        }
    }
    for feature in &writer {
        if !operation.implements_writer_feature(feature) {
            return Err(refuse(
                format!("the writer feature {feature}"),
                feature_detail(feature),
            ));
        }
    }
    if operation.needs_logical_names()
        && let Some(mode) = snapshot
            .metadata
            .as_ref()
            .and_then(|m| m.configuration.get("delta.columnMapping.mode"))
            .filter(|mode| mode.as_str() != "none")
    {
        return Err(refuse(
            format!("column mapping (delta.columnMapping.mode = {mode})"),
            "its data files name columns by physical names, which tidelake does not map; \
             write to a table without column mapping"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Protocol versions no feature list can make sense of.
fn check_versions(protocol: &Protocol) -> Result<(), (String, String)> {
    let (reader, writer) = (protocol.min_reader_version, protocol.min_writer_version);
    if reader > 3 {
        return Err((
            format!("reader version {reader}"),
            "the protocol knows reader versions up to 3".to_owned(),
        ));
    }
    if writer > 7 {
        return Err((
            format!("writer version {writer}"),
            "the protocol knows writer versions up to 7".to_owned(),
        ));
    }
    if reader == 3 && writer != 7 {
        return Err((
            format!("reader version 3 with writer version {writer}"),
            "reader version 3 needs writer version 7: the protocol action is invalid".to_owned(),
        ));
    }
    Ok(())
}

/// Why a feature cannot be handled, in a sentence.
fn feature_detail(feature: &str) -> String {
    match feature {
        "deletionVectors" => "rows deleted by deletion vectors would be read as live, and rewritten files would lose their vectors".to_owned(),
        "v2Checkpoint" => "tidelake reads and writes only classic (V1) checkpoints".to_owned(),
        "rowTracking" => "new files would need row ids assigned".to_owned(),
        "domainMetadata" => "checkpoints would drop the table's domain metadata".to_owned(),
        "inCommitTimestamp" => "every commit would need an in-commit timestamp".to_owned(),
        "identityColumns" => "identity column values would have to be generated".to_owned(),
        "timestampNtz" | "typeWidening" | "typeWidening-preview" => "data files would be read with other column types".to_owned(),
        _ => "tidelake does not implement it; the table needs a client that does".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::delta::protocol::actions::Format;

    fn snapshot(protocol: Protocol, configuration: &[(&str, &str)], schema: &str) -> Snapshot {
        Snapshot {
            protocol: Some(protocol),
            metadata: Some(Metadata {
                id: "t".into(),
                name: None,
                description: None,
                format: Format {
                    provider: "parquet".into(),
                    options: BTreeMap::new(),
                },
                schema_string: schema.into(),
                partition_columns: vec![],
                created_time: None,
                configuration: configuration
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ..Metadata::default()
            }),
            ..Snapshot::default()
        }
    }

    fn legacy(reader: i32, writer: i32) -> Protocol {
        Protocol {
            min_reader_version: reader,
            min_writer_version: writer,
            reader_features: None,
            writer_features: None,
            ..Protocol::default()
        }
    }

    fn features(reader: &[&str], writer: &[&str]) -> Protocol {
        let list = |f: &[&str]| Some(f.iter().map(|s| (*s).to_owned()).collect());
        Protocol {
            min_reader_version: if reader.is_empty() { 1 } else { 3 },
            min_writer_version: 7,
            reader_features: if reader.is_empty() {
                None
            } else {
                list(reader)
            },
            writer_features: list(writer),
            ..Protocol::default()
        }
    }

    const PLAIN: &str = r#"{"type":"struct","fields":[{"name":"amount","type":"double","nullable":true,"metadata":{}}]}"#;
    const INVARIANT: &str = r#"{"type":"struct","fields":[{"name":"amount","type":"double","nullable":true,"metadata":{"delta.invariants":"{\"expression\":{\"expression\":\"amount > 0\"}}"}}]}"#;
    const IDENTITY: &str = r#"{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{"delta.identity.start":1,"delta.identity.step":1}}]}"#;

    fn refused(s: &Snapshot, op: Operation) -> String {
        check(s, "t", op).expect_err("refused").to_string()
    }

    #[test]
    fn plain_and_implemented_tables_pass_every_operation() {
        let all = [
            Operation::Append,
            Operation::Optimize,
            Operation::Vacuum,
            Operation::Checkpoint,
        ];
        let tables = [
            snapshot(legacy(1, 2), &[], PLAIN),
            snapshot(legacy(1, 2), &[("delta.appendOnly", "true")], INVARIANT),
            snapshot(
                legacy(1, 3),
                &[("delta.constraints.pos", "amount > 0")],
                PLAIN,
            ),
            snapshot(
                legacy(1, 4),
                &[("delta.enableChangeDataFeed", "true")],
                PLAIN,
            ),
            // Writer 5 and 6 with their features not in force.
            snapshot(legacy(2, 5), &[("delta.columnMapping.mode", "none")], PLAIN),
            snapshot(legacy(1, 6), &[], PLAIN),
            snapshot(
                features(&[], &["appendOnly", "invariants", "checkConstraints"]),
                &[],
                PLAIN,
            ),
            snapshot(
                features(
                    &["vacuumProtocolCheck"],
                    &["vacuumProtocolCheck", "changeDataFeed"],
                ),
                &[],
                PLAIN,
            ),
        ];
        for table in &tables {
            for op in all {
                check(table, "t", op).unwrap_or_else(|e| panic!("{op:?} on {table:?}: {e}"));
            }
        }
    }

    #[test]
    fn unknown_and_unimplemented_features_are_refused_by_name() {
        let unknown_writer = snapshot(features(&[], &["futureFeatureX"]), &[], PLAIN);
        let message = refused(&unknown_writer, Operation::Append);
        assert!(
            message.contains(
                "uses the writer feature futureFeatureX, which appending does not implement"
            ),
            "{message}"
        );

        let unknown_reader = snapshot(features(&["futureY"], &["futureY"]), &[], PLAIN);
        assert!(refused(&unknown_reader, Operation::Vacuum).contains("the reader feature futureY"));

        let dv = snapshot(
            features(&["deletionVectors"], &["deletionVectors"]),
            &[("delta.enableDeletionVectors", "true")],
            PLAIN,
        );
        for op in [Operation::Append, Operation::Optimize] {
            assert!(refused(&dv, op).contains("deletionVectors"), "{op:?}");
        }
        // Vacuum keeps the vectors' files; the Delta Kernel writes the checkpoint.
        for op in [Operation::Vacuum, Operation::Checkpoint] {
            check(&dv, "t", op).expect("deletion vectors");
        }

        let identity = snapshot(legacy(1, 6), &[], IDENTITY);
        assert!(refused(&identity, Operation::Append).contains("identityColumns"));
        check(&identity, "t", Operation::Vacuum).expect("vacuum");

        for protocol in [legacy(4, 7), legacy(1, 8), legacy(3, 5)] {
            let message = refused(&snapshot(protocol.clone(), &[], PLAIN), Operation::Vacuum);
            assert!(message.contains("version"), "{protocol:?}: {message}");
        }
    }

    #[test]
    fn column_mapping_is_read_but_not_written() {
        for protocol in [
            legacy(2, 5),
            features(&["columnMapping"], &["columnMapping"]),
        ] {
            let table = snapshot(protocol, &[("delta.columnMapping.mode", "name")], PLAIN);
            for op in [Operation::Append, Operation::Optimize] {
                assert!(
                    refused(&table, op).contains("delta.columnMapping.mode = name"),
                    "{op:?}"
                );
            }
            for op in [Operation::Vacuum, Operation::Checkpoint] {
                check(&table, "t", op).expect("reads");
            }
        }
    }

    #[test]
    fn legacy_versions_put_features_in_force_by_property_and_metadata() {
        let (_, writer) = table_features(&snapshot(legacy(1, 4), &[], INVARIANT));
        assert_eq!(writer, BTreeSet::from(["invariants".to_owned()]));
        let (reader, writer) = table_features(&snapshot(
            legacy(2, 5),
            &[
                ("delta.columnMapping.mode", "id"),
                ("delta.appendOnly", "true"),
            ],
            PLAIN,
        ));
        assert_eq!(reader, BTreeSet::from(["columnMapping".to_owned()]));
        assert_eq!(
            writer,
            BTreeSet::from(["appendOnly".to_owned(), "columnMapping".to_owned()])
        );
        // Writer 2 does not know CHECK constraints: a property alone is not a feature.
        let (_, writer) = table_features(&snapshot(
            legacy(1, 2),
            &[("delta.constraints.x", "amount > 0")],
            PLAIN,
        ));
        assert!(writer.is_empty());
    }
}
