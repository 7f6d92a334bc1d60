//! A worker's QUIC endpoint (`QUIC_PORT`): its own SO_REUSEPORT UDP socket, read `udp::SLOTS` datagrams per
//! `recvmmsg`, quinn-proto's sans-IO `Endpoint` and the connections it made, each with its HTTP/3 session
//! (`quic/session.rs`), their timers, and the datagrams they send (`quic/send.rs`: `sendmmsg`, GSO). What all
//! workers' endpoints share, and the connection ids, are in `quic/shared.rs`; the 0-RTT check that runs before
//! quinn-proto sees a datagram in `quic/packet.rs`. The loop's calls are in `worker/quic_steps.rs`.
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

mod packet;
mod send;
pub mod session;
mod shared;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use quinn_proto::crypto::rustls::QuicServerConfig;
use quinn_proto::{ConnectionHandle, DatagramEvent, Endpoint, ServerConfig};

use super::udp::{Datagrams, SLOTS};
use crate::config::QuicRetry;
use crossbeam_channel::Receiver;
use packet::is_zero_rtt;
use send::Sends;
use session::{Exchange, Session};
use shared::{CID_LEN, MAX_UDP_PAYLOAD, WorkerIds};
pub use shared::{HANDOFF_QUEUE, Handoff, QuicShared};

/// Handshakes under way on one worker beyond which `QUIC_RETRY=auto` makes new clients prove their address.
const RETRY_AFTER_HANDSHAKES: usize = 64;
/// Datagrams one iteration takes before it turns to the rest of its work.
const DATAGRAMS_PER_ITERATION: usize = 1024;

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
