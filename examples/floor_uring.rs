//! The io_uring floor of the benchmark: `examples/floor.rs`'s behaviour (per request end one fixed 200 the size of
//! plutos's, `Connection: close` echoed and the connection ended, nothing parsed or stored) on the ring plutos's
//! `IO_BACKEND=uring` loop uses: one thread, `SINGLE_ISSUER | DEFER_TASKRUN` (+ `NO_SQARRAY`), the ring fd
//! registered, one multishot accept, one multishot receive per connection from a provided-buffer ring, plain
//! sends, a close submitted to the ring after the receive is cancelled, and one `io_uring_enter` (submit + wait)
//! per loop iteration. TCP_NODELAY is set once on the listener, which accepted sockets inherit. It tells what the
//! ring itself can give on this kernel before plutos pays for anything.
//!
//! `cargo build --release --example floor_uring`, then `PORT=127.0.0.1:8080 target/release/examples/floor_uring`.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};

use io_uring::squeue::Entry;
use io_uring::{cqueue, opcode, types};
use plutos::uring::buffers::BufRing;

const ACCEPT: u64 = 1 << 62;
const SEND: u64 = 1 << 61;
const CANCELLED: u64 = 1 << 60;
const GROUP: u16 = 0;

#[path = "support/floor.rs"]
mod floor;

struct Conn {
    fd: RawFd,
    /// Answers not yet sent.
    answers: floor::Answers,
    /// Answers the send in flight reads (non-empty while one is); `answers.out` grows meanwhile without moving
    /// them.
    flight: Vec<u8>,
    /// Its receive ended (EOF, an error, or cancelled): it closes once no send is in flight.
    gone: bool,
}

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::var("PORT").unwrap_or_else(|_| "127.0.0.1:8080".into()).parse().expect("PORT");
    let listener = TcpListener::bind(addr)?;
    socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
    let mut ring = plutos::uring::ring(1024, 8)?;
    let (mut submitter, mut sq, mut cq) = ring.split();
    submitter.register_ring_fd()?;
    let mut buffers = BufRing::new(&submitter, GROUP, 4096, 4096)?;
    let mut pending: Vec<Entry> = vec![accept(&listener)];
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next = 0u64;
    loop {
        for entry in pending.drain(..) {
            // SAFETY: the only buffer an entry points to, a connection's `flight`, is not touched until the send's
            // completion, and the connection is not removed while it is non-empty.
            while unsafe { sq.push(&entry) }.is_err() {
                sq.sync();
                submitter.submit()?;
                sq.sync();
            }
        }
        sq.sync();
        match submitter.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) || e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => return Err(e),
        }
        cq.sync();
        for cqe in &mut cq {
            let (data, result, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            if data == ACCEPT {
                if result >= 0 {
                    next += 1;
                    let conn = Conn { fd: result, answers: floor::Answers::default(), flight: Vec::new(), gone: false };
                    pending.push(receive(conn.fd, next));
                    conns.insert(next, conn);
                }
                if !cqueue::more(flags) {
                    pending.push(accept(&listener));
                }
                continue;
            }
            if data & CANCELLED != 0 {
                continue;
            }
            let id = data & !SEND;
            let Some(conn) = conns.get_mut(&id) else {
                if let Some(bid) = cqueue::buffer_select(flags) {
                    buffers.give_back(bid);
                }
                continue;
            };
            if data & SEND != 0 {
                if result < 0 {
                    conn.flight.clear();
                    conn.gone = true;
                } else {
                    conn.flight.drain(..result as usize);
                }
            } else if result > 0 {
                let bid = cqueue::buffer_select(flags).expect("a receive names its buffer");
                conn.answers.take(buffers.filled(bid, result as usize));
                buffers.give_back(bid);
                if !cqueue::more(flags) && !conn.answers.close {
                    pending.push(receive(conn.fd, id));
                }
            } else if result == -libc::ENOBUFS {
                pending.push(receive(conn.fd, id));
            } else {
                conn.gone = true; // EOF or an error: its multishot receive has ended
            }
            if data & SEND != 0 && !conn.flight.is_empty() && !conn.gone {
                pending.push(send(conn, id)); // the rest of a short send
            } else if conn.flight.is_empty() && !conn.answers.out.is_empty() && !conn.gone {
                std::mem::swap(&mut conn.answers.out, &mut conn.flight);
                pending.push(send(conn, id));
            }
            let done = conn.gone || (conn.answers.close && conn.answers.out.is_empty() && conn.flight.is_empty());
            if done && conn.flight.is_empty() {
                let conn = conns.remove(&id).expect("looked up above");
                if !conn.gone {
                    pending.push(opcode::AsyncCancel::new(id).build().user_data(CANCELLED));
                }
                pending.push(opcode::Close::new(types::Fd(conn.fd)).build().user_data(CANCELLED));
            }
        }
    }
}

fn accept(listener: &TcpListener) -> Entry {
    opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd())).build().user_data(ACCEPT)
}

fn send(conn: &Conn, id: u64) -> Entry {
    opcode::Send::new(types::Fd(conn.fd), conn.flight.as_ptr(), conn.flight.len() as u32).build().user_data(SEND | id)
}

fn receive(fd: RawFd, id: u64) -> Entry {
    opcode::RecvMulti::new(types::Fd(fd), GROUP).build().user_data(id)
}
