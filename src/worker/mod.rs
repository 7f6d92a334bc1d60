//! A worker: one pinned thread with its own listener, epoll loop, connections (`connection`: one socket's
//! buffers, its committed output boundary and its flags), request handling (`request`: the requests in a
//! connection's bytes, answered and their events batched) and chunk writer. It shares nothing with other workers
//! but atomics, takes no lock, and never waits for the uploader.
//!
//! One iteration of the loop:
//! 1. wait for readiness (bounded by the next timer: chunk age, housekeeping; zero while a connection whose
//!    reading was paused waits to be read again);
//! 2. accept, read and handle every ready or resumed connection, and once a second time out idle and slow
//!    ones — events go to the batch, responses to each connection's output, nothing is written to a socket;
//! 3. group commit: the batch goes to the open chunk with one `write(2)` (DURABILITY=spool); only then is
//!    every touched connection's committed boundary moved past its new responses (or, if the write failed,
//!    its acknowledgements replaced by a 503);
//! 4. flush: committed output is written — only now can a 2xx leave. Flushing never reads: a connection
//!    whose output drained while its reading was paused is queued for step 2 of the next iteration;
//! 5. seal the chunk if due and hand it to the uploader.

pub mod connection;
pub mod request;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::config::Fsync;
use crate::http::HttpError;
use crate::http::response::ConnectionHeader;
use crate::metrics::{WorkerMetrics, add};
use crate::spool::UploadJob;
use crate::spool::chunk::{ChunkWriter, SpoolWriteError};
use crate::state::{Phase, Shared};
use crate::worker::connection::Connection;
use crate::worker::request::Requests;

pub const LISTENER: Token = Token(usize::MAX - 1);
pub const WAKER: Token = Token(usize::MAX - 2);

const READ_BUFFER: usize = 64 * 1024;
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// After a failed spool write, ingest answers 503 for this long before trying the disk again.
const WRITE_ERROR_PAUSE: Duration = Duration::from_secs(1);

