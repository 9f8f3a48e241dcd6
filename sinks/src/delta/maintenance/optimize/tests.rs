//! Optimizing tables in memory: the plan, the commits, the rows kept, and races.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::ParquetMetaDataReader;

use super::*;
use crate::delta::files::reader::{fetch_data_file, read_data_file};
use crate::delta::inspection::validate::validate;
use crate::delta::protocol::actions::{Action, Remove};
use crate::delta::protocol::log::CommitOutcome;
use crate::delta::protocol::schema::Schema;
use crate::delta::testing::{block_on, txn};
use crate::parquet::ArrowRows;
use crate::parquet::rows::test_rows::{MICROS_PER_DAY, TestRow};
use crate::parquet::stats::stats_json;
use crate::parquet::{DataFileWriter, WriterOptions};

/// 2024-05-01.
const FIRST_DAY: i64 = 19_844;

/// A row as compared: dt, accountId, amount's bits (None for null), alert.
type Row = (i64, String, Option<u64>, bool);

/// `n` rows on `day` after 2024-05-01, accounts and amounts from `seed`.
fn rows(n: usize, day: i64, seed: u64) -> Vec<TestRow> {
    (0..n as u64)
        .map(|i| {
            let x = (i + seed * 1_000).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            TestRow {
                dt_micros: (FIRST_DAY + day) * MICROS_PER_DAY + (x % 86_400_000_000) as i64,
                account_id: format!("acct-{}", x % 500),
                amount: (x % 10_000) as f64 / 4.0,
                alert: x.is_multiple_of(11),
            }
        })
        .collect()
}

fn as_row(r: &TestRow) -> Row {
    (
        r.dt_micros,
        r.account_id.clone(),
        Some(r.amount.to_bits()),
        r.alert,
    )
}

async fn new_table() -> DeltaTable {
    let table = DeltaTable::open_url("memory://t").expect("open");
    table
        .create_or_open(
            &Schema::of_rows::<TestRow>(),
            TestRow::partition_columns(),
            BTreeMap::new(),
            "test",
        )
        .await
        .expect("create");
    table
}

/// Commits `rows` as the next version, with `txn(app, version)`.
async fn append(table: &DeltaTable, rows: &[TestRow], app: &str) -> u64 {
    let mut writer = DataFileWriter::<TestRow>::new(
        table.store().clone(),
        table.root().clone(),
        0,
        WriterOptions::default(),
    )
    .expect("writer");
    writer.write(rows).await.expect("write");
    let version = table.existing_snapshot().await.expect("table").version + 1;
    let mut actions: Vec<Action> = writer
        .finish()
        .await
        .expect("finish")
        .into_iter()
        .map(|file| Action::Add(file.into()))
        .collect();
    actions.push(txn(app, version as i64));
    assert_eq!(
        table.try_commit(version, &actions).await.expect("commit"),
        CommitOutcome::Committed
    );
    version
}

/// A table of `commits` commits, each one small file per day of `days`.
async fn small_files(commits: u64, days: i64, rows_per_file: usize) -> (DeltaTable, Vec<Row>) {
    let table = new_table().await;
    let mut all = Vec::new();
    for commit in 0..commits {
        let mut batch = Vec::new();
        for day in 0..days {
            batch.extend(rows(rows_per_file, day, commit * 10 + day as u64));
        }
        append(&table, &batch, "job-w0").await;
        all.extend(batch.iter().map(as_row));
    }
    all.sort();
    (table, all)
}

/// Every row of the table's live files, sorted.
async fn table_rows(table: &DeltaTable) -> Vec<Row> {
    let snapshot = table.existing_snapshot().await.expect("table");
    let mut out = Vec::new();
    for add in snapshot.files.values() {
        let batches = read_data_file(table, add, &TestRow::arrow_schema())
            .await
            .expect("read");
        for batch in batches {
            let dt = batch.column(0).as_primitive::<TimestampMicrosecondType>();
            let account = batch.column(1).as_string::<i32>();
            let amount = batch.column(2).as_primitive::<Float64Type>();
            let alert = batch.column(3).as_boolean();
            for i in 0..batch.num_rows() {
                let bits = amount.is_valid(i).then(|| amount.value(i).to_bits());
                out.push((
                    dt.value(i),
                    account.value(i).to_owned(),
                    bits,
                    alert.value(i),
                ));
            }
        }
    }
    out.sort();
    out
}

