//! Test support: the real server on 127.0.0.1:0 with temporary spool and sink directories, a raw-bytes HTTP
//! client, and a reader that decodes every shipped chunk and checks it against its `.meta.json`.
#![allow(dead_code)]

pub mod collector;
pub mod h2;
pub mod kafka;
pub mod mmdb;
pub mod parquet;
pub mod pki;
pub mod relay;
pub mod s3;
pub mod sdks;
pub mod sockets;
pub mod sqs;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use crossbeam_channel::Sender;
use plutos::spool::Codec;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub addr: SocketAddr,
    /// The HTTPS listener's, when started with `--tls-port`.
    pub tls_addr: Option<SocketAddr>,
    /// The UDP sockets', when started with `--udp-port`.
    pub udp_addr: Option<SocketAddr>,
    /// The QUIC sockets', when started with `--quic-port`.
    pub quic_addr: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    trigger: Sender<()>,
    handle: JoinHandle<Result<(), plutos::RunError>>,
}

impl TestServer {
    /// Starts the library server; `flags` add to or override the test defaults.
    pub fn start(flags: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, flags)
    }

    pub fn start_in(dir: tempfile::TempDir, flags: &[&str]) -> TestServer {
        let spool = dir.path().join("spool");
        let out = dir.path().join("out");
        let mut argv: Vec<String> = [
            "plutos",
            "--port",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--drain-seconds",
            "0",
            "--driver",
            "file",
            "--max-buffer-time-seconds",
            "3600",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(["--spool-dir".into(), spool.display().to_string(), "--out-dir".into(), out.display().to_string()]);
        argv.extend(flags.iter().map(|s| s.to_string()));
        let args = plutos::Args::try_parse_from(argv).unwrap();
        let config = plutos::Config::from_args(&args, &plutos::available_cpus()).unwrap();
        let listeners = plutos::bind(&config).unwrap();
        let addr = listeners.local_addr().unwrap();
        let tls_addr = listeners.tls_local_addr();
        let udp_addr = listeners.udp_local_addr();
        let quic_addr = listeners.quic_local_addr();
        let (trigger, shutdown) = crossbeam_channel::bounded(1);
        let handle = std::thread::spawn(move || plutos::run(config, listeners, shutdown));
        TestServer { addr, tls_addr, udp_addr, quic_addr, dir, trigger, handle }
    }

    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Graceful shutdown; returns the temp dir so the output can be read.
    pub fn stop(self) -> tempfile::TempDir {
        self.trigger.send(()).unwrap();
        self.handle.join().unwrap().unwrap();
        self.dir
    }

    /// A counter from /metrics.
    pub fn metric(&self, name: &str) -> u64 {
        metric(self.addr, name)
    }
}

/// A counter or gauge from the /metrics of the server at `addr`; panics when it is missing.
pub fn metric(addr: SocketAddr, name: &str) -> u64 {
    sample(addr, name).parse().unwrap()
}

/// A gauge (or any sample) from the /metrics of the server at `addr`, as a float; panics when it is missing.
pub fn metric_f64(addr: SocketAddr, name: &str) -> f64 {
    sample(addr, name).parse().unwrap()
}

