//! The spool: where accepted events become durable. `chunk` is a worker's chunk writer (one open chunk, fed one
//! batch per event-loop iteration, sealed by size, count or age), `encoder` its gzip / zstd / none stream, and this
//! file the directory itself, the durability boundary: names, recovery at start, repair of cut streams.
//!
//! ```text
//! {spool}/open/{boot}-w{worker}-{chunk:08}-f{first_seq}-t{first_unix}.ndjson.gz        being written by a worker
//! {spool}/sealed/{boot}-w{worker}-{chunk:08}-f{first_seq}-t{first_unix}-n{events}.ndjson.gz   complete, waiting for the sink
//! {spool}/open/{boot}-w{worker}-bad-{chunk:08}-f…        the same for the worker's bad-row stream
//! {spool}/corrupt/…      sealed chunks that did not decode, set aside by the uploader (never shipped)
//! {spool}/dead-letter/…  events the Kafka sink could not send (over its message size)
//! {spool}/merge/…        OUTPUT_FORMAT=parquet: objects being built from sealed chunks (`ship/parquet/merge.rs`)
//! ```
//!
//! What is set aside stays on the spool's disk until an operator takes it, so it counts against
//! `MAX_SPOOL_BYTES` like the chunks do (measured again every few seconds, so removing it frees the room).
//!
//! Everything a chunk's object key and metadata need is in its file name, so a rename is the only step that
//! moves a chunk from one state to the next, and a restart needs nothing but a directory listing. An open file
//! left by a crash holds a compressed stream without its end; `repair_open_file` keeps every complete line up
//! to the last flush and writes them as a sealed chunk with the same boot id and sequence numbers.

pub mod batch;
pub mod chunk;
pub mod encoder;

pub use chunk::{ChunkConfig, Durability, Fsync};
pub use encoder::{Codec, Compression};

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::event::clock::Civil;
use crate::spool::encoder::{Encoder, decode};

/// The spool and the chunks the workers write into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Above this, ingest answers 503.
    pub max_bytes: u64,
    pub chunk: ChunkConfig,
}

#[derive(Debug, Clone)]
pub struct SpoolDirs {
    pub root: PathBuf,
    pub open: PathBuf,
    pub sealed: PathBuf,
    /// Set aside: sealed chunks that do not decode, and the Kafka sink's dead letters (created when first used).
    pub corrupt: PathBuf,
    pub dead_letter: PathBuf,
    /// How far the Kafka sink got with each chunk it produces (`ship/kafka/progress.rs`).
    pub progress: PathBuf,
    /// Parquet objects being built or waiting to ship, and the lists of their chunks (`ship/parquet/merge.rs`).
    pub merge: PathBuf,
}

impl SpoolDirs {
    /// The layout under `root`, without creating anything.
    pub fn at(root: &Path) -> SpoolDirs {
        SpoolDirs {
            root: root.to_path_buf(),
            open: root.join("open"),
            sealed: root.join("sealed"),
            corrupt: root.join("corrupt"),
            dead_letter: root.join("dead-letter"),
            progress: root.join("progress"),
            merge: root.join("merge"),
        }
    }

    pub fn create(root: &Path) -> io::Result<SpoolDirs> {
        let dirs = SpoolDirs::at(root);
        fs::create_dir_all(&dirs.open)?;
        fs::create_dir_all(&dirs.sealed)?;
        Ok(dirs)
    }

