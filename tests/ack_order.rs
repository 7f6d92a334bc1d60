//! Guarantee 1 under output back-pressure, on the real binary: one connection pipelines tens of thousands of
//! requests (each trial another route: `/e`, Snowplow's pixel, a Segment message) and reads its answers slowly, so the server pauses reading (too much unsent output) and resumes when the
//! client catches up. The server is stopped (SIGSTOP) the moment the first byte of each batch of answers reaches
//! the client; every 200 the client holds by then must already be in the spool. Once every answer arrived, the
//! stopped server is killed with SIGKILL and restarted on the same spool: every 200 must be shipped. The same
//! with the spool write failing (the file-size limit lowered) just when the server resumes reading: the answers
//! that wait for that write become one 503, and none of their events is stored. The first trials run over HTTPS
//! too: an answer is encrypted only when it may be written.

mod common;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::collector::*;
use common::*;

/// Requests per write while the client fills the server's output (~37 KB: one read of the server's).
const PIECE: u64 = 1000;
/// Requests sent after the server paused (a few KiB: they fit in its receive queue).
const TAIL: u64 = 10;
const TRIALS: usize = 3;

/// Events written to the spool or shipped: lines of the uncompressed chunk files anywhere under `dir`.
fn stored_events(dir: &Path) -> u64 {
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "ndjson"))
        .map(|f| std::fs::read(f).map_or(0, |b| memchr::memchr_iter(b'\n', &b).count() as u64))
        .sum()
}

/// Bytes written to `stream` that the peer has not acknowledged yet (SIOCOUTQ).
fn unsent_bytes(stream: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    let mut bytes: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int into `bytes`, which we own.
    assert_eq!(unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut bytes) }, 0);
    bytes
}

/// Stops every thread of the process and waits until it is stopped.
fn freeze(pid: i32) {
    // SAFETY: kill(2) and waitpid(2) on our own child.
    unsafe {
        assert_eq!(libc::kill(pid, libc::SIGSTOP), 0);
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, libc::WUNTRACED), pid);
        assert!(libc::WIFSTOPPED(status), "stopped");
    }
}

fn thaw(pid: i32) {
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
}

/// Parses complete answers at the start of `buf`, removes them and returns their status codes.
fn take_answers(buf: &mut Vec<u8>) -> Vec<u16> {
    let mut used = 0;
    let mut statuses = Vec::new();
    while let Some(end) = memchr::memmem::find(&buf[used..], b"\r\n\r\n") {
        let head = std::str::from_utf8(&buf[used..used + end]).unwrap();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length on every answer")
            .parse()
            .unwrap();
        if buf.len() < used + end + 4 + length {
            break;
        }
        used += end + 4 + length;
        statuses.push(status);
    }
    buf.drain(..used);
    statuses
}

