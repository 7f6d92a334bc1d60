//! The floor of the benchmark: a minimal epoll HTTP responder. One thread; per readable connection it reads, counts
//! the request ends (`\r\n\r\n`) and writes one fixed 200 per request, the size of plutos's (a `Date` and
//! `Content-Length: 0`); it parses nothing else and stores nothing. A request carrying `Connection: close` (the
//! `get_close` scenario) gets it back and the connection ends. No HTTP server on epoll costs less per request,
//! so `bench/harness.py` reports plutos as a multiple of it.
//!
//! `cargo build --release --example floor`, then `PORT=127.0.0.1:8080 target/release/examples/floor`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

#[path = "support/floor.rs"]
mod floor;

struct Conn {
    stream: TcpStream,
    answers: floor::Answers,
}

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::var("PORT").unwrap_or_else(|_| "127.0.0.1:8080".into()).parse().expect("PORT");
    let mut listener = TcpListener::bind(addr)?;
    // As plutos's listeners: accepted sockets inherit TCP_NODELAY, no setsockopt per connection.
    socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 0usize;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    next += 1;
                    poll.registry().register(&mut stream, Token(next), Interest::READABLE | Interest::WRITABLE)?;
                    conns.insert(next, Conn { stream, answers: floor::Answers::default() });
                }
                continue;
            }
            let Token(id) = event.token();
            let Some(conn) = conns.get_mut(&id) else { continue };
            let mut gone = false;
            if event.is_readable() {
                loop {
                    match conn.stream.read(&mut buf) {
                        Ok(0) => {
                            gone = true;
                            break;
                        }
                        Ok(n) => conn.answers.take(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            gone = true;
                            break;
                        }
                    }
                }
            }
            while !conn.answers.out.is_empty() && !gone {
                match conn.stream.write(&conn.answers.out) {
                    Ok(n) => {
                        conn.answers.out.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => gone = true,
                }
            }
            if gone || (conn.answers.close && conn.answers.out.is_empty()) {
                conns.remove(&id);
            }
        }
    }
}
