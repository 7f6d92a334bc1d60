//! A worker: one pinned thread with its own listener, epoll loop, connections (`connection`: one socket's
//! buffers and its committed output boundary; `lifecycle`: where it is in its life), request handling (`request`: the requests in a
//! connection's bytes, answered and their events batched; `edge`: who may send and who sent) and chunk writer.
//! It shares nothing with other workers but atomics, takes no lock, and never waits for the uploader.
//! The loop waits on epoll (`epoll.rs`: readiness, then `read`/`write`) or on io_uring (`ring.rs`: completions
//! of multishot accepts and receives and of sends); `IO_BACKEND` picks one, the steps are the same.
//!
//! One iteration of the loop:
//! 1. wait for readiness or completions (bounded by the next timer: chunk age, housekeeping; zero while a
//!    connection whose reading was paused waits to be read again);
//! 2. accept, read and handle every ready or resumed connection, and once a second time out idle and slow
//!    ones — events go to the batch, responses to each connection's output, nothing is written to a socket;
//! 3. group commit: the batch goes to the open chunk with one `write(2)` (DURABILITY=spool); only then is
//!    every touched connection's committed boundary moved past its new responses (or, if the write failed,
//!    its acknowledgements replaced by a 503);
//! 4. flush: committed output is written (io_uring: its sends submitted) — only now can a 2xx leave. Flushing
//!    never reads: a connection whose output drained while its reading was paused is queued for step 2 of the
//!    next iteration;
//! 5. seal the chunk if due and hand it to the uploader.

pub mod connection;
mod connections;
mod edge;
mod epoll;
pub mod lifecycle;
pub mod request;
mod ring;
pub mod udp;
pub mod wake;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use mio::Poll;
use mio::net::TcpListener;
use slab::Slab;

use crate::http::HttpError;
use crate::metrics::{UdpResult, WorkerMetrics, add};
use crate::reload::Follower;
use crate::spool::Fsync;
use crate::spool::UploadJob;
use crate::spool::batch::Batch;
use crate::spool::chunk::{ChunkWriter, SpoolWriteError};
use crate::state::{Phase, Shared};
use crate::tls::{Served, Tls};
use crate::worker::connection::Connection;
use crate::worker::lifecycle::AfterWrite;
use crate::worker::request::Requests;
use crate::worker::ring::RingIo;
use crate::worker::udp::Datagrams;
use crate::worker::wake::Wake;

const READ_BUFFER: usize = 64 * 1024;
pub(super) const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// After a failed spool write, ingest answers 503 for this long before trying the disk again.
const WRITE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// What a worker needs of the configuration, besides what its request handling and chunk writer were given.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// This worker's share of MAX_CONNECTIONS.
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub fsync: Fsync,
    /// Bounds how long requests in flight may take once the drain is over.
    pub shutdown_timeout: Duration,
}

/// What a worker's loop waits on (`IO_BACKEND`, `auto` resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Epoll,
    Uring,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Epoll => "epoll",
            Backend::Uring => "uring",
        }
    }
}

/// Everything a worker is made of.
pub struct WorkerSetup {
    pub index: usize,
    pub backend: Backend,
    /// How other threads end its wait.
    pub wake: Arc<Wake>,
    /// The HTTP listener (`PORT`) and the HTTPS one (`TLS_PORT`, with its certificate).
    pub listener: Option<TcpListener>,
    pub tls_listener: Option<(TcpListener, Arc<Tls>)>,
    /// The UDP socket (`UDP_PORT`).
    pub udp: Option<Datagrams>,
    pub settings: WorkerSettings,
    pub requests: Requests,
    pub chunk: ChunkWriter,
    pub jobs: Sender<UploadJob>,
    pub shared: Arc<Shared>,
}

pub struct Worker {
    index: usize,
    backend: Backend,
    wake: Arc<Wake>,
    /// The epoll instance (`Backend::Epoll`).
    poll: Option<Poll>,
    /// The io_uring loop's state (`Backend::Uring`, once its thread set up the ring).
    ring: Option<RingIo>,
    listener: Option<TcpListener>,
    tls_listener: Option<TcpListener>,
    /// The certificate new TLS connections get (taken again when a reload published one).
    tls: Option<(Arc<Tls>, Follower<Served>)>,
    udp: Option<Datagrams>,
    /// Datagrams were left waiting at the end of the last iteration (it took its share): read them next.
    udp_pending: bool,
    /// Datagrams whose events are in this iteration's batch: stored once the group commit returns.
    udp_batched: u64,
    settings: WorkerSettings,
    conns: Slab<Connection>,
    requests: Requests,
    /// This iteration's accepted events, written by the group commit.
    batch: Batch,
    chunk: ChunkWriter,
    jobs: Sender<UploadJob>,
    shared: Arc<Shared>,
    unsent_jobs: Vec<UploadJob>,
    read_buf: Vec<u8>,
    /// TLS connections' plaintext, decrypted from what was read (empty without HTTPS).
    plain_buf: Vec<u8>,
    /// Connections with output to commit and write this iteration.
    flush_list: Vec<usize>,
    /// Connections whose output drained while their reading was paused: read them next iteration.
    resume_list: Vec<usize>,
    write_error_until: Option<Instant>,
    next_housekeeping: Instant,
    closing_deadline: Option<Instant>,
}

