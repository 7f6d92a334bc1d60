//! The worker's loop on epoll (`IO_BACKEND=epoll`, or `auto` where io_uring is not allowed): edge-triggered
//! readiness for the listeners, the connections, the UDP socket and the wake eventfd; `accept`, `read` and
//! `write` on the sockets themselves.

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

/// The epoll loop's state: its epoll instance, the events of the last wait, the listeners, and the read
/// buffer every connection's reads land in.
pub struct Epoll {
    poll: Poll,
    events: Events,
    listeners: Listeners,
    read_buf: Vec<u8>,
}

impl Epoll {
    /// Registers the listeners, the worker's UDP socket and its wake.
    pub fn new(mut listeners: Listeners, worker: &mut Worker) -> io::Result<Epoll> {
        let poll = Poll::new()?;
        for (transport, listener) in listeners.each() {
            let token = if transport == Transport::Https { TLS_LISTENER } else { LISTENER };
            poll.registry().register(listener, token, Interest::READABLE)?;
        }
        if let Some(udp) = worker.udp.as_mut() {
            poll.registry().register(&mut udp.socket, UDP, Interest::READABLE)?;
        }
        poll.registry().register(&mut SourceFd(&worker.wake.as_raw_fd()), WAKER, Interest::READABLE)?;
        Ok(Epoll { poll, events: Events::with_capacity(1024), listeners, read_buf: vec![0; READ_STEP] })
    }

    /// Reads what connection `i` has and handles every complete request in it.
    fn read(&mut self, worker: &mut Worker, i: usize, now: Instant) {
        let Some(conn) = worker.conns.get_mut(i) else {
            return;
        };
        let (requests, batch) = (&mut worker.requests, &mut worker.batch);
        let received = conn
            .receive(&mut self.read_buf, &mut worker.plain_buf, now, |conn, data| requests.process(conn, data, batch));
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

    fn accept(&mut self, worker: &mut Worker, transport: Transport, now: Instant) {
        loop {
            let Some(listener) = self.listeners.get(transport) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    let Some(i) = worker.admit(stream, peer.ip(), transport, now) else {
                        continue;
                    };
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = self.poll.registry().register(&mut worker.conns[i].stream, Token(i), interest) {
                        tracing::warn!(error = %e, "cannot register connection");
                        worker.close(self, i);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: the connection waits in the backlog; housekeeping retries.
                    tracing::warn!(worker = worker.index, error = %e, "accept failed");
                    return;
                }
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
        match conn.write_out(now) {
            Err(_) => worker.close(self, i),
            // The writable edge brings it back; or the rest waits for the next group commit.
            Ok(Drained::Blocked | Drained::WaitsForCommit) => {}
            Ok(Drained::All) => worker.written(self, i, now),
        }
    }

    /// Dropping the stream closes it, which takes it out of the epoll set.
    fn close(&mut self, _: usize, conn: Connection) {
        drop(conn);
    }

    fn stop_listening(&mut self, worker: &mut Worker) {
        for (_, listener) in self.listeners.each() {
            let _ = self.poll.registry().deregister(listener);
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
