//! gRPC and OTLP against real clients (`tests/grpc_clients.py`, installed by `scripts/h2-clients.sh`): Python
//! grpcio with stubs generated from the repository's `proto/`, and the OpenTelemetry Python SDK's OTLP log
//! exporters (gRPC and HTTP/protobuf). Their events land as records; refusals carry the gRPC status or OTLP's
//! `google.rpc.Status`; OTLP/HTTP's JSON mapping is read over HTTP/1.1.

mod common;

use std::process::Command;

use common::h2::python;
use common::pki::Pki;
use common::*;
use serde_json::{Value, json};

/// Runs one case of tests/grpc_clients.py; its JSON answer.
fn client(args: &[&str]) -> Value {
    let output = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc_clients.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "grpc_clients.py {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn server(flags: &[&str]) -> (TestServer, Pki, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path(), "grpc");
    let mut all = vec!["--tls-port", "127.0.0.1:0", "--tls-cert", pki.cert.to_str().unwrap()];
    all.extend(["--tls-key", pki.key.to_str().unwrap()]);
    all.extend_from_slice(flags);
    (TestServer::start(&all), pki, certs)
}

fn by_tag(records: &[Value]) -> std::collections::HashMap<String, Value> {
    records
        .iter()
        .filter_map(|r| {
            let tag = r["raw_data"]["tag"].as_str().or_else(|| r["raw_data"]["attributes"]["tag"].as_str())?;
            Some((tag.to_string(), r.clone()))
        })
        .collect()
}

#[test]
fn send_over_h2c_and_h2_with_gzip_stores_each_event_with_its_fields() {
    let (server, pki, _certs) = server(&["--write-keys", "k1"]);
    let (plain, tls) = (server.addr.to_string(), server.tls_addr.unwrap().to_string());
    let ca = pki.ca.to_str().unwrap();
    assert_eq!(
        client(&["send", &plain, "0", "-", "k1", "10", "0"]),
        json!({"code": "OK", "accepted": 10, "invalid": 0})
    );
    assert_eq!(client(&["send", &tls, "1", ca, "k1", "6", "1"]), json!({"code": "OK", "accepted": 6, "invalid": 0}));
    let refused = client(&["send", &plain, "0", "-", "-", "3", "0"]);
    assert_eq!(refused["code"], "UNAUTHENTICATED", "{refused}");
    let records = read_records(&server.stop().path().join("out"));
    assert_eq!(records.len(), 16, "the refused call stored nothing");
    let transports: Vec<&str> = records.iter().map(|r| r["transport"].as_str().unwrap()).collect();
    assert_eq!(transports.iter().filter(|&&t| t == "h2c").count(), 10);
    assert_eq!(transports.iter().filter(|&&t| t == "h2").count(), 6);
    let tags = by_tag(&records);
    // An event with only `json` is stored as /e stores a JSON object.
    let plain_event = &tags["grpc-0"];
    assert_eq!(plain_event["raw_data"], json!({"tag": "grpc-0", "n": 0}));
    assert_eq!((plain_event["protocol"].as_str(), plain_event["event_name"].clone()), (Some("plutos"), Value::Null));
    assert_eq!(plain_event["event_id"], plain_event["request_id"]);
    // Typed fields land in the record's fields; typed values in raw_data.
    let typed = &tags["grpc-1"];
    assert_eq!(typed["raw_data"], json!({"tag": "grpc-1", "total": 12.5}));
    assert_eq!(typed["event_name"], "Order Completed");
    assert_eq!(typed["event_type"], "track");
    assert_eq!(typed["user_id"], "user-1");
    assert_eq!(typed["client_ts"], "2026-11-30T00:53:20.000000000Z");
    assert_eq!(typed["timestamp"], "2026-11-30T00:53:20.000000Z");
}

#[test]
fn the_opentelemetry_sdk_exports_logs_over_grpc_and_http_that_land_as_records() {
    let (server, _pki, _certs) = server(&[]);
    let addr = server.addr.to_string();
    assert_eq!(client(&["otlp_grpc", &addr, "4", "-"]), json!({"results": vec!["SUCCESS"; 4]}));
    assert_eq!(client(&["otlp_http", &addr, "3", "-"]), json!({"results": vec!["SUCCESS"; 3]}));
    let records = read_records(&server.stop().path().join("out"));
    assert_eq!(records.len(), 7);
    let over_grpc = records.iter().filter(|r| r["path"] == "/opentelemetry.proto.collector.logs.v1.LogsService/Export");
    assert_eq!(over_grpc.count(), 4);
    assert_eq!(records.iter().filter(|r| r["path"] == "/v1/logs").count(), 3);
    for r in &records {
        assert_eq!(r["protocol"], "otlp");
        assert_eq!(r["transport"], if r["path"] == "/v1/logs" { "http" } else { "h2c" });
        assert_eq!(r["event_type"], "log");
        assert_eq!(r["event_name"], "checkout.completed");
        let i: u64 = r["raw_data"]["attributes"]["cart.items"].as_u64().unwrap();
        assert_eq!(r["user_id"], format!("u-{i}"));
        assert_eq!(r["raw_data"]["body"], format!("checkout {i}"));
        assert_eq!(r["raw_data"]["severity_text"], "INFO");
        assert_eq!(r["raw_data"]["severity_number"], 9);
        assert_eq!(r["raw_data"]["resource"]["service.name"], "shop");
        assert_eq!(r["raw_data"]["scope"], json!({"name": "shop.checkout", "version": "1.0"}));
        assert_eq!(r["client_ts"], format!("2026-11-30T00:53:20.{:09}Z", 123_456_789 + i));
    }
}

