//! The Kafka source (`--source kafka`): transactions from one or more topics, one record
//! per message value, in the CSV or JSON-lines record format (docs/semantics.md §4).
//!
//! Every partition of the topics, in the order the topics are named and by partition
//! number, is one source partition, read by the worker the job assigns it to: no
//! consumer-group rebalancing inside a job, so the data of each partition and its order
//! do not depend on the worker count. A record's position is its offset, and a
//! checkpoint records the offset to read on from (docs/checkpoints.md §2). The message
//! key is not trusted as the account id. Where a partition starts is decided when the
//! source opens: the earliest offset, the latest, or the first at or after a time; a
//! bounded source (`--kafka-bounded`) stops at the end offsets it found then.
//!
//! A broker that cannot be reached, or a topic that does not exist, fails the start
//! within the timeout, naming them; a broker that goes away while the job runs is waited
//! for (librdkafka reconnects) and fails the job once it has been gone for the timeout.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use tidelake_operators::Transaction;

use super::csv::CsvFormat;
use super::files::Outcome;
use serde::de::DeserializeOwned;

use super::{Emitter, PartitionReader, Position, ReadStatus, Source, SourceError, SourceRecord};
use crate::dead_letter::Reason;
use crate::kafka::KafkaContext;
pub use crate::kafka::KafkaFormat;

/// Where a partition starts when no checkpoint says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KafkaStart {
    /// Its earliest offset.
    #[default]
    Earliest,
    /// Its end when the source opens: only what is produced after.
    Latest,
    /// The first message whose timestamp is at or after this time (ms since the epoch).
    Time(u64),
}

/// The Kafka source's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// The topics, in order.
    pub topics: Vec<String>,
    /// How values are written.
    pub format: KafkaFormat,
    /// Where partitions start.
    pub start: KafkaStart,
    /// Stop at the end offsets seen when the source opens.
    pub bounded: bool,
    /// The consumer group complete checkpoints' offsets are committed under, for lag
    /// monitoring (`None`: the job id).
    pub group: Option<String>,
    /// More librdkafka settings (`security.protocol`, SASL, …).
    pub options: Vec<(String, String)>,
    /// How long the brokers may take to answer when the source opens.
    pub start_timeout: Duration,
    /// How long the brokers may be unreachable while the job reads.
    pub timeout: Duration,
}

impl KafkaConfig {
    /// Reading `topics` from `brokers` with the defaults of `tidelake run`: CSV values,
    /// from the earliest offsets, unbounded, 60 s timeouts.
    pub fn new(brokers: impl Into<String>, topics: Vec<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            topics,
            format: KafkaFormat::Csv,
            start: KafkaStart::Earliest,
            bounded: false,
            group: None,
            options: Vec::new(),
            start_timeout: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
        }
    }

    /// A client configuration for a consumer of these brokers that commits nothing.
    fn client(&self) -> ClientConfig {
        let mut config = crate::kafka::client_config(&self.brokers, &self.options);
        config
            // librdkafka assigns partitions only to a consumer with a group; this one
            // never joins it nor commits, so dropping it does not wait for the brokers.
            .set("group.id", "tidelake")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Never jump: an offset the broker says is out of range (while it restarts,
            // or after retention deleted it) is an error, and the reader seeks again.
            .set("auto.offset.reset", "error")
            .set(
                "enable.partition.eof",
                if self.bounded { "true" } else { "false" },
            )
            .set("isolation.level", "read_committed");
        config
    }
}

