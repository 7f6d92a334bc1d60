//! Shipping: the uploader thread (this file) and the sinks it ships to — `sink` (the one sink of this process),
//! `object` (what every sink receives, and how a failure says what to do next), and the backends `s3`, `file`
//! and `stdout`, one file each with the same methods.
//!
//! The uploader thread owns the sink and one current-thread tokio runtime (async sinks such as S3 run on it;
//! workers never touch it). It holds every chunk it was handed until the sink confirmed it, with retry state
//! per chunk and up to `UPLOAD_CONCURRENCY` uploads in flight, so one slow or failing chunk never holds the
//! others back.
//!
//! - A retryable failure (outage, timeout, 5xx, throttling) is tried again after a capped exponential backoff
//!   with jitter, forever.
//! - A permanent failure (credentials, bucket, policy, bad request) is tried again at a slow fixed cadence,
//!   forever: credentials and policies get fixed without a restart. A chunk is never dropped for an error.
//! - Failures are logged once per change of error, not once per attempt; `/metrics` counts every attempt.
//! - A spool file is deleted once its own upload was confirmed, and only then.
//! - Before its first byte goes out a chunk is read through once (hashed, and decoded to check it holds the
//!   lines its name counts); one that does not decode can never be shipped, so it is set aside in
//!   `spool/corrupt/`, counted and logged, instead of being tried forever — the rest keep shipping.
//! - At the shutdown deadline uploads in flight are cancelled (a multipart upload is aborted); every chunk not
//!   confirmed stays in the spool for the next start.
//! - `OUTPUT_FORMAT=parquet`: sealed chunks go to the merge tasks (`parquet/merge.rs`) instead, and what comes
//!   back — a closed Parquet object holding many chunks — is shipped the same way; its chunks' spool files are
//!   deleted once the sink holds it.

mod dead_letter;
pub mod file;
pub mod kafka;
pub mod notify;
pub mod object;
pub mod parquet;
mod progress;
pub mod s3;
pub mod sink;
pub mod sqs;
pub mod stdout;

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crossbeam_channel::Receiver;
use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use crate::config::UploadConfig;
use crate::metrics::add;
use crate::ship::notify::Notifier;
use crate::ship::object::{Cancel, ChunkFile, Inspected, ObjectMeta, SinkError, blocking, inspect_chunk};
use crate::ship::parquet::MergedMeta;
use crate::ship::parquet::merge::{self, Closed, Merging};
use crate::ship::sink::Sink;
use crate::spool::{ChunkId, SealedChunk, SpoolDirs, Stream, UploadJob, repair_open_file};
use crate::state::Shared;

const BACKOFF_START: Duration = Duration::from_millis(100);
/// How long the start-up check of the sink may hold back readiness.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle uploader looks at the shutdown deadline.
const IDLE_WAKE: Duration = Duration::from_millis(200);
/// How often what is set aside in the spool is measured again.
const MEASURE_ASIDE: Duration = Duration::from_secs(5);

pub struct Uploader {
    pub sink: Sink,
    pub dirs: SpoolDirs,
    pub host: String,
    /// This start's boot id (names the Parquet objects it builds).
    pub boot: String,
    pub shared: Arc<Shared>,
    pub settings: UploadConfig,
    /// `NOTIFY_SQS_QUEUE_URL`: says each object the sink holds.
    pub notifier: Option<Notifier>,
}

/// What every upload task needs, shared.
struct Context {
    sink: Sink,
    notifier: Option<Notifier>,
    dirs: SpoolDirs,
    key_prefix: String,
    host: String,
    shared: Arc<Shared>,
}

/// What the uploader ships: a spool job, or a Parquet object the merge tasks closed.
enum Job {
    Spool(UploadJob),
    Object(Closed),
}

/// A job the uploader holds, with its retry state.
struct Held {
    job: Job,
    attempts: u32,
    not_before: Instant,
    last_error: Option<SinkError>,
    /// Unix seconds of the chunk's first event (for the oldest-unshipped gauge).
    first_unix: i64,
}

impl Held {
    fn is_repair(&self) -> bool {
        matches!(self.job, Job::Spool(UploadJob::Repair(_)))
    }

    /// The sealed chunks it ships (a repair: the one it makes).
    fn chunks(&self) -> u64 {
        match &self.job {
            Job::Object(object) => object.chunks.len() as u64,
            Job::Spool(_) => 1,
        }
    }

