//! The hot paths around the fraud operator, per record: key routing, CSV parsing (one
//! split and 16), the exchange's serialization between processes, the keyed store of 1 M
//! accounts, Arrow building + Parquet encoding of table rows, one
//! Delta commit on local disk, 200 commits by 2 workers to one table, opening a table of
//! 10 000 versions (tidelake's own replay against the Delta Kernel's), and Z-ordering
//! rows in memory and through runs on disk.
//!
//! `cargo bench --bench hot_paths`; throughput is reported per element (record, line or
//! commit).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use arrow::record_batch::RecordBatch;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use object_store::memory::InMemory;
use tidelake_operators::event::Event;
use tidelake_operators::fraud::{FraudState, SmallTransaction};
use tidelake_operators::store::KeyedStore;
use tidelake_operators::{AccountId, EnrichedTransaction, StableHash, Transaction};
use tidelake_runtime::sources::csv::CsvSource;
use tidelake_runtime::sources::{Emitter, ReadBatch, ReadStatus, RuleTime, Source, Watermark};
use tidelake_runtime::transactions_table::TransactionRow;
use tidelake_sinks::delta::files::commit::{CheckpointPolicy, CommitOptions, EpochCommitter};
use tidelake_sinks::delta::maintenance::external_sort::ExternalSort;
use tidelake_sinks::delta::maintenance::zorder::{ColumnSample, SAMPLE_SIZE, ZorderKeys};
use tidelake_sinks::delta::protocol::kernel::read_snapshot;
use tidelake_sinks::delta::{Add, DeltaTable, Schema};
use tidelake_sinks::parquet::{ArrowRows, DataFileWriter, WriterOptions};

const ROWS: u64 = 100_000;
const ACCOUNTS: u64 = 100_000;

/// A deterministic stream of pseudo-random numbers (xorshift).
fn numbers() -> impl FnMut() -> u64 {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

fn rows() -> Vec<TransactionRow> {
    let mut next = numbers();
    (0..ROWS)
        .map(|i| {
            TransactionRow(EnrichedTransaction {
                account_id: AccountId::from((next() % ACCOUNTS).to_string()),
                ts: 1_700_000_000_000 + i / 100,
                amount: (next() % 100_000) as f64 / 100.0,
                alert: next().is_multiple_of(1000),
            })
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// XXH3 of account ids, as the exchange to the fraud operator routes records.
fn key_routing(c: &mut Criterion) {
    let keys: Vec<AccountId> = rows().into_iter().map(|r| r.0.account_id).collect();
    let mut group = c.benchmark_group("key_routing");
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("xxh3_account_id", |b| {
        b.iter(|| keys.iter().fold(0u64, |acc, k| acc ^ k.stable_hash()))
    });
    group.finish();
}

/// The rows as CSV lines `account_id,ts_millis,amount`.
fn csv_text() -> String {
    rows()
        .iter()
        .map(|r| format!("{},{},{:.2}\n", r.0.account_id, r.0.ts, r.0.amount))
        .collect()
}

/// Parsing CSV lines `account_id,ts_millis,amount` into transactions.
fn csv_parsing(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tx.csv");
    let text = csv_text();
    std::fs::write(&path, text).expect("write");
    let source = CsvSource::new(&[path.display().to_string()], u64::MAX).expect("source");
    let mut group = c.benchmark_group("csv_parsing");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(20);
    group.bench_function("100k_lines", |b| {
        b.iter(|| {
            let mut reader = source.open(0).expect("open");
            let mut watermark = Watermark::new(0);
            let mut batch = ReadBatch::default();
            loop {
                let name = "tx.csv";
                let mut emit =
                    Emitter::new(name, 0, RuleTime::Event, &mut watermark, 0, 1, &mut batch);
                if let ReadStatus::Done = reader.read(4096, &mut emit).expect("read") {
                    break;
                }
            }
            batch.events.len()
        })
    });
    group.finish();
}

/// The CSV file of `csv_parsing` split 16 ways: planning the splits and finding each
/// one's first line (`plan`), and reading every split to its end (`read`, against the
/// one split of `csv_parsing`).
fn csv_splits(c: &mut Criterion) {
    const SPLITS: u64 = 16;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tx.csv");
    let text = csv_text();
    let split_size = (text.len() as u64).div_ceil(SPLITS);
    std::fs::write(&path, text).expect("write");
    let inputs = [path.display().to_string()];
    let mut group = c.benchmark_group("csv_splits");
    group.sample_size(20);
    group.bench_function("plan_16_splits", |b| {
        b.iter(|| {
            let source = CsvSource::new(&inputs, split_size).expect("source");
            let readers: Vec<_> = (0..source.partitions())
                .map(|p| source.open(p).expect("open"))
                .collect();
            readers.len()
        })
    });
    let source = CsvSource::new(&inputs, split_size).expect("source");
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("read_16_splits", |b| {
        b.iter(|| {
            let mut events = 0;
            for partition in 0..source.partitions() {
                let mut reader = source.open(partition).expect("open");
                let mut watermark = Watermark::new(0);
                let mut batch = ReadBatch::default();
                loop {
                    let mut emit = Emitter::new(
                        "tx.csv",
                        partition,
                        RuleTime::Event,
                        &mut watermark,
                        0,
                        1,
                        &mut batch,
                    );
                    if let ReadStatus::Done = reader.read(4096, &mut emit).expect("read") {
                        break;
                    }
                }
                events += batch.events.len();
            }
            assert_eq!(events as u64, ROWS);
            events
        })
    });
    group.finish();
}

/// What crosses the exchange between processes: a batch of 1,024 events of
/// transactions, serialized with bincode (as timely does) and read back.
fn exchange_serialization(c: &mut Criterion) {
    const BATCH: usize = 1024;
    let events: Vec<Event<Transaction>> = rows()
        .into_iter()
        .take(BATCH)
        .enumerate()
        .map(|(i, r)| {
            let record = Transaction::new(&r.0.account_id, r.0.ts, r.0.amount);
            Event::new(r.0.ts, 3, i as u64, record)
        })
        .collect();
    let bytes = bincode::serialize(&events).expect("serialize");
    let mut group = c.benchmark_group("exchange_serialization");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("bincode_serialize_1024_events", |b| {
        let mut buffer = Vec::with_capacity(bytes.len());
        b.iter(|| {
            buffer.clear();
            bincode::serialize_into(&mut buffer, &events).expect("serialize");
            buffer.len()
        })
    });
    group.bench_function("bincode_deserialize_1024_events", |b| {
        b.iter(|| {
            let back: Vec<Event<Transaction>> = bincode::deserialize(&bytes).expect("deserialize");
            back.len()
        })
    });
    group.finish();
}

/// Table rows → Arrow builders → Parquet (zstd, dictionary) → an in-memory store.
fn parquet_encoding(c: &mut Criterion) {
    let rows = rows();
    let runtime = runtime();
    let mut group = c.benchmark_group("parquet_encoding");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(20);
    group.bench_function("100k_transaction_rows", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let store = Arc::new(InMemory::new());
                let mut writer = DataFileWriter::<TransactionRow>::new(
                    store,
                    Default::default(),
                    0,
                    WriterOptions::default(),
                )
                .expect("writer");
                writer.write(&rows).await.expect("write");
                writer.finish().await.expect("finish").len()
            })
        })
    });
    group.finish();
}

