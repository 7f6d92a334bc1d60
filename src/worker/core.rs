//! A worker's state and the steps both event loops share, with the interface each loop implements (`Io`:
//! `epoll.rs`, `ring.rs`). The loop itself is here, once: wait, then the loop's own events or completions, then
//! the shared end of the iteration — resumed reads, housekeeping, group commit, flush, seal. What differs
//! between the loops is only how they wait, accept, read and write, behind `Io`'s verbs; nothing here asks
//! which loop it runs on.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use mio::net::TcpListener;
use slab::Slab;

use super::connection::Connection;
use super::lifecycle::AfterWrite;
use super::quic::Quic;
use super::request::Requests;
use super::udp::Datagrams;
use super::wake::Wake;
use crate::event::record::Transport;
use crate::http::HttpError;
use crate::metrics::{BusyClock, UdpResult, WorkerMetrics, add};
use crate::reload::Follower;
use crate::spool::batch::Batch;
use crate::spool::chunk::{ChunkWriter, SpoolWriteError};
use crate::spool::{Fsync, Stream, UploadJob};
use crate::state::{Phase, Shared};
use crate::tls::{Served, Tls};

pub(super) const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// After a failed spool write, ingest answers 503 for this long before trying the disk again.
const WRITE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// What an event loop gives the worker: how it waits, and the verbs the shared steps call. One implementation
/// per loop, owned by the worker's thread, chosen once at start; each keeps its own state (registrations, a
/// ring and its buffers, what the kernel holds) and its listeners.
pub trait Io {
    /// Waits at most `timeout` for readiness or completions.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;

    /// Handles what the wait brought: connections accepted, input read or received, output written or sent,
    /// datagrams waiting, the wake.
    fn dispatch(&mut self, worker: &mut Worker, now: Instant);

    /// Takes the connections the listener of `transport` has waiting, or arms its accept again (after EMFILE
    /// and the like, retried by housekeeping).
    fn accept(&mut self, worker: &mut Worker, transport: Transport, now: Instant);

    /// Reading of connection `i` resumes (its client caught up): what it sent meanwhile is read now.
    fn resume(&mut self, worker: &mut Worker, i: usize, now: Instant);

    /// Writes, or submits, connection `i`'s committed output; once all of it went, the worker is told
    /// (`Worker::written`).
    fn flush(&mut self, worker: &mut Worker, i: usize, now: Instant);

    /// Connection `i` left the worker's table: its socket is closed (what the kernel may still read is kept).
    fn close(&mut self, i: usize, conn: Connection);

    /// The drain ended: the listeners and the UDP socket close.
    fn stop_listening(&mut self, worker: &mut Worker);

    /// The loop ended: what it still has in the kernel is closed, cancelled and reaped.
    fn end(&mut self, worker: &mut Worker) -> io::Result<()>;
}

/// A worker's listening sockets, owned by its event loop.
#[derive(Default)]
pub struct Listeners {
    /// `PORT`.
    pub http: Option<TcpListener>,
    /// `TLS_PORT`.
    pub https: Option<TcpListener>,
}

impl Listeners {
    pub fn get(&self, transport: Transport) -> Option<&TcpListener> {
        match transport {
            Transport::Http | Transport::H2c => self.http.as_ref(),
            Transport::Https | Transport::H2 => self.https.as_ref(),
            Transport::H3 | Transport::Udp => None,
        }
    }
}

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

/// A worker's state, whichever loop drives it.
pub struct Worker {
    pub(super) index: usize,
    pub(super) wake: Arc<Wake>,
    /// The certificate new TLS connections get (taken again when a reload published one).
    pub(super) tls: Option<(Arc<Tls>, Follower<Served>)>,
    pub(super) udp: Option<Datagrams>,
    /// HTTP/3's endpoint and connections (`QUIC_PORT`).
    pub(super) quic: Option<Quic>,
    /// Datagrams were left waiting at the end of the last iteration (it took its share): read them next.
    pub(super) udp_pending: bool,
    /// Datagrams whose events are in this iteration's batch: stored once the group commit returns.
    pub(super) udp_batched: u64,
    pub(super) settings: WorkerSettings,
    pub(super) conns: Slab<Connection>,
    pub(super) requests: Requests,
    /// This iteration's accepted events, written by the group commit.
    pub(super) batch: Batch,
    /// One chunk writer per stream (`Stream as usize`): records of good events, bad rows.
    chunks: [ChunkWriter; 2],
    jobs: Sender<UploadJob>,
    pub(super) shared: Arc<Shared>,
    pub(super) unsent_jobs: Vec<UploadJob>,
    /// TLS connections' plaintext, decrypted from what was read (empty without HTTPS).
    pub(super) plain_buf: Vec<u8>,
    /// Connections with output to commit and write this iteration.
    pub(super) flush_list: Vec<usize>,
    /// Connections whose output drained while their reading was paused: read them next iteration.
    pub(super) resume_list: Vec<usize>,
    /// HTTP/2 connections whose session has more to do without new input (it waited for room to write, or
    /// input arrived while answers were released): polled next iteration.
    pub(super) h2_due: Vec<usize>,
    write_error_until: Option<Instant>,
    pub(super) next_housekeeping: Instant,
    pub(super) closing_deadline: Option<Instant>,
    /// Time spent working rather than waiting: the saturation signal.
    busy: BusyClock,
}

