//! The Kafka sink: every event of a sealed chunk becomes one message (its record line, uncompressed — the
//! producer compresses batches), with the headers that name it (`host`, `boot`, `worker`, `seq`, `protocol`).
//! `put` returns only once the broker acknowledged every message of the chunk (an idempotent producer with
//! `acks=all`), so the uploader deletes a spool file only then; any failure sends the whole chunk again later,
//! and the duplicates that makes are named by (host, boot, worker, seq).
//!
//! A chunk is decoded and produced on tokio's blocking pool, streaming: at most `KAFKA_MAX_IN_FLIGHT` messages
//! of one chunk wait for their acknowledgement at a time, and librdkafka's own queue is bounded, so a broker
//! that pushes back slows the uploader instead of filling memory. The contiguous prefix of a chunk's messages
//! the brokers acknowledged is written to its progress mark (`kafka/progress.rs`) every `KAFKA_MAX_IN_FLIGHT`
//! messages or 200 ms, and a chunk produced again resumes after it: after a kill, what is produced twice is
//! at most, per chunk that was being produced, the messages in flight and those acknowledged since the mark
//! (together at most twice `KAFKA_MAX_IN_FLIGHT`). Acknowledgements are counted per chunk by the
//! producer's delivery callback (each message carries its chunk's counters), served by the producing threads'
//! own polls: no future, channel or thread per message. Ingest refuses an event larger than
//! `KAFKA_MESSAGE_MAX_BYTES` (413), so only a chunk spooled before the limit was lowered can hold one: it is
//! written to a dead-letter file in the spool (`dead-letter/{key}.ndjson`, counted against `MAX_SPOOL_BYTES`)
//! and counted, so it never blocks its chunk. A fatal producer error (librdkafka's idempotence state broken)
//! rebuilds the producer.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};

use super::dead_letter;
use super::object::{Cancel, ChunkFile, ObjectMeta, SinkError, blocking, chunk_lines};
use super::progress::{Mark, Prefix};
use crate::config::KafkaConfig;
use crate::metrics::{KAFKA_ERROR_KINDS, MessageMetrics};
use crate::spool::SpoolDirs;
use crate::spool::Stream;
use crate::state::Shared;
use message::{message_key, record_protocol};

pub(super) mod message;

/// How long librdkafka keeps trying one message before it reports it failed (the chunk is then sent again).
const MESSAGE_TIMEOUT_MS: u64 = 60_000;

type Kafka = BaseProducer<Deliveries>;

pub struct KafkaSink {
    config: KafkaConfig,
    producer: Mutex<Arc<Kafka>>,
    /// Where oversize events go (`{spool}/dead-letter`) and chunks' progress marks (`{spool}/progress`).
    dead_letters: PathBuf,
    progress: PathBuf,
    shared: Arc<Shared>,
}

impl KafkaSink {
    pub fn new(config: &KafkaConfig, dirs: &SpoolDirs, shared: Arc<Shared>) -> Result<KafkaSink, String> {
        let producer = producer(config, &shared)?;
        shared.uploader.kafka.enabled.store(true, Relaxed);
        Ok(KafkaSink {
            config: config.clone(),
            producer: Mutex::new(producer),
            dead_letters: dirs.dead_letter.clone(),
            progress: dirs.progress.clone(),
            shared,
        })
    }

