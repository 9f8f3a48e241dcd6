//! `tidelake produce`: loads transactions from a source (the generator, CSV or
//! JSON-lines files) into a Kafka topic, as the seed's Flink `FraudDetectionJob` does
//! with its `KafkaSink`: one message per transaction, keyed by account id (so an
//! account's transactions keep their order in one partition, as with Java clients'
//! murmur2 partitioner), its value in the CSV or JSON format the Kafka source reads.
//! The source's partitions are merged by event time (a file read whole is one
//! partition, so its order is kept; the generator's parallel partitions come out in
//! time order).
//!
//! A file line that is not a valid transaction is sent as it is, so the job reading the
//! topic puts it in its dead letters with the topic, partition and offset; the report
//! counts them. The producer is idempotent: a retried send is not written twice.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::{KafkaError, KafkaFormat, KafkaRow, client_config, ensure_topic};
use crate::sources::{
    Emitter, PartitionReader, ReadBatch, ReadStatus, RuleTime, Source, Watermark,
};

/// Where `produce` writes.
#[derive(Clone, Debug)]
pub struct ProduceConfig {
    /// `host:port[,…]`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// How values are written.
    pub format: KafkaFormat,
    /// Partitions of the topic if `produce` creates it (it does when it does not exist).
    pub topic_partitions: u32,
    /// More librdkafka settings.
    pub options: Vec<(String, String)>,
    /// How long the brokers may take to answer.
    pub timeout: Duration,
}

/// What `produce` wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProduceReport {
    /// Valid transactions sent.
    pub records: u64,
    /// Lines that were not valid transactions, sent as they are.
    pub invalid: u64,
    /// Bytes of message values.
    pub bytes: u64,
    /// The topic's partitions.
    pub partitions: usize,
    /// Whether `produce` created the topic.
    pub created: bool,
    /// Seconds from the first send to the last acknowledgement.
    pub seconds: f64,
}

/// Progress while producing.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProduceProgress {
    /// Messages handed to the client so far.
    pub sent: u64,
    /// Messages the brokers have acknowledged.
    pub acknowledged: u64,
}

/// What can stop `produce`.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The brokers or the topic.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The source could not be read.
    #[error(transparent)]
    Source(#[from] crate::sources::SourceError),
    /// A message was not written.
    #[error("writing to Kafka topic {topic}: {detail}")]
    Delivery {
        /// The topic.
        topic: String,
        /// The first failure.
        detail: String,
    },
}

