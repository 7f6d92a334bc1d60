//! What enrichment costs per request, by part: a user agent's parse on a cache miss (first pass: the regexes'
//! lazy DFAs are cold; second pass: warm), a GeoIP tree walk and a record's decoding, and a whole request's
//! enrichment when the worker's caches hit. Then `post_ndjson_varied`'s requests (100 events each, from 500
//! clients through a trusted proxy with 100 real user agents) through a worker's request handling with
//! enrichment off and on, and their records through the chunk encoder (gzip 6, flushed per request as the group
//! commit does): where the cost of the larger records goes. Wall clock per operation; run it under callgrind for instruction counts.
//!
//!   cargo build --release --example enrich_cost
//!   taskset -c 0 target/release/examples/enrich_cost $(scripts/geo-data.sh --city | cut -d= -f2)
//!
//! With a second argument `off` or `on`, only the requests and their records with enrichment so (for
//! `valgrind --tool=callgrind`: the difference of the two totals over 200,000 records is the cost per record).

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
    let only = std::env::args().nth(2);
    let mut state = 12345u64;
    let addresses: Vec<IpAddr> = (0..10_000)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            IpAddr::V4(Ipv4Addr::from((state >> 32) as u32 | 0x0100_0000))
        })
        .collect();

    if let Some(label) = only {
        let db = city.to_string_lossy().into_owned();
        let flags = match label.as_str() {
            "on" => vec!["--geoip-db", &*db, "--ua-parse", "on", "--bots", "flag"],
            _ => vec![],
        };
        records_through_the_encoder(&label, &flags, &addresses[..500], &agents[..100]);
        return;
    }
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

    crafted_user_agents(&parser);

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

    for (label, flags) in [
        ("off", vec![]),
        ("on", vec!["--geoip-db", &*config.geoip_db[0].to_string_lossy(), "--ua-parse", "on", "--bots", "flag"]),
    ] {
        records_through_the_encoder(label, &flags, &addresses[..500], &agents[..100]);
    }
}

/// 2,000 `post_ndjson` requests from `clients` with `agents` through request handling, then their records
/// through gzip 6.
fn records_through_the_encoder(label: &str, flags: &[&str], clients: &[IpAddr], agents: &[String]) {
    use clap::Parser;
    use plutos::spool::batch::Batch;
    use plutos::spool::encoder::Encoder;
    use plutos::spool::{Codec, Compression};
    use plutos::state::Shared;
    use plutos::worker::connection::Connection;
    use plutos::worker::request::Requests;

    let mut argv = vec!["plutos", "--trusted-proxies", "127.0.0.1/32"];
    argv.extend_from_slice(flags);
    let config = plutos::Config::from_args(&plutos::Args::try_parse_from(argv).unwrap(), &[0]).unwrap();
    let enrichment = config
        .edge
        .enrich
        .enabled()
        .then(|| Arc::new(Enrichment::new(&config.edge.enrich, config.edge.ip_mode).unwrap()));
    let shared = Arc::new(Shared::new(1, 0, u64::MAX).with_enrichment(enrichment));
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
    let body: String = (1..=100)
        .map(|i| {
            format!(
                "{{\"event\":\"impression\",\"ad_id\":\"ad-{i:05}\",\"user_id\":\"u-8f14e45fceea167a5a36\",\
                 \"slot\":\"top-{}\",\"ts\":{}}}\n",
                i % 4,
                1764124014084u64 + i
            )
        })
        .collect();
    let rounds = 2_000;
    let requests_sent: Vec<String> = (0..rounds)
        .map(|i| {
            format!(
                "POST /e HTTP/1.1\r\nHost: bench\r\nX-Forwarded-For: {}\r\nUser-Agent: {}\r\n\
                 Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
                clients[i * 7919 % clients.len()],
                agents[i * 104_729 % agents.len()],
                body.len()
            )
        })
        .collect();
    let mut batches = Vec::with_capacity(rounds);
    let mut batch = Batch::default();
    let start = Instant::now();
    for request in &requests_sent {
        requests.begin_iteration(Instant::now(), Ok(()));
        requests.process(&mut conn, request.as_bytes(), &mut batch);
        conn.output.clear();
        batches.push(batch.lines(plutos::spool::Stream::Good).to_vec());
        batch.clear();
    }
    let records = rounds * 100;
    per_op(&format!("post_ndjson request handling, enrichment {label}, per record"), records, start);
    let mut encoder = Encoder::new(Compression { codec: Codec::Gzip, level: 6 }).unwrap();
    let start = Instant::now();
    for lines in &batches {
        encoder.write(lines).unwrap();
        encoder.flush().unwrap();
        encoder.output().clear();
    }
    per_op(&format!("post_ndjson records through gzip 6, enrichment {label}, per record"), records, start);
    let bytes: usize = batches.iter().map(Vec::len).sum();
    println!("  records: {} bytes each on average", bytes / records);
}

