//! Kafka in and out against a real broker (Tansu on 127.0.0.1, [`KafkaBroker`]):
//! `tidelake produce` loads a CSV file into a 4-partition topic, a bounded run of the
//! topic on 1×2 and 2×2 writes what the CSV run writes and what the reference model
//! says; malformed values reach the dead letters with the topic, partition and offset
//! of their message (checked against the topic itself); an unbounded job follows a topic
//! being produced at 50 k events/s through three `kill -9`s and a broker restart and
//! keeps every record exactly once; an unreachable broker or a missing topic fails the
//! start, naming it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::checkpoints::{Kill, Layout, Running, outputs, random_kills, same_lines, signal};
use crate::kafka_broker::KafkaBroker;
use crate::moto::{BUCKET, MotoServer};
use crate::python::Python;
use crate::reference::{self, Tx};
use crate::support::{Rng, assert_exit, describe, group, read_alerts, read_lines, tidelake};

/// One message of a topic, as a plain consumer reads it.
#[derive(Clone, Debug)]
struct Record {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: BTreeMap<String, String>,
}

/// Every message of `topic` (all partitions, from the start to the current end).
fn read_topic(broker: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "tidelake-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        // Everything, aborted transactions' records too: the checks count copies.
        .set("isolation.level", "read_uncommitted")
        .create()
        .expect("a consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    assert!(!partitions.is_empty(), "topic {topic} has partitions");
    let mut list = TopicPartitionList::new();
    for p in &partitions {
        list.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let mut records = Vec::new();
    let mut at_end = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_end.len() < partitions.len() {
        assert!(Instant::now() < deadline, "reading {topic} took over 60 s");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => records.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                let value = h.value.map(String::from_utf8_lossy);
                                (h.key.to_owned(), value.unwrap_or_default().into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    records
}

/// The offsets group `group` has committed for `topic`, by partition.
fn committed_offsets(broker: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..4 {
        list.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// A CSV file of `lines` lines: time in order with many equal timestamps, ids of
/// several shapes (quoted ones with commas and quotes too), small→large pairs that
/// alert, and every kind of bad line. Returns the valid transactions (in file order)
/// and the bad lines.
fn write_input(path: &Path, lines: usize, seed: u64) -> (Vec<Tx>, Vec<String>) {
    let mut rng = Rng(seed);
    let mut ts = 1_717_200_000_000u64;
    let mut text = String::from("account_id,ts_millis,amount\n");
    let (mut txs, mut bad) = (Vec::new(), Vec::new());
    for i in 0..lines {
        ts += rng.below(3) * rng.below(7);
        let (account, field) = match rng.below(5) {
            0 => {
                let id = rng.below(5_000).to_string();
                (id.clone(), id)
            }
            1 => {
                let id = format!("card-{:012x}", rng.below(4_000));
                (id.clone(), id)
            }
            2 => {
                let id = format!("Ünïcode {}", rng.below(700));
                (id.clone(), id)
            }
            3 => {
                let id = format!("acct, \"{}\"", rng.below(300));
                (id.clone(), format!("\"{}\"", id.replace('"', "\"\"")))
            }
            _ => {
                let id = format!("{}{}", "z".repeat(50), rng.below(100));
                (id.clone(), id)
            }
        };
        let amount = match rng.below(100) {
            0..4 => format!("0.{:02}", rng.below(100)),
            4..8 => format!("{}.25", 501 + rng.below(2_000)),
            _ => format!("{}.{:02}", rng.below(500), rng.below(100)),
        };
        let line = match rng.below(500) {
            0 => Some("not a transaction at all".to_owned()),
            1 => Some(format!("{field},{ts},NaN")),
            2 => Some(format!(",{ts},{amount}")),
            3 => Some(format!("{field},yesterday,{amount}")),
            _ => None,
        };
        match line {
            Some(line) => {
                text.push_str(&line);
                bad.push(line);
            }
            None => {
                text.push_str(&format!("{field},{ts},{amount}"));
                txs.push(Tx {
                    account,
                    ts,
                    partition: 0,
                    seq: i as u64,
                    amount: amount.parse().expect("an amount"),
                });
            }
        }
        text.push('\n');
    }
    std::fs::write(path, text).expect("write input");
    (txs, bad)
}

/// The table rows the transactions should become, as
/// [`Python::transaction_lines`] prints them, with the reference model's alerts.
fn expected_rows(txs: &[Tx]) -> Vec<String> {
    let alerting: std::collections::BTreeSet<(String, u64)> = reference::alerts(txs)
        .into_iter()
        .map(|(account, large_ts, ..)| (account, large_ts))
        .collect();
    let mut rows: Vec<String> = txs
        .iter()
        .map(|t| {
            let alert = alerting.contains(&(t.account.clone(), t.ts)) && t.amount > 500.0;
            format!(
                "{}\t{}\t{}\t{alert}",
                t.account,
                t.ts,
                t.amount.to_bits() as i64
            )
        })
        .collect();
    rows.sort();
    rows
}

/// `tidelake produce` of `input` (CSV) into `topic`, with more flags; its summary.
fn produce(dir: &Path, broker: &str, topic: &str, input: &str, more: &[&str]) -> String {
    let mut flags = vec![
        "--topic-partitions",
        "4",
        "--source",
        "csv",
        "--input",
        input,
    ];
    flags.extend_from_slice(more);
    let output = run_produce(dir, broker, topic, &flags);
    assert_exit(&output, 0);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `tidelake produce` into `topic` with `flags`, run to its end.
fn run_produce(dir: &Path, broker: &str, topic: &str, flags: &[&str]) -> std::process::Output {
    let mut args = vec!["produce", "--kafka-brokers", broker, "--kafka-topic", topic];
    args.extend_from_slice(flags);
    tidelake(dir, &args)
}

/// The flags of a job reading `topic`.
fn kafka_job(broker: &str, topic: &str) -> Vec<String> {
    [
        "--source",
        "kafka",
        "--kafka-brokers",
        broker,
        "--kafka-topic",
        topic,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Runs `layout` with `job` as job id `id` to its end; asserts exit 0.
fn run_to_end(dir: &Path, layout: Layout, job: &[String], id: &str) {
    let mut args = layout.args();
    args.extend(job.iter().cloned());
    args.extend(outputs(id));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = tidelake(dir, &args);
    assert_exit(&output, 0);
}

#[test]
fn a_bounded_run_of_a_topic_writes_what_the_csv_run_and_the_reference_model_say() {
    let broker = KafkaBroker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (txs, bad) = write_input(&d.join("input.csv"), 1_000_000, 7);
    let summary = produce(d, &broker.address(), "tx", "input.csv", &[]);
    assert!(
        summary.contains(&format!(
            "produced {} transactions and {} lines",
            group(txs.len()),
            group(bad.len())
        )) && summary.contains("(4 partitions, created)"),
        "{summary}"
    );
    let want_rows = expected_rows(&txs);
    let want_alerts = reference::alerts(&txs);
    assert!(want_alerts.len() > 100, "the input raises alerts");
    let python = Python::find();

    let mut job = kafka_job(&broker.address(), "tx");
    job.push("--kafka-bounded".into());
    let csv_job: Vec<String> = ["--source", "csv", "--input", "input.csv"]
        .map(str::to_owned)
        .to_vec();
    for (layout, job, id) in [
        (Layout::Run(2), &job, "one"),
        (Layout::Launch(2, 2), &job, "cluster"),
        (Layout::Run(2), &csv_job, "csv"),
    ] {
        run_to_end(d, layout, job, id);
        let what = format!("{id} on {layout:?}");
        let mut alerts = read_alerts(&d.join(format!("{id}-alerts.jsonl")));
        alerts.sort();
        assert!(
            alerts == want_alerts,
            "{what}: alerts differ from the reference model"
        );
        let url = d.join(id).join("transactions").display().to_string();
        same_lines(
            &python.transaction_lines(&url),
            &want_rows,
            &what,
            "table rows",
        );
        let dead: Vec<Value> = read_lines(&d.join(format!("{id}-dead.jsonl")));
        let mut raws: Vec<String> = dead
            .iter()
            .map(|l| l["raw"].as_str().unwrap_or_default().to_owned())
            .collect();
        raws.sort();
        let mut want_bad = bad.clone();
        want_bad.sort();
        same_lines(&raws, &want_bad, &what, "dead letters");
    }
}

#[test]
fn malformed_values_go_to_the_dead_letters_with_their_topic_partition_and_offset() {
    let broker = KafkaBroker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (txs, bad) = write_input(&d.join("input.csv"), 20_000, 11);
    for format in ["csv", "json"] {
        let topic = format!("tx-{format}");
        produce(
            d,
            &broker.address(),
            &topic,
            "input.csv",
            &["--kafka-format", format],
        );
        let mut job = kafka_job(&broker.address(), &topic);
        job.extend(["--kafka-bounded", "--kafka-format", format].map(str::to_owned));
        run_to_end(d, Layout::Run(2), &job, format);

        let messages: BTreeMap<(i32, i64), Record> = read_topic(&broker.address(), &topic)
            .into_iter()
            .map(|r| ((r.partition, r.offset), r))
            .collect();
        assert_eq!(messages.len(), txs.len() + bad.len(), "{format}: the topic");
        // Valid ones are keyed by account id; bad lines are sent as they are.
        let keyed = messages.values().filter(|m| m.key.is_some()).count();
        assert_eq!(keyed, txs.len(), "{format}: keyed messages");
        let dead: Vec<Value> = read_lines(&d.join(format!("{format}-dead.jsonl")));
        assert_eq!(dead.len(), bad.len(), "{format}: dead letters");
        for letter in &dead {
            assert_eq!(letter["source"], topic.as_str(), "{letter}");
            let partition = letter["partition"].as_i64().expect("a partition") as i32;
            let offset = letter["position"].as_i64().expect("an offset");
            let message = messages.get(&(partition, offset)).unwrap_or_else(|| {
                panic!("{format}: no message at {partition}/{offset}: {letter}")
            });
            assert_eq!(
                letter["raw"].as_str().map(str::as_bytes),
                Some(message.value.as_slice()),
                "{format}: the dead letter holds its message's value"
            );
            assert!(message.key.is_none(), "{letter}");
            assert!(letter["detail"].as_str().is_some_and(|d| !d.is_empty()));
        }
        let mut alerts = read_alerts(&d.join(format!("{format}-alerts.jsonl")));
        alerts.sort();
        assert!(alerts == reference::alerts(&txs), "{format}: alerts");
    }
}

#[test]
fn an_unreachable_broker_or_a_missing_topic_fails_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let closed = format!("127.0.0.1:{}", crate::support::free_port());
    let started = Instant::now();
    let output = tidelake(
        d,
        &[
            "run",
            "--source",
            "kafka",
            "--kafka-brokers",
            &closed,
            "--kafka-topic",
            "tx",
            "--start-timeout",
            "2s",
            "--no-table",
        ],
    );
    assert_exit(&output, 1);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it did not hang"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot reach Kafka brokers {closed}")),
        "{}",
        describe(&output)
    );
    let output = run_produce(
        d,
        &closed,
        "tx",
        &["--count", "10", "--kafka-timeout", "2s"],
    );
    assert_exit(&output, 1);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&closed),
        "{}",
        describe(&output)
    );

    let broker = KafkaBroker::start();
    let output = tidelake(
        d,
        &[
            "run",
            "--source",
            "kafka",
            "--kafka-brokers",
            &broker.address(),
            "--kafka-topic",
            "missing",
            "--no-table",
        ],
    );
    assert_exit(&output, 2);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Kafka topic missing does not exist"),
        "{}",
        describe(&output)
    );
    // A flag of the Kafka source without it.
    let output = tidelake(d, &["run", "--kafka-topic", "tx", "--no-table"]);
    assert_exit(&output, 2);
}

/// The generator's flags for `count` transactions with fraud pairs.
fn generated(count: u64) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--seed",
        "5",
        "--accounts",
        "20000",
        "--fraud-every",
        "500",
        "--start",
        "2024-05-01T00:00:00Z",
        "--count",
    ]
    .map(str::to_owned)
    .to_vec();
    flags.push(count.to_string());
    flags
}

