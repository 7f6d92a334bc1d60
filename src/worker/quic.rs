//! A worker's QUIC endpoint (`QUIC_PORT`): its own SO_REUSEPORT UDP socket, read `udp::SLOTS` datagrams per
//! `recvmmsg`, quinn-proto's sans-IO `Endpoint` and the connections it made, each with its HTTP/3 session
//! (`quic/session.rs`), their timers, and the datagrams they send (`quic/send.rs`: `sendmmsg`, GSO).
//!
//! Within an iteration of the worker's loop: datagrams are read and handled as they come (new connections
//! accepted, or Retried under a flood; packets handed to their connection, whose requests are answered through
//! the exchange — answers that acknowledge events wait); timers that fell due fire before the group commit;
//! after it, the waiting answers are released and every connection touched is polled for what it sends. So no
//! packet carrying a 2xx can leave before the spool write that made its events durable.
//!
//! Connection ids carry their worker: `byte 0 % workers` is the index of the worker that issued them. The
//! kernel's SO_REUSEPORT hash keeps a client on one worker until its address changes (NAT rebinding,
//! migration); then its datagrams reach another worker's socket, which hands each to the worker its connection
//! id names (a bounded channel and that worker's wake), where quinn-proto validates the new path. A connection
//! stays on the worker that accepted it.

mod send;
pub mod session;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quinn_proto::crypto::rustls::QuicServerConfig;
use quinn_proto::{
    ConnectionHandle, ConnectionId, ConnectionIdGenerator, DatagramEvent, Endpoint, EndpointConfig, IdleTimeout,
    ServerConfig, TransportConfig, VarInt,
};

use super::core::Worker;
use super::request::Http3;
use super::udp::{Datagrams, SLOTS};
use super::wake::Wake;
use crate::config::QuicRetry;
use crossbeam_channel::{Receiver, Sender};
use send::Sends;
use session::{Exchange, Limits, Session};

/// Bytes of the connection ids plutos issues: one for the worker, eight random. Not 8, the length most clients
/// pick for their first Initial, so a client's id is not mistaken for one of plutos's.
const CID_LEN: usize = 9;
/// The largest UDP payload plutos takes (and announces as `max_udp_payload_size`).
const MAX_UDP_PAYLOAD: u16 = 1472;
/// Handshakes under way on one worker beyond which `QUIC_RETRY=auto` makes new clients prove their address.
const RETRY_AFTER_HANDSHAKES: usize = 64;
/// Datagrams one iteration takes before it turns to the rest of its work.
const DATAGRAMS_PER_ITERATION: usize = 1024;

/// A datagram one worker received for a connection of another.
pub struct Handoff {
    from: std::net::SocketAddr,
    payload: BytesMut,
}

/// Datagrams one worker may have waiting for another before more are dropped.
pub const HANDOFF_QUEUE: usize = 4096;

/// What every worker's endpoint shares: the keys of stateless resets and of Retry tokens (a token one worker
/// issued validates on another), the transport limits, and where each worker takes datagrams handed to it.
pub struct QuicShared {
    endpoint: Arc<EndpointConfig>,
    transport: Arc<TransportConfig>,
    token_key: Arc<dyn quinn_proto::crypto::HandshakeTokenKey>,
    pub limits: Limits,
    pub retry: QuicRetry,
    pub workers: usize,
    inboxes: Vec<(Sender<Handoff>, Arc<Wake>)>,
}

impl QuicShared {
    /// `inboxes`: each worker's channel of hand-offs and its wake, by index.
    pub fn new(
        max_streams: u32,
        retry: QuicRetry,
        limits: Limits,
        idle: Duration,
        inboxes: Vec<(Sender<Handoff>, Arc<Wake>)>,
    ) -> QuicShared {
        let rng = ring::rand::SystemRandom::new();
        let mut reset = [0u8; 64];
        let mut token = [0u8; 64];
        let _ = ring::rand::SecureRandom::fill(&rng, &mut reset);
        let _ = ring::rand::SecureRandom::fill(&rng, &mut token);
        let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &reset);
        let mut endpoint = EndpointConfig::new(Arc::new(reset_key));
        let _ = endpoint.max_udp_payload_size(MAX_UDP_PAYLOAD);
        let mut transport = TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(max_streams))
            // The client's control stream and QPACK's two, and room for a grease stream.
            .max_concurrent_uni_streams(VarInt::from_u32(4))
            .stream_receive_window(VarInt::from_u32(256 * 1024))
            .receive_window(VarInt::from_u32(1024 * 1024))
            .send_window(1024 * 1024)
            .max_idle_timeout(IdleTimeout::try_from(idle).ok())
            .datagram_receive_buffer_size(None);
        let token_key = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(&token);
        QuicShared {
            endpoint: Arc::new(endpoint),
            transport: Arc::new(transport),
            token_key: Arc::new(token_key),
            limits,
            retry,
            workers: inboxes.len(),
            inboxes,
        }
    }

    fn server_config(&self, crypto: Arc<QuicServerConfig>) -> Arc<ServerConfig> {
        let mut config = ServerConfig::new(crypto, self.token_key.clone());
        config.transport_config(self.transport.clone());
        Arc::new(config)
    }
}

