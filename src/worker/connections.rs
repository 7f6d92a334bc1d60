//! The worker's connections, whichever loop serves them (`epoll.rs` and `ring.rs` accept, read and write):
//! admitting one, what follows its input, timing out the idle and the slow, and closing them — at the end of
//! the drain, the idle ones at once.

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use rustls::ServerConnection;

use super::connection::Connection;
use super::core::{HOUSEKEEPING, Io, Worker};
use crate::event::record::Transport;
use crate::http::HttpError;
use crate::metrics::add;

/// Connections a worker takes over its share of MAX_CONNECTIONS to answer them 503.
fn overflow(max_connections: usize) -> usize {
    (max_connections / 64).clamp(16, 1024)
}

impl Worker {
    /// A new connection from the listener of `transport` becomes the worker's: its slot in the table, or
    /// `None` when it was refused (over MAX_CONNECTIONS and its overflow; closed by the drop).
    pub(super) fn admit(
        &mut self,
        stream: TcpStream,
        peer: IpAddr,
        transport: Transport,
        now: Instant,
    ) -> Option<usize> {
        // Over MAX_CONNECTIONS a few more are taken, only to answer 503 (a load balancer retries elsewhere);
        // past those, closing is all that is left.
        let over_limit = self.conns.len() >= self.settings.max_connections;
        if self.conns.len() >= self.settings.max_connections + overflow(self.settings.max_connections) {
            add(&self.metrics().connections_refused, 1);
            return None;
        }
        let tls = match (&self.tls, transport) {
            (Some((_, served)), Transport::Https) => match ServerConnection::new(served.value.config.clone()) {
                Ok(tls) => Some(Box::new(tls)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a TLS session");
                    return None;
                }
            },
            _ => None,
        };
        let peer = self.requests.peer(peer, transport);
        let i = self.conns.insert(Connection::new(stream, peer, over_limit, now, tls));
        add(&self.metrics().connections_accepted, 1);
        add(&self.metrics().connections_open, 1);
        Some(i)
    }

    /// Takes `data`, input of connection `i` that a receive brought, through its requests; returns how many bytes
    /// were taken (the rest waits, unread, for reading to resume). Its answers and what TLS must send are queued
    /// for the flush. An error means the connection is gone: the caller closes it (`input_failed`).
    pub(super) fn take_input(&mut self, i: usize, data: &[u8], now: Instant) -> io::Result<usize> {
        let Some(conn) = self.conns.get_mut(i) else {
            return Ok(data.len());
        };
        let (requests, batch) = (&mut self.requests, &mut self.batch);
        let taken =
            conn.take_until_paused(data, &mut self.plain_buf, now, &mut |conn, data| requests.take(conn, data, batch))?;
        self.after_input(i, taken.paused_now);
        Ok(taken.bytes)
    }

    /// After a connection's input was taken: a pause counted, the TLS handshake's count, and the flush its
    /// answers, its ending or TLS's records need.
    pub(super) fn after_input(&mut self, i: usize, paused_now: bool) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        let metrics = &self.shared.workers[self.index];
        if paused_now {
            add(&metrics.read_pauses, 1);
        }
        if let Some(resumed) = conn.take_handshake() {
            add(if resumed { &metrics.tls_resumed } else { &metrics.tls_full }, 1);
        }
        if conn.unsent() > 0 || conn.life.must_flush() || conn.tls_wants_write() || conn.h2_waiting() {
            self.queue_flush(i);
        }
    }

    /// A connection's input ended in an error: it closes (a TLS one's alert was sent).
    pub(super) fn input_failed(&mut self, io: &mut impl Io, i: usize, e: &io::Error) {
        if e.kind() == io::ErrorKind::InvalidData {
            add(&self.shared.workers[self.index].tls_failures, 1); // the peer's TLS records
        }
        self.close(io, i);
    }

    pub(super) fn queue_flush(&mut self, i: usize) {
        if let Some(conn) = self.conns.get_mut(i)
            && conn.life.queue_flush()
        {
            self.flush_list.push(i);
        }
    }

    pub(super) fn close(&mut self, io: &mut impl Io, i: usize) {
        let Some(conn) = self.conns.try_remove(i) else {
            return;
        };
        self.shared.workers[self.index].connections_open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        io.close(i, conn);
    }

    pub(super) fn housekeeping(&mut self, io: &mut impl Io, now: Instant) {
        self.next_housekeeping = now + HOUSEKEEPING;
        let pending = std::mem::take(&mut self.unsent_jobs);
        for job in pending {
            self.send_job(job);
        }
        io.accept(self, Transport::Http, now);
        io.accept(self, Transport::Https, now);
        self.time_out_quic(now);
        let (header_timeout, idle_timeout) = (self.settings.header_timeout, self.settings.idle_timeout);
        let mut expired = Vec::new();
        let mut timed_out = Vec::new();
        let mut h2 = Vec::new();
        for (i, conn) in self.conns.iter() {
            if conn.h2.as_ref().is_some_and(|session| session.streams_in_flight() > 0) {
                h2.push(i);
            }
            if let Some(until) = conn.life.lingering_until() {
                if now >= until {
                    expired.push(i);
                }
            } else if conn.request_started.is_some_and(|t| now.duration_since(t) >= header_timeout) {
                timed_out.push(i);
            } else if now.duration_since(conn.last_active) >= idle_timeout {
                // Idle, or a client that has not taken any of its responses for that long.
                expired.push(i);
            }
        }
        for i in expired {
            self.close(io, i);
        }
        for i in timed_out {
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            if conn.handshaking() || conn.h2.is_some() {
                // A TLS handshake that did not end in time (a slowloris on the handshake), or a TLS record of
                // an HTTP/2 connection that never ended: no HTTP/1.1 answer can reach it.
                add(&self.shared.workers[self.index].tls_failures, 1);
                self.close(io, i);
                continue;
            }
            conn.drop_input();
            conn.request_started = None;
            self.requests.refuse(conn, None, HttpError::RequestTimeout);
            self.queue_flush(i);
        }
        // HTTP/2 streams are timed one by one: a request not received in time is answered 408 on its stream.
        for i in h2 {
            if let Some(conn) = self.conns.get_mut(i) {
                self.requests.time_out_h2(conn, &mut self.batch);
                self.after_input(i, false);
            }
        }
    }

    /// The drain is over: stop accepting; idle connections close now, the others finish their request.
    pub(super) fn begin_closing(&mut self, io: &mut impl Io, now: Instant) {
        io.stop_listening(self);
        self.udp = None;
        self.udp_pending = false;
        let settings = &self.settings;
        self.closing_deadline =
            Some(now + settings.header_timeout.min(settings.shutdown_timeout.max(Duration::from_secs(1))));
        if let Some(quic) = self.quic.as_mut() {
            quic.go_away(now);
        }
        let mut h2 = Vec::new();
        let idle: Vec<usize> = self
            .conns
            .iter_mut()
            .filter_map(|(i, conn)| {
                if let Some(session) = conn.h2.as_mut() {
                    // GOAWAY with the last stream taken; the connection ends once its session did.
                    session.go_away();
                    h2.push(i);
                    return None;
                }
                let in_flight = conn.has_partial_request();
                conn.life.drain_ended(in_flight, conn.unsent()).then_some(i)
            })
            .collect();
        for i in idle {
            self.close(io, i);
        }
        for i in h2 {
            if let Some(conn) = self.conns.get_mut(i) {
                self.requests.drive_h2(conn, &mut self.batch, true);
                self.after_input(i, false);
            }
        }
    }
}
