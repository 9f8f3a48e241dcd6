//! `tidelake table history|files|validate`: a small table built through the library in a
//! directory, read back by the binary.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use tidelake_operators::{AccountId, EnrichedTransaction};
use tidelake_runtime::transactions_table::TransactionRow;
use tidelake_sinks::delta::{Action, Add, CommitInfo, CommitOutcome, DeltaTable, Schema, Txn};
use tidelake_sinks::parquet::{ArrowRows, DataFileWriter, WriterOptions};

use crate::support::{assert_exit, describe, epoch_ms, tidelake};

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// `n` transactions on `date` (`YYYY-MM-DD`), one second apart.
fn rows(date: &str, n: u64) -> Vec<TransactionRow> {
    let start = epoch_ms(&format!("{date}T10:00:00Z"));
    (0..n)
        .map(|i| {
            TransactionRow(EnrichedTransaction {
                account_id: AccountId::from(format!("{i}")),
                ts: start + i * 1000,
                amount: 10.0 + i as f64,
                alert: false,
            })
        })
        .collect()
}

/// Writes `rows` as data files and commits them at `version` with `txn(job-w0, epoch)`;
/// returns the adds, sorted by path.
async fn commit_rows(
    table: &DeltaTable,
    version: u64,
    epoch: i64,
    rows: &[TransactionRow],
) -> Vec<Add> {
    let mut writer = DataFileWriter::<TransactionRow>::new(
        table.store().clone(),
        table.root().clone(),
        0,
        WriterOptions::default(),
    )
    .expect("writer");
    writer.write(rows).await.expect("write");
    let mut adds: Vec<Add> = writer
        .finish()
        .await
        .expect("finish")
        .into_iter()
        .map(Add::from)
        .collect();
    adds.sort_by(|a, b| a.path.cmp(&b.path));
    let mut actions: Vec<Action> = adds.iter().cloned().map(Action::Add).collect();
    actions.push(Action::Txn(Txn {
        app_id: "job-w0".to_owned(),
        version: epoch,
        last_updated: Some(1_714_557_600_000),
        ..Default::default()
    }));
    actions.push(Action::CommitInfo(CommitInfo {
        timestamp: Some(1_714_557_600_000 + version as i64),
        operation: Some("STREAMING UPDATE".to_owned()),
        operation_parameters: Some(BTreeMap::from([("epochId".to_owned(), epoch.to_string())])),
        engine_info: Some("tidelake-it".to_owned()),
        ..CommitInfo::default()
    }));
    assert_eq!(
        table.try_commit(version, &actions).await.expect("commit"),
        CommitOutcome::Committed
    );
    adds
}

/// A table at `url`: version 1 adds 3 rows on 2024-05-01 and 2 on 2024-05-02 (epoch
/// 7), version 2 adds 4 rows on 2024-05-02 (epoch 8). Returns the adds of each.
fn build_table(url: &str) -> (Vec<Add>, Vec<Add>) {
    block_on(async {
        let table = DeltaTable::open_url(url).expect("open");
        table
            .create_or_open(
                &Schema::of_rows::<TransactionRow>(),
                TransactionRow::partition_columns(),
                BTreeMap::new(),
                "tidelake-it",
            )
            .await
            .expect("create");
        let mut first = rows("2024-05-01", 3);
        first.extend(rows("2024-05-02", 2));
        let v1 = commit_rows(&table, 1, 7, &first).await;
        let v2 = commit_rows(&table, 2, 8, &rows("2024-05-02", 4)).await;
        (v1, v2)
    })
}

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(output)))
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn bytes(adds: &[Add]) -> i64 {
    adds.iter().map(|a| a.size).sum()
}

