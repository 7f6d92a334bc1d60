//! One client connection's state inside a worker, whichever event loop serves it. Buffers are reused across
//! requests; an idle connection holds no input buffer (reads land in the worker's shared read buffer, or the
//! io_uring loop's provided buffers, and only an incomplete request is copied here). Its answers wait in
//! `output` behind the committed boundary (`connection/output.rs`).
//!
//! A connection from the HTTPS listener carries its rustls `ServerConnection`, driven sans-IO here: what the
//! socket gives is fed to it and the plaintext it yields (into the worker's shared plaintext buffer) is handled
//! like a plain connection's bytes; committed output is encrypted only when it is written, so the durability
//! order does not move. An error in the peer's records sends rustls's alert before the connection closes; the
//! last answer is followed by close_notify.

use std::io::{self, Read};
use std::net::{IpAddr, Shutdown};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use rustls::ServerConnection;

use crate::event::record::Transport;
use crate::http::framing::Progress;
use crate::tls::records::RecordFraming;
use crate::worker::h2::Session;
use crate::worker::lifecycle::Lifecycle;

mod output;
pub use output::{Drained, Output};

/// Stop reading from a client that has this much unread output.
const OUT_HIGH_WATER: usize = 1024 * 1024;
/// Input is taken at most this much at a time, whichever loop read it (the epoll loop's read buffer), so
/// reading pauses at the same point on both.
pub const READ_STEP: usize = 64 * 1024;
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
    /// Encoded answers and the committed boundary they wait behind.
    pub output: Output,
    /// When the first byte of the current incomplete request arrived (for 408).
    pub request_started: Option<Instant>,
    /// Last read, or last write progress.
    pub last_active: Instant,
    /// Its HTTP/2 session, once it chose HTTP/2.
    pub h2: Option<Box<Session>>,
    /// Which front end serves it is not decided yet (before its first bytes after TLS).
    undecided: bool,
}

/// What `take_until_paused` did with the input it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Bytes taken; the rest stays unread (in the socket, or kept by the io_uring loop) until reading resumes.
    pub bytes: usize,
    /// Reading paused now (its client does not take its answers).
    pub paused_now: bool,
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
            output: Output::default(),
            last_active: now,
            h2: None,
            undecided: true,
        }
    }

    /// Whether its front end (HTTP/1.1 or HTTP/2) is still to be chosen.
    pub fn front_undecided(&self) -> bool {
        self.undecided
    }

    /// Its front end is chosen.
    pub fn front_decided(&mut self) {
        self.undecided = false;
    }

    /// Its TLS handshake chose HTTP/2 by ALPN.
    pub fn negotiated_h2(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.alpn_protocol() == Some(b"h2"))
    }

    /// HTTP/2 answers wait for the group commit.
    pub fn h2_waiting(&self) -> bool {
        self.h2.as_ref().is_some_and(|session| !session.waiting.is_empty())
    }

    /// Output not yet written (with what a send in flight carries).
    pub fn unsent(&self) -> usize {
        self.output.unsent()
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

    /// Whether its input must wait (its reading paused, or too much of its output waits for the client);
    /// reading pauses now if it was going on.
    fn input_waits(&mut self, paused_now: &mut bool) -> bool {
        if self.life.reading_paused() {
            return true;
        }
        if self.unsent() > OUT_HIGH_WATER {
            *paused_now |= self.life.pause_reading();
            return true;
        }
        false
    }

    /// Takes `data` — what a read or a receive brought — through `take_input`, `READ_STEP` bytes at a time as
    /// reads of the worker's buffer would, and stops before a step once reading pauses: both loops read up
    /// to the same point, and what a paused connection was sent stays unread.
    pub fn take_until_paused(
        &mut self,
        data: &[u8],
        plain: &mut Vec<u8>,
        now: Instant,
        handle: &mut impl FnMut(&mut Connection, &[u8]) -> usize,
    ) -> io::Result<Taken> {
        let mut taken = Taken { bytes: 0, paused_now: false };
        while taken.bytes < data.len() && !self.input_waits(&mut taken.paused_now) {
            let step = &data[taken.bytes..data.len().min(taken.bytes + READ_STEP)];
            self.take_input(step, plain, now, handle)?;
            taken.bytes += step.len();
        }
        self.note_request_start(now);
        Ok(taken)
    }

    /// Reads what the socket has into `read_buf` (at most `READ_STEP` at a time) and takes it. Stops once the
    /// socket is drained, the client closed, or reading paused (`Ok(true)` when it paused now). An error means
    /// the connection is gone.
    pub fn receive(
        &mut self,
        read_buf: &mut [u8],
        plain: &mut Vec<u8>,
        now: Instant,
        mut handle: impl FnMut(&mut Connection, &[u8]) -> usize,
    ) -> io::Result<bool> {
        let step = READ_STEP.min(read_buf.len());
        let read_buf = &mut read_buf[..step];
        let mut paused_now = false;
        while !self.input_waits(&mut paused_now) {
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
            paused_now |= self.take_until_paused(&read_buf[..n], plain, now, &mut handle)?.paused_now;
            // With edge-triggered readiness a short read means the socket is drained; any later data
            // raises a new edge. Saves one EAGAIN read per request.
            if n < read_buf.len() {
                break;
            }
        }
        self.note_request_start(now);
        Ok(paused_now)
    }

    /// Hands bytes that arrived to `handle` — an incomplete request's bytes so far, then these (a TLS
    /// connection's plaintext, decrypted into `plain`, the worker's, shared by its connections) — which returns
    /// how many bytes it used; only the rest is kept. An error means the connection is gone (a TLS error's alert
    /// was written first).
    fn take_input(
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
            // The last answer is decided; input after it is dropped, and the connection lingers before closing.
            if !data.is_empty() {
                self.life.input_left();
            }
            return Ok(());
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
            if !self.pending.is_empty() {
                self.life.input_left();
            }
            self.drop_input();
        }
        if self.pending.is_empty() && self.pending.capacity() > output::KEEP_CAPACITY {
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

    /// Writes committed output to the socket (through TLS, encrypted now).
    pub fn write_out(&mut self, now: Instant) -> io::Result<Drained> {
        let Connection { output, tls, stream, last_active, .. } = self;
        output.drain_into(tls.as_deref_mut(), stream, last_active, now)
    }

    /// Moves committed output (encrypted, for TLS, with the session's own records) into `into`, the buffer of
    /// the io_uring loop's next send.
    pub fn move_out(&mut self, into: &mut Vec<u8>, now: Instant) -> io::Result<Drained> {
        let Connection { output, tls, last_active, .. } = self;
        output.move_committed(tls.as_deref_mut(), into, last_active, now)
    }

    /// The last answer is out: a TLS connection says so (`close_notify`, written directly: the rare path).
    pub fn say_goodbye(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut self.stream);
        }
    }

    /// After the last response, with input left unread: send FIN and drain input for a while instead of closing
    /// at once, so the kernel does not answer unread input with a RST that could destroy the response in flight.
    pub fn linger(&mut self, now: Instant) {
        if self.life.lingering_until().is_some() {
            return;
        }
        self.say_goodbye();
        self.life.linger(now + LINGER);
        // shutdown(2) itself on both loops: the ring's SHUTDOWN runs in an io-wq worker, which looks the
        // descriptor up only when it runs — by then the connection may have closed and its number been reused.
        let _ = self.stream.shutdown(Shutdown::Write);
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
