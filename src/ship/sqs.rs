//! The SQS sink (`DRIVER=sqs`): every event of a sealed chunk becomes one message — its record line as the body,
//! `host`, `boot`, `worker`, `seq` and `protocol` as message attributes — sent with `SendMessageBatch`.
//!
//! - A batch holds up to 10 entries and at most `SQS_MAX_MESSAGE_BYTES` of messages, each counted as SQS counts
//!   it (body, and each attribute's name, type and value). An event whose message is over the limit, or whose
//!   body SQS cannot carry (a character outside XML's), is written to the spool's dead-letter file as the Kafka
//!   sink does (counted, inside `MAX_SPOOL_BYTES`), never sent.
//! - A chunk is decoded on tokio's blocking pool into batches; up to `SQS_MAX_IN_FLIGHT` of its batches are in
//!   flight at once. SQS answers a batch entry by entry: the entries it failed are sent again alone (a few
//!   times, backing off), the others never; an entry refused for its content (`SenderFault`) goes to the
//!   dead-letter file. A request that fails whole (no connection, 5xx, throttling) is tried again a few times,
//!   then the chunk fails and the uploader tries it again later.
//! - `put` returns only once every entry was accepted (or dead-lettered), so the uploader deletes a spool file
//!   only then. When a batch fails, the batches in flight with it are still answered and counted, and the
//!   entries SQS accepted are remembered: the chunk's next attempt by this process sends only the others. The
//!   contiguous prefix of the chunk's entries accepted so far is written to its progress mark (as for Kafka), and
//!   the next start after a kill resumes after it.
//! - FIFO queues (`.fifo`): `MessageGroupId` per writer or per `user_id` (`SQS_FIFO_GROUP`) and
//!   `MessageDeduplicationId` = host:boot:worker:seq, so SQS drops a copy sent again within its deduplication
//!   window (5 minutes). Order within a group is the order entries were accepted, which several batches in flight
//!   and entry retries can change: the `seq` attribute orders a writer's events.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::dead_letter;
use super::kafka::message::record_protocol;
use super::object::{Cancel, ChunkFile, ObjectMeta, SinkError, blocking, chunk_lines};
use super::progress::{Mark, Prefix};
use crate::config::{FifoGroup, SqsConfig};
use crate::metrics::{MessageMetrics, SQS_ERROR_KINDS};
use crate::spool::{SpoolDirs, Stream};
use crate::state::Shared;
use client::{SqsClient, SqsError};

pub mod client;

/// SQS's most entries per batch.
const BATCH_ENTRIES: usize = 10;
/// Tries of one batch's entries (the first included) before the chunk fails and waits for the uploader's retry.
const ATTEMPTS: u32 = 4;
/// The mark is written every this many accepted entries at least (or every 200 ms).
const MARK_STEP: u64 = 1000;

pub struct SqsSink {
    client: SqsClient,
    config: SqsConfig,
    /// The entries SQS accepted of each chunk whose last attempt failed (until it is sent whole).
    earlier: Mutex<HashMap<PathBuf, Prefix>>,
    dead_letters: PathBuf,
    progress: PathBuf,
    shared: Arc<Shared>,
}

/// One event as an SQS batch entry.
struct Entry {
    /// Its line's index in the chunk (its `Id` in the batch).
    index: u64,
    body: String,
    attributes: Value,
    group: Option<String>,
    dedup: Option<String>,
}

/// What the reader hands the senders: entries to send, and entries already done (dead-lettered).
#[derive(Default)]
struct Batch {
    entries: Vec<Entry>,
    done: Vec<u64>,
}

/// What sending a batch came to: the indices SQS accepted, and the entries it refused for their content.
struct Sent {
    accepted: Vec<u64>,
    refused: Vec<Entry>,
}

