//! One client connection's state inside a worker. Buffers are reused across requests; an idle connection
//! holds no input buffer (reads land in the worker's shared read buffer and only an incomplete request is
//! copied here).
//!
//! A connection from the HTTPS listener carries its rustls `ServerConnection`, driven sans-IO here: what the
//! socket gives is fed to it and the plaintext it yields (into the worker's shared plaintext buffer) is handled
//! like a plain connection's bytes; committed output is encrypted only when it is written, so the durability
//! order does not move. An error in the peer's records sends rustls's alert before the connection closes; the
//! last answer is followed by close_notify.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use rustls::ServerConnection;

use crate::event::record::Transport;
use crate::http::framing::Progress;
use crate::http::route::Route;
use crate::tls::records::RecordFraming;
use crate::worker::lifecycle::Lifecycle;

mod ring;
pub use ring::{InFlight, SendBuffer};

/// Stop reading from a client that has this much unread output.
const OUT_HIGH_WATER: usize = 1024 * 1024;
/// Buffers larger than this are released when they empty, so idle connections stay small.
const KEEP_CAPACITY: usize = 16 * 1024;
/// How long a half-closed connection's input is drained after its last response.
const LINGER: Duration = Duration::from_secs(2);

/// Who is at the other end of a connection.
pub struct Peer {
    pub addr: IpAddr,
    /// The `ip` text of its records (`IP_MODE` applied), rendered once.
    pub ip: Box<str>,
    /// A trusted proxy: each request names its client in forwarding headers.
    pub proxy: bool,
    /// The listener it came through.
    pub transport: Transport,
}

pub struct Connection {
    pub stream: TcpStream,
    /// The TLS session of a connection from the HTTPS listener.
    tls: Option<Box<ServerConnection>>,
    /// Where its TLS input stands between records: a record that is not whole yields no plaintext, yet it is
    /// the start of a request (timed for 408 like an incomplete head).
    cipher: RecordFraming,
    /// Set once, when its TLS handshake ended: whether the session was resumed (taken by the worker's count).
    handshake_ended: Option<bool>,
    pub peer: Peer,
    /// Where it is in its life: open, ending, lingering; paused, queued for the flush.
    pub life: Lifecycle,
    /// Bytes of an incomplete request.
    pub pending: Vec<u8>,
    /// How far the request at the start of the input got: each read looks only at its new bytes.
    pub progress: Progress,
    /// Encoded responses not yet written; `out[..out_sent]` already went out.
    pub out: Vec<u8>,
    pub out_sent: usize,
    /// `out[..out_committed]` may be written: the group commit that covers the events of those responses
    /// returned. Only `commit_output` moves it, and `write_out` never crosses it, so a response encoded after
    /// the last commit (a resumed read, a timer) cannot reach the socket before the next one.
    out_committed: usize,
    /// Where the first response of this iteration whose events wait for the spool write starts, and the route
    /// of its request.
    ingest_mark: Option<(usize, Route)>,
    /// When the first byte of the current incomplete request arrived (for 408).
    pub request_started: Option<Instant>,
    /// Last read, or last write progress.
    pub last_active: Instant,
    /// What the io_uring loop has in flight for it (`ring.rs`; unused under epoll).
    pub ring: InFlight,
}

impl Connection {
    /// `over_limit`: accepted over MAX_CONNECTIONS only to answer its first request with 503 and close.
    /// `tls`: from the HTTPS listener; its handshake must end within the header timeout, like a request.
    pub fn new(
        stream: TcpStream,
        peer: Peer,
        over_limit: bool,
        now: Instant,
        tls: Option<Box<ServerConnection>>,
    ) -> Connection {
        Connection {
            request_started: tls.is_some().then_some(now),
            stream,
            tls,
            cipher: RecordFraming::default(),
            handshake_ended: None,
            peer,
            life: Lifecycle::new(over_limit),
            pending: Vec::new(),
            progress: Progress::default(),
            out: Vec::new(),
            out_sent: 0,
            out_committed: 0,
            ingest_mark: None,
            last_active: now,
            ring: InFlight::default(),
        }
    }

    /// Output not yet written (under io_uring, with what the send in flight carries).
    pub fn unsent(&self) -> usize {
        self.out.len() - self.out_sent + self.ring.flight.len()
    }

