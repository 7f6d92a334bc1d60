//! The uploader's side of `OUTPUT_FORMAT=parquet`: one merge task per stream takes the sealed chunks of every
//! worker, in the order they come, and appends each to the object it is building (on tokio's blocking pool, off
//! the workers' loops). An object is closed when the NDJSON it holds reaches `PARQUET_TARGET_BYTES`, when its
//! first chunk is one upload window (`MAX_BUFFER_TIME_SECONDS`) old, or at shutdown; it then goes to the uploader,
//! which ships it like a chunk (retries, backoff, concurrency) and deletes its chunks' spool files only once the
//! sink holds it.
//!
//! ```text
//! {spool}/merge/{host}-{boot}-m{n:08}.parquet   an object being built or waiting to ship
//! {spool}/merge/{host}-{boot}-m{n:08}.json      the chunks a closed object holds, written before it ships
//! ```
//!
//! Crashes: the list of a closed object's chunks is durable before the object is shipped, and an object is a
//! function of its chunks. A start finds each list and builds the same object again from the same chunks, so one
//! that was shipped before the crash is shipped again under the same key with the same bytes (the file sink
//! replaces it with itself; S3 finds it there with the same sha256) — never a second copy of its events. When
//! some of a list's chunks are gone, the object was durable (chunks are deleted only after that) and the rest
//! are deleted too. An object being built when the process died was never shipped: its file is removed and its
//! chunks merged anew.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{AppendError, ChunkEntry, Manifest, MergedMeta, ObjectWriter, ParquetConfig};
use crate::event::clock::Civil;
use crate::ship::object::{blocking, sha256_file};
use crate::spool::{SealedChunk, SpoolDirs, Stream, write_durably};
use crate::state::Shared;

/// How long an object that failed to be written (a full disk) waits before it is built again.
const RETRY_WAIT: Duration = Duration::from_secs(1);

/// A closed object, durable in the spool with the list of its chunks, ready to ship.
#[derive(Debug)]
pub struct Closed {
    pub meta: MergedMeta,
    pub path: PathBuf,
    pub len: u64,
    /// The list of its chunks (`{name}.json`).
    pub list: PathBuf,
    /// Its chunks' spool files, deleted once it is shipped.
    pub chunks: Vec<SealedChunk>,
    /// Unix seconds of its earliest chunk's first event.
    pub first_unix: i64,
}

impl Closed {
    /// Deletes its chunks, then its list and its file: called once the sink holds it. Returns the spool bytes
    /// freed.
    pub fn delete(&self) -> u64 {
        let mut freed = 0;
        for chunk in &self.chunks {
            let len = fs::metadata(&chunk.path).map_or(0, |m| m.len());
            match fs::remove_file(&chunk.path) {
                Ok(()) => freed += len,
                // Shipped, so nothing is lost; the next start finds the list and deletes the rest.
                Err(e) => {
                    tracing::error!(path = %chunk.path.display(), error = %e, "cannot delete a shipped chunk");
                    return freed;
                }
            }
        }
        let _ = fs::remove_file(&self.list);
        if fs::remove_file(&self.path).is_ok() {
            freed += self.len;
        }
        freed
    }
}

/// The list of a closed object's chunks, as written to the spool.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct List {
    key: String,
    /// The sealed chunks' file names, in the object's order.
    chunks: Vec<String>,
}

/// What a merge task needs, shared by both streams.
pub struct Merging {
    pub dirs: SpoolDirs,
    pub host: String,
    pub boot: String,
    pub key_prefix: String,
    pub config: ParquetConfig,
    /// The upload window: an object's first chunk waits at most this long.
    pub window: Duration,
    pub shared: Arc<Shared>,
    /// The number of the next object this process names.
    pub next: AtomicU64,
    /// Chunks handed to the merge tasks and in no closed object yet (part of `plutos_chunks_queued`).
    pub waiting: AtomicU64,
}

/// An object to build again at start: its name, its key and its chunks in order.
pub struct Rebuild {
    name: String,
    key: String,
    chunks: Vec<SealedChunk>,
}

impl Rebuild {
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    pub fn stream(&self) -> Stream {
        self.chunks.first().map_or(Stream::Good, |c| c.id.stream)
    }
}

