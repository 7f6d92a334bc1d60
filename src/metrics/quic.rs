//! QUIC's and HTTP/3's lines in `/metrics` (with `QUIC_PORT`): connections open, handshakes, request streams
//! answered, datagrams received, sent and dropped (by plutos, and by the kernel when a socket's receive queue was
//! full), Retries sent, connections refused at the limit, and 0-RTT packets dropped (0-RTT is not accepted).

use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_utils::CachePadded;

use super::WorkerMetrics;

/// A worker's QUIC counters (`WorkerMetrics::quic`), in the order of `LINES`.
#[derive(Debug, Default)]
pub struct QuicMetrics {
    pub connections: AtomicU64,
    pub handshakes: AtomicU64,
    pub streams: AtomicU64,
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
    pub refused: AtomicU64,
    pub zero_rtt_dropped: AtomicU64,
    pub forwarded: AtomicU64,
    /// The kernel's drop count of the worker's socket (SO_RXQ_OVFL), as the last datagram read carried it.
    pub kernel_drops: AtomicU64,
}

/// Name, type and help of each line.
const LINES: [(&str, &str, &str); 11] = [
    ("plutos_quic_connections", "gauge", "QUIC connections open"),
    ("plutos_quic_handshakes_total", "counter", "QUIC connections accepted (handshakes begun)"),
    ("plutos_http3_streams_total", "counter", "HTTP/3 request streams answered"),
    ("plutos_quic_packets_received_total", "counter", "UDP datagrams received on QUIC_PORT"),
    ("plutos_quic_packets_sent_total", "counter", "UDP datagrams sent from QUIC_PORT"),
    (
        "plutos_quic_packets_dropped_total",
        "counter",
        "datagrams not sent (the socket's buffer was full) or received truncated; QUIC resends what was lost",
    ),
    ("plutos_quic_retries_total", "counter", "Retry packets sent (address validation of new clients)"),
    ("plutos_quic_connections_refused_total", "counter", "new QUIC connections refused at MAX_CONNECTIONS"),
    (
        "plutos_quic_zero_rtt_dropped_total",
        "counter",
        "datagrams with 0-RTT packets, dropped unread (0-RTT is refused)",
    ),
    (
        "plutos_quic_packets_forwarded_total",
        "counter",
        "datagrams handed to the worker that holds their connection (the client's address changed)",
    ),
    (
        "plutos_quic_kernel_drops_total",
        "counter",
        "datagrams the kernel dropped because a QUIC socket's receive queue was full (raise QUIC_RCVBUF)",
    ),
];

impl QuicMetrics {
    fn values(&self) -> [&AtomicU64; 11] {
        [
            &self.connections,
            &self.handshakes,
            &self.streams,
            &self.received,
            &self.sent,
            &self.dropped,
            &self.retries,
            &self.refused,
            &self.zero_rtt_dropped,
            &self.forwarded,
            &self.kernel_drops,
        ]
    }
}

pub fn render_quic(out: &mut String, workers: &[CachePadded<WorkerMetrics>]) {
    for (row, (name, kind, help)) in LINES.iter().enumerate() {
        let total: u64 = workers.iter().map(|w| w.quic.values()[row].load(Relaxed)).sum();
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {total}");
    }
}