/// The value of the sample `name` (with its labels, as written) in the /metrics of the server at `addr`.
fn sample(addr: SocketAddr, name: &str) -> String {
    let response = request(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    let text = String::from_utf8(response.body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no metric {name}"))
        .to_string()
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client's connection: plain TCP, or TLS (rustls) over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A raw HTTP/1.1 client over one connection.
pub struct Client {
    reader: BufReader<Stream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client { reader: BufReader::new(Stream::Plain(tcp(addr))) }
    }

    /// Over TLS with `config` (the handshake happens with the first request).
    pub fn connect_tls(addr: SocketAddr, config: &std::sync::Arc<rustls::ClientConfig>) -> Client {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = rustls::ClientConnection::new(config.clone(), name).unwrap();
        Client { reader: BufReader::new(Stream::Tls(Box::new(rustls::StreamOwned::new(tls, tcp(addr))))) }
    }

    pub fn stream(&mut self) -> &mut Stream {
        self.reader.get_mut()
    }

    /// The TLS session, for a client over TLS.
    pub fn tls(&mut self) -> &mut rustls::ClientConnection {
        match self.reader.get_mut() {
            Stream::Tls(s) => &mut s.conn,
            Stream::Plain(_) => panic!("not a TLS client"),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Sends `bytes` and reads one response.
    pub fn request(&mut self, bytes: &[u8]) -> Response {
        self.send(bytes);
        self.read_response()
    }

    /// Sends `bytes` and reads one response; `None` if the connection failed on the way.
    pub fn try_request(&mut self, bytes: &[u8]) -> Option<Response> {
        self.try_send(bytes).ok()?;
        self.try_read_response()
    }

    pub fn read_response(&mut self) -> Response {
        self.try_read_response().expect("a response")
    }

    /// Reads one response; `None` if the server closed the connection first.
    pub fn try_read_response(&mut self) -> Option<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let mut response = Response { status, headers, body: Vec::new() };
        if status != 100 && status != 204 {
            let len: usize =
                response.header("content-length").expect("Content-Length on every response").parse().ok()?;
            response.body = vec![0; len];
            self.reader.read_exact(&mut response.body).ok()?;
        }
        Some(response)
    }

    /// Reads a status line and headers only (the answer to HEAD), as text.
    pub fn read_head_only(&mut self) -> String {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "connection closed");
            head.push_str(&line);
            if line == "\r\n" {
                return head;
            }
        }
    }

    /// True once the server closed the connection (EOF, or a reset); false if it sent more bytes or kept the
    /// connection open for the whole deadline.
    /// What the next read gives after the answers: `Ok(0)` for the server's FIN, an error for a reset.
    pub fn read_end(&mut self) -> std::io::Result<usize> {
        let mut byte = [0u8; 1];
        self.reader.read(&mut byte)
    }

    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            // Over TLS, a close without close_notify.
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            ),
        }
    }
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// One request on a fresh connection.
pub fn request(addr: SocketAddr, bytes: &[u8]) -> Response {
    Client::connect(addr).request(bytes)
}

pub fn get(addr: SocketAddr, target: &str) -> Response {
    request(addr, format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
}

pub fn post(addr: SocketAddr, content_type: &str, body: &[u8]) -> Response {
    post_to(addr, "/e", content_type, body)
}

pub fn post_to(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Response {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    request(addr, &[head.as_bytes(), body].concat())
}

/// What a test tool's install script (`scripts/{script}`) installs once and prints: a binary or a Python — or the
/// path in `var` when it is set (scripts/test.sh sets them all, so the scripts run once per suite).
pub fn installed(var: &str, script: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(script);
    let output = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", script.display()));
    assert!(output.status.success(), "{} failed", script.display());
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A test cannot run here for want of `why` (root, a kernel feature). Under CI (`CI=true`, as CI services set
/// it and `.ci/run` does) that fails the run: a test that did not run must not count as passed. Elsewhere the
/// test says why it did not run.
pub fn prerequisite_missing(why: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!ci, "a prerequisite of this test is missing under CI=true: {why}");
    eprintln!("not run: {why}");
}

/// Polls `condition` until it holds or the deadline passes.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A keep-alive client sending one request over and over on its own thread, counting the answers that were not
/// a 200 (after one, it connects again): the load of the reload tests.
pub struct KeepAliveLoad {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl KeepAliveLoad {
    pub fn start(addr: SocketAddr, request: &'static [u8]) -> KeepAliveLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let thread = {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                while !stop.load(Relaxed) {
                    if client.try_request(request).is_none_or(|r| r.status != 200) {
                        failed.fetch_add(1, Relaxed);
                        client = Client::connect(addr);
                    }
                    sent.fetch_add(1, Relaxed);
                }
            })
        };
        KeepAliveLoad { stop, sent, failed, thread }
    }

    /// Requests sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Relaxed)
    }

    /// Stops the client; returns (sent, failed).
    pub fn stop(self) -> (u64, u64) {
        self.stop.store(true, Relaxed);
        self.thread.join().unwrap();
        (self.sent.load(Relaxed), self.failed.load(Relaxed))
    }
}

