//! The little that workers, the uploader and the control thread share: the shutdown phase, the spool size,
//! the counters — all atomics — and the enrichment data (read-only; a reload publishes a new set of databases
//! that workers pick up between requests, `enrich/geo.rs`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::enrich::Enrichment;
use crate::metrics::{UploaderMetrics, WorkerMetrics};
use crate::schema::Schemas;
use crate::tls::Tls;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Normal service.
    Running = 0,
    /// Shutdown began: `/health` answers 503, ingest goes on so load balancers can move traffic away.
    Draining = 1,
    /// Drain over: listeners closed, in-flight requests finish, new requests get 503 + `Connection: close`.
    Closing = 2,
}

pub struct Shared {
    phase: AtomicU8,
    /// Bytes in `spool/open` and `spool/sealed`: workers add what they write, the uploader subtracts what it
    /// deletes.
    pub spool_bytes: AtomicU64,
    /// Bytes set aside in the spool (`corrupt/`, `dead-letter/`): what the uploader measured last, plus what
    /// it set aside since. They count against `max_spool_bytes` too.
    pub aside_bytes: AtomicU64,
    pub max_spool_bytes: u64,
    pub workers: Vec<CachePadded<WorkerMetrics>>,
    pub uploader: UploaderMetrics,
    /// Set when the drain ends: the uploader stops trying at this instant and leaves the rest in the spool.
    pub upload_deadline: OnceLock<Instant>,
    /// When the process started (`/ready` counts the time without a successful upload from here).
    started: Instant,
    /// The same in Unix seconds, for `/metrics` (restarts are its changes).
    started_unix: f64,
    /// `None`: no enrichment configured.
    pub enrichment: Option<Arc<Enrichment>>,
    /// `None`: no HTTPS listener.
    pub tls: Option<Arc<Tls>>,
    /// `None`: no `SCHEMAS_DIR`.
    pub schemas: Option<Arc<Schemas>>,
    /// A UDP socket per worker (`UDP_PORT`).
    pub udp: bool,
    /// `HTTP2=on`: `/metrics` has the HTTP/2 lines.
    pub http2: bool,
    /// `QUIC_PORT`: `/metrics` has the QUIC lines.
    pub quic: bool,
    /// What the workers' loops wait on: `epoll` or `uring`.
    pub io_backend: &'static str,
}