pub struct Worker {
    pub index: usize,
    pub poll: Poll,
    pub listener: Option<TcpListener>,
    pub conns: Slab<Connection>,
    pub requests: Requests,
    pub chunk: ChunkWriter,
    pub jobs: Sender<UploadJob>,
    pub shared: Arc<Shared>,
    pub max_connections: usize,
    unsent_jobs: Vec<UploadJob>,
    read_buf: Vec<u8>,
    /// Connections with output to commit and write this iteration.
    flush_list: Vec<usize>,
    /// Connections whose output drained while their reading was paused: read them next iteration.
    resume_list: Vec<usize>,
    write_error_until: Option<Instant>,
    next_housekeeping: Instant,
    closing_deadline: Option<Instant>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        poll: Poll,
        listener: TcpListener,
        requests: Requests,
        chunk: ChunkWriter,
        jobs: Sender<UploadJob>,
        shared: Arc<Shared>,
        max_connections: usize,
    ) -> Worker {
        Worker {
            index,
            poll,
            listener: Some(listener),
            conns: Slab::new(),
            requests,
            chunk,
            jobs,
            shared,
            max_connections,
            unsent_jobs: Vec::new(),
            read_buf: vec![0; READ_BUFFER],
            flush_list: Vec::new(),
            resume_list: Vec::new(),
            write_error_until: None,
            next_housekeeping: Instant::now() + HOUSEKEEPING,
            closing_deadline: None,
        }
    }

    fn metrics(&self) -> &WorkerMetrics {
        &self.shared.workers[self.index]
    }

    pub fn run(mut self) -> io::Result<()> {
        if let Some(listener) = self.listener.as_mut() {
            self.poll.registry().register(listener, LISTENER, Interest::READABLE)?;
        }
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            self.requests.clock.refresh();
            let now = Instant::now();
            add(&self.metrics().loop_iterations, 1);
            self.requests.accepting = self.accepting(now);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    WAKER => {}
                    Token(i) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(i, now);
                        }
                        if event.is_writable() {
                            self.queue_flush(i);
                        }
                    }
                }
            }
            for i in std::mem::take(&mut self.resume_list) {
                self.read(i, now);
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
                    break;
                }
            }
        }
        self.finish();
        Ok(())
    }

    fn poll_timeout(&self, now: Instant) -> Duration {
        if !self.resume_list.is_empty() {
            return Duration::ZERO;
        }
        let mut until = self.next_housekeeping;
        if let Some(age) = self.chunk.age_deadline() {
            // While the disk pauses after a failed write, sealing waits for the pause to end.
            until = until.min(self.write_error_until.map_or(age, |t| age.max(t)));
        }
        let mut timeout = until.saturating_duration_since(now);
        if let Fsync::Every(interval) = self.requests.config.fsync {
            timeout = timeout.min(interval);
        }
        if self.closing_deadline.is_some() {
            timeout = timeout.min(Duration::from_millis(50));
        }
        timeout
    }

    fn accepting(&self, now: Instant) -> Result<(), &'static str> {
        if self.write_error_until.is_some_and(|t| now < t) || self.chunk.is_backlogged() {
            Err("spool write failed")
        } else if self.shared.spool_full() {
            Err("spool is full")
        } else {
            Ok(())
        }
    }

    fn accept(&mut self, now: Instant) {
        let Some(listener) = self.listener.as_ref() else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    if self.conns.len() >= self.max_connections {
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
                    entry.insert(Connection::new(stream, peer, now));
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
    fn read(&mut self, i: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        let was_paused = conn.read_paused;
        if conn.read_requests(&mut self.read_buf, &mut self.requests, now).is_err() {
            self.close(i);
            return;
        }
        if conn.read_paused && !was_paused {
            add(&self.shared.workers[self.index].read_pauses, 1);
        }
        if conn.unsent() > 0 || conn.close_after_flush || conn.peer_closed {
            self.queue_flush(i);
        }
    }

    fn queue_flush(&mut self, i: usize) {
        if let Some(conn) = self.conns.get_mut(i) {
            if !conn.queued_for_flush {
                conn.queued_for_flush = true;
                self.flush_list.push(i);
            }
        }
    }

    /// Group commit: this iteration's events go to the spool, and only then may their responses leave.
    fn commit(&mut self, now: Instant) {
        let events = self.requests.batch_events;
        if events > 0 {
            let unix = self.requests.clock.unix_seconds();
            match self.chunk.commit(&self.requests.batch, events, now, unix) {
                Ok(bytes) => {
                    self.shared.spool_grew(bytes);
                    add(&self.metrics().events_accepted, events);
                    add(&self.metrics().spool_writes, 1);
                }
                Err(e) => {
                    self.spool_write_failed(e, now);
                    self.take_back_acknowledgements();
                }
            }
        }
        self.requests.batch.clear();
        self.requests.batch_events = 0;
        let answered = std::mem::take(&mut self.requests.requests_seen);
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
        self.requests.accepting = Err("spool write failed");
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
            if conn.take_back_ingest() {
                conn.drop_input();
                let error = HttpError::Unavailable("spool write failed");
                self.requests.reject(conn, error, false, ConnectionHeader::Close);
            }
        }
    }

    /// Writes committed output. Never reads: what a read would answer must wait for the next group commit.
    fn flush_all(&mut self, now: Instant) {
        while let Some(i) = self.flush_list.pop() {
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            conn.queued_for_flush = false;
            debug_assert_eq!(conn.uncommitted(), 0, "every connection with new output was committed this iteration");
            match conn.write_out(now) {
                Err(_) => self.close(i),
                Ok(false) => {} // the writable edge brings it back
                Ok(true) if conn.peer_closed => self.close(i),
                Ok(true) if conn.close_after_flush => conn.linger(now),
                Ok(true) if conn.read_paused => {
                    conn.read_paused = false;
                    self.resume_list.push(i);
                }
                Ok(true) => {}
            }
        }
    }

    fn close(&mut self, i: usize) {
        if self.conns.try_remove(i).is_some() {
            self.shared.workers[self.index].connections_open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
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

    fn housekeeping(&mut self, now: Instant) {
        self.next_housekeeping = now + HOUSEKEEPING;
        let pending = std::mem::take(&mut self.unsent_jobs);
        for job in pending {
            self.send_job(job);
        }
        self.accept(now);
        let header_timeout = self.requests.config.header_timeout;
        let idle_timeout = self.requests.config.idle_timeout;
        let mut expired = Vec::new();
        let mut timed_out = Vec::new();
        for (i, conn) in self.conns.iter() {
            if let Some(until) = conn.lingering_until {
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
            conn.drop_input();
            conn.request_started = None;
            self.requests.reject(conn, HttpError::RequestTimeout, false, ConnectionHeader::Close);
            self.queue_flush(i);
        }
    }

    /// The drain is over: stop accepting; idle connections close now, the others finish their request.
    fn begin_closing(&mut self, now: Instant) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let config = &self.requests.config;
        self.closing_deadline =
            Some(now + config.header_timeout.min(config.shutdown_timeout.max(Duration::from_secs(1))));
        let idle: Vec<usize> = self
            .conns
            .iter_mut()
            .filter_map(|(i, conn)| {
                conn.inflight_at_close = conn.has_partial_request();
                (!conn.inflight_at_close && conn.unsent() == 0 && conn.lingering_until.is_none()).then_some(i)
            })
            .collect();
        for i in idle {
            self.close(i);
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
