//! Micro-benchmarks of the per-event work of one worker: request parsing, record building and the chunk
//! writer's group commit. `cargo bench --bench hot_path`; whole-system numbers come from scripts/bench.sh.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
#[path = "bodies.rs"]
mod bodies;
use bodies::{ndjson_100, post, segment_batch_100, segment_messages_as_ndjson};
use plutos::event::body::{BodyKind, append_body_events};
use plutos::event::clock::Clock;
use plutos::event::ids::RequestIds;
use plutos::event::query::{QueryScratch, append_query_object};
use plutos::event::record::{Emitter, Protocol, RecordBuilder, RequestMeta, Transport};
use plutos::http::{Method, Parse, parse_head};
use plutos::spool::ChunkConfig;
use plutos::spool::SpoolDirs;
use plutos::spool::batch::Batch;
use plutos::spool::chunk::ChunkWriter;
use plutos::spool::{Codec, Compression, Durability, Fsync};
use plutos::state::Shared;
use plutos::worker::connection::Connection;
use plutos::worker::request::Requests;

const PIXEL_QUERY: &[u8] =
    b"event=pageview&page=%2Fproducts%2F42%3Fcolor%3Dblue&ref=https%3A%2F%2Fwww.example.com%2Fsearch%3Fq%3Dshoes\
&uid=u-8f14e45fceea167a5a36&sid=s-3c59dc048e88&w=1920&h=1080&lang=en-US&tz=Europe%2FBerlin&ts=1764124014084";
const USER_AGENT: &[u8] =
    b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

fn pixel_request() -> Vec<u8> {
    [b"GET /e?".as_slice(), PIXEL_QUERY, b" HTTP/1.1\r\nHost: collector.example.com\r\nUser-Agent: ", USER_AGENT, b"\r\n\
Accept: image/avif,image/webp,*/*\r\nReferer: https://www.example.com/products/42\r\nAccept-Language: en-US,en;q=0.9\r\n\r\n"]
        .concat()
}

fn parse(c: &mut Criterion) {
    let request = pixel_request();
    let mut group = c.benchmark_group("parse_request");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pixel_get", |b| {
        b.iter(|| match parse_head(black_box(&request)) {
            Ok(Parse::Complete(head)) => black_box(head.len),
            _ => unreachable!("a complete request"),
        })
    });
    group.finish();
}

/// What a worker holds to turn one pixel request into a record.
struct PixelRecords {
    clock: Clock,
    builder: RecordBuilder,
    ids: RequestIds,
    scratch: QueryScratch,
}

impl PixelRecords {
    fn new() -> PixelRecords {
        PixelRecords {
            clock: Clock::new(),
            builder: RecordBuilder::default(),
            ids: RequestIds::new(0, 7),
            scratch: QueryScratch::default(),
        }
    }

    /// One request's work: its per-request parts, then its record.
    fn append(&mut self, out: &mut Vec<u8>) {
        let meta = RequestMeta {
            ip: "203.0.113.7",
            user_agent: USER_AGENT,
            method: Method::Get,
            path: b"/e",
            transport: Transport::Http,
            headers: b"",
            enrichment: b"",
            protocol: Protocol::Plutos,
            retry_count: None,
            visitor_id: None,
        };
        self.builder.start_request(&meta, &self.clock);
        self.builder.begin_record(out);
        append_query_object(out, black_box(PIXEL_QUERY), &mut self.scratch).unwrap();
        self.builder.finish_record(out, &mut self.ids);
    }
}

fn record(c: &mut Criterion) {
    let mut records = PixelRecords::new();
    let mut out = Vec::with_capacity(1 << 20);
    let mut group = c.benchmark_group("record_building");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pixel_query", |b| {
        b.iter(|| {
            if out.len() > (1 << 20) - 2048 {
                out.clear();
            }
            records.append(&mut out);
        })
    });
    group.finish();
}

