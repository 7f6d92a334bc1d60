//! A load generator for full TLS handshakes, which wrk cannot make (it offers the previous session on every
//! reconnect, so the server resumes): each of `CONNECTIONS` threads connects, does a full TLS 1.3 handshake
//! (rustls, no session store, the server's certificate not verified: the load measures the server), sends
//! `GET /e?test=me` with `Connection: close`, reads the answer and closes, for `SECONDS`. Prints wrk's REPORT line
//! (bench/wrk/report.lua) so the harness reads it the same way.
//!
//! `cargo run --release --example tls_load -- 127.0.0.1:8081 100 10`

#[path = "support/any_certificate.rs"]
mod any_certificate;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use any_certificate::AnyCertificate;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = args.get(1).and_then(|a| a.parse().ok()).expect("usage: tls_load ADDR CONNECTIONS SECONDS");
    let connections: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    // Every connection a full handshake.
    config.resumption = rustls::client::Resumption::disabled();
    let config = Arc::new(config);
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let config = config.clone();
            std::thread::spawn(move || {
                let (mut latencies, mut non2xx, mut errors) = (Vec::new(), 0u64, 0u64);
                while Instant::now() < until {
                    let began = Instant::now();
                    match one_request(addr, &config) {
                        Ok(true) => latencies.push(began.elapsed().as_micros() as u64),
                        Ok(false) => non2xx += 1,
                        Err(_) => errors += 1,
                    }
                }
                (latencies, non2xx, errors)
            })
        })
        .collect();
    let (mut latencies, mut non2xx, mut errors) = (Vec::new(), 0, 0);
    for thread in threads {
        let (l, n, e) = thread.join().unwrap();
        latencies.extend(l);
        non2xx += n;
        errors += e;
    }
    let duration = start.elapsed();
    latencies.sort_unstable();
    let percentile = |p: usize| latencies.get(latencies.len() * p / 100).copied().unwrap_or(0);
    println!(
        "REPORT requests={} duration_us={} events_per_request=1 p50_us={} p90_us={} p99_us={} non2xx={non2xx} \
         socket_errors={errors}",
        latencies.len() as u64 + non2xx,
        duration.as_micros(),
        percentile(50),
        percentile(90),
        percentile(99),
    );
}

/// One connection, one full handshake, one request; whether it was answered 200.
fn one_request(addr: SocketAddr, config: &Arc<ClientConfig>) -> std::io::Result<bool> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let session = ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(session, tcp);
    stream.write_all(b"GET /e?test=me HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        // A server that closes without close_notify after its answer: the answer is still whole.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}