/// Counts acknowledgements and keeps the first failure.
#[derive(Default)]
struct Deliveries {
    state: Mutex<(u64, Option<String>)>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        super::log_client(level, facility, message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        super::client_error(&error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => state.0 += 1,
            Err((e, _)) => {
                state.1.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

impl Deliveries {
    fn get(&self) -> (u64, Option<String>) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads every partition of `source` and writes its records to the topic; calls
/// `progress` now and then. Returns once every message is acknowledged.
pub fn produce(
    source: &dyn Source,
    config: &ProduceConfig,
    progress: &mut dyn FnMut(ProduceProgress),
) -> Result<ProduceReport, ProduceError> {
    let (partitions, created) = ensure_topic(
        &config.brokers,
        &config.options,
        &config.topic,
        config.topic_partitions,
        config.timeout,
    )?;
    let mut client = client_config(&config.brokers, &config.options);
    client
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            config.timeout.as_millis().max(1).to_string(),
        );
    let producer: BaseProducer<Deliveries> = client
        .create_with_context(Deliveries::default())
        .map_err(|e| KafkaError::Refused(format!("producer for {}: {e}", config.brokers)))?;
    let mut partitions_left: Vec<Pending> = (0..source.partitions())
        .map(|p| Ok(Pending::new(p, source.open(p)?)))
        .collect::<Result<_, crate::sources::SourceError>>()?;
    let mut report = ProduceReport {
        partitions,
        created,
        ..ProduceReport::default()
    };
    let started = Instant::now();
    let mut shown = Instant::now();
    let mut sent = 0u64;
    loop {
        // Every partition's next message must be known to pick the earliest.
        let mut waiting = false;
        for pending in &mut partitions_left {
            waiting |= !pending.fill(source, config.format)?;
        }
        partitions_left.retain(|p| !(p.done && p.queue.is_empty()));
        if partitions_left.is_empty() {
            break;
        }
        if waiting {
            producer.poll(Duration::from_millis(1));
            continue;
        }
        // The earliest head; an unread partition's messages are at least as late.
        for _ in 0..1024 {
            let Some(next) = partitions_left
                .iter_mut()
                .filter(|p| !p.queue.is_empty())
                .min_by_key(|p| p.queue.front().map(|(ts, _)| *ts))
            else {
                break;
            };
            let Some((_, message)) = next.queue.pop_front() else {
                break;
            };
            report.bytes += message.value.len() as u64;
            match message.key {
                Some(_) => report.records += 1,
                None => report.invalid += 1,
            }
            send(&producer, &config.topic, message)?;
            sent += 1;
            if next.queue.is_empty() && !next.done {
                break;
            }
        }
        producer.poll(Duration::ZERO);
        if let (_, Some(detail)) = producer.context().get() {
            return Err(delivery(config, detail));
        }
        if shown.elapsed() >= Duration::from_millis(100) {
            shown = Instant::now();
            progress(ProduceProgress {
                sent,
                acknowledged: producer.context().get().0,
            });
        }
    }
    producer
        .flush(config.timeout)
        .map_err(|e| delivery(config, e.to_string()))?;
    let (acknowledged, failed) = producer.context().get();
    if let Some(detail) = failed {
        return Err(delivery(config, detail));
    }
    if acknowledged != sent {
        return Err(delivery(
            config,
            format!("{acknowledged} of {sent} messages were acknowledged"),
        ));
    }
    progress(ProduceProgress { sent, acknowledged });
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A source partition being read: its messages read and not yet sent, each with the
/// event time it is merged by.
struct Pending {
    partition: u32,
    reader: Box<dyn PartitionReader>,
    watermark: Watermark,
    queue: VecDeque<(u64, KafkaRow)>,
    /// The event time of the last valid record read (a bad line is merged at it).
    last_ts: u64,
    done: bool,
}

impl Pending {
    fn new(partition: u32, reader: Box<dyn PartitionReader>) -> Self {
        Pending {
            partition,
            reader,
            // No record is late here: lateness is the job's business.
            watermark: Watermark::new(u64::MAX),
            queue: VecDeque::new(),
            last_ts: 0,
            done: false,
        }
    }

    /// Reads on if nothing is queued; false when nothing is queued and the partition
    /// is not done (a throttled generator).
    fn fill(&mut self, source: &dyn Source, format: KafkaFormat) -> Result<bool, ProduceError> {
        if !self.queue.is_empty() || self.done {
            return Ok(true);
        }
        let mut batch = ReadBatch::default();
        let name = source.source_name(self.partition);
        let mut emit = Emitter::new(
            &name,
            self.partition,
            RuleTime::Event,
            &mut self.watermark,
            0,
            1,
            &mut batch,
        );
        self.done = self.reader.read(1024, &mut emit)? == ReadStatus::Done;
        for (ts, message) in in_order(batch, format) {
            let ts = ts.unwrap_or(self.last_ts);
            self.last_ts = ts;
            self.queue.push_back((ts, message));
        }
        Ok(!self.queue.is_empty() || self.done)
    }
}

/// A batch's records and rejected lines as messages, in the order they were read, with
/// the event times of the valid ones.
fn in_order(batch: ReadBatch, format: KafkaFormat) -> Vec<(Option<u64>, KafkaRow)> {
    let mut messages: Vec<(u64, Option<u64>, KafkaRow)> = batch
        .events
        .into_iter()
        .map(|event| {
            let value = format.encode(&event.record);
            let key = Some(event.record.account_id.to_string());
            (event.seq, Some(event.record.ts), KafkaRow { key, value })
        })
        .collect();
    for letter in batch.dead_letters {
        let value = letter.raw_bytes();
        let position = letter.position.unwrap_or_default();
        messages.push((position, None, KafkaRow { key: None, value }));
    }
    messages.sort_by_key(|(position, _, _)| *position);
    messages.into_iter().map(|(_, ts, m)| (ts, m)).collect()
}

/// Sends `message`, waiting while the client's queue is full.
fn send(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    message: KafkaRow,
) -> Result<(), ProduceError> {
    let mut record = BaseRecord::to(topic).payload(&message.value);
    if let Some(key) = &message.key {
        record = record.key(key);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => {
                return Err(ProduceError::Delivery {
                    topic: topic.to_owned(),
                    detail: e.to_string(),
                });
            }
        }
    }
}

fn delivery(config: &ProduceConfig, detail: String) -> ProduceError {
    ProduceError::Delivery {
        topic: config.topic.clone(),
        detail,
    }
}
