//! HTTP/3 over QUIC on `QUIC_PORT`, spoken to by aioquic (PyPI; `tests/h3_client.py`, installed by
//! `scripts/h2-clients.sh`): every route answers as over HTTP/1.1 and its events land with `transport` `h3`;
//! many requests on one connection are each stored once; `QUIC_RETRY=always` makes a client prove its address
//! first and it is served; a connection the client closed is gone from the gauge. Hostile clients
//! (`tests/h3_hostile.py`): a flood of Initials from spoofed loopback addresses meets Retries, garbage is dropped,
//! streams that never send their body get 408, a stalled handshake ends at the idle timeout. Through a relay
//! (`tests/common/relay.rs`): a network that drops and reorders datagrams, and a client whose address keeps
//! changing, its datagrams handed to the worker that holds its connection. HTTPS answers advertise HTTP/3.
//! `QUIC_RCVBUF` sizes the sockets, and the kernel's drops on a full queue are counted.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::collector::Collector;
use common::h2::python;
use common::pki::Pki;
use common::relay::{Misbehaviour, Relay};
use common::sockets::{udp_queue, udp_receive_buffers};
use common::*;
use serde_json::{Value, json};

/// A server with HTTPS and QUIC on their own ports (`flags` added) and the CA its certificate chains to.
fn server(flags: &[&str]) -> (TestServer, Pki, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path(), "h3");
    let mut all = vec!["--tls-port", "127.0.0.1:0", "--quic-port", "127.0.0.1:0"];
    all.extend(["--tls-cert", pki.cert.to_str().unwrap(), "--tls-key", pki.key.to_str().unwrap()]);
    all.extend_from_slice(flags);
    (TestServer::start(&all), pki, certs)
}

/// `requests` sent at once on one HTTP/3 connection by aioquic; its JSON answer (`responses` in order).
fn h3(server: &TestServer, pki: &Pki, requests: &Value, env: &[(&str, &str)]) -> Value {
    h3_to(server.quic_addr.unwrap().port(), pki, requests, env)
}

