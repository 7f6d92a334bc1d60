//! What every sink receives and returns: the object to store (its key and metadata, the chunk file), the
//! error that says what to do next, the cancellation at the shutdown deadline, and the blocking pool that local
//! file I/O runs on, and the hash of a chunk file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::spool::encoder::decoder;
use crate::spool::{Codec, Stream};

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
    /// The worker's stream the chunk is of (absent in the sidecars of plutos before bad rows: good).
    #[serde(default)]
    pub stream: Stream,
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
    /// The sealed chunk itself is bad (its stream does not decode, or does not hold the lines its name counts):
    /// no attempt can ship it, so it is set aside (`spool/corrupt/`) instead of being tried again.
    #[error("the chunk is corrupt: {0}")]
    Corrupt(String),
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

/// The lines of the sealed chunk at `path` (a message sink sends them one by one), decoded as they are read,
/// each without its newline. The uploader checked that the chunk decodes before it is sent; should it not now
/// (the file changed since), it is corrupt, not an outage to retry.
pub fn chunk_lines(path: &Path) -> Result<impl Iterator<Item = Result<Vec<u8>, SinkError>> + use<>, SinkError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let codec =
        Codec::from_file_name(&name).ok_or_else(|| SinkError::Permanent(format!("{name}: not a chunk file name")))?;
    let lines = BufReader::new(decoder(codec, File::open(path)?)?);
    Ok(lines.split(b'\n').map(|line| {
        line.map_err(|e| match e.kind() {
            ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof => {
                SinkError::Corrupt(format!("its stream does not decode: {e}"))
            }
            _ => SinkError::from(e),
        })
    }))
}

/// What reading a sealed chunk through found.
#[derive(Debug, PartialEq, Eq)]
pub enum Inspected {
    /// Its stream decodes whole into exactly the lines its name counts: its length and hex sha256.
    Sound { len: u64, sha256: String },
    /// Why it cannot be shipped.
    Corrupt(String),
}

/// Reads a sealed chunk once: hashes it, and decodes it to check that it is one complete stream of `events`
/// lines, each ending in `\n` — so no sink ships a stream its readers cannot decode, and a chunk the spool's
/// disk damaged is found before it is sent rather than in the middle of sending it. An error reading the file
/// itself (it vanished, the disk failed) is an `Err`; anything wrong with its content is `Corrupt`.
pub fn inspect_chunk(path: &Path, codec: Codec, events: u64) -> io::Result<Inspected> {
    let mut file = Hashing { inner: File::open(path)?, hasher: Sha256::new(), len: 0, failed: None };
    let mut lines = 0u64;
    let mut last = None;
    let decoded = (|| {
        let mut decoder = decoder(codec, &mut file)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = decoder.read(&mut buf)?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
            last = Some(buf[n - 1]);
        }
    })();
    if let Some(e) = file.failed.take() {
        return Err(e);
    }
    if let Err(e) = decoded {
        return Ok(Inspected::Corrupt(format!("its {codec:?} stream does not decode: {e}")));
    }
    // The decoder stops at the end of its stream: bytes after it would not be read by anyone.
    let mut rest = [0u8; 1];
    if file.read(&mut rest)? > 0 {
        return Ok(Inspected::Corrupt("bytes follow the end of its stream".into()));
    }
    if last.is_some_and(|b| b != b'\n') {
        return Ok(Inspected::Corrupt("its last line has no end".into()));
    }
    if lines != events {
        return Ok(Inspected::Corrupt(format!("it holds {lines} lines where its name counts {events}")));
    }
    Ok(Inspected::Sound { len: file.len, sha256: hex(file.hasher.finalize().as_slice()) })
}

/// A reader that hashes what it passes on, and keeps an error of its own reads (told apart from the decoder's).
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
    failed: Option<io::Error>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.len += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.failed = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 0xF)]));
        s
    })
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
    Ok((len, hex(hasher.finalize().as_slice())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Compression;
    use crate::spool::encoder::Encoder;

    fn stream(codec: Codec, lines: u64) -> Vec<u8> {
        let mut encoder = Encoder::new(Compression { codec, level: 3 }).unwrap();
        for i in 0..lines {
            encoder.write(format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(200)).as_bytes()).unwrap();
        }
        encoder.finish().unwrap()
    }

    fn inspect(bytes: &[u8], codec: Codec, events: u64) -> Inspected {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunk");
        std::fs::write(&path, bytes).unwrap();
        inspect_chunk(&path, codec, events).unwrap()
    }

    #[test]
    fn a_whole_stream_of_the_counted_lines_is_sound_and_hashed_as_a_file() {
        for codec in [Codec::Gzip, Codec::Zstd, Codec::None] {
            let bytes = stream(codec, 50);
            let (len, sha256) = sha256_of(&bytes[..]).unwrap();
            assert_eq!(inspect(&bytes, codec, 50), Inspected::Sound { len, sha256 }, "{codec:?}");
        }
    }

    #[test]
    fn a_cut_damaged_padded_or_miscounted_stream_is_corrupt() {
        for codec in [Codec::Gzip, Codec::Zstd, Codec::None] {
            let bytes = stream(codec, 50);
            let corrupt = |bytes: &[u8], events| matches!(inspect(bytes, codec, events), Inspected::Corrupt(_));
            assert!(corrupt(&bytes[..bytes.len() - 7], 50), "{codec:?} cut");
            assert!(corrupt(&bytes, 49) && corrupt(&bytes, 51), "{codec:?} miscounted");
            if codec != Codec::None {
                let mut padded = bytes.clone();
                padded.extend_from_slice(b"garbage");
                assert!(corrupt(&padded, 50), "{codec:?} padded");
                let mut damaged = bytes.clone();
                let middle = damaged.len() / 2;
                damaged[middle..middle + 8].copy_from_slice(b"\xff\x00\xff\x00\xff\x00\xff\x00");
                assert!(corrupt(&damaged, 50), "{codec:?} damaged");
            }
        }
    }

    #[test]
    fn a_chunk_that_is_gone_is_an_error_not_corrupt() {
        let missing = inspect_chunk(Path::new("/nonexistent/chunk.ndjson.gz"), Codec::Gzip, 1).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
