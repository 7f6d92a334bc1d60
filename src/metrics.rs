//! Counters, defined in one place. Each worker owns a cache-padded `WorkerMetrics` and bumps it with
//! `Relaxed` adds (no lock, no shared cache line); `/metrics` sums them only when it is read.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_utils::CachePadded;

use crate::http::HttpError;
use crate::route::{self, Route};

mod enrichment;
mod http2;
mod quic;
mod saturation;
mod schemas;
mod tls;
mod udp;

pub use enrichment::render_enrichment;
pub use http2::{H2Counts, render_http2};
pub use quic::{QuicMetrics, render_quic};
pub use saturation::{BusyClock, render_saturation};
pub use schemas::{render_bad_rows, render_schemas};
pub use tls::render_tls;
pub use udp::render_udp;

/// Rows of the response counters: one per route of the table, then one for answers to requests that matched no
/// route (refused before a route was known), labelled `unrouted`.
const ROUTE_ROWS: usize = route::COUNT + 1;
const UNROUTED: usize = route::COUNT;

/// The statuses plutos answers with, as `status` labels: its successes, then every status of `HttpError`'s
/// table, each once.
pub const STATUSES: [u16; STATUS_COUNT] = distinct_statuses();
const SUCCESSES: [u16; 2] = [200, 204];
const STATUS_COUNT: usize = {
    let all = distinct_statuses_padded();
    let mut n = 0;
    while n < all.len() && all[n] != 0 {
        n += 1;
    }
    n
};

/// `SUCCESSES` and `HttpError::STATUSES` without repeats, in order of appearance, padded with zeros.
const fn distinct_statuses_padded() -> [u16; SUCCESSES.len() + HttpError::STATUSES.len()] {
    let mut out = [0; SUCCESSES.len() + HttpError::STATUSES.len()];
    let mut n = 0;
    let mut i = 0;
    while i < out.len() {
        let status = if i < SUCCESSES.len() { SUCCESSES[i] } else { HttpError::STATUSES[i - SUCCESSES.len()] };
        let mut seen = false;
        let mut j = 0;
        while j < n {
            seen |= out[j] == status;
            j += 1;
        }
        if !seen {
            out[n] = status;
            n += 1;
        }
        i += 1;
    }
    out
}

const fn distinct_statuses() -> [u16; STATUS_COUNT] {
    let padded = distinct_statuses_padded();
    let mut out = [0; STATUS_COUNT];
    let mut i = 0;
    while i < STATUS_COUNT {
        out[i] = padded[i];
        i += 1;
    }
    out
}

/// The `route` label of a row of the response counters.
fn route_label(row: usize) -> &'static str {
    Route::all().nth(row).map_or("unrouted", Route::path)
}

