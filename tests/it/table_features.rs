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
                // Many tables, one job id: what each table allows, not checkpoints.
                "--no-checkpoints",
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
            &["history", "files", "validate", "vacuum", "checkpoint"],
            &["optimize"],
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
            &["history", "files", "validate", "vacuum", "checkpoint"],
            &["optimize"],
        ),
        (
            "domain-metadata",
            &["history", "files", "validate", "vacuum", "checkpoint"],
            &["optimize"],
        ),
        (
            "in-commit-timestamp",
            &["history", "files", "validate"],
            &["vacuum", "checkpoint", "optimize"],
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
    // Vacuum (with the default retention) left the deletion vectors' file where it was.
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

    // A live file with a field tidelake's checkpoint writer does not model (an add's
    // baseRowId without the feature): the Delta Kernel writes the checkpoint, and keeps it.
    let url = f.path("plain");
    let version = f.python.append(&url, 10);
    let add = r#"{"add":{"path":"part-x.parquet","partitionValues":{"date":"2024-05-01"},"size":1,"modificationTime":1,"dataChange":true,"baseRowId":7}}"#;
    std::fs::write(
        Path::new(&url).join(format!("_delta_log/{:020}.json", version + 1)),
        format!("{add}\n"),
    )
    .expect("write the commit");
    assert_exit(&f.table_command(&["checkpoint", &url]), 0);
    let checkpoint =
        Path::new(&url).join(format!("_delta_log/{:020}.checkpoint.parquet", version + 1));
    let read = std::process::Command::new(f.python.interpreter())
        .args([
            "-c",
            "import sys, pyarrow.parquet as pq\n\
             adds = [a for a in pq.read_table(sys.argv[1]).column('add').to_pylist() if a]\n\
             print([a.get('baseRowId') for a in adds if a['path'] == 'part-x.parquet'])",
        ])
        .arg(&checkpoint)
        .output()
        .expect("run python");
    assert_eq!(
        String::from_utf8_lossy(&read.stdout).trim(),
        "[7]",
        "{}",
        describe(&read)
    );
}

/// The actions named `name` (`add`, `protocol`, …) of the JSON commit `version` of the
/// table at `url`.
fn commit_actions(url: &str, version: u64, name: &str) -> Vec<Value> {
    let path = Path::new(url).join(format!("_delta_log/{version:020}.json"));
    let text = std::fs::read_to_string(&path).expect("read the commit");
    text.lines()
        .filter_map(|line| {
            let action: Value = serde_json::from_str(line).expect("an action");
            action.get(name).cloned()
        })
        .collect()
}