impl SqsSink {
    pub fn new(config: &SqsConfig, dirs: &SpoolDirs, shared: Arc<Shared>) -> Result<SqsSink, String> {
        let client = SqsClient::new(&config.queue_url, config.endpoint.as_deref(), config.region.as_deref())?;
        shared.uploader.sqs.enabled.store(true, Relaxed);
        Ok(SqsSink {
            client,
            config: config.clone(),
            earlier: Mutex::default(),
            dead_letters: dirs.dead_letter.clone(),
            progress: dirs.progress.clone(),
            shared,
        })
    }

    fn metrics(&self) -> &MessageMetrics {
        &self.shared.uploader.sqs
    }

    /// At start: the queue exists and plutos may read its attributes.
    pub async fn check(&self) -> Result<String, SinkError> {
        let queue = &self.config.queue_url;
        self.client.queue_attributes(queue).await.map_err(|e| self.counted(e))?;
        let kind = if self.config.fifo.is_some() { "FIFO queue" } else { "queue" };
        Ok(format!("SQS {kind} {queue} (reachable)"))
    }

    fn counted(&self, e: SqsError) -> SinkError {
        self.metrics().count(&SQS_ERROR_KINDS, e.kind);
        e.error
    }

    /// Sends every event of `chunk` and returns once SQS accepted each one.
    pub async fn put(&self, object: &ObjectMeta, chunk: &ChunkFile, cancel: &Cancel) -> Result<(), SinkError> {
        let queue = match object.stream {
            Stream::Good => self.config.queue_url.clone(),
            Stream::Bad => self.config.bad_queue_url.clone(),
        };
        let mut mark = Mark::of(&self.progress, &chunk.path);
        let marked = mark.load(object.events);
        let earlier = self.earlier.lock().unwrap_or_else(|e| e.into_inner()).remove(&chunk.path);
        let mut prefix = earlier.filter(|p| p.len() >= marked).unwrap_or_else(|| Prefix::starting_at(marked));
        let window = self.config.max_in_flight;
        let (batches, mut ready) = mpsc::channel(window);
        let reader = Reader {
            path: chunk.path.clone(),
            object: object.clone(),
            config: self.config.clone(),
            done: prefix.clone(),
            cancel: cancel.clone(),
            dead_letters: self.dead_letters.clone(),
            shared: self.shared.clone(),
        };
        let reading = tokio::task::spawn_blocking(move || reader.run(&batches));
        let mut sending = JoinSet::new();
        let mut more = true;
        let mut failed = None;
        let mut cancel = cancel.clone();
        let result = loop {
            if !more && sending.is_empty() {
                break failed.map_or(Ok(()), Err);
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => break Err(SinkError::Cancelled),
                Some(sent) = sending.join_next(), if !sending.is_empty() => {
                    let sent: Result<Sent, SinkError> =
                        sent.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                    match sent {
                        Ok(sent) => {
                            for index in sent.accepted {
                                prefix.ack(index);
                            }
                            for entry in sent.refused {
                                let index = entry.index;
                                match self.dead_letter(object, entry).await {
                                    Ok(()) => prefix.ack(index),
                                    Err(e) => {
                                        failed.get_or_insert(e);
                                        more = false;
                                    }
                                }
                            }
                        }
                        // The batches in flight with it are still answered and counted; no new one starts.
                        Err(e) => {
                            failed.get_or_insert(e);
                            more = false;
                        }
                    }
                    if let Err(e) = mark.advance(prefix.len(), MARK_STEP, false) {
                        tracing::debug!(error = %e, "cannot write a chunk's progress mark");
                    }
                }
                batch = ready.recv(), if more && sending.len() < window => match batch {
                    Some(Ok(batch)) => {
                        let Batch { entries, done } = batch;
                        for index in done {
                            prefix.ack(index);
                        }
                        if !entries.is_empty() {
                            let (client, queue, shared) = (self.client.clone(), queue.clone(), self.shared.clone());
                            sending.spawn(send(client, queue, entries, shared));
                        }
                    }
                    Some(Err(e)) => {
                        failed.get_or_insert(e);
                        more = false;
                    }
                    None => more = false,
                },
            }
        };
        // At the deadline whatever is still in flight is abandoned: its entries are sent again with the chunk.
        sending.abort_all();
        drop(ready);
        let _ = reading.await;
        // All accepted (the mark says so, in case the process dies before the uploader deletes the chunk), or
        // what was accepted is kept for the next attempt.
        if let Err(e) = mark.advance(prefix.len(), MARK_STEP, result.is_ok()) {
            tracing::debug!(error = %e, "cannot write a chunk's progress mark");
        }
        if result.as_ref().is_err_and(|e| !matches!(e, SinkError::Corrupt(_))) {
            self.earlier.lock().unwrap_or_else(|e| e.into_inner()).insert(chunk.path.clone(), prefix);
        }
        result
    }