pub struct WorkerMetrics {
    pub requests: AtomicU64,
    pub events_accepted: AtomicU64,
    /// Answers by `[route][status]` (a route's index, or the unrouted row; an index into `STATUSES`).
    pub responses: [[AtomicU64; STATUS_COUNT]; ROUTE_ROWS],
    /// Refusals by kind (`HttpError::index`).
    pub rejections: [AtomicU64; HttpError::LABELS.len()],
    pub connections_accepted: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_refused: AtomicU64,
    /// TLS connections closed on a failed handshake, a bad record or a handshake timeout.
    pub tls_failures: AtomicU64,
    /// Datagrams by what became of them (`UDP_RESULTS`).
    pub udp_datagrams: [AtomicU64; UDP_RESULTS.len()],
    /// The kernel's count of datagrams it dropped on this worker's UDP socket (SO_RXQ_OVFL), as last seen.
    pub udp_kernel_drops: AtomicU64,
    /// TLS handshakes that ended, full and resumed.
    pub tls_full: AtomicU64,
    pub tls_resumed: AtomicU64,
    /// HTTP/2: connections by transport (h2, h2c), streams answered, streams reset by the client, sessions
    /// failed by reason (`http2::H2_FAILURES`).
    pub h2_connections: [AtomicU64; 2],
    pub h2_streams: AtomicU64,
    pub h2_resets: AtomicU64,
    pub h2_failures: [AtomicU64; 4],
    /// QUIC and HTTP/3 (`QUIC_PORT`).
    pub quic: QuicMetrics,
    /// Times a connection stopped being read because its client was not taking its answers.
    pub read_pauses: AtomicU64,
    pub spool_writes: AtomicU64,
    pub spool_write_errors: AtomicU64,
    pub chunks_sealed: AtomicU64,
    /// Event-loop iterations: a worker wakes at least once a second, so a stuck counter means a stuck worker.
    pub loop_iterations: AtomicU64,
    /// Enrichment lookups by kind and outcome.
    pub geo_lookups: [AtomicU64; 3],
    pub agent_lookups: [AtomicU64; 3],
    /// Events from bots answered and not stored (`BOTS=drop`).
    pub bot_events_dropped: AtomicU64,
    /// Self-describing events whose schema the registry does not hold (or whose URI is not one).
    pub validations_unknown: AtomicU64,
    /// Bad rows written, by `BadRowKind`.
    pub bad_rows: [AtomicU64; 2],
    /// Time the loop spent working (from a wake to the next wait), in nanoseconds.
    pub busy_nanos: AtomicU64,
    /// The busy share of the last housekeeping window (an `f64`'s bits).
    pub utilization: AtomicU64,
}

impl Default for WorkerMetrics {
    fn default() -> WorkerMetrics {
        let zero = || AtomicU64::new(0);
        WorkerMetrics {
            requests: zero(),
            events_accepted: zero(),
            responses: [const { [const { AtomicU64::new(0) }; STATUS_COUNT] }; ROUTE_ROWS],
            rejections: [const { AtomicU64::new(0) }; HttpError::LABELS.len()],
            connections_accepted: zero(),
            connections_open: zero(),
            connections_refused: zero(),
            tls_failures: zero(),
            udp_datagrams: [const { AtomicU64::new(0) }; UDP_RESULTS.len()],
            udp_kernel_drops: zero(),
            tls_full: zero(),
            tls_resumed: zero(),
            h2_connections: [zero(), zero()],
            h2_streams: zero(),
            h2_resets: zero(),
            h2_failures: [const { AtomicU64::new(0) }; 4],
            quic: QuicMetrics::default(),
            read_pauses: zero(),
            spool_writes: zero(),
            spool_write_errors: zero(),
            chunks_sealed: zero(),
            loop_iterations: zero(),
            geo_lookups: [const { AtomicU64::new(0) }; 3],
            agent_lookups: [const { AtomicU64::new(0) }; 3],
            bot_events_dropped: zero(),
            validations_unknown: zero(),
            bad_rows: [zero(), zero()],
            busy_nanos: zero(),
            utilization: zero(),
        }
    }
}

#[derive(Default)]
pub struct UploaderMetrics {
    pub chunks_shipped: AtomicU64,
    pub events_shipped: AtomicU64,
    pub bytes_shipped: AtomicU64,
    pub retryable_failures: AtomicU64,
    pub permanent_failures: AtomicU64,
    /// Sealed chunks the uploader holds: waiting, backing off or in flight.
    pub chunks_queued: AtomicU64,
    pub uploads_in_flight: AtomicU64,
    /// Unix seconds of the first event of the oldest chunk the uploader holds; 0 when it holds none.
    pub oldest_unshipped_unix: AtomicI64,
    /// Seconds from the start of an upload to the sink's confirmation, for the uploads that succeeded.
    pub upload_seconds: Histogram,
    /// Milliseconds from the start of the process to the last upload the sink confirmed (0: none yet).
    pub last_success_ms: AtomicU64,
    /// The last failed upload was refused for good (credentials, bucket, policy) and no upload succeeded since.
    pub permanent_error: AtomicBool,
    /// Sealed chunks that did not decode, set aside in `spool/corrupt` and never shipped.
    pub chunks_corrupt: AtomicU64,
    /// The Kafka sink's counters (rendered only with `DRIVER=kafka`).
    pub kafka: MessageMetrics,
    /// The SQS sink's counters (rendered only with `DRIVER=sqs`).
    pub sqs: MessageMetrics,
    /// Object-ready notifications SQS accepted, and those it did not (`NOTIFY_SQS_QUEUE_URL`).
    pub notifications: AtomicU64,
    pub notifications_failed: AtomicU64,
    pub notify_enabled: AtomicBool,
}

