//! `plutos convert SOURCE DEST`: NDJSON objects that a file or S3 sink holds (a directory or
//! `s3://bucket/prefix`) become the Parquet objects `OUTPUT_FORMAT=parquet` would have written, under DEST — so
//! a deployment that switches formats converts what is already in the bucket, and `plutos verify` checks both.
//!
//! Objects are read in key order, each stream on its own; consecutive objects of one partition directory
//! (`…/created_date=…/hour=…/`) are merged until the NDJSON they hold reaches `PARQUET_TARGET_BYTES`. An
//! object keeps the first source object's key with `.parquet` for its extension, so converting again writes
//! the same keys with the same bytes. A source object that does not match its metadata (sha256, line count)
//! is reported and left out; the conversion then exits 1.

use std::path::{Path, PathBuf};

use crate::config::{Args, s3_bucket};
use crate::ship::file::FileSink;
use crate::ship::object::{Cancel, ChunkFile, ObjectMeta, sha256_file, sha256_of};
use crate::ship::parquet::{ChunkEntry, Manifest, MergedMeta, ObjectWriter, ParquetConfig};
use crate::ship::s3::S3Sink;
use crate::spool::{Codec, Stream};
use crate::verify::source::{self, parse_s3_url};
use crate::verify::{Data, Found, Meta};

/// What a conversion did.
#[derive(Debug, Default)]
pub struct Converted {
    pub sources: u64,
    pub objects: u64,
    pub events: u64,
    /// One line per source object left out.
    pub skipped: Vec<String>,
}

enum Dest {
    File(FileSink),
    S3(S3Sink, String),
}

/// An object being built: its key, its writer, the chunks so far.
struct Open {
    key: String,
    stream: Stream,
    host: String,
    partition: String,
    writer: ObjectWriter,
    entries: Vec<ChunkEntry>,
}

