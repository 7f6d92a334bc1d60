//! The Kafka sink: every event of a sealed chunk becomes one message (its record line, uncompressed — the
//! producer compresses batches), with the headers that name it (`host`, `boot`, `worker`, `seq`, `protocol`).
//! `put` returns only once the broker acknowledged every message of the chunk (an idempotent producer with
//! `acks=all`), so the uploader deletes a spool file only then; any failure sends the whole chunk again later,
//! and the duplicates that makes are named by (host, boot, worker, seq).
//!
//! A chunk is decoded and produced on tokio's blocking pool, streaming: at most `MAX_PENDING` messages of one
//! chunk wait for their acknowledgement at a time, and librdkafka's own queue is bounded, so a broker that
//! pushes back slows the uploader instead of filling memory. An event larger than `KAFKA_MESSAGE_MAX_BYTES`
//! is written to a dead-letter file next to the spool (`dead-letter/{key}.ndjson`) and counted, so it never
//! blocks its chunk. A fatal producer error (librdkafka's idempotence state broken) rebuilds the producer.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use super::object::{Cancel, ChunkFile, ObjectMeta, SinkError, blocking};
use crate::config::{KafkaConfig, KafkaKey};
use crate::metrics::{KAFKA_ERROR_KINDS, KafkaMetrics};
use crate::spool::Codec;
use crate::state::Shared;

/// Messages of one chunk that may wait for their acknowledgement at once.
const MAX_PENDING: usize = 50_000;
/// How long librdkafka keeps trying one message before it reports it failed (the chunk is then sent again).
const MESSAGE_TIMEOUT_MS: u64 = 60_000;

pub struct KafkaSink {
    config: KafkaConfig,
    producer: Mutex<FutureProducer>,
    /// Where oversize events go (`{spool}/dead-letter`).
    dead_letters: PathBuf,
    shared: Arc<Shared>,
}

impl KafkaSink {
    pub fn new(config: &KafkaConfig, dead_letters: PathBuf, shared: Arc<Shared>) -> Result<KafkaSink, String> {
        let producer = producer(config)?;
        shared.uploader.kafka.enabled.store(true, Relaxed);
        Ok(KafkaSink { config: config.clone(), producer: Mutex::new(producer), dead_letters, shared })
    }

    fn producer(&self) -> FutureProducer {
        self.producer.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// At start: the topic's metadata (does it exist, with partitions).
    pub async fn check(&self) -> Result<String, SinkError> {
        let (producer, config, shared) = (self.producer(), self.config.clone(), self.shared.clone());
        blocking(move || topic_exists(&producer, &config, &shared.uploader.kafka)).await
    }

    /// Produces every event of `chunk` and waits until the broker acknowledged each one.
    pub async fn put(&self, object: &ObjectMeta, chunk: &ChunkFile, cancel: &Cancel) -> Result<(), SinkError> {
        let producer = self.producer();
        let job = Job {
            producer: producer.clone(),
            config: self.config.clone(),
            object: object.clone(),
            chunk: chunk.clone(),
            cancel: cancel.clone(),
            dead_letters: self.dead_letters.clone(),
            handle: tokio::runtime::Handle::current(),
            shared: self.shared.clone(),
        };
        let result = blocking(move || job.run()).await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Some((code, reason)) = producer.client().fatal_error() {
                    count(&self.shared.uploader.kafka, "fatal");
                    tracing::warn!(?code, reason, "kafka producer hit a fatal error; building a new one");
                    if let Ok(fresh) = self::producer(&self.config) {
                        *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
                    }
                }
                Err(e)
            }
        }
    }
}

/// Whether the topic exists (a broker with in-memory storage that restarted has lost it; producing would wait
/// out librdkafka's metadata timeouts before saying so).
fn topic_exists(producer: &FutureProducer, config: &KafkaConfig, metrics: &KafkaMetrics) -> Result<String, SinkError> {
    let (topic, brokers) = (&config.topic, &config.brokers);
    let metadata = producer.client().fetch_metadata(Some(topic), Duration::from_secs(5)).map_err(|e| {
        count(metrics, kind(&e));
        SinkError::Retryable(format!("kafka {brokers}: {e}"))
    })?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(format!("kafka topic {topic} on {brokers}, {} partitions", t.partitions().len()))
        }
        _ => {
            count(metrics, "topic");
            Err(SinkError::Permanent(format!("kafka topic {topic} does not exist on {brokers}")))
        }
    }
}

fn count(metrics: &KafkaMetrics, kind: &str) {
    let index = KAFKA_ERROR_KINDS.iter().position(|k| *k == kind).unwrap_or(KAFKA_ERROR_KINDS.len() - 1);
    metrics.errors[index].fetch_add(1, Relaxed);
}

