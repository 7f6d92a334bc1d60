//! The ingest path of one scenario's request, run a fixed number of times through a worker's request handling
//! (the front end a connection's bytes go to, framing, routing, the protocol, records, answers; no socket I/O, no
//! compression), for instruction counts:
//! unlike wall-clock figures on a shared VM, callgrind's total is the same run after run.
//!
//! ```sh
//! cargo build --release --example ingest_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/ingest_cost segment 200
//! ```
//!
//! Scenarios: `get` (`get_simple`'s `GET /e?test=me`), `ndjson` (`post_ndjson`'s body to `/e`), `segment`
//! (`post_segment_batch`'s to `/v1/batch`), `segment-as-ndjson` (the same 100 Segment messages as NDJSON to `/e`:
//! the protocol's own cost, like for like), `otlp` (OTLP/HTTP Protobuf, `otlp_export_100`'s 100 log records to
//! `/v1/logs`) and `otlp-as-ndjson` (those records' `raw_data` as NDJSON to `/e`, like for like).

#[path = "../benches/bodies.rs"]
mod bodies;
#[path = "support/otlp_bodies.rs"]
mod otlp_bodies;

use std::time::Instant;

use clap::Parser;
use plutos::spool::batch::Batch;
use plutos::state::Shared;
use plutos::worker::connection::Connection;
use plutos::worker::request::Requests;

fn main() {
    let mut argv = std::env::args().skip(1);
    let scenario = argv.next().unwrap_or_else(|| "segment".into());
    let rounds: usize = argv.next().and_then(|n| n.parse().ok()).unwrap_or(200);
    let request = match scenario.as_str() {
        "get" => b"GET /e?test=me HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n".to_vec(),
        "ndjson" => bodies::post("/e", "application/x-ndjson", &bodies::ndjson_100()),
        "segment" => bodies::post("/v1/batch", "application/json", &bodies::segment_batch_100()),
        "segment-as-ndjson" => bodies::post("/e", "application/x-ndjson", &bodies::segment_messages_as_ndjson()),
        "otlp" => {
            let body = otlp_bodies::otlp_100();
            let head = format!(
                "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/x-protobuf\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            [head.as_bytes(), &body].concat()
        }
        "otlp-as-ndjson" => bodies::post("/e", "application/x-ndjson", &otlp_bodies::otlp_events_as_ndjson()),
        other => panic!("no scenario {other:?}: get, ndjson, segment, segment-as-ndjson, otlp, otlp-as-ndjson"),
    };
    let args = plutos::Args::try_parse_from(["plutos"]).unwrap();
    let config = plutos::Config::from_args(&args, &[0]).unwrap();
    let shared = std::sync::Arc::new(Shared::new(1, 0, u64::MAX));
    let mut requests = Requests::new(config.http, &config.edge, shared, 0, 0);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, peer) = listener.accept().unwrap();
    let mut conn = Connection::new(
        mio::net::TcpStream::from_std(server),
        requests.peer(peer.ip(), plutos::event::record::Transport::Http),
        false,
        Instant::now(),
        None,
    );
    let mut batch = Batch::default();
    let mut events = 0;
    for _ in 0..rounds {
        requests.begin_iteration(Instant::now(), Ok(()));
        assert_eq!(requests.take(&mut conn, &request, &mut batch), request.len());
        events += batch.total_events();
        conn.output.clear();
        batch.clear();
    }
    println!("{scenario}: {rounds} requests, {events} events");
}
