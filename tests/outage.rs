//! A long sink outage under load, on the real binary against s3s-fs: the S3 server is stopped for 40
//! MAX_BUFFER_TIME periods (`PLUTOS_OUTAGE_PERIODS` sets another number, for a long run by hand) while clients
//! keep sending. The spool grows to MAX_SPOOL_BYTES and ingest answers
//! 503 + Retry-After; the collector's memory stays flat (sampled from /proc every 250 ms of the outage and
//! printed); after the server is back, every 2xx is shipped once and `plutos verify` finds no gap.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::collector::*;
use common::s3::*;
use common::*;

const PERIOD: Duration = Duration::from_millis(100);

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Every answer: the ids answered 200, the number answered 503.
#[derive(Default)]
struct Answers {
    acked: Vec<String>,
    refused: u64,
}

impl Answers {
    fn send(&mut self, client: &mut Client, id: String) -> u16 {
        let raw = format!("GET /e?id={id}&pad={} HTTP/1.1\r\nHost: t\r\n\r\n", "p".repeat(100));
        let status = client.try_request(raw.as_bytes()).expect("an answer").status;
        match status {
            200 => self.acked.push(id),
            503 => self.refused += 1,
            other => panic!("answered {other}"),
        }
        status
    }
}

#[test]
fn a_long_outage_fills_the_spool_to_its_cap_with_flat_memory_and_loses_nothing() {
    let mut server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let base = server.collector_env(&server.endpoint());
    let mut env: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([
        ("COMPRESSION_TYPE", "none"),
        ("MAX_SPOOL_BYTES", "2MiB"),
        ("MAX_BUFFER_TIME_MILLISECONDS", "100"),
        ("UPLOAD_BACKOFF_MAX_MS", "200"),
    ]);
    let collector = Collector::spawn(dir.path(), &env);
    let pid = collector.child.id();
    let mut client = Client::connect(collector.addr);
    let mut answers = Answers::default();
    for i in 0..2000 {
        assert_eq!(answers.send(&mut client, format!("before-{i}")), 200);
    }
    wait_until("the first chunks shipped", || metric(collector.addr, "plutos_events_shipped_total") > 0);
    server.stop();

    let started = Instant::now();
    let rss_at_start = rss_kib(pid);
    let (mut samples, mut next_sample) = (Vec::new(), started);
    let mut i = 0u64;
    let periods: u32 = std::env::var("PLUTOS_OUTAGE_PERIODS").map_or(40, |n| n.parse().expect("a number"));
    while started.elapsed() < PERIOD * periods {
        answers.send(&mut client, format!("during-{i}"));
        i += 1;
        if Instant::now() >= next_sample {
            samples.push((rss_kib(pid), metric(collector.addr, "plutos_spool_bytes")));
            next_sample += Duration::from_millis(250);
        }
    }
    let (max_rss, max_spool) = samples.iter().fold((0, 0), |(r, s), &(rss, spool)| (r.max(rss), s.max(spool)));
    println!(
        "outage of {:?}: {i} requests, {} answered 503; RSS {rss_at_start} KiB at the start, at most \
         {max_rss} KiB; spool at most {max_spool} bytes; samples (RSS KiB, spool bytes), at most 20 evenly \
         spaced: {:?}",
        started.elapsed(),
        answers.refused,
        samples.iter().step_by(samples.len().div_ceil(20).max(1)).collect::<Vec<_>>()
    );
    assert!(answers.refused > 0, "the spool reached its cap");
    assert!(max_spool >= 2 * 1024 * 1024, "the spool grew to MAX_SPOOL_BYTES");
    assert!(max_spool < 3 * 1024 * 1024, "and no further");
    assert!(max_rss < rss_at_start + 16 * 1024, "memory flat through the outage: {rss_at_start} → {max_rss} KiB");

    server.start_again();
    wait_until("the spool to drain", || metric(collector.addr, "plutos_chunks_queued") == 0);
    wait_until("ingest to resume", || answers.send(&mut client, format!("after-{i}")) == 200);
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let acked = answers.acked;
    let counts = shipped_id_counts(&server.client());
    let missing = acked.iter().filter(|id| !counts.contains_key(*id)).count();
    assert_eq!(missing, 0, "of {} acked events", acked.len());
    assert!(counts.values().all(|&n| n == 1), "every event exactly once");
    assert_eq!(counts.len(), acked.len(), "nothing refused was stored");
    let verify = Command::new(env!("CARGO_BIN_EXE_plutos"))
        .args(["verify", "s3://events"])
        .env_clear()
        .envs(base.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