/// The data files in the store (not the log).
async fn stored_files(table: &DeltaTable) -> BTreeSet<String> {
    let objects: Vec<_> = table.store().list(None).try_collect().await.expect("list");
    objects
        .into_iter()
        .map(|o| o.location.to_string())
        .filter(|p| !p.starts_with("_delta_log"))
        .collect()
}

/// Writes `batch` with arrow's own writer as `date=2024-05-01/foreign.parquet` and
/// commits its `add`, with `stats`, as `version`.
async fn commit_foreign_file(
    table: &DeltaTable,
    batch: &RecordBatch,
    stats: Option<String>,
    version: u64,
) {
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), None).expect("writer");
    writer.write(batch).expect("write");
    let bytes = writer.into_inner().expect("close");
    let add = Add {
        path: "date=2024-05-01/foreign.parquet".into(),
        partition_values: day("2024-05-01"),
        size: bytes.len() as i64,
        modification_time: 1,
        data_change: true,
        stats,
        ..Default::default()
    };
    table
        .store()
        .put(&Path::from(add.path.as_str()), bytes.into())
        .await
        .expect("put");
    table
        .try_commit(version, &[Action::Add(add)])
        .await
        .expect("commit");
}

fn options(target: u64) -> OptimizeOptions {
    OptimizeOptions {
        target_file_size: target,
        min_file_size: default_min_file_size(target),
        ..OptimizeOptions::default()
    }
}

fn day(d: &str) -> PartitionValues {
    BTreeMap::from([("date".to_owned(), Some(d.to_owned()))])
}

#[test]
fn bins_take_files_in_order_up_to_the_target() {
    let bins = pack_bins(vec![1u64, 2, 3, 4, 5, 9, 2], |&s| s, 6);
    assert_eq!(bins, [vec![1, 2, 3], vec![4], vec![5], vec![9], vec![2]]);
    assert_eq!(
        pack_bins(Vec::<u64>::new(), |&s| s, 6),
        Vec::<Vec<u64>>::new()
    );
    assert_eq!(pack_bins(vec![7u64, 7], |&s| s, 6), [vec![7], vec![7]]);
    assert_eq!(
        pack_bins(vec![3u64, 3, 3], |&s| s, 6),
        [vec![3, 3], vec![3]]
    );
    assert_eq!(default_min_file_size(128), 96);
}

