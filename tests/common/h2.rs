//! HTTP/2 clients for the tests, from PyPI (`scripts/h2-clients.sh` installs them): hyper-h2 as a frame-level
//! client and as a load of many streams per connection (`tests/h2_load.py`), grpcio and the OpenTelemetry SDK.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

/// The Python with hyper-h2, grpcio and the OpenTelemetry SDK.
pub fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| super::installed("PLUTOS_H2_PYTHON", "h2-clients.sh"))
}

/// `tests/h2_load.py` with `args`.
pub fn load_command(args: &[&str]) -> Command {
    let mut command = Command::new(python());
    command.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2_load.py")).args(args);
    command
}

/// HTTP/2 connections, each keeping `streams` requests in flight, that record every event answered 200 until
/// their connection ends.
pub struct H2Load {
    children: Vec<Child>,
    readers: Vec<JoinHandle<()>>,
    acked: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicU64>,
}

impl H2Load {
    /// `clients` connections to `addr` (h2 over TLS trusting `ca`, else h2c), `streams` in flight on each.
    pub fn start(addr: SocketAddr, ca: Option<&Path>, clients: usize, streams: usize, tag: &str) -> H2Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU64::new(0));
        let (mut children, mut readers) = (Vec::new(), Vec::new());
        for c in 0..clients {
            let (tls, ca) = match ca {
                Some(ca) => ("1", ca.to_str().unwrap().to_string()),
                None => ("0", "-".to_string()),
            };
            let (addr, tag, streams) = (addr.to_string(), format!("{tag}-h{c}"), streams.to_string());
            let mut child = load_command(&[&addr, tls, &ca, &tag, &streams, "400000"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("h2_load.py starts");
            let stdout = child.stdout.take().unwrap();
            let (acked, count) = (acked.clone(), count.clone());
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    count.fetch_add(1, Ordering::Relaxed);
                    acked.lock().unwrap().push(line);
                }
            }));
            children.push(child);
        }
        H2Load { children, readers, acked, count }
    }

    /// Events acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Every event acknowledged, once the clients' connections ended (the server was killed).
    pub fn finish(mut self) -> Vec<String> {
        for child in &mut self.children {
            let _ = child.wait();
        }
        for reader in self.readers {
            reader.join().unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}