/// The same to `port` on 127.0.0.1.
fn h3_to(port: u16, pki: &Pki, requests: &Value, env: &[(&str, &str)]) -> Value {
    let output = h3_run(port, pki, requests, env);
    assert!(output.status.success(), "h3_client.py: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// tests/h3_client.py's run, whatever its outcome.
fn h3_run(port: u16, pki: &Pki, requests: &Value, env: &[(&str, &str)]) -> std::process::Output {
    let mut child = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h3_client.py"))
        .args(["127.0.0.1", &port.to_string(), pki.ca.to_str().unwrap()])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("h3_client.py starts");
    child.stdin.take().unwrap().write_all(requests.to_string().as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn header<'a>(response: &'a Value, name: &str) -> Option<&'a str> {
    response["headers"].as_array()?.iter().find(|h| h[0] == name).and_then(|h| h[1].as_str())
}

#[test]
fn aioquic_gets_what_http1_gets_and_records_say_h3() {
    let (server, pki, _certs) = server(&[]);
    let json_type = ["content-type", "application/json"];
    let segment = json!({"batch": [{"type": "track", "event": "Signed Up", "userId": "u-1", "messageId": "m-1",
                                    "properties": {"tag": "seg"}}]});
    let cases = [
        json!({"path": "/e?tag=get"}),
        json!({"method": "POST", "path": "/e", "headers": [json_type], "body": r#"[{"tag":"post-1"},{"tag":"post-2"}]"#}),
        json!({"method": "POST", "path": "/v1/batch", "headers": [json_type], "body": segment.to_string()}),
        json!({"path": "/health"}),
        json!({"path": "/nowhere"}),
        json!({"method": "POST", "path": "/e", "headers": [json_type], "body": "{not json"}),
        json!({"method": "OPTIONS", "path": "/e"}),
    ];
    let answers = h3(&server, &pki, &Value::Array(cases.to_vec()), &[]);
    assert_eq!(answers["alpn"], "h3");
    for (case, answer) in cases.iter().zip(answers["responses"].as_array().unwrap()) {
        let method = case["method"].as_str().unwrap_or("GET");
        let path = case["path"].as_str().unwrap();
        let body = case["body"].as_str().unwrap_or("");
        let extra = case["headers"]
            .as_array()
            .map_or(String::new(), |h| format!("{}: {}\r\n", h[0][0].as_str().unwrap(), h[0][1].as_str().unwrap()));
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len());
        let http1 = request(server.addr, raw.as_bytes());
        assert_eq!(answer["status"], u64::from(http1.status), "{method} {path}: {answer}");
        assert_eq!(header(answer, "content-type"), http1.header("content-type"), "{method} {path}");
        assert_eq!(answer["body"].as_str().unwrap(), http1.text(), "{method} {path}");
        for field in ["connection", "keep-alive", "transfer-encoding"] {
            assert_eq!(header(answer, field), None, "{field} is not an HTTP/3 field");
        }
    }
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    let h3: Vec<&Value> = records.iter().filter(|r| r["transport"] == "h3").collect();
    let tags: std::collections::BTreeSet<&str> = h3
        .iter()
        .filter_map(|r| r["raw_data"]["tag"].as_str().or(r["raw_data"]["properties"]["tag"].as_str()))
        .collect();
    assert_eq!(tags, ["get", "post-1", "post-2", "seg"].into_iter().collect(), "{h3:?}");
    assert_eq!(h3.len(), 4, "each event once");
}

#[test]
fn many_requests_on_one_connection_are_each_answered_and_stored_once() {
    let (server, pki, _certs) = server(&[]);
    let requests: Vec<Value> = (0..60).map(|i| json!({"path": format!("/e?tag=many-{i}")})).collect();
    let answers = h3(&server, &pki, &Value::Array(requests), &[]);
    let statuses: Vec<u64> =
        answers["responses"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![200; 60]);
    wait_until("the closed connection leaves the gauge", || server.metric("plutos_quic_connections") == 0);
    assert_eq!(server.metric("plutos_http3_streams_total"), 60);
    assert!(server.metric("plutos_quic_handshakes_total") >= 1);
    let dir = server.stop();
    let mut tags: Vec<String> = read_records(&dir.path().join("out"))
        .iter()
        .filter_map(|r| r["raw_data"]["tag"].as_str().map(str::to_string))
        .collect();
    tags.sort();
    let mut expected: Vec<String> = (0..60).map(|i| format!("many-{i}")).collect();
    expected.sort();
    assert_eq!(tags, expected);
}

#[test]
fn with_quic_retry_always_a_client_proves_its_address_first_and_is_served() {
    let (server, pki, _certs) = server(&["--quic-retry", "always"]);
    let answers = h3(&server, &pki, &json!([{"path": "/e?tag=retried"}]), &[("H3_RETRY_EXPECTED", "1")]);
    assert_eq!(answers["retried"], true);
    assert_eq!(answers["responses"][0]["status"], 200);
    assert!(server.metric("plutos_quic_retries_total") >= 1);
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_eq!(records.iter().filter(|r| r["raw_data"]["tag"] == "retried").count(), 1);
}

#[test]
fn quic_port_needs_the_https_listener() {
    let output = Command::new(env!("CARGO_BIN_EXE_plutos"))
        .args(["--check-config", "--quic-port", "127.0.0.1:0"])
        .env_clear()
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("QUIC_PORT"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs one case of tests/h3_hostile.py; its JSON answer.
fn hostile(args: &[&str]) -> Value {
    let output = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h3_hostile.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "h3_hostile.py {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The QUIC port as the hostile client takes it.
fn target(server: &TestServer) -> [String; 2] {
    let addr = server.quic_addr.unwrap();
    [addr.ip().to_string(), addr.port().to_string()]
}

#[test]
fn a_flood_of_initials_from_spoofed_addresses_is_met_with_retries_and_a_real_client_is_served() {
    let (server, pki, _certs) = server(&[]);
    let [host, port] = target(&server);
    hostile(&["flood", &host, &port, "400"]);
    // Each worker takes 64 handshakes that go nowhere; beyond that a new client must prove its address first,
    // which costs plutos one stateless Retry and no state.
    wait_until("Retries answer the flood", || server.metric("plutos_quic_retries_total") >= 100);
    let open = server.metric("plutos_quic_connections");
    assert!(open <= 2 * 64, "{open} connections held for spoofed clients");
    assert!(server.metric("plutos_quic_handshakes_total") <= 2 * 64);
    let answers = h3(&server, &pki, &json!([{"path": "/e?tag=after-flood"}]), &[]);
    assert_eq!(answers["responses"][0]["status"], 200);
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_eq!(records.iter().filter(|r| r["raw_data"]["tag"] == "after-flood").count(), 1);
}

#[test]
fn garbage_datagrams_are_dropped_and_a_real_client_is_served() {
    let (server, pki, _certs) = server(&[]);
    let [host, port] = target(&server);
    hostile(&["garbage", &host, &port, "5000", "7"]);
    let answers = h3(&server, &pki, &json!([{"path": "/e?tag=after-garbage"}]), &[]);
    assert_eq!(answers["responses"][0]["status"], 200);
    assert_eq!(server.metric("plutos_quic_handshakes_total"), 1, "no garbage made a connection");
    server.stop();
}

#[test]
fn streams_that_never_send_their_body_get_408_and_a_stalled_handshake_ends_at_the_idle_timeout() {
    let (server, pki, _certs) = server(&["--header-timeout-seconds", "1", "--idle-timeout-seconds", "2"]);
    let [host, port] = target(&server);
    let idle = hostile(&["idle-streams", &host, &port, pki.ca.to_str().unwrap(), "100"]);
    let statuses = idle["statuses"].as_array().unwrap();
    assert_eq!(statuses.len(), 100);
    assert!(statuses.iter().all(|s| s == 408), "{statuses:?}");
    hostile(&["stall", &host, &port]);
    let answers = h3(&server, &pki, &json!([{"path": "/e?tag=meanwhile"}]), &[]);
    assert_eq!(answers["responses"][0]["status"], 200);
    wait_until("the stalled handshake ends", || server.metric("plutos_quic_connections") == 0);
    server.stop();
}

/// `requests` sent one after another on one connection through `relay`.
fn through(relay: &Relay, pki: &Pki, requests: &Value) -> Value {
    h3_to(relay.addr.port(), pki, requests, &[("H3_SEQUENTIAL", "1")])
}

fn tags(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut tags: Vec<String> = read_records(&dir.join("out"))
        .iter()
        .filter_map(|r| r["raw_data"]["tag"].as_str().filter(|t| t.starts_with(prefix)).map(str::to_string))
        .collect();
    tags.sort();
    tags
}

#[test]
fn a_lossy_network_that_drops_and_reorders_datagrams_still_stores_each_event_once() {
    let (server, pki, _certs) = server(&[]);
    let lossy = Misbehaviour { drop_per_mille: 100, reorder_per_mille: 100, seed: 42, ..Default::default() };
    let relay = Relay::start(server.quic_addr.unwrap(), lossy);
    let requests: Vec<Value> = (0..40)
        .map(|i| match i % 2 {
            0 => json!({"path": format!("/e?tag=lossy-{i:02}")}),
            _ => json!({"method": "POST", "path": "/e", "headers": [["content-type", "application/json"]],
                        "body": format!(r#"{{"tag":"lossy-{i:02}","pad":"{}"}}"#, "x".repeat(3000))}),
        })
        .collect();
    let answers = through(&relay, &pki, &Value::Array(requests));
    let statuses: Vec<u64> =
        answers["responses"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![200; 40]);
    drop(relay);
    let dir = server.stop();
    let expected: Vec<String> = (0..40).map(|i| format!("lossy-{i:02}")).collect();
    assert_eq!(tags(dir.path(), "lossy-"), expected, "each event once");
}

#[test]
fn a_client_whose_address_changes_keeps_its_connection_whichever_worker_its_datagrams_reach() {
    let (server, pki, _certs) = server(&[]);
    let mut expected = Vec::new();
    // The kernel's hash of each new source port picks a worker: with about six moves a connection, a few
    // connections make it certain that some datagram reached the other worker and was handed back. (A client
    // that moved every few datagrams would never get its path validated: a new address gets three times what it
    // sent until it answers a PATH_CHALLENGE, and the challenge alone takes 1,200 bytes.)
    for round in 0..5 {
        let rebinding = Misbehaviour { rebind_every: Some(20), seed: round, ..Default::default() };
        let relay = Relay::start(server.quic_addr.unwrap(), rebinding);
        let requests: Vec<Value> = (0..60).map(|i| json!({"path": format!("/e?tag=moved-{round}-{i:02}")})).collect();
        expected.extend((0..60).map(|i| format!("moved-{round}-{i:02}")));
        let answers = through(&relay, &pki, &Value::Array(requests));
        assert!(answers["responses"].as_array().unwrap().iter().all(|r| r["status"] == 200), "round {round}");
        assert!(relay.rebinds() >= 3, "round {round}: the client moved ({} times)", relay.rebinds());
        if server.metric("plutos_quic_packets_forwarded_total") > 0 {
            break;
        }
    }
    assert!(server.metric("plutos_quic_packets_forwarded_total") > 0, "datagrams were handed to their worker");
    let dir = server.stop();
    expected.sort();
    assert_eq!(tags(dir.path(), "moved-"), expected, "each event once");
}

#[test]
fn https_answers_advertise_http3_and_plain_ones_do_not() {
    let (server, pki, _certs) = server(&["--cors-origins", "https://shop.example"]);
    let advertised = format!("h3=\":{}\"; ma=86400", server.quic_addr.unwrap().port());
    let config = pki.client(&[&rustls::version::TLS13], &[b"http/1.1"]);
    let mut https = Client::connect_tls(server.tls_addr.unwrap(), &config);
    for request in [
        &b"GET /e?tag=alt HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n",
        b"OPTIONS /e HTTP/1.1\r\nHost: t\r\nOrigin: https://shop.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
    ] {
        let answer = https.request(request);
        assert_eq!(answer.header("alt-svc"), Some(advertised.as_str()), "{}", String::from_utf8_lossy(request));
    }
    let plain = request(server.addr, b"GET /e?tag=plain HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(plain.header("alt-svc"), None);
    let over_h3 = h3(&server, &pki, &json!([{"path": "/e?tag=h3"}]), &[]);
    assert_eq!(header(&over_h3["responses"][0], "alt-svc"), None, "HTTP/3 answers need not advertise it");
    server.stop();
}

#[test]
fn the_drain_sends_goaway_and_closes_with_h3_no_error_once_the_answers_arrived() {
    use std::io::{BufRead, BufReader};
    let (server, pki, _certs) = server(&[]);
    let port = server.quic_addr.unwrap().port().to_string();
    let mut child = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h3_client.py"))
        .args(["127.0.0.1", &port, pki.ca.to_str().unwrap()])
        .env("H3_WAIT_CLOSE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("h3_client.py starts");
    child.stdin.take().unwrap().write_all(json!([{"path": "/e?tag=before-drain"}]).to_string().as_bytes()).unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map(Result::unwrap);
    assert_eq!(lines.next().as_deref(), Some("answered"));
    let dir = server.stop();
    let result: Value = serde_json::from_str(&lines.next().expect("the client's result")).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(result["responses"][0]["status"], 200);
    assert_eq!(result["goaway"], 4, "GOAWAY names the first request stream not served (0 was): {result}");
    assert_eq!(result["closed"]["error_code"], 0x100, "CONNECTION_CLOSE with H3_NO_ERROR: {result}");
    let records = read_records(&dir.path().join("out"));
    assert_eq!(records.iter().filter(|r| r["raw_data"]["tag"] == "before-drain").count(), 1);
}

#[test]
fn no_ticket_offers_0rtt_and_a_resumed_session_is_served() {
    let (server, pki, certs) = server(&[]);
    let ticket = certs.path().join("ticket");
    let env = [("H3_TICKET", ticket.to_str().unwrap())];
    let first = h3(&server, &pki, &json!([{"path": "/e?tag=first"}]), &env);
    assert_eq!(first["resumed"], false);
    assert!(first["max_early_data"].is_null(), "the ticket allows no early data: {first}");
    let second = h3(&server, &pki, &json!([{"path": "/e?tag=resumed"}]), &env);
    assert_eq!(second["resumed"], true, "{second}");
    assert_eq!(second["responses"][0]["status"], 200);
    assert_eq!(server.metric("plutos_quic_zero_rtt_dropped_total"), 0);
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_eq!(records.iter().filter(|r| r["raw_data"]["tag"] == "resumed").count(), 1);
}

#[test]
fn over_max_connections_a_new_quic_connection_is_refused() {
    let (server, pki, _certs) = server(&["--workers", "1", "--max-connections", "1"]);
    let [host, port] = target(&server);
    // A handshake that stalls holds the one connection this worker may have.
    hostile(&["stall", &host, &port]);
    wait_until("the stalled connection is held", || server.metric("plutos_quic_connections") == 1);
    let output = h3_run(server.quic_addr.unwrap().port(), &pki, &json!([{"path": "/e?tag=refused"}]), &[]);
    assert!(!output.status.success(), "the client was refused");
    assert!(server.metric("plutos_quic_connections_refused_total") >= 1);
    server.stop();
}

#[test]
fn a_packet_for_a_connection_plutos_does_not_hold_gets_a_stateless_reset() {
    let (server, _pki, _certs) = server(&[]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    // A short header, a connection id of plutos's length, and enough bytes that a smaller reset can answer it.
    let mut packet = vec![0x41];
    packet.extend_from_slice(&[0u8; 9]);
    packet.extend_from_slice(&[0x55; 100]);
    socket.send_to(&packet, server.quic_addr.unwrap()).unwrap();
    let mut reply = [0u8; 2048];
    let (n, _) = socket.recv_from(&mut reply).expect("a stateless reset");
    assert!(n < packet.len() && n >= 21, "a reset is shorter than what incited it: {n} bytes");
    assert_eq!(reply[0] & 0xc0, 0x40, "and looks like a short-header packet");
    server.stop();
}

#[test]
fn a_reloaded_certificate_is_the_one_new_quic_connections_get() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    // One file for both settings: a rename replaces the certificate and its key at once.
    let served = dir.path().join("served.pem");
    a.combined(&served);
    let file = served.to_str().unwrap();
    let flags = ["--tls-port", "127.0.0.1:0", "--quic-port", "127.0.0.1:0", "--tls-cert", file, "--tls-key", file];
    let server = TestServer::start(&flags);
    let request = json!([{"path": "/e?tag=reload"}]);
    assert_eq!(h3(&server, &a, &request, &[])["responses"][0]["status"], 200);
    b.combined(&dir.path().join("next.pem"));
    std::fs::rename(dir.path().join("next.pem"), &served).unwrap();
    wait_until("the renamed pair to load", || server.metric("plutos_tls_reloads_total{result=\"ok\"}") == 1);
    assert_eq!(h3(&server, &b, &request, &[])["responses"][0]["status"], 200, "b's chain is served now");
    let port = server.quic_addr.unwrap().port();
    assert!(!h3_run(port, &a, &request, &[]).status.success(), "a's chain is not");
    server.stop();
}

/// `QUIC_RCVBUF` sizes each worker's QUIC socket, and what the kernel drops when its queue is full reaches
/// `/metrics`: a burst into the socket of a stopped collector (a process, so that SIGSTOP stops only it).
#[test]
fn quic_rcvbuf_sizes_the_socket_and_the_kernels_drops_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "h3-rcvbuf");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let env = [
        ("WORKERS", "1"),
        ("TLS_PORT", "127.0.0.1:0"),
        ("QUIC_PORT", "127.0.0.1:0"),
        ("TLS_CERT", cert),
        ("TLS_KEY", key),
        ("QUIC_RCVBUF", "16KiB"),
    ];
    let collector = Collector::spawn(dir.path(), &env);
    let quic = collector.quic_addr();
    assert_eq!(udp_receive_buffers(collector.child.id(), quic.port()), [2 * 16 * 1024], "the kernel doubles it");
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // 1,200 bytes each (a client's Initial is as large), far more than 32 KiB of queue holds.
    let noise = [0u8; 1200];
    collector.signal(libc::SIGSTOP);
    for _ in 0..100 {
        sender.send_to(&noise, quic).unwrap();
    }
    collector.signal(libc::SIGCONT);
    wait_until("the queue to be read empty", || udp_queue(quic.port()).0 == 0);
    let drops = udp_queue(quic.port()).1;
    assert!(drops > 0, "a 16 KiB queue cannot hold 100 datagrams of 1,200 bytes");
    // The kernel's count reaches plutos with the next datagram read: one more, into the empty queue.
    sender.send_to(&noise, quic).unwrap();
    wait_until("the kernel's count in /metrics", || metric(collector.addr, "plutos_quic_kernel_drops_total") == drops);
    assert_eq!(udp_queue(quic.port()).1, drops, "nothing dropped since");
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
}
