//! The Kafka sinks (`--alerts kafka://HOST:PORT/TOPIC`, `--transactions-topic
//! kafka://…`): every worker writes each commit epoch of its records in one Kafka
//! transaction, exactly once (docs/kafka.md).
//!
//! A worker's producer of an output has the stable `transactional.id`
//! `<job id>-<output>-w<worker>` (`output`: `alerts` or `transactions`; one per output,
//! since a worker writing two topics with one id would fence itself), so a restarted
//! worker fences the one it replaces (and its open transaction is aborted), and ids do
//! not pile up on the broker. An epoch is written when it is sealed (the
//! frontier has passed its end: [`EpochWriter`]): begin, its records, then — in the
//! same transaction — a commit of the offset `epoch + 1` for the consumer group named
//! as the transactional id, then commit. The group's offset is thus the worker's last
//! committed epoch, and it is visible only if that transaction committed, whatever the
//! broker does with aborted records (Tansu shows them to `read_committed` readers). On
//! start the worker reads it and skips every epoch up to it: a job restored from a
//! checkpoint that replays an epoch already committed does not write it twice. As for
//! the Delta sinks, the committed frontier (these reports) holds checkpoints back, so a
//! checkpoint past an epoch exists only once the epoch is committed.
//!
//! Records are keyed by account id and carry the headers `tidelake-job`,
//! `tidelake-worker`, `tidelake-epoch` (the epoch's number) and `tidelake-seq` (the
//! record's place in the worker's epoch).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tidelake_sinks::epochs::{EpochOutcome, EpochReport, EpochWriter};

use super::{KafkaContext, KafkaError, KafkaRow, client_config, ensure_topic};

/// Where a Kafka sink writes: `kafka://HOST:PORT[,HOST:PORT]/TOPIC` (created with 4
/// partitions if it does not exist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSinkConfig {
    /// `host:port[,…]`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// More librdkafka settings (`--kafka-option`).
    pub options: Vec<(String, String)>,
    /// How long the brokers may take to answer.
    pub timeout: Duration,
}

impl KafkaSinkConfig {
    /// Parses `kafka://HOST:PORT[,HOST:PORT]/TOPIC`.
    pub fn parse(url: &str) -> Result<KafkaSinkConfig, String> {
        let address = url
            .strip_prefix("kafka://")
            .and_then(|rest| rest.split_once('/'));
        match address {
            Some((brokers, topic))
                if !brokers.is_empty() && !topic.is_empty() && !topic.contains('/') =>
            {
                Ok(KafkaSinkConfig {
                    brokers: brokers.to_owned(),
                    topic: topic.to_owned(),
                    options: Vec::new(),
                    timeout: Duration::from_secs(60),
                })
            }
            _ => Err(format!(
                "{url}: a Kafka topic is kafka://HOST:PORT[,HOST:PORT]/TOPIC"
            )),
        }
    }

    /// `kafka://brokers/topic`.
    pub fn url(&self) -> String {
        format!("kafka://{}/{}", self.brokers, self.topic)
    }
}

/// One worker's Kafka sink: see the [module docs](self).
pub struct KafkaSink {
    config: KafkaSinkConfig,
    job_id: String,
    worker: usize,
    producer: ThreadedProducer<DefaultProducerContext>,
    group: ConsumerGroupMetadata,
    /// Epochs up to here (inclusive) were committed by an earlier run.
    committed_through: Option<u64>,
    /// Rows of epochs not sealed yet.
    pending: BTreeMap<u64, Vec<KafkaRow>>,
}