impl Shared {
    pub fn new(workers: usize, spool_bytes: u64, max_spool_bytes: u64) -> Shared {
        Shared {
            phase: AtomicU8::new(Phase::Running as u8),
            spool_bytes: AtomicU64::new(spool_bytes),
            aside_bytes: AtomicU64::new(0),
            max_spool_bytes,
            workers: (0..workers).map(|_| CachePadded::new(WorkerMetrics::default())).collect(),
            uploader: UploaderMetrics::default(),
            upload_deadline: OnceLock::new(),
            started: Instant::now(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            enrichment: None,
            tls: None,
            schemas: None,
            udp: false,
            http2: false,
            quic: false,
            io_backend: "epoll",
        }
    }

    pub fn with_enrichment(self, enrichment: Option<Arc<Enrichment>>) -> Shared {
        Shared { enrichment, ..self }
    }

    pub fn with_tls(self, tls: Option<Arc<Tls>>) -> Shared {
        Shared { tls, ..self }
    }

    pub fn with_schemas(self, schemas: Option<Arc<Schemas>>) -> Shared {
        Shared { schemas, ..self }
    }

    pub fn with_udp(self, udp: bool) -> Shared {
        Shared { udp, ..self }
    }

    pub fn with_http2(self, http2: bool) -> Shared {
        Shared { http2, ..self }
    }

    pub fn with_quic(self, quic: bool) -> Shared {
        Shared { quic, ..self }
    }

    pub fn with_io_backend(self, io_backend: &'static str) -> Shared {
        Shared { io_backend, ..self }
    }

    /// The uploader calls this when the sink confirmed an upload.
    pub fn sink_succeeded(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.uploader.last_success_ms.store(ms, Ordering::Relaxed);
        self.uploader.permanent_error.store(false, Ordering::Relaxed);
    }

    /// Why this collector should get no traffic now (`/ready`'s 503), if it should not: draining, the spool at
    /// its cap, a sink that refuses uploads for good, or chunks waiting while no upload succeeded for `window`.
    pub fn not_ready(&self, window: Duration) -> Option<String> {
        if self.phase() != Phase::Running {
            return Some("draining".into());
        }
        if self.spool_full() {
            return Some(format!(
                "spool is full ({} bytes, {} of them set aside; MAX_SPOOL_BYTES {})",
                self.spool_bytes() + self.aside_bytes.load(Ordering::Relaxed),
                self.aside_bytes.load(Ordering::Relaxed),
                self.max_spool_bytes
            ));
        }
        if self.uploader.permanent_error.load(Ordering::Relaxed) {
            return Some("sink refuses uploads (a permanent error, see the log)".into());
        }
        let waiting = self.uploader.chunks_queued.load(Ordering::Relaxed);
        let last_success = Duration::from_millis(self.uploader.last_success_ms.load(Ordering::Relaxed));
        let without_success = self.started.elapsed().saturating_sub(last_success);
        if waiting > 0 && without_success > window {
            return Some(format!(
                "sink: no upload succeeded for {} s, {waiting} chunks waiting",
                without_success.as_secs()
            ));
        }
        None
    }

    /// What an operator should know although this collector is ready (`/ready`'s body after "ready").
    pub fn ready_notes(&self) -> Option<String> {
        let corrupt = self.uploader.chunks_corrupt.load(Ordering::Relaxed);
        (corrupt > 0).then(|| {
            format!("{corrupt} sealed chunks did not decode and were set aside in spool/corrupt (see the log)")
        })
    }

    pub fn spool_bytes(&self) -> u64 {
        self.spool_bytes.load(Ordering::Relaxed)
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Running,
            1 => Phase::Draining,
            _ => Phase::Closing,
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    pub fn spool_full(&self) -> bool {
        self.spool_bytes.load(Ordering::Relaxed) + self.aside_bytes.load(Ordering::Relaxed) >= self.max_spool_bytes
    }

    pub fn spool_grew(&self, bytes: u64) {
        self.spool_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn spool_shrank(&self, bytes: u64) {
        let _ = self.spool_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(bytes)));
    }

    pub fn metrics_text(&self) -> String {
        let spool = (self.spool_bytes.load(Ordering::Relaxed), self.aside_bytes.load(Ordering::Relaxed));
        let mut text = crate::metrics::render(&self.workers, &self.uploader, spool);
        crate::metrics::render_enrichment(&mut text, &self.workers, self.enrichment.as_deref());
        crate::metrics::render_tls(&mut text, &self.workers, self.tls.as_deref());
        if self.http2 {
            crate::metrics::render_http2(&mut text, &self.workers);
        }
        if self.quic {
            crate::metrics::render_quic(&mut text, &self.workers);
        }
        crate::metrics::render_schemas(&mut text, &self.workers, self.schemas.as_deref());
        let held = spool.0 + spool.1;
        crate::metrics::render_saturation(&mut text, &self.workers, held as f64 / self.max_spool_bytes.max(1) as f64);
        let _ = write!(
            text,
            "# HELP plutos_io_backend the workers' event loop (IO_BACKEND, auto resolved at start)\n\
             # TYPE plutos_io_backend gauge\n\
             plutos_io_backend{{backend=\"{}\"}} 1\n\
             # HELP plutos_start_time_seconds when the process started (Unix seconds): a change is a restart\n\
             # TYPE plutos_start_time_seconds gauge\n\
             plutos_start_time_seconds {:.3}\n",
            self.io_backend, self.started_unix
        );
        if self.udp {
            crate::metrics::render_udp(&mut text, &self.workers);
        }
        text
    }
}