/// A shipped chunk, decoded and checked against its sidecar.
pub struct Shipped {
    pub key: String,
    pub records: Vec<Value>,
    /// `host-boot-wN`, and `/bad` for the bad-row stream's.
    pub worker_key: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub bad: bool,
}

/// Decodes every chunk under the file sink's `root`: each must be a complete stream of valid JSON lines whose
/// count, sequence range and sha256 match its `.meta.json`.
pub fn read_shipped(root: &Path) -> Vec<Shipped> {
    let mut files = Vec::new();
    collect_files(root, &mut files);
    let mut shipped = Vec::new();
    for path in files {
        let rel = path.strip_prefix(root).unwrap().to_str().unwrap().to_string();
        if rel.ends_with(".meta.json") {
            continue;
        }
        assert!(!rel.starts_with('/'), "{rel}");
        let codec = Codec::from_file_name(&rel).unwrap_or_else(|| panic!("unexpected file {rel}"));
        let bytes = std::fs::read(&path).unwrap();
        let mut text = Vec::new();
        plutos::spool::encoder::decode(codec, &bytes, &mut text)
            .unwrap_or_else(|e| panic!("{rel}: invalid stream: {e}"));
        let text = String::from_utf8(text).unwrap();
        assert!(text.ends_with('\n'), "{rel}: chunk must end with a newline");
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{rel}: invalid line {l:?}: {e}")))
            .collect();
        assert!(!records.is_empty(), "{rel}: empty chunk shipped");
        let meta: Value =
            serde_json::from_slice(&std::fs::read(format!("{}.meta.json", path.display())).unwrap()).unwrap();
        assert_eq!(meta["events"], records.len() as u64, "{rel}");
        assert_eq!(meta["key"], rel.as_str());
        let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(meta["sha256"], sha.as_str(), "{rel}");
        let first_seq = meta["first-seq"].as_u64().unwrap();
        let last_seq = meta["last-seq"].as_u64().unwrap();
        assert_eq!(last_seq - first_seq + 1, records.len() as u64, "{rel}");
        let name = rel.rsplit('/').next().unwrap();
        let mut worker_key = name[..name.rfind('-').unwrap()].to_string(); // host-boot-wN
        let from_meta =
            format!("{}-{}-w{}", meta["host"].as_str().unwrap(), meta["boot"].as_str().unwrap(), meta["worker"]);
        assert_eq!(from_meta, worker_key, "{rel}: host, boot and worker in the sidecar");
        let bad = meta["stream"] == "bad";
        assert_eq!(bad, rel.starts_with("bad/") || rel.contains("/bad/"), "{rel}: bad rows, and only they, under bad/");
        if bad {
            worker_key.push_str("/bad");
        }
        shipped.push(Shipped { key: rel, records, worker_key, first_seq, last_seq, bad });
    }
    shipped
}

/// Every shipped record (the good stream), after checking that each (host, boot, worker, stream)'s sequence
/// ranges tile 0..n.
pub fn read_records(root: &Path) -> Vec<Value> {
    read_streams(root).0
}

/// Every shipped bad row (the bad stream under `bad/`), checked as `read_records` checks.
pub fn read_bad_rows(root: &Path) -> Vec<Value> {
    read_streams(root).1
}

/// (good records, bad rows), after checking that each writer's sequence ranges tile 0..n.
pub fn read_streams(root: &Path) -> (Vec<Value>, Vec<Value>) {
    let shipped = read_shipped(root);
    let mut ranges: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    for s in &shipped {
        ranges.entry(&s.worker_key).or_default().push((s.first_seq, s.last_seq));
    }
    for (writer, mut r) in ranges {
        r.sort();
        r.dedup(); // a chunk shipped twice (at-least-once) is the same range
        let mut next = 0;
        for (first, last) in r {
            assert_eq!(first, next, "{writer}: hole or overlap in sequence numbers");
            next = last + 1;
        }
    }
    let (bad, good): (Vec<Shipped>, Vec<Shipped>) = shipped.into_iter().partition(|s| s.bad);
    (good.into_iter().flat_map(|s| s.records).collect(), bad.into_iter().flat_map(|s| s.records).collect())
}

