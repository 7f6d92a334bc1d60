//! A worker's chunk writer: one open chunk at a time, fed one batch of lines per event-loop iteration.
//!
//! `DURABILITY=spool` (default): each batch is compressed, flushed so the stream decodes up to here, and
//! written with one `write(2)` to the chunk's file in `spool/open/` before the worker answers any request of
//! that batch. `DURABILITY=memory` (Plutos semantics, opt-in): the open chunk lives in RAM and reaches the
//! spool only when sealed, so a crash loses it.
//!
//! A chunk is sealed by size, event count or age, and at shutdown; it is never opened before its first event,
//! so no empty chunk exists. Sealing ends the stream and renames the file into `spool/sealed/`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::spool::encoder::{Compression, Encoder};
use crate::spool::{ChunkId, SealedChunk, SpoolDirs, Stream, sync_data, sync_dir, write_durably};

/// How a worker writes chunks: codec, durability, fsync, and when a chunk is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    pub compression: Compression,
    pub durability: Durability,
    pub fsync: Fsync,
    pub max_bytes: u64,
    pub max_events: Option<u64>,
    pub max_age: Duration,
}

/// `FSYNC`: when the open chunk's file is synced to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Never,
    Always,
    Every(Duration),
}

/// `DURABILITY`: where the open chunk lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Spool,
    Memory,
}

/// A write to the spool failed. Nothing of the batch is durable. `abandoned` is an open file that now ends
/// at its last good flush and must be repaired (`spool::repair_open_file`) off the hot path.
#[derive(Debug)]
pub struct SpoolWriteError {
    pub error: io::Error,
    pub abandoned: Option<PathBuf>,
}

struct OpenChunk {
    id: ChunkId,
    encoder: Encoder,
    /// Spool mode only.
    file: Option<File>,
    path: PathBuf,
    /// Bytes of `file` known good (ending at a flush).
    written: u64,
    events: u64,
    opened: Instant,
    synced: Instant,
    unsynced: bool,
}

pub struct ChunkWriter {
    worker: u16,
    stream: Stream,
    boot: String,
    dirs: SpoolDirs,
    settings: ChunkConfig,
    open: Option<OpenChunk>,
    next_chunk_seq: u64,
    next_event_seq: u64,
    /// Memory mode: a sealed chunk whose write failed, retried by the next `seal`.
    unwritten: Option<(SealedChunk, Vec<u8>)>,
}

impl ChunkWriter {
    pub fn new(worker: usize, stream: Stream, boot: String, dirs: SpoolDirs, settings: ChunkConfig) -> ChunkWriter {
        ChunkWriter {
            worker: worker as u16,
            stream,
            boot,
            dirs,
            settings,
            open: None,
            next_chunk_seq: 0,
            next_event_seq: 0,
            unwritten: None,
        }
    }

    /// Appends a batch of `events` complete lines. In spool mode they are in the file when this returns
    /// `Ok`, which carries how many bytes the spool grew by.
    pub fn commit(&mut self, lines: &[u8], events: u64, now: Instant, unix_secs: i64) -> Result<u64, SpoolWriteError> {
        if events == 0 {
            return Ok(0);
        }
        if self.open.is_none() {
            self.open =
                Some(self.open_chunk(now, unix_secs).map_err(|error| SpoolWriteError { error, abandoned: None })?);
        }
        let spool_mode = self.settings.durability == Durability::Spool;
        let always = self.settings.fsync == Fsync::Always;
        let chunk = self.open.as_mut().expect("opened above");
        let result = (|| {
            chunk.encoder.write(lines)?;
            if spool_mode {
                chunk.encoder.flush()?;
                let file = chunk.file.as_mut().expect("spool mode has a file");
                let out = chunk.encoder.output();
                file.write_all(out)?;
                if always {
                    sync_data(file)?;
                }
                let n = out.len() as u64;
                out.clear();
                Ok(n)
            } else {
                Ok(0)
            }
        })();
        match result {
            Ok(n) => {
                chunk.written += n;
                chunk.events += events;
                chunk.unsynced = !always && n > 0;
                self.next_event_seq += events;
                Ok(n)
            }
            Err(error) => {
                // The encoder has consumed lines the file does not hold: this chunk cannot go on. Cut the file
                // back to its last flush and leave it for repair; the batch's sequence numbers were never taken.
                let chunk = self.open.take().expect("checked above");
                let abandoned = chunk.file.and_then(|f| {
                    let _ = f.set_len(chunk.written);
                    (chunk.written > 0).then_some(chunk.path.clone())
                });
                if abandoned.is_none() {
                    let _ = fs::remove_file(&chunk.path);
                }
                Err(SpoolWriteError { error, abandoned })
            }
        }
    }

