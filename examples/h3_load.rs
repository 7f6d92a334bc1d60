//! A load generator for HTTP/3, which neither wrk nor this machine's h2load speaks: quinn-proto's QUIC client
//! driven by this one thread over one UDP socket, plutos's own HTTP/3 framing and QPACK for the requests.
//!
//! - keep-alive (the default): `CONNECTIONS` connections, each keeping `STREAMS` `GET PATH` requests in flight
//!   for `SECONDS`;
//! - `--handshakes`: `CONNECTIONS` connections at a time, each making one request and closing, a new one in its
//!   place: full handshakes, or with `--resume` resumed ones (a TLS 1.3 ticket from the first connections).
//!
//! Prints wrk's REPORT line (bench/wrk/report.lua) so the harness reads it the same way.
//!
//! `cargo run --release --example h3_load -- 127.0.0.1:8443 /e?test=me 100 10 10 [--handshakes [--resume]]`

#[path = "support/any_certificate.rs"]
mod any_certificate;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use any_certificate::AnyCertificate;
use bytes::{Bytes, BytesMut};
use plutos::h3::{frame, qpack};
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{
    ClientConfig, Connection, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, Event, StreamEvent,
    StreamId, VarInt,
};

struct Options {
    server: SocketAddr,
    path: String,
    connections: usize,
    streams: usize,
    seconds: u64,
    handshakes: bool,
}

/// One connection of the load and what it has in flight.
struct Client {
    conn: Connection,
    /// When each request stream was opened, and its response's bytes so far.
    streams: HashMap<StreamId, (Instant, Vec<u8>)>,
    connected: bool,
    answered: u64,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    non2xx: u64,
    errors: u64,
    latencies: Vec<u64>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: h3_load ADDR PATH CONNECTIONS STREAMS SECONDS [--handshakes [--resume]]";
    let options = Options {
        server: args.get(1).and_then(|a| a.parse().ok()).expect(usage),
        path: args.get(2).cloned().expect(usage),
        connections: args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100),
        streams: args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10),
        seconds: args.get(5).and_then(|a| a.parse().ok()).unwrap_or(10),
        handshakes: args.iter().any(|a| a == "--handshakes"),
    };
    let resume = args.iter().any(|a| a == "--resume");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    tls.enable_early_data = false;
    if !resume {
        tls.resumption = rustls::client::Resumption::disabled();
    }
    let client_config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut endpoint = Endpoint::new(Arc::new(EndpointConfig::default()), None, false, None);
    let mut clients: HashMap<ConnectionHandle, Client> = HashMap::new();
    let mut tally = Tally::default();
    let start = Instant::now();
    let until = start + Duration::from_secs(options.seconds);
    let mut request = Vec::new();
    encode_request(&options.path, &mut request);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut recv = vec![0u8; 65_536];
    while Instant::now() < until || clients.values().any(|c| !c.streams.is_empty()) {
        let now = Instant::now();
        if now >= until + Duration::from_secs(5) {
            break;
        }
        // Keep the connections open (new ones in place of those that ended, while the run lasts).
        while now < until && clients.len() < options.connections {
            let (handle, conn) = endpoint.connect(now, client_config.clone(), options.server, "localhost").unwrap();
            clients.insert(handle, Client { conn, streams: HashMap::new(), connected: false, answered: 0 });
        }
        // Datagrams in.
        while let Ok((n, from)) = socket.recv_from(&mut recv) {
            let data = BytesMut::from(&recv[..n]);
            buf.clear();
            match endpoint.handle(now, from, None, None, data, &mut buf) {
                Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                    if let Some(client) = clients.get_mut(&handle) {
                        client.conn.handle_event(event);
                    }
                }
                Some(DatagramEvent::Response(transmit)) => {
                    let _ = socket.send_to(&buf[..transmit.size], transmit.destination);
                }
                _ => {}
            }
        }
        // Each connection: timers, events, requests, datagrams out.
        let mut next_timeout = now + Duration::from_millis(50);
        let mut ended = Vec::new();
        for (&handle, client) in clients.iter_mut() {
            if client.conn.poll_timeout().is_some_and(|t| t <= now) {
                client.conn.handle_timeout(now);
            }
            while let Some(event) = client.conn.poll_endpoint_events() {
                let drained = event.is_drained();
                if let Some(event) = endpoint.handle_event(handle, event) {
                    client.conn.handle_event(event);
                }
                if drained {
                    ended.push(handle);
                }
            }
            client.drive(now, until, &options, &request, &mut tally);
            loop {
                buf.clear();
                let Some(transmit) = client.conn.poll_transmit(now, 1, &mut buf) else {
                    break;
                };
                let _ = socket.send_to(&buf[..transmit.size], transmit.destination);
            }
            if let Some(t) = client.conn.poll_timeout() {
                next_timeout = next_timeout.min(t);
            }
        }
        for handle in ended {
            if let Some(client) = clients.remove(&handle)
                && !client.connected
            {
                tally.errors += 1;
            }
        }
        wait_readable(&socket, next_timeout.saturating_duration_since(Instant::now()));
    }
    let duration = start.elapsed().min(Duration::from_secs(options.seconds));
    let latencies = &mut tally.latencies;
    latencies.sort_unstable();
    let percentile = |p: usize| latencies.get(latencies.len() * p / 100).copied().unwrap_or(0);
    println!(
        "REPORT requests={} duration_us={} events_per_request=1 p50_us={} p90_us={} p99_us={} non2xx={} \
         socket_errors={}",
        tally.ok + tally.non2xx,
        duration.as_micros(),
        percentile(50),
        percentile(90),
        percentile(99),
        tally.non2xx,
        tally.errors,
    );
}