/// A consumer made from `client`, reading `topic`'s `partition` from `offset`.
fn consumer_at(
    client: &ClientConfig,
    brokers: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<BaseConsumer<KafkaContext>, SourceError> {
    let consumer: BaseConsumer<KafkaContext> = client
        .create_with_context(KafkaContext)
        .map_err(|e| SourceError::Config(format!("Kafka client for {brokers}: {e}")))?;
    assign_at(&consumer, topic, partition, offset)?;
    Ok(consumer)
}

/// (Re)assigns `consumer` to read `topic`'s `partition` from `offset`.
fn assign_at(
    consumer: &BaseConsumer<KafkaContext>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(), SourceError> {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(offset))
        .and_then(|()| consumer.assign(&list))
        .map_err(|e| SourceError::Unreachable {
            what: format!("Kafka topic {topic} partition {partition}"),
            detail: e.to_string(),
        })
}

/// Where `consumer` reads `topic`'s `partition` next (past transaction markers), if it
/// knows.
fn position_of(consumer: &BaseConsumer<KafkaContext>, topic: &str, partition: i32) -> Option<i64> {
    let list = consumer.position().ok()?;
    match list.find_partition(topic, partition)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// The end of a partition (the offset the next message will get): `listed`, the end
/// the broker lists, checked by reading from the last message before it to the end —
/// some brokers (Tansu 0.6) list the offset after the first message of the last batch.
fn end_offset(
    config: &KafkaConfig,
    topic: &str,
    partition: i32,
    low: i64,
    listed: i64,
) -> Result<i64, SourceError> {
    if listed <= low {
        return Ok(listed);
    }
    let what = || format!("Kafka topic {topic} partition {partition}");
    let mut client = config.client();
    client.set("enable.partition.eof", "true");
    let consumer = consumer_at(&client, &config.brokers, topic, partition, listed - 1)?;
    let mut end = listed;
    let deadline = Instant::now() + config.start_timeout;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => end = end.max(message.offset() + 1),
            Some(Err(KafkaError::PartitionEOF(_))) => {
                let position = position_of(&consumer, topic, partition);
                return Ok(position.map_or(end, |p| p.max(end)));
            }
            Some(Err(e)) => tracing::debug!("{}: {e}; retrying", what()),
            None => {}
        }
    }
    Err(SourceError::Unreachable {
        what: what(),
        detail: format!(
            "its end was not found within {} (--start-timeout)",
            humantime::format_duration(config.start_timeout)
        ),
    })
}

/// One Kafka partition of the source, where it starts and, if bounded, where it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
struct KafkaPartition {
    topic: String,
    partition: i32,
    start: i64,
    end: Option<i64>,
}

/// How a message value becomes a record (or why not).
type Decode<R> = fn(&mut CsvFormat, &[u8]) -> Outcome<R>;

/// A transaction in the CSV record format.
fn csv_transaction(csv: &mut CsvFormat, value: &[u8]) -> Outcome {
    csv.parse_record(value)
}

/// A transaction in the JSON-lines record format.
fn json_transaction(_: &mut CsvFormat, value: &[u8]) -> Outcome {
    match super::jsonl::parse(value) {
        Ok(tx) => Outcome::Valid(tx),
        Err((reason, detail)) => Outcome::Invalid(reason, detail),
    }
}

/// A pipeline's own record type, one JSON object per value.
fn json_record<R: SourceRecord + DeserializeOwned>(_: &mut CsvFormat, value: &[u8]) -> Outcome<R> {
    super::decoded::json_record(value)
}

/// The Kafka source of records `R`: see the [module docs](self).
pub struct KafkaSource<R = Transaction> {
    config: KafkaConfig,
    partitions: Vec<KafkaPartition>,
    decode: Decode<R>,
    /// Commits complete checkpoints' offsets under the group (made at the first), and
    /// the last offsets committed.
    group: std::sync::Mutex<Option<(BaseConsumer<KafkaContext>, TopicPartitionList)>>,
}

/// How long a job's end waits for the last checkpoint's offsets to be committed.
const LAST_COMMIT_WAIT: Duration = Duration::from_secs(5);

impl<R> Drop for KafkaSource<R> {
    fn drop(&mut self) {
        // The last checkpoint's offsets are committed before the job exits — on a thread
        // of their own, waited for a few seconds only: with the brokers gone, neither the
        // commit nor the group consumer's close would ever return.
        let group = self.group.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some((consumer, last)) = group.take() else {
            return;
        };
        let (done_tx, done) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("kafka-group-commit".to_owned())
            .spawn(move || {
                let result = consumer.commit(&last, CommitMode::Sync);
                let _ = done_tx.send(result);
                drop(consumer);
            });
        match spawned.map(|_| done.recv_timeout(LAST_COMMIT_WAIT)) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::debug!("Kafka group: committing offsets: {e}"),
            _ => tracing::warn!(
                "Kafka group: the last checkpoint's offsets were not committed within {} (lag monitoring only)",
                humantime::format_duration(LAST_COMMIT_WAIT)
            ),
        }
    }
}

