//! What operators and browsers meet at the edge, against the real server: CORS, write keys, trusted proxies, IP
//! modes, captured headers, /ready, the answer over MAX_CONNECTIONS, and /metrics read by a Prometheus parser.

mod common;

use common::*;
use serde_json::{Value, json};

const ORIGIN: &str = "https://shop.example";

fn records_of(server: TestServer) -> Vec<Value> {
    let dir = server.stop();
    read_records(&dir.path().join("out"))
}

#[test]
fn cors_preflight_and_answers_to_allowed_and_other_origins() {
    let server = TestServer::start(&["--cors-origins", "https://shop.example, http://localhost:3000"]);
    let mut client = server.client();
    let preflight = client.request(
        format!(
            "OPTIONS /e HTTP/1.1\r\nHost: t\r\nOrigin: {ORIGIN}\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: content-type,x-write-key,x-unknown\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(preflight.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(preflight.header("access-control-allow-methods"), Some("GET, HEAD, POST, OPTIONS"));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("content-type, x-write-key"));
    assert_eq!(preflight.header("access-control-max-age"), Some("7200"));
    assert_eq!(preflight.header("vary"), Some("Origin"));
    assert_eq!(preflight.header("content-length"), None, "a 204 has no Content-Length");

    // An allowed origin's GET, POST and error answers carry the CORS lines; the cached GET answer too.
    for _ in 0..2 {
        let r = client.request(format!("GET /e?cors=get HTTP/1.1\r\nHost: t\r\nOrigin: {ORIGIN}\r\n\r\n").as_bytes());
        assert_eq!((r.status, r.header("access-control-allow-origin")), (200, Some(ORIGIN)));
    }
    let r = client.request(b"GET /e?cors=plain HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, None));
    let body = br#"{"cors":"post"}"#;
    let r = client.request(
        &[
            format!(
                "POST /e HTTP/1.1\r\nHost: t\r\nOrigin: http://localhost:3000\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
            body,
        ]
        .concat(),
    );
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, Some("http://localhost:3000")));
    let r = client.request(format!("GET /e?a=%ff HTTP/1.1\r\nHost: t\r\nOrigin: {ORIGIN}\r\n\r\n").as_bytes());
    assert_eq!((r.status, r.header("access-control-allow-origin")), (400, Some(ORIGIN)));

    // Any other origin: refused, without CORS lines; its preflight gets none either.
    let r = client.request(b"GET /e?cors=evil HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\r\n");
    assert_eq!((r.status, r.header("access-control-allow-origin")), (403, None));
    let r = client.request(
        b"OPTIONS /e HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
    );
    assert_eq!((r.status, r.header("access-control-allow-origin")), (204, None));
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST, OPTIONS"));

    let events: Vec<Value> = raw_data(&records_of(server));
    assert_eq!(events.len(), 4, "{events:?}");
    for want in [json!({"cors": "get"}), json!({"cors": "plain"}), json!({"cors": "post"})] {
        assert!(events.contains(&want), "{want} in {events:?}");
    }
    assert!(!events.contains(&json!({"cors": "evil"})));
}

#[test]
fn cors_any_origin_says_star_without_credentials() {
    let server = TestServer::start(&["--cors-origins", "*"]);
    let r = request(server.addr, b"GET /e?any=1 HTTP/1.1\r\nHost: t\r\nOrigin: https://anyone.example\r\n\r\n");
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, Some("*")));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert_eq!(raw_data(&records_of(server)), vec![json!({"any": "1"})]);
}

