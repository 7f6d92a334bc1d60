//! `OUTPUT_FORMAT=parquet`: sealed NDJSON chunks, of every worker, merged into few large Parquet objects on the
//! shipping side. `columns` is the schema and the rows; this file writes one object (`ObjectWriter`), says what
//! it holds (`Manifest`, in the object's footer and its sidecar or S3 metadata) and reads one back for
//! `plutos verify`; `merge` is the uploader's side (which chunks go into which object, and crash recovery).
//!
//! An object is a function of its chunks: the same chunks in the same order give the same bytes (no clock, no
//! random id in it), so an object shipped again after a crash lands under the same key with the same sha256.
//! Memory per object being built: the row group in progress (at most `PARQUET_ROW_GROUP_BYTES` encoded, as the
//! writer estimates it, plus each column's page and dictionary in progress, 1 MiB each at most) plus one batch of
//! `BATCH_ROWS` rows as Arrow arrays plus one decoded line.

pub mod columns;
pub mod merge;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use self::columns::{RowError, Rows};
use crate::ship::object::{ObjectMeta, hex};
use crate::spool::encoder::decoder;
use crate::spool::{Codec, Stream};

/// Rows per record batch handed to the writer.
const BATCH_ROWS: usize = 8192;
/// The footer key that holds the manifest.
pub const MANIFEST_KEY: &str = "plutos.manifest";
/// A line longer than this is refused (a record is at most a request body plus its fields).
const MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;

/// How objects are written (`PARQUET_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetConfig {
    /// An object is closed once the NDJSON it holds reaches this many bytes (or its first chunk is a window old).
    pub target_bytes: u64,
    /// A row group is closed once the writer estimates its encoded size at this many bytes.
    pub row_group_bytes: usize,
    pub zstd_level: i32,
}

/// One chunk an object holds: its writer, its place in that writer's sequence, and the sha256 of its decoded
/// lines (the same as `sha256sum` of the decompressed NDJSON chunk or object).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkEntry {
    pub host: String,
    pub boot: String,
    pub worker: u16,
    #[serde(rename = "first-seq")]
    pub first_seq: u64,
    #[serde(rename = "last-seq")]
    pub last_seq: u64,
    pub events: u64,
    pub sha256: String,
}

/// What an object holds, in its footer (`plutos.manifest`) and, with the object's own sha256, in its sidecar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub key: String,
    pub host: String,
    pub stream: Stream,
    pub events: u64,
    /// In the order their rows are in the object.
    pub chunks: Vec<ChunkEntry>,
}

/// The sidecar (`.meta.json`) of a Parquet object: its manifest and the sha256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MergedMeta {
    pub format: String,
    pub sha256: String,
    #[serde(flatten)]
    pub manifest: Manifest,
}

impl MergedMeta {
    /// An NDJSON object's description in the same shape (an object-ready notification's manifest): its one
    /// chunk, whose `sha256` is the object's own.
    pub fn of_chunk(object: &ObjectMeta) -> MergedMeta {
        let chunk = ChunkEntry {
            host: object.host.clone(),
            boot: object.boot.clone(),
            worker: object.worker,
            first_seq: object.first_seq,
            last_seq: object.last_seq,
            events: object.events,
            sha256: object.sha256.clone(),
        };
        MergedMeta {
            format: "ndjson".into(),
            sha256: object.sha256.clone(),
            manifest: Manifest {
                key: object.key.clone(),
                host: object.host.clone(),
                stream: object.stream,
                events: object.events,
                chunks: vec![chunk],
            },
        }
    }
}

/// Why a chunk could not be added to an object.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Reading the chunk or writing the object failed: try again.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The chunk itself is bad: it can never be converted.
    #[error("{0}")]
    Corrupt(String),
}

impl From<parquet::errors::ParquetError> for AppendError {
    fn from(e: parquet::errors::ParquetError) -> AppendError {
        match e {
            parquet::errors::ParquetError::External(inner) => match inner.downcast::<io::Error>() {
                Ok(io) => AppendError::Io(*io),
                Err(other) => AppendError::Io(io::Error::other(other)),
            },
            other => AppendError::Io(io::Error::other(other)),
        }
    }
}

impl From<RowError> for AppendError {
    fn from(e: RowError) -> AppendError {
        match e {
            RowError::Line { .. } => AppendError::Corrupt(e.to_string()),
            RowError::Arrow(e) => AppendError::Io(io::Error::other(e)),
        }
    }
}

