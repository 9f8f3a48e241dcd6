//! Kafka: what the source ([`crate::sources::kafka`]), `tidelake produce`
//! ([`produce`]) and the Kafka sinks share — the client settings, the topic's place on
//! the brokers, and how a transaction is written as a message value.
//!
//! Everything goes through `rdkafka` and its bundled librdkafka (docs/kafka.md).

pub mod produce;
pub mod sink;

use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::types::RDKafkaErrorCode;

use tidelake_operators::Transaction;

/// How message values are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KafkaFormat {
    /// `account_id,ts_millis,amount`, RFC 4180 quoting.
    #[default]
    Csv,
    /// A JSON object with `accountId` (or `account_id`), `ts` and `amount`.
    Json,
}

impl KafkaFormat {
    /// `csv` or `json`.
    pub fn name(self) -> &'static str {
        match self {
            KafkaFormat::Csv => "csv",
            KafkaFormat::Json => "json",
        }
    }

    /// `tx` as a message value in this format (what the source reads back as `tx`).
    pub fn encode(self, tx: &Transaction) -> Vec<u8> {
        match self {
            KafkaFormat::Csv => {
                let mut out = Vec::with_capacity(tx.account_id.len() + 32);
                let id = tx.account_id.as_bytes();
                let plain = !id.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
                    && !id.first().is_some_and(u8::is_ascii_whitespace)
                    && !id.last().is_some_and(u8::is_ascii_whitespace);
                if plain {
                    out.extend_from_slice(id);
                } else {
                    out.push(b'"');
                    for &b in id {
                        if b == b'"' {
                            out.push(b'"');
                        }
                        out.push(b);
                    }
                    out.push(b'"');
                }
                out.extend_from_slice(format!(",{},{}", tx.ts, tx.amount).as_bytes());
                out
            }
            KafkaFormat::Json => serde_json::json!({
                "accountId": tx.account_id.as_str(),
                "ts": tx.ts,
                "amount": tx.amount,
            })
            .to_string()
            .into_bytes(),
        }
    }
}

/// One message: its key (the account id, if it has one) and value — a sink's JSON
/// record, or a transaction `produce` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaRow {
    /// The account id, if the record has one.
    pub key: Option<String>,
    /// The message value.
    pub value: Vec<u8>,
}

impl KafkaRow {
    /// `record` as JSON (the line `--alerts FILE` would write), keyed by its
    /// `accountId` field.
    pub fn json<T: serde::Serialize>(record: &T) -> KafkaRow {
        /// Only the key of a record's JSON; the rest is skipped, not built.
        #[derive(serde::Deserialize)]
        struct Key {
            #[serde(rename = "accountId", default)]
            account_id: Option<serde_json::Value>,
        }
        let value = serde_json::to_vec(record).unwrap_or_default();
        let key = match serde_json::from_slice::<Key>(&value)
            .ok()
            .and_then(|k| k.account_id)
        {
            Some(serde_json::Value::String(id)) => Some(id),
            Some(other) if !other.is_null() => Some(other.to_string()),
            _ => None,
        };
        KafkaRow { key, value }
    }
}

/// A Kafka failure that stops a command or job.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The brokers did not answer in time.
    #[error("cannot reach Kafka brokers {brokers}: {detail}")]
    Unreachable {
        /// `host:port[,…]`.
        brokers: String,
        /// Why.
        detail: String,
    },
    /// A client setting is invalid, or the brokers refused a request.
    #[error("Kafka {0}")]
    Refused(String),
}

/// The context of tidelake's Kafka clients: librdkafka's log lines and client errors
/// go to the job's log as warnings, naming Kafka; the end of a partition is not an error.
#[derive(Clone, Copy, Debug, Default)]
pub struct KafkaContext;

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_client(level, facility, message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        client_error(&error, reason);
    }
}

impl ConsumerContext for KafkaContext {}

/// Logs a librdkafka log line ([`KafkaContext`]).
pub(crate) fn log_client(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
            tracing::warn!("Kafka client: {facility} {message}")
        }
        // Lost connections and the like: the reader or writer says what it means.
        _ => tracing::debug!("Kafka client: {facility} {message}"),
    }
}

/// Logs a librdkafka client error ([`KafkaContext`]).
pub(crate) fn client_error(error: &RdKafkaError, reason: &str) {
    // The reader or writer reports what stops it; this is the client's own view.
    if !matches!(error, RdKafkaError::PartitionEOF(_)) {
        tracing::debug!("Kafka client: {error}: {reason}");
    }
}

/// A client of `brokers` with the user's extra settings (`--kafka-option`) on top.
pub fn client_config(brokers: &str, options: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        // A broker that restarts is found again within a second, not ten.
        .set("reconnect.backoff.max.ms", "1000");
    for (key, value) in options {
        config.set(key, value);
    }
    config
}

/// The number of partitions of `topic`, or `None` if it does not exist.
pub fn topic_partitions(
    brokers: &str,
    options: &[(String, String)],
    topic: &str,
    timeout: Duration,
) -> Result<Option<usize>, KafkaError> {
    let consumer: BaseConsumer<KafkaContext> = client_config(brokers, options)
        .create_with_context(KafkaContext)
        .map_err(|e| KafkaError::Refused(format!("client for {brokers}: {e}")))?;
    let metadata =
        consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| KafkaError::Unreachable {
                brokers: brokers.to_owned(),
                detail: e.to_string(),
            })?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len()))
}

/// Makes sure `topic` exists, creating it with `partitions` partitions if it does not;
/// returns its partition count and whether it was created.
pub fn ensure_topic(
    brokers: &str,
    options: &[(String, String)],
    topic: &str,
    partitions: u32,
    timeout: Duration,
) -> Result<(usize, bool), KafkaError> {
    if let Some(n) = topic_partitions(brokers, options, topic, timeout)? {
        return Ok((n, false));
    }
    let admin: AdminClient<KafkaContext> = client_config(brokers, options)
        .create_with_context(KafkaContext)
        .map_err(|e| KafkaError::Refused(format!("admin client for {brokers}: {e}")))?;
    let count = i32::try_from(partitions)
        .map_err(|_| KafkaError::Refused(format!("{partitions} partitions are too many")))?;
    let new = NewTopic::new(topic, count, TopicReplication::Fixed(1));
    let results = futures::executor::block_on(admin.create_topics(
        [&new],
        &AdminOptions::new().operation_timeout(Some(timeout)),
    ))
    .map_err(|e| KafkaError::Unreachable {
        brokers: brokers.to_owned(),
        detail: e.to_string(),
    })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::Refused(format!(
                    "brokers {brokers} refused to create topic {name}: {code}"
                )));
            }
        }
    }
    // Metadata reaches every broker a little after the topic is made.
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(n) = topic_partitions(brokers, options, topic, timeout)? {
            return Ok((n, true));
        }
        if std::time::Instant::now() >= deadline {
            return Err(KafkaError::Refused(format!(
                "topic {topic} was created on {brokers} but does not show in its metadata"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