impl KafkaSink {
    /// Connects worker `worker`'s transactional producer for the job's output `output`
    /// (`alerts`, `transactions`), fencing an earlier one with its id, and reads how far
    /// it had committed.
    pub fn open(
        config: &KafkaSinkConfig,
        job_id: &str,
        output: &str,
        worker: usize,
    ) -> Result<KafkaSink, KafkaError> {
        let id = format!("{job_id}-{output}-w{worker}");
        let (brokers, options) = (&config.brokers, &config.options);
        let (_, created) = ensure_topic(brokers, options, &config.topic, 4, config.timeout)?;
        if created {
            tracing::info!("created Kafka topic {} (4 partitions)", config.url());
        }
        let mut client = client_config(brokers, options);
        client
            .set("transactional.id", &id)
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("transaction.timeout.ms", "900000");
        let producer: ThreadedProducer<DefaultProducerContext> = client
            .create()
            .map_err(|e| KafkaError::Refused(format!("producer {id} for {brokers}: {e}")))?;
        producer
            .init_transactions(config.timeout)
            .map_err(|e| KafkaError::Unreachable {
                brokers: brokers.clone(),
                detail: format!("starting transactions as {id}: {e}"),
            })?;
        // After init_transactions: an earlier producer's last transaction is settled.
        let mut marker = client_config(brokers, options);
        marker
            .set("group.id", &id)
            .set("enable.auto.commit", "false");
        let consumer: BaseConsumer<KafkaContext> = marker
            .create_with_context(KafkaContext)
            .map_err(|e| KafkaError::Refused(format!("consumer {id} for {brokers}: {e}")))?;
        let group = consumer
            .group_metadata()
            .ok_or_else(|| KafkaError::Refused(format!("no group metadata for {id}")))?;
        let mut list = TopicPartitionList::new();
        list.add_partition(&config.topic, 0);
        let committed = consumer
            .committed_offsets(list, config.timeout)
            .map_err(|e| KafkaError::Unreachable {
                brokers: brokers.clone(),
                detail: format!("reading group {id}'s offsets: {e}"),
            })?;
        let committed_through = match committed
            .find_partition(&config.topic, 0)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(next)) if next > 0 => u64::try_from(next - 1).ok(),
            _ => None,
        };
        if let Some(epoch) = committed_through {
            tracing::info!(
                "{}: worker {worker} committed up to epoch {epoch} before: later epochs only",
                config.url()
            );
        }
        Ok(KafkaSink {
            config: config.clone(),
            job_id: job_id.to_owned(),
            worker,
            producer,
            group,
            committed_through,
            pending: BTreeMap::new(),
        })
    }

    fn refused(&self, what: &str, e: RdKafkaError) -> KafkaError {
        KafkaError::Refused(format!(
            "{} (worker {}): {what}: {e}",
            self.config.url(),
            self.worker
        ))
    }

    /// Writes `rows` as epoch `epoch` in one transaction with its marker.
    fn commit(&mut self, epoch: u64, rows: Vec<KafkaRow>) -> Result<u64, KafkaError> {
        let timeout = self.config.timeout;
        self.producer
            .begin_transaction()
            .map_err(|e| self.refused("beginning a transaction", e))?;
        let (worker, epoch_text) = (self.worker.to_string(), epoch.to_string());
        let mut bytes = 0u64;
        for (seq, row) in rows.iter().enumerate() {
            let seq = seq.to_string();
            let headers = OwnedHeaders::new()
                .insert(header("tidelake-job", &self.job_id))
                .insert(header("tidelake-worker", &worker))
                .insert(header("tidelake-epoch", &epoch_text))
                .insert(header("tidelake-seq", &seq));
            let mut record = BaseRecord::to(&self.config.topic)
                .payload(&row.value)
                .headers(headers);
            if let Some(key) = &row.key {
                record = record.key(key);
            }
            bytes += row.value.len() as u64;
            let deadline = Instant::now() + timeout;
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < deadline =>
                    {
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => return Err(self.refused("sending", e)),
                }
            }
        }
        let mut marker = TopicPartitionList::new();
        let next = i64::try_from(epoch.saturating_add(1)).unwrap_or(i64::MAX);
        marker
            .add_partition_offset(&self.config.topic, 0, Offset::Offset(next))
            .map_err(|e| self.refused("marking the epoch", e))?;
        self.producer
            .send_offsets_to_transaction(&marker, &self.group, timeout)
            .map_err(|e| self.refused("marking the epoch", e))?;
        self.producer
            .commit_transaction(timeout)
            .map_err(|e| self.refused("committing", e))?;
        Ok(bytes)
    }
}

fn header<'a>(key: &'a str, value: &'a String) -> Header<'a, &'a String> {
    Header {
        key,
        value: Some(value),
    }
}

impl EpochWriter for KafkaSink {
    type Row = KafkaRow;
    type Error = KafkaError;

    async fn write(&mut self, epoch: u64, rows: Vec<KafkaRow>) -> Result<(), KafkaError> {
        self.pending.entry(epoch).or_default().extend(rows);
        Ok(())
    }

    async fn seal(&mut self, epoch: u64) -> Result<Vec<EpochReport>, KafkaError> {
        let rows = self.pending.remove(&epoch).unwrap_or_default();
        let count = rows.len() as u64;
        if self.committed_through.is_some_and(|c| epoch <= c) {
            return Ok(vec![EpochReport {
                rows: count,
                outcome: EpochOutcome::AlreadyCommitted,
                ..EpochReport::empty(epoch)
            }]);
        }
        let started = Instant::now();
        let bytes = self.commit(epoch, rows)?;
        Ok(vec![EpochReport {
            rows: count,
            bytes,
            outcome: EpochOutcome::Committed {
                version: epoch,
                attempts: 1,
            },
            commit_latency: Some(started.elapsed()),
            ..EpochReport::empty(epoch)
        }])
    }
}
