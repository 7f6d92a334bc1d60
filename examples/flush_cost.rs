//! What the group commit's per-iteration flush costs the chunk encoder: 2 million `get_simple`-shaped records
//! (182 bytes each) compressed with a flush after every 23 records (the batch an event-loop iteration holds
//! under `wrk -c100`), 100, 350, or only at the end; CPU µs per record and compressed bytes per record.
//!
//! `cargo build --release --example flush_cost && taskset -c 0 target/release/examples/flush_cost`

use std::io::Write;
use std::time::Instant;

use plutos::spool::encoder::Encoder;
use plutos::spool::{Codec, Compression};

const RECORDS: usize = 2_000_000;

fn main() {
    let lines: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| {
            let mut line = Vec::with_capacity(192);
            writeln!(
                line,
                "{{\"raw_data\":{{\"test\":\"me\"}},\"written_at\":\"2026-11-27T01:15:09.{:06}Z\",\
                 \"request_id\":\"01a21a92-0def-7000-813d-5657{i:08x}\",\"ip\":\"127.0.0.1\",\"user_agent\":\"\",\
                 \"method\":\"GET\",\"path\":\"/e\"}}",
                i / 200 % 1_000_000
            )
            .unwrap();
            line
        })
        .collect();
    for (codec, level) in [(Codec::Gzip, 6), (Codec::Gzip, 1), (Codec::Zstd, 3)] {
        for per_flush in [23, 100, 350, RECORDS] {
            let mut encoder = Encoder::new(Compression { codec, level }).unwrap();
            let mut compressed = 0;
            let started = Instant::now();
            for batch in lines.chunks(per_flush) {
                for line in batch {
                    encoder.write(line).unwrap();
                }
                encoder.flush().unwrap();
                compressed += encoder.output().len();
                encoder.output().clear();
            }
            compressed += encoder.finish().unwrap().len();
            let micros = started.elapsed().as_secs_f64() * 1e6 / RECORDS as f64;
            let per_byte = compressed as f64 / RECORDS as f64;
            println!(
                "{codec:?} {level}, flush every {per_flush:>7} records: {micros:.3} µs/record, {per_byte:.2} B/record"
            );
        }
    }
}