/// [`generated`] transactions at `rate` events/s into `topic`, in the background.
fn produce_generated(dir: &Path, broker: &str, topic: &str, count: u64, rate: u64) -> Running {
    let rate = rate.to_string();
    let mut args: Vec<String> = [
        "produce",
        "--kafka-brokers",
        broker,
        "--kafka-topic",
        topic,
        "--topic-partitions",
        "4",
        "--rate",
        &rate,
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(generated(count));
    Running::start(dir, &args, &[])
}

/// The same transactions straight from the generator: the uninterrupted reference.
fn generator_reference(dir: &Path, count: u64) {
    let mut job = generated(count);
    job.push("--no-checkpoints".into());
    run_to_end(dir, Layout::Run(2), &job, "ref");
}

/// `run` on 2 workers of `job` with outputs `outputs`, committing every second.
fn follow_args(job: &[String], outputs: Vec<String>) -> Vec<String> {
    let mut args = Layout::Run(2).args();
    args.extend(job.iter().cloned());
    args.extend(outputs);
    args.extend(["--commit-interval", "1s"].map(str::to_owned));
    args
}

/// Runs the unbounded job `args`, killing it per `kills` (while a producer writes), then
/// once more with `--kafka-bounded`, to the end of the topic, once `producer` is done.
/// The last killed run is killed no sooner than its first complete checkpoint, so the
/// run after it restores one however slow the machine. Returns the runs' logs.
fn follow_with_kills(
    dir: &Path,
    args: &[String],
    kills: &[Kill],
    producer: Running,
) -> Vec<String> {
    let checkpointed = |line: &str| line.contains("checkpoint") && line.contains("complete at");
    let mut logs = Vec::new();
    for (i, kill) in kills.iter().enumerate() {
        let Kill::After(delay, _) = kill else {
            unreachable!("kills at moments")
        };
        let mut running = Running::start(dir, args, &[]);
        let exited = running.watch(*delay, |_| false);
        assert!(exited.is_none(), "an unbounded run ended by itself");
        if i + 1 == kills.len() && !running.seen.iter().any(|l| checkpointed(l)) {
            let exited = running.watch(Duration::from_secs(60), checkpointed);
            assert!(exited.is_none(), "an unbounded run ended by itself");
            assert!(
                running.seen.iter().any(|l| checkpointed(l)),
                "no checkpoint in 60 s:\n{}",
                running.seen.join("\n")
            );
        }
        signal(running.pid(), "KILL");
        let (status, log) = running.finish();
        assert!(!status.success(), "a killed run exited 0:\n{log}");
        logs.push(log);
    }
    let (status, log) = producer.finish();
    assert!(status.success(), "produce failed:\n{log}");
    let mut last = args.to_vec();
    last.push("--kafka-bounded".into());
    let (status, log) = Running::start(dir, &last, &[]).finish();
    assert!(status.success(), "the last run failed:\n{log}");
    assert!(
        log.contains("restor"),
        "the last run restored a checkpoint:\n{log}"
    );
    logs.push(log);
    logs
}

/// Checks a job `id` that followed the topic wrote what `ref` wrote.
fn assert_like_reference(dir: &Path, id: &str, logs: &[String]) {
    let python = Python::find();
    let rows = |id: &str| {
        python.transaction_lines(&dir.join(id).join("transactions").display().to_string())
    };
    let lines = |id: &str| {
        let mut lines: Vec<String> =
            std::fs::read_to_string(dir.join(format!("{id}-alerts.jsonl")))
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
        lines.sort();
        lines
    };
    let want = rows("ref");
    let got = rows(id);
    if got != want {
        eprintln!("{id}: runs:\n{}", logs.join("\n----\n"));
    }
    same_lines(&got, &want, id, "table rows");
    let want_alerts = lines("ref");
    assert!(want_alerts.len() > 20, "the input raises alerts");
    same_lines(&lines(id), &want_alerts, id, "alerts");
    let dead = std::fs::read_to_string(dir.join(format!("{id}-dead.jsonl"))).unwrap_or_default();
    assert!(dead.is_empty(), "{id}: dead letters:\n{dead:.2000}");
}

#[test]
fn an_unbounded_job_killed_three_times_while_the_topic_grows_keeps_every_record_once() {
    const COUNT: u64 = 400_000;
    let broker = KafkaBroker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let producer = produce_generated(d, &broker.address(), "live", COUNT, 50_000);
    generator_reference(d, COUNT);
    let args = follow_args(&kafka_job(&broker.address(), "live"), outputs("killed"));
    let kills = random_kills(13, 3, 2_500);
    let logs = follow_with_kills(d, &args, &kills, producer);
    assert_like_reference(d, "killed", &logs);
    // The group (the job id) holds the offsets of the last complete checkpoint: the
    // topic's ends.
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for record in read_topic(&broker.address(), "live") {
        let end = ends.entry(record.partition).or_default();
        *end = (*end).max(record.offset + 1);
    }
    assert_eq!(committed_offsets(&broker.address(), "killed", "live"), ends);
}

/// The uninterrupted reference of what `topic` holds now: a bounded run of it with
/// no checkpoints, as job id `ref` (the bounded path itself is checked against the
/// reference model above).
fn topic_reference(dir: &Path, broker: &str, topic: &str) {
    let mut job = kafka_job(broker, topic);
    job.extend(["--kafka-bounded", "--no-checkpoints"].map(str::to_owned));
    run_to_end(dir, Layout::Run(2), &job, "ref");
}

/// Waits until job `id` has committed to its transactions table.
fn wait_for_a_commit(dir: &Path, id: &str, running: &mut Running) {
    let log = dir.join(id).join("transactions/_delta_log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.join("00000000000000000001.json").exists() {
        assert!(Instant::now() < deadline, "{id} committed nothing in 60 s");
        assert!(
            running
                .watch(Duration::from_millis(50), |_| false)
                .is_none(),
            "{id} ended"
        );
    }
}

#[test]
fn a_broker_restart_mid_run_is_waited_for_and_nothing_is_lost() {
    const COUNT: u64 = 300_000;
    let moto = MotoServer::start();
    let mut broker = KafkaBroker::start_with(&format!("s3://{BUCKET}/"), moto.env());
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut producer = produce_generated(d, &broker.address(), "live", COUNT, 50_000);
    assert!(producer.watch(Duration::from_secs(1), |_| false).is_none());

    // The job follows the topic; the broker goes away for 3 s and comes back (its
    // topics on S3): the job waits, saying so, and reads on; so does produce.
    let mut args = Layout::Run(2).args();
    args.extend(kafka_job(&broker.address(), "live"));
    args.extend(outputs("restart"));
    args.extend(["--commit-interval", "1s"].map(str::to_owned));
    let mut running = Running::start(d, &args, &[]);
    wait_for_a_commit(d, "restart", &mut running);
    broker.kill();
    std::thread::sleep(Duration::from_secs(3));
    broker.restart();
    let (status, log) = producer.finish();
    assert!(status.success(), "produce failed:\n{log}");
    // A stop takes a savepoint; a bounded run from it reads to the end of the topic.
    assert!(running.watch(Duration::from_secs(3), |_| false).is_none());
    signal(running.pid(), "INT");
    let (status, log) = running.finish();
    assert!(status.success(), "the stopped run failed:\n{log}");
    assert!(
        log.contains("waiting for the brokers") && log.contains("the brokers answer again"),
        "{log}"
    );
    let mut logs = vec![log];
    args.push("--kafka-bounded".into());
    let (status, log) = Running::start(d, &args, &[]).finish();
    assert!(status.success(), "the last run failed:\n{log}");
    logs.push(log);
    // A broker killed with -9 may lose what it acknowledged last: the reference is what
    // the topic holds.
    topic_reference(d, &broker.address(), "live");
    assert_like_reference(d, "restart", &logs);

    // Gone for longer than --kafka-timeout: the job fails, saying so.
    let mut args = Layout::Run(2).args();
    args.extend(kafka_job(&broker.address(), "live"));
    args.extend(outputs("gone"));
    args.extend(["--kafka-timeout", "3s"].map(str::to_owned));
    let mut running = Running::start(d, &args, &[]);
    wait_for_a_commit(d, "gone", &mut running);
    broker.kill();
    let started = Instant::now();
    let exited = running.watch(Duration::from_secs(120), |_| false);
    assert!(
        exited.is_some(),
        "the job did not end within 120 s of the broker's end"
    );
    let (status, log) = running.finish();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("--kafka-timeout"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(60), "{log}");
}

/// What a Kafka sink wrote, by its headers: each `(worker, epoch, seq)` once with its
/// value, after checking that every copy of it (an aborted transaction's records stay
/// visible on Tansu) has the same value and key, that the key is the value's account
/// id, and that no epoch was written more often than `runs` (one copy per run that may
/// have died before committing it, and one committed).
fn sink_records(records: &[Record], job: &str, runs: usize) -> Vec<Value> {
    let mut by_seq: BTreeMap<(u64, u64, u64), (&Record, usize)> = BTreeMap::new();
    for record in records {
        let h = &record.headers;
        assert_eq!(
            h.get("tidelake-job").map(String::as_str),
            Some(job),
            "{h:?}"
        );
        let number = |name: &str| -> u64 {
            h.get(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("header {name} in {h:?}"))
        };
        let id = (
            number("tidelake-worker"),
            number("tidelake-epoch"),
            number("tidelake-seq"),
        );
        let entry = by_seq.entry(id).or_insert((record, 0));
        assert_eq!(entry.0.value, record.value, "copies of {id:?} differ");
        assert_eq!(entry.0.key, record.key, "copies of {id:?} differ");
        entry.1 += 1;
    }
    let most = by_seq
        .values()
        .map(|(_, copies)| *copies)
        .max()
        .unwrap_or(0);
    assert!(
        most <= runs,
        "an epoch was written {most} times in {runs} runs"
    );
    by_seq
        .values()
        .map(|(record, _)| {
            let value: Value = serde_json::from_slice(&record.value).expect("a JSON value");
            let account = value["accountId"]
                .as_str()
                .expect("an accountId")
                .to_owned();
            assert_eq!(record.key.as_deref(), Some(account.as_bytes()), "{value}");
            value
        })
        .collect()
}

#[test]
fn the_kafka_sinks_write_every_alert_and_transaction_once_through_kills() {
    const COUNT: u64 = 300_000;
    let broker = KafkaBroker::start();
    let b = broker.address();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let producer = produce_generated(d, &b, "live", COUNT, 50_000);
    generator_reference(d, COUNT);
    let sinks: Vec<String> = [
        "--job-id",
        "sink",
        "--alerts",
        &format!("kafka://{b}/alerts-out"),
        "--transactions-topic",
        &format!("kafka://{b}/tx-out"),
        "--table",
        "sink/transactions",
        "--dead-letters",
        "sink-dead.jsonl",
        "--quiet",
    ]
    .map(str::to_owned)
    .to_vec();
    let args = follow_args(&kafka_job(&b, "live"), sinks);
    let kills = random_kills(29, 3, 2_500);
    let logs = follow_with_kills(d, &args, &kills, producer);
    let runs = logs.len();
    let last = logs.last().map(String::as_str).unwrap_or_default();
    assert!(
        last.contains("\n  kafka: "),
        "the summary counts the Kafka transactions:\n{last}"
    );

    // Alerts: those of the uninterrupted reference, each once.
    let alerts = sink_records(&read_topic(&b, "alerts-out"), "sink", runs);
    let mut got: Vec<String> = alerts.iter().map(Value::to_string).collect();
    got.sort();
    let mut want: Vec<String> = std::fs::read_to_string(d.join("ref-alerts.jsonl"))
        .expect("the reference's alerts")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON").to_string())
        .collect();
    want.sort();
    assert!(want.len() > 20, "the input raises alerts");
    same_lines(&got, &want, "alerts topic", "alerts");

    // Transactions: every row of the reference's table, each once, with its verdict.
    let rows = sink_records(&read_topic(&b, "tx-out"), "sink", runs);
    let mut got: Vec<String> = rows
        .iter()
        .map(|v| {
            let amount = v["amount"].as_f64().expect("an amount");
            format!(
                "{}\t{}\t{}\t{}",
                v["accountId"].as_str().unwrap_or_default(),
                v["ts"].as_u64().expect("a ts"),
                amount.to_bits() as i64,
                v["alert"].as_bool().expect("an alert flag")
            )
        })
        .collect();
    got.sort();
    let python = Python::find();
    let want = python.transaction_lines(&d.join("ref/transactions").display().to_string());
    same_lines(&got, &want, "transactions topic", "rows");
}

/// `--kafka-start`: `latest` reads only what comes after the start (a bounded run:
/// nothing), a time reads from the first message produced at or after it.
#[test]
fn kafka_start_latest_and_a_time_choose_where_partitions_start() {
    let broker = KafkaBroker::start();
    let b = broker.address();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let produce_count = |count: &str, seed: &str| {
        let output = run_produce(d, &b, "tx", &["--count", count, "--seed", seed]);
        assert_exit(&output, 0);
    };
    produce_count("3000", "1");
    std::thread::sleep(Duration::from_millis(1_100));
    let between = chrono_now_rfc3339();
    std::thread::sleep(Duration::from_millis(1_100));
    produce_count("2000", "2");
    let events = |start: &str, id: &str| -> u64 {
        let mut job = kafka_job(&b, "tx");
        job.extend(["--kafka-bounded", "--kafka-start", start].map(str::to_owned));
        run_to_end(d, Layout::Run(2), &job, id);
        let text = std::fs::read_to_string(d.join(format!("{id}-report.json"))).expect("report");
        let report: Value = serde_json::from_str(&text).expect("JSON");
        report["totals"]["events"].as_u64().expect("events")
    };
    assert_eq!(events("earliest", "earliest"), 5_000);
    assert_eq!(events("latest", "latest"), 0);
    assert_eq!(events(&between, "time"), 2_000);
}

/// Now as RFC 3339 with milliseconds.
fn chrono_now_rfc3339() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    crate::support::rfc3339_millis(ms)
}