/// Everything a worker's state is made of (its listeners go to its event loop).
pub struct Parts {
    pub index: usize,
    pub wake: Arc<Wake>,
    pub tls: Option<Arc<Tls>>,
    pub udp: Option<Datagrams>,
    pub quic: Option<Quic>,
    pub settings: WorkerSettings,
    pub requests: Requests,
    /// The good stream's chunk writer, then the bad rows'.
    pub chunks: [ChunkWriter; 2],
    pub jobs: Sender<UploadJob>,
    pub shared: Arc<Shared>,
}

impl Worker {
    pub fn new(parts: Parts) -> Worker {
        let Parts { index, wake, tls, udp, quic, settings, requests, chunks, jobs, shared } = parts;
        let tls = tls.map(|tls| {
            let follower = tls.published.follow();
            (tls, follower)
        });
        Worker {
            index,
            wake,
            plain_buf: if tls.is_some() { Vec::with_capacity(super::connection::READ_STEP) } else { Vec::new() },
            tls,
            udp,
            quic,
            udp_pending: false,
            udp_batched: 0,
            settings,
            conns: Slab::new(),
            requests,
            batch: Batch::with_capacity(64 * 1024),
            chunks,
            jobs,
            shared,
            unsent_jobs: Vec::new(),
            flush_list: Vec::new(),
            resume_list: Vec::new(),
            h2_due: Vec::new(),
            write_error_until: None,
            next_housekeeping: Instant::now() + HOUSEKEEPING,
            closing_deadline: None,
            busy: BusyClock::new(Instant::now()),
        }
    }

    pub(super) fn metrics(&self) -> &WorkerMetrics {
        &self.shared.workers[self.index]
    }

    /// The loop, on `io`, until the drain is over; then what is left is sealed and handed over.
    pub fn run(mut self, mut io: impl Io) -> io::Result<()> {
        loop {
            let before = Instant::now();
            self.busy.waits(before, &self.shared.workers[self.index]);
            io.wait(self.poll_timeout(before))?;
            let now = Instant::now();
            self.busy.woke(now);
            self.begin_iteration(now);
            io.dispatch(&mut self, now);
            if self.end_iteration(&mut io, now) {
                break;
            }
        }
        let ended = io.end(&mut self);
        self.finish();
        ended
    }

    /// What every request of this iteration is answered under.
    fn begin_iteration(&mut self, now: Instant) {
        add(&self.metrics().loop_iterations, 1);
        let accepting = self.accepting(now);
        self.requests.begin_iteration(now, accepting);
        if let Some((tls, served)) = self.tls.as_mut()
            && served.refresh(&tls.published)
            && let Some(quic) = self.quic.as_mut()
        {
            quic.use_certificate(served.value.quic.clone());
        }
    }

    /// After the events or completions were handled: resumed reads, housekeeping, group commit, flush, seal.
    /// True once the worker is done (the drain ended and its connections closed, or their deadline passed).
    fn end_iteration(&mut self, io: &mut impl Io, now: Instant) -> bool {
        for i in std::mem::take(&mut self.resume_list) {
            io.resume(self, i, now);
        }
        for i in std::mem::take(&mut self.h2_due) {
            if let Some(conn) = self.conns.get_mut(i) {
                self.requests.drive_h2(conn, &mut self.batch, true);
                self.after_input(i, false);
            }
        }
        if self.udp_pending {
            self.receive_datagrams();
        }
        if self.quic.as_ref().is_some_and(|q| q.pending) {
            self.receive_quic(now);
        }
        self.take_quic_handoffs(now);
        self.fire_quic_timers(now);
        if now >= self.next_housekeeping {
            self.housekeeping(io, now);
            self.busy.publish(now, &self.shared.workers[self.index]);
        }
        self.commit(now);
        self.flush_all(io, now);
        for stream in Stream::ALL {
            // After a failed spool write, the disk gets a pause before the next attempt.
            if self.chunks[stream as usize].seal_due(now) && self.write_error_until.is_none_or(|t| now >= t) {
                self.seal(stream, now);
            }
            if let Err(e) = self.chunks[stream as usize].sync_if_due(now) {
                tracing::error!(worker = self.index, error = %e, "fsync of the open chunk failed");
            }
        }
        if self.shared.phase() == Phase::Closing {
            if self.closing_deadline.is_none() {
                self.begin_closing(io, now);
            }
            let quic_open = self.quic.as_ref().map_or(0, Quic::open_connections);
            if (self.conns.is_empty() && quic_open == 0) || self.closing_deadline.is_some_and(|d| now >= d) {
                return true;
            }
        }
        false
    }