/// Connection ids whose first byte names the worker that issued them.
struct WorkerIds {
    worker: usize,
    workers: usize,
    rng: ring::rand::SystemRandom,
}

impl ConnectionIdGenerator for WorkerIds {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut bytes = [0u8; CID_LEN];
        let _ = ring::rand::SecureRandom::fill(&self.rng, &mut bytes);
        // A random multiple of `workers` plus the index: the byte varies, its remainder does not.
        let span = (256 / self.workers).max(1);
        bytes[0] = ((usize::from(bytes[0]) % span) * self.workers + self.worker) as u8;
        ConnectionId::new(&bytes)
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// Counts since the worker last published them.
#[derive(Debug, Default, Clone, Copy)]
pub struct QuicCounts {
    pub handshakes: u64,
    pub received: u64,
    pub retries: u64,
    pub refused: u64,
    pub zero_rtt_dropped: u64,
    pub answered: u64,
    /// Datagrams handed to the worker their connection id names.
    pub forwarded: u64,
    /// Hand-offs dropped: the other worker's queue was full.
    pub handoffs_dropped: u64,
}

pub struct Quic {
    pub datagrams: Datagrams,
    worker: usize,
    /// Datagrams other workers handed to this one.
    inbox: Receiver<Handoff>,
    /// Workers handed a datagram in this batch, to be woken once.
    to_wake: Vec<bool>,
    endpoint: Endpoint,
    shared: Arc<QuicShared>,
    server: Option<Arc<ServerConfig>>,
    sessions: Vec<Option<Box<Session>>>,
    open: usize,
    handshaking: usize,
    max_connections: usize,
    /// Connection deadlines as quinn-proto asked for them; a stale entry (the deadline moved) is skipped.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Connections with something to send: polled after the group commit.
    touched: Vec<usize>,
    sends: Sends,
    /// Answers for the endpoint itself (version negotiation, Retry, stateless reset, a refusal).
    scratch: Vec<u8>,
    pub counts: QuicCounts,
    /// Datagrams were left waiting (the iteration took its share).
    pub pending: bool,
    /// The drain began: connections close as their requests are answered.
    draining: bool,
}

impl Quic {
    pub fn new(
        socket: mio::net::UdpSocket,
        shared: Arc<QuicShared>,
        worker: usize,
        max_connections: usize,
        crypto: Option<Arc<QuicServerConfig>>,
        inbox: Receiver<Handoff>,
    ) -> Quic {
        let mut endpoint_config = (*shared.endpoint).clone();
        let workers = shared.workers;
        endpoint_config
            .cid_generator(move || Box::new(WorkerIds { worker, workers, rng: ring::rand::SystemRandom::new() }));
        let server = crypto.map(|c| shared.server_config(c));
        Quic {
            datagrams: Datagrams::new(socket, usize::from(MAX_UDP_PAYLOAD) + 1),
            worker,
            inbox,
            to_wake: vec![false; workers],
            endpoint: Endpoint::new(Arc::new(endpoint_config), server.clone(), false, None),
            shared,
            server,
            sessions: Vec::new(),
            open: 0,
            handshaking: 0,
            max_connections,
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            sends: Sends::new(),
            scratch: Vec::new(),
            counts: QuicCounts::default(),
            pending: false,
            draining: false,
        }
    }

    /// A reloaded certificate: new connections get it, those open keep theirs.
    pub fn use_certificate(&mut self, crypto: Option<Arc<QuicServerConfig>>) {
        self.server = crypto.map(|c| self.shared.server_config(c));
        self.endpoint.set_server_config(self.server.clone());
    }

    pub fn open_connections(&self) -> usize {
        self.open
    }

    /// Datagrams sent and dropped since the last call.
    pub fn take_sent(&mut self) -> (u64, u64) {
        (std::mem::take(&mut self.sends.sent), std::mem::take(&mut self.sends.dropped))
    }

