//! The worker's loop on epoll (`IO_BACKEND=epoll`, or `auto` where io_uring is not allowed): edge-triggered
//! readiness for the connections, the UDP socket and the wake eventfd, level-triggered for the listeners;
//! `accept`, `read` and `write` on the sockets themselves.
//!
//! A connection is watched for input only, and for room to write only while a write is blocked (a socket is
//! writable at once: watching that from the start cost a wake-up per connection for nothing).
//!
//! A listener is watched level-triggered and one connection is accepted per readiness, as nginx does: epoll
//! reports the listener again while connections wait, so no `accept4` is spent learning that the queue is empty
//! (edge-triggered readiness would need that failing call after every burst: ~0.7 of a system call per
//! connection under `get_close`). A listener whose accept fails for want of descriptors is not watched until
//! the next housekeeping, so a full descriptor table does not spin the loop.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::connection::{Connection, Drained, READ_STEP};
use super::core::{Io, Listeners, Worker};
use crate::event::record::Transport;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const TLS_LISTENER: Token = Token(usize::MAX - 3);
const UDP: Token = Token(usize::MAX - 4);
const QUIC: Token = Token(usize::MAX - 5);

/// The epoll loop's state: its epoll instance, the events of the last wait, the listeners, and the read
/// buffer every connection's reads land in.
pub struct Epoll {
    poll: Poll,
    events: Events,
    listeners: Listeners,
    /// Whether each listener (HTTP, HTTPS) is in the epoll set now.
    watched: [bool; 2],
    /// By connection slot: watched for room to write (its last write was blocked).
    writing: Vec<bool>,
    read_buf: Vec<u8>,
}

/// A listener's slot in `watched`, and its token.
fn listener_slot(transport: Transport) -> (usize, Token) {
    match transport {
        Transport::Https | Transport::H2 => (1, TLS_LISTENER),
        Transport::Http | Transport::H2c | Transport::H3 | Transport::Udp => (0, LISTENER),
    }
}

impl Epoll {
    /// Registers the listeners, the worker's UDP socket and its wake.
    pub fn new(listeners: Listeners, worker: &mut Worker) -> io::Result<Epoll> {
        let poll = Poll::new()?;
        if let Some(udp) = worker.udp.as_mut() {
            poll.registry().register(&mut udp.socket, UDP, Interest::READABLE)?;
        }
        if let Some(quic) = worker.quic.as_mut() {
            poll.registry().register(&mut quic.datagrams.socket, QUIC, Interest::READABLE)?;
        }
        poll.registry().register(&mut SourceFd(&worker.wake.as_raw_fd()), WAKER, Interest::READABLE)?;
        let mut epoll = Epoll {
            poll,
            events: Events::with_capacity(1024),
            listeners,
            watched: [false; 2],
            writing: Vec::new(),
            read_buf: vec![0; READ_STEP],
        };
        for transport in [Transport::Http, Transport::Https] {
            epoll.watch_listener(transport, true)?;
        }
        Ok(epoll)
    }

    /// Adds the listener of `transport` to the epoll set, level-triggered, or takes it out.
    fn watch_listener(&mut self, transport: Transport, on: bool) -> io::Result<()> {
        let (slot, token) = listener_slot(transport);
        let Some(listener) = self.listeners.get(transport) else {
            return Ok(());
        };
        if self.watched[slot] == on {
            return Ok(());
        }
        // mio registers edge-triggered only; its epoll instance takes this registration beside its own, and
        // its events carry the token in the same field.
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token.0 as u64 };
        let op = if on { libc::EPOLL_CTL_ADD } else { libc::EPOLL_CTL_DEL };
        // SAFETY: epoll_ctl reads `event` (alive across the call) on two descriptors this struct owns.
        if unsafe { libc::epoll_ctl(self.poll.as_raw_fd(), op, listener.as_raw_fd(), &mut event) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.watched[slot] = on;
        Ok(())
    }

