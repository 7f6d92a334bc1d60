//! `verify` of a Parquet object (`OUTPUT_FORMAT=parquet`): read whole, checked against its metadata and its
//! footer's manifest, and the chunks the manifest lists handed back to be tiled like NDJSON objects.

use super::{Data, Found, Meta, Writer, in_bad_stream};
use crate::ship::object::sha256_of;
use crate::ship::parquet::{Manifest, read_back};
use crate::spool::Stream;

/// A chunk a Parquet object's footer lists: its writer, first and last sequence number, events.
pub(super) type Listed = (Writer, u64, u64, u64);

/// A Parquet object: every way it disagrees with its metadata or its own footer, the chunks its footer lists,
/// and — when its footer cannot be read (a cut object) — the chunks its sidecar lists, whose events are
/// missing. When the footer can be read its chunks are tiled even if the object has other problems.
pub(super) fn check(object: &Found) -> (Vec<String>, Vec<Listed>, Vec<Listed>) {
    let metadata = match &object.metadata {
        Ok(Meta::Merged(m)) => Some(m),
        Ok(Meta::Chunk(_)) => return (vec!["its metadata describes an NDJSON chunk".into()], Vec::new(), Vec::new()),
        Err(_) => None,
    };
    let listed = |manifest: &Manifest| -> Vec<Listed> {
        manifest
            .chunks
            .iter()
            .map(|c| {
                let writer =
                    Writer { host: c.host.clone(), boot: c.boot.clone(), worker: c.worker, stream: manifest.stream };
                (writer, c.first_seq, c.last_seq, c.events)
            })
            .collect()
    };
    let unreadable = metadata.map(|m| listed(&m.manifest)).unwrap_or_default();
    let mut problems = Vec::new();
    if let Err(why) = &object.metadata {
        problems.push(why.clone());
    }
    let bytes = match &object.data {
        Data::File(path) => std::fs::read(path).map(bytes::Bytes::from),
        Data::Bytes(bytes) => Ok(bytes::Bytes::from(bytes.clone())),
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(e) => return ([problems, vec![format!("cannot be read: {e}")]].concat(), Vec::new(), unreadable),
    };
    if let Some(m) = metadata {
        let (_, sha256) = sha256_of(&bytes[..]).expect("reading memory");
        if sha256 != m.sha256 {
            problems.push(format!("sha256 {sha256} differs from its metadata's {}", m.sha256));
        }
    }
    let back = match read_back(bytes) {
        Ok(back) => back,
        Err(why) => return ([problems, vec![why]].concat(), Vec::new(), unreadable),
    };
    let manifest = &back.manifest;
    if manifest.key != object.key {
        problems.push(format!("its footer names the key {}", manifest.key));
    }
    if back.rows != manifest.events {
        problems.push(format!("holds {} rows, its footer says {} events", back.rows, manifest.events));
    }
    let counted: u64 = manifest.chunks.iter().map(|c| c.events).sum();
    if counted != manifest.events {
        problems.push(format!("its footer lists chunks of {counted} events in all, and says {}", manifest.events));
    }
    if let Some(m) = metadata {
        let described = &m.manifest;
        if described.events != manifest.events || described.host != manifest.host || described.stream != manifest.stream
        {
            problems.push("its metadata and its footer disagree (events, host or stream)".into());
        }
        if !described.chunks.is_empty() && described.chunks != manifest.chunks {
            problems.push("its sidecar and its footer list different chunks".into());
        }
    }
    if (manifest.stream == Stream::Bad) != in_bad_stream(&object.key) {
        problems.push(format!(
            "its footer says stream {} but the key is {}under bad/",
            manifest.stream.name(),
            if manifest.stream == Stream::Bad { "not " } else { "" }
        ));
    }
    let chunks = listed(manifest);
    for (writer, first, last, events) in &chunks {
        if last.checked_sub(*first).and_then(|d| d.checked_add(1)) != Some(*events) {
            problems.push(format!("its footer lists {writer} first-seq {first} .. last-seq {last} as {events} events"));
        }
    }
    (problems, chunks, Vec::new())
}
