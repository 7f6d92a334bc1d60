//! The benchmark's gRPC and OTLP request messages, shared by `examples/grpc_bodies.rs` (h2load's bodies) and
//! `examples/ingest_cost.rs` (instruction counts): `post_ndjson`'s 100 events (bench/wrk/ndjson_events.lua) as a
//! `plutos.v1.Collector/Send` call, the same data as 100 OTLP log records (a body, four attributes, a resource
//! and a scope, as an SDK fills them), and those records' `raw_data` as NDJSON (bench/wrk/
//! post_ndjson_otlp_events.lua: the like for like).

use plutos::grpc::proto::otlp::{
    AnyValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, LogRecord, Resource, ResourceLogs, ScopeLogs,
    any_value,
};
use plutos::grpc::proto::plutos::v1::{Event, SendRequest};
use prost::Message;

const EVENTS: u64 = 100;
const TS: u64 = 1_764_124_014_084;

fn text(key: &str, value: String) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(value)) }) }
}

/// The `Send` request, its Protobuf bytes.
#[allow(dead_code)]
pub fn send_100() -> Vec<u8> {
    let json = |i: u64| {
        format!(
            r#"{{"event":"impression","ad_id":"ad-{i:05}","user_id":"u-8f14e45fceea167a5a36","slot":"top-{}","ts":{}}}"#,
            i % 4,
            TS + i
        )
    };
    SendRequest { events: (1..=EVENTS).map(|i| Event { json: json(i), ..Event::default() }).collect() }.encode_to_vec()
}

/// The OTLP export, its Protobuf bytes.
pub fn otlp_100() -> Vec<u8> {
    let logs = (1..=EVENTS)
        .map(|i| LogRecord {
            time_unix_nano: (TS + i) * 1_000_000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue { value: Some(any_value::Value::StringValue("impression".into())) }),
            attributes: vec![
                text("ad_id", format!("ad-{i:05}")),
                text("user.id", "u-8f14e45fceea167a5a36".into()),
                text("slot", format!("top-{}", i % 4)),
                KeyValue {
                    key: "ts".into(),
                    value: Some(AnyValue { value: Some(any_value::Value::IntValue((TS + i) as i64)) }),
                },
            ],
            ..LogRecord::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![text("service.name", "ads".into())], ..Resource::default() }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope { name: "ads.impressions".into(), ..InstrumentationScope::default() }),
                log_records: logs,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

/// The `raw_data` of the export's records, one per line.
#[allow(dead_code)]
pub fn otlp_events_as_ndjson() -> String {
    (1..=EVENTS)
        .map(|i| {
            format!(
                "{{\"body\":\"impression\",\"severity_text\":\"INFO\",\"severity_number\":9,\"attributes\":{{\"ad_id\":\"ad-{i:05}\",\
                 \"user.id\":\"u-8f14e45fceea167a5a36\",\"slot\":\"top-{}\",\"ts\":{}}},\"resource\":{{\"service.name\":\"ads\"}},\
                 \"scope\":{{\"name\":\"ads.impressions\"}}}}\n",
                i % 4,
                TS + i
            )
        })
        .collect()
}
