//! Delta table features through the binary, on tables made by delta-rs or by hand from
//! the protocol (`tests/py/feature_tables.py`): `run` appends to the tables whose
//! features it implements (append-only, invariants and CHECK constraints, whose
//! violating rows become `constraint` dead letters, generated columns, change data feed,
//! features listed but unused) and refuses, with exit 2 and the table untouched, those it
//! does not (unknown features, deletion vectors, column mapping, domain metadata, row
//! tracking, in-commit timestamps, V2 checkpoints, a constraint it cannot evaluate); each
//! table command reads or refuses them as it implements them (`table files` and
//! `table validate` read every feature the Delta Kernel reads).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde::Deserialize;
use serde_json::Value;

use crate::python::Python;
use crate::support::{assert_exit, describe, files_under, tidelake};

/// The input every append reads: 9 transactions on 2024-05-01 and 02, three of them
/// with an amount that is not positive.
const INPUT: &str = "\
a1,1714521600000,5.25
a2,1714521601000,-3
a3,1714521602000,0
a4,1714521603000,700
a5,1714521604000,0.5
a6,1714608000000,12
a7,1714608001000,-0.01
a8,1714608002000,13
a9,1714608003000,14
";

/// Rows of [`INPUT`] with an amount > 0.
const POSITIVE: usize = 6;

/// A dead letter of a row a table kept out (no partition, position or line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableDeadLine {
    source: String,
    reason: String,
    detail: String,
    raw: String,
}

