use serde_json::{Value, json};

use super::*;

/// The fields of every record, in order.
const FIELDS: [&str; 21] = [
    "raw_data",
    "written_at",
    "request_id",
    "ip",
    "user_agent",
    "method",
    "path",
    "transport",
    "protocol",
    "event_id",
    "event_type",
    "event_name",
    "schema",
    "validation",
    "user_id",
    "anonymous_id",
    "client_ts",
    "sent_at",
    "timestamp",
    "retry_count",
    "visitor_id",
];

fn meta<'a>(ip: &'a str, user_agent: &'a [u8], protocol: Protocol) -> RequestMeta<'a> {
    RequestMeta {
        ip,
        user_agent,
        method: Method::Get,
        path: b"/e",
        transport: Transport::Http,
        headers: b"",
        enrichment: b"",
        protocol,
        retry_count: None,
        visitor_id: None,
    }
}

fn lines(out: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(text.ends_with('\n'));
    text.lines().map(|l| (l.to_string(), serde_json::from_str(l).unwrap())).collect()
}

fn assert_field_order(line: &str) {
    let positions: Vec<usize> = FIELDS.iter().map(|k| line.find(&format!("\"{k}\":")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "field order in {line}");
}

#[test]
fn records_are_one_valid_json_line_with_plutos_fields_first() {
    let clock = Clock::new();
    let mut builder = RecordBuilder::default();
    builder.start_request(&meta("203.0.113.7", b"curl/8.5.0 \"quoted\" \xff", Protocol::Plutos), &clock);
    let mut ids = RequestIds::new(0, 1);
    let mut out = Vec::new();
    builder.append_record(&mut out, br#"{"test":"me"}"#, &mut ids);
    builder.append_record(&mut out, br#"[1,"two"]"#, &mut ids);
    let lines = lines(&out);
    assert_eq!(lines.len(), 2);
    let (line, v) = &lines[0];
    assert!(line.starts_with(r#"{"raw_data":{"test":"me"},"written_at":""#), "{line}");
    assert_field_order(line);
    assert_eq!(v.as_object().unwrap().len(), FIELDS.len());
    assert_eq!(v["ip"], "203.0.113.7");
    assert_eq!(v["user_agent"], "curl/8.5.0 \"quoted\" \u{fffd}");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["protocol"], "plutos");
    assert!(v["written_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["event_id"], v["request_id"], "no id of its own: the request id");
    assert_eq!(v["timestamp"], v["written_at"], "no time of its own: received");
    // Everything an event brings (`event_type` to `sent_at`), and what the request did not say.
    for null in FIELDS[10..18].iter().chain(&["retry_count", "visitor_id"]) {
        assert_eq!(v[*null], Value::Null, "{null}");
    }
    let second = &lines[1].1;
    assert_eq!(second["raw_data"], json!([1, "two"]));
    assert_ne!(v["request_id"], second["request_id"]);
    assert_eq!(second["event_id"], second["request_id"]);
}

#[test]
fn an_sdk_event_brings_its_own_fields() {
    let clock = Clock::new();
    let mut builder = RecordBuilder::default();
    let visitor = "5f6c-visitor";
    let request = RequestMeta {
        protocol: Protocol::Segment,
        retry_count: Some(2),
        visitor_id: Some(visitor),
        ..meta("10.0.0.1", b"sdk", Protocol::Segment)
    };
    builder.start_request(&request, &clock);
    let received = clock.unix_micros();
    let client = "2026-12-02T14:00:00Z";
    let sent = "2026-12-02T14:00:05Z";
    let (client_literal, sent_literal) = (format!("\"{client}\""), format!("\"{sent}\""));
    let fields = EventFields {
        event_id: Some(Text::Literal(br#""m-1""#)),
        event_type: Some(Text::Static("track")),
        event_name: Some(Text::Literal(br#""Order \"Completed\"""#)),
        user_id: Some(Text::Number(b"42")),
        anonymous_id: None,
        client_ts: Some(Text::Literal(client_literal.as_bytes())),
        sent_at: Some(Text::Literal(sent_literal.as_bytes())),
        schema: Some(Text::Literal(br#""iglu:com.acme/order/jsonschema/1-0-0""#)),
        validation: Some(br#"[{"error":"ValidationError"}]"#),
    };
    let mut ids = RequestIds::new(0, 1);
    let mut out = Vec::new();
    builder.begin_record(&mut out);
    out.extend_from_slice(b"{}");
    builder.finish_event(&mut out, &mut ids, &fields);
    builder.begin_record(&mut out);
    out.extend_from_slice(b"{}");
    builder.finish_event(&mut out, &mut ids, &EventFields::default());
    let lines = lines(&out);
    let (line, v) = &lines[0];
    assert_field_order(line);
    assert_eq!(v["protocol"], "segment");
    assert_eq!(v["event_id"], "m-1");
    assert_eq!(v["event_type"], "track");
    assert_eq!(v["event_name"], "Order \"Completed\"");
    assert_eq!(v["user_id"], "42", "a number written as a string");
    assert_eq!(v["anonymous_id"], Value::Null);
    assert_eq!(v["schema"], "iglu:com.acme/order/jsonschema/1-0-0");
    assert_eq!(v["validation"], json!([{"error": "ValidationError"}]));
    assert_eq!((v["client_ts"].as_str(), v["sent_at"].as_str()), (Some(client), Some(sent)));
    let mut want = Vec::new();
    timestamp::append_json(&mut want, received - 5_000_000);
    assert_eq!(v["timestamp"], serde_json::from_slice::<Value>(&want).unwrap(), "received − 5 s");
    assert_eq!(v["retry_count"], 2);
    assert_eq!(v["visitor_id"], visitor);
    let bare = &lines[1].1;
    assert_eq!(bare["event_id"], bare["request_id"]);
    assert_eq!(bare["timestamp"], bare["written_at"]);
    assert_eq!(bare["event_type"], Value::Null);
}

#[test]
fn reused_request_parts_follow_each_request() {
    let clock = Clock::new();
    let mut builder = RecordBuilder::default();
    let mut ids = RequestIds::new(0, 1);
    let mut out = Vec::new();
    let requests = [
        (&b"one"[..], "10.0.0.1", Protocol::Plutos, None, None),
        (b"one", "10.0.0.1", Protocol::Plutos, None, None),
        (b"two", "10.0.0.1", Protocol::Plutos, Some(1), Some("v1")),
        (b"two", "10.0.0.2", Protocol::PostHog, Some(1), Some("v2")),
        (b"two", "10.0.0.2", Protocol::PostHog, None, None),
    ];
    for (ua, ip, protocol, retry_count, visitor_id) in requests {
        let request = RequestMeta { retry_count, visitor_id, ..meta(ip, ua, protocol) };
        builder.start_request(&request, &clock);
        builder.append_record(&mut out, b"{}", &mut ids);
    }
    let seen: Vec<Value> = lines(&out)
        .into_iter()
        .map(|(_, v)| json!([v["user_agent"], v["ip"], v["protocol"], v["retry_count"], v["visitor_id"]]))
        .collect();
    let want = [
        json!(["one", "10.0.0.1", "plutos", null, null]),
        json!(["one", "10.0.0.1", "plutos", null, null]),
        json!(["two", "10.0.0.1", "plutos", 1, "v1"]),
        json!(["two", "10.0.0.2", "posthog", 1, "v2"]),
        json!(["two", "10.0.0.2", "posthog", null, null]),
    ];
    assert_eq!(seen, want);
}