/// A partition with no message does not stall an unbounded job: after
/// `--idle-timeout` it stops holding the watermark back and epochs commit.
#[test]
fn an_empty_partition_does_not_stall_an_unbounded_job() {
    let broker = KafkaBroker::start();
    let b = broker.address();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    create_topic(d, &b, "tx", 4);
    // Partitions 0 to 2 get a minute of transactions; partition 3 none.
    let start = 1_717_200_000_000u64;
    send_to_partitions(
        &b,
        "tx",
        (0..6_000u64).map(|i| {
            let value = format!("acct-{},{},{}.5", i % 50, start + i * 10, i % 700);
            ((i % 3) as i32, value)
        }),
    );
    let mut args = Layout::Run(2).args();
    args.extend(kafka_job(&b, "tx"));
    args.extend(outputs("idle"));
    args.extend(["--idle-timeout", "1s", "--commit-interval", "1s"].map(str::to_owned));
    let mut running = Running::start(d, &args, &[]);
    wait_for_a_commit(d, "idle", &mut running);
    signal(running.pid(), "INT");
    let (status, log) = running.finish();
    assert!(status.success(), "{log}");
}

/// Creates `topic` with `partitions` partitions (`tidelake produce` of nothing).
pub(crate) fn create_topic(dir: &Path, broker: &str, topic: &str, partitions: u32) {
    let partitions = partitions.to_string();
    let flags = ["--count", "0", "--topic-partitions", &partitions];
    assert_exit(&run_produce(dir, broker, topic, &flags), 0);
}

/// Sends each `(partition, value)` to `topic`, unkeyed, in order, and waits until all
/// are acknowledged.
pub(crate) fn send_to_partitions(
    broker: &str,
    topic: &str,
    messages: impl IntoIterator<Item = (i32, String)>,
) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .expect("a producer");
    for (partition, value) in messages {
        let record = BaseRecord::<(), str>::to(topic)
            .partition(partition)
            .payload(&value);
        producer.send(record).map_err(|(e, _)| e).expect("send");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
}