    /// An entry SQS refused for its content: to the dead-letter file, like an oversize one.
    async fn dead_letter(&self, object: &ObjectMeta, entry: Entry) -> Result<(), SinkError> {
        let (dir, key, shared) = (self.dead_letters.clone(), object.key.clone(), self.shared.clone());
        blocking(move || dead_letter::write(&dir, &key, entry.body.as_bytes(), &shared)).await?;
        self.metrics().dead_lettered.fetch_add(1, Relaxed);
        Ok(())
    }
}

/// Sends one batch until SQS accepted each entry or refused it for its content: failed entries are sent again
/// alone, a failed request again whole, a few times each with a growing pause. Every failure is counted here.
async fn send(
    client: SqsClient,
    queue: String,
    mut pending: Vec<Entry>,
    shared: Arc<Shared>,
) -> Result<Sent, SinkError> {
    let metrics = &shared.uploader.sqs;
    let mut sent = Sent { accepted: Vec::with_capacity(pending.len()), refused: Vec::new() };
    for attempt in 1..=ATTEMPTS {
        let answer = {
            // Counted down also when the task is aborted mid-request (at the shutdown deadline).
            let _in_flight = InFlight::count(&metrics.in_flight, pending.len() as i64);
            metrics.batches.fetch_add(1, Relaxed);
            client.send_batch(request(&queue, &pending)).await
        };
        let failure = match answer {
            Err(e) => {
                metrics.count(&SQS_ERROR_KINDS, e.kind);
                if attempt == ATTEMPTS || !matches!(e.error, SinkError::Retryable(_)) {
                    return Err(e.error);
                }
                e.error
            }
            Ok(answer) => {
                let accepted: std::collections::HashSet<&str> =
                    answer.successful.iter().map(|s| s.id.as_str()).collect();
                let mut again = Vec::new();
                let mut first = None;
                for entry in pending {
                    let id = entry.index.to_string();
                    if accepted.contains(id.as_str()) {
                        metrics.acknowledged.fetch_add(1, Relaxed);
                        sent.accepted.push(entry.index);
                        continue;
                    }
                    // An entry the answer does not name was not accepted either: sent again.
                    match answer.failed.iter().find(|f| f.id == id) {
                        Some(f) if f.sender_fault => {
                            metrics.count(&SQS_ERROR_KINDS, "refused");
                            tracing::warn!(code = %f.code, message = ?f.message, "SQS refused an event for its content: it goes to the dead-letter file");
                            sent.refused.push(entry);
                        }
                        failed => {
                            metrics.count(&SQS_ERROR_KINDS, "entry");
                            first.get_or_insert_with(|| failed.map_or("not in the answer".into(), |f| f.code.clone()));
                            again.push(entry);
                        }
                    }
                }
                pending = again;
                if pending.is_empty() {
                    return Ok(sent);
                }
                let code = first.unwrap_or_default();
                let e = SinkError::Retryable(format!("SQS failed {} entries of a batch ({code})", pending.len()));
                if attempt == ATTEMPTS {
                    return Err(e);
                }
                e
            }
        };
        tracing::debug!(error = %failure, attempt, "an SQS batch is sent again");
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
    unreachable!("the last attempt returns")
}

/// Entries in flight, counted in the gauge while this lives.
struct InFlight<'a>(&'a std::sync::atomic::AtomicI64, i64);

