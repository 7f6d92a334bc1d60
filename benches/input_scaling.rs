//! CPU per input byte as hostile inputs grow ×1, ×4, ×16: a form or query with many distinct keys, a chunked
//! body trickled in 200-byte pieces, and a request head trickled the same way. Criterion reports each in bytes
//! per second; flat figures across the three sizes mean cost linear in input size (a quadratic step shows up as
//! a throughput that falls ×4 per step). `cargo bench --bench input_scaling`.

use std::hint::black_box;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use plutos::event::query::{QueryScratch, append_query_object};
use plutos::spool::batch::Batch;
use plutos::state::Shared;
use plutos::worker::connection::Connection;
use plutos::worker::request::Requests;

const SCALES: [usize; 3] = [1, 4, 16];
/// How much a trickling client sends per write.
const PIECE: usize = 200;

/// `k0=v&k1=v&…`: every key distinct, the case where comparing keys with each other costs the most.
fn distinct_keys(keys: usize) -> Vec<u8> {
    (0..keys).map(|i| format!("key{i}=value")).collect::<Vec<_>>().join("&").into_bytes()
}

fn many_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("query_distinct_keys");
    let mut scratch = QueryScratch::default();
    let mut out = Vec::new();
    for scale in SCALES {
        let query = distinct_keys(60 * scale);
        group.throughput(Throughput::Bytes(query.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(format!("x{scale}")), &query, |b, query| {
            b.iter(|| {
                out.clear();
                let _ = black_box(append_query_object(&mut out, black_box(query), &mut scratch));
            })
        });
    }
    group.finish();
}

/// One worker's request state and one real connection to it, fed by `client`.
struct Trickle {
    requests: Requests,
    batch: Batch,
    conn: Connection,
    client: TcpStream,
    read_buf: Vec<u8>,
}

impl Trickle {
    fn new() -> Trickle {
        let args = plutos::Args::try_parse_from(["plutos", "--max-body-bytes", "4MiB"]).unwrap();
        let config = plutos::Config::from_args(&args, &[0]).unwrap().http;
        let shared = Arc::new(Shared::new(1, 0, u64::MAX));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let requests = Requests::new(config, &plutos::config::EdgeConfig::default(), shared, 0, 0);
        let conn = Connection::new(
            mio::net::TcpStream::from_std(server),
            requests.peer(peer.ip(), plutos::event::record::Transport::Http),
            false,
            Instant::now(),
            None,
        );
        Trickle { requests, batch: Batch::default(), conn, client, read_buf: vec![0; 64 * 1024] }
    }

    /// Sends `request` in pieces, letting the connection read after each; returns the answer bytes.
    fn send(&mut self, request: &[u8]) -> usize {
        for piece in request.chunks(PIECE) {
            self.client.write_all(piece).unwrap();
            let (requests, batch) = (&mut self.requests, &mut self.batch);
            let handle = |conn: &mut Connection, data: &[u8]| requests.process(conn, data, batch);
            self.conn.receive(&mut self.read_buf, &mut Vec::new(), Instant::now(), handle).unwrap();
        }
        let out = self.conn.output.buf();
        let answered = out.len();
        assert!(answered > 0 && out.starts_with(b"HTTP/1.1 200"), "one whole request answered 200");
        self.conn.output.clear();
        self.batch.clear();
        answered
    }
}

fn trickled(c: &mut Criterion) {
    let mut group = c.benchmark_group("trickled_200_byte_pieces");
    group.sample_size(10);
    let mut trickle = Trickle::new();
    for scale in SCALES {
        // A chunked form body of 64 KiB × scale on the wire, in chunks of 16 bytes: many chunk-size lines.
        let form = format!("pad={}", "x".repeat(64 * 1024 * scale));
        let mut body = Vec::new();
        for data in form.as_bytes().chunks(16) {
            if body.len() + data.len() + 6 > 64 * 1024 * scale - 5 {
                break;
            }
            body.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let request = [
            b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
                .as_slice(),
            &body,
        ]
        .concat();
        group.throughput(Throughput::Bytes(request.len() as u64));
        group.bench_with_input(BenchmarkId::new("chunked_body", format!("x{scale}")), &request, |b, request| {
            b.iter(|| trickle.send(request))
        });

        // A request head of ~1000 bytes × scale (under the 16 KiB limit) in 12 header lines.
        let value = "v".repeat((1000 * scale - 60) / 12 - 10);
        let headers: String = (0..12).map(|i| format!("X-H{i:02}: {value}\r\n")).collect();
        let request = format!("GET /e?head=1 HTTP/1.1\r\nHost: t\r\n{headers}\r\n").into_bytes();
        group.throughput(Throughput::Bytes(request.len() as u64));
        group.bench_with_input(BenchmarkId::new("head", format!("x{scale}")), &request, |b, request| {
            b.iter(|| trickle.send(request))
        });
    }
    group.finish();
}

criterion_group!(benches, many_keys, trickled);
criterion_main!(benches);