/// A deletion-vector table through a checkpoint, log cleanup and vacuum: the Delta
/// Kernel's checkpoint keeps every file's vector, so delta-rs, polars and `table files`
/// read the same rows from it once the commits below it are cleaned up; vacuum keeps a
/// live vector's file whatever the retention, ages a removed vector's file by the
/// removal (not by the file's age), and deletes it only past the retention.
#[test]
fn deletion_vectors_survive_checkpoints_log_cleanup_and_vacuum() {
    let f = Fixture::new();
    let (url, rows) = f.table_and_rows("deletion-vectors");
    let before = f.python.readers(&url);
    assert_eq!(before.rows.len() as u64, rows);
    assert_eq!(before.polars_rows, rows);
    let mut live_adds = commit_actions(&url, 1, "add");
    let replaced = commit_actions(&url, 2, "add");
    live_adds.retain(|add| add["path"] != replaced[0]["path"]);
    live_adds.extend(replaced);
    let first_protocol = commit_actions(&url, 0, "protocol").remove(0);
    let first_metadata = commit_actions(&url, 0, "metaData").remove(0);
    let version = before.version;

    // A checkpoint of the latest version, and the commits below it cleaned up: readers
    // can only start from the checkpoint.
    crate::support::age_commits(Path::new(&url), 40);
    let output = f.table_command(&["checkpoint", &url, "--json"]);
    assert_exit(&output, 0);
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["checkpoint"]["version"], version, "{report}");
    assert_eq!(report["checkpoint"]["addFiles"], 2, "{report}");
    let removed: Vec<&str> = report["cleanup"]["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let below: Vec<String> = (0..version).map(|v| format!("{v:020}.json")).collect();
    assert_eq!(removed, below, "{report}");
    assert_eq!(f.python.readers(&url), before);
    assert_eq!(f.rows_by_log(&url), rows);
    assert_exit(&f.table_command(&["validate", &url]), 0);

    // Vacuum with no retention at all: both data files and the vectors' file are live.
    let dv_file = || {
        files_under(Path::new(&url))
            .into_iter()
            .find(|p| p.starts_with("deletion_vector_"))
    };
    let dv_name = dv_file().expect("the deletion vectors' file");
    let output = f.table_command(&["vacuum", &url, "--retention", "0h", "--force", "--json"]);
    assert_exit(&output, 0);
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["files"], Value::Array(vec![]), "{report}");
    assert_eq!(report["liveFiles"], 3, "{report}");
    assert_eq!(f.python.readers(&url), before);

    // Both files removed (a DELETE of every row): the vectors' file is only a
    // tombstone's now. Its bytes are 30 days old, the removal is new: the default
    // retention (7 days) keeps it; no retention deletes it, as removed.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let removes: String = live_adds
        .iter()
        .map(|add| {
            let mut remove = add.clone();
            let remove_fields = remove.as_object_mut().expect("an add");
            remove_fields.retain(|k, _| {
                ["path", "partitionValues", "size", "deletionVector"].contains(&k.as_str())
            });
            remove_fields.insert("deletionTimestamp".into(), now.into());
            remove_fields.insert("dataChange".into(), true.into());
            remove_fields.insert("extendedFileMetadata".into(), true.into());
            format!("{}\n", serde_json::json!({ "remove": remove }))
        })
        .collect();
    std::fs::write(
        Path::new(&url).join(format!("_delta_log/{:020}.json", version + 1)),
        removes,
    )
    .expect("write the DELETE commit");
    crate::support::set_age(&Path::new(&url).join(&dv_name), 30);
    let dry = f.table_command(&["vacuum", &url, "--dry-run", "--json"]);
    assert_exit(&dry, 0);
    let report: Value = serde_json::from_slice(&dry.stdout).expect("json");
    assert_eq!(report["files"], Value::Array(vec![]), "{report}");
    assert_eq!(report["retainedFiles"], 3, "{report}");
    let output = f.table_command(&["vacuum", &url, "--retention", "0h", "--force", "--json"]);
    assert_exit(&output, 0);
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    let deleted: BTreeSet<(String, String)> = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_owned(),
                f["reason"].to_string(),
            )
        })
        .collect();
    let mut expected: BTreeSet<(String, String)> = live_adds
        .iter()
        .map(|add| {
            (
                add["path"].as_str().expect("path").to_owned(),
                "\"removed\"".to_owned(),
            )
        })
        .collect();
    expected.insert((dv_name, "\"removed\"".to_owned()));
    assert_eq!(deleted, expected, "{report}");
    assert_eq!(dv_file(), None);
    assert_eq!(f.rows_by_log(&url), 0);
    assert_eq!(
        report["commits"],
        serde_json::json!([version + 2, version + 3])
    );

    // CHECK constraints on top: the Delta Kernel does not write such tables, and
    // tidelake's own checkpoint would drop the tombstones' vectors: refused, both named.
    let mut protocol = first_protocol;
    protocol["writerFeatures"]
        .as_array_mut()
        .expect("writerFeatures")
        .push("checkConstraints".into());
    let mut metadata = first_metadata;
    metadata["configuration"]["delta.constraints.positive"] = "amount > 0".into();
    // After the DELETE, vacuum logged VACUUM START and END.
    std::fs::write(
        Path::new(&url).join(format!("_delta_log/{:020}.json", version + 4)),
        format!(
            "{}\n{}\n",
            serde_json::json!({ "protocol": protocol }),
            serde_json::json!({ "metaData": metadata })
        ),
    )
    .expect("write the constraint's commit");
    let output = f.table_command(&["checkpoint", &url]);
    assert_refused(&output, "checkConstraints");
    assert_refused(
        &output,
        "tidelake's own checkpoint writer does not hold remove.deletionVector",
    );
}