/// The `kind` label of an error.
fn kind(e: &KafkaError) -> &'static str {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(C::UnknownTopicOrPartition | C::UnknownTopic) => "topic",
        Some(
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication,
        ) => "authorization",
        Some(C::Fatal) => "fatal",
        Some(
            C::AllBrokersDown
            | C::BrokerTransportFailure
            | C::MessageTimedOut
            | C::RequestTimedOut
            | C::OperationTimedOut
            | C::NetworkException,
        ) => "unreachable",
        _ => "other",
    }
}

/// A producer as plutos needs it: idempotent, `acks=all`, a finite message timeout.
fn producer(config: &KafkaConfig) -> Result<FutureProducer, String> {
    let mut client = ClientConfig::new();
    // A topic is the operator's to create (partitions, retention): producing must not create one with the
    // broker's defaults. `KAFKA_PRODUCER_ALLOW_AUTO_CREATE_TOPICS=true` allows it.
    client.set("allow.auto.create.topics", "false");
    // librdkafka's own queue: 64 MiB of messages waiting for the brokers (its default is 1 GiB), so a broker
    // that pushes back slows the uploader (QueueFull) long before memory grows. An operator may change it.
    client.set("queue.buffering.max.kbytes", "65536");
    for (name, value) in &config.passthrough {
        client.set(name, value);
    }
    client
        .set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS.to_string())
        .set("compression.type", config.compression.name())
        .set("linger.ms", config.linger_ms.to_string())
        .set("message.max.bytes", config.message_max_bytes.to_string());
    for (name, value) in &config.security {
        client.set(name, &value.0);
    }
    client.create().map_err(|e| format!("kafka producer: {e}"))
}

/// One chunk's production, on the blocking pool.
struct Job {
    producer: FutureProducer,
    config: KafkaConfig,
    object: ObjectMeta,
    chunk: ChunkFile,
    cancel: Cancel,
    dead_letters: PathBuf,
    handle: tokio::runtime::Handle,
    shared: Arc<Shared>,
}

impl Job {
    fn metrics(&self) -> &KafkaMetrics {
        &self.shared.uploader.kafka
    }

    fn run(self) -> Result<(), SinkError> {
        let pending = VecDeque::new();
        let mut job = Running { job: self, pending };
        let result = job.produce();
        // Messages still waiting when the chunk failed are no longer counted in flight (their acknowledgements
        // are not awaited; the chunk goes again).
        job.job.metrics().in_flight.fetch_sub(job.pending.len() as i64, Relaxed);
        result
    }
}

/// A chunk being produced, with its messages awaiting acknowledgement.
struct Running {
    job: Job,
    pending: VecDeque<DeliveryFuture>,
}

impl Running {
    fn produce(&mut self) -> Result<(), SinkError> {
        let job = &self.job;
        let name = job.chunk.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let codec = Codec::from_file_name(&name)
            .ok_or_else(|| SinkError::Permanent(format!("{name}: not a chunk file name")))?;
        let file = File::open(&job.chunk.path)?;
        let lines: Box<dyn BufRead> = match codec {
            Codec::Gzip => Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file))),
            Codec::Zstd => Box::new(BufReader::new(zstd::stream::read::Decoder::new(file)?)),
            Codec::None => Box::new(BufReader::new(file)),
        };
        let (host, boot, worker) = (job.object.host.as_str(), job.object.boot.as_str(), job.object.worker.to_string());
        // A topic that is gone (deleted, or lost by a broker with in-memory storage) is said at once: producing
        // to it would wait out librdkafka's message timeout first.
        topic_exists(&job.producer, &job.config, job.metrics())?;
        let mut key = Vec::new();
        for (i, line) in lines.split(b'\n').enumerate() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            if job.cancel.is_cancelled() {
                return Err(SinkError::Cancelled);
            }
            let seq = (job.object.first_seq + i as u64).to_string();
            if line.len() as u64 > job.config.message_max_bytes {
                job.dead_letter(&line)?;
                job.metrics().dead_lettered.fetch_add(1, Relaxed);
                continue;
            }
            let headers = OwnedHeaders::new_with_capacity(5)
                .insert(Header { key: "host", value: Some(host) })
                .insert(Header { key: "boot", value: Some(boot) })
                .insert(Header { key: "worker", value: Some(worker.as_str()) })
                .insert(Header { key: "seq", value: Some(seq.as_str()) })
                .insert(Header { key: "protocol", value: record_protocol(&line) });
            let has_key = message_key(&job.config.key, &line, &mut key);
            let mut record = FutureRecord::to(&job.config.topic).payload(&line[..]).headers(headers);
            if has_key {
                record = record.key(&key[..]);
            }
            loop {
                match job.producer.send_result(record) {
                    Ok(delivery) => {
                        self.pending.push_back(delivery);
                        self.job.metrics().in_flight.fetch_add(1, Relaxed);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // librdkafka's queue is full: wait for the oldest message, then try again.
                        record = back;
                        match self.pending.pop_front() {
                            Some(oldest) => self.job.acknowledged(oldest)?,
                            None => self.job.producer.poll(Duration::from_millis(100)),
                        }
                    }
                    Err((e, _)) => return Err(self.job.failed(&e)),
                }
            }
            if self.pending.len() >= MAX_PENDING {
                let oldest = self.pending.pop_front().unwrap_or_else(|| unreachable!("pending is not empty"));
                self.job.acknowledged(oldest)?;
            }
        }
        while let Some(delivery) = self.pending.pop_front() {
            self.job.acknowledged(delivery)?;
        }
        Ok(())
    }
}