    /// Takes the spool's lock file for as long as the returned file lives: two processes on one spool would
    /// repair and ship each other's open chunks.
    pub fn lock(&self) -> io::Result<File> {
        use std::os::fd::AsRawFd;
        let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(self.root.join("lock"))?;
        // SAFETY: flock on a descriptor we own; the lock is released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(match e.kind() {
                io::ErrorKind::WouldBlock => io::Error::other("in use by another plutos process"),
                _ => e,
            });
        }
        Ok(file)
    }

    /// Bytes currently held: open and sealed chunks, and Parquet objects waiting to ship.
    pub fn total_bytes(&self) -> io::Result<u64> {
        let mut total = 0;
        for dir in [&self.open, &self.sealed, &self.merge] {
            match dir_bytes(dir) {
                Ok(bytes) => total += bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound && dir == &self.merge => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Bytes set aside: corrupt chunks and dead letters (a directory not made yet holds none).
    pub fn aside_bytes(&self) -> io::Result<u64> {
        let mut total = 0;
        for dir in [&self.corrupt, &self.dead_letter] {
            match dir_bytes(dir) {
                Ok(bytes) => total += bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Moves a sealed chunk that cannot be shipped into `corrupt/`, durably.
    pub fn set_aside(&self, chunk: &Path) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.corrupt)?;
        let to = self.corrupt.join(chunk.file_name().unwrap_or_default());
        fs::rename(chunk, &to)?;
        sync_dir(&self.corrupt)?;
        sync_dir(&self.sealed)?;
        Ok(to)
    }
}

/// Which of a worker's two streams a chunk belongs to. Each is a writer of its own: its own chunks, its own
/// sequence numbers from 0, its own objects (the bad stream's under `bad/`, or its own Kafka topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Records of accepted events.
    #[default]
    Good,
    /// Bad rows: events refused for their content, in Snowplow's bad-row format.
    Bad,
}

impl Stream {
    pub const ALL: [Stream; 2] = [Stream::Good, Stream::Bad];

    pub fn name(self) -> &'static str {
        match self {
            Stream::Good => "good",
            Stream::Bad => "bad",
        }
    }
}

/// Who wrote a chunk and where its events sit in that writer's sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkId {
    pub boot: String,
    pub worker: u16,
    pub stream: Stream,
    pub chunk_seq: u64,
    pub first_seq: u64,
    /// Unix seconds of the chunk's first event: its partition.
    pub first_unix: i64,
    pub codec: Codec,
}

impl ChunkId {
    fn stem(&self) -> String {
        let bad = if self.stream == Stream::Bad { "-bad" } else { "" };
        format!("{}-w{}{bad}-{:08}-f{}-t{}", self.boot, self.worker, self.chunk_seq, self.first_seq, self.first_unix)
    }

    pub fn open_name(&self) -> String {
        format!("{}.{}", self.stem(), self.codec.extension())
    }

    pub fn sealed_name(&self, events: u64) -> String {
        format!("{}-n{events}.{}", self.stem(), self.codec.extension())
    }

    /// Parses an open (`events` = None) or sealed file name.
    pub fn parse(name: &str) -> Option<(ChunkId, Option<u64>)> {
        let codec = Codec::from_file_name(name)?;
        let stem = &name[..name.len() - codec.extension().len() - 1];
        let mut parts = stem.split('-');
        let boot = parts.next()?.to_string();
        let worker = parts.next()?.strip_prefix('w')?.parse().ok()?;
        let (stream, chunk_seq) = match parts.next()? {
            "bad" => (Stream::Bad, parts.next()?),
            seq => (Stream::Good, seq),
        };
        let chunk_seq = chunk_seq.parse().ok()?;
        let first_seq = parts.next()?.strip_prefix('f')?.parse().ok()?;
        let first_unix = parts.next()?.strip_prefix('t')?.parse().ok()?;
        let events = match parts.next() {
            Some(n) => Some(n.strip_prefix('n')?.parse().ok()?),
            None => None,
        };
        if parts.next().is_some() || boot.is_empty() {
            return None;
        }
        let id = ChunkId { boot, worker, stream, chunk_seq, first_seq, first_unix, codec };
        Some((id, events))
    }

    /// `{prefix}/created_date=YYYY-MM-DD/hour=HH/{host}-{boot}-w{worker}-{seq:08}.ndjson{.gz|.zst}`, no
    /// leading `/`; a bad-row chunk's the same under `{prefix}/bad/`.
    pub fn object_key(&self, prefix: &str, host: &str) -> String {
        let partition = Civil::from_unix(self.first_unix).partition();
        let name = format!("{host}-{}-w{}-{:08}.{}", self.boot, self.worker, self.chunk_seq, self.codec.extension());
        let stream = if self.stream == Stream::Bad { "bad/" } else { "" };
        if prefix.is_empty() {
            format!("{stream}{partition}/{name}")
        } else {
            format!("{prefix}/{stream}{partition}/{name}")
        }
    }
}

