//! One QUIC connection's HTTP/3: quinn-proto's `Connection` and the streams HTTP/3 puts on it — the request
//! streams (gathered until they end, then answered through the exchange), the client's unidirectional streams
//! (`session/uni.rs`: its control stream, SETTINGS first, and its QPACK streams, read and dropped), and plutos's
//! own control stream (SETTINGS, later GOAWAY).
//!
//! An answer that acknowledges events is not written to its stream until the group commit: it waits in
//! `waiting`, and `release` writes it (or a 503) once the commit returned. Nothing leaves the connection before
//! the worker polls its transmits, which it does after the commit.

mod uni;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn_proto::{Connection, Dir, Event, ReadError, StreamEvent, StreamId, VarInt, WriteError};

use crate::h3::frame::{self, H3_NO_ERROR};
use crate::worker::connection::Peer;
use uni::Uni;

/// What the worker's request handling does for HTTP/3 (`worker/request/http3.rs`).
pub trait Exchange {
    /// A request stream ended (or outgrew its limit, `oversized`): its answer's frames are appended to `out`.
    /// `Ok(true)`: the answer acknowledges events and waits for the group commit; `Err`: an HTTP/3 error code
    /// that ends the connection.
    fn answer(&mut self, peer: &Peer, request: &[u8], oversized: bool, out: &mut Vec<u8>) -> Result<bool, u64>;
    /// The frames of the 503 that replaces answers whose group commit failed, or of a 408.
    fn refusal(&mut self, timed_out: bool, out: &mut Vec<u8>);
    /// The peer of a connection from `addr`, as records name it.
    fn peer(&self, addr: IpAddr) -> Peer;
}

/// The limits every connection of a worker has.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request stream's bytes (frames included) beyond which it is answered as oversized.
    pub max_request: usize,
    /// `SETTINGS_MAX_FIELD_SECTION_SIZE`.
    pub max_field_section: u64,
    /// A request must be whole this long after its stream opened (else 408).
    pub header_timeout: Duration,
}

/// A request stream being read.
struct Request {
    bytes: Vec<u8>,
    opened: Instant,
}

/// Answer bytes a stream has not taken yet (its flow-control window is full).
struct Pending {
    id: StreamId,
    bytes: Vec<u8>,
    written: usize,
}

pub struct Session {
    pub conn: Connection,
    pub peer: Peer,
    requests: HashMap<StreamId, Request>,
    uni: HashMap<StreamId, Uni>,
    /// Answers waiting for the group commit.
    waiting: Vec<(StreamId, Vec<u8>)>,
    pending: Vec<Pending>,
    /// Answers written whole whose delivery the client has not acknowledged yet: a drain closes the connection
    /// only after them (closing drops what was not sent).
    unacknowledged: usize,
    control: Option<StreamId>,
    /// The next request stream plutos has not taken (what its GOAWAY names).
    next_request: u64,
    /// When GOAWAY was written: no new request is taken; the connection closes once the ones taken are answered
    /// and the GOAWAY had time to arrive.
    going_away: Option<Instant>,
    /// A datagram left after the GOAWAY was written (closing drops stream data not yet sent).
    pub goaway_sent: bool,
    pub handshaking: bool,
    /// The deadline quinn-proto last asked for.
    pub timer: Option<Instant>,
    /// Request streams answered (for the worker's counts).
    pub answered: u64,
}

impl Session {
    pub fn new(conn: Connection, peer: Peer) -> Session {
        Session {
            conn,
            peer,
            requests: HashMap::new(),
            uni: HashMap::new(),
            waiting: Vec::new(),
            pending: Vec::new(),
            unacknowledged: 0,
            control: None,
            next_request: 0,
            going_away: None,
            goaway_sent: false,
            handshaking: true,
            timer: None,
            answered: 0,
        }
    }

