//! Bad rows: events refused for their content, written to the worker's bad stream in Snowplow's own bad-row
//! format — self-describing JSON valid against Iglu Central's `com.snowplowanalytics.snowplow.badrows`
//! schemas, so Snowplow's tooling (and anyone who knows it) reads them.
//!
//! - `schema_violations` 2-0-0: an event that failed its schemas (`VALIDATION=reject`). `failure.messages` are
//!   the checker's (the same JSON as a flagged record's `validation`); `payload.raw` is the event as the
//!   collector received it — one parameter per top-level member, values cut at the schema's 512 characters —
//!   and `payload.enriched` the fields plutos read, with the self-describing parts whole (`unstruct_event`,
//!   `contexts`: JSON as strings) so the event can be rebuilt and sent again once fixed.
//! - `size_violation` 1-0-0: a Snowplow payload over the body limit (its trackers would send it again forever
//!   if refused), with its size and first bytes.

use crate::event::json::{escape_into, escape_lossy_into};
use crate::event::object::{Members, key, text};
use crate::event::record::{EventFields, Protocol};
use crate::schema::SchemaKey;

pub const SCHEMA_VIOLATIONS: &str = "iglu:com.snowplowanalytics.snowplow.badrows/schema_violations/jsonschema/2-0-0";
pub const SIZE_VIOLATION: &str = "iglu:com.snowplowanalytics.snowplow.badrows/size_violation/jsonschema/1-0-0";
const PROCESSOR: &str = concat!("{\"artifact\":\"plutos\",\"version\":\"", env!("CARGO_PKG_VERSION"), "\"}");
/// `payload.raw.parameters[].name` and `.value` are at most this many characters (the schema's bound).
const MAX_PARAMETER_CHARS: usize = 512;
/// `payload.raw.useragent` (the schema's bound).
const MAX_USER_AGENT_CHARS: usize = 4096;
/// The sizes a size violation states are at most this (the schema's bound: 1 GiB).
const MAX_SIZE: u64 = 1 << 30;

/// The kinds of bad row plutos writes, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRowKind {
    SchemaViolations,
    SizeViolation,
}

impl BadRowKind {
    pub const ALL: [BadRowKind; 2] = [BadRowKind::SchemaViolations, BadRowKind::SizeViolation];

    pub fn name(self) -> &'static str {
        match self {
            BadRowKind::SchemaViolations => "schema_violations",
            BadRowKind::SizeViolation => "size_violation",
        }
    }
}

/// What the collector knows of the request that brought the event.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// When it was received (RFC 3339, no quotes): the records' `written_at`.
    pub timestamp: &'a [u8],
    pub ip: &'a str,
    pub user_agent: &'a [u8],
    pub protocol: Protocol,
}

/// The event's self-describing event, for `payload.enriched.unstruct_event`.
#[derive(Debug, Clone, Copy)]
pub enum Unstruct<'a> {
    None,
    /// A self-describing JSON (plutos's `/e`, Snowplow's `ue_pr`).
    Json(&'a [u8]),
    /// Data and the schema it was checked against (a tracking plan's: a JSON string literal).
    Parts {
        schema: &'a [u8],
        data: &'a [u8],
    },
}

/// Appends the `schema_violations` bad row of `event` (the JSON value its record's `raw_data` would have been),
/// with `messages` (a JSON array of failures) and the fields plutos read of it, and a newline.
pub fn schema_violations(
    out: &mut Vec<u8>,
    received: &Received<'_>,
    messages: &[u8],
    event: &[u8],
    fields: &EventFields<'_>,
    unstruct: Unstruct<'_>,
    contexts: Option<&[u8]>,
) {
    open(out, SCHEMA_VIOLATIONS, received);
    out.extend_from_slice(b"\",\"messages\":");
    out.extend_from_slice(messages);
    out.extend_from_slice(b"},\"payload\":{\"raw\":{\"vendor\":\"");
    let (vendor, version) = adapter(received.protocol);
    out.extend_from_slice(vendor.as_bytes());
    out.extend_from_slice(b"\",\"version\":\"");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\",\"parameters\":[");
    parameters(out, event);
    out.extend_from_slice(b"],\"contentType\":null,\"loaderName\":\"plutos\",\"encoding\":\"UTF-8\",\"timestamp\":\"");
    out.extend_from_slice(received.timestamp);
    out.extend_from_slice(b"\",\"ipAddress\":\"");
    escape_into(out, received.ip.as_bytes());
    out.extend_from_slice(b"\",\"useragent\":\"");
    escape_lossy_into(out, cut_chars(&String::from_utf8_lossy(received.user_agent), MAX_USER_AGENT_CHARS).as_bytes());
    out.extend_from_slice(b"\",\"userId\":null},\"enriched\":{\"collector_tstamp\":\"");
    out.extend_from_slice(received.timestamp);
    out.extend_from_slice(b"\",\"user_ipaddress\":\"");
    escape_into(out, received.ip.as_bytes());
    out.push(b'"');
    for (name, value) in [
        (&b",\"event_id\":"[..], fields.event_id),
        (b",\"event\":", fields.event_type),
        (b",\"user_id\":", fields.user_id),
        (b",\"domain_userid\":", fields.anonymous_id),
        (b",\"dvce_created_tstamp\":", fields.client_ts),
        (b",\"dvce_sent_tstamp\":", fields.sent_at),
    ] {
        out.extend_from_slice(name);
        match value {
            Some(value) => value.write(out),
            None => out.extend_from_slice(b"null"),
        }
    }
    let schema = match unstruct {
        Unstruct::None => None,
        Unstruct::Json(json) => {
            out.extend_from_slice(b",\"unstruct_event\":\"");
            escape_into(out, json);
            out.push(b'"');
            self_describing_schema(json)
        }
        Unstruct::Parts { schema, data } => {
            out.extend_from_slice(b",\"unstruct_event\":\"{\\\"schema\\\":");
            escape_into(out, schema);
            out.extend_from_slice(b",\\\"data\\\":");
            escape_into(out, data);
            out.extend_from_slice(b"}\"");
            Some(schema)
        }
    };
    if let Some(key) = schema.and_then(text).and_then(|uri| SchemaKey::parse(&uri).ok()) {
        for (name, value) in [
            (&b",\"event_vendor\":\""[..], &*key.vendor),
            (b",\"event_name\":\"", &*key.name),
            (b",\"event_format\":\"", &*key.format),
            (b",\"event_version\":\"", &key.version.to_string()),
        ] {
            out.extend_from_slice(name);
            escape_into(out, value.as_bytes());
            out.push(b'"');
        }
    } else if let Some(name) = fields.event_name {
        out.extend_from_slice(b",\"event_name\":");
        name.write(out);
    }
    if let Some(contexts) = contexts {
        out.extend_from_slice(b",\"contexts\":\"");
        escape_into(out, contexts);
        out.push(b'"');
    }
    out.extend_from_slice(b"}}}}\n");
}