/// A complete chunk in `sealed/`, immutable from here on.
#[derive(Debug, Clone)]
pub struct SealedChunk {
    pub id: ChunkId,
    pub events: u64,
    pub path: PathBuf,
}

impl SealedChunk {
    /// The last event's sequence number (inclusive).
    pub fn last_seq(&self) -> u64 {
        self.id.first_seq + self.events.saturating_sub(1)
    }
}

/// Bytes of the files directly in `dir`.
fn dir_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

/// What a worker hands the uploader.
#[derive(Debug)]
pub enum UploadJob {
    Sealed(SealedChunk),
    /// An open chunk a worker had to abandon after a failed write: repair it, then ship it.
    Repair(PathBuf),
}

/// Startup: repairs and seals every open file a previous run left, and lists every sealed chunk, oldest
/// first. Leftover temporary files are removed.
pub fn recover(dirs: &SpoolDirs) -> io::Result<Vec<SealedChunk>> {
    for entry in fs::read_dir(&dirs.open)? {
        let path = entry?.path();
        match repair_open_file(dirs, &path) {
            Ok(Some(chunk)) => {
                tracing::info!(path = %chunk.path.display(), events = chunk.events, "recovered open chunk")
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot recover open chunk; left in place")
            }
        }
    }
    let mut sealed = Vec::new();
    for entry in fs::read_dir(&dirs.sealed)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".tmp") {
            fs::remove_file(&path)?;
            continue;
        }
        match ChunkId::parse(&name) {
            Some((id, Some(events))) => sealed.push(SealedChunk { id, events, path }),
            _ => tracing::warn!(path = %path.display(), "not a sealed chunk name; ignored"),
        }
    }
    sealed.sort_by(|a, b| a.path.cmp(&b.path));
    // A progress mark whose chunk left the spool (shipped, then the process died before removing the mark).
    if let Ok(marks) = fs::read_dir(&dirs.progress) {
        for mark in marks.flatten() {
            if !sealed.iter().any(|c| c.path.file_name() == Some(&mark.file_name())) {
                let _ = fs::remove_file(mark.path());
            }
        }
    }
    Ok(sealed)
}

/// Turns an open chunk file (a compressed stream without its end, perhaps cut mid-block) into a sealed chunk
/// holding every complete, valid line up to the last flush. Returns `None`, after removing the file, when it
/// holds no complete line. Files that are not chunk files are left alone.
pub fn repair_open_file(dirs: &SpoolDirs, path: &Path) -> io::Result<Option<SealedChunk>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some((id, None)) = ChunkId::parse(name) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not an open chunk file name"));
    };
    let (text, keep, events) = recoverable_lines(id.codec, &fs::read(path)?);
    if events == 0 {
        fs::remove_file(path)?;
        return Ok(None);
    }
    let level = match id.codec {
        Codec::Gzip => 6,
        Codec::Zstd => 3,
        Codec::None => 0,
    };
    let mut encoder = Encoder::new(Compression { codec: id.codec, level })?;
    encoder.write(&text[..keep])?;
    let bytes = encoder.finish()?;
    let sealed_path = dirs.sealed.join(id.sealed_name(events));
    write_durably(&sealed_path, &bytes)?;
    fs::remove_file(path)?;
    Ok(Some(SealedChunk { id, events, path: sealed_path }))
}

/// What a cut stream still holds: its decoded text, the length of the run of complete, valid lines at its
/// start, and how many lines that is.
pub fn recoverable_lines(codec: Codec, compressed: &[u8]) -> (Vec<u8>, usize, u64) {
    let mut text = Vec::new();
    // A truncated stream ends in an error after yielding what it could: keep what was yielded.
    let _ = decode(codec, compressed, &mut text);
    let mut keep = 0;
    let mut events = 0u64;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.last() != Some(&b'\n') || !crate::event::json::validate(line) {
            break;
        }
        keep += line.len();
        events += 1;
    }
    (text, keep, events)
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename, then fsyncs the directory.
pub fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_durably_with(path, |file| file.write_all(bytes))
}

/// Like `write_durably`, with `fill` writing the content into the temporary file.
pub fn write_durably_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        fill(&mut file)?;
        sync_data(&file)?;
        fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// fsync of a spool directory (a new or renamed file's entry). Every sync of the spool goes through this or
