//! The worker's loop on epoll (`IO_BACKEND=epoll`, or `auto` where io_uring is not allowed): edge-triggered
//! readiness for the listeners, the connections, the UDP socket and the wake eventfd; `accept`, `read` and
//! `write` on the sockets themselves.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};

use super::Worker;
use crate::metrics::add;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const TLS_LISTENER: Token = Token(usize::MAX - 3);
const UDP: Token = Token(usize::MAX - 4);

impl Worker {
    pub(super) fn run_epoll(mut self) -> io::Result<()> {
        let poll = self.poll.as_ref().expect("created with the worker");
        if let Some(listener) = self.listener.as_mut() {
            poll.registry().register(listener, LISTENER, Interest::READABLE)?;
        }
        if let Some(listener) = self.tls_listener.as_mut() {
            poll.registry().register(listener, TLS_LISTENER, Interest::READABLE)?;
        }
        if let Some(udp) = self.udp.as_mut() {
            poll.registry().register(&mut udp.socket, UDP, Interest::READABLE)?;
        }
        poll.registry().register(&mut SourceFd(&self.wake.as_raw_fd()), WAKER, Interest::READABLE)?;
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            let poll = self.poll.as_mut().expect("created with the worker");
            if let Err(e) = poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let now = Instant::now();
            self.begin_iteration(now);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_ready(now, false),
                    TLS_LISTENER => self.accept_ready(now, true),
                    UDP => self.receive_datagrams(),
                    WAKER => self.wake.reset(),
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
            if self.end_iteration(now) {
                break;
            }
        }
        self.finish();
        Ok(())
    }

    /// Accepts what the HTTP listener, or with `https` the HTTPS one, has waiting.
    pub(super) fn accept_ready(&mut self, now: Instant, https: bool) {
        loop {
            let listener = match https {
                false => self.listener.as_ref(),
                true => self.tls_listener.as_ref(),
            };
            let Some(listener) = listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    let Some(i) = self.admit(stream, peer.ip(), https, now) else {
                        continue;
                    };
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    let poll = self.poll.as_ref().expect("the epoll loop has its epoll instance");
                    if let Err(e) = poll.registry().register(&mut self.conns[i].stream, Token(i), interest) {
                        tracing::warn!(error = %e, "cannot register connection");
                        self.close(i);
                    }
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
    pub(super) fn read(&mut self, i: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        let (requests, batch) = (&mut self.requests, &mut self.batch);
        let received = conn
            .receive(&mut self.read_buf, &mut self.plain_buf, now, |conn, data| requests.process(conn, data, batch));
        match received {
            Err(e) => return self.input_failed(i, &e),
            Ok(true) => add(&self.shared.workers[self.index].read_pauses, 1),
            Ok(false) => {}
        }
        self.after_input(i);
    }

    /// Writes a connection's committed output.
    pub(super) fn write(&mut self, i: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        match conn.write_out(now) {
            Err(_) => self.close(i),
            Ok(false) => {} // the writable edge brings it back
            Ok(true) => self.written(i, now),
        }
    }

    /// The drain ended: the listeners and the UDP socket close.
    pub(super) fn stop_listening_epoll(&mut self) {
        let poll = self.poll.as_ref().expect("the epoll loop has its epoll instance");
        for mut listener in [self.listener.take(), self.tls_listener.take()].into_iter().flatten() {
            let _ = poll.registry().deregister(&mut listener);
        }
        if let Some(mut udp) = self.udp.take() {
            let _ = poll.registry().deregister(&mut udp.socket);
        }
    }
}