/// Appends the `size_violation` bad row of a payload over `limit` bytes (`size`: its length, or as much of it as
/// is known; `setting`: the limit's name; `head`: its first bytes), and a newline.
pub fn size_violation(out: &mut Vec<u8>, received: &Received<'_>, limit: u64, size: u64, setting: &str, head: &[u8]) {
    open(out, SIZE_VIOLATION, received);
    let sizes =
        format!("\",\"maximumAllowedSizeBytes\":{},\"actualSizeBytes\":{},", limit.min(MAX_SIZE), size.min(MAX_SIZE));
    out.extend_from_slice(sizes.as_bytes());
    out.extend_from_slice(b"\"expectation\":\"at most ");
    out.extend_from_slice(setting.as_bytes());
    out.extend_from_slice(b"\"},\"payload\":\"");
    escape_lossy_into(out, head);
    out.extend_from_slice(b"\"}}\n");
}

/// `{"schema":"{schema}","data":{"processor":…,"failure":{"timestamp":"…` — every bad row's start.
fn open(out: &mut Vec<u8>, schema: &str, received: &Received<'_>) {
    out.extend_from_slice(b"{\"schema\":\"");
    out.extend_from_slice(schema.as_bytes());
    out.extend_from_slice(b"\",\"data\":{\"processor\":");
    out.extend_from_slice(PROCESSOR.as_bytes());
    out.extend_from_slice(b",\"failure\":{\"timestamp\":\"");
    out.extend_from_slice(received.timestamp);
}

/// The adapter a raw payload names (`vendor`, `version`: at most 64 and 16 characters).
fn adapter(protocol: Protocol) -> (&'static str, &'static str) {
    match protocol {
        Protocol::Plutos => ("io.plutos", "v1"),
        Protocol::Segment => ("com.segment", "v1"),
        Protocol::PostHog => ("com.posthog", "v0"),
        Protocol::Snowplow => ("com.snowplowanalytics.snowplow", "tp2"),
        Protocol::Otlp => ("io.opentelemetry", "v1"),
    }
}

/// `{"name":…,"value":…}` per top-level member of `event` (strings as their text, other values as JSON), or
/// one parameter `event` holding it when it is not an object; names and values cut at 512 characters.
fn parameters(out: &mut Vec<u8>, event: &[u8]) {
    let mut parameter = |name: &str, value: &[u8]| {
        if out.last() != Some(&b'[') {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":\"");
        escape_into(out, cut_chars(name, MAX_PARAMETER_CHARS).as_bytes());
        out.extend_from_slice(b"\",\"value\":\"");
        match text(value).filter(|_| value.starts_with(b"\"")) {
            Some(text) => escape_into(out, cut_chars(&text, MAX_PARAMETER_CHARS).as_bytes()),
            None => escape_lossy_into(out, cut_chars(&String::from_utf8_lossy(value), MAX_PARAMETER_CHARS).as_bytes()),
        }
        out.extend_from_slice(b"\"}");
    };
    if !event.starts_with(b"{") {
        return parameter("event", event);
    }
    for (name, value) in Members::of(event) {
        parameter(&String::from_utf8_lossy(&key(name)), value);
    }
}