    /// Reads waiting datagrams (at most `DATAGRAMS_PER_ITERATION`) and handles each.
    pub fn receive(&mut self, now: Instant, exchange: &mut impl Exchange) {
        self.pending = false;
        let mut taken = 0;
        let mut received = Vec::new();
        loop {
            received.clear();
            let n = self.datagrams.receive(|datagram| {
                if let Some(payload) = datagram.payload {
                    received.push((datagram.from, BytesMut::from(payload)));
                }
            });
            for (from, payload) in received.drain(..) {
                match self.owner(&payload) {
                    Some(owner) if owner != self.worker => self.hand_off(owner, from, payload),
                    _ => self.handle(now, from, payload, exchange),
                }
            }
            match n {
                Ok(n) if n < SLOTS => break,
                Ok(n) => {
                    taken += n;
                    if taken >= DATAGRAMS_PER_ITERATION {
                        self.pending = true;
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "recvmmsg on the QUIC socket failed");
                    break;
                }
            }
        }
        for (worker, wake) in self.to_wake.iter_mut().enumerate() {
            if std::mem::take(wake) {
                self.shared.inboxes[worker].1.wake();
            }
        }
    }

    /// The worker a datagram's connection id names; `None` for an id plutos did not issue (a client's first
    /// Initial), which stays where the kernel put it.
    fn owner(&self, datagram: &[u8]) -> Option<usize> {
        let first = *datagram.first()?;
        let id = match first & 0x80 {
            // A short header: the destination id follows the first byte, in the length plutos issues.
            0 => datagram.get(1..1 + CID_LEN)?,
            _ => match *datagram.get(5)? as usize {
                CID_LEN => datagram.get(6..6 + CID_LEN)?,
                _ => return None,
            },
        };
        Some(usize::from(id[0]) % self.shared.workers)
    }

    fn hand_off(&mut self, owner: usize, from: std::net::SocketAddr, payload: BytesMut) {
        match self.shared.inboxes[owner].0.try_send(Handoff { from, payload }) {
            Ok(()) => {
                self.counts.forwarded += 1;
                self.to_wake[owner] = true;
            }
            Err(_) => self.counts.handoffs_dropped += 1,
        }
    }

    /// Handles the datagrams other workers handed to this one (at most `DATAGRAMS_PER_ITERATION`).
    pub fn take_handoffs(&mut self, now: Instant, exchange: &mut impl Exchange) {
        for _ in 0..DATAGRAMS_PER_ITERATION {
            let Ok(Handoff { from, payload }) = self.inbox.try_recv() else {
                return;
            };
            self.handle(now, from, payload, exchange);
        }
        self.pending = true;
    }

    fn handle(&mut self, now: Instant, from: std::net::SocketAddr, payload: BytesMut, exchange: &mut impl Exchange) {
        self.counts.received += 1;
        if is_zero_rtt(&payload) {
            // 0-RTT is not accepted (a replayed POST would be stored twice): its packets are dropped unread, and
            // the client sends the requests again after the handshake.
            self.counts.zero_rtt_dropped += 1;
        }
        self.scratch.clear();
        match self.endpoint.handle(now, from, None, None, payload, &mut self.scratch) {
            Some(DatagramEvent::NewConnection(incoming)) => {
                if self.open >= self.max_connections {
                    self.counts.refused += 1;
                    let transmit = self.endpoint.refuse(incoming, &mut self.scratch);
                    self.send_scratch(transmit.destination, transmit.size);
                    return;
                }
                let retry = match self.shared.retry {
                    QuicRetry::Always => true,
                    QuicRetry::Auto => self.handshaking >= RETRY_AFTER_HANDSHAKES,
                };
                if retry && !incoming.remote_address_validated() && incoming.may_retry() {
                    if let Ok(transmit) = self.endpoint.retry(incoming, &mut self.scratch) {
                        self.counts.retries += 1;
                        self.send_scratch(transmit.destination, transmit.size);
                    }
                    return;
                }
                match self.endpoint.accept(incoming, now, &mut self.scratch, None) {
                    Ok((handle, conn)) => {
                        let peer = exchange.peer(conn.remote_address().ip());
                        let i = handle.0;
                        if self.sessions.len() <= i {
                            self.sessions.resize_with(i + 1, || None);
                        }
                        self.sessions[i] = Some(Box::new(Session::new(conn, peer)));
                        self.open += 1;
                        self.handshaking += 1;
                        self.counts.handshakes += 1;
                        self.drive(i, now, exchange);
                    }
                    Err(e) => {
                        if let Some(transmit) = e.response {
                            self.send_scratch(transmit.destination, transmit.size);
                        }
                    }
                }
            }
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some(session) = self.sessions.get_mut(handle.0).and_then(Option::as_mut) {
                    session.conn.handle_event(event);
                    self.drive(handle.0, now, exchange);
                }
            }
            Some(DatagramEvent::Response(transmit)) => self.send_scratch(transmit.destination, transmit.size),
            None => {}
        }
    }

