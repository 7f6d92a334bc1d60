//! Counters, defined in one place. Each worker owns a cache-padded `WorkerMetrics` and bumps it with
//! `Relaxed` adds (no lock, no shared cache line); `/metrics` sums them only when it is read.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

#[derive(Default)]
pub struct WorkerMetrics {
    pub requests: AtomicU64,
    pub events_accepted: AtomicU64,
    pub requests_rejected: AtomicU64,
    pub requests_unavailable: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_refused: AtomicU64,
    /// Times a connection stopped being read because its client was not taking its answers.
    pub read_pauses: AtomicU64,
    pub spool_writes: AtomicU64,
    pub spool_write_errors: AtomicU64,
    pub chunks_sealed: AtomicU64,
    /// Event-loop iterations: a worker wakes at least once a second, so a stuck counter means a stuck worker.
    pub loop_iterations: AtomicU64,
}

#[derive(Default)]
pub struct UploaderMetrics {
    pub chunks_shipped: AtomicU64,
    pub events_shipped: AtomicU64,
    pub bytes_shipped: AtomicU64,
    pub upload_failures: AtomicU64,
    pub chunks_queued: AtomicU64,
}

/// Selects one counter of a worker's set.
type WorkerCounter = fn(&WorkerMetrics) -> &AtomicU64;

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// Prometheus text exposition of every counter.
pub fn render(workers: &[CachePadded<WorkerMetrics>], uploader: &UploaderMetrics, spool_bytes: u64) -> String {
    let mut out = String::with_capacity(2048);
    let sum = |f: WorkerCounter| workers.iter().map(|w| f(w).load(Relaxed)).sum::<u64>();
    let worker_counters: [(&str, &str, &str, WorkerCounter); 12] = [
        ("plutos_requests_total", "counter", "HTTP requests parsed", |m| &m.requests),
        ("plutos_events_accepted_total", "counter", "events acknowledged (in the spool)", |m| &m.events_accepted),
        ("plutos_requests_rejected_total", "counter", "requests answered 4xx", |m| &m.requests_rejected),
        ("plutos_requests_unavailable_total", "counter", "requests answered 503", |m| &m.requests_unavailable),
        ("plutos_connections_accepted_total", "counter", "connections accepted", |m| &m.connections_accepted),
        ("plutos_connections_open", "gauge", "connections open", |m| &m.connections_open),
        ("plutos_connections_refused_total", "counter", "connections closed at once: MAX_CONNECTIONS reached", |m| {
            &m.connections_refused
        }),
        ("plutos_read_pauses_total", "counter", "connections not read while their client takes no answers", |m| {
            &m.read_pauses
        }),
        ("plutos_spool_writes_total", "counter", "group-commit writes to the spool", |m| &m.spool_writes),
        ("plutos_spool_write_errors_total", "counter", "failed spool writes (their requests got 503)", |m| {
            &m.spool_write_errors
        }),
        ("plutos_chunks_sealed_total", "counter", "chunks sealed", |m| &m.chunks_sealed),
        ("plutos_loop_iterations_total", "counter", "worker event-loop iterations", |m| &m.loop_iterations),
    ];
    for (name, kind, help, field) in worker_counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", sum(field));
    }
    let uploader_counters: [(&str, &str, &str, &AtomicU64); 5] = [
        ("plutos_chunks_shipped_total", "counter", "chunks the sink confirmed", &uploader.chunks_shipped),
        ("plutos_events_shipped_total", "counter", "events in chunks the sink confirmed", &uploader.events_shipped),
        ("plutos_bytes_shipped_total", "counter", "compressed bytes the sink confirmed", &uploader.bytes_shipped),
        ("plutos_upload_failures_total", "counter", "failed sink attempts (retried)", &uploader.upload_failures),
        ("plutos_chunks_queued", "gauge", "sealed chunks waiting for the sink", &uploader.chunks_queued),
    ];
    for (name, kind, help, counter) in uploader_counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", counter.load(Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP plutos_spool_bytes bytes in the spool (open and sealed chunks)\n# TYPE plutos_spool_bytes gauge\nplutos_spool_bytes {spool_bytes}"
    );
    out
}