    fn producer(&self) -> Arc<Kafka> {
        self.producer.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// At start: the topic's metadata (does it exist, with partitions).
    pub async fn check(&self) -> Result<String, SinkError> {
        let (producer, config, shared) = (self.producer(), self.config.clone(), self.shared.clone());
        blocking(move || topic_exists(&producer, &config, &config.topic, &shared.uploader.kafka)).await
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
            mark: Mark::of(&self.progress, &chunk.path).reading_the_clock_every(256),
            shared: self.shared.clone(),
        };
        let result = blocking(move || job.run()).await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Some((code, reason)) = producer.client().fatal_error() {
                    count(&self.shared.uploader.kafka, "fatal");
                    tracing::warn!(?code, reason, "kafka producer hit a fatal error; building a new one");
                    if let Ok(fresh) = self::producer(&self.config, &self.shared) {
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
fn topic_exists(
    producer: &Kafka,
    config: &KafkaConfig,
    topic: &str,
    metrics: &MessageMetrics,
) -> Result<String, SinkError> {
    let brokers = &config.brokers;
    // Within the uploader's start-up check (5 s), so that its line names this failure.
    let context = producer.context();
    let metadata = producer.client().fetch_metadata(Some(topic), Duration::from_secs(4)).map_err(|e| {
        count(metrics, kind(&e));
        // rdkafka queues librdkafka's log lines to the main queue: serve them, so `log` has seen the failures.
        producer.poll(Duration::ZERO);
        match context.last_connection_failure() {
            // Refused credentials stay refused until a setting changes: a permanent failure.
            Some(("authorization", reason)) => SinkError::Permanent(format!("kafka {brokers}: {reason}")),
            Some((_, reason)) => SinkError::Retryable(format!("kafka {brokers}: {reason}")),
            None => SinkError::Retryable(format!("kafka {brokers}: {e}")),
        }
    })?;
    // Connected: an old connection failure no longer explains the next one.
    context.last_connection_failure.lock().unwrap_or_else(|e| e.into_inner()).take();
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

fn count(metrics: &MessageMetrics, kind: &str) {
    metrics.count(&KAFKA_ERROR_KINDS, kind);
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
        Some(C::SSL) => "tls",
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

/// A chunk's acknowledgements, counted by the delivery callback.
#[derive(Default)]
struct ChunkAcks {
    /// Messages the brokers acknowledged, and messages that failed.
    done: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<KafkaError>>,
    /// Which of them, as the prefix from the chunk's first message that is all acknowledged.
    prefix: Mutex<Prefix>,
}

impl ChunkAcks {
    fn prefix(&self) -> std::sync::MutexGuard<'_, Prefix> {
        self.prefix.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a message carries to its delivery report: its chunk and its index in it.
struct Pending {
    chunk: Arc<ChunkAcks>,
    index: u64,
}

/// The producer's context: where a delivery report goes (the message's chunk, the metrics), and why the last
/// broker connection failed.
struct Deliveries {
    shared: Arc<Shared>,
    /// librdkafka's own line for the failing broker connections (a TLS handshake, SASL, a refused connection),
    /// with its error kind: a request that fails meanwhile says only "transport failure".
    last_connection_failure: Mutex<Option<(&'static str, String)>>,
}

impl Deliveries {
    fn last_connection_failure(&self) -> Option<(&'static str, String)> {
        self.last_connection_failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ClientContext for Deliveries {
    /// librdkafka logs each failed broker connection (facility `FAIL`, with identical repeats suppressed),
    /// served by the producer's polls; the error event for it comes later, if at all. The line is kept for the failure
    /// it causes (the uploader logs that once per change) and counted by kind; other warnings go to the log.
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if facility == "FAIL" {
            // "[thrd:sasl_ssl://host:port/bootstrap]: sasl_ssl://host:port/bootstrap: SASL authentication error: …"
            // "… (after 21ms in state AUTH_REQ, 1 identical error(s) suppressed)": the same failure, said once.
            let reason = message.split_once("]: ").map_or(message, |(_, rest)| rest);
            let reason = reason.split_once(" (after ").map_or(reason, |(reason, _)| reason);
            let kind = if reason.contains("SASL") {
                "authorization"
            } else if reason.contains("SSL") {
                "tls"
            } else {
                "unreachable"
            };
            count(&self.shared.uploader.kafka, kind);
            // librdkafka words one failure in more than one way; the first line of a kind stays until the kind
            // changes or a connection succeeds, so the uploader's once-per-change log says it once.
            let mut last = self.last_connection_failure.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_ref().is_none_or(|(said, _)| *said != kind) {
                *last = Some((kind, reason.to_string()));
            }
        } else if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            tracing::warn!(facility, "librdkafka: {message}");
        }
    }

    /// Error events that are not a broker connection's (those are `log`ged with their reason first).
    fn error(&self, error: KafkaError, reason: &str) {
        use RDKafkaErrorCode as C;
        let connection = [C::BrokerTransportFailure, C::AllBrokersDown, C::Authentication, C::SSL];
        if !error.rdkafka_error_code().is_some_and(|code| connection.contains(&code)) {
            count(&self.shared.uploader.kafka, kind(&error));
            tracing::warn!(%error, "kafka: {reason}");
        }
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        let Pending { chunk, index } = *pending;
        let metrics = &self.shared.uploader.kafka;
        metrics.in_flight.fetch_sub(1, Relaxed);
        match result {
            Ok(_) => {
                metrics.acknowledged.fetch_add(1, Relaxed);
                chunk.prefix().ack(index);
            }
            Err((e, _)) => {
                count(metrics, kind(e));
                chunk.first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| e.clone());
                chunk.failed.fetch_add(1, Release);
            }
        }
        chunk.done.fetch_add(1, Release);
    }
}

/// A producer as plutos needs it: idempotent, `acks=all`, a finite message timeout.
fn producer(config: &KafkaConfig, shared: &Arc<Shared>) -> Result<Arc<Kafka>, String> {
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
    let context = Deliveries { shared: shared.clone(), last_connection_failure: Mutex::new(None) };
    client.create_with_context(context).map(Arc::new).map_err(|e| format!("kafka producer: {e}"))
}

/// One chunk's production, on the blocking pool.
struct Job {
    producer: Arc<Kafka>,
    config: KafkaConfig,
    object: ObjectMeta,
    chunk: ChunkFile,
    cancel: Cancel,
    dead_letters: PathBuf,
    mark: Mark,
    shared: Arc<Shared>,
}

impl Job {
    fn metrics(&self) -> &MessageMetrics {
        &self.shared.uploader.kafka
    }

    fn run(mut self) -> Result<(), SinkError> {
        let lines = chunk_lines(&self.chunk.path)?;
        // A topic that is gone (deleted, or lost by a broker with in-memory storage) is said at once: producing
        // to it would wait out librdkafka's message timeout first.
        // The bad stream's rows go to their own topic (needed only once a bad row comes).
        let topic = match self.object.stream {
            Stream::Good => self.config.topic.clone(),
            Stream::Bad => self.config.bad_topic.clone(),
        };
        topic_exists(&self.producer, &self.config, &topic, self.metrics())?;
        // Messages before the mark were acknowledged by an earlier attempt (of this process or one killed).
        let resumed = self.mark.load(self.object.events);
        self.metrics().resumed.fetch_add(resumed, Relaxed);
        let acks = Arc::new(ChunkAcks { prefix: Mutex::new(Prefix::starting_at(resumed)), ..ChunkAcks::default() });
        let (host, boot, worker) = (self.object.host.clone(), self.object.boot.clone(), self.object.worker.to_string());
        let window = self.config.max_in_flight;
        let mut key = Vec::new();
        let mut seq = String::new();
        let mut sent = 0u64;
        // The acknowledged prefix as last read.
        let mut known = resumed;
        for (i, line) in lines.enumerate() {
            let (i, line) = (i as u64, line?);
            if line.is_empty() || i < resumed {
                continue;
            }
            if acks.failed.load(Acquire) > 0 {
                break;
            }
            if line.len() as u64 > self.config.message_max_bytes {
                self.dead_letter(&line)?;
                self.metrics().dead_lettered.fetch_add(1, Relaxed);
                acks.prefix().ack(i); // in the dead-letter file, durably: done
                continue;
            }
            seq.clear();
            let _ = std::fmt::Write::write_fmt(&mut seq, format_args!("{}", self.object.first_seq + i));
            let headers = OwnedHeaders::new_with_capacity(5)
                .insert(Header { key: "host", value: Some(host.as_str()) })
                .insert(Header { key: "boot", value: Some(boot.as_str()) })
                .insert(Header { key: "worker", value: Some(worker.as_str()) })
                .insert(Header { key: "seq", value: Some(seq.as_str()) })
                .insert(Header { key: "protocol", value: record_protocol(&line) });
            let has_key = message_key(&self.config.key, &line, &mut key);
            let pending = Box::new(Pending { chunk: acks.clone(), index: i });
            let mut record = BaseRecord::with_opaque_to(&topic, pending).payload(&line[..]).headers(headers);
            if has_key {
                record = record.key(&key[..]);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // librdkafka's queue is full: serve delivery reports until it has room.
                        record = back;
                        self.producer.poll(Duration::from_millis(100));
                    }
                    Err((e, _)) => {
                        count(self.metrics(), kind(&e));
                        return Err(classify(&e));
                    }
                }
            }
            sent += 1;
            self.metrics().in_flight.fetch_add(1, Relaxed);
            // Every 1,024 messages (a few milliseconds): delivery reports served and the deadline checked (its
            // watch takes a lock: per message it cost a visible share).
            if sent.is_multiple_of(1024) {
                if self.cancel.is_cancelled() {
                    return Err(SinkError::Cancelled);
                }
                self.producer.poll(Duration::ZERO);
            }
            self.note_progress(&acks, false);
            // At most `window` messages past the acknowledged prefix (in flight, or acknowledged behind one that
            // is not): what a kill now could make the next start produce again, besides the mark's step. The
            // prefix only grows, so it is read again only when the last one read may be `window` behind.
            if (i + 1).saturating_sub(known) >= window {
                known = acks.prefix().len();
                while (i + 1).saturating_sub(known) >= window && acks.failed.load(Acquire) == 0 {
                    if self.cancel.is_cancelled() {
                        return Err(SinkError::Cancelled);
                    }
                    self.producer.poll(Duration::from_millis(10));
                    self.note_progress(&acks, false);
                    known = acks.prefix().len();
                }
            }
        }
        // Every message's report comes within librdkafka's message timeout.
        while acks.done.load(Acquire) < sent {
            if self.cancel.is_cancelled() {
                return Err(SinkError::Cancelled);
            }
            self.producer.poll(Duration::from_millis(50));
            self.note_progress(&acks, false);
        }
        let failed = acks.first_error.lock().unwrap_or_else(|e| e.into_inner()).take();
        // All acknowledged: the mark says so, in case the process dies before the uploader deletes the chunk.
        self.note_progress(&acks, failed.is_none());
        match failed {
            Some(e) => Err(classify(&e)),
            None => Ok(()),
        }
    }

    /// Writes the chunk's progress mark when its acknowledged prefix moved far or long enough. A mark that
    /// cannot be written costs repeats after a crash, never an event: the chunk goes on.
    fn note_progress(&mut self, acks: &ChunkAcks, force: bool) {
        let done = acks.prefix().len();
        if let Err(e) = self.mark.advance(done, self.config.max_in_flight, force) {
            tracing::debug!(error = %e, "cannot write a chunk's progress mark");
        }
    }

    /// An oversize event goes to the dead-letter file (`dead_letter::write`), not to the brokers.
    fn dead_letter(&self, line: &[u8]) -> Result<(), SinkError> {
        let path = dead_letter::write(&self.dead_letters, &self.object.key, line, &self.shared)?;
        tracing::warn!(
            path = %path.display(),
            bytes = line.len(),
            max = self.config.message_max_bytes,
            "an event over KAFKA_MESSAGE_MAX_BYTES (spooled before the limit was lowered) went to the dead-letter file"
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