#[test]
fn the_plan_packs_small_files_per_partition_and_names_bad_columns() {
    block_on(async {
        let (table, _) = small_files(5, 2, 40).await;
        let snapshot = table.existing_snapshot().await.expect("table");
        let sizes: Vec<u64> = snapshot.files.values().map(file_size).collect();
        let max = *sizes.iter().max().expect("files");
        // Bins of two files at most: 3 bins of 5 files per partition, 2 rewritten.
        let plan = plan(&table, &snapshot, &options(2 * max + 1)).expect("plan");
        assert_eq!(plan.read_version, 5);
        assert_eq!(plan.rewrites(), 2);
        for partition in &plan.partitions {
            let PartitionPlan::Rewrite { bins, .. } = partition else {
                panic!("{partition:?}");
            };
            let lens: Vec<usize> = bins.iter().map(|b| b.files.len()).collect();
            assert_eq!(lens, [2, 2]);
        }

        let selected = OptimizeOptions {
            partition_filter: vec![("date".into(), "2024-05-02".into())],
            min_files: 6,
            ..options(1 << 20)
        };
        let plan = super::plan(&table, &snapshot, &selected).expect("plan");
        assert_eq!(
            plan.partitions,
            [PartitionPlan::Skip {
                partition: day("2024-05-02"),
                files: 5,
                reason: "5 of 5 files are smaller than 786432 bytes, fewer than the 6 to compact"
                    .into()
            }]
        );

        let refused = |options: OptimizeOptions| {
            super::plan(&table, &snapshot, &options)
                .expect_err("refused")
                .to_string()
        };
        let zorder = |columns: &[&str]| OptimizeOptions {
            zorder_by: columns.iter().map(|c| (*c).to_owned()).collect(),
            ..OptimizeOptions::default()
        };
        assert_eq!(
            refused(zorder(&["date"])),
            "cannot z-order by `date`: it is a partition column (the table is partitioned by date), the same in every row of a partition"
        );
        assert_eq!(
            refused(zorder(&["accountID"])),
            "cannot z-order by `accountID`: the table has no such column (its data columns: dt, accountId, amount, alert)"
        );
        assert!(refused(zorder(&["dt", "dt"])).contains("given twice"));
        assert_eq!(
            refused(OptimizeOptions {
                partition_filter: vec![("dt".into(), "x".into())],
                ..OptimizeOptions::default()
            }),
            "cannot select partitions by `dt`: it is not a partition column (the table is partitioned by date)"
        );

        let mut mapped = snapshot.clone();
        if let Some(metadata) = mapped.metadata.as_mut() {
            metadata
                .configuration
                .insert("delta.columnMapping.mode".into(), "name".into());
        }
        let err = super::plan(&table, &mapped, &OptimizeOptions::default()).expect_err("mapping");
        assert!(
            matches!(err, DeltaError::UnsupportedFeature { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("column mapping"), "{err}");
    });
}

#[test]
fn each_partition_is_one_commit_of_removes_adds_and_commit_info_that_keeps_every_row() {
    block_on(async {
        let (table, mut expected) = small_files(4, 2, 50).await;
        // A foreign file in 2024-05-01: nanosecond times, no `amount`, and the
        // partition column inside.
        let foreign = RecordBatch::try_from_iter([
            (
                "dt",
                Arc::new(TimestampNanosecondArray::from(vec![
                    FIRST_DAY * MICROS_PER_DAY * 1000 + 5_000,
                ])) as ArrayRef,
            ),
            (
                "accountId",
                Arc::new(StringArray::from(vec!["spark"])) as ArrayRef,
            ),
            (
                "alert",
                Arc::new(arrow::array::BooleanArray::from(vec![true])) as ArrayRef,
            ),
            (
                "date",
                Arc::new(StringArray::from(vec!["2024-05-01"])) as ArrayRef,
            ),
        ])
        .expect("batch");
        commit_foreign_file(&table, &foreign, None, 5).await;
        expected.push((FIRST_DAY * MICROS_PER_DAY + 5, "spark".into(), None, true));
        expected.sort();

        let mut seen = Vec::new();
        let report = optimize(&table, &options(1 << 20), &mut |p| seen.push(p))
            .await
            .expect("optimize");
        assert_eq!(report.read_version, 5);
        assert_eq!(
            (
                report.partitions_compacted,
                report.files_removed,
                report.files_added
            ),
            (2, 9, 2)
        );
        let first_tries = report
            .partitions
            .iter()
            .all(|p| matches!(p, PartitionOutcome::Compacted { attempts: 1, .. }));
        assert!(
            first_tries,
            "a partition never races the one before: {report:?}"
        );
        let last = seen.last().expect("progress");
        assert_eq!((last.partitions_done, last.partitions), (2, 2));
        assert_eq!(last.bytes_read, last.bytes);
        assert_eq!(last.bytes, report.bytes_removed);

        assert_eq!(table_rows(&table).await, expected, "every row, once");
        let snapshot = table.existing_snapshot().await.expect("table");
        assert_eq!(snapshot.version, 7, "one commit per partition");
        assert_eq!(snapshot.txn_version("job-w0"), Some(4), "txns survive");
        assert_eq!(snapshot.files.len(), 2);
        assert!(validate(&table).await.expect("validate").is_ok());

        for (version, date, inputs) in [(6, "2024-05-01", 5), (7, "2024-05-02", 4)] {
            let actions = table.read_commit(version).await.expect("read");
            let removes: Vec<&Remove> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Remove(r) => Some(r),
                    _ => None,
                })
                .collect();
            let adds: Vec<&Add> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Add(a) => Some(a),
                    _ => None,
                })
                .collect();
            assert_eq!(
                (removes.len(), adds.len()),
                (inputs, 1),
                "version {version}"
            );
            for remove in &removes {
                assert!(!remove.data_change);
                assert_eq!(remove.extended_file_metadata, Some(true));
                assert_eq!(remove.partition_values, Some(day(date)));
                assert!(remove.size.is_some_and(|s| s > 0) && remove.deletion_timestamp.is_some());
            }
            let add = adds[0];
            assert!(!add.data_change);
            assert_eq!(add.partition_values, day(date));
            assert!(
                add.path.starts_with(&format!("date={date}/part-00000-")),
                "{}",
                add.path
            );
            let batches = read_data_file(&table, add, &TestRow::arrow_schema())
                .await
                .expect("read");
            assert_eq!(
                add.stats.as_deref(),
                Some(stats_json(&TestRow::arrow_schema(), &batches).as_str()),
                "exact stats"
            );
            let Some(Action::CommitInfo(info)) = actions.last() else {
                panic!("commitInfo last")
            };
            assert_eq!(info.operation.as_deref(), Some("OPTIMIZE"));
            assert_eq!(info.read_version, Some(5));
            assert_eq!(info.is_blind_append, Some(false));
            assert!(info.txn_id.is_some());
            let parameters = info.operation_parameters.clone().expect("parameters");
            let expected_parameters = [
                ("auto", "false"),
                ("predicate", "[]"),
                ("targetSize", "1048576"),
                ("zOrderBy", "[]"),
            ];
            assert_eq!(
                parameters,
                BTreeMap::from(expected_parameters.map(|(k, v)| (k.to_owned(), v.to_owned())))
            );
            assert_eq!(
                info.other["operationMetrics"]["numRemovedFiles"],
                inputs.to_string()
            );
        }
        // Nothing left to do.
        let again = optimize(&table, &options(1 << 20), &mut |_| {})
            .await
            .expect("optimize");
        assert_eq!(again.partitions_compacted, 0);
        assert!(
            again
                .partitions
                .iter()
                .all(|p| matches!(p, PartitionOutcome::Skipped { .. }))
        );
    });
}

