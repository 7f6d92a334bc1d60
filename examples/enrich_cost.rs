//! What enrichment costs per request, by part: a user agent's parse on a cache miss (first pass: the regexes'
//! lazy DFAs are cold; second pass: warm), a GeoIP tree walk and a record's decoding, and a whole request's
//! enrichment when the worker's caches hit. Wall clock per operation; run it under callgrind for instruction
//! counts.
//!
//!   cargo build --release --example enrich_cost
//!   taskset -c 0 target/release/examples/enrich_cost $(scripts/geo-data.sh --city | cut -d= -f2)

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use plutos::enrich::agent::Agents;
use plutos::enrich::geo::{GeoDb, GeoSet, Precision};
use plutos::enrich::{BotPolicy, EnrichConfig, Enricher, Enrichment, GeoPrecision};
use plutos::event::client::IpMode;

fn per_op(label: &str, n: usize, start: Instant) {
    println!("{label}: {:.0} ns", start.elapsed().as_nanos() as f64 / n as f64);
}

fn main() {
    let city = PathBuf::from(std::env::args().nth(1).expect("a GeoIP database"));
    let agents: Vec<String> =
        std::fs::read_to_string("bench/wrk/user_agents.txt").unwrap().lines().map(String::from).collect();
    let mut state = 12345u64;
    let addresses: Vec<IpAddr> = (0..10_000)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            IpAddr::V4(Ipv4Addr::from((state >> 32) as u32 | 0x0100_0000))
        })
        .collect();

    let mut out = Vec::new();
    for (label, parse, bots) in [("parse only", true, false), ("bot check only", false, true)] {
        let agents_only = Agents::new(parse, bots).unwrap();
        let start = Instant::now();
        for ua in &agents {
            out.clear();
            black_box(agents_only.render(ua.as_bytes(), &mut out));
        }
        per_op(&format!("user agent {label}, per distinct agent"), agents.len(), start);
    }
    let parser = Agents::new(true, true).unwrap();
    for pass in ["cold", "warm"] {
        let start = Instant::now();
        for ua in &agents {
            out.clear();
            black_box(parser.render(ua.as_bytes(), &mut out));
        }
        per_op(&format!("user agent parse + bot check, {pass} regexes, per distinct agent"), agents.len(), start);
    }

    let set = GeoSet { dbs: vec![Arc::new(GeoDb::load(&city).unwrap())] };
    let mut key = Vec::new();
    let start = Instant::now();
    for addr in &addresses {
        set.key(*addr, &mut key);
        black_box(&key);
    }
    per_op("geo tree walk (the cache key), per address", addresses.len(), start);
    let start = Instant::now();
    for addr in &addresses {
        out.clear();
        set.render(*addr, Precision::City, &mut out);
        black_box(&out);
    }
    per_op("geo record decode + render (a cache miss), per address", addresses.len(), start);

    let config =
        EnrichConfig { geoip_db: vec![city], geo_precision: GeoPrecision::Auto, ua_parse: true, bots: BotPolicy::Flag };
    let start = Instant::now();
    let enrichment = Enrichment::new(&config, IpMode::Full).unwrap();
    println!("start-up: load and verify the database, compile the lists: {:?}", start.elapsed());
    let mut enricher = Enricher::new(Some(Arc::new(enrichment)));
    // Every address and agent once (misses), then the same pairs again (hits).
    for (i, addr) in addresses.iter().enumerate() {
        black_box(enricher.enrich(Some(*addr), agents[i % agents.len()].as_bytes()).fragment.len());
    }
    let rounds = 10;
    let start = Instant::now();
    for _ in 0..rounds {
        for (i, addr) in addresses.iter().enumerate() {
            black_box(enricher.enrich(Some(*addr), agents[i % agents.len()].as_bytes()).fragment.len());
        }
    }
    per_op("whole request, both caches hit", rounds * addresses.len(), start);
    let counts = enricher.take_counts();
    println!("{counts:?}");
}