    /// What a connection does after input or a timer: endpoint events exchanged, its application events
    /// handled; it is polled for datagrams after the group commit.
    fn drive(&mut self, i: usize, now: Instant, exchange: &mut impl Exchange) {
        let Some(session) = self.sessions.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let was_handshaking = session.handshaking;
        session.process(now, exchange, &self.shared.limits);
        if was_handshaking && !session.handshaking {
            self.handshaking -= 1;
        }
        self.touched.push(i);
    }

    /// Hands connection `i`'s events to the endpoint (new connection ids, retired ones, its end); true once it
    /// drained, and it is dropped.
    fn exchange_endpoint_events(&mut self, i: usize) -> bool {
        let Some(session) = self.sessions.get_mut(i).and_then(Option::as_mut) else {
            return true;
        };
        while let Some(event) = session.conn.poll_endpoint_events() {
            let drained = event.is_drained();
            if let Some(event) = self.endpoint.handle_event(ConnectionHandle(i), event) {
                session.conn.handle_event(event);
            }
            if drained {
                if session.handshaking {
                    self.handshaking -= 1;
                }
                self.sessions[i] = None;
                self.open -= 1;
                return true;
            }
        }
        false
    }

    /// Fires the timers that fell due.
    pub fn fire_timers(&mut self, now: Instant, exchange: &mut impl Exchange) {
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(session) = self.sessions.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if session.timer != Some(at) {
                continue;
            }
            session.timer = None;
            session.conn.handle_timeout(now);
            self.drive(i, now, exchange);
        }
    }

    /// The next deadline of any connection.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// The group commit returned: answers that waited for it are written (or refused), and every connection
    /// touched sends what it has. While draining, every connection is looked at: one whose GOAWAY arrived and
    /// whose answers were taken closes.
    pub fn after_commit(&mut self, now: Instant, durable: bool, exchange: &mut impl Exchange) {
        if self.draining {
            for (i, session) in self.sessions.iter_mut().enumerate() {
                if let Some(session) = session {
                    session.close_if_done(now);
                    self.touched.push(i);
                }
            }
        }
        for i in std::mem::take(&mut self.touched) {
            let Some(session) = self.sessions.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            // Releasing only writes: nothing new is read, so nothing enters the batch after its commit.
            if session.has_waiting() {
                session.release(now, durable, exchange);
            }
            self.counts.answered += std::mem::take(&mut session.answered);
            self.transmit(i, now);
        }
        self.sends.flush(self.datagrams.socket.as_raw_fd());
    }

    /// Polls connection `i` for its datagrams, sets its timer, and drops it once drained.
    fn transmit(&mut self, i: usize, now: Instant) {
        let fd = self.datagrams.socket.as_raw_fd();
        let Some(session) = self.sessions.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        loop {
            let segments = self.sends.segments();
            let Some(transmit) = session.conn.poll_transmit(now, segments, self.sends.next_buffer()) else {
                break;
            };
            self.sends.queue(fd, transmit.destination, transmit.size, transmit.segment_size);
            session.goaway_sent |= session.is_going_away();
        }
        if self.exchange_endpoint_events(i) {
            return;
        }
        let Some(session) = self.sessions.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let timer = session.conn.poll_timeout();
        if timer != session.timer {
            session.timer = timer;
            if let Some(at) = timer {
                self.timers.push(Reverse((at, i)));
            }
        }
    }

    /// Housekeeping: request streams that took longer than the header timeout are answered 408.
    pub fn time_out(&mut self, now: Instant, exchange: &mut impl Exchange) {
        for i in 0..self.sessions.len() {
            if let Some(session) = self.sessions[i].as_mut() {
                session.time_out(now, exchange, &self.shared.limits);
                self.touched.push(i);
            }
        }
    }

    /// The drain: every connection is told GOAWAY and closes once its requests are answered; no new one is
    /// taken.
    pub fn go_away(&mut self, now: Instant) {
        self.draining = true;
        self.endpoint.set_server_config(None);
        for i in 0..self.sessions.len() {
            if let Some(session) = self.sessions[i].as_mut() {
                session.go_away(now);
                self.touched.push(i);
            }
        }
    }

    fn send_scratch(&mut self, to: std::net::SocketAddr, size: usize) {
        let fd = self.datagrams.socket.as_raw_fd();
        let buffer = self.sends.next_buffer();
        buffer.extend_from_slice(&self.scratch[..size]);
        self.sends.queue(fd, to, size, None);
    }
}