/// The schema literal of a self-describing JSON; of the event inside it when it is Snowplow's envelope.
fn self_describing_schema(json: &[u8]) -> Option<&[u8]> {
    use crate::event::object::get;
    let schema = get(json, "schema").filter(|s| s.starts_with(b"\""))?;
    if schema.starts_with(b"\"iglu:com.snowplowanalytics.snowplow/unstruct_event/") {
        return get(json, "data").and_then(self_describing_schema);
    }
    Some(schema)
}

/// The first `max` characters of `s`.
fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::event::object::Text;

    /// `Text` of a JSON string literal.
    fn literal(s: &'static str) -> Option<Text<'static>> {
        Text::of(s.as_bytes())
    }

    const RECEIVED: Received<'static> = Received {
        timestamp: b"2026-12-06T18:00:00.123456Z",
        ip: "203.0.113.9",
        user_agent: b"Mozilla/5.0",
        protocol: Protocol::Snowplow,
    };

    #[test]
    fn a_schema_violation_keeps_the_event_and_says_why() {
        let messages = br#"[{"schemaKey":"iglu:com.acme/x/jsonschema/1-0-0","error":{"error":"ValidationError","dataReports":[{"message":"m","path":"$.a","keyword":"type","targets":null}]}}]"#;
        let long = "é".repeat(600);
        let event = format!(r#"{{"e":"ue","eid":"e-1","ue_pr":{{"schema":"iglu:x","data":{{}}}},"long":"{long}"}}"#);
        let ue = br#"{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{"schema":"iglu:com.acme/x/jsonschema/1-0-0","data":{"a":1}}}"#;
        let fields = EventFields { event_id: literal("\"e-1\""), ..EventFields::default() };
        let mut out = Vec::new();
        schema_violations(&mut out, &RECEIVED, messages, event.as_bytes(), &fields, Unstruct::Json(ue), Some(b"[1]"));
        assert_eq!(out.pop(), Some(b'\n'));
        let row: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(row["schema"], SCHEMA_VIOLATIONS);
        let data = &row["data"];
        assert_eq!(data["processor"]["artifact"], "plutos");
        assert_eq!(data["failure"]["messages"][0]["schemaKey"], "iglu:com.acme/x/jsonschema/1-0-0");
        let parameters = data["payload"]["raw"]["parameters"].as_array().unwrap();
        let names: Vec<&str> = parameters.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["e", "eid", "ue_pr", "long"]);
        assert_eq!(parameters[3]["value"].as_str().unwrap().chars().count(), 512, "cut at 512 characters");
        assert_eq!(parameters[2]["value"], r#"{"schema":"iglu:x","data":{}}"#, "JSON values as their text");
        let enriched = &data["payload"]["enriched"];
        assert_eq!(enriched["unstruct_event"].as_str().unwrap().as_bytes(), ue, "whole, as a string");
        assert_eq!((&enriched["event_id"], &enriched["contexts"]), (&json!("e-1"), &json!("[1]")));
        // The event inside the envelope names the event.
        assert_eq!((&enriched["event_vendor"], &enriched["event_name"]), (&json!("com.acme"), &json!("x")));
    }

    #[test]
    fn a_planned_event_names_the_plan_schema() {
        let fields = EventFields { event_name: literal("\"Order Completed\""), ..EventFields::default() };
        let received = Received { protocol: Protocol::Segment, ..RECEIVED };
        let unstruct =
            Unstruct::Parts { schema: b"\"iglu:com.acme/order/jsonschema/1-0-2\"", data: b"{\"total\":\"x\"}" };
        let mut out = Vec::new();
        schema_violations(&mut out, &received, b"[]", b"\"not an object\"", &fields, unstruct, None);
        let row: Value = serde_json::from_slice(&out).unwrap();
        let enriched = &row["data"]["payload"]["enriched"];
        let unstruct: Value = serde_json::from_str(enriched["unstruct_event"].as_str().unwrap()).unwrap();
        assert_eq!(unstruct, json!({"schema": "iglu:com.acme/order/jsonschema/1-0-2", "data": {"total": "x"}}));
        assert_eq!((&enriched["event_name"], &enriched["event_version"]), (&json!("order"), &json!("1-0-2")));
        let raw = &row["data"]["payload"]["raw"];
        assert_eq!(
            (&raw["vendor"], &raw["parameters"]),
            (&json!("com.segment"), &json!([{"name": "event", "value": "not an object"}]))
        );
    }

    #[test]
    fn a_size_violation_states_its_sizes_within_the_schema_bounds() {
        let mut out = Vec::new();
        size_violation(&mut out, &RECEIVED, 1000, 5 << 30, "MAX_BODY_BYTES", b"{\"schema\":\"\xff");
        let row: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(row["schema"], SIZE_VIOLATION);
        let failure = &row["data"]["failure"];
        assert_eq!(
            (&failure["maximumAllowedSizeBytes"], &failure["actualSizeBytes"]),
            (&json!(1000), &json!(1u64 << 30))
        );
        assert_eq!(row["data"]["payload"], "{\"schema\":\"\u{fffd}");
        assert_eq!(failure["expectation"], "at most MAX_BODY_BYTES");
    }
}