impl Worker {
    pub fn new(setup: WorkerSetup) -> io::Result<Worker> {
        let WorkerSetup { index, backend, wake, listener, tls_listener, udp, settings, requests, chunk, jobs, shared } =
            setup;
        let poll = match backend {
            Backend::Epoll => Some(Poll::new()?),
            Backend::Uring => None,
        };
        let (tls_listener, tls) = match tls_listener {
            Some((listener, tls)) => {
                let follower = tls.published.follow();
                (Some(listener), Some((tls, follower)))
            }
            None => (None, None),
        };
        Ok(Worker {
            index,
            backend,
            wake,
            poll,
            ring: None,
            plain_buf: if tls.is_some() { Vec::with_capacity(READ_BUFFER) } else { Vec::new() },
            listener,
            tls_listener,
            tls,
            udp,
            udp_pending: false,
            udp_batched: 0,
            settings,
            conns: Slab::new(),
            requests,
            batch: Batch::with_capacity(64 * 1024),
            chunk,
            jobs,
            shared,
            unsent_jobs: Vec::new(),
            // The io_uring loop reads into its provided buffers instead.
            read_buf: if backend == Backend::Epoll { vec![0; READ_BUFFER] } else { Vec::new() },
            flush_list: Vec::new(),
            resume_list: Vec::new(),
            write_error_until: None,
            next_housekeeping: Instant::now() + HOUSEKEEPING,
            closing_deadline: None,
        })
    }

    fn metrics(&self) -> &WorkerMetrics {
        &self.shared.workers[self.index]
    }

    /// Runs the loop until the drain is over, then seals and hands over what is left.
    pub fn run(self) -> io::Result<()> {
        match self.backend {
            Backend::Epoll => self.run_epoll(),
            Backend::Uring => self.run_uring(),
        }
    }

    /// Step 2's start: what every request of this iteration is answered under.
    fn begin_iteration(&mut self, now: Instant) {
        add(&self.metrics().loop_iterations, 1);
        let accepting = self.accepting(now);
        self.requests.begin_iteration(now, accepting);
        if let Some((tls, served)) = self.tls.as_mut() {
            served.refresh(&tls.published);
        }
    }

    /// Steps 2 (what is left of it) to 5, after the events or completions were handled; true once the worker
    /// is done (the drain ended and its connections closed, or their deadline passed).
    fn end_iteration(&mut self, now: Instant) -> bool {
        for i in std::mem::take(&mut self.resume_list) {
            self.resume(i, now);
        }
        if self.udp_pending {
            self.receive_datagrams();
        }
        if now >= self.next_housekeeping {
            self.housekeeping(now);
        }
        self.commit(now);
        self.flush_all(now);
        // After a failed spool write, the disk gets a pause before the next attempt.
        if self.chunk.seal_due(now) && self.write_error_until.is_none_or(|t| now >= t) {
            self.seal(now);
        }
        if let Err(e) = self.chunk.sync_if_due(now) {
            tracing::error!(worker = self.index, error = %e, "fsync of the open chunk failed");
        }
        if self.shared.phase() == Phase::Closing {
            if self.closing_deadline.is_none() {
                self.begin_closing(now);
            }
            if self.conns.is_empty() || self.closing_deadline.is_some_and(|d| now >= d) {
                return true;
            }
        }
        false
    }

    fn poll_timeout(&self, now: Instant) -> Duration {
        if !self.resume_list.is_empty() || self.udp_pending {
            return Duration::ZERO;
        }
        let mut until = self.next_housekeeping;
        if let Some(age) = self.chunk.age_deadline() {
            // While the disk pauses after a failed write, sealing waits for the pause to end.
            until = until.min(self.write_error_until.map_or(age, |t| age.max(t)));
        }
        let mut timeout = until.saturating_duration_since(now);
        if let Fsync::Every(interval) = self.settings.fsync {
            timeout = timeout.min(interval);
        }
        if self.closing_deadline.is_some() {
            timeout = timeout.min(Duration::from_millis(50));
        }
        timeout
    }

    fn accepting(&self, now: Instant) -> Result<(), HttpError> {
        if self.write_error_until.is_some_and(|t| now < t) || self.chunk.is_backlogged() {
            Err(HttpError::SpoolWriteFailed)
        } else if self.shared.spool_full() {
            Err(HttpError::SpoolFull)
        } else {
            Ok(())
        }
    }

