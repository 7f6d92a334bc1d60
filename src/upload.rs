//! The uploader thread: owns the sink, ships sealed chunks in order, retries failures with capped exponential
//! backoff and jitter (no retry limit), and deletes a spool file only after the sink confirmed it. Workers
//! hand it chunks over a bounded channel and never wait for it.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use sha2::{Digest, Sha256};

use crate::metrics::add;
use crate::sink::{ChunkFile, ObjectMeta, Sink, SinkError};
use crate::spool::{SealedChunk, SpoolDirs, repair_open_file};
use crate::state::Shared;

pub enum UploadJob {
    Sealed(SealedChunk),
    /// An open chunk a worker had to abandon after a failed write: repair it, then ship it.
    Repair(PathBuf),
}

pub struct Uploader {
    pub sink: Sink,
    pub dirs: SpoolDirs,
    pub key_prefix: String,
    pub host: String,
    pub shared: Arc<Shared>,
    pub backoff_max: Duration,
}

const BACKOFF_START: Duration = Duration::from_millis(100);
/// How often an idle uploader looks at the shutdown deadline.
const IDLE_WAKE: Duration = Duration::from_millis(200);

impl Uploader {
    /// Runs until every worker has hung up and the queue is empty, or the shutdown deadline passed.
    pub fn run(mut self, jobs: Receiver<UploadJob>, recovered: Vec<SealedChunk>) {
        let mut queue: VecDeque<UploadJob> = recovered.into_iter().map(UploadJob::Sealed).collect();
        let mut backoff = BACKOFF_START;
        let mut rng = crate::ids::random_u64() | 1;
        let mut hung_up = false;
        loop {
            loop {
                match jobs.try_recv() {
                    Ok(job) => queue.push_back(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        hung_up = true;
                        break;
                    }
                }
            }
            self.shared.uploader.chunks_queued.store(queue.len() as u64, Relaxed);
            if self.past_deadline() {
                if !queue.is_empty() {
                    tracing::warn!(chunks = queue.len(), "shutdown timeout: unshipped chunks stay in the spool");
                }
                return;
            }
            let Some(job) = queue.pop_front() else {
                if hung_up {
                    return;
                }
                receive_for(&jobs, IDLE_WAKE, &mut queue, &mut hung_up);
                continue;
            };
            match self.process(job) {
                Ok(None) => backoff = BACKOFF_START,
                Ok(Some(next)) => queue.push_front(next),
                Err((job, e)) => {
                    queue.push_front(job);
                    add(&self.shared.uploader.upload_failures, 1);
                    // xorshift: jitter between half and all of the backoff.
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let half = backoff.as_millis() as u64 / 2;
                    let wait = Duration::from_millis(half + rng % (half + 1));
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "upload failed");
                    let wait = match self.shared.upload_deadline.get() {
                        Some(deadline) => wait.min(deadline.saturating_duration_since(Instant::now())),
                        None => wait,
                    };
                    receive_for(&jobs, wait, &mut queue, &mut hung_up);
                    backoff = (backoff * 2).min(self.backoff_max);
                }
            }
        }
    }

    fn past_deadline(&self) -> bool {
        self.shared.upload_deadline.get().is_some_and(|d| Instant::now() >= *d)
    }

    /// Ships or repairs one job. `Ok(Some(next))`: the job became another (a repaired chunk to ship).
    fn process(&mut self, job: UploadJob) -> Result<Option<UploadJob>, (UploadJob, SinkError)> {
        match job {
            UploadJob::Repair(path) => {
                let before = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                match repair_open_file(&self.dirs, &path) {
                    Ok(repaired) => {
                        let after = repaired.as_ref().and_then(|c| fs::metadata(&c.path).ok()).map_or(0, |m| m.len());
                        self.shared.spool_grew(after);
                        self.shared.spool_shrank(before);
                        Ok(repaired.map(UploadJob::Sealed))
                    }
                    Err(e) => Err((UploadJob::Repair(path), SinkError::Retryable(e))),
                }
            }
            UploadJob::Sealed(chunk) => match self.ship(&chunk) {
                Ok(()) => Ok(None),
                Err(e) => Err((UploadJob::Sealed(chunk), e)),
            },
        }
    }

    fn ship(&mut self, chunk: &SealedChunk) -> Result<(), SinkError> {
        let (len, sha256) = match sha256_file(&chunk.path) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::error!(path = %chunk.path.display(), "sealed chunk vanished from the spool");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let object = ObjectMeta {
            key: chunk.id.object_key(&self.key_prefix, &self.host),
            events: chunk.events,
            first_seq: chunk.id.first_seq,
            last_seq: chunk.last_seq(),
            sha256,
            content_encoding: chunk.id.codec.content_encoding(),
        };
        self.sink.put(&object, &ChunkFile { path: &chunk.path, len })?;
        fs::remove_file(&chunk.path)?;
        let shared = &self.shared;
        shared.spool_shrank(len);
        add(&shared.uploader.chunks_shipped, 1);
        add(&shared.uploader.events_shipped, chunk.events);
        add(&shared.uploader.bytes_shipped, len);
        tracing::debug!(key = %object.key, events = chunk.events, "shipped");
        Ok(())
    }
}

/// The length and hex sha256 of a file, read in 64 KiB pieces.
fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    let hex = hasher.finalize().iter().fold(String::with_capacity(64), |mut s, b| {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 0xF)]));
        s
    });
    Ok((len, hex))
}

/// Waits up to `wait` for jobs, queueing whatever arrives.
fn receive_for(jobs: &Receiver<UploadJob>, wait: Duration, queue: &mut VecDeque<UploadJob>, hung_up: &mut bool) {
    if *hung_up {
        std::thread::sleep(wait);
        return;
    }
    match jobs.recv_timeout(wait) {
        Ok(job) => queue.push_back(job),
        Err(RecvTimeoutError::Timeout) => {}
        Err(RecvTimeoutError::Disconnected) => *hung_up = true,
    }
}

/// The host name for object keys.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = if rc == 0 { String::from_utf8_lossy(&buf[..end]).into_owned() } else { String::new() };
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    if clean.is_empty() { "localhost".to_string() } else { clean }
}