impl KafkaSource {
    /// The source of transactions, in the CSV or JSON record format:
    /// see [`KafkaSource::open`].
    pub fn new(config: KafkaConfig) -> Result<Self, SourceError> {
        let decode: Decode<Transaction> = match config.format {
            KafkaFormat::Csv => csv_transaction,
            KafkaFormat::Json => json_transaction,
        };
        KafkaSource::open(config, decode)
    }
}

impl<R: SourceRecord + DeserializeOwned> KafkaSource<R> {
    /// The source of a pipeline's own record type, one JSON object per message value
    /// (CSV values would need column names, which messages do not carry: refused).
    pub fn decoded(config: KafkaConfig) -> Result<Self, SourceError> {
        if config.format == KafkaFormat::Csv {
            let short = super::record::short_type_name::<R>();
            return Err(SourceError::Config(format!(
                "this job reads {short} records: from Kafka as JSON values only (--kafka-format json); CSV values carry no column names"
            )));
        }
        KafkaSource::open(config, json_record::<R>)
    }
}

impl<R> KafkaSource<R> {
    /// Connects to the brokers, finds the topics' partitions and where each starts (and
    /// ends, if bounded). Fails naming the brokers if they cannot be reached within the
    /// timeout, and naming the topic if one does not exist.
    fn open(config: KafkaConfig, decode: Decode<R>) -> Result<Self, SourceError> {
        if config.topics.is_empty() {
            return Err(SourceError::Config(
                "--source kafka needs --kafka-topic".to_owned(),
            ));
        }
        let consumer: BaseConsumer<KafkaContext> = config
            .client()
            .create_with_context(KafkaContext)
            .map_err(|e| {
                SourceError::Config(format!("Kafka client for {}: {e}", config.brokers))
            })?;
        let unreachable = |e: KafkaError| SourceError::Unreachable {
            what: format!("Kafka brokers {}", config.brokers),
            detail: e.to_string(),
        };
        if let Some(topic) = config
            .topics
            .iter()
            .enumerate()
            .find_map(|(i, t)| config.topics[..i].contains(t).then_some(t))
        {
            return Err(SourceError::Config(format!(
                "--kafka-topic {topic} is named twice"
            )));
        }
        let mut partitions = Vec::new();
        for topic in &config.topics {
            let metadata = consumer
                .fetch_metadata(Some(topic), config.start_timeout)
                .map_err(unreachable)?;
            let found = metadata.topics().iter().find(|t| t.name() == topic);
            let numbers: Vec<i32> = match found {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    let mut numbers: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                    numbers.sort_unstable();
                    numbers
                }
                _ => {
                    return Err(SourceError::Config(format!(
                        "Kafka topic {topic} does not exist on {} (create it, or check --kafka-topic)",
                        config.brokers
                    )));
                }
            };
            for partition in numbers {
                let (low, high) = consumer
                    .fetch_watermarks(topic, partition, config.start_timeout)
                    .map_err(unreachable)?;
                // The end, where it matters: what a bounded or `latest` run stops or
                // starts at.
                let end = || end_offset(&config, topic, partition, low, high);
                let start = match config.start {
                    KafkaStart::Earliest => low,
                    KafkaStart::Latest => end()?,
                    KafkaStart::Time(ms) => {
                        let mut list = TopicPartitionList::new();
                        let at = Offset::Offset(i64::try_from(ms).unwrap_or(i64::MAX));
                        list.add_partition_offset(topic, partition, at)
                            .map_err(unreachable)?;
                        let found = consumer
                            .offsets_for_times(list, config.start_timeout)
                            .map_err(unreachable)?;
                        match found.find_partition(topic, partition).map(|e| e.offset()) {
                            Some(Offset::Offset(offset)) => offset,
                            // No message at or after the time: from the end.
                            _ => end()?,
                        }
                    }
                };
                partitions.push(KafkaPartition {
                    topic: topic.clone(),
                    partition,
                    start,
                    end: if config.bounded { Some(end()?) } else { None },
                });
            }
        }
        if u32::try_from(partitions.len()).is_err() {
            return Err(SourceError::Config("too many Kafka partitions".to_owned()));
        }
        Ok(KafkaSource {
            config,
            partitions,
            decode,
            group: std::sync::Mutex::new(None),
        })
    }

    fn partition(&self, partition: u32) -> Result<&KafkaPartition, SourceError> {
        self.partitions.get(partition as usize).ok_or_else(|| {
            SourceError::Config(format!(
                "partition {partition} does not exist (the source has {})",
                self.partitions.len()
            ))
        })
    }

    fn reader(&self, partition: u32, from: i64) -> Result<KafkaReader<R>, SourceError> {
        let part = self.partition(partition)?;
        let client = self.config.client();
        let consumer = consumer_at(
            &client,
            &self.config.brokers,
            &part.topic,
            part.partition,
            from,
        )?;
        Ok(KafkaReader {
            consumer,
            topic: part.topic.clone(),
            partition: part.partition,
            next: from,
            end: part.end,
            decode: self.decode,
            csv: CsvFormat::default(),
            peeked: None,
            failing_since: None,
            next_probe: Instant::now() + PROBE_IDLE,
            timeout: self.config.timeout,
        })
    }
}