struct Fixture {
    dir: tempfile::TempDir,
    python: Python,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("in.csv"), INPUT).expect("write the input");
        Fixture {
            dir,
            python: Python::find(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A new table with `feature` and 10 rows of its own (fewer, once deletion vectors
    /// deleted some).
    fn table(&self, feature: &str) -> String {
        self.table_and_rows(feature).0
    }

    /// Like [`table`](Self::table), with the rows a reader sees in it.
    fn table_and_rows(&self, feature: &str) -> (String, u64) {
        let url = self.path(feature);
        let made = self.python.feature_table(&url, feature, 10);
        assert!(made.rows <= 10, "{feature}: {}", made.notes);
        (url, made.rows)
    }

    /// `tidelake run` appending [`INPUT`] to `url`.
    fn append(&self, url: &str) -> Output {
        tidelake(
            self.dir.path(),
            &[
                "run",
                "--source",
                "csv",
                "--input",
                "in.csv",
                "--table",
                url,
                "--job-id",
                "features",
                "--alerts",
                "alerts.jsonl",
                "--dead-letters",
                "dead.jsonl",
                "--quiet",
            ],
        )
    }

    fn table_command(&self, command: &[&str]) -> Output {
        let mut args = vec!["table"];
        args.extend(command);
        tidelake(self.dir.path(), &args)
    }

    fn dead_letters(&self) -> Vec<TableDeadLine> {
        let text = std::fs::read_to_string(self.dir.path().join("dead.jsonl")).expect("read");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    /// Rows of the table by tidelake's own reckoning (`table files --json`), for tables
    /// delta-rs cannot read.
    fn rows_by_log(&self, url: &str) -> u64 {
        let output = self.table_command(&["files", url, "--json"]);
        assert_exit(&output, 0);
        let files: Value = serde_json::from_slice(&output.stdout).expect("json");
        files["total"]["rows"].as_u64().expect("rows")
    }
}

fn assert_refused(output: &Output, says: &str) {
    assert_exit(output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(says),
        "{says:?} not in\n{}",
        describe(output)
    );
}

#[test]
fn features_tidelake_does_not_implement_are_refused_and_the_table_is_untouched() {
    let f = Fixture::new();
    for (feature, says) in [
        (
            "unknown-writer-feature",
            "uses the writer feature futureFeatureX, which appending does not implement",
        ),
        (
            "unknown-reader-feature",
            "uses the reader feature futureReaderFeatureY",
        ),
        (
            "deletion-vectors",
            "uses the reader feature deletionVectors",
        ),
        (
            "column-mapping",
            "uses column mapping (delta.columnMapping.mode = name)",
        ),
        ("domain-metadata", "uses the writer feature domainMetadata"),
        ("row-tracking", "uses the writer feature"),
        (
            "in-commit-timestamp",
            "uses the writer feature inCommitTimestamp",
        ),
        (
            "v2-checkpoint",
            "V2 (UUID-named) checkpoint, of the reader feature v2Checkpoint",
        ),
    ] {
        let url = f.table(feature);
        let before = files_under(Path::new(&url));
        assert_refused(&f.append(&url), says);
        assert_eq!(
            files_under(Path::new(&url)),
            before,
            "{feature}: the table changed"
        );
    }

    // A CHECK constraint tidelake cannot evaluate refuses the table, naming it.
    let url = f.table("check-constraint");
    f.python
        .add_constraint(&url, "hashed", "md5(accountId) <> ''");
    let before = files_under(Path::new(&url));
    assert_refused(
        &f.append(&url),
        "CHECK constraint hashed (md5(\"accountId\") != ''), which appending does not implement: tidelake cannot evaluate it: the function md5 is not supported",
    );
    assert_eq!(files_under(Path::new(&url)), before);
}

#[test]
fn appends_honour_append_only_invariants_constraints_and_generated_columns() {
    let f = Fixture::new();
    // Tables whose features need nothing of an append but what it does anyway.
    let mut cdf_from = 0;
    for feature in [
        "append-only",
        "generated-column",
        "timestamp-ntz",
        "null-commit-info",
        "change-data-feed",
    ] {
        let url = f.table(feature);
        cdf_from = f.python.read(&url, &[]).version + 1;
        assert_exit(&f.append(&url), 0);
        let read = f.python.read(&url, &["features-w0"]);
        assert_eq!(read.rows.len(), 10 + 9, "{feature}");
        assert!(read.txn["features-w0"].is_some(), "{feature}");
    }
    // delta-rs reads the append (change-data-feed came last) as inserts of the change
    // data feed.
    let url = f.path("change-data-feed");
    let changes = f.python.change_data_feed(&url, cdf_from);
    assert_eq!(changes.len(), 9);
    assert!(changes.iter().all(|c| c["_change_type"] == "insert"));
    // delta-rs refuses vacuumProtocolCheck tables; tidelake's own log reading counts.
    let url = f.table("vacuum-protocol-check");
    assert_exit(&f.append(&url), 0);
    assert_eq!(f.rows_by_log(&url), 10 + 9);

    // amount > 0 as a CHECK constraint (delta-rs's) and as an invariant: the rows that
    // are not positive are dead letters naming the rule, and never reach the table.
    for (feature, rule) in [
        (
            "check-constraint",
            "CHECK constraint pos_amount (amount > 0)",
        ),
        ("invariants", "the invariant of column amount (amount > 0)"),
    ] {
        let url = f.table(feature);
        assert_exit(&f.append(&url), 0);
        let read = f.python.read(&url, &[]);
        assert_eq!(read.rows.len(), 10 + POSITIVE, "{feature}");
        assert!(
            read.transactions().iter().all(|r| r.amount > 0.0),
            "{feature}"
        );
        let dead = f.dead_letters();
        let kept_out: BTreeSet<(String, String)> = dead
            .iter()
            .map(|d| {
                assert_eq!(
                    (d.source.as_str(), d.reason.as_str()),
                    (url.as_str(), "constraint")
                );
                assert!(d.detail.contains(rule), "{feature}: {}", d.detail);
                let row: Value = serde_json::from_str(&d.raw).expect("the row as JSON");
                (
                    row["accountId"].as_str().expect("id").to_owned(),
                    row["amount"].to_string(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, String)> = [("a2", "-3.0"), ("a3", "0.0"), ("a7", "-0.01")]
            .iter()
            .map(|(a, m)| ((*a).to_owned(), (*m).to_owned()))
            .collect();
        assert_eq!(kept_out, expected, "{feature}");
    }
}

#[test]
fn table_commands_read_or_refuse_each_feature_as_they_implement_it() {
    let f = Fixture::new();
    // (feature, commands that must succeed, commands that must be refused); `files`
    // and `validate` read with the Delta Kernel, the others with tidelake's own log
    // reading and its writers' features.
    let cases: [(&str, &[&str], &[&str]); 8] = [
        (
            "deletion-vectors",
            &["history", "files", "validate"],
            &["vacuum", "checkpoint", "optimize"],
        ),
        (
            "v2-checkpoint",
            &["files", "validate"],
            &["vacuum", "checkpoint", "optimize"],
        ),
        (
            "column-mapping",
            &["history", "files", "validate", "vacuum", "checkpoint"],
            &["optimize"],
        ),
        (
            "row-tracking",
            &["history", "files", "validate"],
            &["optimize"],
        ),
        (
            "domain-metadata",
            &["history", "files", "validate"],
            &["optimize"],
        ),
        (
            "in-commit-timestamp",
            &["history", "files", "validate"],
            &["optimize"],
        ),
        (
            "unknown-writer-feature",
            &["history", "files", "validate"],
            &["vacuum", "checkpoint", "optimize"],
        ),
        (
            "unknown-reader-feature",
            &["history"],
            &["files", "validate", "vacuum", "checkpoint", "optimize"],
        ),
    ];
    for (feature, reads, refuses) in cases {
        let (url, rows) = f.table_and_rows(feature);
        for command in reads {
            let output = f.table_command(&[command, &url]);
            assert_exit(&output, 0);
        }
        if reads.contains(&"files") {
            // The rows a reader sees (delta-rs and the script's own count): net of the
            // rows deletion vectors delete.
            assert_eq!(f.rows_by_log(&url), rows, "{feature}");
        }
        for command in refuses {
            let before = files_under(Path::new(&url));
            let mut args = vec![*command, &url];
            if *command == "vacuum" {
                args.extend(["--retention", "0h", "--force"]);
            }
            // Tidelake's own log reading names the checkpoint it cannot read.
            let says = if feature == "v2-checkpoint" {
                "uses a V2 (UUID-named) checkpoint".to_owned()
            } else {
                format!("table {url} uses")
            };
            assert_refused(&f.table_command(&args), &says);
            assert_eq!(
                files_under(Path::new(&url)),
                before,
                "{feature}: {command} changed the table"
            );
        }
    }
    let dv_table = f.path("deletion-vectors");
    let files: Value =
        serde_json::from_slice(&f.table_command(&["files", &dv_table, "--json"]).stdout)
            .expect("json");
    assert!(files["total"]["deletedRows"].as_u64() > Some(0), "{files}");
    // Vacuum left the deletion vectors' file where it was.
    let dv_files: Vec<String> = files_under(Path::new(&dv_table))
        .into_iter()
        .filter(|p| p.starts_with("deletion_vector_"))
        .collect();
    assert_eq!(dv_files.len(), 1, "{dv_files:?}");
    // A deletion vector file whose bytes changed: validate says so. The live on-disk
    // vector is the file's first (at offset 1: its size, then its magic number).
    let dv_file = Path::new(&dv_table).join(&dv_files[0]);
    let mut bytes = std::fs::read(&dv_file).expect("read the DV file");
    bytes[6] ^= 0xff;
    std::fs::write(&dv_file, bytes).expect("write the DV file");
    let output = f.table_command(&["validate", &dv_table]);
    assert_exit(&output, 1);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("the deletion vector cannot be read"),
        "{}",
        describe(&output)
    );

    // A live file with a field tidelake does not model (an add's baseRowId without the
    // feature): the checkpoint writer refuses to drop it.
    let url = f.path("plain");
    let version = f.python.append(&url, 10);
    let add = r#"{"add":{"path":"part-x.parquet","partitionValues":{"date":"2024-05-01"},"size":1,"modificationTime":1,"dataChange":true,"baseRowId":7}}"#;
    std::fs::write(
        Path::new(&url).join(format!("_delta_log/{:020}.json", version + 1)),
        format!("{add}\n"),
    )
    .expect("write the commit");
    assert_refused(
        &f.table_command(&["checkpoint", &url]),
        "uses add.baseRowId (of part-x.parquet), which writing a checkpoint does not implement",
    );
}
