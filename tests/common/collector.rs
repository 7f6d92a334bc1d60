//! The real binary as a child process: start it on 127.0.0.1:0 with a spool and sink under a temp dir, signal
//! it, and drive it with keep-alive clients that record every event answered 2xx.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::*;

pub struct Collector {
    pub child: Child,
    pub addr: SocketAddr,
    /// The HTTPS listener's and the UDP sockets' addresses, when started with `TLS_PORT` / `UDP_PORT`.
    tls_addr: Arc<Mutex<Option<SocketAddr>>>,
    udp_addr: Arc<Mutex<Option<SocketAddr>>>,
    quic_addr: Arc<Mutex<Option<SocketAddr>>>,
    /// Everything the collector wrote to stderr, complete once it exited and `stderr_reader` ended.
    stderr: Arc<Mutex<String>>,
    stderr_reader: JoinHandle<()>,
}

impl Collector {
    pub fn spawn(dir: &Path, env: &[(&str, &str)]) -> Collector {
        Self::spawn_with(dir, env, Confine::default())
    }

    /// Starts the collector under `confine`'s limits, set in the child before it runs.
    pub fn spawn_with(dir: &Path, env: &[(&str, &str)], confine: Confine) -> Collector {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plutos"));
        confine.apply(&mut command);
        command
            .env_clear()
            .env("PORT", "127.0.0.1:0")
            .env("WORKERS", "2")
            .env("SPOOL_DIR", dir.join("spool"))
            .env("OUT_DIR", dir.join("out"))
            .env("MAX_BUFFER_TIME_MILLISECONDS", "150")
            .env("DRAIN_SECONDS", "0")
            .env("UPLOAD_BACKOFF_MAX_MS", "200")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        pass_io_backend(&mut command);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let text = Arc::new(Mutex::new(String::new()));
        let kept = text.clone();
        let tls_addr = Arc::new(Mutex::new(None));
        let tls_said = tls_addr.clone();
        let udp_addr = Arc::new(Mutex::new(None));
        let udp_said = udp_addr.clone();
        let quic_addr = Arc::new(Mutex::new(None));
        let quic_said = quic_addr.clone();
        let stderr_reader = std::thread::spawn(move || {
            // Keep draining stderr so the collector never blocks on a full pipe.
            for line in stderr.lines().map_while(Result::ok) {
                // A text line ends with the address; a JSON line (LOG_FORMAT=json) goes on after it.
                let address = |rest: &str| {
                    let addr = rest.split(|c: char| !(c.is_ascii_hexdigit() || ".:[]".contains(c))).next();
                    addr.unwrap_or("").parse::<SocketAddr>().unwrap()
                };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.try_send(address(rest));
                }
                if let Some(rest) = line.split("listening for HTTPS on ").nth(1) {
                    *tls_said.lock().unwrap() = Some(address(rest));
                }
                if let Some(rest) = line.split("listening for UDP datagrams on ").nth(1) {
                    *udp_said.lock().unwrap() = Some(address(rest));
                }
                if let Some(rest) = line.split("listening for HTTP/3 (QUIC) on ").nth(1) {
                    *quic_said.lock().unwrap() = Some(address(rest));
                }
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        let addr = rx.recv_timeout(DEADLINE).expect("the collector to report its address");
        Collector { child, addr, tls_addr, udp_addr, quic_addr, stderr: text, stderr_reader }
    }

    /// The HTTPS listener's address (said right after the HTTP one).
    pub fn tls_addr(&self) -> SocketAddr {
        wait_until("the collector to report its HTTPS address", || self.tls_addr.lock().unwrap().is_some());
        self.tls_addr.lock().unwrap().unwrap()
    }

    /// The UDP sockets' address.
    pub fn udp_addr(&self) -> SocketAddr {
        wait_until("the collector to report its UDP address", || self.udp_addr.lock().unwrap().is_some());
        self.udp_addr.lock().unwrap().unwrap()
    }

    /// The QUIC sockets' address.
    pub fn quic_addr(&self) -> SocketAddr {
        wait_until("the collector to report its QUIC address", || self.quic_addr.lock().unwrap().is_some());
        self.quic_addr.lock().unwrap().unwrap()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// The process has not exited.
    pub fn child_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn wait(self) -> ExitStatus {
        self.wait_with_stderr().0
    }

    /// Waits for the exit; returns its status and everything the collector wrote to stderr.
    pub fn wait_with_stderr(mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.stderr_reader.join().unwrap();
                let stderr = std::mem::take(&mut *self.stderr.lock().unwrap());
                return (status, stderr);
            }
            assert!(start.elapsed() < DEADLINE, "collector did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What a test withholds from the collector process.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Confine {
    /// RLIMIT_FSIZE: writes past it fail with EFBIG, as on a full disk.
    pub max_file_bytes: Option<u64>,
    /// A seccomp filter answers the io_uring system calls with EPERM, as a container runtime's default
    /// profile does.
    pub forbid_io_uring: bool,
}

impl Confine {
    pub fn apply(self, command: &mut Command) {
        use std::os::unix::process::CommandExt;
        if self == Confine::default() {
            return;
        }
        // Built before the fork: only async-signal-safe calls may run between fork and exec.
        let filter = io_uring_filter();
        // SAFETY: only async-signal-safe calls (setrlimit, signal, prctl) between fork and exec; the filter
        // lives in the closure, which outlives the calls.
        unsafe {
            command.pre_exec(move || {
                if let Some(limit) = self.max_file_bytes {
                    let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // Without this the write past the limit would kill the process with SIGXFSZ.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                }
                if self.forbid_io_uring {
                    let program = libc::sock_fprog {
                        len: filter.len() as u16,
                        filter: filter.as_ptr() as *mut libc::sock_filter,
                    };
                    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                        || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
}

/// A seccomp program: io_uring_setup, io_uring_enter and io_uring_register fail with EPERM, anything else runs.
fn io_uring_filter() -> [libc::sock_filter; 8] {
    let statement = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let is = |nr: libc::c_long| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: 0,
        jf: 1,
        k: nr as u32,
    };
    let deny = statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    [
        // The system call's number: the first field of seccomp_data.
        statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        is(libc::SYS_io_uring_setup),
        deny,
        is(libc::SYS_io_uring_enter),
        deny,
        is(libc::SYS_io_uring_register),
        deny,
        statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// The suite runs once per event loop (scripts/test.sh): the test process's `IO_BACKEND` goes to every
/// collector it starts (the in-process servers read it themselves). `uring` refuses to start without io_uring,
/// so a run meant for it cannot quietly fall back to epoll.
pub fn pass_io_backend(command: &mut Command) {
    if let Ok(backend) = std::env::var("IO_BACKEND") {
        command.env("IO_BACKEND", backend);
    }
}

/// The schema of the bad-row events `Load::start_with_bad_rows` sends.
pub const UNKNOWN_SCHEMA: &str = "iglu:com.acme/crash_unknown/jsonschema/1-0-0";

/// Keep-alive clients that record every event that got a 2xx, until their connection fails or `stop`.
pub struct Load {
    acked: Arc<Mutex<Vec<String>>>,
    pub count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The pipelining clients' sockets, shut down at `finish` so a blocked write or read returns.
    sockets: Vec<TcpStream>,
}

impl Load {
    pub fn start(addr: SocketAddr, clients: usize, tag: &str) -> Load {
        Self::start_with(addr, clients, 0, tag)
    }

    /// `clients` that send one request and wait for its answer, and `pipelining` clients that each write
    /// thousands of GETs ahead of the answers they read, into a small receive buffer: the server's output backs
    /// up and it pauses reading them (the shape of the acked-before-written race).
    pub fn start_with(addr: SocketAddr, clients: usize, pipelining: usize, tag: &str) -> Load {
        Self::start_over(addr, None, (clients, pipelining), tag, false)
    }

    /// Keep-alive `clients` over TLS with `config`.
    pub fn start_tls(addr: SocketAddr, config: Arc<rustls::ClientConfig>, clients: usize, tag: &str) -> Load {
        Self::start_over(addr, Some(config), (clients, 0), tag, false)
    }

    /// Keep-alive `clients` whose NDJSON batches carry, in the middle, an event of a schema no registry holds:
    /// under `VALIDATION=reject` a bad row (its id in its `data`).
    pub fn start_with_bad_rows(addr: SocketAddr, clients: usize, tag: &str) -> Load {
        Self::start_over(addr, None, (clients, 0), tag, true)
    }

    fn start_over(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ClientConfig>>,
        (clients, pipelining): (usize, usize),
        tag: &str,
        bad_rows: bool,
    ) -> Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut sockets = Vec::new();
        let mut threads: Vec<JoinHandle<()>> = (0..pipelining)
            .map(|p| {
                let socket = small_receive_buffer(addr);
                sockets.push(socket.try_clone().unwrap());
                let (acked, count, stop) = (acked.clone(), count.clone(), stop.clone());
                let tag = format!("{tag}-p{p}");
                std::thread::spawn(move || pipeline(socket, &tag, &acked, &count, &stop))
            })
            .collect();
        threads.extend((0..clients)
            .map(|c| {
                let (acked, count, stop, tag) = (acked.clone(), count.clone(), stop.clone(), tag.to_string());
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let mut client = match &tls {
                        Some(config) => Client::connect_tls(addr, config),
                        None => Client::connect(addr),
                    };
                    for i in 0..200_000u64 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        // Alternate a GET event with an NDJSON batch of three.
                        let ids: Vec<String> = if i % 2 == 0 {
                            vec![format!("{tag}-{c}-{i}")]
                        } else {
                            (0..3).map(|k| format!("{tag}-{c}-{i}-{k}")).collect()
                        };
                        let raw = if ids.len() == 1 {
                            format!("GET /e?id={} HTTP/1.1\r\nHost: t\r\n\r\n", ids[0]).into_bytes()
                        } else {
                            let line = |(k, id): (usize, &String)| match (bad_rows, k) {
                                (true, 1) => format!("{{\"schema\":\"{UNKNOWN_SCHEMA}\",\"data\":{{\"id\":\"{id}\"}}}}\n"),
                                _ => format!("{{\"id\":\"{id}\"}}\n"),
                            };
                            let body: String = ids.iter().enumerate().map(line).collect();
                            format!(
                                "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .into_bytes()
                        };
                        if client.try_send(&raw).is_err() {
                            return;
                        }
                        match client.try_read_response() {
                            Some(r) if r.status == 200 => {
                                count.fetch_add(ids.len() as u64, Ordering::Relaxed);
                                acked.lock().unwrap().extend(ids);
                            }
                            _ => return,
                        }
                    }
                })
            }));
        Load { acked, count, stop, threads, sockets }
    }

    pub fn wait_for(&self, events: u64) {
        wait_until("clients to get acknowledgements", || self.count.load(Ordering::Relaxed) >= events);
    }

    pub fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for socket in &self.sockets {
            let _ = socket.shutdown(Shutdown::Both);
        }
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

/// A connection whose receive buffer is 4 KiB (set before connecting, so the window starts small).
fn small_receive_buffer(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// Requests per write of a pipelining client, and the most it writes in all.
const PIPELINE_PIECE: u64 = 1000;
const PIPELINE_MAX: u64 = 400_000;

/// One pipelining client: a writer thread sends GETs `{tag}-{n}` in pieces of 1,000 while this thread reads
/// the answers in order; the n-th answer is the n-th request's, so a 200 acknowledges `{tag}-{n}`.
fn pipeline(socket: TcpStream, tag: &str, acked: &Mutex<Vec<String>>, count: &AtomicU64, stop: &AtomicBool) {
    let mut writer = socket.try_clone().unwrap();
    let prefix = tag.to_string();
    let writing = std::thread::spawn(move || {
        for piece in 0..PIPELINE_MAX / PIPELINE_PIECE {
            let mut batch = Vec::new();
            for n in piece * PIPELINE_PIECE..(piece + 1) * PIPELINE_PIECE {
                batch.extend_from_slice(format!("GET /e?id={prefix}-{n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
            }
            if writer.write_all(&batch).is_err() {
                return;
            }
        }
    });
    let mut reader = socket;
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut used = 0;
        while let Some(end) = memchr::memmem::find(&pending[used..], b"\r\n\r\n") {
            let head = std::str::from_utf8(&pending[used..used + end]).unwrap();
            assert!(head.starts_with("HTTP/1.1 "), "an answer: {head:?}");
            let length: usize =
                head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).map_or(0, |v| v.parse().unwrap());
            if pending.len() < used + end + 4 + length {
                break;
            }
            if &head[9..12] == "200" {
                count.fetch_add(1, Ordering::Relaxed);
                acked.lock().unwrap().push(format!("{tag}-{answered}"));
            }
            answered += 1;
            used += end + 4 + length;
        }
        pending.drain(..used);
    }
    let _ = reader.shutdown(Shutdown::Both);
    writing.join().unwrap();
}

pub fn shipped_ids(out: &Path) -> HashSet<String> {
    raw_data(&read_records(out)).iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

pub fn assert_all_shipped(acked: &[String], out: &Path) {
    let shipped = shipped_ids(out);
    let missing: Vec<&String> = acked.iter().filter(|id| !shipped.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events missing, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}

/// A number in `range`, different every run.
pub fn random_in(range: std::ops::Range<u64>) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    range.start + h.finish() % (range.end - range.start)
}
