//! The worker's connections: accepting them, reading them (their requests handled as the bytes arrive), timing
//! out the idle and the slow, and closing them — at the end of the drain, the idle ones at once.

use std::io;
use std::time::{Duration, Instant};

use mio::{Interest, Token};
use rustls::ServerConnection;

use super::connection::Connection;
use super::{HOUSEKEEPING, Worker};
use crate::event::record::Transport;
use crate::http::HttpError;
use crate::metrics::add;

/// Connections a worker takes over its share of MAX_CONNECTIONS to answer them 503.
fn overflow(max_connections: usize) -> usize {
    (max_connections / 64).clamp(16, 1024)
}

impl Worker {
    /// Accepts what the HTTP listener, or with `https` the HTTPS one, has waiting.
    pub(super) fn accept(&mut self, now: Instant, https: bool) {
        let listener = match https {
            false => self.listener.as_ref(),
            true => self.tls_listener.as_ref(),
        };
        let Some(listener) = listener else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    // Over MAX_CONNECTIONS a few more are taken, only to answer 503 (a load balancer retries
                    // elsewhere); past those, closing is all that is left.
                    let over_limit = self.conns.len() >= self.settings.max_connections;
                    if self.conns.len() >= self.settings.max_connections + overflow(self.settings.max_connections) {
                        add(&self.metrics().connections_refused, 1);
                        continue; // dropping the stream closes it
                    }
                    let _ = stream.set_nodelay(true);
                    let entry = self.conns.vacant_entry();
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = self.poll.registry().register(&mut stream, Token(entry.key()), interest) {
                        tracing::warn!(error = %e, "cannot register connection");
                        continue;
                    }
                    let tls = match (&self.tls, https) {
                        (Some((_, served)), true) => match ServerConnection::new(served.value.config.clone()) {
                            Ok(tls) => Some(Box::new(tls)),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot start a TLS session");
                                continue;
                            }
                        },
                        _ => None,
                    };
                    let transport = if https { Transport::Https } else { Transport::Http };
                    let peer = self.requests.peer(peer.ip(), transport);
                    entry.insert(Connection::new(stream, peer, over_limit, now, tls));
                    add(&self.metrics().connections_accepted, 1);
                    add(&self.metrics().connections_open, 1);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: the connection waits in the backlog; housekeeping retries.
                    tracing::warn!(worker = self.index, error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    /// Reads what the connection has and handles every complete request in it.
    pub(super) fn read(&mut self, i: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        let (requests, batch) = (&mut self.requests, &mut self.batch);
        let received = conn
            .receive(&mut self.read_buf, &mut self.plain_buf, now, |conn, data| requests.process(conn, data, batch));
        match received {
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData {
                    add(&self.shared.workers[self.index].tls_failures, 1); // the peer's TLS records
                }
                self.close(i);
                return;
            }
            Ok(true) => add(&self.shared.workers[self.index].read_pauses, 1),
            Ok(false) => {}
        }
        if let Some(resumed) = conn.take_handshake() {
            let metrics = &self.shared.workers[self.index];
            add(if resumed { &metrics.tls_resumed } else { &metrics.tls_full }, 1);
        }
        if conn.unsent() > 0 || conn.life.must_flush() || conn.tls_wants_write() {
            self.queue_flush(i);
        }
    }

    pub(super) fn queue_flush(&mut self, i: usize) {
        if let Some(conn) = self.conns.get_mut(i) {
            if conn.life.queue_flush() {
                self.flush_list.push(i);
            }
        }
    }

    pub(super) fn close(&mut self, i: usize) {
        if self.conns.try_remove(i).is_some() {
            self.shared.workers[self.index].connections_open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub(super) fn housekeeping(&mut self, now: Instant) {
        self.next_housekeeping = now + HOUSEKEEPING;
        let pending = std::mem::take(&mut self.unsent_jobs);
        for job in pending {
            self.send_job(job);
        }
        self.accept(now, false);
        self.accept(now, true);
        let (header_timeout, idle_timeout) = (self.settings.header_timeout, self.settings.idle_timeout);
        let mut expired = Vec::new();
        let mut timed_out = Vec::new();
        for (i, conn) in self.conns.iter() {
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
            self.close(i);
        }
        for i in timed_out {
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            if conn.handshaking() {
                // A TLS handshake that did not end in time (a slowloris on the handshake): no HTTP answer
                // can reach it.
                add(&self.shared.workers[self.index].tls_failures, 1);
                self.close(i);
                continue;
            }
            conn.drop_input();
            conn.request_started = None;
            self.requests.refuse(conn, None, HttpError::RequestTimeout);
            self.queue_flush(i);
        }
    }

    /// The drain is over: stop accepting; idle connections close now, the others finish their request.
    pub(super) fn begin_closing(&mut self, now: Instant) {
        for mut listener in [self.listener.take(), self.tls_listener.take()].into_iter().flatten() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        if let Some(mut udp) = self.udp.take() {
            let _ = self.poll.registry().deregister(&mut udp.socket);
            self.udp_pending = false;
        }
        let settings = &self.settings;
        self.closing_deadline =
            Some(now + settings.header_timeout.min(settings.shutdown_timeout.max(Duration::from_secs(1))));
        let idle: Vec<usize> = self
            .conns
            .iter_mut()
            .filter_map(|(i, conn)| {
                let in_flight = conn.has_partial_request();
                conn.life.drain_ended(in_flight, conn.unsent()).then_some(i)
            })
            .collect();
        for i in idle {
            self.close(i);
        }
    }
}