impl<'a> InFlight<'a> {
    fn count(gauge: &'a std::sync::atomic::AtomicI64, n: i64) -> InFlight<'a> {
        gauge.fetch_add(n, Relaxed);
        InFlight(gauge, n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Relaxed);
    }
}

/// The `SendMessageBatch` request of `entries`.
fn request(queue: &str, entries: &[Entry]) -> Vec<u8> {
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut entry = json!({
                "Id": e.index.to_string(),
                "MessageBody": e.body,
                "MessageAttributes": e.attributes,
            });
            if let Some(group) = &e.group {
                entry["MessageGroupId"] = Value::from(group.as_str());
            }
            if let Some(dedup) = &e.dedup {
                entry["MessageDeduplicationId"] = Value::from(dedup.as_str());
            }
            entry
        })
        .collect();
    serde_json::to_vec(&json!({ "QueueUrl": queue, "Entries": entries })).expect("JSON values serialize")
}

/// Decodes a chunk into batches, on the blocking pool.
struct Reader {
    path: PathBuf,
    object: ObjectMeta,
    config: SqsConfig,
    /// The entries an earlier attempt sent (this process's, or one killed: its progress mark).
    done: Prefix,
    cancel: Cancel,
    dead_letters: PathBuf,
    shared: Arc<Shared>,
}

impl Reader {
    fn run(self, out: &mpsc::Sender<Result<Batch, SinkError>>) {
        if let Err(e) = self.read(out) {
            let _ = out.blocking_send(Err(e));
        }
    }

    fn read(&self, out: &mpsc::Sender<Result<Batch, SinkError>>) -> Result<(), SinkError> {
        let lines = chunk_lines(&self.path)?;
        let limit = self.config.max_message_bytes as usize;
        let mut batch = Batch::default();
        let mut bytes = 0;
        for (i, line) in lines.enumerate() {
            let (i, line) = (i as u64, line?);
            if line.is_empty() {
                continue;
            }
            if self.done.contains(i) {
                self.shared.uploader.sqs.resumed.fetch_add(1, Relaxed);
                continue;
            }
            if self.cancel.is_cancelled() {
                return Err(SinkError::Cancelled);
            }
            let entry = match self.entry(i, line) {
                Ok((entry, size)) if size <= limit => (entry, size),
                Ok((entry, size)) => {
                    self.dead_letter(
                        entry.body.as_bytes(),
                        &format!("its message is {size} bytes, over SQS_MAX_MESSAGE_BYTES ({limit})"),
                    )?;
                    batch.done.push(i);
                    continue;
                }
                Err(line) => {
                    self.dead_letter(&line, "SQS cannot carry its characters")?;
                    batch.done.push(i);
                    continue;
                }
            };
            if batch.entries.len() == BATCH_ENTRIES || bytes + entry.1 > limit {
                if out.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                    return Ok(()); // the sending side gave up
                }
                bytes = 0;
            }
            bytes += entry.1;
            batch.entries.push(entry.0);
        }
        if !batch.entries.is_empty() || !batch.done.is_empty() {
            let _ = out.blocking_send(Ok(batch));
        }
        Ok(())
    }

    /// The entry of line `index`, and its size as SQS counts it; the line back when SQS cannot carry it.
    fn entry(&self, index: u64, line: Vec<u8>) -> Result<(Entry, usize), Vec<u8>> {
        let body = String::from_utf8(line).map_err(|e| e.into_bytes())?;
        if !sqs_can_carry(&body) {
            return Err(body.into_bytes());
        }
        let object = &self.object;
        let seq = (object.first_seq + index).to_string();
        let worker = object.worker.to_string();
        let protocol = record_protocol(body.as_bytes()).map(str::to_string);
        let mut attributes = serde_json::Map::new();
        let mut size = body.len();
        let values = [
            ("host", "String", Some(object.host.as_str())),
            ("boot", "String", Some(object.boot.as_str())),
            ("worker", "Number", Some(worker.as_str())),
            ("seq", "Number", Some(seq.as_str())),
            ("protocol", "String", protocol.as_deref()),
        ];
        for (name, data_type, value) in values {
            let Some(value) = value else { continue };
            size += name.len() + data_type.len() + value.len();
            attributes.insert(name.into(), json!({ "DataType": data_type, "StringValue": value }));
        }
        let writer = format!("{}-{}-{}", object.host, object.boot, object.worker);
        let (group, dedup) = match self.config.fifo {
            None => (None, None),
            Some(group) => {
                let group = match group {
                    FifoGroup::User => user_id(body.as_bytes()).map_or_else(|| fifo_id(&writer), |user| fifo_id(&user)),
                    FifoGroup::Writer => fifo_id(&writer),
                };
                (Some(group), Some(fifo_id(&format!("{}:{}:{}:{seq}", object.host, object.boot, object.worker))))
            }
        };
        Ok((Entry { index, body, attributes: Value::Object(attributes), group, dedup }, size))
    }

    fn dead_letter(&self, line: &[u8], why: &str) -> Result<(), SinkError> {
        dead_letter::write(&self.dead_letters, &self.object.key, line, &self.shared)?;
        self.shared.uploader.sqs.dead_lettered.fetch_add(1, Relaxed);
        tracing::warn!(key = %self.object.key, "an event went to the dead-letter file instead of SQS: {why}");
        Ok(())
    }
}

