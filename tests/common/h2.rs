//! HTTP/2 and HTTP/3 clients for the tests, from PyPI (`scripts/h2-clients.sh` installs them): hyper-h2 as a
//! frame-level client and as a load of many streams per connection (`tests/h2_load.py`), grpcio and the
//! OpenTelemetry SDK, and aioquic (`tests/h3_client.py`, and the load `tests/h3_load.py`).

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

/// `tests/h3_load.py` with `args`.
pub fn h3_load_command(args: &[&str]) -> Command {
    let mut command = Command::new(python());
    command.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h3_load.py")).args(args);
    command
}

/// HTTP/2 (or HTTP/3) connections, each keeping `streams` requests in flight, that record every event answered
/// 200 until their connection ends.
pub struct H2Load {
    children: Vec<Child>,
    readers: Vec<JoinHandle<()>>,
    acked: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicU64>,
}

impl H2Load {
    /// `clients` connections to `addr` (h2 over TLS trusting `ca`, else h2c), `streams` in flight on each.
    pub fn start(addr: SocketAddr, ca: Option<&Path>, clients: usize, streams: usize, tag: &str) -> H2Load {
        let (tls, ca) = match ca {
            Some(ca) => ("1", ca.to_str().unwrap().to_string()),
            None => ("0", "-".to_string()),
        };
        let (addr, streams) = (addr.to_string(), streams.to_string());
        H2Load::spawn(
            (0..clients).map(|c| load_command(&[&addr, tls, &ca, &format!("{tag}-h{c}"), &streams, "400000"])),
        )
    }

    /// `clients` HTTP/3 connections to the QUIC port `addr`, trusting `ca`.
    pub fn start_h3(addr: SocketAddr, ca: &Path, clients: usize, streams: usize, tag: &str) -> H2Load {
        let (addr, ca, streams) = (addr.to_string(), ca.to_str().unwrap().to_string(), streams.to_string());
        H2Load::spawn((0..clients).map(|c| h3_load_command(&[&addr, &ca, &format!("{tag}-q{c}"), &streams, "400000"])))
    }

    fn spawn(commands: impl Iterator<Item = Command>) -> H2Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU64::new(0));
        let (mut children, mut readers) = (Vec::new(), Vec::new());
        for mut command in commands {
            let mut child = command.stdout(Stdio::piped()).spawn().expect("the load client starts");
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
