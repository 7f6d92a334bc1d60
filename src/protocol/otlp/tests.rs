use serde_json::{Value, json};

use super::*;
use crate::event::clock::Clock;
use crate::event::ids::RequestIds;
use crate::event::record::{Protocol, RecordBuilder, RequestMeta, Transport};
use crate::grpc::proto::otlp::{ArrayValue, KeyValueList, Resource, ResourceLogs, ScopeLogs};
use crate::http::Method;

fn records(request: &ExportLogsServiceRequest) -> Vec<Value> {
    let mut builder = RecordBuilder::default();
    let meta = RequestMeta {
        ip: "127.0.0.1",
        user_agent: b"OTel-OTLP-Exporter-Python/1.45.2",
        method: Method::Post,
        path: b"/v1/logs",
        transport: Transport::H2c,
        headers: b"",
        enrichment: b"",
        protocol: Protocol::Otlp,
        retry_count: None,
        visitor_id: None,
    };
    builder.start_request(&meta, &Clock::new());
    let (mut out, mut ids) = (Vec::new(), RequestIds::new(0, 0));
    let mut emitter = Emitter::new(&mut out, &builder, &mut ids);
    emit(request, &mut emitter, &mut Scratch::default());
    String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }) }
}

fn text(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

/// One export with every field a log record has, as the Python SDK fills it.
fn export() -> ExportLogsServiceRequest {
    let log = LogRecord {
        time_unix_nano: 1_796_000_000_123_456_789,
        observed_time_unix_nano: 1_796_000_001_000_000_000,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue { value: Some(text("checkout \"done\"")) }),
        attributes: vec![
            kv("user.id", text("u-42")),
            kv("cart.items", any_value::Value::IntValue(3)),
            kv("cart.total", any_value::Value::DoubleValue(12.5)),
            kv("cart.gift", any_value::Value::BoolValue(false)),
            kv(
                "tags",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue { value: Some(text("a")) }, AnyValue { value: Some(text("b")) }],
                }),
            ),
            kv("nested", any_value::Value::KvlistValue(KeyValueList { values: vec![kv("k", text("v"))] })),
            kv("raw", any_value::Value::BytesValue(vec![0xde, 0xad])),
        ],
        dropped_attributes_count: 0,
        flags: 1,
        trace_id: vec![0x5b; 16],
        span_id: vec![0x3c; 8],
        event_name: "checkout.completed".into(),
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![kv("service.name", text("shop"))], ..Resource::default() }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "shop.logger".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                log_records: vec![log, LogRecord::default()],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn a_log_record_becomes_a_record_with_its_typed_values_and_fields() {
    let records = records(&export());
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!(r["protocol"], "otlp");
    assert_eq!(r["event_type"], "log");
    assert_eq!(r["event_name"], "checkout.completed");
    assert_eq!(r["user_id"], "u-42");
    assert_eq!(r["client_ts"], "2026-11-30T00:53:20.123456789Z");
    assert_eq!(r["timestamp"], "2026-11-30T00:53:20.123456Z", "the log's own time, to the microsecond");
    assert_eq!(
        r["raw_data"],
        json!({
            "body": "checkout \"done\"",
            "severity_text": "INFO",
            "severity_number": 9,
            "attributes": {"user.id": "u-42", "cart.items": 3, "cart.total": 12.5, "cart.gift": false,
                           "tags": ["a", "b"], "nested": {"k": "v"}, "raw": "3q0="},
            "resource": {"service.name": "shop"},
            "scope": {"name": "shop.logger", "version": "1.0"},
            "trace_id": "5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b",
            "span_id": "3c3c3c3c3c3c3c3c",
            "flags": 1,
            "observed_time": "2026-11-30T00:53:21.000000000Z"
        })
    );
    // An empty record keeps its resource and scope, and its request id as event id; no time: received.
    let empty = &records[1];
    assert_eq!(
        empty["raw_data"],
        json!({"resource": {"service.name": "shop"}, "scope": {"name": "shop.logger", "version": "1.0"}})
    );
    assert_eq!((empty["event_name"].clone(), empty["client_ts"].clone()), (Value::Null, Value::Null));
    assert_eq!(empty["event_id"], empty["request_id"]);
}

#[test]
fn the_json_mapping_reads_to_the_same_records_as_protobuf() {
    let body = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
      "scopeLogs":[{"scope":{"name":"shop.logger","version":"1.0"},"logRecords":[
        {"timeUnixNano":"1796000000123456789","observedTimeUnixNano":1796000001000000000,"severityNumber":9,
         "severityText":"INFO","body":{"stringValue":"checkout \"done\""},
         "attributes":[{"key":"user.id","value":{"stringValue":"u-42"}},{"key":"cart.items","value":{"intValue":"3"}},
           {"key":"cart.total","value":{"doubleValue":12.5}},{"key":"cart.gift","value":{"boolValue":false}},
           {"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}},
           {"key":"nested","value":{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}},
           {"key":"raw","value":{"bytesValue":"3q0="}}],
         "flags":1,"traceId":"5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b","spanId":"3c3c3c3c3c3c3c3c","eventName":"checkout.completed"},
        {}]}]}]}"#;
    let from_json = parse(body.as_bytes(), Format::Json).unwrap();
    assert_eq!(from_json, export());
    let from_protobuf = parse(&export().encode_to_vec(), Format::Protobuf).unwrap();
    assert_eq!(from_protobuf, export());
    // snake_case names are read too.
    let snake = r#"{"resource_logs":[{"scope_logs":[{"log_records":[{"severity_text":"WARN","event_name":"e"}]}]}]}"#;
    let log = &parse(snake.as_bytes(), Format::Json).unwrap().resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!((log.severity_text.as_str(), log.event_name.as_str()), ("WARN", "e"));
}

#[test]
fn what_is_not_an_export_is_refused() {
    for body in [
        &b"[]"[..],
        b"{\"resourceLogs\":{}}",
        b"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"traceId\":\"xyz\"}]}]}]}",
        b"nope",
    ] {
        assert!(parse(body, Format::Json).is_err(), "{}", String::from_utf8_lossy(body));
    }
    assert!(parse(b"\xff\xff\xff", Format::Protobuf).is_err());
    assert_eq!(Format::of(Some(b"application/x-protobuf")), Ok(Format::Protobuf));
    assert_eq!(Format::of(Some(b"application/json; charset=utf-8")), Ok(Format::Json));
    assert!(Format::of(Some(b"text/plain")).is_err());
    assert!(Format::of(None).is_err());
}