#[test]
fn otlp_http_reads_the_json_mapping_and_refuses_with_a_status_in_the_requests_format() {
    let (server, _pki, _certs) = server(&["--write-keys", "k1"]);
    let export =
        br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
        "scopeLogs":[{"scope":{"name":"browser"},"logRecords":[{"timeUnixNano":"1796000000000000000",
        "body":{"stringValue":"hello"},"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
        "attributes":[{"key":"tag","value":{"stringValue":"json-1"}}]}]}]}]}"#;
    let post = |content_type: &str, key: &str, body: &[u8]| {
        let head = format!(
            "POST /v1/logs HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nX-Write-Key: {key}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        request(server.addr, &[head.as_bytes(), body].concat())
    };
    let accepted = post("application/json", "k1", export);
    assert_eq!((accepted.status, accepted.text()), (200, "{}".to_string()), "no partial success: all was stored");
    assert_eq!(accepted.header("content-type"), Some("application/json"));
    // The same over HTTP/2 (curl, prior knowledge).
    let body = String::from_utf8(export.to_vec()).unwrap().replace("json-1", "json-h2");
    let output = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-H", "content-type: application/json", "-H", "x-write-key: k1"])
        .args(["--data-binary", &body, &format!("http://{}/v1/logs", server.addr)])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "{}");
    let protobuf = post("application/x-protobuf", "k1", b"");
    assert_eq!((protobuf.status, protobuf.body.len()), (200, 0), "an empty export is an empty response");
    // Refusals: google.rpc.Status with the gRPC code, in the request's format.
    let bad_json = post("application/json", "k1", b"{\"resourceLogs\":{}}");
    assert_eq!(bad_json.status, 400);
    let status: Value = serde_json::from_slice(&bad_json.body).unwrap();
    assert_eq!(status["code"], 3, "INVALID_ARGUMENT: {status}");
    let unkeyed = post("application/x-protobuf", "nope", b"");
    assert_eq!(unkeyed.status, 401);
    assert_eq!(unkeyed.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(unkeyed.body[..2], [0x08, 16], "field 1 (code) = 16, UNAUTHENTICATED");
    assert_eq!(post("text/plain", "k1", b"x").status, 415);
    // gRPC needs HTTP/2.
    let head = "POST /plutos.v1.Collector/Send HTTP/1.1\r\nHost: t\r\nContent-Type: application/grpc\r\nX-Write-Key: k1\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(request(server.addr, &[head.as_bytes(), &[0, 0, 0, 0, 0]].concat()).status, 501);
    let records = read_records(&server.stop().path().join("out"));
    assert_eq!(records.len(), 2);
    let tags = by_tag(&records);
    assert_eq!(tags["json-h2"]["transport"], "h2c");
    let r = &tags["json-1"];
    assert_eq!(r["raw_data"]["trace_id"], "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(r["raw_data"]["span_id"], "0102030405060708");
    assert_eq!(r["raw_data"]["resource"], json!({"service.name": "web"}));
    assert_eq!(r["client_ts"], "2026-11-30T00:53:20.000000000Z");
}

#[test]
fn a_full_spool_is_resource_exhausted_and_otlp_http_answers_503() {
    let (server, _pki, _certs) = server(&["--max-spool-bytes", "1"]);
    let addr = server.addr.to_string();
    assert_eq!(client(&["send", &addr, "0", "-", "-", "2", "0"])["code"], "OK", "the first write fills it");
    let full = client(&["send", &addr, "0", "-", "-", "2", "0"]);
    assert_eq!(full["code"], "RESOURCE_EXHAUSTED", "{full}");
    // The SDK's HTTP exporter retries a 503 (with backoff) and then gives up: FAILURE, nothing stored.
    let head = "POST /v1/logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
    let r = request(server.addr, head.as_bytes());
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
    let records = read_records(&server.stop().path().join("out"));
    assert_eq!(records.len(), 2);
}
