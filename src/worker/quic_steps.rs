//! The QUIC steps of a worker's iteration, on either event loop: what `core.rs` calls on its QUIC endpoint
//! (`quic.rs`) — datagrams received, hand-offs taken, timers fired, after the group commit, housekeeping —, each
//! with the worker's request handling as the exchange, and the counts it publishes to `/metrics`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::core::Worker;
use super::request::Http3;

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