/// What one appended chunk was: its lines, their bytes and their sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub lines: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// A Parquet object being written to a file, one chunk at a time.
pub struct ObjectWriter {
    writer: ArrowWriter<File>,
    rows: Rows,
    line: Vec<u8>,
    /// NDJSON bytes appended so far.
    pub ndjson_bytes: u64,
    pub events: u64,
}

fn properties(stream: Stream, config: &ParquetConfig) -> parquet::errors::Result<WriterProperties> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(config.zstd_level)?))
        .set_max_row_group_bytes(Some(config.row_group_bytes))
        .set_dictionary_enabled(false);
    for column in columns::dictionary_columns(stream) {
        builder = builder.set_column_dictionary_enabled(ColumnPath::new(column), true);
    }
    Ok(builder.build())
}

impl ObjectWriter {
    /// A new object of `stream` in the file at `path` (created or truncated).
    pub fn create(path: &Path, stream: Stream, config: &ParquetConfig) -> io::Result<ObjectWriter> {
        let file = File::create(path)?;
        let props = properties(stream, config).map_err(io::Error::other)?;
        let writer = ArrowWriter::try_new(file, columns::schema(stream), Some(props)).map_err(io::Error::other)?;
        Ok(ObjectWriter { writer, rows: Rows::new(stream), line: Vec::new(), ndjson_bytes: 0, events: 0 })
    }

    /// Appends the lines of one NDJSON stream (compressed with `codec`). On an error the object cannot be
    /// finished: what was appended of the chunk stays in it.
    pub fn append(&mut self, compressed: impl Read, codec: Codec) -> Result<Appended, AppendError> {
        let decoded = decoder(codec, compressed).map_err(|e| AppendError::Corrupt(format!("does not decode: {e}")))?;
        let mut reader = BufReader::with_capacity(256 * 1024, decoded);
        let mut hasher = Sha256::new();
        let (mut lines, mut bytes) = (0u64, 0u64);
        loop {
            self.line.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES)
                .read_until(b'\n', &mut self.line)
                .map_err(|e| AppendError::Corrupt(format!("does not decode after {lines} lines: {e}")))?;
            if n == 0 {
                break;
            }
            let Some(record) = self.line.strip_suffix(b"\n") else {
                return Err(AppendError::Corrupt(format!("line {} has no end", lines + 1)));
            };
            hasher.update(&self.line);
            lines += 1;
            bytes += n as u64;
            self.rows.push(record, lines)?;
            if self.rows.len() >= BATCH_ROWS {
                self.writer.write(&self.rows.finish()?)?;
            }
        }
        self.ndjson_bytes += bytes;
        self.events += lines;
        Ok(Appended { lines, bytes, sha256: hex(&hasher.finalize()) })
    }

    /// Writes the last rows and the footer with the manifest; returns the file, synced.
    pub fn finish(mut self, manifest: &Manifest) -> io::Result<File> {
        let parquet = |e: parquet::errors::ParquetError| io::Error::other(e);
        if !self.rows.is_empty() {
            let batch = self.rows.finish().map_err(io::Error::other)?;
            self.writer.write(&batch).map_err(parquet)?;
        }
        let json = serde_json::to_string(manifest).map_err(io::Error::other)?;
        self.writer.append_key_value_metadata(KeyValue::new(MANIFEST_KEY.to_string(), json));
        let mut file = self.writer.into_inner().map_err(parquet)?;
        file.flush()?;
        file.sync_all()?;
        Ok(file)
    }
}

/// What reading a Parquet object back found.
#[derive(Debug)]
pub struct ReadBack {
    pub manifest: Manifest,
    pub rows: u64,
}

/// Reads an object's footer and every row of every column (so a damaged page is found), and returns its
/// manifest and row count.
pub fn read_back(data: bytes::Bytes) -> Result<ReadBack, String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(|e| format!("not a Parquet file: {e}"))?;
    let metadata = builder.metadata().file_metadata();
    let manifest = metadata
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == MANIFEST_KEY))
        .and_then(|kv| kv.value.as_deref())
        .ok_or_else(|| format!("no {MANIFEST_KEY} in its footer"))?;
    let manifest: Manifest = serde_json::from_str(manifest).map_err(|e| format!("{MANIFEST_KEY}: {e}"))?;
    let mut rows = 0u64;
    for batch in builder.build().map_err(|e| e.to_string())? {
        rows += batch.map_err(|e| format!("undecodable after {rows} rows: {e}"))?.num_rows() as u64;
    }
    Ok(ReadBack { manifest, rows })
}

#[cfg(test)]
mod tests;