impl<R: SourceRecord> Source<R> for KafkaSource<R> {
    fn partitions(&self) -> u32 {
        self.partitions.len() as u32
    }

    fn bounded(&self) -> bool {
        self.config.bounded
    }

    fn source_name(&self, partition: u32) -> String {
        self.partition(partition)
            .map(|p| p.topic.clone())
            .unwrap_or_default()
    }

    fn settings(&self) -> Vec<(String, String)> {
        let counts: Vec<String> = self
            .config
            .topics
            .iter()
            .map(|topic| {
                let n = self.partitions.iter().filter(|p| &p.topic == topic).count();
                format!("{topic}:{n}")
            })
            .collect();
        vec![("Kafka partitions".to_owned(), counts.join(" "))]
    }

    fn checkpoint_complete(&self, resume: &[(u32, Position)]) {
        let Some(group) = &self.config.group else {
            return;
        };
        let mut list = TopicPartitionList::new();
        for (partition, position) in resume {
            let Ok(part) = self.partition(*partition) else {
                continue;
            };
            let offset = Offset::Offset(i64::try_from(position.offset).unwrap_or(i64::MAX));
            if list
                .add_partition_offset(&part.topic, part.partition, offset)
                .is_err()
            {
                return;
            }
        }
        let mut consumer = self.group.lock().unwrap_or_else(|e| e.into_inner());
        if consumer.is_none() {
            let mut client =
                crate::kafka::client_config(&self.config.brokers, &self.config.options);
            client
                .set("group.id", group)
                .set("enable.auto.commit", "false");
            match client.create_with_context(KafkaContext) {
                Ok(created) => *consumer = Some((created, TopicPartitionList::new())),
                Err(e) => {
                    tracing::warn!("Kafka group {group}: cannot commit offsets: {e}");
                    return;
                }
            }
        }
        if let Some((consumer, last)) = consumer.as_mut() {
            // For lag monitoring only: a failed commit is retried with the next checkpoint.
            if let Err(e) = consumer.commit(&list, CommitMode::Async) {
                tracing::debug!("Kafka group {group}: committing offsets: {e}");
            }
            // Serves the answers of earlier commits.
            let _ = consumer.poll(Duration::ZERO);
            *last = list;
        }
    }

    fn dead_letter_partition(&self, partition: u32) -> u32 {
        self.partition(partition)
            .map_or(partition, |p| p.partition.unsigned_abs())
    }

    fn open(&self, partition: u32) -> Result<Box<dyn PartitionReader<R>>, SourceError> {
        let start = self.partition(partition)?.start;
        Ok(Box::new(self.reader(partition, start)?))
    }