    fn poll_timeout(&self, now: Instant) -> Duration {
        if !self.resume_list.is_empty()
            || !self.h2_due.is_empty()
            || self.udp_pending
            || self.quic.as_ref().is_some_and(|q| q.pending)
        {
            return Duration::ZERO;
        }
        let mut until = self.next_housekeeping;
        if let Some(timer) = self.quic.as_ref().and_then(Quic::next_timer) {
            until = until.min(timer);
        }
        if let Some(age) = self.chunks.iter().filter_map(ChunkWriter::age_deadline).min() {
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
        if self.write_error_until.is_some_and(|t| now < t) || self.chunks.iter().any(ChunkWriter::is_backlogged) {
            Err(HttpError::SpoolWriteFailed)
        } else if self.shared.spool_full() {
            Err(HttpError::SpoolFull)
        } else {
            Ok(())
        }
    }

    /// Group commit: this iteration's events go to the spool, and only then may their responses leave. Each
    /// stream that has lines is one write; a stream without is none.
    fn commit(&mut self, now: Instant) {
        let events = self.batch.total_events();
        let mut durable = true;
        if events > 0 {
            let unix = self.requests.clock().unix_seconds();
            let datagrams = std::mem::take(&mut self.udp_batched);
            match self.commit_streams(now, unix) {
                Ok(()) => {
                    add(&self.metrics().events_accepted, events);
                    if datagrams > 0 {
                        add(&self.metrics().udp_datagrams[UdpResult::Stored as usize], datagrams);
                    }
                }
                Err(e) => {
                    durable = false;
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
                if conn.h2.is_some() {
                    // Its streams' answers leave now (503s if the write failed), encoded by h2 into the output.
                    if conn.h2.as_ref().is_some_and(|session| session.has_unread_input()) {
                        self.h2_due.push(i);
                    }
                    self.requests.release_h2(conn, &mut self.batch, durable);
                }
                conn.output.commit();
            }
        }
        self.quic_after_commit(now, durable);
    }

    /// Writes each stream's lines to its chunk. Should the second write fail after the first, the first's
    /// lines stay in the spool though their requests are answered 503: sent again, they are stored twice
    /// (at least once, never lost).
    fn commit_streams(&mut self, now: Instant, unix: i64) -> Result<(), SpoolWriteError> {
        for stream in Stream::ALL {
            let events = self.batch.events(stream);
            if events > 0 {
                let bytes = self.chunks[stream as usize].commit(self.batch.lines(stream), events, now, unix)?;
                self.shared.spool_grew(bytes);
                add(&self.metrics().spool_writes, 1);
            }
        }
        Ok(())
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
            if let Some(route) = conn.output.take_back_ingest() {
                conn.drop_input();
                self.requests.refuse(conn, Some(route), HttpError::SpoolWriteFailed);
            }
        }
    }

    /// Writes committed output (io_uring: submits its sends). Never reads: what a read would answer must wait
    /// for the next group commit.
    fn flush_all(&mut self, io: &mut impl Io, now: Instant) {
        while let Some(i) = self.flush_list.pop() {
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            conn.life.unqueue_flush();
            debug_assert_eq!(conn.output.uncommitted(), 0, "every connection with new output was committed");
            io.flush(self, i, now);
        }
    }

    /// All of a connection's output went out: it waits, closes, lingers or is read again.
    pub(super) fn written(&mut self, io: &mut impl Io, i: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        if let Some(session) = conn.h2.as_mut()
            && session.output_drained(0)
        {
            self.h2_due.push(i);
        }
        match conn.life.written() {
            AfterWrite::Keep => {}
            AfterWrite::Close => {
                conn.say_goodbye();
                self.close(io, i);
            }
            AfterWrite::Linger => conn.linger(now),
            AfterWrite::ReadAgain => self.resume_list.push(i),
        }
    }

    fn seal(&mut self, stream: Stream, now: Instant) {
        match self.chunks[stream as usize].seal() {
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
    pub(super) fn send_job(&mut self, job: UploadJob) {
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
            for stream in Stream::ALL {
                if !self.chunks[stream as usize].is_idle() {
                    self.seal(stream, now);
                }
            }
        }
        if !self.chunks.iter().all(ChunkWriter::is_idle) {
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
