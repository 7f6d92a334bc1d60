//! HTTP/2's lines in `/metrics`: connections that chose it (by transport), streams answered, streams the
//! client reset before their answer, and sessions that ended on an HTTP/2 error (by the GOAWAY's reason).

use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_utils::CachePadded;

use super::WorkerMetrics;

/// The `reason` labels of `plutos_http2_sessions_failed_total`, in the order of `WorkerMetrics::h2_failures`.
pub const H2_FAILURES: [&str; 4] = ["protocol", "flow_control", "enhance_your_calm", "other"];

/// A worker's HTTP/2 counts since it last published them (kept in its request handling, added once an
/// iteration).
#[derive(Debug, Default)]
pub struct H2Counts {
    /// Connections that chose HTTP/2: h2 (ALPN), h2c (prior knowledge).
    pub connections: [u64; 2],
    pub streams: u64,
    pub resets: u64,
    pub failures: [u64; H2_FAILURES.len()],
}

impl H2Counts {
    /// The row of `H2_FAILURES` an HTTP/2 error code falls in.
    pub fn failure_row(reason: h2::Reason) -> usize {
        match reason {
            h2::Reason::PROTOCOL_ERROR | h2::Reason::COMPRESSION_ERROR | h2::Reason::FRAME_SIZE_ERROR => 0,
            h2::Reason::FLOW_CONTROL_ERROR => 1,
            h2::Reason::ENHANCE_YOUR_CALM => 2,
            _ => 3,
        }
    }

    pub fn publish(&mut self, metrics: &WorkerMetrics) {
        let add = |counter: &AtomicU64, n: u64| {
            if n > 0 {
                counter.fetch_add(n, Relaxed);
            }
        };
        for (counter, n) in metrics.h2_connections.iter().zip(self.connections) {
            add(counter, n);
        }
        add(&metrics.h2_streams, self.streams);
        add(&metrics.h2_resets, self.resets);
        for (counter, n) in metrics.h2_failures.iter().zip(self.failures) {
            add(counter, n);
        }
        *self = H2Counts::default();
    }
}

pub fn render_http2(out: &mut String, workers: &[CachePadded<WorkerMetrics>]) {
    let sum = |f: &dyn Fn(&WorkerMetrics) -> &AtomicU64| workers.iter().map(|w| f(w).load(Relaxed)).sum::<u64>();
    let _ = writeln!(
        out,
        "# HELP plutos_http2_connections_total connections that chose HTTP/2, by transport (h2: ALPN on TLS_PORT, \
         h2c: prior knowledge on PORT)\n\
         # TYPE plutos_http2_connections_total counter\n\
         plutos_http2_connections_total{{transport=\"h2\"}} {}\nplutos_http2_connections_total{{transport=\"h2c\"}} {}\n\
         # HELP plutos_http2_streams_total HTTP/2 streams whose request was answered\n\
         # TYPE plutos_http2_streams_total counter\n\
         plutos_http2_streams_total {}\n\
         # HELP plutos_http2_streams_reset_total HTTP/2 streams the client reset before their answer\n\
         # TYPE plutos_http2_streams_reset_total counter\n\
         plutos_http2_streams_reset_total {}",
        sum(&|w| &w.h2_connections[0]),
        sum(&|w| &w.h2_connections[1]),
        sum(&|w| &w.h2_streams),
        sum(&|w| &w.h2_resets),
    );
    let _ = writeln!(
        out,
        "# HELP plutos_http2_sessions_failed_total HTTP/2 connections ended by an error (the GOAWAY's reason: a \
         client's protocol error, a flow-control violation, a flood answered with ENHANCE_YOUR_CALM)\n\
         # TYPE plutos_http2_sessions_failed_total counter"
    );
    for (row, reason) in H2_FAILURES.iter().enumerate() {
        let _ = writeln!(
            out,
            "plutos_http2_sessions_failed_total{{reason=\"{reason}\"}} {}",
            sum(&|w| &w.h2_failures[row])
        );
    }
}
