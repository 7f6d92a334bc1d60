//! Hostile clients against the real server: slowloris by the thousand while a well-behaved client keeps getting
//! its 200s; decompression bombs of every codec; NUL, CR and non-UTF-8 bytes in every field of a request. Each
//! gets its status or a closed connection, nothing refused is stored, and the server keeps serving. (Smuggling
//! shapes: tests/framing.rs; limits: tests/http.rs; connections over MAX_CONNECTIONS: tests/edge.rs.)

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Raises this process's descriptor limit to its hard limit (the slowloris test holds thousands of sockets).
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write and read one struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

#[test]
fn slowloris_by_the_thousand_does_not_slow_a_well_behaved_client() {
    // The server runs in this process: its sockets count against the same limit as the attackers'.
    let attackers = (raise_fd_limit().saturating_sub(200) / 2).min(2000) as usize;
    assert!(attackers >= 400, "descriptor limit too low for this test");
    let server = TestServer::start(&["--max-connections", "10000", "--header-timeout-seconds", "2", "--workers", "2"]);
    let mut slow: Vec<Client> = (0..attackers).map(|_| server.client()).collect();
    for (i, client) in slow.iter_mut().enumerate() {
        // A head that never ends: one header line at a time, never the blank line.
        client.send(format!("GET /e?slow={i} HTTP/1.1\r\nHost: t\r\nX-A: ").as_bytes());
    }
    let mut good = server.client();
    let mut latencies = Vec::new();
    for i in 0..2000 {
        let started = Instant::now();
        let r = good.request(format!("GET /e?good={i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        latencies.push(started.elapsed());
        assert_eq!(r.status, 200);
        if i % 100 == 0 {
            // Keep the attackers trickling.
            for client in slow.iter_mut().step_by(7) {
                let _ = client.try_send(b"a");
            }
        }
    }
    latencies.sort();
    println!(
        "{attackers} slowloris connections held; 2000 GETs of a well-behaved client: p50 {:?}, p99 {:?}, max {:?}",
        latencies[1000], latencies[1980], latencies[1999]
    );
    // Every attacker gets a 408 and a closed connection once the head timeout passes.
    for client in &mut slow {
        let r = client.read_response();
        assert_eq!(r.status, 408);
        assert!(client.is_closed_by_server());
    }
    assert_eq!(get(server.addr, "/e?after=slowloris").status, 200);
    let dir = server.stop();
    let records = raw_data(&read_records(&dir.path().join("out")));
    assert_eq!(records.len(), 2001, "the good client's events and the last one, no slowloris event");
    assert!(records.iter().all(|r| r.get("slow").is_none()));
}

/// A body of `size` bytes that compresses to almost nothing, in each Content-Encoding.
fn bombs(size: usize) -> Vec<(&'static str, Vec<u8>)> {
    let json = [b"[".as_slice(), &vec![b' '; size], b"]"].concat();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&json).unwrap();
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&json).unwrap();
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    raw.write_all(&json).unwrap();
    let zstd = zstd::bulk::compress(&json, 19).unwrap();
    // Two gzip members: each under the limit, together over it.
    let half = [b"[".as_slice(), &vec![b' '; size / 2]].concat();
    let mut first = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    first.write_all(&half).unwrap();
    let mut second = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    second.write_all(&[&vec![b' '; size / 2], b"]".as_slice()].concat()).unwrap();
    let members = [first.finish().unwrap(), second.finish().unwrap()].concat();
    vec![
        ("gzip", gzip.finish().unwrap()),
        ("deflate", zlib.finish().unwrap()),
        ("deflate", raw.finish().unwrap()),
        ("zstd", zstd),
        ("gzip", members),
    ]
}

#[test]
fn decompression_bombs_of_every_codec_get_413_and_store_nothing() {
    let server = TestServer::start(&["--max-decompressed-bytes", "1MiB"]);
    for (encoding, body) in bombs(64 * 1024 * 1024) {
        assert!(body.len() < 1024 * 1024, "{encoding}: {} bytes on the wire", body.len());
        let mut client = server.client();
        let head = format!(
            "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Encoding: {encoding}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        let started = Instant::now();
        let r = client.request(&[head.as_bytes(), &body].concat());
        assert_eq!(r.status, 413, "{encoding}: {}", r.text());
        // Bounded work: the decoder stops at the limit instead of inflating 64 MiB.
        assert!(started.elapsed() < Duration::from_secs(10), "{encoding}");
        assert_eq!(client.request(b"GET /e?after=bomb HTTP/1.1\r\nHost: t\r\n\r\n").status, 200, "{encoding}");
    }
    let dir = server.stop();
    assert_eq!(raw_data(&read_records(&dir.path().join("out"))), vec![json!({"after": "bomb"}); 5]);
}

#[test]
fn nul_cr_and_non_utf8_bytes_in_every_field_are_refused_or_stored_as_valid_json() {
    let server = TestServer::start(&[]);
    // Each request has one `@` where the hostile byte goes, in its head or its body (Content-Length is added).
    let templates: &[(&str, &str, &str)] = &[
        ("method", "G@T /e?f=method HTTP/1.1\r\nHost: t\r\n", ""),
        ("path", "GET /e@?f=path HTTP/1.1\r\nHost: t\r\n", ""),
        ("query key", "GET /e?f=qkey&k@y=v HTTP/1.1\r\nHost: t\r\n", ""),
        ("query value", "GET /e?f=qvalue&k=v@ HTTP/1.1\r\nHost: t\r\n", ""),
        ("version", "GET /e?f=version HTTP/1.@\r\nHost: t\r\n", ""),
        ("header name", "GET /e?f=hname HTTP/1.1\r\nHost: t\r\nX-A@: v\r\n", ""),
        ("header value", "GET /e?f=hvalue HTTP/1.1\r\nHost: t\r\nUser-Agent: a@b\r\n", ""),
        ("host", "GET /e?f=host HTTP/1.1\r\nHost: t@\r\n", ""),
        ("JSON string", "POST /e HTTP/1.1\r\nHost: t\r\n", "{\"f\":\"json@\"}"),
        ("JSON key", "POST /e HTTP/1.1\r\nHost: t\r\n", "{\"f@\":\"jkey\"}"),
        ("form", "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n", "f=form@"),
        ("NDJSON", "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\n", "{\"f\":\"nd@\"}\n"),
    ];
    let put = |text: &str, byte: u8| -> Vec<u8> { text.bytes().map(|b| if b == b'@' { byte } else { b }).collect() };
    let mut accepted = 0;
    for (field, head, body) in templates {
        for byte in [0u8, b'\r', b'\n', 0x80, 0xff] {
            let body = put(body, byte);
            let mut raw = put(head, byte);
            if !body.is_empty() {
                raw.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(&body);
            let mut client = server.client();
            client.send(&raw);
            match client.try_read_response() {
                Some(r) if r.status < 300 => accepted += 1,
                Some(r) => {
                    assert!((400..500).contains(&r.status), "{field} with {byte:#04x}: {}", r.status);
                    assert!(r.text().ends_with('\n'), "{field} with {byte:#04x}: a reason");
                }
                None => {} // closed without an answer
            }
            assert_eq!(get(server.addr, "/health").status, 200, "{field} with {byte:#04x}: still serving");
        }
    }
    let dir = server.stop();
    // Whatever was accepted is stored as one valid JSON object per line (read_records parses every line).
    let records = read_records(&dir.path().join("out"));
    assert_eq!(records.len(), accepted);
}