/// What a previous run left in `spool/merge/`.
pub struct Recovered {
    /// The closed objects to build again from their lists.
    pub rebuilds: Vec<Rebuild>,
    /// The recovered chunks no list names.
    pub rest: Vec<SealedChunk>,
    /// Bytes of the files removed (the start counted them in the spool): object files, and the chunks of an
    /// object that was shipped.
    pub removed: u64,
}

/// At start: the lists of closed objects a previous run left. Every object file is removed: a listed one is
/// built again, any other was never shipped.
pub fn recover(dirs: &SpoolDirs, recovered: Vec<SealedChunk>) -> io::Result<Recovered> {
    let mut by_name: HashMap<String, SealedChunk> = recovered
        .into_iter()
        .map(|c| (c.path.file_name().unwrap_or_default().to_string_lossy().into_owned(), c))
        .collect();
    let mut rebuilds = Vec::new();
    let mut removed = 0;
    let entries = match fs::read_dir(&dirs.merge) {
        Ok(entries) => entries.collect::<io::Result<Vec<_>>>()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut names: Vec<PathBuf> = entries.into_iter().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            removed += fs::metadata(&path)?.len();
            fs::remove_file(&path)?;
            continue;
        };
        let list: List = match fs::read(&path).map(|json| serde_json::from_slice(&json)) {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                tracing::error!(path = %path.display(), error = %e, "an unreadable merge list: its chunks are merged anew");
                fs::remove_file(&path)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let present: Vec<Option<SealedChunk>> = list.chunks.iter().map(|n| by_name.remove(n)).collect();
        if present.iter().all(Option::is_some) {
            let chunks = present.into_iter().flatten().collect();
            rebuilds.push(Rebuild { name: stem.to_string(), key: list.key, chunks });
        } else {
            // Its deletion had begun, so the object is in the sink: finish it.
            for chunk in present.into_iter().flatten() {
                removed += fs::metadata(&chunk.path)?.len();
                fs::remove_file(&chunk.path)?;
            }
            fs::remove_file(&path)?;
            tracing::info!(key = %list.key, "an object shipped before the last stop: its remaining chunks deleted");
        }
    }
    let mut rest: Vec<SealedChunk> = by_name.into_values().collect();
    rest.sort_by(|a, b| (a.id.first_unix, &a.path).cmp(&(b.id.first_unix, &b.path)));
    Ok(Recovered { rebuilds, rest, removed })
}

/// The object a task is building.
struct Building {
    name: String,
    writer: ObjectWriter,
    chunks: Vec<SealedChunk>,
    entries: Vec<ChunkEntry>,
    started: Instant,
}

impl Merging {
    fn path(&self, name: &str, extension: &str) -> PathBuf {
        self.dirs.merge.join(format!("{name}.{extension}"))
    }

    /// `{prefix}/[bad/]created_date=…/hour=…/{name}.parquet`, partitioned by its earliest event.
    fn key(&self, stream: Stream, first_unix: i64, name: &str) -> String {
        let partition = Civil::from_unix(first_unix).partition();
        let bad = if stream == Stream::Bad { "bad/" } else { "" };
        match self.key_prefix.as_str() {
            "" => format!("{bad}{partition}/{name}.parquet"),
            prefix => format!("{prefix}/{bad}{partition}/{name}.parquet"),
        }
    }

    /// One stream's task: rebuilds what a crash left, then merges chunks as they come until `chunks` closes,
    /// and closes the last object.
    pub async fn run(
        self: Arc<Self>,
        stream: Stream,
        rebuilds: Vec<Rebuild>,
        mut chunks: mpsc::UnboundedReceiver<SealedChunk>,
        closed: mpsc::UnboundedSender<Closed>,
    ) {
        let mut queue = VecDeque::new();
        for rebuild in rebuilds {
            queue.extend(self.rebuild(stream, rebuild, &closed).await);
        }
        let mut building: Option<Building> = None;
        let mut open = true;
        loop {
            if let Some(b) = &building {
                let due = b.writer.ndjson_bytes >= self.config.target_bytes
                    || b.started.elapsed() >= self.window
                    || (!open && queue.is_empty());
                if due {
                    let b = building.take().expect("checked above");
                    match self.close(stream, b, None).await {
                        Ok(object) => self.hand_over(object, &closed),
                        Err((chunks, e)) => self.failed(&mut queue, chunks, &e).await,
                    }
                    continue;
                }
            }
            if let Some(chunk) = queue.pop_front() {
                building = self.append(stream, building, chunk, &mut queue).await;
                continue;
            }
            if !open {
                return;
            }
            let due = building.as_ref().map(|b| b.started + self.window);
            tokio::select! {
                chunk = chunks.recv() => match chunk {
                    Some(chunk) => queue.push_back(chunk),
                    None => open = false,
                },
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {}
            }
        }
    }

