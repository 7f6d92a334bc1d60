//! What every sink receives and returns: the object to store (its key and metadata, the chunk file), the
//! error that says what to do next, the cancellation at the shutdown deadline, and the blocking pool that local
//! file I/O runs on, and the hash of a chunk file.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What a sink stores with each chunk: the S3 user metadata, the file sink's `.meta.json` (`plutos verify` reads
/// both back).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub events: u64,
    #[serde(rename = "first-seq")]
    pub first_seq: u64,
    #[serde(rename = "last-seq")]
    pub last_seq: u64,
    pub sha256: String,
    pub host: String,
    pub boot: String,
    pub worker: u16,
    /// The HTTP Content-Encoding an object store serves the chunk with (not part of the sidecar).
    #[serde(skip)]
    pub content_encoding: Option<&'static str>,
}

/// Why a `put` failed, and so when to try again. The text is the same for every attempt that fails the same
/// way (no request ids, no timestamps), so it can be logged once per change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The sink or the way to it is down, slow or throttling: try again soon, backing off.
    #[error("{0}")]
    Retryable(String),
    /// The request itself is refused (credentials, bucket, policy): nothing changes until a setting does; try
    /// again at a slow cadence, never give up.
    #[error("{0}")]
    Permanent(String),
    /// The shutdown deadline came first; a multipart upload was aborted.
    #[error("cancelled at the shutdown deadline")]
    Cancelled,
}

impl From<std::io::Error> for SinkError {
    /// Local files (the spool, the file sink's root): a full or unwritable disk is an outage an operator fixes.
    fn from(e: std::io::Error) -> SinkError {
        SinkError::Retryable(e.to_string())
    }
}

/// A sealed chunk's file, streamed from the spool so shipping a 64 MiB chunk does not hold it in memory.
#[derive(Debug, Clone)]
pub struct ChunkFile {
    pub path: PathBuf,
    /// Object stores need the length before the body.
    pub len: u64,
}

/// Resolves once the shutdown deadline passed: uploads in flight give up (and abort what they started).
#[derive(Clone)]
pub struct Cancel(tokio::sync::watch::Receiver<bool>);

impl Cancel {
    pub fn new(receiver: tokio::sync::watch::Receiver<bool>) -> Cancel {
        Cancel(receiver)
    }

    /// Whether the deadline passed (for work on the blocking pool, which cannot await).
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    pub async fn cancelled(&mut self) {
        // An error means the sender is gone: nobody can cancel any more, so wait forever.
        if self.0.wait_for(|&cancelled| cancelled).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs blocking file I/O on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The length and hex sha256 of a file, read in 64 KiB pieces.
pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    sha256_of(File::open(path)?)
}

/// The length and hex sha256 of everything `file` reads, in 64 KiB pieces.
pub fn sha256_of(mut file: impl Read) -> io::Result<(u64, String)> {
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