/// A new table of transactions in a temporary directory, and a committer to it that
/// checkpoints by `checkpoints`.
fn new_table(
    runtime: &tokio::runtime::Runtime,
    checkpoints: CheckpointPolicy,
) -> (tempfile::TempDir, DeltaTable, EpochCommitter) {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = DeltaTable::open_url(&dir.path().display().to_string()).expect("open");
    let snapshot = runtime
        .block_on(table.create_or_open(
            &Schema::of_rows::<TransactionRow>(),
            TransactionRow::partition_columns(),
            Default::default(),
            "bench",
        ))
        .expect("create");
    let options = CommitOptions {
        checkpoints,
        ..CommitOptions::default()
    };
    let committer = EpochCommitter::new(table.clone(), "bench-w0", &snapshot, options);
    (dir, table, committer)
}

/// One streaming commit (an add, the txn and commitInfo) to a table on local disk.
fn delta_commit(c: &mut Criterion) {
    let runtime = runtime();
    // Checkpoints are their own cost; this measures the commit.
    let (_dir, _, mut committer) = new_table(&runtime, CheckpointPolicy::Off);
    let mut epoch = 0u64;
    let mut group = c.benchmark_group("delta_commit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("local_disk", |b| {
        b.iter_batched(
            || {
                epoch += 1;
                (epoch, add(epoch))
            },
            |(epoch, add)| runtime.block_on(committer.commit(epoch, vec![add])),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// 200 streaming commits by 2 workers to one new table on local disk, each worker on its
/// own thread with its own appId, as `tidelake run --workers 2` commits: 100 epochs each,
/// with the lost races re-read and retried, and a checkpoint every 10 versions.
fn delta_commit_two_workers(c: &mut Criterion) {
    const EPOCHS: u64 = 100;
    let runtime = runtime();
    let mut group = c.benchmark_group("delta_commit_200_by_2_workers");
    group.sample_size(20);
    group.throughput(Throughput::Elements(2 * EPOCHS));
    group.bench_function("local_disk", |b| {
        b.iter_batched(
            || {
                let (dir, table, first) = new_table(&runtime, CheckpointPolicy::EveryVersions(10));
                let snapshot = runtime
                    .block_on(table.snapshot())
                    .expect("load")
                    .expect("a table");
                let second =
                    EpochCommitter::new(table, "bench-w1", &snapshot, CommitOptions::default());
                (dir, [first, second])
            },
            |(dir, committers)| {
                std::thread::scope(|scope| {
                    for (worker, mut committer) in committers.into_iter().enumerate() {
                        scope.spawn(move || {
                            let worker_runtime = self::runtime();
                            for epoch in 1..=EPOCHS {
                                let add = add(epoch * 2 + worker as u64);
                                worker_runtime
                                    .block_on(committer.commit(epoch, vec![add]))
                                    .expect("commit");
                            }
                        });
                    }
                });
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Opening a local table of 10 000 versions, one add each, with a checkpoint
/// every 100: the writers' replay (`DeltaTable::snapshot`, tidelake's own) and the
/// readers' (`kernel::read_snapshot`, the Delta Kernel's).
fn table_open(c: &mut Criterion) {
    const OPEN_VERSIONS: u64 = 10_000;
    let runtime = runtime();
    let (_dir, table, mut committer) = new_table(&runtime, CheckpointPolicy::EveryVersions(100));
    for epoch in 1..OPEN_VERSIONS {
        runtime
            .block_on(committer.commit(epoch, vec![add(epoch)]))
            .expect("commit");
    }
    let mut group = c.benchmark_group("table_open_10k_versions");
    group.sample_size(20);
    group.bench_function("tidelake_replay", |b| {
        b.iter(|| runtime.block_on(table.snapshot()).expect("load"))
    });
    group.bench_function("delta_kernel", |b| {
        b.iter(|| runtime.block_on(read_snapshot(&table, None)).expect("read"))
    });
    group.finish();
}

fn add(n: u64) -> Add {
    Add {
        path: format!("date=2024-05-01/part-00000-{n}.parquet"),
        partition_values: [("date".to_owned(), Some("2024-05-01".to_owned()))].into(),
        size: 1000,
        modification_time: 1,
        data_change: true,
        stats: Some(r#"{"numRecords":1}"#.to_owned()),
        tags: None,
        ..Default::default()
    }
}

/// The fraud rule's keyed store of 1 M accounts, each holding a flag and its timer: one
/// element is an account's next small transaction (its timer deleted, a later one
/// registered), and the timers that came due fired, as in the 1 M-accounts bench.
fn keyed_store(c: &mut Criterion) {
    const KEYS: u64 = 1_000_000;
    const WINDOW: u64 = 60_000;
    let keys: Vec<AccountId> = (0..KEYS)
        .map(|i| AccountId::from(format!("acct_{i:06}")))
        .collect();
    let mut store = KeyedStore::<AccountId, FraudState>::default();
    let small = |store: &mut KeyedStore<AccountId, FraudState>, key: &AccountId, time: u64| {
        store.entry(key).run(|_, state, mut timers| {
            if state.take_flag().is_some() {
                timers.delete_all();
            }
            state.set_flag(SmallTransaction {
                ts: time,
                amount: 0.5,
            });
            timers.register(time + WINDOW);
        })
    };
    for (time, key) in keys.iter().enumerate() {
        small(&mut store, key, time as u64 / 1_000);
    }
    let mut next = numbers();
    let mut time = KEYS / 1_000;
    let mut group = c.benchmark_group("keyed_store");
    group.throughput(Throughput::Elements(1));
    group.bench_function("small_transaction_1m_accounts", |b| {
        b.iter(|| {
            time += 1;
            let key = &keys[(next() % KEYS) as usize];
            small(&mut store, key, time / 1_000);
            while let Some((_, due)) = store.pop_timer_before(time / 1_000) {
                due.run(|_, state, _| state.take_flag());
            }
        })
    });
    group.finish();
}

/// Z-ordering 1 M rows by two columns (11-character account ids over 100 k accounts and
/// timestamps): sampling, keying and sorting, in memory and in 16 MiB runs on disk.
fn zorder_sort(c: &mut Criterion) {
    const ROWS: usize = 1_000_000;
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("accountId", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
    ]));
    let mut next = numbers();
    let batches: Vec<RecordBatch> = (0..ROWS / 8192 + 1)
        .map(|_| {
            let ids: Vec<String> = (0..8192)
                .map(|_| format!("acct_{:06}", next() % 100_000))
                .collect();
            let ts: Vec<i64> = (0..8192).map(|_| (next() % 86_400_000) as i64).collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(Int64Array::from(ts)),
            ];
            RecordBatch::try_new(schema.clone(), columns).expect("batch")
        })
        .collect();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let spill = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("zorder_sort");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(10);
    for (name, memory) in [("in_memory", usize::MAX), ("runs_of_16mib", 16 << 20)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut samples: Vec<ColumnSample> = schema
                    .fields()
                    .iter()
                    .map(|f| ColumnSample::new(f.data_type(), SAMPLE_SIZE).expect("sample"))
                    .collect();
                for batch in &batches {
                    for (sample, column) in samples.iter_mut().zip(batch.columns()) {
                        sample.add(column).expect("add");
                    }
                }
                let keys = ZorderKeys::new(samples);
                let mut sort =
                    ExternalSort::new(schema.clone(), keys.width(), memory, spill.path());
                for batch in &batches {
                    let row_keys = keys.keys(batch.columns()).expect("keys");
                    sort.push(batch.clone(), row_keys).expect("push");
                }
                sort.finish()
                    .expect("finish")
                    .map(|b| b.expect("batch").num_rows())
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    key_routing,
    csv_parsing,
    csv_splits,
    exchange_serialization,
    keyed_store,
    parquet_encoding,
    delta_commit,
    delta_commit_two_workers,
    table_open,
    zorder_sort
);
criterion_main!(benches);