    fn new(job: Job) -> Held {
        let first_unix = match &job {
            Job::Spool(UploadJob::Sealed(chunk)) => chunk.id.first_unix,
            Job::Spool(UploadJob::Repair(path)) => path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(ChunkId::parse)
                .map_or(crate::event::clock::unix_micros() / 1_000_000, |(id, _)| id.first_unix),
            Job::Object(object) => object.first_unix,
        };
        Held { job, attempts: 0, not_before: Instant::now(), last_error: None, first_unix }
    }
}

/// What an attempt achieved.
enum Done {
    Shipped {
        path: std::path::PathBuf,
        len: u64,
        events: u64,
        latency: Duration,
    },
    Repaired(Option<SealedChunk>),
    /// A Parquet object is in the sink (its chunks are deleted by `finish`).
    Merged {
        latency: Duration,
    },
    /// The spool file is gone (an operator removed it): nothing left to ship.
    Vanished,
}

impl Uploader {
    /// Runs until every worker has hung up and everything is shipped, or the shutdown deadline passed. The
    /// start-up check's outcome goes to `started` (within `CHECK_TIMEOUT`).
    pub fn run(
        self,
        jobs: Receiver<UploadJob>,
        recovered: Vec<SealedChunk>,
        started: crossbeam_channel::Sender<Result<String, SinkError>>,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the uploader's runtime (threads and descriptors available)");
        // Workers hand chunks over a crossbeam channel and never wait; this thread moves them onto the runtime.
        let (incoming, received) = mpsc::channel(64);
        std::thread::Builder::new()
            .name("plutos-upload-rx".into())
            .spawn(move || {
                for job in jobs {
                    if incoming.blocking_send(job).is_err() {
                        break;
                    }
                }
            })
            .expect("a thread to receive sealed chunks");
        runtime.block_on(self.serve(received, recovered, started));
    }

