//! Reloading without a restart: files the collector serves from (GeoIP databases, the TLS certificate and
//! key) are read again on SIGHUP and when a file is replaced (a new file renamed over the old one, or the old
//! one rewritten). One thread looks at the files once a second — a `stat` each, nothing on the workers' path —
//! and tries a changed file once per change, so a file being written is read again when the writer is done, and
//! a broken one is not read every second.
//!
//! What a reload builds is `Published`: workers hold a `Follower` and take the new value at the start of their
//! next loop iteration (one atomic load per iteration; a lock for one `Arc` clone only when it moved).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What tells a replaced file from the one loaded: a rename brings a new inode, an overwrite a new mtime/size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
    mtime_nanos: i128,
    len: u64,
}

impl FileIdentity {
    pub fn of(path: &Path) -> io::Result<FileIdentity> {
        let m = std::fs::metadata(path)?;
        let mtime_nanos = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
        Ok(FileIdentity { dev: m.dev(), ino: m.ino(), mtime_nanos, len: m.len() })
    }
}

/// A value built on the reload thread and taken by the workers.
pub struct Published<T> {
    current: Mutex<Arc<T>>,
    /// Bumped after each new value is in `current`: a worker whose copy is older takes the new one.
    generation: AtomicU64,
}

impl<T> Published<T> {
    pub fn new(value: T) -> Published<T> {
        Published { current: Mutex::new(Arc::new(value)), generation: AtomicU64::new(0) }
    }

    /// The value in service.
    pub fn current(&self) -> Arc<T> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn publish(&self, value: T) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
        // After the value: once the counter moved, every worker's next look finds the new one.
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn follow(&self) -> Follower<T> {
        let seen = self.generation.load(Ordering::Acquire);
        Follower { value: self.current(), seen }
    }
}

/// A worker's copy of a published value.
pub struct Follower<T> {
    pub value: Arc<T>,
    seen: u64,
}

impl<T> Follower<T> {
    /// Takes the published value if it changed since the last look; true when it did.
    pub fn refresh(&mut self, published: &Published<T>) -> bool {
        let generation = published.generation.load(Ordering::Acquire);
        if generation == self.seen {
            return false;
        }
        self.value = published.current();
        self.seen = generation;
        true
    }
}

/// Something the reload thread keeps current.
pub trait Reloadable: Send + Sync {
    /// For the log: "the GeoIP databases", "the TLS certificate".
    fn what(&self) -> &'static str;
    /// The files it was loaded from.
    fn files(&self) -> Vec<PathBuf>;
    /// Loads again what changed (everything when `forced`, a SIGHUP); what fails to load keeps the old value
    /// in service and is logged in one line.
    fn reload(&self, forced: bool);
    /// Called once per look, changed or not (a certificate's expiry warning).
    fn tick(&self) {}
}

/// Runs until `stop` yields or its sender is dropped. `hangup`: set by the SIGHUP handler. With nothing to
/// reload it just waits: SIGHUP is still caught, so it does not end the process.
pub fn spawn(
    sources: Vec<Arc<dyn Reloadable>>,
    hangup: Arc<AtomicBool>,
    stop: Receiver<()>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("plutos-reload".into()).spawn(move || {
        let look =
            |source: &Arc<dyn Reloadable>| source.files().iter().map(|p| FileIdentity::of(p).ok()).collect::<Vec<_>>();
        let mut tried: Vec<_> = sources.iter().map(look).collect();
        loop {
            match stop.recv_timeout(LOOK_EVERY) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let forced = hangup.swap(false, Ordering::Relaxed);
            for (source, tried) in sources.iter().zip(&mut tried) {
                let now = look(source);
                if forced || now != *tried {
                    if forced {
                        tracing::info!("SIGHUP: reloading {}", source.what());
                    }
                    source.reload(forced);
                    *tried = now;
                }
                source.tick();
            }
        }
    })
}