#[test]
fn history_lists_the_commits_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().join("t").display().to_string();
    let (v1, v2) = build_table(&url);
    assert_eq!((v1.len(), v2.len()), (2, 1));

    let output = tidelake(dir.path(), &["table", "history", &url, "--json"]);
    assert_exit(&output, 0);
    let history = json_of(&output);
    assert_eq!(history["latestVersion"], 2);
    assert_eq!(history["availableFrom"], 0);
    assert_eq!(history["availableCommits"], 3);
    let commits = history["commits"].as_array().expect("commits");
    let versions: Vec<u64> = commits
        .iter()
        .map(|c| c["version"].as_u64().expect("version"))
        .collect();
    assert_eq!(versions, [2, 1, 0]);
    let v1_commit = &commits[1];
    assert_eq!(v1_commit["operation"], "STREAMING UPDATE");
    assert_eq!(v1_commit["operationParameters"]["epochId"], "7");
    assert_eq!(v1_commit["engineInfo"], "tidelake-it");
    assert_eq!(v1_commit["timestamp"], 1_714_557_600_001i64);
    assert_eq!(v1_commit["txns"][0]["appId"], "job-w0");
    assert_eq!(v1_commit["txns"][0]["version"], 7);
    assert_eq!(v1_commit["adds"], 2);
    assert_eq!(v1_commit["removes"], 0);
    assert_eq!(v1_commit["bytesAdded"], bytes(&v1));
    assert_eq!(commits[0]["bytesAdded"], bytes(&v2));
    assert_eq!(commits[2]["operation"], "CREATE TABLE");
    assert_eq!(commits[2]["adds"], 0);

    let output = tidelake(dir.path(), &["table", "history", &url, "--limit", "1"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(
        text.contains("version 2; history available from version 0 (3 commits)"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].starts_with("VERSION"), "{text}");
    assert!(
        lines[2].starts_with("      2  2024-05-01T10:00:00.002Z  STREAMING UPDATE")
            && lines[2].contains("job-w0=8")
            && lines[2].contains("epochId=8"),
        "{text}"
    );
    assert_eq!(lines[3], "(2 older commits not shown)", "{text}");
    assert_eq!(lines.len(), 4, "{text}");
}

#[test]
fn files_counts_files_rows_and_bytes_per_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().join("t").display().to_string();
    let (v1, v2) = build_table(&url);
    let size_of = |date: &str| -> Vec<i64> {
        let mut sizes: Vec<i64> = v1
            .iter()
            .chain(&v2)
            .filter(|a| a.partition_values["date"].as_deref() == Some(date))
            .map(|a| a.size)
            .collect();
        sizes.sort_unstable();
        sizes
    };

    let output = tidelake(dir.path(), &["table", "files", &url, "--json"]);
    assert_exit(&output, 0);
    let layout = json_of(&output);
    assert_eq!(layout["version"], 2);
    assert_eq!(layout["partitionColumns"], serde_json::json!(["date"]));
    let partitions = layout["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 2);
    let may1 = &partitions[0];
    assert_eq!(may1["partitionValues"]["date"], "2024-05-01");
    assert_eq!(may1["files"], 1);
    assert_eq!(may1["rows"], 3);
    assert_eq!(may1["filesWithoutRowCount"], 0);
    assert_eq!(may1["bytes"], size_of("2024-05-01")[0]);
    let may2 = &partitions[1];
    let may2_sizes = size_of("2024-05-02");
    assert_eq!(may2["partitionValues"]["date"], "2024-05-02");
    assert_eq!(may2["files"], 2);
    assert_eq!(may2["rows"], 6);
    assert_eq!(may2["bytes"], may2_sizes[0] + may2_sizes[1]);
    assert_eq!(may2["minFileSize"], may2_sizes[0]);
    assert_eq!(may2["maxFileSize"], may2_sizes[1]);
    assert_eq!(may2["medianFileSize"], (may2_sizes[0] + may2_sizes[1]) / 2);
    let total_bytes = bytes(&v1) + bytes(&v2);
    assert_eq!(layout["total"]["files"], 3);
    assert_eq!(layout["total"]["rows"], 9);
    assert_eq!(layout["total"]["bytes"], total_bytes);
    let histogram = layout["sizeHistogram"].as_array().expect("histogram");
    assert_eq!(histogram.len(), 5);
    assert_eq!(histogram[0]["maxBytes"], 1024 * 1024);
    assert_eq!(histogram[0]["files"], 3, "small test files are < 1 MiB");
    assert_eq!(histogram[0]["bytes"], total_bytes);

    let output = tidelake(dir.path(), &["table", "files", &url]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("Table {url} at version 2: 3 live files, 9 rows, ")),
        "{text}"
    );
    assert!(text.contains("\ndate=2024-05-01      1     3 "), "{text}");
    assert!(text.contains("\ndate=2024-05-02      2     6 "), "{text}");
    assert!(text.contains("\ntotal                3     9 "), "{text}");
    assert!(text.contains("\n< 1 MiB               3 "), "{text}");
    assert!(text.contains("\n≥ 128 MiB             0 "), "{text}");
}

#[test]
fn validate_passes_then_names_a_deleted_file_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table_dir = dir.path().join("t");
    let url = table_dir.display().to_string();
    let (v1, _) = build_table(&url);

    let output = tidelake(dir.path(), &["table", "validate", &url, "--json"]);
    assert_exit(&output, 0);
    let report = json_of(&output);
    assert_eq!(report["version"], 2);
    assert_eq!(report["filesChecked"], 3);
    assert_eq!(report["problems"], serde_json::json!([]));
    let output = tidelake(dir.path(), &["table", "validate", &url]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("Table {url} at version 2: 3 live files checked, no problems\n")
    );

    let deleted = &v1[0].path;
    std::fs::remove_file(table_dir.join(deleted)).expect("delete a data file");
    let output = tidelake(dir.path(), &["table", "validate", &url]);
    assert_exit(&output, 1);
    assert_eq!(
        stdout(&output),
        format!(
            "Table {url} at version 2: 3 live files checked, 1 problem:\n  {deleted}: missing from the store\n"
        )
    );
    let output = tidelake(dir.path(), &["table", "validate", &url, "--json"]);
    assert_exit(&output, 1);
    assert_eq!(
        json_of(&output)["problems"],
        serde_json::json!([{"kind": "missing", "path": deleted}])
    );
}

#[test]
fn a_missing_table_exits_2_naming_the_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-table").display().to_string();
    std::fs::create_dir(dir.path().join("empty")).expect("mkdir");
    let empty = dir.path().join("empty").display().to_string();
    for (url, why) in [
        (missing.as_str(), "no such directory"),
        (empty.as_str(), "no Delta table here"),
    ] {
        for command in ["history", "files", "validate", "vacuum", "checkpoint"] {
            let output = tidelake(dir.path(), &["table", command, url]);
            assert_exit(&output, 2);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(&format!("cannot open table {url}: {why}")),
                "{command}: {}",
                describe(&output)
            );
        }
    }
    assert!(
        !Path::new(&missing).exists(),
        "reading creates no directory"
    );
}
