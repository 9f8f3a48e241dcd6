//! Alert latency through Kafka, end to end: from a transaction's message being produced
//! to the alert it raises arriving on the alerts topic. `scripts/kafka_bench.sh` runs
//! it while `tidelake produce` writes transactions at a fixed rate and a job follows the
//! topic with `--alerts kafka://…`.
//!
//! `cargo run --release --example kafka_alert_latency -- BROKERS INPUT ALERTS SECONDS`
//! reads ALERTS (`read_committed`, from its end) for SECONDS, noting when each alert
//! arrives; then reads INPUT for the message timestamps (set by the producer when it
//! sent them) of the large transactions that raised them, and prints one JSON line:
//! `{"alerts": n, "p50_ms": …, "p99_ms": …, "max_ms": …}` over the alerts whose large
//! transaction it found.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, input, alerts, seconds] = args.as_slice() else {
        bail!("usage: kafka_alert_latency BROKERS INPUT ALERTS SECONDS");
    };
    let seconds: u64 = seconds.parse().context("SECONDS")?;
    // (account, ts of the large transaction) → when the alert arrived (ms).
    let mut arrived: HashMap<(String, u64), u64> = HashMap::new();
    let consumer = assigned(brokers, alerts, Offset::End, false)?;
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        if let Some(message) = consumer.poll(Duration::from_millis(50)) {
            let message = message.context("reading the alerts")?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
            let alert: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap_or_default())?;
            let account = alert["accountId"].as_str().unwrap_or_default().to_owned();
            let ts = alert["ts"].as_u64().unwrap_or_default();
            arrived.entry((account, ts)).or_insert(now);
        }
    }
    // When each large transaction was produced: its message's timestamp.
    let consumer = assigned(brokers, input, Offset::Beginning, true)?;
    let partitions = consumer.assignment()?.count();
    let mut ended = BTreeSet::new();
    let mut latencies = Vec::new();
    while ended.len() < partitions {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value = std::str::from_utf8(message.payload().unwrap_or_default())?;
                let mut fields = value.split(',');
                let (Some(account), Some(ts), Some(amount)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                // The large transaction that raised the alert (only the first, if an
                // account has several at that ms).
                if amount.parse::<f64>().unwrap_or_default() <= 500.0 {
                    continue;
                }
                let key = (account.to_owned(), ts.parse().unwrap_or_default());
                if let (Some(at), Some(produced)) =
                    (arrived.remove(&key), message.timestamp().to_millis())
                {
                    latencies.push(at.saturating_sub(produced as u64));
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => bail!("reading {input}: {e}"),
            None => {}
        }
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"alerts\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}}}",
        latencies.len(),
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or(0)
    );
    Ok(())
}

/// A consumer of every partition of `topic` from `from`.
fn assigned(brokers: &str, topic: &str, from: Offset, eof: bool) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "tidelake-alert-latency")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", if eof { "true" } else { "false" })
        .create()
        .context("a consumer")?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let mut list = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        list.add_partition_offset(topic, partition.id(), from)?;
    }
    if list.count() == 0 {
        bail!("topic {topic} has no partitions on {brokers}");
    }
    consumer.assign(&list)?;
    Ok(consumer)
}
