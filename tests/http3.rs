//! HTTP/3 over QUIC on `QUIC_PORT`, spoken to by aioquic (PyPI; `tests/h3_client.py`, installed by
//! `scripts/h2-clients.sh`): every route answers as over HTTP/1.1 and its events land with `transport` `h3`;
//! many requests on one connection are each stored once; `QUIC_RETRY=always` makes a client prove its address
//! first and it is served; a connection the client closed is gone from the gauge.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::h2::python;
use common::pki::Pki;
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
    let port = server.quic_addr.unwrap().port().to_string();
    let mut child = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h3_client.py"))
        .args(["127.0.0.1", &port, pki.ca.to_str().unwrap()])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("h3_client.py starts");
    child.stdin.take().unwrap().write_all(requests.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "h3_client.py: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
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