    /// Appends one chunk, starting an object when none is being built. A chunk that cannot be converted is set
    /// aside; the object it was going into cannot be finished, so its other chunks go back to the queue.
    async fn append(
        self: &Arc<Self>,
        stream: Stream,
        building: Option<Building>,
        chunk: SealedChunk,
        queue: &mut VecDeque<SealedChunk>,
    ) -> Option<Building> {
        let this = self.clone();
        let (building, result) = blocking(move || this.append_blocking(stream, building, chunk)).await;
        match result {
            Ok(building) => Some(building),
            Err((chunk, AppendError::Io(e))) if e.kind() == io::ErrorKind::NotFound && !chunk.path.exists() => {
                tracing::error!(path = %chunk.path.display(), "sealed chunk vanished from the spool");
                self.waiting.fetch_sub(1, Relaxed);
                building
            }
            Err((chunk, AppendError::Corrupt(why))) => {
                crate::ship::set_aside(&self.dirs, &self.shared, &chunk, &why);
                self.waiting.fetch_sub(1, Relaxed);
                self.abandon(building, queue);
                None
            }
            Err((chunk, AppendError::Io(e))) => {
                queue.push_front(chunk);
                self.abandon(building, queue);
                tracing::warn!(error = %e, "cannot write a Parquet object; building it again shortly");
                tokio::time::sleep(RETRY_WAIT).await;
                None
            }
        }
    }

    /// Removes an object that cannot be finished; its chunks go back to the front of the queue, in order.
    fn abandon(&self, building: Option<Building>, queue: &mut VecDeque<SealedChunk>) {
        let Some(b) = building else { return };
        let _ = fs::remove_file(self.path(&b.name, "parquet"));
        for chunk in b.chunks.into_iter().rev() {
            queue.push_front(chunk);
        }
    }

    #[allow(clippy::type_complexity)]
    fn append_blocking(
        &self,
        stream: Stream,
        building: Option<Building>,
        chunk: SealedChunk,
    ) -> (Option<Building>, Result<Building, (SealedChunk, AppendError)>) {
        let mut b = match building {
            Some(b) => b,
            None => {
                let n = self.next.fetch_add(1, Relaxed);
                let name = format!("{}-{}-m{n:08}", self.host, self.boot);
                match fs::create_dir_all(&self.dirs.merge)
                    .and_then(|()| ObjectWriter::create(&self.path(&name, "parquet"), stream, &self.config))
                {
                    Ok(writer) => {
                        Building { name, writer, chunks: Vec::new(), entries: Vec::new(), started: Instant::now() }
                    }
                    Err(e) => return (None, Err((chunk, e.into()))),
                }
            }
        };
        let appended = fs::File::open(&chunk.path)
            .map_err(AppendError::from)
            .and_then(|file| b.writer.append(file, chunk.id.codec));
        let appended = match appended {
            Ok(a) if a.lines == chunk.events => a,
            Ok(a) => {
                let why = format!("it holds {} lines where its name counts {}", a.lines, chunk.events);
                return (Some(b), Err((chunk, AppendError::Corrupt(why))));
            }
            // Nothing of it was read: the object is still whole.
            Err(AppendError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                return (Some(b), Err((chunk, AppendError::Io(e))));
            }
            Err(e) => return (Some(b), Err((chunk, e))),
        };
        b.entries.push(ChunkEntry {
            host: self.host.clone(),
            boot: chunk.id.boot.clone(),
            worker: chunk.id.worker,
            first_seq: chunk.id.first_seq,
            last_seq: chunk.last_seq(),
            events: chunk.events,
            sha256: appended.sha256,
        });
        b.chunks.push(chunk);
        (None, Ok(b))
    }