/// Converts everything under `source` into `dest` (both a directory or `s3://bucket/prefix`).
pub fn run(args: &Args, source: &str, dest: &str) -> Result<Converted, String> {
    let config = ParquetConfig {
        target_bytes: args.parquet_target_bytes.max(1),
        row_group_bytes: usize::try_from(args.parquet_row_group_bytes.max(1)).unwrap_or(usize::MAX),
        zstd_level: args.parquet_zstd_level as i32,
    };
    let source_s3 = match parse_s3_url(source) {
        Some((bucket, prefix)) => Some((s3_bucket(args, bucket).map_err(|e| e.to_string())?, prefix)),
        None => None,
    };
    let (found, source_prefix): (Box<dyn Iterator<Item = Found>>, String) = match &source_s3 {
        Some((s3, prefix)) => (Box::new(source::s3(s3, prefix)?), prefix.to_string()),
        None => {
            let found = source::directory(Path::new(source)).map_err(|e| format!("{source}: {e}"))?;
            (Box::new(found.into_iter()), String::new())
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let dest = match parse_s3_url(dest) {
        Some((bucket, prefix)) => {
            let s3 = s3_bucket(args, bucket).map_err(|e| e.to_string())?;
            Dest::S3(S3Sink::new(&s3, prefix)?, prefix.to_string())
        }
        None => Dest::File(FileSink::new(PathBuf::from(dest))),
    };
    let workdir = WorkDir::create()?;
    let work = workdir.0.as_path();
    let mut converted = Converted::default();
    let mut open: [Option<Open>; 2] = [None, None];
    for object in found {
        let Some(codec) = Codec::from_file_name(&object.key) else { continue };
        converted.sources += 1;
        let meta = match &object.metadata {
            Ok(Meta::Chunk(meta)) => meta.clone(),
            Ok(Meta::Merged(_)) => continue,
            Err(why) => {
                converted.skipped.push(format!("{}: {why}", object.key));
                continue;
            }
        };
        if let Err(why) = matches_metadata(&object, &meta) {
            converted.skipped.push(format!("{}: {why}", object.key));
            continue;
        }
        let relative = object.key.strip_prefix(&source_prefix).unwrap_or(&object.key).trim_start_matches('/');
        let partition = relative.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
        let slot = &mut open[meta.stream as usize];
        let full =
            slot.as_ref().is_some_and(|o| o.partition != partition || o.writer.ndjson_bytes >= config.target_bytes);
        if full {
            converted.objects += 1;
            finish(&runtime, &dest, work, slot.take().expect("checked"))?;
        }
        if slot.is_none() {
            let stem = relative.split(".ndjson").next().unwrap_or(relative);
            let key = match &dest {
                Dest::S3(_, prefix) if !prefix.is_empty() => format!("{prefix}/{stem}.parquet"),
                _ => format!("{stem}.parquet"),
            };
            let writer =
                ObjectWriter::create(&work.join(format!("{}.parquet", meta.stream.name())), meta.stream, &config)
                    .map_err(|e| format!("cannot write in {}: {e}", work.display()))?;
            *slot = Some(Open {
                key,
                stream: meta.stream,
                host: meta.host.clone(),
                partition,
                writer,
                entries: Vec::new(),
            });
        }
        let building = slot.as_mut().expect("opened above");
        let reader = data(&object).map_err(|e| format!("{}: {e}", object.key))?;
        let appended = building.writer.append(reader, codec).map_err(|e| format!("{}: {e}", object.key))?;
        building.entries.push(ChunkEntry {
            host: meta.host.clone(),
            boot: meta.boot.clone(),
            worker: meta.worker,
            first_seq: meta.first_seq,
            last_seq: meta.last_seq,
            events: appended.lines,
            sha256: appended.sha256,
        });
        converted.events += appended.lines;
    }
    for slot in &mut open {
        if let Some(building) = slot.take() {
            converted.objects += 1;
            finish(&runtime, &dest, work, building)?;
        }
    }
    Ok(converted)
}

/// The sha256 of the object's bytes and its line count must be what its metadata says: a damaged source is
/// not converted (its events would be attributed to sequence numbers they may not be).
fn matches_metadata(object: &Found, meta: &ObjectMeta) -> Result<(), String> {
    let (_, sha256) = sha256_of(data(object).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if sha256 != meta.sha256 {
        return Err(format!("sha256 {sha256} differs from its metadata's {}", meta.sha256));
    }
    Ok(())
}

fn data(object: &Found) -> std::io::Result<Box<dyn std::io::Read + '_>> {
    Ok(match &object.data {
        Data::File(path) => Box::new(std::fs::File::open(path)?),
        Data::Bytes(bytes) => Box::new(bytes.as_slice()),
    })
}

/// Closes the object and stores it with its manifest.
fn finish(runtime: &tokio::runtime::Runtime, dest: &Dest, work: &Path, open: Open) -> Result<(), String> {
    let Open { key, stream, host, writer, entries, .. } = open;
    let path = work.join(format!("{}.parquet", stream.name()));
    let manifest = Manifest { key: key.clone(), host, stream, events: writer.events, chunks: entries };
    writer.finish(&manifest).map_err(|e| format!("{key}: {e}"))?;
    let (len, sha256) = sha256_file(&path).map_err(|e| format!("{key}: {e}"))?;
    let meta = MergedMeta { format: "parquet".into(), sha256, manifest };
    let file = ChunkFile { path, len };
    let (_never, cancel) = tokio::sync::watch::channel(false);
    let stored = match dest {
        Dest::File(sink) => sink.put_merged(&meta, &file),
        Dest::S3(sink, _) => runtime.block_on(sink.put_merged(&meta, &file, Cancel::new(cancel))),
    };
    stored.map_err(|e| format!("{key}: {e}"))
}

/// The working directory of the objects being built, removed with everything in it however the run ends.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<WorkDir, String> {
        let dir = std::env::temp_dir().join(format!("plutos-convert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