/// `sync_data`.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    crate::cost::synced();
    File::open(dir)?.sync_all()
}

/// fdatasync of a spool file.
pub fn sync_data(file: &File) -> io::Result<()> {
    crate::cost::synced();
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ChunkId {
        ChunkId {
            boot: "019abdfc36041234abcd".into(),
            worker: 3,
            stream: Stream::Good,
            chunk_seq: 12,
            first_seq: 4500,
            first_unix: 1_764_124_014,
            codec: Codec::Gzip,
        }
    }

    #[test]
    fn names_round_trip() {
        let id = id();
        assert_eq!(ChunkId::parse(&id.open_name()), Some((id.clone(), None)));
        assert_eq!(ChunkId::parse(&id.sealed_name(77)), Some((id.clone(), Some(77))));
        let bad = ChunkId { stream: Stream::Bad, ..id.clone() };
        assert_eq!(bad.open_name(), "019abdfc36041234abcd-w3-bad-00000012-f4500-t1764124014.ndjson.gz");
        assert_eq!(ChunkId::parse(&bad.open_name()), Some((bad.clone(), None)));
        assert_eq!(ChunkId::parse(&bad.sealed_name(5)), Some((bad.clone(), Some(5))));
        assert_eq!(ChunkId::parse(&bad.open_name().replace("-bad-", "-worse-")), None);
        assert_eq!(ChunkId::parse("random.txt"), None);
        assert_eq!(ChunkId::parse("a-b-c.ndjson.gz"), None);
        let name = id.sealed_name(77);
        assert_eq!(ChunkId::parse(&name.replace("-n77", "-n77-x")), None, "a part too many");
        assert_eq!(ChunkId::parse(&name.replace("019abdfc36041234abcd", "")), None, "no boot");
    }

    #[test]
    fn a_sealed_chunk_names_its_last_sequence_number() {
        let chunk = |events| SealedChunk { id: id(), events, path: PathBuf::new() };
        assert_eq!(chunk(3).last_seq(), 4502);
        assert_eq!(chunk(1).last_seq(), 4500);
        assert_eq!(chunk(0).last_seq(), 4500, "an empty chunk is never sealed; no underflow if one were");
    }

    #[test]
    fn the_lock_admits_one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = SpoolDirs::create(dir.path()).unwrap();
        let held = dirs.lock().unwrap();
        // flock belongs to the open file: a second open conflicts as a second process's would.
        assert_eq!(dirs.lock().unwrap_err().to_string(), "in use by another plutos process");
        drop(held);
        dirs.lock().expect("free again once the holder closed it");
    }

    #[test]
    fn the_spool_size_counts_open_and_sealed_files() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = SpoolDirs::create(dir.path()).unwrap();
        assert_eq!(dirs.total_bytes().unwrap(), 0);
        fs::write(dirs.open.join("a"), [0; 100]).unwrap();
        fs::write(dirs.sealed.join("b"), [0; 20]).unwrap();
        fs::write(dirs.sealed.join("c"), [0; 3]).unwrap();
        assert_eq!(dirs.total_bytes().unwrap(), 123);
        assert!(sync_dir(&dir.path().join("missing")).is_err(), "a directory that cannot be synced is an error");
        assert_eq!(dirs.aside_bytes().unwrap(), 0, "nothing set aside, its directories not made yet");
        fs::create_dir_all(&dirs.dead_letter).unwrap();
        fs::write(dirs.dead_letter.join("d"), [0; 7]).unwrap();
        let moved = dirs.set_aside(&dirs.sealed.join("b")).unwrap();
        assert_eq!(moved, dirs.corrupt.join("b"));
        assert_eq!((dirs.total_bytes().unwrap(), dirs.aside_bytes().unwrap()), (103, 27));
    }

    #[test]
    fn recovery_seals_open_chunks_lists_sealed_ones_oldest_first_and_clears_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = SpoolDirs::create(dir.path()).unwrap();
        let named = |chunk_seq, first_seq| ChunkId { chunk_seq, first_seq, codec: Codec::None, ..id() };
        fs::write(dirs.open.join(named(3, 30).open_name()), "{\"a\":1}\n{\"a\":").unwrap();
        fs::write(dirs.open.join(named(4, 40).open_name()), "{\"a\":").unwrap();
        fs::write(dirs.open.join("notes.txt"), "x").unwrap();
        fs::write(dirs.sealed.join(named(2, 20).sealed_name(5)), "").unwrap();
        fs::write(dirs.sealed.join(named(1, 10).sealed_name(2)), "").unwrap();
        fs::write(dirs.sealed.join("x.ndjson.tmp"), "").unwrap();
        fs::write(dirs.sealed.join("stray.json"), "").unwrap();
        let found: Vec<(u64, u64)> = recover(&dirs).unwrap().iter().map(|c| (c.id.chunk_seq, c.events)).collect();
        assert_eq!(found, [(1, 2), (2, 5), (3, 1)], "the open chunk with a complete line sealed and listed");
        let left = |d: &Path| {
            let mut names: Vec<String> =
                fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            names.sort();
            names
        };
        assert_eq!(left(&dirs.open), ["notes.txt"], "the empty open chunk removed, a stranger left alone");
        assert!(!left(&dirs.sealed).iter().any(|n| n.ends_with(".tmp")));
        assert!(left(&dirs.sealed).contains(&"stray.json".to_string()));
    }

    #[test]
    fn object_keys_have_hive_partitions_and_no_leading_slash() {
        let id = id();
        assert_eq!(
            id.object_key("", "host1"),
            "created_date=2025-11-26/hour=02/host1-019abdfc36041234abcd-w3-00000012.ndjson.gz"
        );
        assert_eq!(
            id.object_key("events/web", "h"),
            "events/web/created_date=2025-11-26/hour=02/h-019abdfc36041234abcd-w3-00000012.ndjson.gz"
        );
        let bad = ChunkId { stream: Stream::Bad, ..id };
        assert_eq!(
            bad.object_key("events/web", "h"),
            "events/web/bad/created_date=2025-11-26/hour=02/h-019abdfc36041234abcd-w3-00000012.ndjson.gz"
        );
        assert_eq!(
            bad.object_key("", "h"),
            "bad/created_date=2025-11-26/hour=02/h-019abdfc36041234abcd-w3-00000012.ndjson.gz"
        );
    }

    #[test]
    fn repairs_a_stream_cut_anywhere() {
        for codec in [Codec::Gzip, Codec::Zstd, Codec::None] {
            let mut encoder = Encoder::new(Compression { codec, level: 3 }).unwrap();
            let mut stream = Vec::new();
            let mut flushed_at = Vec::new(); // (stream length, complete lines) after each flush
            for batch in 0..5 {
                for i in 0..3 {
                    encoder.write(format!("{{\"batch\":{batch},\"i\":{i}}}\n").as_bytes()).unwrap();
                }
                encoder.flush().unwrap();
                stream.append(encoder.output());
                flushed_at.push((stream.len(), (batch + 1) * 3));
            }
            for cut in (0..=stream.len()).step_by(3) {
                let dir = tempfile::tempdir().unwrap();
                let dirs = SpoolDirs::create(dir.path()).unwrap();
                let mut chunk_id = id();
                chunk_id.codec = codec;
                let path = dirs.open.join(chunk_id.open_name());
                fs::write(&path, &stream[..cut]).unwrap();
                let expected = flushed_at.iter().filter(|(len, _)| *len <= cut).map(|(_, n)| *n).max().unwrap_or(0);
                let repaired = repair_open_file(&dirs, &path).unwrap();
                assert!(!path.exists());
                let events = repaired.as_ref().map_or(0, |c| c.events);
                // Every line flushed before the cut survives; a cut inside a block may keep a few more.
                assert!(events >= expected as u64, "{codec:?} cut {cut}: {events} < {expected}");
                if let Some(chunk) = repaired {
                    assert_eq!(chunk.id, chunk_id);
                    let mut text = Vec::new();
                    decode(codec, &fs::read(&chunk.path).unwrap(), &mut text).expect("complete stream");
                    let text = String::from_utf8(text).unwrap();
                    assert_eq!(text.lines().count() as u64, chunk.events);
                    assert!(text.ends_with('\n'));
                }
            }
        }
    }
}