fn ndjson_body(c: &mut Criterion) {
    let body = ndjson_100();
    let mut records = PixelRecords::new();
    let meta = RequestMeta {
        ip: "203.0.113.7",
        user_agent: USER_AGENT,
        method: Method::Post,
        path: b"/e",
        transport: Transport::Http,
        headers: b"",
        enrichment: b"",
        protocol: Protocol::Plutos,
        retry_count: None,
        visitor_id: None,
    };
    records.builder.start_request(&meta, &records.clock);
    let (mut out, mut minified) = (Vec::with_capacity(1 << 16), Vec::new());
    let mut group = c.benchmark_group("body_events");
    group.throughput(Throughput::Elements(100));
    group.bench_function("ndjson_100", |b| {
        b.iter(|| {
            out.clear();
            let body = black_box(body.as_bytes());
            let kind = BodyKind::Ndjson;
            let mut emit = Emitter::new(&mut out, &records.builder, &mut records.ids);
            append_body_events(kind, body, &mut emit, &mut minified, &mut records.scratch).unwrap();
            assert_eq!(emit.events(), 100);
        })
    });
    group.finish();
}

/// One connection's 16 pipelined GETs (the `get_pipelined` scenario's read) through framing, routing, records
/// and answers, without the socket.
fn pipelined_requests(c: &mut Criterion) {
    use clap::Parser;
    let args = plutos::Args::try_parse_from(["plutos"]).unwrap();
    let config = plutos::Config::from_args(&args, &[0]).unwrap().http;
    let edge = plutos::config::EdgeConfig::default();
    let mut requests = Requests::new(config, &edge, std::sync::Arc::new(Shared::new(1, 0, u64::MAX)), 0, 0);
    let mut batch = Batch::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, peer) = listener.accept().unwrap();
    let mut conn = Connection::new(
        mio::net::TcpStream::from_std(server),
        requests.peer(peer.ip(), Transport::Http),
        false,
        Instant::now(),
        None,
    );
    let burst = b"GET /e?test=me HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n".repeat(16);
    let ndjson = post("/e", "application/x-ndjson", &ndjson_100());
    let segment = post("/v1/batch", "application/json", &segment_batch_100());
    let same_events = post("/e", "application/x-ndjson", &segment_messages_as_ndjson());
    let mut group = c.benchmark_group("process");
    let cases = [
        ("pipelined_16", &burst, 16),
        ("post_ndjson_100", &ndjson, 100),
        ("post_segment_100", &segment, 100),
        ("post_segment_events_as_ndjson_100", &same_events, 100),
    ];
    for (name, input, events) in cases {
        group.throughput(Throughput::Elements(events));
        group.bench_function(name, |b| {
            b.iter(|| {
                assert_eq!(requests.process(&mut conn, black_box(input), &mut batch), input.len());
                assert_eq!(batch.events(plutos::spool::Stream::Good), events);
                conn.output.clear();
                batch.clear();
            })
        });
    }
    group.finish();
}

/// Group commits of 16 events (one pipelined connection's worth) to a spool file, per codec.
fn chunk_writer(c: &mut Criterion) {
    let mut records = PixelRecords::new();
    let mut batch = Vec::new();
    for _ in 0..16 {
        records.append(&mut batch);
    }
    let mut group = c.benchmark_group("chunk_commit_16_events");
    group.throughput(Throughput::Elements(16));
    for (name, codec, level) in [("gzip6", Codec::Gzip, 6), ("gzip1", Codec::Gzip, 1), ("zstd3", Codec::Zstd, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let dirs = SpoolDirs::create(dir.path()).unwrap();
        let settings = ChunkConfig {
            compression: Compression { codec, level },
            durability: Durability::Spool,
            fsync: Fsync::Never,
            max_bytes: 64 << 20,
            max_events: None,
            max_age: std::time::Duration::from_secs(3600),
        };
        let mut writer = ChunkWriter::new(0, plutos::spool::Stream::Good, "bench".into(), dirs, settings);
        group.bench_function(name, |b| {
            b.iter(|| {
                let now = Instant::now();
                writer.commit(black_box(&batch), 16, now, 1_764_124_014).unwrap();
                if writer.seal_due(now) {
                    writer.seal().unwrap();
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse, record, pipelined_requests, ndjson_body, chunk_writer);
criterion_main!(benches);