#[test]
fn bin_packing_splices_row_groups_into_the_files_re_encoding_writes() {
    block_on(async {
        let schema = TestRow::arrow_schema();
        let mut outcomes = Vec::new();
        for splice_min_group_rows in [1, u64::MAX] {
            let (table, expected) = small_files(5, 2, 300).await;
            let options = OptimizeOptions {
                splice_min_group_rows,
                ..options(1 << 20)
            };
            let report = optimize(&table, &options, &mut |_| {})
                .await
                .expect("optimize");
            assert_eq!((report.partitions_compacted, report.files_removed), (2, 10));
            assert_eq!(table_rows(&table).await, expected, "every row, once");
            assert!(validate(&table).await.expect("validate").is_ok());
            let mut files = Vec::new();
            for add in table
                .existing_snapshot()
                .await
                .expect("table")
                .files
                .values()
            {
                let bytes = fetch_data_file(&table, add).await.expect("fetch");
                assert_eq!(add.size, bytes.len() as i64);
                let footer = ParquetMetaDataReader::new()
                    .parse_and_finish(&bytes)
                    .expect("footer");
                let batches = read_data_file(&table, add, &schema).await.expect("read");
                let stats = add.stats.clone().expect("stats");
                assert_eq!(stats, stats_json(&schema, &batches), "exact stats");
                files.push((add.partition_values.clone(), stats, footer.num_row_groups()));
            }
            files.sort();
            outcomes.push(files);
        }
        // The same files but for their row groups: a spliced file keeps its 5 inputs'.
        assert_eq!(outcomes[0].len(), 2);
        for (spliced, encoded) in outcomes[0].iter().zip(&outcomes[1]) {
            assert_eq!((&spliced.0, &spliced.1), (&encoded.0, &encoded.1));
            assert_eq!((spliced.2, encoded.2), (5, 1));
        }
    });
}