    fn open_at(
        &self,
        partition: u32,
        position: Position,
    ) -> Result<Box<dyn PartitionReader<R>>, SourceError> {
        let offset = i64::try_from(position.offset).unwrap_or(i64::MAX);
        Ok(Box::new(self.reader(partition, offset)?))
    }
}

/// A message read ahead (by `first_ts`).
struct Peeked {
    offset: i64,
    value: Vec<u8>,
}

/// What a poll found.
enum Polled {
    Message(Peeked),
    /// Nothing now.
    Nothing,
    /// A bounded partition's end (librdkafka's partition EOF: everything up to the
    /// end offsets seen at start has been read).
    End,
}

/// How often an idle reader asks the broker whether it is there: every
/// [`PROBE_IDLE`] while it answers, every [`PROBE_FAILING`] once it has not.
const PROBE_IDLE: Duration = Duration::from_secs(5);
const PROBE_FAILING: Duration = Duration::from_secs(1);

/// Reads one Kafka partition.
struct KafkaReader<R> {
    consumer: BaseConsumer<KafkaContext>,
    topic: String,
    partition: i32,
    /// The offset of the next message.
    next: i64,
    /// Where a bounded partition ends.
    end: Option<i64>,
    decode: Decode<R>,
    csv: CsvFormat,
    peeked: Option<Peeked>,
    /// Since when the broker has failed to answer, with nothing read in between.
    failing_since: Option<Instant>,
    /// When an idle reader next asks the broker whether it is there.
    next_probe: Instant,
    timeout: Duration,
}

impl<R> KafkaReader<R> {
    fn name(&self) -> String {
        format!("Kafka topic {} partition {}", self.topic, self.partition)
    }

    fn at_end(&self) -> bool {
        self.end.is_some_and(|end| self.next >= end)
    }

    /// The next message, if one is there now (waiting up to `wait`).
    fn poll(&mut self, wait: Duration) -> Result<Polled, SourceError> {
        if let Some(peeked) = self.peeked.take() {
            return Ok(Polled::Message(peeked));
        }
        match self.consumer.poll(wait) {
            None => {
                self.probe_if_due()?;
                Ok(Polled::Nothing)
            }
            Some(Ok(message)) => {
                let peeked = Peeked {
                    offset: message.offset(),
                    value: message.payload().unwrap_or_default().to_vec(),
                };
                drop(message);
                self.answered();
                Ok(Polled::Message(peeked))
            }
            Some(Err(KafkaError::PartitionEOF(_))) => Ok(self.at_eof()),
            Some(Err(e)) => {
                self.failing(&e.to_string())?;
                if matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
                ) {
                    // The partition stopped fetching: from the next offset again.
                    self.seek_next()?;
                }
                Ok(Polled::Nothing)
            }
        }
    }

    /// Assigns the partition again at the next offset.
    fn seek_next(&mut self) -> Result<(), SourceError> {
        assign_at(&self.consumer, &self.topic, self.partition, self.next)
    }

    /// At the end of what the broker holds now: a bounded partition is done once the
    /// consumer's position (past any transaction markers) reaches its end. (Some brokers
    /// report the end of a fetch before the end of the partition.)
    fn at_eof(&mut self) -> Polled {
        let Some(end) = self.end else {
            return Polled::Nothing;
        };
        match position_of(&self.consumer, &self.topic, self.partition) {
            Some(offset) if offset >= end => Polled::End,
            _ => Polled::Nothing,
        }
    }

    /// Records that the broker did not answer; fails once it has not for the timeout.
    fn failing(&mut self, why: &str) -> Result<(), SourceError> {
        if self.failing_since.is_none() {
            tracing::warn!(
                "{}: {why}; waiting for the brokers (up to {}, --kafka-timeout)",
                self.name(),
                humantime::format_duration(self.timeout)
            );
        }
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.timeout {
            return Err(SourceError::Unreachable {
                what: self.name(),
                detail: format!(
                    "no answer from the brokers for {} (--kafka-timeout): {why}",
                    humantime::format_duration(self.timeout)
                ),
            });
        }
        self.next_probe = Instant::now() + PROBE_FAILING;
        Ok(())
    }

    /// The brokers answered: a failure, if any, is over.
    fn answered(&mut self) {
        if let Some(since) = self.failing_since.take() {
            tracing::info!(
                "{}: the brokers answer again after {:.1} s",
                self.name(),
                since.elapsed().as_secs_f64()
            );
        }
    }

    /// An idle partition may be idle because the broker is gone: asks it for the
    /// partition's offsets now and then, so that a broker gone for the timeout fails the
    /// job and one that answers again clears the failure.
    fn probe_if_due(&mut self) -> Result<(), SourceError> {
        if Instant::now() < self.next_probe {
            return Ok(());
        }
        match self
            .consumer
            .fetch_watermarks(&self.topic, self.partition, PROBE_FAILING)
        {
            Ok(_) => {
                self.answered();
                self.next_probe = Instant::now() + PROBE_IDLE;
                Ok(())
            }
            Err(e) => self.failing(&e.to_string()),
        }
    }

    /// Parses a message value.
    fn parse(&mut self, value: &[u8]) -> Outcome<R> {
        (self.decode)(&mut self.csv, value)
    }
}

