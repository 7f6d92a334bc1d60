//! UDP's lines in `/metrics` (only with `UDP_PORT`): what became of each datagram received, and what the kernel
//! dropped before plutos could read it.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_utils::CachePadded;

use super::{UDP_RESULTS, WorkerMetrics};

pub fn render_udp(out: &mut String, workers: &[CachePadded<WorkerMetrics>]) {
    let _ = writeln!(
        out,
        "# HELP plutos_udp_datagrams_total UDP datagrams received, by result: stored (in the spool), malformed (not \
         JSON, NDJSON or a query string), truncated (over UDP_MAX_DATAGRAM_BYTES), unauthorized (no known \
         WRITE_KEYS line), refused (spool full, or its write failed)\n\
         # TYPE plutos_udp_datagrams_total counter"
    );
    for (i, result) in UDP_RESULTS.iter().enumerate() {
        let n: u64 = workers.iter().map(|w| w.udp_datagrams[i].load(Relaxed)).sum();
        let _ = writeln!(out, "plutos_udp_datagrams_total{{result=\"{result}\"}} {n}");
    }
    let drops: u64 = workers.iter().map(|w| w.udp_kernel_drops.load(Relaxed)).sum();
    let _ = writeln!(
        out,
        "# HELP plutos_udp_kernel_drops_total datagrams the kernel dropped because a UDP socket's receive queue \
         was full (SO_RXQ_OVFL; as of the last datagram read)\n\
         # TYPE plutos_udp_kernel_drops_total counter\n\
         plutos_udp_kernel_drops_total {drops}"
    );
}
