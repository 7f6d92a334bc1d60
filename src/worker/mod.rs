//! A worker: one pinned thread with its own listeners, event loop, connections, request handling and chunk
//! writer. It shares nothing with other workers but atomics, takes no lock, and never waits for the uploader.
//!
//! - `core`: the worker's state, the loop both event loops share, and `Io`, what each of them implements:
//!   `epoll` (readiness, then `accept`/`read`/`write`) and `ring` (completions of io_uring's multishot
//!   accepts and receives and of its sends); `IO_BACKEND` picks one at start.
//! - `connections`: admitting a connection, its input, timeouts, closing; `connection`: one socket's buffers,
//!   its TLS session and the committed boundary its answers wait behind; `lifecycle`: where it is in its life.
//! - `request`: the requests in a connection's bytes, answered and their events batched; `edge`: who may
//!   send and who sent.
//! - `h2`: one HTTP/2 connection's session, driven by the loop; `quic` and `quic_steps`: the QUIC endpoint
//!   (HTTP/3) on its own UDP socket, and its steps in each iteration.
//! - `udp` and `datagrams`: the UDP socket and the datagrams taken into the batch; `wake`: the eventfd that
//!   ends a worker's wait.
//!
//! One iteration of the loop (`core::Worker::run`):
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
mod core;
mod datagrams;
mod edge;
mod epoll;
mod h2;
pub mod lifecycle;
pub mod quic;
mod quic_steps;
pub mod request;
mod ring;
pub mod udp;
pub mod wake;

use std::io;

pub use core::{Parts, WorkerSettings};

use core::{Listeners, Worker};
use epoll::Epoll;
use mio::net::TcpListener;
use ring::Ring;

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
    pub backend: Backend,
    /// The HTTP listener (`PORT`) and the HTTPS one (`TLS_PORT`; its certificate is in `parts.tls`).
    pub listener: Option<TcpListener>,
    pub tls_listener: Option<TcpListener>,
    pub parts: Parts,
}

/// Runs a worker on its own (already pinned) thread until the drain is over; then it seals and hands over
/// what is left. The event loop is set up here, on the thread that drives it (io_uring's single issuer).
pub fn run(setup: WorkerSetup) -> io::Result<()> {
    let WorkerSetup { backend, listener, tls_listener, parts } = setup;
    let mut worker = Worker::new(parts);
    let listeners = Listeners { http: listener, https: tls_listener };
    match backend {
        Backend::Epoll => {
            let io = Epoll::new(listeners, &mut worker)?;
            worker.run(io)
        }
        Backend::Uring => {
            let io = Ring::new(listeners, &worker)?;
            worker.run(io)
        }
    }
}