    async fn serve(
        self,
        mut received: mpsc::Receiver<UploadJob>,
        recovered: Vec<SealedChunk>,
        started: crossbeam_channel::Sender<Result<String, SinkError>>,
    ) {
        let Uploader { sink, dirs, host, boot, shared, settings, notifier } = self;
        let key_prefix = settings.key_prefix.clone();
        let checks = async {
            let target = sink.check().await?;
            match &notifier {
                Some(notifier) => Ok(format!("{target}; {}", notifier.check().await?)),
                None => Ok(target),
            }
        };
        let check = match tokio::time::timeout(CHECK_TIMEOUT, checks).await {
            Ok(result) => result,
            Err(_) => Err(SinkError::Retryable(format!("no answer within {} s", CHECK_TIMEOUT.as_secs()))),
        };
        match &check {
            Ok(target) => tracing::info!("shipping to {target}"),
            Err(e) => tracing::error!(
                "the sink cannot take objects: {e}; events are still accepted into the spool and shipped once it can"
            ),
        }
        let _ = started.send(check);

        let merge = settings.parquet.map(|config| {
            Arc::new(Merging {
                dirs: dirs.clone(),
                host: host.clone(),
                boot,
                key_prefix: key_prefix.clone(),
                config,
                window: settings.window,
                shared: shared.clone(),
                next: 0.into(),
                waiting: 0.into(),
            })
        });
        let context = Arc::new(Context { sink, notifier, dirs, key_prefix, host, shared });
        let mut state = State {
            context: context.clone(),
            settings,
            held: VecDeque::new(),
            in_flight: JoinSet::new(),
            in_flight_unix: HashMap::new(),
            last_logged: None,
            failing: 0,
            rng: crate::event::ids::random_u64() | 1,
            in_flight_repairs: 0,
            merge: None,
        };
        let (recovered, mut closed) = match merge {
            Some(merging) => {
                let (rest, closed) = state.start_merging(merging, recovered);
                (rest, Some(closed))
            }
            None => (recovered, None),
        };
        for chunk in recovered {
            state.take(chunk);
        }
        let (cancel_all, cancel) = watch::channel(false);
        let mut open = true;
        let mut measure_aside_at = Instant::now();
        loop {
            state.start_ready(&cancel);
            state.publish();
            if Instant::now() >= measure_aside_at {
                state.measure_aside();
                measure_aside_at = Instant::now() + MEASURE_ASIDE;
            }
            if !open && !state.repairing() {
                // No chunk can come any more: the merge tasks close their last objects and end.
                if let Some(merge) = &mut state.merge {
                    merge.to = None;
                }
            }
            if !open && closed.is_none() && state.held.is_empty() && state.in_flight.is_empty() {
                return;
            }
            let deadline = context.shared.upload_deadline.get().copied().map(Instant::from_std);
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let _ = cancel_all.send(true);
                state.cancel_in_flight().await;
                let left = state.held.len();
                if left > 0 {
                    tracing::warn!(chunks = left, "shutdown timeout: unshipped chunks stay in the spool");
                }
                return;
            }
            let wake = next_wake(state.held.iter().map(|h| h.not_before), Instant::now(), deadline);
            tokio::select! {
                job = received.recv(), if open => match job {
                    Some(UploadJob::Sealed(chunk)) => state.take(chunk),
                    Some(job) => state.held.push_back(Held::new(Job::Spool(job))),
                    None => open = false,
                },
                object = next_closed(&mut closed), if closed.is_some() => match object {
                    Some(object) => state.held.push_back(Held::new(Job::Object(object))),
                    // Both merge tasks have ended.
                    None => closed = None,
                },
                Some(joined) = state.in_flight.join_next_with_id(), if !state.in_flight.is_empty() => {
                    state.finish(joined);
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

/// A sealed chunk no attempt can ship: it moves to `spool/corrupt/` (its bytes from the chunks' count to what
/// is set aside), counted, with one line. Should the move fail, it stays where it is and is not tried again
/// before the next start.
pub(crate) fn set_aside(dirs: &SpoolDirs, shared: &Shared, chunk: &SealedChunk, why: &str) {
    add(&shared.uploader.chunks_corrupt, 1);
    let len = fs::metadata(&chunk.path).map_or(0, |m| m.len());
    match dirs.set_aside(&chunk.path) {
        Ok(to) => {
            shared.spool_shrank(len);
            shared.aside_bytes.fetch_add(len, Relaxed);
            tracing::error!(
                path = %to.display(), events = chunk.events, reason = why,
                "a sealed chunk is corrupt: set aside, never shipped; its events are missing from the sink"
            );
        }
        Err(e) => tracing::error!(
            path = %chunk.path.display(), reason = why, error = %e,
            "a sealed chunk is corrupt and cannot be moved aside; left in the spool until the next start"
        ),
    }
}

/// When the loop must look again without news from the channel or an upload: the next job that comes due, the
/// deadline, and at least every `IDLE_WAKE`. Jobs already due but waiting for a free slot do not count (a
/// finished upload frees one and wakes the loop): counting them made it spin while all slots were busy.
fn next_wake(not_before: impl Iterator<Item = Instant>, now: Instant, deadline: Option<Instant>) -> Instant {
    let next_due = not_before.filter(|&t| t > now).min();
    [Some(now + IDLE_WAKE), next_due, deadline].into_iter().flatten().min().expect("now + IDLE_WAKE")
}

type Attempt = (Held, Result<Done, SinkError>);

struct State {
    context: Arc<Context>,
    settings: UploadConfig,
    /// Jobs waiting for their first attempt or their next one, oldest first.
    held: VecDeque<Held>,
    in_flight: JoinSet<Attempt>,
    /// Per upload in flight: its first event's Unix seconds and the chunks it ships.
    in_flight_unix: HashMap<Id, (i64, u64)>,
    /// The failure logged last: another chunk failing the same way adds no line.
    last_logged: Option<SinkError>,
    /// Chunks whose last attempt failed; "uploads succeed again" once none is left.
    failing: usize,
    rng: u64,
    /// Repairs in flight (each may still bring a chunk).
    in_flight_repairs: usize,
    /// `OUTPUT_FORMAT=parquet`: where sealed chunks go instead of `held`.
    merge: Option<MergeTasks>,
}

/// The two merge tasks (one per stream).
struct MergeTasks {
    merging: Arc<Merging>,
    /// Dropped once no chunk can come any more: the tasks then close their last objects and end.
    to: Option<[mpsc::UnboundedSender<SealedChunk>; 2]>,
}

/// The next object a merge task closed (`None` once both have ended).
async fn next_closed(closed: &mut Option<mpsc::UnboundedReceiver<Closed>>) -> Option<Closed> {
    closed.as_mut()?.recv().await
}

impl State {
    /// Starts a merge task per stream, after finding what a previous run left (`merge::recover`); returns the
    /// recovered chunks no object of that run holds, and where the closed objects come out.
    fn start_merging(
        &mut self,
        merging: Arc<Merging>,
        recovered: Vec<SealedChunk>,
    ) -> (Vec<SealedChunk>, mpsc::UnboundedReceiver<Closed>) {
        let (rebuilds, rest) = match merge::recover(&self.context.dirs, recovered.clone()) {
            Ok(found) => {
                self.context.shared.spool_shrank(found.removed);
                (found.rebuilds, found.rest)
            }
            Err(e) => {
                // Without the lists every chunk is merged anew: a crash between shipping and deleting then shows
                // as duplicated ranges in verify, never as a loss.
                tracing::error!(error = %e, "cannot read the spool's merge lists; merging every chunk anew");
                (Vec::new(), recovered)
            }
        };
        // The rest are counted as they are taken.
        let listed: usize = rebuilds.iter().map(|r| r.chunks()).sum();
        merging.waiting.fetch_add(listed as u64, Relaxed);
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let mut to = Vec::new();
        let mut rebuilds: Vec<_> = rebuilds.into_iter().map(|r| (r.stream(), r)).collect();
        for stream in Stream::ALL {
            let (tx, rx) = mpsc::unbounded_channel();
            let (mine, others) = rebuilds.into_iter().partition(|(s, _)| *s == stream);
            rebuilds = others;
            let mine = mine.into_iter().map(|(_, r)| r).collect();
            tokio::spawn(merging.clone().run(stream, mine, rx, closed_tx.clone()));
            to.push(tx);
        }
        self.merge = Some(MergeTasks { merging, to: to.try_into().ok() });
        (rest, closed)
    }

    /// A sealed chunk to ship: to its stream's merge task, or held to ship alone.
    fn take(&mut self, chunk: SealedChunk) {
        match self.merge.as_ref().and_then(|m| Some((&m.merging, m.to.as_ref()?))) {
            Some((merging, to)) => {
                // Counted until the object holding it closes (or it is set aside).
                merging.waiting.fetch_add(1, Relaxed);
                let _ = to[chunk.id.stream as usize].send(chunk);
            }
            None => self.held.push_back(Held::new(Job::Spool(UploadJob::Sealed(chunk)))),
        }
    }

    /// Whether a repair is waiting or running (it may still bring a chunk).
    fn repairing(&self) -> bool {
        self.held.iter().any(Held::is_repair) || self.in_flight_repairs > 0
    }

    /// Starts the oldest jobs that are due, up to the concurrency.
    fn start_ready(&mut self, cancel: &watch::Receiver<bool>) {
        let now = Instant::now();
        while self.in_flight.len() < self.settings.concurrency {
            let Some(due) = self.held.iter().position(|h| h.not_before <= now) else {
                return;
            };
            let held = self.held.remove(due).expect("found above");
            let (first_unix, chunks) = (held.first_unix, held.chunks());
            self.in_flight_repairs += usize::from(held.is_repair());
            let task = self.in_flight.spawn(attempt(held, self.context.clone(), Cancel::new(cancel.clone())));
            self.in_flight_unix.insert(task.id(), (first_unix, chunks));
        }
    }

    /// Updates the gauges: chunks held, uploads in flight, the age of the oldest.
    fn publish(&self) {
        let metrics = &self.context.shared.uploader;
        let held: u64 = self.held.iter().map(Held::chunks).sum();
        let in_flight: u64 = self.in_flight_unix.values().map(|(_, chunks)| chunks).sum();
        let merging = self.merge.as_ref().map_or(0, |m| m.merging.waiting.load(Relaxed));
        metrics.chunks_queued.store(held + in_flight + merging, Relaxed);
        metrics.uploads_in_flight.store(self.in_flight.len() as u64, Relaxed);
        let in_flight = self.in_flight_unix.values().map(|(first_unix, _)| *first_unix);
        let oldest = self.held.iter().map(|h| h.first_unix).chain(in_flight).min();
        metrics.oldest_unshipped_unix.store(oldest.unwrap_or(0), Relaxed);
    }

    fn finish(&mut self, joined: Result<(Id, Attempt), tokio::task::JoinError>) {
        let (id, (mut held, result)) = match joined {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        self.in_flight_unix.remove(&id);
        self.in_flight_repairs -= usize::from(held.is_repair());
        let shared = self.context.shared.clone();
        match result {
            Ok(Done::Shipped { path, len, events, latency }) => {
                if let Err(e) = fs::remove_file(&path) {
                    // Shipped, so nothing is lost; the next start ships it again under the same key.
                    tracing::error!(path = %path.display(), error = %e, "cannot delete a shipped chunk from the spool");
                }
                progress::remove(&self.context.dirs.progress, &path);
                shared.spool_shrank(len);
                let metrics = &shared.uploader;
                add(&metrics.chunks_shipped, 1);
                add(&metrics.events_shipped, events);
                add(&metrics.bytes_shipped, len);
                metrics.upload_seconds.observe(latency);
                shared.sink_succeeded();
                self.recovered(&held);
            }
            Ok(Done::Merged { latency }) => {
                let Job::Object(object) = &held.job else { unreachable!("only objects are merged") };
                shared.spool_shrank(object.delete());
                let metrics = &shared.uploader;
                add(&metrics.chunks_shipped, object.chunks.len() as u64);
                add(&metrics.events_shipped, object.meta.manifest.events);
                add(&metrics.bytes_shipped, object.len);
                metrics.upload_seconds.observe(latency);
                shared.sink_succeeded();
                self.recovered(&held);
            }
            Ok(Done::Repaired(Some(chunk))) => {
                self.recovered(&held);
                match self.merge.as_ref().and_then(|m| m.to.as_ref()) {
                    Some(_) => self.take(chunk),
                    None => self.held.push_front(Held::new(Job::Spool(UploadJob::Sealed(chunk)))),
                }
            }
            Ok(Done::Repaired(None) | Done::Vanished) => self.recovered(&held),
            // Still in the spool: counted with what is left at the deadline.
            Err(SinkError::Cancelled) => self.held.push_back(held),
            Err(SinkError::Corrupt(why)) => {
                self.set_aside(&held, &why);
                self.recovered(&held);
            }
            Err(e) => {
                held.attempts += 1;
                let wait = self.wait_after(&e, held.attempts);
                held.not_before = Instant::now() + wait;
                match &e {
                    SinkError::Permanent(_) => {
                        add(&shared.uploader.permanent_failures, 1);
                        shared.uploader.permanent_error.store(true, Relaxed);
                    }
                    _ => add(&shared.uploader.retryable_failures, 1),
                }
                if held.last_error.is_none() {
                    self.failing += 1;
                }
                // A line when this chunk's failure changed, unless another chunk just reported the same.
                if held.last_error.as_ref() != Some(&e) && self.last_logged.as_ref() != Some(&e) {
                    let retry_in_ms = wait.as_millis() as u64;
                    match &e {
                        SinkError::Permanent(_) => tracing::error!(
                            error = %e, retry_in_ms,
                            "upload refused; retrying slowly until a setting changes (logged once per change)"
                        ),
                        _ => {
                            tracing::warn!(error = %e, retry_in_ms, "upload failed; retrying (logged once per change)")
                        }
                    }
                    self.last_logged = Some(e.clone());
                }
                held.last_error = Some(e);
                self.held.push_back(held);
            }
        }
    }

    fn set_aside(&mut self, held: &Held, why: &str) {
        if let Job::Spool(UploadJob::Sealed(chunk)) = &held.job {
            set_aside(&self.context.dirs, &self.context.shared, chunk, why);
        }
    }

    /// Measures again what is set aside in the spool (an operator may have taken some of it away).
    fn measure_aside(&self) {
        match self.context.dirs.aside_bytes() {
            Ok(bytes) => self.context.shared.aside_bytes.store(bytes, Relaxed),
            Err(e) => tracing::debug!(error = %e, "cannot measure what is set aside in the spool"),
        }
    }

    /// A chunk that had failed is done: once no chunk is failing any more, say so.
    fn recovered(&mut self, held: &Held) {
        if held.last_error.is_some() {
            self.failing -= 1;
            if self.failing == 0 && self.last_logged.take().is_some() {
                tracing::info!("uploads succeed again");
            }
        }
    }

    /// Retryable: capped exponential backoff with jitter (between half and all of it). Permanent: fixed.
    fn wait_after(&mut self, e: &SinkError, attempts: u32) -> Duration {
        if let SinkError::Permanent(_) = e {
            return self.settings.permanent_retry;
        }
        let backoff =
            BACKOFF_START.saturating_mul(1 << attempts.saturating_sub(1).min(20)).min(self.settings.backoff_max);
        // xorshift
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = backoff.as_millis() as u64 / 2;
        Duration::from_millis(half + self.rng % (half + 1))
    }

    /// The deadline passed: every upload in flight aborts what it started; their chunks stay in the spool.
    async fn cancel_in_flight(&mut self) {
        while let Some(joined) = self.in_flight.join_next_with_id().await {
            self.finish(joined);
        }
    }
}

/// One attempt at a job.
async fn attempt(held: Held, context: Arc<Context>, cancel: Cancel) -> Attempt {
    let result = match &held.job {
        Job::Object(object) => ship_object(&context, object, cancel).await,
        Job::Spool(UploadJob::Sealed(chunk)) => ship(&context, chunk.clone(), cancel).await,
        Job::Spool(UploadJob::Repair(path)) => {
            let (dirs, path, shared) = (context.dirs.clone(), path.clone(), context.shared.clone());
            blocking(move || {
                let before = fs::metadata(&path).map_or(0, |m| m.len());
                let repaired = repair_open_file(&dirs, &path)?;
                let after = repaired.as_ref().and_then(|c| fs::metadata(&c.path).ok()).map_or(0, |m| m.len());
                shared.spool_grew(after);
                shared.spool_shrank(before);
                Ok(Done::Repaired(repaired))
            })
            .await
            .map_err(|e: io::Error| SinkError::from(e))
        }
    };
    (held, result)
}

/// Ships a closed Parquet object (it was written and hashed when it was closed).
async fn ship_object(context: &Context, object: &Closed, cancel: Cancel) -> Result<Done, SinkError> {
    let start = Instant::now();
    let file = ChunkFile { path: object.path.clone(), len: object.len };
    context.sink.put_merged(&object.meta, &file, &cancel).await?;
    notify(context, &object.meta, object.len).await?;
    tracing::debug!(key = %object.meta.manifest.key, events = object.meta.manifest.events, "shipped");
    Ok(Done::Merged { latency: start.elapsed() })
}

async fn ship(context: &Context, chunk: SealedChunk, cancel: Cancel) -> Result<Done, SinkError> {
    let start = Instant::now();
    let (path, codec, events) = (chunk.path.clone(), chunk.id.codec, chunk.events);
    let (len, sha256) = match blocking(move || inspect_chunk(&path, codec, events)).await {
        Ok(Inspected::Sound { len, sha256 }) => (len, sha256),
        Ok(Inspected::Corrupt(why)) => return Err(SinkError::Corrupt(why)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::error!(path = %chunk.path.display(), "sealed chunk vanished from the spool");
            return Ok(Done::Vanished);
        }
        Err(e) => return Err(e.into()),
    };
    let object = ObjectMeta {
        key: chunk.id.object_key(&context.key_prefix, &context.host),
        events: chunk.events,
        first_seq: chunk.id.first_seq,
        last_seq: chunk.last_seq(),
        sha256,
        host: context.host.clone(),
        boot: chunk.id.boot.clone(),
        worker: chunk.id.worker,
        stream: chunk.id.stream,
        content_encoding: chunk.id.codec.content_encoding(),
    };
    context.sink.put(&object, &ChunkFile { path: chunk.path.clone(), len }, &cancel).await?;
    if context.notifier.is_some() {
        notify(context, &MergedMeta::of_chunk(&object), len).await?;
    }
    tracing::debug!(key = %object.key, events = chunk.events, "shipped");
    Ok(Done::Shipped { path: chunk.path, len, events: chunk.events, latency: start.elapsed() })
}

/// Says that the object `meta` describes is in the sink (`NOTIFY_SQS_QUEUE_URL`), before its spool file may go: a
/// notification that fails fails the upload, which is tried again.
async fn notify(context: &Context, meta: &MergedMeta, size: u64) -> Result<(), SinkError> {
    let Some(notifier) = &context.notifier else { return Ok(()) };
    let metrics = &context.shared.uploader;
    match notifier.ready(meta, size).await {
        Ok(()) => {
            metrics.notifications.fetch_add(1, Relaxed);
            Ok(())
        }
        Err(e) => {
            metrics.notifications_failed.fetch_add(1, Relaxed);
            Err(match e {
                SinkError::Retryable(why) => SinkError::Retryable(format!("object-ready notification: {why}")),
                SinkError::Permanent(why) => SinkError::Permanent(format!("object-ready notification: {why}")),
                other => other,
            })
        }
    }
}

#[cfg(test)]
mod tests;
