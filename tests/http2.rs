//! HTTP/2 on plutos's own listeners: h2 by ALPN on the HTTPS port, h2c by prior knowledge on the HTTP port.
//! Real clients — curl (nghttp2) and hyper-h2 (PyPI `h2`, `tests/h2_frames.py`, installed by
//! `scripts/h2-clients.sh`) — get the answers HTTP/1.1 gets and their events land with `transport` `h2`/`h2c`;
//! many streams on one connection are each answered and stored once; the hostile cases (rapid reset, a
//! CONTINUATION flood, a body that never comes, a window never opened, PING and SETTINGS floods) end as the
//! limits say while other clients are served; the drain sends GOAWAY.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::h2::python;
use common::pki::Pki;
use common::*;
use serde_json::Value;

/// Runs one case of tests/h2_frames.py; its JSON answer.
fn frames(args: &[&str]) -> Value {
    let output = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2_frames.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "h2_frames.py {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A server with an HTTPS listener (`flags` added) and the CA its certificate chains to.
fn server(flags: &[&str]) -> (TestServer, Pki, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path(), "h2");
    let mut all = vec!["--tls-port", "127.0.0.1:0", "--tls-cert", pki.cert.to_str().unwrap()];
    all.extend(["--tls-key", pki.key.to_str().unwrap()]);
    all.extend_from_slice(flags);
    (TestServer::start(&all), pki, certs)
}

