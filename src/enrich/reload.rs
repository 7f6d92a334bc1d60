//! The reload thread: reads the GeoIP databases again on SIGHUP, and when a file is replaced (a new file
//! renamed over the old one, or the old one rewritten). It looks at the files once a second — a `stat` each,
//! nothing on the workers' path — and tries a changed file once per change, so a file being written is read
//! again when the writer is done, and a broken one is not read every second.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::Enrichment;
use super::geo::FileIdentity;

const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop` yields or its sender is dropped. `hangup`: set by the SIGHUP handler.
pub fn spawn(
    enrichment: Arc<Enrichment>,
    hangup: Arc<AtomicBool>,
    stop: Receiver<()>,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("plutos-reload".into()).spawn(move || {
        let Some(geo) = &enrichment.geo else {
            // Nothing to reload; SIGHUP is still caught so it does not end the process.
            let _ = stop.recv();
            return;
        };
        let paths: Vec<PathBuf> = geo.paths();
        let look = || paths.iter().map(|p| FileIdentity::of(p).ok()).collect::<Vec<_>>();
        let mut tried = look();
        loop {
            match stop.recv_timeout(LOOK_EVERY) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let forced = hangup.swap(false, Ordering::Relaxed);
            let now = look();
            if forced || now != tried {
                if forced {
                    tracing::info!("SIGHUP: reloading the GeoIP databases");
                }
                geo.reload(forced);
                tried = now;
            }
        }
    })
}
