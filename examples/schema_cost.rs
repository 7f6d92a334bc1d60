//! What a schema registry costs: compiling every schema of a registry (time, and the heap it holds), a second
//! load as a reload does, and one validation of a small instance, valid and invalid, with the instance parsed
//! from bytes as an event's would be.
//!
//!   cargo build --release --example schema_cost
//!   target/release/examples/schema_cost ../shared/iglu-central        # all of Iglu Central
//!   target/release/examples/schema_cost tests/data/iglu

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use plutos::schema::{Registry, SchemaKey};

/// The process's resident set (`VmRSS`), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("a registry directory (with schemas/ in it)"));
    let before = rss_kib();
    let started = Instant::now();
    let registry = Registry::load(&dir, 1).unwrap_or_else(|e| panic!("{e}"));
    let load = started.elapsed();
    let held = rss_kib().saturating_sub(before);
    println!(
        "{} schemas compiled in {:.0} ms; resident set grew by {:.1} MiB",
        registry.len(),
        load.as_secs_f64() * 1e3,
        held as f64 / 1024.0
    );
    let started = Instant::now();
    let again = Registry::load(&dir, 1).unwrap();
    println!(
        "a reload (both sets held until the old is dropped): {:.0} ms, {:.1} MiB more",
        started.elapsed().as_secs_f64() * 1e3,
        rss_kib().saturating_sub(before + held) as f64 / 1024.0
    );
    drop(again);

    let key = SchemaKey::parse("iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0").unwrap();
    let Some(web_page) = registry.get(&key) else {
        println!("(no web_page schema here: no validation figures)");
        return;
    };
    let n = 1_000_000;
    for (label, bytes) in [
        ("valid", &br#"{"id":"0d3d4a4a-3b3c-4e5f-9a6b-1c2d3e4f5a6b"}"#[..]),
        ("invalid", &br#"{"id":"not a uuid"}"#[..]),
    ] {
        let started = Instant::now();
        for _ in 0..n {
            let value: serde_json::Value = serde_json::from_slice(black_box(bytes)).unwrap();
            black_box(web_page.validator.is_valid(&value));
        }
        let parse_and_check = started.elapsed().as_nanos() as f64 / n as f64;
        let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        let started = Instant::now();
        for _ in 0..n {
            black_box(web_page.validator.is_valid(black_box(&value)));
        }
        let check = started.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "web_page {label}: {check:.0} ns to check, {parse_and_check:.0} ns with the instance parsed from bytes"
        );
    }
}