impl<R: SourceRecord> PartitionReader<R> for KafkaReader<R> {
    fn first_ts(&mut self) -> Result<Option<u64>, SourceError> {
        // A bounded partition's first record bounds the times it can produce; an
        // unbounded one may produce anything, as later messages arrive.
        if self.end.is_none() || self.at_end() {
            return Ok(None);
        }
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            match self.poll(Duration::from_millis(100))? {
                Polled::Message(message) => {
                    let ts = match self.parse(&message.value) {
                        Outcome::Valid(record) => record.event_time(),
                        // Records after a bad one may be as early as any.
                        _ => 0,
                    };
                    self.peeked = Some(message);
                    return Ok(Some(ts));
                }
                Polled::End => {
                    self.next = self.end.unwrap_or(self.next);
                    return Ok(None);
                }
                Polled::Nothing => {}
            }
        }
        Err(SourceError::Unreachable {
            what: self.name(),
            detail: format!(
                "no message within {} though the partition holds some",
                humantime::format_duration(self.timeout)
            ),
        })
    }

    fn read(&mut self, max: usize, emit: &mut Emitter<'_, R>) -> Result<ReadStatus, SourceError> {
        for _ in 0..max {
            if self.at_end() {
                return Ok(ReadStatus::Done);
            }
            let message = match self.poll(Duration::ZERO)? {
                Polled::Message(message) => message,
                Polled::Nothing if self.failing_since.is_some() => {
                    return Ok(ReadStatus::Waiting);
                }
                Polled::Nothing => return Ok(ReadStatus::Idle),
                Polled::End => {
                    self.next = self.end.unwrap_or(self.next);
                    return Ok(ReadStatus::Done);
                }
            };
            if self.end.is_some_and(|end| message.offset >= end) {
                self.next = message.offset;
                return Ok(ReadStatus::Done);
            }
            self.next = message.offset + 1;
            let position = u64::try_from(message.offset).unwrap_or_default();
            let raw = message.value;
            match self.parse(&raw) {
                Outcome::Blank => emit.blank_line(),
                Outcome::Header => {}
                Outcome::Valid(tx) => record(emit, position, tx, &raw),
                Outcome::Invalid(reason, detail) => {
                    emit.reject(position, None, &raw, reason, detail);
                }
            }
        }
        Ok(if self.at_end() {
            ReadStatus::Done
        } else {
            ReadStatus::More
        })
    }

    fn position(&self) -> Option<Position> {
        Some(Position {
            offset: u64::try_from(self.next).unwrap_or_default(),
            lines: 0,
        })
    }
}

/// Emits `tx` at `position`; a late one goes to the dead letters with its value.
fn record<R: SourceRecord>(emit: &mut Emitter<'_, R>, position: u64, tx: R, raw: &[u8]) {
    if let Err(late) = emit.record(position, tx) {
        emit.reject(position, None, raw, Reason::Late, late.detail);
    }
}