/// Whether a datagram holds a 0-RTT packet: its long-header packets are walked (an Initial and a 0-RTT one are
/// usually coalesced).
fn is_zero_rtt(datagram: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&first) = datagram.get(at) {
        // A short header ends the long ones; version 0 is version negotiation.
        if first & 0x80 == 0 || datagram.get(at + 1..at + 5).is_none_or(|v| v == [0, 0, 0, 0]) {
            return false;
        }
        let kind = (first >> 4) & 0x03;
        if kind == 1 {
            return true;
        }
        at += 5;
        for _ in 0..2 {
            // The destination, then the source connection id.
            let Some(&len) = datagram.get(at) else { return false };
            at += 1 + usize::from(len);
        }
        if kind == 0 {
            let Some(token) = varint_at(datagram, &mut at) else { return false };
            at += token;
        }
        let Some(length) = varint_at(datagram, &mut at) else { return false };
        at += length;
    }
    false
}

/// The variable-length integer at `at`, which moves past it.
fn varint_at(datagram: &[u8], at: &mut usize) -> Option<usize> {
    let (value, len) = datagram.get(*at..).and_then(crate::h3::frame::varint)?;
    *at += len;
    usize::try_from(value).ok()
}

impl Worker {
    /// Reads the QUIC socket's datagrams and handles them (requests answered into the batch).
    pub(super) fn receive_quic(&mut self, now: Instant) {
        let Some(quic) = self.quic.as_mut() else {
            return;
        };
        quic.receive(now, &mut Http3 { requests: &mut self.requests, batch: &mut self.batch });
    }

    /// Handles the datagrams other workers handed to this one.
    pub(super) fn take_quic_handoffs(&mut self, now: Instant) {
        let Some(quic) = self.quic.as_mut() else {
            return;
        };
        quic.take_handoffs(now, &mut Http3 { requests: &mut self.requests, batch: &mut self.batch });
    }

    /// Fires the QUIC timers that fell due (before the group commit: a timer may complete nothing, but what it
    /// sends goes out with the rest after the commit).
    pub(super) fn fire_quic_timers(&mut self, now: Instant) {
        let Some(quic) = self.quic.as_mut() else {
            return;
        };
        quic.fire_timers(now, &mut Http3 { requests: &mut self.requests, batch: &mut self.batch });
    }

    /// After the group commit: answers released, datagrams sent, counts published.
    pub(super) fn quic_after_commit(&mut self, now: Instant, durable: bool) {
        let Some(quic) = self.quic.as_mut() else {
            return;
        };
        quic.after_commit(now, durable, &mut Http3 { requests: &mut self.requests, batch: &mut self.batch });
        let metrics = &self.shared.workers[self.index].quic;
        let counts = std::mem::take(&mut quic.counts);
        let (sent, dropped) = quic.take_sent();
        let dropped = dropped + quic.datagrams.take_truncated() + counts.handoffs_dropped;
        for (counter, n) in [
            (&metrics.handshakes, counts.handshakes),
            (&metrics.streams, counts.answered),
            (&metrics.received, counts.received),
            (&metrics.sent, sent),
            (&metrics.dropped, dropped),
            (&metrics.retries, counts.retries),
            (&metrics.refused, counts.refused),
            (&metrics.zero_rtt_dropped, counts.zero_rtt_dropped),
            (&metrics.forwarded, counts.forwarded),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
        metrics.connections.store(quic.open_connections() as u64, Ordering::Relaxed);
        metrics.kernel_drops.store(u64::from(quic.datagrams.kernel_drops), Ordering::Relaxed);
    }

    /// Housekeeping: HTTP/3 requests that took longer than the header timeout.
    pub(super) fn time_out_quic(&mut self, now: Instant) {
        if let Some(quic) = self.quic.as_mut() {
            quic.time_out(now, &mut Http3 { requests: &mut self.requests, batch: &mut self.batch });
        }
    }
}