    /// Finishes the object and writes the list of its chunks, durably; `key` is a rebuilt object's own. On a
    /// failure the object is removed and its chunks are returned.
    async fn close(
        self: &Arc<Self>,
        stream: Stream,
        b: Building,
        key: Option<String>,
    ) -> Result<Closed, (Vec<SealedChunk>, io::Error)> {
        let this = self.clone();
        blocking(move || {
            let first_unix = b.chunks.iter().map(|c| c.id.first_unix).min().unwrap_or_default();
            let key = key.unwrap_or_else(|| this.key(stream, first_unix, &b.name));
            let manifest = Manifest {
                key: key.clone(),
                host: this.host.clone(),
                stream,
                events: b.writer.events,
                chunks: b.entries,
            };
            let path = this.path(&b.name, "parquet");
            let list_path = this.path(&b.name, "json");
            let result = (|| {
                b.writer.finish(&manifest)?;
                let (len, sha256) = sha256_file(&path)?;
                let names = b.chunks.iter().map(|c| c.path.file_name().unwrap_or_default().to_string_lossy());
                let list = List { key, chunks: names.map(|n| n.into_owned()).collect() };
                write_durably(&list_path, &serde_json::to_vec(&list).map_err(io::Error::other)?)?;
                Ok((len, sha256))
            })();
            match result {
                Ok((len, sha256)) => {
                    this.shared.spool_grew(len);
                    let meta = MergedMeta { format: "parquet".into(), sha256, manifest };
                    Ok(Closed { meta, path, len, list: list_path, chunks: b.chunks, first_unix })
                }
                Err(e) => {
                    let _ = fs::remove_file(&path);
                    Err((b.chunks, e))
                }
            }
        })
        .await
    }

    /// A closed object goes to the uploader; its chunks are counted there from now on.
    fn hand_over(&self, object: Closed, closed: &mpsc::UnboundedSender<Closed>) {
        self.waiting.fetch_sub(object.chunks.len() as u64, Relaxed);
        let _ = closed.send(object);
    }

    /// A close that failed (a full disk): its chunks go back to the queue after a wait.
    async fn failed(&self, queue: &mut VecDeque<SealedChunk>, chunks: Vec<SealedChunk>, e: &io::Error) {
        tracing::warn!(error = %e, "cannot finish a Parquet object; building it again shortly");
        for chunk in chunks.into_iter().rev() {
            queue.push_front(chunk);
        }
        tokio::time::sleep(RETRY_WAIT).await;
    }

    /// Builds a closed object of a previous run again, under its name and key, from the same chunks in the same
    /// order. Should that fail (a chunk became unreadable), its list is dropped and the chunks that remain are
    /// returned, to be merged anew (verify then reports their events as duplicated ranges if the old object
    /// was shipped).
    async fn rebuild(
        self: &Arc<Self>,
        stream: Stream,
        rebuild: Rebuild,
        closed: &mpsc::UnboundedSender<Closed>,
    ) -> VecDeque<SealedChunk> {
        let Rebuild { name, key, chunks } = rebuild;
        let listed = chunks.len();
        let mut queue = VecDeque::new();
        let this = self.clone();
        let path = self.path(&name, "parquet");
        let created = blocking(move || {
            fs::create_dir_all(&this.dirs.merge)?;
            ObjectWriter::create(&path, stream, &this.config)
        })
        .await;
        let mut building = match created {
            Ok(writer) => Some(Building {
                name: name.clone(),
                writer,
                chunks: Vec::new(),
                entries: Vec::new(),
                started: Instant::now(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot build a shipped object again; its chunks are merged anew");
                None
            }
        };
        for chunk in chunks {
            if building.is_none() || !queue.is_empty() {
                queue.push_back(chunk);
                continue;
            }
            building = self.append(stream, building, chunk, &mut queue).await;
        }
        match building {
            Some(b) if b.chunks.len() == listed => match self.close(stream, b, Some(key)).await {
                Ok(object) => {
                    self.hand_over(object, closed);
                    return queue;
                }
                Err((chunks, e)) => {
                    tracing::warn!(error = %e, "cannot build a shipped object again; its chunks are merged anew");
                    queue.extend(chunks);
                }
            },
            other => self.abandon(other, &mut queue),
        }
        let _ = fs::remove_file(self.path(&name, "json"));
        queue
    }
}