#[test]
fn a_bin_with_a_file_of_another_parquet_schema_is_re_encoded() {
    block_on(async {
        let (table, mut expected) = small_files(3, 1, 200).await;
        // A file with nanosecond times: the same rows to a reader, another schema to
        // Parquet.
        let foreign = RecordBatch::try_from_iter([
            (
                "dt",
                Arc::new(TimestampNanosecondArray::from(vec![
                    FIRST_DAY * MICROS_PER_DAY * 1000 + 7_000,
                ])) as ArrayRef,
            ),
            (
                "accountId",
                Arc::new(StringArray::from(vec!["other"])) as ArrayRef,
            ),
            (
                "amount",
                Arc::new(arrow::array::Float64Array::from(vec![2.5])) as ArrayRef,
            ),
            (
                "alert",
                Arc::new(arrow::array::BooleanArray::from(vec![false])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let stats = stats_json(&foreign.schema(), std::slice::from_ref(&foreign));
        commit_foreign_file(&table, &foreign, Some(stats), 4).await;
        expected.push((
            FIRST_DAY * MICROS_PER_DAY + 7,
            "other".into(),
            Some(2.5f64.to_bits()),
            false,
        ));
        expected.sort();
        let options = OptimizeOptions {
            splice_min_group_rows: 1,
            ..options(1 << 20)
        };
        let report = optimize(&table, &options, &mut |_| {})
            .await
            .expect("optimize");
        assert_eq!((report.files_removed, report.files_added), (4, 1));
        assert_eq!(table_rows(&table).await, expected, "every row, once");
        let snapshot = table.existing_snapshot().await.expect("table");
        let add = snapshot.files.values().next().expect("a file");
        let bytes = fetch_data_file(&table, add).await.expect("fetch");
        let footer = ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .expect("footer");
        assert_eq!(footer.num_row_groups(), 1, "re-encoded");
        let batches = read_data_file(&table, add, &TestRow::arrow_schema())
            .await
            .expect("read");
        assert_eq!(
            add.stats.as_deref(),
            Some(stats_json(&TestRow::arrow_schema(), &batches).as_str())
        );
    });
}

#[test]
fn z_order_rewrites_every_file_into_target_sized_files_of_disjoint_ranges() {
    block_on(async {
        let (table, expected) = small_files(3, 1, 2_000).await;
        let snapshot = table.existing_snapshot().await.expect("table");
        let bytes: u64 = snapshot.files.values().map(file_size).sum();
        let options = OptimizeOptions {
            zorder_by: vec!["accountId".into()],
            ..options(bytes / 4 + 1)
        };
        let report = optimize(&table, &options, &mut |_| {})
            .await
            .expect("optimize");
        // Files end once their encoded size reaches the target (estimated from the
        // pages being built, which small files never flush: these end early).
        let target = options.target_file_size;
        assert_eq!(report.files_removed, 3);
        assert!((4..=8).contains(&report.files_added), "{report:?}");
        assert_eq!(table_rows(&table).await, expected);
        let snapshot = table.existing_snapshot().await.expect("table");
        let sizes: Vec<u64> = snapshot.files.values().map(file_size).collect();
        assert!(
            sizes.iter().all(|&s| s <= target),
            "{sizes:?}, target {target}"
        );
        assert!(
            sizes.iter().filter(|&&s| s >= target / 2).count() >= 3,
            "{sizes:?}, target {target}"
        );
        let mut ranges: Vec<(String, String)> = snapshot
            .files
            .values()
            .map(|add| {
                let stats: serde_json::Value =
                    serde_json::from_str(add.stats.as_deref().expect("stats")).expect("json");
                let bound = |b: &str| stats[b]["accountId"].as_str().expect("bound").to_owned();
                (bound("minValues"), bound("maxValues"))
            })
            .collect();
        ranges.sort();
        for pair in ranges.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "sorted by accountId: {ranges:?}");
        }
        let Some(Action::CommitInfo(info)) = table.read_commit(4).await.expect("read").pop() else {
            panic!("commitInfo last")
        };
        assert_eq!(
            info.operation_parameters.expect("parameters")["zOrderBy"],
            r#"["accountId"]"#
        );
    });
}

#[test]
fn z_order_in_little_memory_writes_the_same_files_as_in_memory() {
    block_on(async {
        // Three days of 6 files of 1,500 rows: each partition sorted in runs of a few
        // hundred rows on disk, against the same partitions sorted whole.
        let files = |table: DeltaTable| async move {
            let snapshot = table.existing_snapshot().await.expect("table");
            let mut files = Vec::new();
            for add in snapshot.files.values() {
                let mut rows = Vec::new();
                for batch in read_data_file(&table, add, &TestRow::arrow_schema())
                    .await
                    .expect("read")
                {
                    let dt = batch.column(0).as_primitive::<TimestampMicrosecondType>();
                    let account = batch.column(1).as_string::<i32>();
                    rows.extend(
                        (0..batch.num_rows()).map(|i| (dt.value(i), account.value(i).to_owned())),
                    );
                }
                files.push((add.partition_values.clone(), rows));
            }
            files.sort();
            files
        };
        let mut written = Vec::new();
        for memory in [DEFAULT_SORT_MEMORY, 16 << 10] {
            let (table, expected) = small_files(6, 3, 1_500).await;
            let snapshot = table.existing_snapshot().await.expect("table");
            let bytes: u64 = snapshot.files.values().map(file_size).sum();
            let options = OptimizeOptions {
                zorder_by: vec!["accountId".into(), "dt".into()],
                sort_memory: memory,
                ..options(bytes / 12 + 1)
            };
            let report = optimize(&table, &options, &mut |_| {})
                .await
                .expect("optimize");
            assert_eq!(report.partitions_compacted, 3);
            assert_eq!(table_rows(&table).await, expected);
            written.push(files(table).await);
        }
        assert!(written[0].len() >= 9, "{} files", written[0].len());
        assert_eq!(written[0], written[1]);
    });
}

#[test]
fn a_concurrent_compaction_of_a_file_read_gives_the_partition_up_without_a_trace() {
    block_on(async {
        let (table, _) = small_files(4, 2, 30).await;
        let before = stored_files(&table).await;
        let snapshot = table.existing_snapshot().await.expect("table");
        let plan = plan(&table, &snapshot, &options(1 << 20)).expect("plan");
        // Another writer removes one of the 2024-05-02 files first.
        let victim = snapshot
            .files
            .values()
            .find(|a| a.partition_values == day("2024-05-02"))
            .expect("a file");
        let remove = Action::Remove(Remove {
            path: victim.path.clone(),
            deletion_timestamp: Some(1),
            data_change: false,
            extended_file_metadata: None,
            partition_values: None,
            size: None,
            ..Default::default()
        });
        table.try_commit(5, &[remove]).await.expect("commit");

        let report = execute(&table, &plan, &options(1 << 20), &mut |_| {})
            .await
            .expect("execute");
        let [first, second] = report.partitions.as_slice() else {
            panic!("{report:?}")
        };
        // 2024-05-01 loses version 5, which does not touch its files: it commits at
        // 6. 2024-05-02 loses version 5 too, and gives up.
        assert!(
            matches!(
                first,
                PartitionOutcome::Compacted {
                    version: 6,
                    attempts: 2,
                    ..
                }
            ),
            "{first:?}"
        );
        let PartitionOutcome::GaveUp { partition, reason } = second else {
            panic!("{second:?}")
        };
        assert_eq!(partition, &day("2024-05-02"));
        assert_eq!(
            reason,
            &format!(
                "version 5 removed {}, one of the files this compaction rewrote",
                victim.path
            )
        );

        let snapshot = table.existing_snapshot().await.expect("table");
        assert_eq!(snapshot.version, 6);
        assert!(validate(&table).await.expect("validate").is_ok());
        // Only the first partition's new file was added to the store.
        let after = stored_files(&table).await;
        let added: Vec<&String> = after.difference(&before).collect();
        assert_eq!(added.len(), 1, "{added:?}");
        assert!(added[0].starts_with("date=2024-05-01/"), "{added:?}");
    });
}

#[test]
fn a_concurrent_blind_append_is_stepped_over_and_kept() {
    block_on(async {
        let (table, mut expected) = small_files(3, 1, 30).await;
        let snapshot = table.existing_snapshot().await.expect("table");
        let plan = plan(&table, &snapshot, &options(1 << 20)).expect("plan");
        let appended = rows(20, 0, 99);
        append(&table, &appended, "job-w9").await;
        expected.extend(appended.iter().map(as_row));
        expected.sort();

        let report = execute(&table, &plan, &options(1 << 20), &mut |_| {})
            .await
            .expect("execute");
        assert!(
            matches!(
                report.partitions[0],
                PartitionOutcome::Compacted {
                    version: 5,
                    attempts: 2,
                    removed: 3,
                    added: 1,
                    ..
                }
            ),
            "{report:?}"
        );
        assert_eq!(table_rows(&table).await, expected);
        let snapshot = table.existing_snapshot().await.expect("table");
        assert_eq!(
            snapshot.files.len(),
            2,
            "the compacted file and the appended one"
        );
        assert_eq!(snapshot.txn_version("job-w9"), Some(4));
        assert!(validate(&table).await.expect("validate").is_ok());
    });
}