#[test]
fn write_keys_from_header_basic_or_query_and_401_stores_nothing() {
    let server = TestServer::start(&["--write-keys", "wk-live-1,wk-live-2", "--cors-origins", ORIGIN]);
    let mut client = server.client();
    let ok = [
        "GET /e?via=header HTTP/1.1\r\nHost: t\r\nX-Write-Key: wk-live-1\r\n\r\n".to_string(),
        // base64("wk-live-2:")
        "GET /e?via=basic HTTP/1.1\r\nHost: t\r\nAuthorization: Basic d2stbGl2ZS0yOg==\r\n\r\n".to_string(),
        "GET /e?via=query&write_key=wk-live-1 HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
    ];
    for raw in &ok {
        assert_eq!(client.request(raw.as_bytes()).status, 200, "{raw}");
    }
    let refused = [
        "GET /e?via=none HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /e?via=wrong HTTP/1.1\r\nHost: t\r\nX-Write-Key: wk-live-3\r\n\r\n",
        "GET /e?via=wrong-query&write_key=wk-live HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    for raw in refused {
        let r = client.request(raw.as_bytes());
        assert_eq!((r.status, r.text()), (401, "missing or unknown write key\n".to_string()), "{raw}");
        assert!(r.header("www-authenticate").is_some());
    }
    // An allowed page can read the 401; a 100-continue body is refused before it is sent.
    let r = client.request(format!("GET /e?via=page HTTP/1.1\r\nHost: t\r\nOrigin: {ORIGIN}\r\n\r\n").as_bytes());
    assert_eq!((r.status, r.header("access-control-allow-origin")), (401, Some(ORIGIN)));
    let mut expecting = server.client();
    let r = expecting.request(
        b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(r.status, 401);
    let metrics = client.request(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").text();

    let records = records_of(server);
    let mut via: Vec<&str> = records.iter().map(|r| r["raw_data"]["via"].as_str().unwrap()).collect();
    via.sort();
    assert_eq!(via, ["basic", "header", "query"]);
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains("wk-live") && !text.contains("write_key"), "no key in a record: {text}");
    assert!(!metrics.contains("wk-live"));
}

#[test]
fn trusted_proxies_name_the_client_per_request() {
    // The test's client is 127.0.0.1: trusted here, so its forwarding headers count.
    let server = TestServer::start(&["--trusted-proxies", "127.0.0.0/8,10.0.0.0/8"]);
    let mut client = server.client();
    let requests = [
        ("xff", "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.1.2.3\r\n"),
        ("forwarded", "Forwarded: for=\"[2001:db8::7]:443\";proto=https\r\n"),
        ("none", ""),
        ("second-client", "X-Forwarded-For: 198.51.100.9\r\n"),
    ];
    for (tag, headers) in requests {
        let raw = format!("GET /e?tag={tag} HTTP/1.1\r\nHost: t\r\n{headers}\r\n");
        assert_eq!(client.request(raw.as_bytes()).status, 200);
    }
    let untrusted = TestServer::start(&["--trusted-proxies", "10.0.0.0/8"]);
    let raw = b"GET /e?tag=untrusted HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n";
    assert_eq!(request(untrusted.addr, raw).status, 200);

    let mut ips: Vec<(String, String)> = records_of(server)
        .iter()
        .chain(&records_of(untrusted))
        .map(|r| (r["raw_data"]["tag"].as_str().unwrap().into(), r["ip"].as_str().unwrap().into()))
        .collect();
    ips.sort();
    let want = [
        ("forwarded", "2001:db8::7"),
        ("none", "127.0.0.1"),
        ("second-client", "198.51.100.9"),
        ("untrusted", "127.0.0.1"),
        ("xff", "203.0.113.7"),
    ];
    assert_eq!(ips, want.map(|(t, ip)| (t.to_string(), ip.to_string())));
}

#[test]
fn ip_modes_truncate_hash_stably_and_drop() {
    let ip_of = |flags: &[&str]| {
        let server = TestServer::start(flags);
        assert_eq!(get(server.addr, "/e?ip=1").status, 200);
        records_of(server)[0]["ip"].as_str().unwrap().to_string()
    };
    assert_eq!(ip_of(&["--ip-mode", "truncate"]), "127.0.0.0");
    assert_eq!(ip_of(&["--ip-mode", "drop"]), "");
    let key = ["--ip-mode", "hash", "--ip-hash-key", "a-secret-of-32-bytes-for-testing"];
    let hashed = ip_of(&key);
    assert_eq!(hashed.len(), 32);
    assert_eq!(ip_of(&key), hashed, "the same key gives the same hash after a restart");
    assert_ne!(ip_of(&["--ip-mode", "hash", "--ip-hash-key", "another-secret-of-32-bytes-long!"]), hashed);
}

#[test]
fn captured_headers_are_recorded_by_lower_case_name() {
    let server = TestServer::start(&["--capture-headers", "Referer,Accept-Language,Cookie"]);
    let raw = b"GET /e?h=1 HTTP/1.1\r\nHost: t\r\nreferer: https://shop.example/p?x=\"1\"\r\nAccept-Language: de\r\n\
                Authorization: Basic c2VjcmV0\r\n\r\n";
    assert_eq!(request(server.addr, raw).status, 200);
    let body = br#"{"h":2}"#;
    let head = format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nCookie: session=abc\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert_eq!(request(server.addr, &[head.as_bytes(), body].concat()).status, 200);
    let mut records = records_of(server);
    records.sort_by_key(|r| r["raw_data"]["h"].to_string());
    assert_eq!(records[0]["headers"], json!({"referer": "https://shop.example/p?x=\"1\"", "accept-language": "de"}));
    assert_eq!(records[1]["headers"], json!({"cookie": "session=abc"}));
}

#[test]
fn ready_follows_the_sink_and_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    // The sink root is a plain file: uploads fail until it is removed.
    let out = dir.path().join("out");
    std::fs::write(&out, b"not a directory").unwrap();
    let flags =
        ["--max-buffer-time-milliseconds", "50", "--upload-backoff-max-ms", "100", "--ready-sink-window-seconds", "1"];
    let server = TestServer::start_in(dir, &flags);
    let r = get(server.addr, "/ready");
    assert_eq!((r.status, r.text()), (200, "ready\n".to_string()), "nothing waits yet");
    assert_eq!(get(server.addr, "/e?ready=1").status, 200);
    wait_until("/ready to turn 503", || get(server.addr, "/ready").status == 503);
    let r = get(server.addr, "/ready");
    assert!(r.text().starts_with("sink: no upload succeeded for "), "{}", r.text());
    assert_eq!(r.text().lines().count(), 1);
    assert_eq!(get(server.addr, "/health").status, 200, "alive all the same");
    std::fs::remove_file(&out).unwrap();
    wait_until("/ready after the outage", || get(server.addr, "/ready").status == 200);
    server.stop();

    let full = TestServer::start(&["--max-spool-bytes", "1"]);
    assert_eq!(get(full.addr, "/e?fills=1").status, 200);
    wait_until("a full spool", || get(full.addr, "/ready").status == 503);
    assert!(get(full.addr, "/ready").text().starts_with("spool is full"));
    full.stop();
}

