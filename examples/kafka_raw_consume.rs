//! The limit a Kafka source meets on this machine: rdkafka consumers reading every
//! partition of a topic from the start to its end, touching each value once and doing
//! nothing else — one consumer per partition, each on its own thread, as the Kafka
//! source reads (`per-partition`), or one consumer for all of them (`single`).
//! `scripts/kafka_bench.sh` compares the job's rate with it.
//!
//! `cargo run --release --example kafka_raw_consume -- BROKERS TOPIC single|per-partition`
//! prints one JSON line: `{"messages": n, "bytes": b, "seconds": s, "per_second": r}`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, mode] = args.as_slice() else {
        bail!("usage: kafka_raw_consume BROKERS TOPIC single|per-partition");
    };
    let partitions = partitions(brokers, topic)?;
    let started = Instant::now();
    let (messages, bytes) = match mode.as_str() {
        "single" => consume(brokers, topic, &partitions)?,
        "per-partition" => {
            let threads: Vec<_> = partitions
                .iter()
                .map(|&p| {
                    let (brokers, topic) = (brokers.clone(), topic.clone());
                    std::thread::spawn(move || consume(&brokers, &topic, &[p]))
                })
                .collect();
            let mut total = (0, 0);
            for thread in threads {
                let (m, b) = thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("a reader panicked"))??;
                total = (total.0 + m, total.1 + b);
            }
            total
        }
        other => bail!("mode {other}: single or per-partition"),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"messages\": {messages}, \"bytes\": {bytes}, \"seconds\": {seconds:.3}, \"per_second\": {:.0}}}",
        messages as f64 / seconds
    );
    Ok(())
}

fn consumer(brokers: &str) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "tidelake-raw-consume")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .context("a consumer")
}

/// The topic's partitions.
fn partitions(brokers: &str, topic: &str) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer(brokers)?
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .context("metadata")?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {topic} has no partitions on {brokers}");
    }
    Ok(partitions)
}

/// Reads `partitions` of `topic` to their ends with one consumer: messages and bytes.
fn consume(brokers: &str, topic: &str, partitions: &[i32]) -> anyhow::Result<(u64, u64)> {
    let consumer = consumer(brokers)?;
    let mut list = TopicPartitionList::new();
    for p in partitions {
        list.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut ended = BTreeSet::new();
    while ended.len() < partitions.len() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value = std::hint::black_box(message.payload().unwrap_or_default());
                messages += 1;
                bytes += value.len() as u64;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => bail!("reading {topic}: {e}"),
            None => {}
        }
    }
    Ok((messages, bytes))
}