    /// Group commit: this iteration's events go to the spool, and only then may their responses leave.
    fn commit(&mut self, now: Instant) {
        let events = self.batch.events();
        if events > 0 {
            let unix = self.requests.clock().unix_seconds();
            let datagrams = std::mem::take(&mut self.udp_batched);
            match self.chunk.commit(self.batch.lines(), events, now, unix) {
                Ok(bytes) => {
                    self.shared.spool_grew(bytes);
                    add(&self.metrics().events_accepted, events);
                    add(&self.metrics().spool_writes, 1);
                    if datagrams > 0 {
                        add(&self.metrics().udp_datagrams[UdpResult::Stored as usize], datagrams);
                    }
                }
                Err(e) => {
                    self.spool_write_failed(e, now);
                    self.take_back_acknowledgements();
                    // Nothing of the batch is in the spool: its datagrams were refused after all.
                    if datagrams > 0 {
                        add(&self.metrics().udp_datagrams[UdpResult::Refused as usize], datagrams);
                    }
                }
            }
        }
        self.batch.clear();
        let answered = self.requests.publish_counts();
        add(&self.metrics().requests, answered);
        for &i in &self.flush_list {
            if let Some(conn) = self.conns.get_mut(i) {
                conn.commit_output();
            }
        }
    }

    /// A spool write failed: ingest answers 503 for a while; an abandoned open chunk goes to repair.
    fn spool_write_failed(&mut self, e: SpoolWriteError, now: Instant) {
        add(&self.metrics().spool_write_errors, 1);
        if self.write_error_until.is_none_or(|t| now >= t) {
            tracing::error!(worker = self.index, error = %e.error, "spool write failed; answering 503 for a while");
        }
        self.write_error_until = Some(now + WRITE_ERROR_PAUSE);
        if let Some(path) = e.abandoned {
            self.send_job(UploadJob::Repair(path));
        }
    }

    /// Nothing of the lost batch is durable: every answer that acknowledged part of it, and everything the
    /// connection answered after it, becomes one 503 that ends the connection.
    fn take_back_acknowledgements(&mut self) {
        for k in 0..self.flush_list.len() {
            let i = self.flush_list[k];
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            if let Some(route) = conn.take_back_ingest() {
                conn.drop_input();
                self.requests.refuse(conn, Some(route), HttpError::SpoolWriteFailed);
            }
        }
    }

    /// Writes committed output (io_uring: submits its sends). Never reads: what a read would answer must wait
    /// for the next group commit.
    fn flush_all(&mut self, now: Instant) {
        while let Some(i) = self.flush_list.pop() {
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            conn.life.unqueue_flush();
            debug_assert_eq!(conn.uncommitted(), 0, "every connection with new output was committed this iteration");
            match self.backend {
                Backend::Epoll => self.write(i, now),
                Backend::Uring => self.send(i, now),
            }
        }
    }

    /// All of a connection's output went out: it waits, closes, lingers or is read again.
    fn written(&mut self, i: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        match conn.life.written() {
            AfterWrite::Keep => {}
            AfterWrite::Close => self.close(i),
            AfterWrite::Linger => self.linger(i, now),
            AfterWrite::ReadAgain => self.resume_list.push(i),
        }
    }

    fn seal(&mut self, now: Instant) {
        match self.chunk.seal() {
            Ok((Some(sealed), bytes)) => {
                self.shared.spool_grew(bytes);
                add(&self.metrics().chunks_sealed, 1);
                self.send_job(UploadJob::Sealed(sealed));
            }
            Ok((None, _)) => {}
            Err(e) => self.spool_write_failed(e, now),
        }
    }

    /// Never blocks: a full channel keeps the job here until the next housekeeping.
    fn send_job(&mut self, job: UploadJob) {
        if !self.unsent_jobs.is_empty() {
            self.unsent_jobs.push(job);
            return;
        }
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => self.unsent_jobs.push(job),
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!(worker = self.index, "uploader is gone; sealed chunk stays in the spool");
            }
        }
    }

    /// Seals the open chunk and hands everything left to the uploader, waiting for room in the channel.
    fn finish(mut self) {
        let now = Instant::now();
        // Two rounds: a memory-mode chunk whose earlier write failed goes first, then the open one.
        for _ in 0..2 {
            if !self.chunk.is_idle() {
                self.seal(now);
            }
        }
        if !self.chunk.is_idle() {
            // Only DURABILITY=memory gets here (a spool-mode chunk that cannot be sealed is left for repair).
            tracing::error!(
                worker = self.index,
                "could not write the in-memory chunk at shutdown; its events are lost"
            );
        }
        for job in std::mem::take(&mut self.unsent_jobs) {
            if self.jobs.send(job).is_err() {
                tracing::warn!(worker = self.index, "uploader is gone; sealed chunks stay in the spool");
                break;
            }
        }
    }
}
