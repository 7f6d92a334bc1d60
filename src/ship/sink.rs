//! Sinks: where sealed chunks go. Only the uploader thread calls them; a worker never touches a sink.
//!
//! Every backend has one file and a `put` that returns only once the object is stored (the uploader deletes the
//! spool file after that). The local ones (`file`, `stdout`) are blocking and run on tokio's blocking pool; S3's is
//! async and takes the `Cancel` of the shutdown deadline. Only S3 has a start-up check of its own (`check`: can
//! the bucket take objects at all); the enum answers it for the others. `put` of the same key twice must count as
//! done: a chunk shipped but not yet deleted when the process died is shipped again by the next start. A failure
//! says what to do next (`SinkError`).

use super::file::FileSink;
use super::kafka::KafkaSink;
use super::object::{Cancel, ChunkFile, ObjectMeta, SinkError, blocking};
use super::parquet::MergedMeta;
use super::s3::S3Sink;
use super::sqs::SqsSink;
use super::stdout::StdoutSink;
use crate::config::SinkConfig;
use crate::spool::SpoolDirs;

pub enum Sink {
    File(FileSink),
    Stdout(StdoutSink),
    S3(S3Sink),
    Kafka(KafkaSink),
    Sqs(SqsSink),
    /// Benchmarks only: accepts and forgets.
    Discard,
    /// The uploader's unit tests: does what each test scripts.
    #[cfg(test)]
    Scripted(super::tests::Scripted),
}

impl Sink {
    /// Builds the sink; S3, Kafka and SQS can fail here (their settings are checked, not the service).
    /// `spool`: the spool directory (the message sinks' dead-letter files and progress marks go next to its
    /// chunks); `shared`: where they count their messages.
    pub fn from_config(
        config: &SinkConfig,
        key_prefix: &str,
        spool: &std::path::Path,
        shared: &std::sync::Arc<crate::state::Shared>,
    ) -> Result<Sink, String> {
        Ok(match config {
            SinkConfig::File { root } => Sink::File(FileSink::new(root.clone())),
            SinkConfig::Stdout => Sink::Stdout(StdoutSink),
            SinkConfig::S3(s3) => Sink::S3(S3Sink::new(s3, key_prefix)?),
            SinkConfig::Kafka(kafka) => Sink::Kafka(KafkaSink::new(kafka, &SpoolDirs::at(spool), shared.clone())?),
            SinkConfig::Sqs(sqs) => Sink::Sqs(SqsSink::new(sqs, &SpoolDirs::at(spool), shared.clone())?),
            SinkConfig::Discard => Sink::Discard,
        })
    }

    /// Stores the chunk under `object.key`. Local sinks do their file I/O on tokio's blocking pool so the
    /// uploader's runtime keeps serving the other uploads.
    pub async fn put(&self, object: &ObjectMeta, chunk: &ChunkFile, cancel: &Cancel) -> Result<(), SinkError> {
        match self {
            Sink::File(sink) => {
                let (sink, object, chunk) = (sink.clone(), object.clone(), chunk.clone());
                blocking(move || sink.put(&object, &chunk)).await
            }
            Sink::Stdout(sink) => {
                let (sink, chunk) = (*sink, chunk.clone());
                blocking(move || sink.put(&chunk)).await
            }
            Sink::S3(sink) => sink.put(object, chunk, cancel.clone()).await,
            Sink::Kafka(sink) => sink.put(object, chunk, cancel).await,
            Sink::Sqs(sink) => sink.put(object, chunk, cancel).await,
            Sink::Discard => Ok(()),
            #[cfg(test)]
            Sink::Scripted(sink) => sink.put(object, chunk, cancel).await,
        }
    }

    /// Stores a Parquet object (`OUTPUT_FORMAT=parquet`, which only the file and S3 sinks take) under its
    /// manifest's key.
    pub async fn put_merged(&self, meta: &MergedMeta, file: &ChunkFile, cancel: &Cancel) -> Result<(), SinkError> {
        match self {
            Sink::File(sink) => {
                let (sink, meta, file) = (sink.clone(), meta.clone(), file.clone());
                blocking(move || sink.put_merged(&meta, &file)).await
            }
            Sink::S3(sink) => sink.put_merged(meta, file, cancel.clone()).await,
            Sink::Discard => Ok(()),
            _ => Err(SinkError::Permanent("this sink takes no Parquet objects (OUTPUT_FORMAT=parquet)".into())),
        }
    }

    /// What an object-ready notification says the object is in: `eventSource` and the bucket's name (the file
    /// sink's root for the file sink).
    pub fn notification_source(&self) -> (&'static str, String) {
        match self {
            Sink::S3(sink) => ("aws:s3", sink.bucket().to_string()),
            Sink::File(sink) => {
                let root = std::path::absolute(sink.root()).unwrap_or_else(|_| sink.root().to_path_buf());
                ("plutos:file", root.display().to_string())
            }
            _ => ("plutos", String::new()),
        }
    }

    /// At start: can the sink take objects? `Ok` describes where they go.
    pub async fn check(&self) -> Result<String, SinkError> {
        match self {
            Sink::File(sink) => Ok(format!("file sink under {}", sink.root().display())),
            Sink::Stdout(_) => Ok("stdout sink".into()),
            Sink::S3(sink) => sink.check().await,
            Sink::Kafka(sink) => sink.check().await,
            Sink::Sqs(sink) => sink.check().await,
            Sink::Discard => Ok("discard sink".into()),
            #[cfg(test)]
            Sink::Scripted(_) => Ok("scripted sink".into()),
        }
    }
}