    /// A TLS connection whose handshake has not ended.
    pub fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// Once, after its TLS handshake ended: whether it resumed a session.
    pub fn take_handshake(&mut self) -> Option<bool> {
        self.handshake_ended.take()
    }

    /// A TLS connection with records to send that are not answers (handshake, session tickets, alerts).
    pub fn tls_wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Has bytes of a request that is not complete yet.
    pub fn has_partial_request(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Forgets the incomplete request: it will not be answered (the connection ends after its error).
    pub fn drop_input(&mut self) {
        self.pending = Vec::new();
        self.progress = Progress::default();
    }

    /// Reads what the socket has into `read_buf` and hands it to `take_input`. Stops once the socket is
    /// drained, the client closed, or too much output waits (reading pauses: `Ok(true)` when it paused now).
    /// An error means the connection is gone.
    pub fn receive(
        &mut self,
        read_buf: &mut [u8],
        plain: &mut Vec<u8>,
        now: Instant,
        mut handle: impl FnMut(&mut Connection, &[u8]) -> usize,
    ) -> io::Result<bool> {
        let mut paused_now = false;
        loop {
            if self.over_high_water() {
                paused_now = self.life.pause_reading();
                break;
            }
            let n = match self.stream.read(read_buf) {
                Ok(0) => {
                    self.life.peer_closed();
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.take_input(&read_buf[..n], plain, now, &mut handle)?;
            // With edge-triggered readiness a short read means the socket is drained; any later data
            // raises a new edge. Saves one EAGAIN read per request.
            if n < read_buf.len() {
                break;
            }
        }
        self.note_request_start(now);
        Ok(paused_now)
    }

    /// So much output waits for the client that reading stops until it went out.
    pub fn over_high_water(&self) -> bool {
        self.unsent() > OUT_HIGH_WATER
    }

    /// Hands bytes that arrived to `handle` — an incomplete request's bytes so far, then these (a TLS
    /// connection's plaintext, decrypted into `plain`, the worker's, shared by its connections) — which returns
    /// how many bytes it used; only the rest is kept. An error means the connection is gone (a TLS error's alert
    /// was written first).
    pub fn take_input(
        &mut self,
        data: &[u8],
        plain: &mut Vec<u8>,
        now: Instant,
        handle: &mut impl FnMut(&mut Connection, &[u8]) -> usize,
    ) -> io::Result<()> {
        self.last_active = now;
        let data = match self.tls.as_deref_mut() {
            None => data,
            Some(tls) => {
                self.cipher.feed(data);
                plain.clear();
                let was_handshaking = tls.is_handshaking();
                let decrypted = decrypt(tls, data, plain);
                if was_handshaking && !tls.is_handshaking() {
                    self.handshake_ended = Some(tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed));
                }
                match decrypted {
                    Ok(true) => self.life.peer_closed(), // close_notify
                    Ok(false) => {}
                    Err(e) => {
                        // rustls queued the alert that says why: it goes out before the close.
                        let _ = tls.write_tls(&mut self.stream);
                        return Err(e);
                    }
                }
                &plain[..]
            }
        };
        if !self.life.takes_requests() {
            return Ok(()); // the last answer is decided; input after it is dropped
        }
        if self.pending.is_empty() {
            let used = handle(self, data);
            self.pending.extend_from_slice(&data[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(data);
            let used = handle(self, &pending);
            pending.drain(..used);
            self.pending = pending;
        }
        if !self.life.takes_requests() {
            self.drop_input();
        }
        if self.pending.is_empty() && self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        }
        Ok(())
    }

    /// After the input that arrived was taken: an incomplete request (or TLS handshake, or TLS record) is timed
    /// from its first byte, for 408.
    pub fn note_request_start(&mut self, now: Instant) {
        self.request_started = match self.pending.is_empty() && !self.handshaking() && !self.cipher.mid_record() {
            true => None,
            false => self.request_started.or(Some(now)),
        };
    }

    /// Notes that the response about to be encoded, to a request of `route`, acknowledges events of this
    /// iteration's batch.
    pub fn mark_ingest(&mut self, route: Route) {
        self.ingest_mark.get_or_insert((self.out.len(), route));
    }

    /// The group commit covering every event answered so far returned: all encoded output may go out.
    pub fn commit_output(&mut self) {
        self.out_committed = self.out.len();
        self.ingest_mark = None;
    }

    /// The group commit failed: drops the answers from the first one that acknowledged events of the lost
    /// batch on. Returns the route of that first request, if there was one.
    pub fn take_back_ingest(&mut self) -> Option<Route> {
        let (mark, route) = self.ingest_mark.take()?;
        debug_assert!(mark >= self.out_committed);
        self.out.truncate(mark);
        Some(route)
    }

    /// Output encoded since the last group commit (none between the commit and the flush of an iteration).
    pub fn uncommitted(&self) -> usize {
        self.out.len() - self.out_committed
    }

    /// Writes committed output (through TLS, encrypted now); `Ok(true)` once all output is out.
    pub fn write_out(&mut self, now: Instant) -> io::Result<bool> {
        let out = &self.out[..self.out_committed];
        let written = match self.tls.as_deref_mut() {
            None => write_plain(&mut self.stream, out, &mut self.out_sent, &mut self.last_active, now)?,
            Some(tls) => write_tls(tls, &mut self.stream, out, &mut self.out_sent, &mut self.last_active, now)?,
        };
        if !written {
            return Ok(false); // the writable edge brings it back
        }
        if self.out_sent < self.out.len() {
            return Ok(false); // the rest waits for the next group commit
        }
        self.out.clear();
        self.out_sent = 0;
        self.out_committed = 0;
        if self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        }
        Ok(true)
    }

    /// After the last response: send FIN and drain input for a while instead of closing at once, so the kernel
    /// does not answer unread input with a RST that could destroy the response in flight.
    pub fn linger(&mut self, now: Instant) {
        if self.begin_linger(now) {
            let _ = self.stream.shutdown(Shutdown::Write);
        }
    }

    /// Lingering starts (a TLS connection's close_notify written first): true if it did now, and the caller
    /// half-closes the socket.
    pub fn begin_linger(&mut self, now: Instant) -> bool {
        if self.life.lingering_until().is_some() {
            return false;
        }
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut self.stream);
        }
        self.life.linger(now + LINGER);
        true
    }
}