/// User agents made to cost the most on a miss: every literal word of uap-core's regexes packed up to
/// `MAX_CLASSIFIED` (so the prefilter lets as many regexes run as it can), the same with version numbers, and
/// repetitions aimed at isbot's look-around patterns and at backtracking. Prints each one's cost (warm
/// regexes, the best of 20) and the worst: what one new user agent can cost a worker.
fn crafted_user_agents(parser: &Agents) {
    let regexes: serde_json::Value =
        serde_json::from_str(include_str!("../assets/uap-core/regexes.json")).expect("the embedded regexes");
    let mut words: Vec<String> = Vec::new();
    for list in ["user_agent_parsers", "os_parsers", "device_parsers"] {
        for entry in regexes[list].as_array().unwrap() {
            let source = entry["regex"].as_str().unwrap();
            for word in source.split(|c: char| !c.is_ascii_alphanumeric()) {
                if word.len() >= 3 && !words.iter().any(|w| w == word) {
                    words.push(word.to_string());
                }
            }
        }
    }
    let fill = |separator: &str, suffix: &str, from: usize| {
        let mut ua = String::new();
        for word in words.iter().cycle().skip(from) {
            let next = format!("{word}{suffix}{separator}");
            if ua.len() + next.len() > plutos::enrich::agent::MAX_CLASSIFIED {
                break;
            }
            ua.push_str(&next);
        }
        ua
    };
    let mut candidates: Vec<(String, String)> = Vec::new();
    for from in (0..words.len()).step_by(words.len().div_ceil(8)) {
        candidates.push((format!("uap words from {from}, spaces"), fill(" ", "", from)));
        candidates.push((format!("uap words from {from}, versions"), fill(" ", "/1.2.3", from)));
        candidates.push((format!("uap words from {from}, parenthesised"), fill("; ", " 10_15_7", from)));
    }
    let repeat = |unit: &str| unit.repeat(plutos::enrich::agent::MAX_CLASSIFIED / unit.len());
    for (label, unit) in [
        ("Mozilla repeated", "Mozilla/5.0 (Linux; Android 14; SM-S918B) "),
        ("news repeated", "gnews"),
        ("google repeated", "google/"),
        ("bot prefixes", " cubot"),
        ("scan after cam", "camscan"),
        ("http after lib", "libhttp"),
        ("java;", "java;"),
        ("digits and dots", "1.2."),
        ("open parentheses", "(a; "),
        ("build strings", " Build/"),
    ] {
        candidates.push((label.to_string(), repeat(unit)));
    }
    let mut out = Vec::new();
    let mut worst = (0f64, String::new());
    for (label, ua) in &candidates {
        let mut best = f64::MAX;
        for _ in 0..20 {
            out.clear();
            let start = Instant::now();
            black_box(parser.render(ua.as_bytes(), &mut out));
            best = best.min(start.elapsed().as_nanos() as f64);
        }
        println!("crafted user agent ({label}, {} bytes): {:.0} ns", ua.len(), best);
        if best > worst.0 {
            worst = (best, label.clone());
        }
    }
    println!("worst crafted user agent: {} ({:.0} ns per parse)", worst.1, worst.0);
}
