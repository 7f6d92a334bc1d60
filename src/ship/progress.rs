//! How far a chunk's sending by a message sink (Kafka, SQS) got, kept across a crash: the contiguous prefix of
//! its messages that the brokers or the queue acknowledged (`Prefix`, advanced as acknowledgements arrive in any
//! order), written now and then to the chunk's progress mark in the spool (`Mark`: `progress/{chunk file name}`).
//! A chunk sent again — after a failure, or by the next start after a kill — resumes after its mark instead of
//! from its first message.
//!
//! The mark is written atomically (a temporary file renamed over it) and not synced: a kill -9 leaves the page
//! cache, so the mark survives it; after a power loss it may be missing or empty, which reads as no mark (the
//! chunk is produced again whole: more repeats, never a loss). A mark only ever names messages already
//! acknowledged, so skipping them loses nothing.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The acknowledged prefix of one chunk's messages, and which messages past it are acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Prefix {
    /// Messages `0..next` are all acknowledged.
    next: u64,
    /// Whether each message from `next` on is acknowledged (`acked[k]` is message `next + k`).
    acked: VecDeque<bool>,
}

impl Prefix {
    /// A prefix whose first `done` messages are known acknowledged (a mark read at the start).
    pub fn starting_at(done: u64) -> Prefix {
        Prefix { next: done, acked: VecDeque::new() }
    }

    /// Message `index` is acknowledged (or needs no acknowledgement: it went to the dead-letter file).
    pub fn ack(&mut self, index: u64) {
        let Some(k) = index.checked_sub(self.next) else {
            return;
        };
        let k = k as usize;
        if self.acked.len() <= k {
            self.acked.resize(k + 1, false);
        }
        self.acked[k] = true;
        while self.acked.front() == Some(&true) {
            self.acked.pop_front();
            self.next += 1;
        }
    }

    /// Whether message `index` is acknowledged.
    pub fn contains(&self, index: u64) -> bool {
        index < self.next || self.acked.get((index - self.next) as usize).is_some_and(|&acked| acked)
    }

    /// How many messages from the first are all acknowledged.
    pub fn len(&self) -> u64 {
        self.next
    }
}

/// How often a moving prefix is written at least.
const MARK_EVERY: Duration = Duration::from_millis(200);

/// A chunk's progress mark.
pub struct Mark {
    path: PathBuf,
    written: u64,
    at: Instant,
    /// Calls of `advance` since the clock was last read, and how many calls read it once.
    calls: u32,
    clock_every: u32,
}

impl Mark {
    /// The mark of the chunk at `chunk` (a file in `sealed/`), kept in `dir`.
    pub fn of(dir: &Path, chunk: &Path) -> Mark {
        Mark { path: path(dir, chunk), written: 0, at: Instant::now(), calls: 0, clock_every: 1 }
    }

    /// For a caller that advances the mark per message: the clock is read every `calls` calls only (at 300,000
    /// messages a second, 256 calls take under a millisecond).
    pub fn reading_the_clock_every(self, calls: u32) -> Mark {
        Mark { clock_every: calls.max(1), ..self }
    }

    /// What the mark says is done, at most `events`; 0 without a mark or with one that does not read.
    pub fn load(&mut self, events: u64) -> u64 {
        let read = fs::read_to_string(&self.path).ok();
        let done = read.as_deref().and_then(|text| text.strip_suffix('\n')?.parse::<u64>().ok()).unwrap_or(0);
        self.written = done.min(events);
        self.written
    }

    /// Writes `done` if it moved by `step` since the last write, or moved at all and the last write is older
    /// than `MARK_EVERY` (or `force`: the chunk is all acknowledged).
    pub fn advance(&mut self, done: u64, step: u64, force: bool) -> io::Result<()> {
        let moved = done.saturating_sub(self.written);
        if moved == 0 {
            return Ok(());
        }
        self.calls += 1;
        let late = self.calls >= self.clock_every && {
            self.calls = 0;
            self.at.elapsed() >= MARK_EVERY
        };
        if !(force || moved >= step || late) {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        fs::write(&tmp, format!("{done}\n"))?;
        fs::rename(&tmp, &self.path)?;
        self.written = done;
        self.at = Instant::now();
        Ok(())
    }
}

fn path(dir: &Path, chunk: &Path) -> PathBuf {
    dir.join(chunk.file_name().unwrap_or_default())
}

/// Removes the mark of a chunk that left the spool (there is none for most sinks: nothing to do).
pub fn remove(dir: &Path, chunk: &Path) {
    let _ = fs::remove_file(path(dir, chunk));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_moves_only_over_messages_all_acknowledged_in_any_order() {
        let mut prefix = Prefix::starting_at(10);
        prefix.ack(5); // before the mark: already counted
        for index in [12, 11, 14] {
            prefix.ack(index);
            assert_eq!(prefix.len(), 10, "message 10 is not acknowledged yet");
        }
        assert!(prefix.contains(5) && prefix.contains(12) && prefix.contains(14));
        assert!(!prefix.contains(10) && !prefix.contains(13) && !prefix.contains(15));
        prefix.ack(10);
        assert_eq!(prefix.len(), 13, "10, 11, 12; 13 is missing");
        prefix.ack(13);
        assert_eq!(prefix.len(), 15);
    }

    #[test]
    fn a_mark_is_written_by_step_or_when_forced_and_read_back_within_the_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = dir.path().join("sealed/b-w0-00000001-f0-t1-n100.ndjson.gz");
        let mut mark = Mark::of(&dir.path().join("progress"), &chunk);
        assert_eq!(mark.load(100), 0, "no mark yet");
        mark.advance(3, 50, false).unwrap();
        assert_eq!(Mark::of(&dir.path().join("progress"), &chunk).load(100), 0, "moved less than a step");
        mark.advance(60, 50, false).unwrap();
        assert_eq!(Mark::of(&dir.path().join("progress"), &chunk).load(100), 60);
        mark.advance(61, 50, true).unwrap();
        assert_eq!(Mark::of(&dir.path().join("progress"), &chunk).load(100), 61, "forced");
        assert_eq!(Mark::of(&dir.path().join("progress"), &chunk).load(40), 40, "never past the chunk's events");
        let file = dir.path().join("progress/b-w0-00000001-f0-t1-n100.ndjson.gz");
        for torn in ["", "6", "61", "\0\0\0"] {
            fs::write(&file, torn).unwrap();
            assert_eq!(Mark::of(&dir.path().join("progress"), &chunk).load(100), 0, "{torn:?} reads as no mark");
        }
        remove(&dir.path().join("progress"), &chunk);
        assert!(!file.exists());
    }
}