/// The counters of a sink that sends one message per event (Kafka, SQS); a chunk's latency is
/// `plutos_upload_duration_seconds`.
#[derive(Default)]
pub struct MessageMetrics {
    pub enabled: AtomicBool,
    /// Messages sent and not acknowledged yet.
    pub in_flight: AtomicI64,
    pub acknowledged: AtomicU64,
    /// Events the sink cannot send (over its message limit, refused for their content), in the dead-letter file.
    pub dead_lettered: AtomicU64,
    /// Messages of chunks sent again that an earlier attempt had sent (progress marks; for SQS also the entries
    /// a failed attempt of this process had sent): not sent twice.
    pub resumed: AtomicU64,
    /// Requests that carried messages (SQS's `SendMessageBatch`; Kafka's batching is librdkafka's, not counted).
    pub batches: AtomicU64,
    /// Failures by kind (`KAFKA_ERROR_KINDS`, `SQS_ERROR_KINDS`: the sink's own list).
    pub errors: [AtomicU64; 8],
}

impl MessageMetrics {
    /// Counts a failure of `kind`, one of `kinds` (else the last of them, "other").
    pub fn count(&self, kinds: &[&str], kind: &str) {
        let index = kinds.iter().position(|k| *k == kind).unwrap_or(kinds.len() - 1);
        self.errors[index].fetch_add(1, Relaxed);
    }
}

/// The `kind` labels of `plutos_kafka_errors_total`.
pub const KAFKA_ERROR_KINDS: [&str; 6] = ["unreachable", "topic", "authorization", "tls", "fatal", "other"];

/// The `kind` labels of `plutos_sqs_errors_total`: requests that failed whole (no connection, no such queue,
/// credentials, throttled, 5xx), entries SQS failed (sent again) or refused for their content (dead-lettered).
pub const SQS_ERROR_KINDS: [&str; 8] =
    ["unreachable", "queue", "authorization", "throttled", "server", "entry", "refused", "other"];

/// What became of a datagram: its `result` label, in `UDP_RESULTS`' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpResult {
    Stored,
    Malformed,
    Truncated,
    Unauthorized,
    Refused,
}

pub const UDP_RESULTS: [&str; 5] = ["stored", "malformed", "truncated", "unauthorized", "refused"];

/// A worker's answers and refusals since it last published them: plain counts, added to the shared atomics
/// once per event-loop iteration, not once per request.
pub struct Tally {
    responses: [[u32; STATUS_COUNT]; ROUTE_ROWS],
    rejections: [u32; HttpError::LABELS.len()],
    /// Bit `row` set: that row of `responses` has counts. Publishing visits only those rows: there are dozens of
    /// routes, and most iterations answer one or two of them.
    dirty_rows: u64,
    rejected: bool,
}

const _: () = assert!(ROUTE_ROWS <= 64, "one bit per route row");

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            responses: [[0; STATUS_COUNT]; ROUTE_ROWS],
            rejections: [0; HttpError::LABELS.len()],
            dirty_rows: 0,
            rejected: false,
        }
    }
}

impl Tally {
    /// One answer to a request of `route` (`None`: refused before a route was known).
    pub fn response(&mut self, route: Option<Route>, status: u16) {
        let row = route.map_or(UNROUTED, Route::index);
        if let Some(s) = STATUSES.iter().position(|&known| known == status) {
            self.responses[row][s] += 1;
            self.dirty_rows |= 1 << row;
        }
    }

    pub fn rejection(&mut self, error: HttpError) {
        self.rejections[error.index()] += 1;
        self.rejected = true;
    }

