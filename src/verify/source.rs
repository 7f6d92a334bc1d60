//! Where `verify` finds objects: a file sink's directory (each object next to its `.meta.json`) or an S3
//! prefix (each object's `x-amz-meta-*`), read through the S3 sink's own client and settings.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Data, Found, Meta};
use crate::config::S3Config;
use crate::ship::object::ObjectMeta;
use crate::ship::parquet::{Manifest, MergedMeta};
use crate::ship::s3::S3Sink;
use crate::spool::Stream;

/// Every object under `root`, ordered by key. A leftover temporary file (`*.tmp`) is not an object; a sidecar
/// whose object is gone is reported as that object, unreadable.
pub fn directory(root: &Path) -> io::Result<Vec<Found>> {
    let mut files = Vec::new();
    walk(root, &mut files)?;
    files.sort();
    let mut found = Vec::new();
    for path in &files {
        let name = path.to_string_lossy();
        if name.ends_with(".tmp") {
            continue;
        }
        let (object, sidecar) = match name.strip_suffix(".meta.json") {
            Some(object) if files.binary_search(&PathBuf::from(object)).is_ok() => continue,
            Some(object) => (PathBuf::from(object), path.clone()),
            None => (path.clone(), PathBuf::from(format!("{name}.meta.json"))),
        };
        let key = object.strip_prefix(root).unwrap_or(&object).to_string_lossy().into_owned();
        let metadata = match fs::read(&sidecar) {
            Ok(json) if key.ends_with(".parquet") => serde_json::from_slice::<MergedMeta>(&json)
                .map(Meta::Merged)
                .map_err(|e| format!("sidecar .meta.json: {e}")),
            Ok(json) => serde_json::from_slice::<ObjectMeta>(&json)
                .map(Meta::Chunk)
                .map_err(|e| format!("sidecar .meta.json: {e}")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err("no .meta.json sidecar".to_string()),
            Err(e) => Err(format!("sidecar .meta.json: {e}")),
        };
        found.push(Found { key, metadata, data: Data::File(object) });
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(found)
}

/// The files under `dir`.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), files)?;
        } else {
            files.push(entry.path());
        }
    }
    Ok(())
}

/// `s3://bucket/prefix` → (bucket, prefix without slashes at either end).
pub fn parse_s3_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket, prefix.trim_matches('/')))
}

/// Every object under the prefix, ordered by key, each fetched when the iterator reaches it (one chunk in
/// memory at a time).
pub fn s3(config: &S3Config, prefix: &str) -> Result<impl Iterator<Item = Found>, String> {
    let sink = S3Sink::new(config, prefix)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the S3 client's runtime: {e}"))?;
    let mut keys = runtime.block_on(sink.list_keys()).map_err(|e| format!("cannot list the bucket: {e}"))?;
    keys.sort();
    Ok(keys.into_iter().map(move |key| match runtime.block_on(sink.fetch(&key)) {
        Ok((bytes, metadata)) => {
            let metadata = s3_metadata(&key, |name| metadata.get(name).cloned());
            Found { key, metadata, data: Data::Bytes(bytes) }
        }
        Err(e) => Found { key, metadata: Err(format!("cannot be fetched: {e}")), data: Data::Bytes(Vec::new()) },
    }))
}

/// The chunk's fields from the object's user metadata; a Parquet object's summary (its chunks are listed in
/// its footer only).
fn s3_metadata(key: &str, get: impl Fn(&str) -> Option<String>) -> Result<Meta, String> {
    let text = |name: &str| get(name).ok_or_else(|| format!("no {name} metadata"));
    let number = |name: &str| text(name)?.parse::<u64>().map_err(|e| format!("{name} metadata: {e}"));
    let stream = match get("stream").as_deref() {
        None | Some("good") => Stream::Good,
        Some("bad") => Stream::Bad,
        Some(other) => return Err(format!("stream metadata: {other:?} is neither good nor bad")),
    };
    if key.ends_with(".parquet") {
        let manifest = Manifest {
            key: key.to_string(),
            host: text("host")?,
            stream,
            events: number("events")?,
            chunks: Vec::new(),
        };
        return Ok(Meta::Merged(MergedMeta { format: text("format")?, sha256: text("sha256")?, manifest }));
    }
    Ok(Meta::Chunk(ObjectMeta {
        key: key.to_string(),
        events: number("events")?,
        first_seq: number("first-seq")?,
        last_seq: number("last-seq")?,
        sha256: text("sha256")?,
        host: text("host")?,
        boot: text("boot")?,
        worker: u16::try_from(number("worker")?).map_err(|e| format!("worker metadata: {e}"))?,
        stream,
        content_encoding: None,
    }))
}