/// Whether SQS takes `body` as a message: XML's characters only (#x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD,
/// #x10000 to #x10FFFF). A record line escapes every control character, so only U+FFFE and U+FFFF can be in one.
fn sqs_can_carry(body: &str) -> bool {
    body.chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
}

/// The record's own `user_id` (the last `,"user_id":"` of the line, as for `protocol`), unescaped enough for an id.
fn user_id(line: &[u8]) -> Option<String> {
    let at = memchr::memmem::rfind(line, b",\"user_id\":\"")? + 12;
    let end = at + memchr::memchr(b'"', &line[at..])?;
    std::str::from_utf8(&line[at..end]).ok().filter(|u| !u.is_empty()).map(str::to_string)
}

/// A FIFO group or deduplication id: `text` itself when SQS allows it (1 to 128 characters, alphanumeric or
/// punctuation), else a digest of it.
fn fifo_id(text: &str) -> String {
    if (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic()) {
        return text.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_ids_are_the_text_when_sqs_allows_it_else_a_digest() {
        assert_eq!(fifo_id("host-01boot-3"), "host-01boot-3");
        assert_eq!(fifo_id("h:b:1:42"), "h:b:1:42");
        let spaced = fifo_id("a user with spaces");
        assert_eq!((spaced.len(), spaced.bytes().all(|b| b.is_ascii_hexdigit())), (64, true));
        assert_eq!(fifo_id(&"x".repeat(129)).len(), 64);
        assert_ne!(fifo_id("a b"), fifo_id("a c"));
    }

    #[test]
    fn sqs_carries_xml_characters_only() {
        assert!(sqs_can_carry("{\"a\":\"é ☃ 𝄞\"}\t\n"));
        assert!(!sqs_can_carry("\u{FFFE}"));
        assert!(!sqs_can_carry("\u{FFFF}"));
        assert!(!sqs_can_carry("\u{1}"));
    }

    #[test]
    fn the_user_id_is_the_records_own() {
        let line = br#"{"raw_data":{"user_id":"inner"},"protocol":"plutos","user_id":"u-1","anonymous_id":null}"#;
        assert_eq!(user_id(line).as_deref(), Some("u-1"));
        assert_eq!(user_id(br#"{"raw_data":{},"user_id":null}"#), None);
    }
}