    /// Handles what quinn-proto has for the application: the handshake's end, streams opened, readable or
    /// writable again.
    pub fn process(&mut self, now: Instant, exchange: &mut impl Exchange, limits: &Limits) {
        while let Some(event) = self.conn.poll() {
            match event {
                Event::Connected => {
                    self.handshaking = false;
                    self.open_control(limits);
                }
                Event::Stream(StreamEvent::Opened { dir }) => {
                    while let Some(id) = self.conn.streams().accept(dir) {
                        self.opened(id, dir, now);
                        self.read(id, now, exchange, limits);
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) => self.read(id, now, exchange, limits),
                Event::Stream(StreamEvent::Writable { id }) => self.write_pending(id),
                Event::Stream(StreamEvent::Finished { .. }) => {
                    self.unacknowledged = self.unacknowledged.saturating_sub(1)
                }
                Event::Stream(StreamEvent::Stopped { id, error_code }) => {
                    // The client wants no more of the answer: the stream is reset, its state freed.
                    let _ = self.conn.send_stream(id).reset(error_code);
                    let before = self.pending.len();
                    self.pending.retain(|p| p.id != id);
                    if self.pending.len() == before {
                        // A stream finished before it was stopped: no Finished comes for it.
                        self.unacknowledged = self.unacknowledged.saturating_sub(1);
                    }
                }
                _ => {}
            }
        }
        self.close_if_done(now);
    }

    /// The group commit returned: the answers that waited for it are written (`durable`), or a 503 each.
    pub fn release(&mut self, now: Instant, durable: bool, exchange: &mut impl Exchange) {
        for (id, frames) in std::mem::take(&mut self.waiting) {
            if durable {
                self.write(id, frames);
            } else {
                let mut refusal = Vec::new();
                exchange.refusal(false, &mut refusal);
                self.write(id, refusal);
            }
        }
        self.close_if_done(now);
    }

    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Request streams opened longer than the header timeout ago and not whole: answered 408, their reading
    /// stopped.
    pub fn time_out(&mut self, now: Instant, exchange: &mut impl Exchange, limits: &Limits) {
        let expired: Vec<StreamId> = self
            .requests
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.opened) >= limits.header_timeout)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.requests.remove(&id);
            let _ = self.conn.recv_stream(id).stop(code(frame::H3_REQUEST_INCOMPLETE));
            let mut refusal = Vec::new();
            exchange.refusal(true, &mut refusal);
            self.write(id, refusal);
        }
        self.close_if_done(now);
    }

    /// The drain: GOAWAY naming the first request stream not taken, no new streams, and the connection closed
    /// once the ones taken are answered.
    pub fn go_away(&mut self, now: Instant) {
        if self.going_away.is_some() {
            return;
        }
        self.going_away = Some(now);
        self.conn.set_max_concurrent_streams(Dir::Bi, VarInt::from_u32(0));
        if let Some(control) = self.control {
            let mut goaway = Vec::new();
            frame::goaway(self.next_request, &mut goaway);
            let _ = self.conn.send_stream(control).write(&goaway);
        }
        self.close_if_done(now);
    }

    pub fn is_going_away(&self) -> bool {
        self.going_away.is_some()
    }

    /// Closes the connection with an HTTP/3 error.
    pub fn fail(&mut self, now: Instant, error: u64, reason: &'static str) {
        self.conn.close(now, code(error), Bytes::from_static(reason.as_bytes()));
    }

    /// Closes the connection (`H3_NO_ERROR`) once it is going away, every request it took is answered and
    /// acknowledged, and the GOAWAY left and had a round trip to arrive.
    pub fn close_if_done(&mut self, now: Instant) {
        let goaway_arrived = self.going_away.is_some_and(|at| self.goaway_sent && now >= at + self.conn.rtt());
        if goaway_arrived
            && self.requests.is_empty()
            && self.waiting.is_empty()
            && self.pending.is_empty()
            && self.unacknowledged == 0
            && !self.conn.is_closed()
        {
            self.conn.close(now, code(H3_NO_ERROR), Bytes::from_static(b"shutting down"));
        }
    }

    /// plutos's control stream, with its SETTINGS.
    fn open_control(&mut self, limits: &Limits) {
        let Some(id) = self.conn.streams().open(Dir::Uni) else {
            return;
        };
        self.control = Some(id);
        let mut start = Vec::new();
        frame::control_stream_start(limits.max_field_section, &mut start);
        self.write_unfinished(id, start);
    }

    fn opened(&mut self, id: StreamId, dir: Dir, now: Instant) {
        match dir {
            Dir::Bi if self.going_away.is_some() => {
                let _ = self.conn.recv_stream(id).stop(code(frame::H3_REQUEST_REJECTED));
                let _ = self.conn.send_stream(id).reset(code(frame::H3_REQUEST_REJECTED));
            }
            Dir::Bi => {
                self.next_request = self.next_request.max(u64::from(id) + 4);
                self.requests.insert(id, Request { bytes: Vec::new(), opened: now });
            }
            Dir::Uni => {
                self.uni.insert(id, Uni::Unknown(Vec::new()));
            }
        }
    }

    /// Reads what stream `id` has.
    fn read(&mut self, id: StreamId, now: Instant, exchange: &mut impl Exchange, limits: &Limits) {
        match id.dir() {
            Dir::Bi => self.read_request(id, now, exchange, limits),
            Dir::Uni => self.read_uni(id, now),
        }
    }

    fn read_request(&mut self, id: StreamId, now: Instant, exchange: &mut impl Exchange, limits: &Limits) {
        let Some(request) = self.requests.get_mut(&id) else {
            return;
        };
        let mut oversized = false;
        let read = read_stream(&mut self.conn, id, |bytes| {
            request.bytes.extend_from_slice(bytes);
            oversized = request.bytes.len() > limits.max_request;
            if oversized {
                request.bytes.truncate(limits.max_request);
            }
            !oversized
        });
        match read {
            // The client gave the request up (or it is gone): nothing is answered.
            Read::Reset => {
                self.requests.remove(&id);
                return;
            }
            Read::More if !oversized => return,
            Read::More | Read::Ended => {}
        }
        let Some(request) = self.requests.remove(&id) else {
            return;
        };
        if oversized {
            // Answered before the client finished sending; the rest is not wanted (RFC 9114 §4.1).
            let _ = self.conn.recv_stream(id).stop(code(H3_NO_ERROR));
        }
        let mut frames = Vec::new();
        match exchange.answer(&self.peer, &request.bytes, oversized, &mut frames) {
            Ok(true) => self.waiting.push((id, frames)),
            Ok(false) => self.write(id, frames),
            Err(error) => {
                self.fail(now, error, "malformed request stream");
                return;
            }
        }
        self.answered += 1;
    }

    fn read_uni(&mut self, id: StreamId, now: Instant) {
        let Some(mut state) = self.uni.remove(&id) else {
            return;
        };
        let mut error = None;
        let read = read_stream(&mut self.conn, id, |bytes| {
            error = state.take(bytes).err();
            error.is_none()
        });
        let ended = matches!(read, Read::Ended | Read::Reset);
        if let Uni::Control { .. } = state
            && ended
        {
            error = Some((frame::H3_CLOSED_CRITICAL_STREAM, "the control stream ended"));
        }
        if let Some((error, reason)) = error {
            self.fail(now, error, reason);
            return;
        }
        if matches!(state, Uni::Ignored) {
            let _ = self.conn.recv_stream(id).stop(code(frame::H3_STREAM_CREATION_ERROR));
        } else if matches!(state, Uni::Control { .. }) && self.uni.values().any(|s| matches!(s, Uni::Control { .. })) {
            self.fail(now, frame::H3_STREAM_CREATION_ERROR, "a second control stream");
            return;
        }
        if !ended {
            self.uni.insert(id, state);
        }
    }

    /// Writes an answer's frames to its stream and finishes it (what the stream cannot take yet waits).
    fn write(&mut self, id: StreamId, bytes: Vec<u8>) {
        let mut stream = self.conn.send_stream(id);
        let written = match stream.write(&bytes) {
            Ok(n) => n,
            Err(WriteError::Blocked) => 0,
            Err(_) => return,
        };
        if written == bytes.len() {
            if stream.finish().is_ok() {
                self.unacknowledged += 1;
            }
        } else {
            self.pending.push(Pending { id, bytes, written });
        }
    }

    /// Writes to a stream that stays open (the control stream).
    fn write_unfinished(&mut self, id: StreamId, bytes: Vec<u8>) {
        let _ = self.conn.send_stream(id).write(&bytes);
    }

    fn write_pending(&mut self, id: StreamId) {
        let Some(at) = self.pending.iter().position(|p| p.id == id) else {
            return;
        };
        let pending = &mut self.pending[at];
        let mut stream = self.conn.send_stream(id);
        match stream.write(&pending.bytes[pending.written..]) {
            Ok(n) => pending.written += n,
            Err(WriteError::Blocked) => return,
            Err(_) => {
                self.pending.swap_remove(at);
                return;
            }
        }
        if pending.written == pending.bytes.len() {
            if stream.finish().is_ok() {
                self.unacknowledged += 1;
            }
            self.pending.swap_remove(at);
        }
    }
}

/// Where reading a stream stopped.
enum Read {
    /// Nothing more for now (or `take` wanted no more).
    More,
    /// The stream ended.
    Ended,
    /// The client reset it, or it is gone.
    Reset,
}

/// Reads what stream `id` has into `take`, until it has no more, ends, or `take` returns false.
fn read_stream(conn: &mut Connection, id: StreamId, mut take: impl FnMut(&[u8]) -> bool) -> Read {
    let mut stream = conn.recv_stream(id);
    let Ok(mut chunks) = stream.read(true) else {
        return Read::Reset;
    };
    let read = loop {
        match chunks.next(usize::MAX) {
            Ok(Some(chunk)) if take(&chunk.bytes) => {}
            Ok(Some(_)) | Err(ReadError::Blocked) => break Read::More,
            Ok(None) => break Read::Ended,
            Err(ReadError::Reset(_)) => break Read::Reset,
        }
    };
    let _ = chunks.finalize();
    read
}

/// An HTTP/3 error code as quinn-proto takes it.
fn code(error: u64) -> VarInt {
    VarInt::from_u64(error).unwrap_or(VarInt::from_u32(0x102))
}