impl Client {
    fn drive(&mut self, now: Instant, until: Instant, options: &Options, request: &[u8], tally: &mut Tally) {
        while let Some(event) = self.conn.poll() {
            match event {
                Event::Connected => {
                    self.connected = true;
                    // The control stream, with empty SETTINGS.
                    if let Some(control) = self.conn.streams().open(Dir::Uni) {
                        let _ = self.conn.send_stream(control).write(&[0x00, 0x04, 0x00]);
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) => self.read(id, tally),
                Event::Stream(StreamEvent::Opened { dir: Dir::Uni }) => {
                    // The server's control stream: accepted, its bytes read and dropped as they come.
                    while let Some(id) = self.conn.streams().accept(Dir::Uni) {
                        self.read(id, tally);
                    }
                }
                _ => {}
            }
        }
        if !self.connected {
            return;
        }
        let wanted = match options.handshakes {
            // One request per connection, then it closes.
            true => usize::from(self.answered == 0 && self.streams.is_empty()),
            false => options.streams.saturating_sub(self.streams.len()),
        };
        if now < until {
            for _ in 0..wanted {
                let Some(id) = self.conn.streams().open(Dir::Bi) else {
                    break;
                };
                let mut send = self.conn.send_stream(id);
                let _ = send.write(request);
                let _ = send.finish();
                self.streams.insert(id, (now, Vec::new()));
            }
        }
        if options.handshakes && self.answered > 0 && self.streams.is_empty() && !self.conn.is_closed() {
            self.conn.close(now, VarInt::from_u32(0x100), Bytes::new());
        }
    }

    fn read(&mut self, id: StreamId, tally: &mut Tally) {
        let Some((_, bytes)) = self.streams.get_mut(&id) else {
            // A server unidirectional stream (control): drained unread.
            if let Ok(mut chunks) = self.conn.recv_stream(id).read(true) {
                while let Ok(Some(_)) = chunks.next(usize::MAX) {}
                let _ = chunks.finalize();
            }
            return;
        };
        let mut ended = false;
        if let Ok(mut chunks) = self.conn.recv_stream(id).read(true) {
            loop {
                match chunks.next(usize::MAX) {
                    Ok(Some(chunk)) => bytes.extend_from_slice(&chunk.bytes),
                    Ok(None) => {
                        ended = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            let _ = chunks.finalize();
        }
        if !ended {
            return;
        }
        let Some((opened, bytes)) = self.streams.remove(&id) else {
            return;
        };
        self.answered += 1;
        match status(&bytes) {
            Some(200..=299) => {
                tally.ok += 1;
                tally.latencies.push(opened.elapsed().as_micros() as u64);
            }
            Some(_) => tally.non2xx += 1,
            None => tally.errors += 1,
        }
    }
}

/// The status of a response stream's HEADERS frame.
fn status(bytes: &[u8]) -> Option<u16> {
    let header = frame::header(bytes)?;
    if header.kind != frame::HEADERS {
        return None;
    }
    let block = bytes.get(header.header_len..header.header_len + header.len as usize)?;
    let mut fields = qpack::Fields::default();
    qpack::decode(block, 64 * 1024, &mut fields).ok()?;
    let (_, value) = fields.iter().find(|(name, _)| *name == b":status")?;
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A GET request's HEADERS frame: `:method GET` and `:scheme https` from QPACK's static table, `:authority`
/// and `:path` as literals with its names.
fn encode_request(path: &str, out: &mut Vec<u8>) {
    let mut block = vec![0x00, 0x00, 0xc0 | 17, 0xc0 | 23];
    for (index, value) in [(0u8, "localhost"), (1u8, path)] {
        block.push(0x50 | index);
        assert!(value.len() < 127, "a short value");
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    frame::put_header(frame::HEADERS, block.len(), out);
    out.extend_from_slice(&block);
}

/// Waits at most `timeout` for the socket to be readable.
fn wait_readable(socket: &UdpSocket, timeout: Duration) {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd { fd: socket.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ms = timeout.as_millis().min(50) as i32;
    // SAFETY: poll reads and writes the one live pollfd.
    unsafe { libc::poll(&mut fd, 1, ms) };
}
