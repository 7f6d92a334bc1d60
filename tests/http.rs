//! The HTTP surface against the real server: every accepted event shipped exactly once, nothing of a rejected
//! request stored.

mod common;

use std::io::Write;

use common::*;
use serde_json::json;

#[test]
fn get_event_is_shipped_as_one_plutos_record() {
    let server = TestServer::start(&[]);
    let r = get(server.addr, "/e?test=me&a=1&a=2&q=x+y%21");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_eq!(records.len(), 1);
    let rec = &records[0];
    assert_eq!(rec["raw_data"], json!({"test": "me", "a": ["1", "2"], "q": "x y!"}));
    assert_eq!(rec["ip"], "127.0.0.1");
    assert_eq!(rec["method"], "GET");
    assert_eq!(rec["path"], "/e");
    assert!(rec["written_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rec["request_id"].as_str().unwrap().len(), 36);
}

#[test]
fn post_bodies_of_every_kind_and_encoding() {
    let server = TestServer::start(&[]);
    let r = post(server.addr, "application/json", br#"{"one": 1}"#);
    assert_eq!((r.status, r.text()), (200, r#"{"accepted":1}"#.to_string()));
    let r = post(server.addr, "application/json", br#"[{"two": 1}, {"two": 2}]"#);
    assert_eq!(r.text(), r#"{"accepted":2}"#);
    let r = post(server.addr, "application/x-ndjson", b"{\"three\":1}\n{\"three\":2}\n{\"three\":3}\n");
    assert_eq!(r.text(), r#"{"accepted":3}"#);
    let r = post(server.addr, "application/x-www-form-urlencoded", b"form=1&form=2");
    assert_eq!(r.text(), r#"{"accepted":1}"#);

    let plain = br#"{"encoded": "yes"}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(plain).unwrap();
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(plain).unwrap();
    let encoded = [
        ("gzip", gz.finish().unwrap()),
        ("deflate", zlib.finish().unwrap()),
        ("zstd", zstd::encode_all(&plain[..], 3).unwrap()),
    ];
    for (encoding, body) in &encoded {
        let head = format!(
            "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let r = request(server.addr, &[head.as_bytes(), body].concat());
        assert_eq!((r.status, r.text()), (200, r#"{"accepted":1}"#.to_string()), "{encoding}");
    }
    let dir = server.stop();
    let want = vec![
        json!({"one": 1}),
        json!({"two": 1}),
        json!({"two": 2}),
        json!({"three": 1}),
        json!({"three": 2}),
        json!({"three": 3}),
        json!({"form": ["1", "2"]}),
        json!({"encoded": "yes"}),
        json!({"encoded": "yes"}),
        json!({"encoded": "yes"}),
    ];
    assert_eq!(sorted(raw_data(&read_records(&dir.path().join("out")))), sorted(want));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    // Neighbouring answers differ (an empty 200, `{"accepted":n}` for n = 1..=4, a 404), so answers that were
    // swapped or dropped cannot pass for the right ones.
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut burst = Vec::new();
    let mut answers = Vec::new();
    let mut stored = Vec::new();
    for i in 0..60 {
        if i == 25 {
            burst.extend_from_slice(b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n");
            answers.push((404, None));
        }
        if i % 5 == 0 {
            burst.extend_from_slice(format!("GET /e?i={i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
            answers.push((200, Some(String::new())));
            stored.push(json!({ "i": i.to_string() }));
            continue;
        }
        let n = i % 5;
        let events: Vec<_> = (0..n).map(|k| json!({ "i": i, "k": k })).collect();
        let body = serde_json::to_string(&events).unwrap();
        burst.extend_from_slice(
            format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
        );
        answers.push((200, Some(format!("{{\"accepted\":{n}}}"))));
        stored.extend(events);
    }
    client.send(&burst);
    for (i, (status, body)) in answers.iter().enumerate() {
        let r = client.read_response();
        assert_eq!(r.status, *status, "answer {i}");
        if let Some(body) = body {
            assert_eq!(&r.text(), body, "answer {i}");
        }
    }
    let dir = server.stop();
    assert_eq!(sorted(raw_data(&read_records(&dir.path().join("out")))), sorted(stored));
}

#[test]
fn a_request_sent_one_byte_per_write() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let raw = b"POST /e?ignored=1 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"slow\": \"bytes\"}";
    for byte in raw {
        client.send(&[*byte]);
    }
    let r = client.read_response();
    assert_eq!((r.status, r.text()), (200, r#"{"accepted":1}"#.to_string()));
    let chunked =
        b"POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"x\"\r\n3\r\n:1}\r\n0\r\n\r\n";
    for byte in chunked {
        client.send(&[*byte]);
    }
    assert_eq!(client.read_response().text(), r#"{"accepted":1}"#);
    let dir = server.stop();
    let got = raw_data(&read_records(&dir.path().join("out")));
    assert_eq!(got.len(), 2);
    assert!(got.contains(&json!({"slow": "bytes"})) && got.contains(&json!({"x": 1})));
}

#[test]
fn expect_100_continue() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let body = br#"{"continued": true}"#;
    let head = format!("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n", body.len());
    client.send(head.as_bytes());
    assert_eq!(client.read_response().status, 100);
    client.send(body);
    assert_eq!(client.read_response().text(), r#"{"accepted":1}"#);

    // A request that will fail whatever its body gets its final answer instead of 100.
    let mut client = server.client();
    let r = client.request(b"POST /nowhere HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(r.status, 404);
    let r = request(
        server.addr,
        b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n",
    );
    assert_eq!(r.status, 413);
    let dir = server.stop();
    assert_eq!(raw_data(&read_records(&dir.path().join("out"))), vec![json!({"continued": true})]);
}

#[test]
fn chunked_request_bodies() {
    let server = TestServer::start(&[]);
    let raw =
        b"POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-ndjson\r\n\r\n\
        b\r\n{\"c\":1}\n{\"c\r\n9;ext=x\r\n\":2}\n{\"c\"\r\n4\r\n:3}\n\r\n0\r\nX-Trailer: t\r\n\r\n";
    let r = request(server.addr, raw);
    assert_eq!((r.status, r.text()), (200, r#"{"accepted":3}"#.to_string()));
    let dir = server.stop();
    let mut got = raw_data(&read_records(&dir.path().join("out")));
    got.sort_by_key(|v| v["c"].as_u64());
    assert_eq!(got, vec![json!({"c": 1}), json!({"c": 2}), json!({"c": 3})]);
}

#[test]
fn http10_and_connection_close_end_the_connection() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let r = client.request(b"GET /e?v=10 HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(client.is_closed_by_server());

    let mut client = server.client();
    let r = client.request(b"GET /e?v=10ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(client.request(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").status, 200);

    let mut client = server.client();
    let r = client.request(b"GET /e?v=close HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(client.is_closed_by_server());
    let dir = server.stop();
    assert_eq!(read_records(&dir.path().join("out")).len(), 3);
}

/// A connection whose client asked to close after a whole request closes as soon as its answer is out, with no
/// half-close to wait through; one that sent more after it (input the server drops unread) lingers instead, so
/// that input cannot turn the close into a reset that destroys the answer.
#[test]
fn a_connection_closes_at_once_unless_input_was_left_unread() {
    let server = TestServer::start(&["--workers", "1"]);
    let mut clean = server.client();
    let r = clean.request(b"GET /e?v=clean HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(matches!(clean.read_end(), Ok(0)), "a FIN after the answer");
    // The client has not closed its side; the server's is gone already: only the connection asking counts.
    assert_eq!(server.metric("plutos_connections_open"), 1);

    let mut left = server.client();
    left.send(b"GET /e?v=left HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /e?v=dropped HTTP/1.1\r\n\r\n");
    assert_eq!(left.read_response().status, 200);
    assert!(matches!(left.read_end(), Ok(0)), "a FIN after the answer, not a reset");
    assert_eq!(server.metric("plutos_connections_open"), 2, "it lingers, draining what was left");
    drop(left);
    wait_until("the lingering one to close", || server.metric("plutos_connections_open") == 1);
    drop(clean);
    let dir = server.stop();
    let mut tags: Vec<String> =
        read_records(&dir.path().join("out")).iter().map(|r| r["raw_data"]["v"].as_str().unwrap().into()).collect();
    tags.sort();
    assert_eq!(tags, ["clean", "left"]);
}

#[test]
fn every_error_code_with_a_reason_and_nothing_stored() {
    let server = TestServer::start(&["--max-body-bytes", "1KiB", "--max-decompressed-bytes", "2KiB"]);
    let big_gzip = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&[b' '; 4096]).unwrap();
        gz.write_all(b"{}").unwrap();
        gz.finish().unwrap()
    };
    let long_uri = format!("GET /e?{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    let big_headers = format!("GET /e HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "b".repeat(17_000));
    let gzip_bomb = [
        format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", big_gzip.len())
            .into_bytes(),
        big_gzip,
    ]
    .concat();
    let big_window_zstd = {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(27)).unwrap();
        enc.write_all(b"{}").unwrap();
        let frame = enc.finish().unwrap();
        let head =
            format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Encoding: zstd\r\nContent-Length: {}\r\n\r\n", frame.len());
        [head.into_bytes(), frame].concat()
    };
    let deep_json =
        format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 400\r\n\r\n{}{}", "[".repeat(200), "]".repeat(200))
            .into_bytes();
    let too_many_keys = format!("GET /e?{}k=v HTTP/1.1\r\nHost: t\r\n\r\n", "k=v&".repeat(1000));
    let table: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed request line", b"NOT HTTP\r\n\r\n".to_vec(), 400),
        ("more than 1000 keys", too_many_keys.into_bytes(), 400),
        ("zstd window over 8 MiB", big_window_zstd, 413),
        ("invalid JSON", b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\n{\"a\":}x".to_vec(), 400),
        ("JSON scalar", b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n42".to_vec(), 400),
        ("JSON nested 200 deep", deep_json, 400),
        ("lone surrogate", b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n[\"\\udc00\"]".to_vec(), 400),
        ("number beyond f64", b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\n[1e400]".to_vec(), 400),
        ("invalid UTF-8 in query", b"GET /e?a=%ff HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        (
            "bad NDJSON line",
            b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: 12\r\n\r\n{\"a\":1}\n{bad"
                .to_vec(),
            400,
        ),
        ("unknown path", b"GET /other HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 404),
        ("wrong method", b"DELETE /e HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 405),
        ("POST without length", b"POST /e HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 411),
        ("body over limit", b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n".to_vec(), 413),
        ("decompressed over limit", gzip_bomb, 413),
        ("URI too long", long_uri.into_bytes(), 414),
        (
            "unsupported type",
            b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/xml\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            415,
        ),
        (
            "unsupported encoding",
            b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            415,
        ),
        ("headers too large", big_headers.into_bytes(), 431),
    ];
    // Each refused request travels in one write between two good ones, so all three are parsed in the same loop
    // iteration and go into the same group commit: nothing of the refused one may ride along with its neighbours.
    let mut want = Vec::new();
    for (i, (what, raw, status)) in table.iter().enumerate() {
        let before = format!("GET /e?before={i} HTTP/1.1\r\nHost: t\r\n\r\n");
        let after = format!("GET /e?after={i} HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut client = server.client();
        client.send(&[before.as_bytes(), raw, after.as_bytes()].concat());
        assert_eq!(client.read_response().status, 200, "{what}: the request before it");
        want.push(json!({ "before": i.to_string() }));
        let r = client.read_response();
        assert_eq!(r.status, *status, "{what}");
        assert!(!r.text().trim().is_empty() && r.text().ends_with('\n'), "{what}: a short reason, got {:?}", r.text());
        if *status == 405 {
            assert_eq!(r.header("allow"), Some("GET, HEAD, POST, OPTIONS"), "{what}");
        }
        if r.header("connection") == Some("close") {
            assert!(client.is_closed_by_server(), "{what}: closed after Connection: close");
        } else {
            assert_eq!(client.read_response().status, 200, "{what}: the request after it");
            want.push(json!({ "after": i.to_string() }));
        }
    }
    let r = request(server.addr, b"POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    // A keep-alive connection survives a rejected but well-framed request.
    let mut client = server.client();
    assert_eq!(client.request(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n[1,").status, 400);
    assert_eq!(client.request(b"GET /e?after=error HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    want.push(json!({"after": "error"}));
    let dir = server.stop();
    assert_eq!(sorted(raw_data(&read_records(&dir.path().join("out")))), sorted(want));
}

#[test]
fn slow_request_gets_408() {
    let server = TestServer::start(&["--header-timeout-seconds", "1"]);
    let mut client = server.client();
    client.send(b"GET /e?never=finished HTTP/1.1\r\nHost: t\r\n");
    let r = client.read_response();
    assert_eq!(r.status, 408);
    assert_eq!(r.header("connection"), Some("close"));
    let dir = server.stop();
    assert!(read_records(&dir.path().join("out")).is_empty());
}

#[test]
fn full_spool_answers_503_with_retry_after_and_stores_nothing() {
    let server = TestServer::start(&["--max-spool-bytes", "1"]);
    assert_eq!(get(server.addr, "/e?first=1").status, 200);
    for target in ["/e?second=1", "/e?third=1"] {
        let r = get(server.addr, target);
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    let r = post(server.addr, "application/json", b"[1,2,3]");
    assert_eq!(r.status, 503);
    let dir = server.stop();
    assert_eq!(raw_data(&read_records(&dir.path().join("out"))), vec![json!({"first": "1"})]);
}

#[test]
fn health_options_head_and_pixel() {
    let server = TestServer::start(&["--response", "pixel"]);
    let r = get(server.addr, "/health");
    assert_eq!((r.status, r.text()), (200, "ok\n".to_string()));
    let r = request(server.addr, b"OPTIONS /e HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 204);
    let r = get(server.addr, "/e?pixel=1");
    assert_eq!(r.header("content-type"), Some("image/gif"));
    assert_eq!(r.body.len(), 43);
    assert!(r.header("cache-control").unwrap().contains("no-cache"));
    // HTTP/1.0's Pragma is a request header, and Expires needs a date: neither belongs in the answer.
    assert_eq!((r.header("pragma"), r.header("expires")), (None, None));
    let metrics = get(server.addr, "/metrics");
    assert_eq!(metrics.header("cache-control"), Some("no-store"), "a scrape is never cached");
    let mut client = server.client();
    // HEAD: the GET's headers and Content-Length, no body; the next response follows directly.
    client.send(b"HEAD /e?head=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.read_head_only();
    assert!(head.contains("Content-Length: 43\r\n"), "{head}");
    assert_eq!(client.read_response().text(), "ok\n");
    let dir = server.stop();
    assert_eq!(read_records(&dir.path().join("out")).len(), 2);
}

#[test]
fn every_codec_ships_valid_streams_and_chunks_tile_the_sequence() {
    for codec in [&["--compression-type", "zstd"][..], &["--compression-type", "none"], &["--compression-level", "1"]] {
        let mut flags = vec!["--max-chunk-events", "7"];
        flags.extend_from_slice(codec);
        let server = TestServer::start(&flags);
        let mut client = server.client();
        for i in 0..40 {
            assert_eq!(client.request(format!("GET /e?n={i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status, 200);
        }
        let dir = server.stop();
        let shipped = read_shipped(&dir.path().join("out"));
        assert!(shipped.len() >= 40 / 7, "{codec:?}: {} chunks", shipped.len());
        let mut got: Vec<u64> = raw_data(&read_records(&dir.path().join("out")))
            .iter()
            .map(|v| v["n"].as_str().unwrap().parse().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, (0..40).collect::<Vec<u64>>(), "{codec:?}");
    }
}

#[test]
fn memory_durability_ships_at_shutdown() {
    let server = TestServer::start(&["--durability", "memory"]);
    for i in 0..10 {
        assert_eq!(get(server.addr, &format!("/e?m={i}")).status, 200);
    }
    let open = std::fs::read_dir(server.spool_dir().join("open")).unwrap().count();
    assert_eq!(open, 0, "memory mode keeps the open chunk in RAM");
    let dir = server.stop();
    assert_eq!(read_records(&dir.path().join("out")).len(), 10);
}

#[test]
fn chunks_seal_by_age() {
    let server = TestServer::start(&["--max-buffer-time-milliseconds", "100"]);
    assert_eq!(get(server.addr, "/e?aged=1").status, 200);
    wait_until("a chunk sealed by age to be shipped", || server.metric("plutos_chunks_shipped_total") == 1);
    let dir = server.stop();
    assert_eq!(raw_data(&read_records(&dir.path().join("out"))), vec![json!({"aged": "1"})]);
}

#[test]
fn garbage_and_cut_requests_never_take_the_server_down() {
    let server = TestServer::start(&["--header-timeout-seconds", "1"]);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = b"POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-ndjson\r\n\r\n5\r\n{}\n[]\n\r\n0\r\n\r\n";
    for round in 0..200 {
        let mut bytes = valid.to_vec();
        match round % 3 {
            // Flip random bytes of a valid request.
            0 => {
                for _ in 0..1 + next() % 8 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = next() as u8;
                }
            }
            // Cut it short and close.
            1 => bytes.truncate((next() % bytes.len() as u64) as usize),
            // Pure noise.
            _ => bytes = (0..next() % 2048).map(|_| next() as u8).collect(),
        }
        let mut client = server.client();
        if client.try_send(&bytes).is_ok() {
            drop(client); // answered or not, the server must go on
        }
    }
    let r = get(server.addr, "/e?still=alive");
    assert_eq!(r.status, 200);
    let dir = server.stop();
    // Whatever the noise was accepted as, every shipped line is valid JSON (read_records checks each one).
    let records = read_records(&dir.path().join("out"));
    assert!(raw_data(&records).contains(&json!({"still": "alive"})));
}

#[test]
fn fsync_modes_ack_and_ship_every_event() {
    for fsync in ["always", "20"] {
        let server = TestServer::start(&["--fsync", fsync, "--max-chunk-events", "5"]);
        let mut client = server.client();
        for i in 0..12 {
            assert_eq!(
                client.request(format!("GET /e?f={i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status,
                200,
                "{fsync}"
            );
        }
        assert_eq!(server.metric("plutos_spool_write_errors_total"), 0, "{fsync}");
        let dir = server.stop();
        assert_eq!(read_records(&dir.path().join("out")).len(), 12, "{fsync}");
    }
}