/// The request of event `id` on the route of `trial`: plutos's own GET, Snowplow's pixel, a Segment message.
fn request(trial: usize, id: &str) -> Vec<u8> {
    match trial % 3 {
        0 => format!("GET /e?id={id} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes(),
        1 => format!("GET /i?e=pv&eid={id}&id={id} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes(),
        _ => {
            let body = format!(r#"{{"event":"e","messageId":"{id}","id":"{id}"}}"#);
            format!("POST /v1/t HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
        }
    }
}

/// One connection of a collector (WORKERS=1, no compression, nothing sealed by age) that pipelines requests of
/// events `bp-{trial}-{i}` without reading until the server stops reading it.
struct Pipeline {
    collector: Collector,
    dir: tempfile::TempDir,
    stream: TcpStream,
    /// Over HTTPS: the client's TLS session (answers are decrypted before they are counted).
    tls: Option<rustls::ClientConnection>,
    trial: usize,
    sent: u64,
}

impl Pipeline {
    /// `https`: the connection goes to the HTTPS listener.
    fn fill(trial: usize, https: bool) -> Pipeline {
        let dir = tempfile::tempdir().unwrap();
        let pki = common::pki::Pki::new(dir.path(), "ack");
        let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
        let mut env = vec![("WORKERS", "1"), ("COMPRESSION_TYPE", "none"), ("MAX_BUFFER_TIME_MILLISECONDS", "3600000")];
        if https {
            env.extend([("TLS_PORT", "127.0.0.1:0"), ("TLS_CERT", cert), ("TLS_KEY", key)]);
        }
        // A file-size limit far away, so that SIGXFSZ is ignored when a test lowers it.
        let collector =
            Collector::spawn_with(dir.path(), &env, Confine { max_file_bytes: Some(1 << 40), ..Confine::default() });
        let mut stream = TcpStream::connect(if https { collector.tls_addr() } else { collector.addr }).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        let tls = https.then(|| {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = rustls::ClientConnection::new(pki.client(&[&rustls::version::TLS13], &[]), name).unwrap();
            while tls.is_handshaking() {
                tls.complete_io(&mut stream).unwrap();
            }
            tls
        });
        let mut pipeline = Pipeline { collector, dir, stream, tls, trial, sent: 0 };
        pipeline.pause_the_server();
        pipeline
    }

    /// Writes `bytes` (encrypted, over HTTPS).
    fn send(&mut self, bytes: &[u8]) {
        match &mut self.tls {
            None => self.stream.write_all(bytes).unwrap(),
            Some(tls) => {
                // The session takes what fits under its buffer limit; the records go out, then the rest.
                let mut rest = bytes;
                while !rest.is_empty() {
                    rest = &rest[tls.writer().write(rest).unwrap()..];
                    while tls.wants_write() {
                        tls.write_tls(&mut self.stream).unwrap();
                    }
                }
            }
        }
    }

    /// The plaintext of `raw` (as is, or decrypted) appended to `out`.
    fn plaintext(&mut self, mut raw: &[u8], out: &mut Vec<u8>) {
        let Some(tls) = &mut self.tls else {
            out.extend_from_slice(raw);
            return;
        };
        while !raw.is_empty() {
            tls.read_tls(&mut raw).unwrap();
            let available = tls.process_new_packets().unwrap().plaintext_bytes_to_read();
            let start = out.len();
            out.resize(start + available, 0);
            tls.reader().read_exact(&mut out[start..]).unwrap();
        }
    }

    fn pause_the_server(&mut self) {
        let (addr, trial) = (self.collector.addr, self.trial);
        // One piece at a time, each waiting until the server's kernel took it, until the server pauses this
        // connection (its unsent answers passed the high-water mark). What arrived after the pause waits — in
        // the server's receive queue (epoll), or stashed by the io_uring loop, whose receive had taken it
        // already — and the resumed read takes it; what did not fit in the server's receive queue waits in this
        // client's send queue and goes when the server reads again. A short tail after the pause makes sure
        // there is some whichever request the pause came at.
        let start = Instant::now();
        let paused = || metric(addr, "plutos_read_pauses_total") > 0;
        while !paused() {
            assert!(start.elapsed() < DEADLINE, "trial {trial}: the server never paused reading");
            let sent = self.sent;
            let piece: Vec<u8> =
                (sent..sent + PIECE).flat_map(|i| request(trial, &format!("bp-{trial}-{i}"))).collect();
            self.send(&piece);
            self.sent += PIECE;
            // Until the server's kernel took the piece, or the server paused with some of it not taken.
            while unsent_bytes(&self.stream) > 0 && !paused() {
                assert!(start.elapsed() < DEADLINE, "trial {trial}: requests stuck in the client");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let tail: Vec<u8> =
            (self.sent..self.sent + TAIL).flat_map(|i| request(trial, &format!("bp-{trial}-{i}"))).collect();
        self.send(&tail);
        self.sent += TAIL;
    }

    /// Reads slowly: stops the server at the first byte of each batch of answers, takes everything it wrote
    /// before it stopped and compares with the spool at that instant. Ends, with the server stopped, once
    /// every request is answered or the connection is closed. Returns the statuses in order.
    fn read_slowly(&mut self) -> Vec<u16> {
        let (pid, trial) = (self.collector.child.id() as i32, self.trial);
        let mut pending = Vec::new();
        let mut statuses = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut raw = Vec::new();
        loop {
            // Peek: taking bytes would open the receive window and wake the server before it is stopped.
            let n = self.stream.peek(&mut buf[..1]).expect("answers");
            freeze(pid);
            let mut closed = n == 0;
            self.stream.set_nonblocking(true).unwrap();
            raw.clear();
            while !closed {
                match self.stream.read(&mut buf) {
                    Ok(0) => closed = true,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            self.stream.set_nonblocking(false).unwrap();
            self.plaintext(&raw, &mut pending);
            statuses.extend(take_answers(&mut pending));
            let acked = statuses.iter().filter(|&&s| s == 200).count() as u64;
            let stored = stored_events(self.dir.path());
            assert!(stored >= acked, "trial {trial}: {acked} answered 200 but only {stored} events in the spool");
            if closed || statuses.len() as u64 == self.sent {
                assert!(pending.is_empty(), "trial {trial}: a cut answer");
                return statuses;
            }
            thaw(pid);
        }
    }

    /// SIGKILL (it works on a stopped process), restart on the same spool, stop gracefully; the shipped ids.
    fn kill_and_recover(self) -> (HashSet<String>, tempfile::TempDir) {
        (kill_and_recover(self.collector, self.dir.path()), self.dir)
    }

    fn ids(&self, range: std::ops::Range<u64>) -> Vec<String> {
        range.map(|i| format!("bp-{}-{i}", self.trial)).collect()
    }
}

/// Plain, then over HTTPS (one after the other: these trials time the server's pauses, so they do not share
/// the CPU with each other).
#[test]
fn no_200_reaches_a_slow_pipelining_client_before_its_spool_write() {
    answers_wait_for_the_spool_write(false);
    answers_wait_for_the_spool_write(true);
}

fn answers_wait_for_the_spool_write(https: bool) {
    for trial in 0..TRIALS {
        let mut pipeline = Pipeline::fill(trial, https);
        let statuses = pipeline.read_slowly();
        assert!(statuses.iter().all(|&s| s == 200), "trial {trial}: {statuses:?}");
        assert_eq!(statuses.len() as u64, pipeline.sent);
        let acked = pipeline.ids(0..pipeline.sent);
        let (shipped, _dir) = pipeline.kill_and_recover();
        let missing: Vec<&String> = acked.iter().filter(|id| !shipped.contains(*id)).collect();
        assert!(missing.is_empty(), "trial {trial}: {} acknowledged events lost: {:?}", missing.len(), &missing[..5]);
    }
}

/// SIGKILL `collector` (it works on a stopped process), restart one on its spool in `dir`, stop it gracefully;
/// the ids it shipped.
fn kill_and_recover(collector: Collector, dir: &Path) -> HashSet<String> {
    collector.signal(libc::SIGKILL);
    assert!(!collector.wait().success());
    let restarted = Collector::spawn(dir, &[]);
    restarted.signal(libc::SIGTERM);
    assert!(restarted.wait().success());
    shipped_ids(&dir.join("out"))
}

/// Every byte of the spool's files (uncompressed with COMPRESSION_TYPE=none) as text.
fn spool_text(dir: &Path) -> String {
    let mut files = Vec::new();
    collect_files(&dir.join("spool"), &mut files);
    files.iter().map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned()).collect()
}

/// The same over HTTP/2, h2c then h2 over TLS: 100 streams (GETs and NDJSON POSTs) sent at once on one
/// connection (`tests/h2_load.py`); the server is stopped the moment the first bytes of their answers are
/// readable, and every stream answered 200 in what had arrived by then must already be in the spool. SIGKILL and
/// a restart ship every one.
#[test]
fn no_200_on_an_http2_stream_leaves_before_its_spool_write() {
    for (trial, https) in [(0, false), (1, true), (2, false), (3, true)] {
        let dir = tempfile::tempdir().unwrap();
        let (collector, pki) = stream_trial_collector(dir.path(), false);
        let addr = if https { collector.tls_addr() } else { collector.addr }.to_string();
        let (tls, ca) = if https { ("1", pki.ca.to_str().unwrap()) } else { ("0", "-") };
        let tag = format!("h2-{trial}");
        let client = common::h2::load_command(&[&addr, tls, ca, &tag, "100", "100", "--pause-at-first-answer"]);
        paused_at_first_answer(collector, dir.path(), client, &tag);
    }
}

/// The collector of the stream trials (one worker, no compression, nothing sealed by age) with HTTPS and, with
/// `quic`, HTTP/3 on ports of their own; the CA its certificate chains to.
fn stream_trial_collector(dir: &Path, quic: bool) -> (Collector, common::pki::Pki) {
    let pki = common::pki::Pki::new(dir, "ack-streams");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let mut env = vec![
        ("WORKERS", "1"),
        ("COMPRESSION_TYPE", "none"),
        ("MAX_BUFFER_TIME_MILLISECONDS", "3600000"),
        ("TLS_PORT", "127.0.0.1:0"),
        ("TLS_CERT", cert),
        ("TLS_KEY", key),
    ];
    if quic {
        env.push(("QUIC_PORT", "127.0.0.1:0"));
    }
    (Collector::spawn(dir, &env), pki)
}

/// Runs a load client that sends its requests at once and prints `first` when the server's first answer is
/// readable: the server is frozen then, the client reads what had arrived, and every id it saw answered 200 must
/// already be in the spool; SIGKILL and a restart ship every one.
fn paused_at_first_answer(collector: Collector, dir: &Path, mut client: std::process::Command, trial: &str) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let pid = collector.child.id() as i32;
    let mut client = client.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines().map(Result::unwrap);
    let mut acked: Vec<String> = lines.by_ref().take_while(|line| line != "first").collect();
    freeze(pid);
    client.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut answered = 0;
    for line in lines.by_ref() {
        match line.strip_prefix("done ") {
            Some(n) => {
                answered = n.parse().unwrap();
                break;
            }
            None => acked.push(line),
        }
    }
    assert!(client.wait().unwrap().success());
    assert!(answered > 0 && !acked.is_empty(), "{trial}: answers had arrived");
    let spool = spool_text(dir);
    let early: Vec<&String> = acked.iter().filter(|id| !spool.contains(&format!("\"id\":\"{id}\""))).collect();
    assert!(early.is_empty(), "{trial}: {} answered 200 before their spool write: {early:?}", early.len());
    let shipped = kill_and_recover(collector, dir);
    assert!(acked.iter().all(|id| shipped.contains(id)), "{trial}: every 200 shipped");
}

#[test]
fn no_200_on_an_http3_stream_leaves_before_its_spool_write() {
    for trial in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let (collector, pki) = stream_trial_collector(dir.path(), true);
        let (addr, tag) = (collector.quic_addr().to_string(), format!("h3-{trial}"));
        let ca = pki.ca.to_str().unwrap();
        let client = common::h2::h3_load_command(&[&addr, ca, &tag, "100", "100", "--pause-at-first-answer"]);
        paused_at_first_answer(collector, dir.path(), client, &tag);
    }
}

#[test]
fn a_spool_write_failing_when_reading_resumes_takes_back_every_waiting_200() {
    let mut pipeline = Pipeline::fill(0, false);
    // The open chunk may not grow any more: the group commit of the resumed read fails with EFBIG.
    let open_chunk = std::fs::read_dir(pipeline.dir.path().join("spool/open")).unwrap().next().unwrap().unwrap();
    let size = open_chunk.metadata().unwrap().len();
    let limit = libc::rlimit { rlim_cur: size, rlim_max: 1 << 40 };
    // SAFETY: prlimit(2) on our own child with a limit we own.
    let rc = unsafe {
        libc::prlimit(pipeline.collector.child.id() as i32, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut())
    };
    assert_eq!(rc, 0);
    let statuses = pipeline.read_slowly();
    let acked = statuses.iter().take_while(|&&s| s == 200).count() as u64;
    assert_eq!(&statuses[acked as usize..], &[503], "then one 503 and the connection closes");
    assert!(acked < pipeline.sent);
    let (acked_ids, refused_ids) = (pipeline.ids(0..acked), pipeline.ids(acked..pipeline.sent));
    let (shipped, _dir) = pipeline.kill_and_recover();
    assert!(acked_ids.iter().all(|id| shipped.contains(id)), "every 200 shipped");
    let stored: Vec<&String> = refused_ids.iter().filter(|id| shipped.contains(*id)).collect();
    assert!(stored.is_empty(), "{} events without a 200 stored: {:?}", stored.len(), &stored[..stored.len().min(5)]);
}
