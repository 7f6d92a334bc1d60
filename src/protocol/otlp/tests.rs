use serde_json::{Value, json};

use super::*;
use crate::event::clock::Clock;
use crate::event::ids::RequestIds;
use crate::event::record::{Protocol, RecordBuilder, RequestMeta, Transport};
use crate::grpc::proto::otlp::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList, LogRecord, Resource,
    ResourceLogs, ScopeLogs, any_value,
};
use crate::http::Method;

fn records(request: &ExportLogsServiceRequest) -> Vec<Value> {
    records_of(&request.encode_to_vec()).unwrap()
}

/// The records of an export's Protobuf bytes, or its refusal.
fn records_of(message: &[u8]) -> Result<Vec<Value>, HttpError> {
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
    emit(message, &mut emitter, &mut Vec::new(), &mut Vec::new())?;
    Ok(String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect())
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
fn the_json_mapping_reads_to_the_same_export_as_protobuf() {
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
    assert_eq!(json::request(body.as_bytes()).unwrap(), export());
    let mut encoded = Vec::new();
    let from_json = protobuf(body.as_bytes(), Format::Json, &mut encoded).unwrap().to_vec();
    assert_eq!(records_of(&from_json).unwrap().len(), 2);
    // snake_case names are read too.
    let snake = r#"{"resource_logs":[{"scope_logs":[{"log_records":[{"severity_text":"WARN","event_name":"e"}]}]}]}"#;
    let log = &json::request(snake.as_bytes()).unwrap().resource_logs[0].scope_logs[0].log_records[0];
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
        assert!(json::request(body).is_err(), "{}", String::from_utf8_lossy(body));
    }
    assert_eq!(Format::of(Some(b"application/x-protobuf")), Ok(Format::Protobuf));
    assert_eq!(Format::of(Some(b"application/json; charset=utf-8")), Ok(Format::Json));
    assert!(Format::of(Some(b"text/plain")).is_err());
    assert!(Format::of(None).is_err());
}

/// The Protobuf bytes are read where they lie: what prost would refuse is refused, what it would skip is skipped.
#[test]
fn the_wire_is_read_as_protobuf_reads_it() {
    let good = export().encode_to_vec();
    // Cut anywhere inside, the export does not parse (a prefix that ends on a field boundary is a smaller export,
    // which prost takes too: those are compared instead).
    for end in 1..good.len() {
        let cut = &good[..end];
        match ExportLogsServiceRequest::decode(cut) {
            Ok(smaller) => {
                let raw = |records: Vec<Value>| records.into_iter().map(|r| r["raw_data"].clone()).collect::<Vec<_>>();
                assert_eq!(raw(records_of(cut).unwrap()), raw(records(&smaller)), "cut at {end}");
            }
            Err(_) => assert!(records_of(cut).is_err(), "cut at {end} is refused"),
        }
    }
    // An unknown field is skipped, a known one of the wrong wire type refused, a group refused.
    let mut unknown = good.clone();
    unknown.extend_from_slice(&[0x78, 0x05]); // field 15, varint 5
    assert_eq!(records_of(&unknown).unwrap().len(), 2);
    assert!(records_of(&[0x08, 0x01]).is_err(), "resource_logs as a varint");
    assert!(records_of(&[0x0b]).is_err(), "a group");
    // The last value of a scalar field wins.
    let twice = LogRecord { severity_text: "INFO".into(), ..LogRecord::default() };
    let mut log = twice.encode_to_vec();
    log.extend_from_slice(&LogRecord { severity_text: "WARN".into(), ..LogRecord::default() }.encode_to_vec());
    let export = wrap(&log);
    assert_eq!(records_of(&export).unwrap()[0]["raw_data"]["severity_text"], "WARN");
    // A string that is not UTF-8 is refused.
    let bad = LogRecord { severity_text: "x".into(), ..LogRecord::default() }.encode_to_vec();
    let bad: Vec<u8> = bad.iter().map(|&b| if b == b'x' { 0xff } else { b }).collect();
    assert!(records_of(&wrap(&bad)).is_err());
    // AnyValues nested deeper than the limit are refused.
    let mut deep = AnyValue { value: Some(text("leaf")) };
    for _ in 0..40 {
        deep = AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![deep] })) };
    }
    let deep = LogRecord { body: Some(deep), ..LogRecord::default() }.encode_to_vec();
    assert!(records_of(&wrap(&deep)).is_err());
}

/// An export of one log record given as its bytes.
fn wrap(log: &[u8]) -> Vec<u8> {
    let mut scope_logs = vec![0x12];
    push_len(&mut scope_logs, log);
    let mut resource_logs = vec![0x12];
    push_len(&mut resource_logs, &scope_logs);
    let mut export = vec![0x0a];
    push_len(&mut export, &resource_logs);
    export
}

fn push_len(out: &mut Vec<u8>, bytes: &[u8]) {
    prost::encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}
