//! The request bodies of the benchmark's gRPC scenarios (bench/harness.py sends them with h2load): into DIR,
//! `send_100.bin` — a `plutos.v1.Collector/Send` call with the 100 events of `post_ndjson` — and `otlp_100.bin` —
//! an OTLP `LogsService/Export` call with 100 log records of the same data (`support/otlp_bodies.rs`). Each is one
//! gRPC length-prefixed message, uncompressed.
//!
//! `cargo run --release --example grpc_bodies -- DIR`

#[path = "support/otlp_bodies.rs"]
mod otlp_bodies;

use plutos::grpc::frame;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: grpc_bodies DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("send_100.bin"), frame(&otlp_bodies::send_100())).unwrap();
    std::fs::write(dir.join("otlp_100.bin"), frame(&otlp_bodies::otlp_100())).unwrap();
}