/// Feeds `cipher` to the TLS session and appends the plaintext it yields to `plain`; true once the peer sent
/// close_notify. An error is the peer's (a bad record, a failed handshake, not TLS at all).
fn decrypt(tls: &mut ServerConnection, mut cipher: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
    let mut closed = false;
    while !cipher.is_empty() {
        if tls.read_tls(&mut cipher)? == 0 {
            // rustls took nothing (it errs when its buffers are full, so this is not expected): no spinning.
            return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS session took no bytes"));
        }
        let state = tls.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let available = state.plaintext_bytes_to_read();
        if available > 0 {
            let start = plain.len();
            plain.resize(start + available, 0);
            tls.reader().read_exact(&mut plain[start..])?;
        }
        closed |= state.peer_has_closed();
    }
    Ok(closed)
}

/// Writes `out[*sent..]` to the socket; false when the socket is full.
fn write_plain(
    stream: &mut TcpStream,
    out: &[u8],
    sent: &mut usize,
    last_active: &mut Instant,
    now: Instant,
) -> io::Result<bool> {
    while *sent < out.len() {
        match stream.write(&out[*sent..]) {
            Ok(n) => {
                *sent += n;
                *last_active = now;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Encrypts `out[*sent..]` and writes every record rustls holds (the handshake's and tickets' too) to the
/// socket (or the io_uring loop's send buffer), until nothing is left; false when the socket is full.
fn write_tls(
    tls: &mut ServerConnection,
    stream: &mut dyn Write,
    out: &[u8],
    sent: &mut usize,
    last_active: &mut Instant,
    now: Instant,
) -> io::Result<bool> {
    loop {
        let mut took = 0;
        if *sent < out.len() {
            // rustls takes what fits under its buffer limit; the rest once records went out.
            took = tls.writer().write(&out[*sent..])?;
            *sent += took;
        }
        if !tls.wants_write() {
            if *sent == out.len() {
                return Ok(true);
            }
            if took == 0 {
                return Ok(false); // nothing can be encrypted before the handshake ends
            }
            continue;
        }
        match tls.write_tls(stream) {
            Ok(_) => *last_active = now,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