#[test]
fn metrics_parse_and_count_answers_by_route_status_and_reason() {
    let server = TestServer::start(&["--write-keys", "wk-metrics"]);
    let mut client = server.client();
    for raw in [
        &b"GET /e?m=1 HTTP/1.1\r\nHost: t\r\nX-Write-Key: wk-metrics\r\n\r\n"[..],
        // HEAD takes the uncached answer: counted all the same.
        b"HEAD /e?m=3 HTTP/1.1\r\nHost: t\r\nX-Write-Key: wk-metrics\r\n\r\n",
        b"GET /e?m=2 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        client.request(raw);
    }
    let text = client.request(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition");
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(
            |s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                _ => f64::NAN,
            },
        )
    };
    let responses = "plutos_responses_total";
    assert_eq!(value(responses, &[("route", "/e"), ("status", "200")]), Some(2.0));
    assert_eq!(value(responses, &[("route", "/e"), ("status", "401")]), Some(1.0));
    assert_eq!(value(responses, &[("route", "/health"), ("status", "200")]), Some(1.0));
    assert_eq!(value(responses, &[("route", "unrouted"), ("status", "404")]), Some(1.0));
    assert_eq!(value("plutos_rejections_total", &[("reason", "write_key")]), Some(1.0));
    assert_eq!(value("plutos_rejections_total", &[("reason", "not_found")]), Some(1.0));
    assert_eq!(value("plutos_rejections_total", &[("reason", "spool_full")]), Some(0.0));
    assert_eq!(value("plutos_requests_total", &[]), Some(5.0));
    assert!(scrape.docs.contains_key("plutos_responses_total"), "every family has its HELP");
    server.stop();
}

#[test]
fn connections_over_the_limit_get_503_then_are_closed_unanswered() {
    let server = TestServer::start(&["--workers", "1", "--max-connections", "2"]);
    let mut first = server.client();
    let mut second = server.client();
    assert_eq!(first.request(b"GET /e?conn=1 HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    assert_eq!(second.request(b"GET /e?conn=2 HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    // Over the limit: one request is read and answered 503 + Retry-After, so a load balancer retries elsewhere.
    let mut third = server.client();
    let r = third.request(b"GET /e?conn=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.text()), (503, "too many connections\n".to_string()));
    assert_eq!((r.header("retry-after"), r.header("connection")), (Some("1"), Some("close")));
    assert!(third.is_closed_by_server());
    drop(third);
    let open = |client: &mut Client| {
        let text = client.request(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").text();
        let line = text.lines().find(|l| l.starts_with("plutos_connections_open ")).unwrap().to_string();
        line["plutos_connections_open ".len()..].parse::<usize>().unwrap()
    };
    wait_until("the refused connection to close", || open(&mut second) == 2);
    // Only a bounded number are taken over the limit (16 for a limit this small); past them, a plain close.
    let idle: Vec<Client> = (0..16).map(|_| server.client()).collect();
    wait_until("the idle connections over the limit", || open(&mut second) == 18);
    let mut past = server.client();
    let _ = past.try_send(b"GET /e?conn=past HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(past.try_read_response().is_none(), "closed without an answer");
    drop(idle);
    drop(first);
    wait_until("room for a new connection", || {
        let mut client = server.client();
        client.try_send(b"GET /e?conn=4 HTTP/1.1\r\nHost: t\r\n\r\n").is_ok()
            && client.try_read_response().is_some_and(|r| r.status == 200)
    });
    let metrics = second.request(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").text();
    assert!(!metrics.contains("plutos_connections_refused_total 0\n"), "{metrics}");
    assert!(!metrics.contains("plutos_rejections_total{reason=\"too_many_connections\"} 0\n"), "{metrics}");
    let dir = server.stop();
    let mut got: Vec<String> =
        raw_data(&read_records(&dir.path().join("out"))).iter().map(|v| v["conn"].to_string()).collect();
    got.sort();
    got.dedup();
    assert_eq!(got, ["\"1\"", "\"2\"", "\"4\""]);
}
