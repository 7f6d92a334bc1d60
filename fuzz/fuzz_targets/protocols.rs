//! (g) The protocols beside `/e`: whatever bytes arrive on a Segment, PostHog or Snowplow route (a batch, one
//! message, a capture body in any wrapping, a tp2 envelope, a pixel's query), as OTLP logs (Protobuf, JSON, a
//! gRPC call) or as a gRPC `Send`, through the protocol's own dispatch (`Ingest::events`): one record per event
//! written, each a JSON object serde_json reads, with every stable
//! field of every record, and no member that carries a key in any record (also when the request is refused
//! part-way: the worker rolls those back).

#![no_main]

#[path = "support/records.rs"]
mod support;

use libfuzzer_sys::fuzz_target;
use plutos::event::clock::Clock;
use plutos::event::ids::RequestIds;
use plutos::event::record::{Emitter, Protocol, RecordBuilder, RequestMeta, Transport};
use plutos::http::Method;
use plutos::http::write_key::{KeyGate, WriteKeys};
use plutos::protocol::{Ingest, Intake, Scratch};

/// Every field of every record, whichever protocol brought it.
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
const KEY: &str = "fuzz-key-9f2c";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    // The second byte, when there is one, splits the rest into a query and a body.
    let (query, body) = match rest.split_first() {
        Some((&at, rest)) => rest.split_at(usize::from(at).min(rest.len())),
        None => (&b""[..], rest),
    };
    let ingest = match selector % 8 {
        0 => Ingest::Segment(None),
        1 => Ingest::Segment(Some("track")),
        2 => Ingest::PostHog,
        3 => Ingest::SnowplowPost,
        4 => Ingest::SnowplowPixel,
        5 => Ingest::OtlpHttp,
        6 => Ingest::OtlpGrpc,
        _ => Ingest::Send,
    };
    // A gRPC call's body is one length-prefixed message: the fuzzer's bytes are its message.
    let framed;
    let body = if ingest.is_grpc() {
        framed = plutos::grpc::frame(body);
        &framed[..]
    } else {
        body
    };
    let protocol = ingest.protocol();
    let clock = Clock::new();
    let mut builder = RecordBuilder::default();
    let meta = RequestMeta {
        ip: "203.0.113.7",
        user_agent: b"fuzz",
        method: Method::Post,
        path: b"/fuzz",
        transport: Transport::Http,
        headers: b"",
        enrichment: b"",
        protocol,
        retry_count: None,
        visitor_id: None,
    };
    builder.start_request(&meta, &clock);
    let keys = WriteKeys::new(&[KEY.to_string()]);
    let gate = if selector & 0x80 != 0 { KeyGate::BodyKeys(&keys) } else { KeyGate::Open };
    let (mut ids, mut scratch) = (RequestIds::new(0, 1), Scratch::default());
    let mut out = b"previous\n".to_vec();
    let mut emit = Emitter::new(&mut out, &builder, &mut ids);
    let method = if selector & 0x40 != 0 { Method::Get } else { Method::Post };
    let content_type = match ingest {
        Ingest::OtlpHttp if selector & 0x20 != 0 => Some(&b"application/json"[..]),
        Ingest::OtlpHttp => Some(&b"application/x-protobuf"[..]),
        _ => (selector & 0x20 != 0).then_some(&b"application/x-www-form-urlencoded"[..]),
    };
    let intake = Intake { method, query, body, content_type, grpc_encoding: None, max_decompressed: 1 << 16 };
    let result = ingest.events(&intake, gate, &mut emit, &mut scratch);
    let events = emit.events();
    // Refused part-way, a request's records are rolled back by the worker; those written are whole lines all
    // the same, and none carries a key.
    let _ = result;
    for value in support::whole_records(&out, events) {
        let object = value.as_object().expect("an object");
        assert_eq!(object.len(), FIELDS.len(), "{value}");
        for field in FIELDS {
            assert!(object.contains_key(field), "{field} in {value}");
        }
        assert_eq!(value["protocol"], protocol.name());
        assert!(value["event_id"].is_string() && value["timestamp"].is_string(), "{value}");
        for field in ["event_type", "event_name", "schema", "user_id", "anonymous_id", "client_ts", "sent_at"] {
            assert!(value[field].is_string() || value[field].is_null(), "{field} in {value}");
        }
        assert!(value["validation"].is_array() || value["validation"].is_null(), "{value}");
        // The members that carry a key are left out (Snowplow's key is its app id, which stays in the event).
        let raw = &value["raw_data"];
        let carried = match protocol {
            Protocol::Segment => raw.get("writeKey").is_some(),
            Protocol::PostHog => {
                ["api_key", "token"].iter().any(|k| raw.get(k).is_some()) || raw["properties"].get("token").is_some()
            }
            _ => false,
        };
        assert!(!carried, "a key member in {value}");
    }
});