/// curl's answer to one request: status, the HTTP version it spoke, content type, body.
fn curl(version: &str, pki: &Pki, url: &str, extra: &[&str]) -> (u16, String, String, String) {
    let output = Command::new("curl")
        .args(["-s", version, "--cacert", pki.ca.to_str().unwrap(), "-o", "-"])
        .args(["-w", "\n%{http_code} %{http_version} %{content_type}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, trailer) = text.rsplit_once('\n').unwrap();
    let mut fields = trailer.splitn(3, ' ');
    let status = fields.next().unwrap().parse().unwrap();
    let (spoken, content_type) = (fields.next().unwrap().to_string(), fields.next().unwrap_or("").to_string());
    (status, spoken, content_type, body.to_string())
}

fn transports(records: &[Value]) -> std::collections::HashMap<String, String> {
    records
        .iter()
        .filter_map(|r| Some((r["raw_data"]["tag"].as_str()?.to_string(), r["transport"].as_str()?.to_string())))
        .collect()
}

#[test]
fn curl_over_h2c_and_h2_gets_what_http1_gets_and_records_say_which() {
    let (server, pki, _certs) = server(&["--write-keys", "k1"]);
    let plain = format!("http://{}", server.addr);
    let tls = format!("https://localhost:{}", server.tls_addr.unwrap().port());
    let resolve = format!("localhost:{}:127.0.0.1", server.tls_addr.unwrap().port());
    let cases: [(&str, &[&str]); 6] = [
        ("/e?tag=TAG&write_key=k1", &[]),
        ("/e", &["-H", "X-Write-Key: k1", "-H", "Content-Type: application/json", "-d", r#"{"tag":"TAG"}"#]),
        ("/e?tag=nokey", &[]),
        ("/nope", &[]),
        ("/e", &["-X", "PUT", "-H", "X-Write-Key: k1"]),
        ("/health", &[]),
    ];
    for (k, (target, extra)) in cases.iter().enumerate() {
        let mut answers = Vec::new();
        for (version, base, name) in
            [("--http1.1", &plain, "h1"), ("--http2-prior-knowledge", &plain, "h2c"), ("--http2", &tls, "h2")]
        {
            let tag = format!("{name}-{k}");
            let target = target.replace("TAG", &tag);
            let extra: Vec<String> = extra.iter().map(|e| e.replace("TAG", &tag)).collect();
            let mut extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            extra.extend(["--resolve", &resolve]);
            let (status, spoken, content_type, body) = curl(version, &pki, &format!("{base}{target}"), &extra);
            let expected = if name == "h1" { "1.1" } else { "2" };
            assert_eq!(spoken, expected, "{name} {target}");
            answers.push((status, content_type, body));
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "the same answer on every version: {target} {answers:?}");
    }
    let records = read_records(&server.stop().path().join("out"));
    let transports = transports(&records);
    for k in 0..2 {
        assert_eq!(transports[&format!("h1-{k}")], "http");
        assert_eq!(transports[&format!("h2c-{k}")], "h2c");
        assert_eq!(transports[&format!("h2-{k}")], "h2");
    }
    assert_eq!(records.len(), 6, "two accepted requests per version, nothing else");
}

#[test]
fn many_streams_on_one_connection_are_each_answered_and_stored_once() {
    let (server, pki, _certs) = server(&[]);
    let tls = server.tls_addr.unwrap().to_string();
    let over_tls = frames(&["streams", &tls, "1", pki.ca.to_str().unwrap(), "80"]);
    let cleartext = frames(&["streams", &server.addr.to_string(), "0", "-", "40"]);
    for (seen, n) in [(&over_tls, 80), (&cleartext, 40)] {
        let statuses = seen["statuses"].as_object().unwrap();
        assert_eq!(statuses.len(), n);
        assert!(statuses.values().all(|s| s == 200), "{statuses:?}");
        let bodies = seen["bodies"].as_object().unwrap();
        assert_eq!(bodies.len(), n / 2, "each POST's count");
        assert!(bodies.values().all(|b| b == r#"{"accepted":1}"#));
        assert_eq!(seen["max_concurrent_streams"], 100, "HTTP2_MAX_STREAMS' default");
    }
    let records = read_records(&server.stop().path().join("out"));
    assert_eq!(records.len(), 120);
    let transports = transports(&records);
    assert_eq!(transports.len(), 80, "tags repeat across the two connections, each once per connection");
    let mut tags: Vec<&str> = records.iter().filter_map(|r| r["raw_data"]["tag"].as_str()).collect();
    tags.sort();
    let before = tags.len();
    tags.dedup();
    assert_eq!(before - tags.len(), 40, "each tag once per connection");
}

#[test]
fn with_http2_off_alpn_offers_http1_only_and_the_preface_is_not_http() {
    let (server, pki, _certs) = server(&["--http2", "off"]);
    let versions = [&rustls::version::TLS13];
    let mut client = Client::connect_tls(server.tls_addr.unwrap(), &pki.client(&versions, &[b"h2", b"http/1.1"]));
    assert_eq!(client.request(b"GET /e?tag=one HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    assert_eq!(client.tls().alpn_protocol(), Some(&b"http/1.1"[..]));
    let response = request(server.addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(response.status, 505, "an HTTP/1.1 server sees a version it does not speak");
    server.stop();
}

#[test]
fn rapid_reset_and_continuation_floods_end_their_connection_and_others_are_served() {
    let (server, _pki, _certs) = server(&[]);
    let addr = server.addr.to_string();
    let reset = frames(&["rapid_reset", &addr, "5000"]);
    assert_eq!(reset["goaway"], 11, "GOAWAY(ENHANCE_YOUR_CALM): {reset}");
    assert_eq!(reset["closed"], true);
    let flood = frames(&["continuation", &addr, "100000"]);
    assert!(flood["goaway"].as_u64().is_some(), "the header block never ending ends the connection: {flood}");
    assert_eq!(flood["closed"], true);
    // What the client sent after the GOAWAY was read and dropped (the connection lingers up to 2 s, so the
    // GOAWAY is not destroyed by a reset), never decoded: no request came of it.
    assert_eq!(flood["statuses"], 0, "{flood}");
    let pings = frames(&["ping_flood", &addr, "100000"]);
    assert_eq!(pings["pings"], 100_000, "every PING answered, one at a time: {pings}");
    let settings = frames(&["settings_flood", &addr, "100000"]);
    assert_eq!(settings["settings_acks"], 100_001, "every SETTINGS acknowledged (and the preface's): {settings}");
    // The other clients of the worker are served all along.
    let others = frames(&["streams", &addr, "0", "-", "10"]);
    assert_eq!(others["statuses"].as_object().unwrap().len(), 10);
    assert_eq!(get(server.addr, "/e?tag=http1").status, 200);
    assert!(server.metric("plutos_http2_sessions_failed_total{reason=\"enhance_your_calm\"}") >= 2);
    assert_eq!(server.metric("plutos_http2_connections_total{transport=\"h2c\"}"), 5);
    assert!(server.metric("plutos_http2_streams_total") >= 10);
    let records = read_records(&server.stop().path().join("out"));
    let reset_stored = records.iter().filter(|r| r["raw_data"]["tag"].as_str().is_some_and(|t| t.starts_with("rr-")));
    assert!(reset_stored.count() <= 100, "reset streams were not served in bulk");
}

#[test]
fn a_body_that_never_comes_gets_408_and_a_window_never_opened_ends_with_the_idle_timeout() {
    let (server, _pki, _certs) = server(&["--header-timeout-seconds", "1", "--idle-timeout-seconds", "2"]);
    let addr = server.addr.to_string();
    let stalled = frames(&["stalled", &addr]);
    assert_eq!(stalled["status"], 408);
    assert!(stalled["seconds"].as_f64().unwrap() < 5.0, "{stalled}");
    let window = frames(&["zero_window", &addr]);
    assert_eq!(window["statuses"], 1, "the answer's head is sent; its body waits for a window: {window}");
    assert_eq!(window["closed"], true, "the idle timeout ends a connection whose client takes nothing: {window}");
    assert_eq!(get(server.addr, "/e?tag=after").status, 200);
    server.stop();
}

#[test]
fn the_drain_sends_goaway_after_the_streams_in_flight_were_answered() {
    let (server, _pki, _certs) = server(&[]);
    let mut child = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2_frames.py"))
        .args(["drain", &server.addr.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "answered");
    let records = read_records(&server.stop().path().join("out"));
    let seen: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(seen["goaway"], 0, "GOAWAY(NO_ERROR): {seen}");
    assert_eq!(seen["closed"], true);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["transport"], "h2c");
}