impl Job {
    /// Waits for one message's acknowledgement.
    fn acknowledged(&self, delivery: DeliveryFuture) -> Result<(), SinkError> {
        let metrics = self.metrics();
        metrics.in_flight.fetch_sub(1, Relaxed);
        match self.handle.block_on(delivery) {
            Ok(Ok(_)) => {
                metrics.acknowledged.fetch_add(1, Relaxed);
                Ok(())
            }
            Ok(Err((e, _))) => Err(self.failed(&e)),
            Err(_) => Err(SinkError::Retryable("kafka producer went away before the acknowledgement".into())),
        }
    }

    /// Counts a failed message by kind and says what the chunk does next.
    fn failed(&self, e: &KafkaError) -> SinkError {
        count(self.metrics(), kind(e));
        classify(e)
    }

    /// Appends an oversize event to `dead-letter/{object key}.ndjson` (durably: it is not produced).
    fn dead_letter(&self, line: &[u8]) -> Result<(), SinkError> {
        let path = self.dead_letters.join(format!("{}.ndjson", self.object.key.replace('/', "_")));
        fs::create_dir_all(&self.dead_letters)?;
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(line)?;
        file.write_all(b"\n")?;
        file.sync_data()?;
        tracing::warn!(
            path = %path.display(),
            bytes = line.len(),
            max = self.config.message_max_bytes,
            "an event over KAFKA_MESSAGE_MAX_BYTES went to the dead-letter file"
        );
        Ok(())
    }
}

/// What a failed message says about the chunk: a topic or authorization problem stays until a setting
/// changes (permanent), anything else may pass (retryable).
fn classify(e: &KafkaError) -> SinkError {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(
            C::UnknownTopicOrPartition
            | C::UnknownTopic
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication,
        ) => SinkError::Permanent(format!("kafka: {e}")),
        _ => SinkError::Retryable(format!("kafka: {e}")),
    }
}

/// The record's own `protocol` (the last `,"protocol":"` of the line: the fields after it are strings or
/// numbers, in which that text cannot appear unescaped).
fn record_protocol(line: &[u8]) -> Option<&str> {
    let at = memchr::memmem::rfind(line, b",\"protocol\":\"")? + 13;
    let end = at + memchr::memchr(b'"', &line[at..])?;
    std::str::from_utf8(&line[at..end]).ok()
}

/// The message key of `line` into `key`; false when it has none.
fn message_key(spec: &KafkaKey, line: &[u8], key: &mut Vec<u8>) -> bool {
    key.clear();
    match spec {
        KafkaKey::None => false,
        KafkaKey::EventId => {
            // Like `protocol`: the record's own `event_id` is the last one.
            let Some(at) = memchr::memmem::rfind(line, b",\"event_id\":\"") else { return false };
            let at = at + 13;
            let Some(len) = memchr::memchr(b'"', &line[at..]) else { return false };
            key.extend_from_slice(&line[at..at + len]);
            true
        }
        KafkaKey::Field(path) => {
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else { return false };
            let value = path.iter().try_fold(&record["raw_data"], |v, part| v.get(part));
            match value {
                Some(serde_json::Value::String(s)) => key.extend_from_slice(s.as_bytes()),
                Some(serde_json::Value::Null) | None => return false,
                Some(other) => key.extend_from_slice(other.to_string().as_bytes()),
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = br#"{"raw_data":{"protocol":"x","user":{"id":7}},"ip":"","path":"/e","protocol":"segment","event_id":"m-1","event_name":"a\"protocol\":\"b","visitor_id":null}"#;

    #[test]
    fn the_records_own_protocol_and_event_id_are_found_after_raw_datas() {
        assert_eq!(record_protocol(LINE), Some("segment"));
        let mut key = Vec::new();
        assert!(message_key(&KafkaKey::EventId, LINE, &mut key));
        assert_eq!(key, b"m-1");
        assert!(message_key(&KafkaKey::Field(vec!["user".into(), "id".into()]), LINE, &mut key));
        assert_eq!(key, b"7");
        assert!(!message_key(&KafkaKey::Field(vec!["missing".into()]), LINE, &mut key));
        assert!(!message_key(&KafkaKey::None, LINE, &mut key));
    }
}
