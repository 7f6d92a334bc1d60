//! One HTTP/2 connection's session (h2c on `PORT`, `h2` by ALPN on `TLS_PORT`), driven inside the worker's loop:
//! the `h2` crate's server state machine runs over a `Pipe` — an in-memory socket whose input is what the
//! connection read (its plaintext, for TLS) and whose output the worker moves into the connection's `Output`
//! — and is polled with a waker that only raises a flag. No runtime, no thread: the worker feeds it, polls it
//! until it has nothing more to do, and takes what it wrote.
//!
//! A stream's request is gathered here (head, then its body as DATA arrives, its flow-control window given
//! back as it is buffered) and handed to the front end (`request/http2.rs`) once it ended; an answer that
//! acknowledges events is kept here (`waiting`) until the worker's group commit, and only then handed to h2 —
//! so no frame of it can be written before its events are durable, while the connection's other streams go on.
//!
//! What the crate bounds, and what is set here: concurrent streams, the header list and HPACK table, the
//! windows (per stream and per connection), streams reset before they were taken (rapid reset) and the
//! CONTINUATION frames of one header block; one pending SETTINGS ack and PING ack at a time (a flood of either
//! waits behind the socket). What the session adds: the body bytes it buffers across its streams are bounded
//! (`BODY_BUDGET`: a stream whose data would pass it gets no more window until others end), streams are timed
//! (`expired`), and streams the client resets after they were taken are counted (`resets`) so a client that
//! opens and cancels streams without end is sent GOAWAY(ENHANCE_YOUR_CALM).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::{Builder, Connection as H2Connection, Handshake, SendResponse};
use h2::{Reason, RecvStream};
use http::{HeaderMap, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The connection preface a prior-knowledge (h2c) client opens with (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A stream's initial window: how much of a body a client may send before the session gives window back.
const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's window across its streams.
const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// The largest header list (decoded names and values, RFC 9113 §6.5.2), like HTTP/1.1's head limit.
const MAX_HEADER_LIST: u32 = crate::http::MAX_HEAD_BYTES as u32;
/// The HPACK dynamic table the client's encoder may use.
const HEADER_TABLE: u32 = 4096;
/// Streams the client reset before the session took them (h2's rapid-reset guard), and streams the session
/// reset for the client's errors, before GOAWAY.
const PENDING_RESETS: usize = 20;
const LOCAL_ERROR_RESETS: usize = 256;
/// Streams a client may reset after they were taken, before GOAWAY(ENHANCE_YOUR_CALM): a real client resets a
/// few (a page closed mid-upload); an attacker resets every one.
const MAX_CLIENT_RESETS: u32 = 1000;
/// How many frames' worth of output the session writes before it waits for the socket (the pipe takes no
/// more once this much is unsent).
const OUTPUT_ROOM: usize = 1024 * 1024;

/// The limits a worker's sessions run with (`HTTP2_MAX_STREAMS`, and the body limit a stream's data is
/// bounded by).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_streams: u32,
    pub max_body: usize,
}

impl Limits {
    /// The h2 server settings every session of a worker starts with.
    pub fn builder(&self) -> Builder {
        let mut builder = Builder::new();
        builder
            .max_concurrent_streams(self.max_streams)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_header_list_size(MAX_HEADER_LIST)
            .header_table_size(HEADER_TABLE)
            .max_pending_accept_reset_streams(PENDING_RESETS)
            .max_local_error_reset_streams(Some(LOCAL_ERROR_RESETS))
            .max_send_buffer_size(OUTPUT_ROOM);
        builder
    }

    /// The body bytes a session buffers across its streams: two whole bodies at the limit, or the connection's
    /// window, whichever is more.
    fn body_budget(&self) -> usize {
        (2 * self.max_body).max(CONNECTION_WINDOW as usize)
    }
}

/// The in-memory socket the session runs over.
#[derive(Default)]
struct PipeState {
    /// Read from the connection, not yet taken by h2.
    input: Vec<u8>,
    taken: usize,
    /// The client closed its side.
    eof: bool,
    /// Written by h2, not yet moved into the connection's output.
    output: Vec<u8>,
    /// Output of the connection not yet written to the socket (set before each poll).
    unsent: usize,
    /// h2 wanted to write and the pipe had no room: poll again once the output drained.
    write_blocked: bool,
}

#[derive(Clone, Default)]
struct Pipe(Rc<RefCell<PipeState>>);

impl AsyncRead for Pipe {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut state = self.0.borrow_mut();
        let available = state.input.len() - state.taken;
        if available == 0 {
            state.input.clear();
            state.taken = 0;
            return if state.eof { Poll::Ready(Ok(())) } else { Poll::Pending };
        }
        let n = available.min(buf.remaining());
        let from = state.taken;
        buf.put_slice(&state.input[from..from + n]);
        state.taken += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.0.borrow_mut();
        let queued = state.output.len() + state.unsent;
        if queued >= OUTPUT_ROOM {
            state.write_blocked = true;
            return Poll::Pending;
        }
        let n = data.len().min(OUTPUT_ROOM - queued);
        state.output.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The waker h2 is polled with: it only notes that the session wants another poll.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

enum State {
    /// The client's preface and first SETTINGS are awaited (ours are sent at once).
    Handshaking(Handshake<Pipe, Bytes>),
    Open(H2Connection<Pipe, Bytes>),
    /// GOAWAY was exchanged and every stream ended, or the connection failed: nothing more is read.
    Done,
}

/// A request whose body is still arriving.
struct Incoming {
    head: http::request::Parts,
    recv: RecvStream,
    respond: SendResponse<Bytes>,
    body: Vec<u8>,
    /// The body passed the limit: the first bytes are kept, the rest dropped (and the stream reset after the
    /// answer).
    oversized: bool,
    started: Instant,
    /// Window taken by buffered data and not yet given back (the session's budget was spent).
    unreleased: usize,
}

/// A request that ended, for the front end to answer.
pub struct Complete {
    pub head: http::request::Parts,
    pub body: Vec<u8>,
    pub oversized: bool,
    pub respond: SendResponse<Bytes>,
    /// When its first frame arrived (a gRPC call's deadline counts from it).
    pub started: Instant,
    pub wire: Wire,
}

/// An answer as HTTP/2 sends it: HEADERS, DATA when there is a body, HEADERS again for trailers (gRPC's status).
pub struct Outgoing {
    pub head: Response<()>,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

/// An answer that acknowledges events, held until the group commit.
pub struct Waiting {
    pub respond: SendResponse<Bytes>,
    pub answer: Outgoing,
    /// How its stream answers (should the commit fail, its 503 is written the same way).
    pub wire: Wire,
}

/// How a stream's answers are written: as HTTP, or as a gRPC call's (content type `application/grpc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Http,
    Grpc,
}

impl Wire {
    fn of(head: &http::request::Parts) -> Wire {
        // gRPC-Web is not gRPC's wire: refused as an HTTP request (415).
        let grpc = head.headers.get(http::header::CONTENT_TYPE).is_some_and(|t| crate::grpc::is_call(t.as_bytes()));
        if grpc { Wire::Grpc } else { Wire::Http }
    }
}

/// What a poll of the session found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// Waits for input or for room to write.
    Pending,
    /// The session ended (GOAWAY after the last stream, the client's close, or an error): the connection closes
    /// once its output went.
    Ended,
}

pub struct Session {
    pipe: Pipe,
    state: State,
    flag: Arc<Flag>,
    waker: Waker,
    limits: Limits,
    incoming: Vec<Incoming>,
    /// Body bytes buffered across `incoming`.
    buffered: usize,
    pub waiting: Vec<Waiting>,
    /// Streams the client reset after they were taken.
    resets: u32,
    /// `resets` when the worker last counted them.
    resets_counted: u32,
    /// A GOAWAY was started (the drain, or a misbehaving client).
    going_away: bool,
    /// Why the session failed, once (for the worker's counters).
    pub failure: Option<Reason>,
}

impl Session {
    pub fn new(builder: &Builder, limits: Limits) -> Session {
        let pipe = Pipe::default();
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(flag.clone());
        Session {
            state: State::Handshaking(builder.handshake(pipe.clone())),
            pipe,
            flag,
            waker,
            limits,
            incoming: Vec::new(),
            buffered: 0,
            waiting: Vec::new(),
            resets: 0,
            resets_counted: 0,
            going_away: false,
            failure: None,
        }
    }

    /// Input the connection read (decrypted, for TLS).
    pub fn feed(&mut self, data: &[u8]) {
        self.pipe.0.borrow_mut().input.extend_from_slice(data);
    }

    /// The client closed its side.
    pub fn feed_eof(&mut self) {
        self.pipe.0.borrow_mut().eof = true;
    }

    /// Moves what h2 wrote into `out` (the connection's output).
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        let mut state = self.pipe.0.borrow_mut();
        if out.is_empty() {
            std::mem::swap(out, &mut state.output);
        } else {
            out.append(&mut state.output);
        }
    }

    /// How much of the connection's output waits to be written: the pipe takes no more past `OUTPUT_ROOM`.
    pub fn set_unsent(&mut self, unsent: usize) {
        self.pipe.0.borrow_mut().unsent = unsent;
    }

    /// The output drained to `unsent` bytes: if h2 waited for room, it gets a poll.
    pub fn output_drained(&mut self, unsent: usize) -> bool {
        let mut state = self.pipe.0.borrow_mut();
        state.unsent = unsent;
        std::mem::take(&mut state.write_blocked)
    }

    /// Whether input the session has not read yet is buffered (it waited for room to write).
    pub fn has_unread_input(&self) -> bool {
        let state = self.pipe.0.borrow();
        state.input.len() > state.taken
    }

    /// Streams the client reset since the last call.
    pub fn take_resets(&mut self) -> u64 {
        let new = self.resets - self.resets_counted;
        self.resets_counted = self.resets;
        new as u64
    }

    /// Streams received and not answered (with the answers waiting for the group commit).
    pub fn streams_in_flight(&self) -> usize {
        self.incoming.len() + self.waiting.len()
    }

    /// Polls the session until it has nothing more to do: new streams are taken, their bodies gathered, and
    /// every request that ended is appended to `complete`. `accept`: take new streams (false while the worker
    /// releases answers after its group commit: a request taken then would be answered in the next one).
    pub fn poll(&mut self, complete: &mut Vec<Complete>, accept: bool, now: Instant) -> Polled {
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        loop {
            self.flag.0.store(false, Ordering::Relaxed);
            let polled = self.poll_once(&mut cx, complete, accept, now);
            if polled == Polled::Ended || !self.flag.0.load(Ordering::Relaxed) {
                return polled;
            }
        }
    }

    fn poll_once(&mut self, cx: &mut Context<'_>, complete: &mut Vec<Complete>, accept: bool, now: Instant) -> Polled {
        if let State::Handshaking(handshake) = &mut self.state {
            match Pin::new(handshake).poll(cx) {
                Poll::Pending => return Polled::Pending,
                Poll::Ready(Ok(conn)) => self.state = State::Open(conn),
                Poll::Ready(Err(e)) => return self.fail(&e),
            }
        }
        let State::Open(conn) = &mut self.state else {
            return Polled::Ended;
        };
        let polled = if accept {
            loop {
                match conn.poll_accept(cx) {
                    Poll::Pending => break Polled::Pending,
                    Poll::Ready(None) => break Polled::Ended,
                    Poll::Ready(Some(Err(e))) => return self.fail(&e),
                    Poll::Ready(Some(Ok((request, respond)))) => {
                        let (head, recv) = request.into_parts();
                        self.incoming.push(Incoming {
                            head,
                            recv,
                            respond,
                            body: Vec::new(),
                            oversized: false,
                            started: now,
                            unreleased: 0,
                        });
                    }
                }
            }
        } else {
            match conn.poll_closed(cx) {
                Poll::Pending => Polled::Pending,
                Poll::Ready(Ok(())) => Polled::Ended,
                Poll::Ready(Err(e)) => return self.fail(&e),
            }
        };
        if accept {
            self.gather(cx, complete);
        }
        if self.resets > MAX_CLIENT_RESETS && !self.going_away {
            self.going_away = true;
            self.failure = Some(Reason::ENHANCE_YOUR_CALM);
            if let State::Open(conn) = &mut self.state {
                conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
            }
            self.flag.0.store(true, Ordering::Relaxed);
        }
        if polled == Polled::Ended {
            self.state = State::Done;
        }
        polled
    }

    /// Reads what arrived of each stream's body; a stream whose body ended goes to `complete`.
    fn gather(&mut self, cx: &mut Context<'_>, complete: &mut Vec<Complete>) {
        let budget = self.limits.body_budget();
        let max_body = self.limits.max_body;
        let mut k = 0;
        while k < self.incoming.len() {
            let stream = &mut self.incoming[k];
            let mut ended = stream.recv.is_end_stream();
            let mut reset = false;
            while !ended {
                match stream.recv.poll_data(cx) {
                    Poll::Pending => break,
                    Poll::Ready(None) => ended = true,
                    Poll::Ready(Some(Err(_))) => {
                        // The client reset the stream (or the connection failed): no answer is owed.
                        reset = true;
                        break;
                    }
                    Poll::Ready(Some(Ok(data))) => {
                        let kept = if stream.oversized { 0 } else { data.len().min(max_body - stream.body.len()) };
                        stream.body.extend_from_slice(&data[..kept]);
                        self.buffered += kept;
                        if kept < data.len() {
                            stream.oversized = true;
                        }
                        // The window is given back at once unless the session's buffered bodies would pass the
                        // budget; dropped bytes (past the limit) cost nothing.
                        let mut release = data.len() - kept;
                        if self.buffered <= budget {
                            release += kept + std::mem::take(&mut stream.unreleased);
                        } else {
                            stream.unreleased += kept;
                        }
                        if release > 0 {
                            let _ = stream.recv.flow_control().release_capacity(release);
                        }
                        // An oversized body is answered now: the rest of it is not waited for.
                        ended = stream.oversized;
                    }
                }
            }
            if reset {
                let stream = self.incoming.swap_remove(k);
                self.buffered -= stream.body.len();
                self.resets += 1;
                continue;
            }
            if !ended {
                k += 1;
                continue;
            }
            let stream = self.incoming.swap_remove(k);
            self.buffered -= stream.body.len();
            complete.push(Complete {
                wire: Wire::of(&stream.head),
                head: stream.head,
                body: stream.body,
                oversized: stream.oversized,
                respond: stream.respond,
                started: stream.started,
            });
        }
        // Budget freed: streams whose window was held get it back.
        if self.buffered <= budget {
            for stream in &mut self.incoming {
                let held = std::mem::take(&mut stream.unreleased);
                if held > 0 {
                    let _ = stream.recv.flow_control().release_capacity(held);
                }
            }
        }
    }

    /// Streams whose request has taken longer than `timeout` since its first frame: taken out, to be answered
    /// 408 by the front end (in their wire's way).
    pub fn expired(&mut self, now: Instant, timeout: Duration) -> Vec<(SendResponse<Bytes>, Wire)> {
        let mut late = Vec::new();
        let mut k = 0;
        while k < self.incoming.len() {
            if now.duration_since(self.incoming[k].started) >= timeout {
                let stream = self.incoming.swap_remove(k);
                self.buffered -= stream.body.len();
                late.push((stream.respond, Wire::of(&stream.head)));
            } else {
                k += 1;
            }
        }
        late
    }

    /// Sends an answer on its stream (h2 writes it when the session is polled next).
    pub fn send(mut respond: SendResponse<Bytes>, answer: Outgoing) {
        let Outgoing { head, body, trailers } = answer;
        let headers_only = body.is_empty() && trailers.is_none();
        // A stream the client already reset takes no answer: nothing is lost, its events are stored.
        let Ok(mut stream) = respond.send_response(head, headers_only) else {
            return;
        };
        if !body.is_empty() {
            let _ = stream.send_data(body, trailers.is_none());
        }
        if let Some(trailers) = trailers {
            let _ = stream.send_trailers(trailers);
        }
    }

    /// The drain: GOAWAY with the last stream taken, then the session ends once its streams did.
    pub fn go_away(&mut self) {
        if self.going_away {
            return;
        }
        self.going_away = true;
        match &mut self.state {
            State::Open(conn) => conn.graceful_shutdown(),
            State::Handshaking(_) => self.state = State::Done,
            State::Done => {}
        }
    }

    fn fail(&mut self, e: &h2::Error) -> Polled {
        self.state = State::Done;
        // The session's own verdict on the client is counted; a client that left (EOF, its own GOAWAY) is not.
        if self.failure.is_none() && !e.is_io() && !e.is_remote() {
            self.failure = Some(e.reason().unwrap_or(Reason::PROTOCOL_ERROR));
        }
        // Frames h2 wrote before it failed (GOAWAY with the reason) are in the pipe, sent before the close.
        Polled::Ended
    }
}

#[cfg(test)]
mod tests;