    /// Reads what connection `i` has and handles every complete request in it.
    fn read(&mut self, worker: &mut Worker, i: usize, now: Instant) {
        let Some(conn) = worker.conns.get_mut(i) else {
            return;
        };
        let (requests, batch) = (&mut worker.requests, &mut worker.batch);
        let received =
            conn.receive(&mut self.read_buf, &mut worker.plain_buf, now, |conn, data| requests.take(conn, data, batch));
        match received {
            Ok(paused_now) => worker.after_input(i, paused_now),
            Err(e) => worker.input_failed(self, i, &e),
        }
    }
}

impl Io for Epoll {
    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => Err(e),
            _ => Ok(()),
        }
    }

    fn dispatch(&mut self, worker: &mut Worker, now: Instant) {
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept(worker, Transport::Http, now),
                TLS_LISTENER => self.accept(worker, Transport::Https, now),
                UDP => worker.receive_datagrams(),
                QUIC => worker.receive_quic(now),
                WAKER => worker.wake.reset(),
                Token(i) => {
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.read(worker, i, now);
                    }
                    if event.is_writable() {
                        worker.queue_flush(i);
                    }
                }
            }
        }
        self.events = events;
    }

    /// One connection per call: the listener is level-triggered, so a queue with more reports again.
    /// Housekeeping's call watches a listener again that an earlier failure took out of the set.
    fn accept(&mut self, worker: &mut Worker, transport: Transport, now: Instant) {
        if !self.watched[listener_slot(transport).0] {
            if let Err(e) = self.watch_listener(transport, true) {
                tracing::warn!(worker = worker.index, error = %e, "cannot watch the listener again");
            }
            return;
        }
        let Some(listener) = self.listeners.get(transport) else {
            return;
        };
        match listener.accept() {
            Ok((stream, peer)) => {
                let Some(i) = worker.admit(stream, peer.ip(), transport, now) else {
                    return;
                };
                if let Err(e) = self.poll.registry().register(&mut worker.conns[i].stream, Token(i), Interest::READABLE)
                {
                    tracing::warn!(error = %e, "cannot register connection");
                    worker.close(self, i);
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) => {
                // EMFILE and friends: the connection waits in the backlog, and the listener, still readable,
                // is not watched until housekeeping tries again.
                tracing::warn!(worker = worker.index, error = %e, "accept failed");
                let _ = self.watch_listener(transport, false);
            }
        }
    }

    fn resume(&mut self, worker: &mut Worker, i: usize, now: Instant) {
        self.read(worker, i, now);
    }

    fn flush(&mut self, worker: &mut Worker, i: usize, now: Instant) {
        let Some(conn) = worker.conns.get_mut(i) else {
            return;
        };
        let drained = conn.write_out(now);
        let blocked = matches!(drained, Ok(Drained::Blocked));
        if self.writing.get(i).copied().unwrap_or(false) != blocked {
            // Room to write is watched exactly while a write is blocked: its edge brings the flush back.
            let interest = if blocked { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            if self.poll.registry().reregister(&mut conn.stream, Token(i), interest).is_err() {
                return worker.close(self, i);
            }
            if self.writing.len() <= i {
                self.writing.resize(i + 1, false);
            }
            self.writing[i] = blocked;
        }
        match drained {
            Err(_) => worker.close(self, i),
            // The writable edge brings it back; or the rest waits for the next group commit.
            Ok(Drained::Blocked | Drained::WaitsForCommit) => {}
            Ok(Drained::All) => worker.written(self, i, now),
        }
    }

    /// Dropping the stream closes it, which takes it out of the epoll set.
    fn close(&mut self, i: usize, conn: Connection) {
        if let Some(writing) = self.writing.get_mut(i) {
            *writing = false;
        }
        drop(conn);
    }

    fn stop_listening(&mut self, worker: &mut Worker) {
        for transport in [Transport::Http, Transport::Https] {
            let _ = self.watch_listener(transport, false);
        }
        self.listeners = Listeners::default();
        if let Some(udp) = worker.udp.as_mut() {
            let _ = self.poll.registry().deregister(&mut udp.socket);
        }
    }

    fn end(&mut self, _: &mut Worker) -> io::Result<()> {
        Ok(())
    }
}