pub fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// `values` in a canonical order (by their JSON text), to compare sets of records.
pub fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(|v| v.to_string());
    values
}

/// The `raw_data` of every record.
pub fn raw_data(records: &[Value]) -> Vec<Value> {
    records.iter().map(|r| r["raw_data"].clone()).collect()
}

/// Sealed chunks written straight into `spool_dir` as a crashed or stopped collector would have left them:
/// `count` chunks of worker 0 of boot `boot`, each holding `events` GET-like records `{"id":"{boot}-{chunk}-{i}"}`.
/// Returns each chunk with the ids it holds.
pub fn sealed_chunks(
    spool_dir: &Path,
    boot: &str,
    count: usize,
    events: usize,
) -> Vec<(plutos::spool::SealedChunk, Vec<String>)> {
    let chunks: Vec<Vec<String>> =
        (0..count).map(|chunk| (0..events).map(|i| format!("{boot}-{chunk}-{i}")).collect()).collect();
    let lines: Vec<Vec<String>> = chunks
        .iter()
        .map(|ids| {
            ids.iter()
                .map(|id| {
                    format!("{{\"raw_data\":{{\"id\":\"{id}\"}},\"written_at\":\"2026-11-26T00:00:00.000000Z\"}}")
                })
                .collect()
        })
        .collect();
    sealed_chunks_of(spool_dir, boot, &lines).into_iter().zip(chunks).collect()
}

/// Sealed gzip chunks of worker 0 in the spool under `spool_dir`, one per element of `chunks`, holding those
/// record lines (without their newlines).
pub fn sealed_chunks_of(spool_dir: &Path, boot: &str, chunks: &[Vec<String>]) -> Vec<plutos::spool::SealedChunk> {
    use plutos::spool::ChunkConfig;
    use plutos::spool::chunk::ChunkWriter;
    use plutos::spool::{Compression, Durability, Fsync};
    let dirs = plutos::spool::SpoolDirs::create(spool_dir).unwrap();
    let settings = ChunkConfig {
        compression: Compression { codec: Codec::Gzip, level: 6 },
        durability: Durability::Spool,
        fsync: Fsync::Never,
        max_bytes: 64 << 20,
        max_events: None,
        max_age: Duration::from_secs(3600),
    };
    let mut writer = ChunkWriter::new(0, plutos::spool::Stream::Good, boot.to_string(), dirs, settings);
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    chunks
        .iter()
        .map(|lines| {
            let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
            writer.commit(text.as_bytes(), lines.len() as u64, Instant::now(), unix).unwrap();
            writer.seal().unwrap().0.unwrap()
        })
        .collect()
}

/// A writable copy of the test registry (`tests/data/iglu`: Iglu Central's schemas the tests use) under `into`,
/// with `extra` schemas added (`(vendor/name/jsonschema/version, its JSON Schema body without "self")`).
pub fn registry_copy(into: &Path, extra: &[(&str, &str)]) -> PathBuf {
    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            match entry.file_type().unwrap().is_dir() {
                true => copy_tree(&entry.path(), &target),
                false => drop(std::fs::copy(entry.path(), target).unwrap()),
            }
        }
    }
    let registry = into.join("registry");
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/iglu/schemas"), &registry.join("schemas"));
    for (place, body) in extra {
        let parts: Vec<&str> = place.split('/').collect();
        let path = registry.join("schemas").join(place);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let schema = format!(
            r#"{{"$schema":"http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
            "self":{{"vendor":"{}","name":"{}","format":"{}","version":"{}"}},{body}}}"#,
            parts[0], parts[1], parts[2], parts[3]
        );
        std::fs::write(path, schema).unwrap();
    }
    registry
}
