//! Sinks: where sealed chunks go. Only the uploader thread calls them; a worker never touches a sink.
//!
//! Every backend has one file and the same method, `put(object, chunk)`, which returns only once the object is
//! stored (the uploader deletes the spool file after that). `put` of the same key twice must be harmless: a
//! chunk shipped but not yet deleted when the process died is shipped again by the next start.

mod file;
mod stdout;

use std::io;
use std::path::Path;

pub use file::FileSink;
pub use stdout::StdoutSink;

use crate::config::SinkConfig;

/// What a sink stores with each chunk (the S3 user metadata / the file sink's `.meta.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectMeta {
    pub key: String,
    pub events: u64,
    #[serde(rename = "first-seq")]
    pub first_seq: u64,
    #[serde(rename = "last-seq")]
    pub last_seq: u64,
    pub sha256: String,
    /// The HTTP Content-Encoding an object store serves the chunk with (not part of the sidecar).
    #[serde(skip)]
    pub content_encoding: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again (network, disk, permissions that may be fixed).
    #[error("{0}")]
    Retryable(#[from] io::Error),
}

/// A sealed chunk's bytes, streamed from its spool file so shipping a 64 MiB chunk does not hold it in memory.
pub struct ChunkFile<'a> {
    pub path: &'a Path,
    /// Object stores need the length before the body.
    pub len: u64,
}

pub enum Sink {
    File(FileSink),
    Stdout(StdoutSink),
    /// Benchmarks only: accepts and forgets.
    Discard,
}

impl Sink {
    pub fn from_config(config: &SinkConfig) -> Sink {
        match config {
            SinkConfig::File { root } => Sink::File(FileSink::new(root.clone())),
            SinkConfig::Stdout => Sink::Stdout(StdoutSink::new()),
            SinkConfig::Discard => Sink::Discard,
        }
    }

    pub fn put(&mut self, object: &ObjectMeta, chunk: &ChunkFile<'_>) -> Result<(), SinkError> {
        match self {
            Sink::File(s) => s.put(object, chunk),
            Sink::Stdout(s) => s.put(object, chunk),
            Sink::Discard => Ok(()),
        }
    }
}