    /// Adds the counts to `metrics` and starts again from zero.
    pub fn publish(&mut self, metrics: &WorkerMetrics) {
        let mut rows = std::mem::take(&mut self.dirty_rows);
        while rows != 0 {
            let row = rows.trailing_zeros() as usize;
            rows &= rows - 1;
            for (count, shared) in self.responses[row].iter_mut().zip(&metrics.responses[row]) {
                if *count > 0 {
                    add(shared, u64::from(std::mem::take(count)));
                }
            }
        }
        if std::mem::take(&mut self.rejected) {
            for (count, shared) in self.rejections.iter_mut().zip(&metrics.rejections) {
                if *count > 0 {
                    add(shared, u64::from(std::mem::take(count)));
                }
            }
        }
    }
}

/// Upper bounds of the upload-duration buckets, in seconds.
const UPLOAD_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A Prometheus histogram over `UPLOAD_BUCKETS`, observed by one thread, read by `/metrics`.
#[derive(Default)]
pub struct Histogram {
    /// Observations at or below each bound (not cumulative; `render` sums them).
    buckets: [AtomicU64; UPLOAD_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        if let Some(i) = UPLOAD_BUCKETS.iter().position(|&bound| seconds <= bound) {
            add(&self.buckets[i], 1);
        }
        add(&self.count, 1);
        add(&self.sum_micros, value.as_micros() as u64);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in UPLOAD_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Selects one counter of a worker's set.
type WorkerCounter = fn(&WorkerMetrics) -> &AtomicU64;

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// `plutos_responses_total` by route and status (the pairs that occurred) and `plutos_rejections_total` by
/// reason (every reason, so a rate can be taken from zero).
fn render_answers(out: &mut String, workers: &[CachePadded<WorkerMetrics>]) {
    let _ = writeln!(
        out,
        "# HELP plutos_responses_total answers by route and status\n# TYPE plutos_responses_total counter"
    );
    for r in 0..ROUTE_ROWS {
        let route = route_label(r);
        for (s, status) in STATUSES.iter().enumerate() {
            let n: u64 = workers.iter().map(|w| w.responses[r][s].load(Relaxed)).sum();
            if n > 0 {
                let _ = writeln!(out, "plutos_responses_total{{route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP plutos_rejections_total requests refused (4xx, 5xx), by reason; nothing of them was stored\n\
         # TYPE plutos_rejections_total counter"
    );
    for (i, reason) in HttpError::LABELS.iter().enumerate() {
        let n: u64 = workers.iter().map(|w| w.rejections[i].load(Relaxed)).sum();
        let _ = writeln!(out, "plutos_rejections_total{{reason=\"{reason}\"}} {n}");
    }
}

/// Prometheus text exposition of every counter.
/// `spool`: the bytes of chunks in the spool, and of what is set aside there.
pub fn render(workers: &[CachePadded<WorkerMetrics>], uploader: &UploaderMetrics, spool: (u64, u64)) -> String {
    let (spool_bytes, aside_bytes) = spool;
    let mut out = String::with_capacity(2048);
    let sum = |f: WorkerCounter| workers.iter().map(|w| f(w).load(Relaxed)).sum::<u64>();
    let worker_counters: [(&str, &str, &str, WorkerCounter); 10] = [
        ("plutos_requests_total", "counter", "HTTP requests answered", |m| &m.requests),
        ("plutos_events_accepted_total", "counter", "events acknowledged (in the spool)", |m| &m.events_accepted),
        ("plutos_connections_accepted_total", "counter", "connections accepted", |m| &m.connections_accepted),
        ("plutos_connections_open", "gauge", "connections open", |m| &m.connections_open),
        (
            "plutos_connections_refused_total",
            "counter",
            "connections closed at once: MAX_CONNECTIONS and the few over it answered 503 reached",
            |m| &m.connections_refused,
        ),
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
    render_answers(&mut out, workers);
    render_bad_rows(&mut out, workers);
    let uploader_counters: [(&str, &str, &str, &AtomicU64); 6] = [
        ("plutos_chunks_shipped_total", "counter", "chunks the sink confirmed", &uploader.chunks_shipped),
        ("plutos_chunks_corrupt_total", "counter", "sealed chunks that did not decode, set aside in spool/corrupt", {
            &uploader.chunks_corrupt
        }),
        ("plutos_events_shipped_total", "counter", "events in chunks the sink confirmed", &uploader.events_shipped),
        ("plutos_bytes_shipped_total", "counter", "compressed bytes the sink confirmed", &uploader.bytes_shipped),
        ("plutos_chunks_queued", "gauge", "sealed chunks not shipped yet (waiting, backing off or in flight)", {
            &uploader.chunks_queued
        }),
        ("plutos_uploads_in_flight", "gauge", "uploads in progress", &uploader.uploads_in_flight),
    ];
    for (name, kind, help, counter) in uploader_counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", counter.load(Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP plutos_upload_failures_total failed sink attempts, all retried: retryable (outage, throttling) or \
         permanent (credentials, bucket, policy; retried slowly)\n# TYPE plutos_upload_failures_total counter\n\
         plutos_upload_failures_total{{kind=\"retryable\"}} {}\nplutos_upload_failures_total{{kind=\"permanent\"}} {}",
        uploader.retryable_failures.load(Relaxed),
        uploader.permanent_failures.load(Relaxed),
    );
    let oldest = uploader.oldest_unshipped_unix.load(Relaxed);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let age = if oldest == 0 { 0 } else { (now - oldest).max(0) };
    let _ = writeln!(
        out,
        "# HELP plutos_oldest_unshipped_chunk_age_seconds age of the first event of the oldest sealed chunk not \
         shipped yet (0: none)\n# TYPE plutos_oldest_unshipped_chunk_age_seconds gauge\n\
         plutos_oldest_unshipped_chunk_age_seconds {age}"
    );
    uploader.upload_seconds.render(
        &mut out,
        "plutos_upload_duration_seconds",
        "time from the start of an upload to the sink's confirmation, successful uploads",
    );
    let kafka = MessageHelp {
        sink: "kafka",
        in_flight: "messages produced and not acknowledged yet",
        acknowledged: "messages the brokers acknowledged",
        dead_letter: "events over KAFKA_MESSAGE_MAX_BYTES, in the dead-letter file instead",
        resumed: "messages of chunks produced again that their progress marks showed acknowledged already (not \
                  produced twice)",
        errors: "failed messages and metadata requests by kind (the chunk is produced again)",
        batches: None,
    };
    kafka.render(&mut out, &uploader.kafka, &KAFKA_ERROR_KINDS);
    let sqs = MessageHelp {
        sink: "sqs",
        in_flight: "batch entries sent and not answered yet",
        acknowledged: "messages the queue accepted",
        dead_letter: "events over SQS_MAX_MESSAGE_BYTES or refused for their content, in the dead-letter file \
                      instead",
        resumed: "messages of chunks sent again that an earlier attempt had sent already (not sent twice)",
        errors: "failed requests and batch entries by kind (entries are sent again; refused ones dead-lettered)",
        batches: Some("SendMessageBatch requests sent (messages per batch: acknowledged / batches)"),
    };
    sqs.render(&mut out, &uploader.sqs, &SQS_ERROR_KINDS);
    if uploader.notify_enabled.load(Relaxed) {
        let _ = writeln!(
            out,
            "# HELP plutos_notifications_sent_total object-ready notifications the SQS queue accepted\n\
             # TYPE plutos_notifications_sent_total counter\nplutos_notifications_sent_total {}\n\
             # HELP plutos_notifications_failed_total object-ready notifications that failed (the object's upload is \
             tried again)\n# TYPE plutos_notifications_failed_total counter\nplutos_notifications_failed_total {}",
            uploader.notifications.load(Relaxed),
            uploader.notifications_failed.load(Relaxed),
        );
    }
    let _ = writeln!(
        out,
        "# HELP plutos_spool_bytes bytes in the spool (open and sealed chunks)\n# TYPE plutos_spool_bytes gauge\n\
         plutos_spool_bytes {spool_bytes}\n\
         # HELP plutos_spool_aside_bytes bytes set aside in the spool (corrupt chunks, Kafka dead letters), counted \
         against MAX_SPOOL_BYTES too\n# TYPE plutos_spool_aside_bytes gauge\nplutos_spool_aside_bytes {aside_bytes}"
    );
    out
}

/// The help lines of a message sink's metrics (`plutos_{sink}_…`).
struct MessageHelp {
    sink: &'static str,
    in_flight: &'static str,
    acknowledged: &'static str,
    dead_letter: &'static str,
    resumed: &'static str,
    errors: &'static str,
    /// The batch counter's help, for a sink that counts its batches.
    batches: Option<&'static str>,
}

impl MessageHelp {
    /// The sink's metrics, when it is the one configured.
    fn render(&self, out: &mut String, metrics: &MessageMetrics, kinds: &[&str]) {
        if !metrics.enabled.load(Relaxed) {
            return;
        }
        let sink = self.sink;
        let lines = [
            ("messages_in_flight", "gauge", self.in_flight, metrics.in_flight.load(Relaxed).max(0) as u64),
            ("messages_acknowledged_total", "counter", self.acknowledged, metrics.acknowledged.load(Relaxed)),
            ("dead_letter_events_total", "counter", self.dead_letter, metrics.dead_lettered.load(Relaxed)),
            ("resumed_messages_total", "counter", self.resumed, metrics.resumed.load(Relaxed)),
        ];
        for (name, kind, help, value) in lines {
            let _ = writeln!(out, "# HELP plutos_{sink}_{name} {help}\n# TYPE plutos_{sink}_{name} {kind}");
            let _ = writeln!(out, "plutos_{sink}_{name} {value}");
        }
        if let Some(help) = self.batches {
            let _ =
                writeln!(out, "# HELP plutos_{sink}_batches_total {help}\n# TYPE plutos_{sink}_batches_total counter");
            let _ = writeln!(out, "plutos_{sink}_batches_total {}", metrics.batches.load(Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP plutos_{sink}_errors_total {}\n# TYPE plutos_{sink}_errors_total counter",
            self.errors
        );
        for (kind, count) in kinds.iter().zip(&metrics.errors) {
            let _ = writeln!(out, "plutos_{sink}_errors_total{{kind=\"{kind}\"}} {}", count.load(Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_reaches_the_shared_counters_once() {
        let metrics = WorkerMetrics::default();
        let mut tally = Tally::default();
        let events = route::route(b"/e", crate::http::Method::Get).unwrap();
        tally.response(Some(events), 200);
        tally.response(Some(events), 200);
        tally.response(None, 400);
        tally.rejection(HttpError::BadRequest("invalid JSON"));
        tally.publish(&metrics);
        tally.publish(&metrics);
        assert_eq!(metrics.responses[events.index()][0].load(Relaxed), 2);
        assert_eq!(metrics.responses[UNROUTED][2].load(Relaxed), 1);
        assert_eq!(metrics.rejections[0].load(Relaxed), 1);
        let text = render(&[CachePadded::new(metrics)], &UploaderMetrics::default(), (0, 0));
        assert!(text.contains("plutos_responses_total{route=\"/e\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("plutos_responses_total{route=\"unrouted\",status=\"400\"} 1\n"), "{text}");
        assert!(text.contains("plutos_rejections_total{reason=\"malformed\"} 1\n"), "{text}");
        assert!(text.contains("plutos_rejections_total{reason=\"too_many_connections\"} 0\n"), "{text}");
    }

    #[test]
    fn statuses_are_the_successes_and_every_refusal_once() {
        assert_eq!(STATUSES, [200, 204, 400, 401, 403, 404, 405, 408, 411, 413, 414, 415, 431, 501, 505, 503]);
    }
}