    fn open_chunk(&mut self, now: Instant, unix_secs: i64) -> io::Result<OpenChunk> {
        let id = ChunkId {
            boot: self.boot.clone(),
            worker: self.worker,
            stream: self.stream,
            chunk_seq: self.next_chunk_seq,
            first_seq: self.next_event_seq,
            first_unix: unix_secs,
            codec: self.settings.compression.codec,
        };
        let path = self.dirs.open.join(id.open_name());
        let file = match self.settings.durability {
            Durability::Spool => {
                let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
                if self.settings.fsync != Fsync::Never {
                    // fdatasync of the file alone does not make its directory entry survive a power loss.
                    sync_dir(&self.dirs.open)?;
                }
                Some(file)
            }
            Durability::Memory => None,
        };
        self.next_chunk_seq += 1;
        Ok(OpenChunk {
            id,
            encoder: Encoder::new(self.settings.compression)?,
            file,
            path,
            written: 0,
            events: 0,
            opened: now,
            synced: now,
            unsynced: false,
        })
    }

    /// Is the open chunk due for sealing (size, events or age)?
    pub fn seal_due(&self, now: Instant) -> bool {
        let Some(c) = &self.open else {
            return self.unwritten.is_some();
        };
        let bytes = c.written + c.encoder.output_len() as u64;
        bytes >= self.settings.max_bytes
            || self.settings.max_events.is_some_and(|m| c.events >= m)
            || now.duration_since(c.opened) >= self.settings.max_age
    }

    /// When the open chunk becomes due by age, if one is open.
    pub fn age_deadline(&self) -> Option<Instant> {
        self.open.as_ref().map(|c| c.opened + self.settings.max_age)
    }

    /// Memory mode keeps a sealed chunk it could not write: ingest must pause until it is written.
    pub fn is_backlogged(&self) -> bool {
        self.unwritten.is_some()
    }

    /// Nothing open and nothing waiting to be written: `seal` has nothing left to do.
    pub fn is_idle(&self) -> bool {
        self.open.is_none() && self.unwritten.is_none()
    }

    /// fsync on the FSYNC interval.
    pub fn sync_if_due(&mut self, now: Instant) -> io::Result<()> {
        let Fsync::Every(interval) = self.settings.fsync else {
            return Ok(());
        };
        if let Some(c) = self.open.as_mut().filter(|c| c.unsynced && now.duration_since(c.synced) >= interval) {
            if let Some(f) = &c.file {
                sync_data(f)?;
            }
            c.synced = now;
            c.unsynced = false;
        }
        Ok(())
    }

    /// Ends the open chunk's stream and moves it to `sealed/`. Returns the sealed chunk (if one was open or
    /// a memory-mode chunk was waiting) and the bytes the spool grew by.
    pub fn seal(&mut self) -> Result<(Option<SealedChunk>, u64), SpoolWriteError> {
        if let Some((sealed, bytes)) = self.unwritten.take() {
            return match write_durably(&sealed.path, &bytes) {
                Ok(()) => Ok((Some(sealed), bytes.len() as u64)),
                Err(error) => {
                    self.unwritten = Some((sealed, bytes));
                    Err(SpoolWriteError { error, abandoned: None })
                }
            };
        }
        let Some(mut chunk) = self.open.take() else {
            return Ok((None, 0));
        };
        let sealed = SealedChunk {
            path: self.dirs.sealed.join(chunk.id.sealed_name(chunk.events)),
            id: chunk.id.clone(),
            events: chunk.events,
        };
        let sync = self.settings.fsync != Fsync::Never;
        match chunk.file.take() {
            Some(mut file) => {
                let result = (|| {
                    let tail = chunk.encoder.finish()?;
                    file.write_all(&tail)?;
                    if sync {
                        sync_data(&file)?;
                    }
                    fs::rename(&chunk.path, &sealed.path)?;
                    if sync {
                        sync_dir(&self.dirs.sealed)?;
                    }
                    Ok(tail.len() as u64)
                })();
                match result {
                    Ok(n) => Ok((Some(sealed), n)),
                    Err(error) => {
                        let _ = file.set_len(chunk.written);
                        Err(SpoolWriteError { error, abandoned: Some(chunk.path) })
                    }
                }
            }
            None => {
                let bytes = chunk.encoder.finish().map_err(|error| SpoolWriteError { error, abandoned: None })?;
                match write_durably(&sealed.path, &bytes) {
                    Ok(()) => Ok((Some(sealed), bytes.len() as u64)),
                    Err(error) => {
                        self.unwritten = Some((sealed, bytes));
                        Err(SpoolWriteError { error, abandoned: None })
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
