//! OpenTelemetry's logs (OTLP 1.6): `LogsService/Export` over gRPC, and `POST /v1/logs` over HTTP/1.1 or HTTP/2
//! in Protobuf (`application/x-protobuf`) or OTLP's JSON mapping (`application/json`, `json.rs`). Each log record
//! becomes one record with protocol `otlp`:
//!
//! | record | from the log record |
//! |---|---|
//! | `raw_data` | `{"body":…,"severity_text":…,"severity_number":…,"attributes":{…},"resource":{…},"scope":{"name":…,"version":…,"attributes":{…}},"trace_id":"hex","span_id":"hex","flags":…,"observed_time":"RFC 3339"}`, members left out when the record has nothing for them; values typed as OTLP's `AnyValue` says (bytes as base64) |
//! | `event_type` | `"log"` |
//! | `event_name` | `event_name` (OTLP 1.5+), else null |
//! | `client_ts` (so `timestamp`) | `time_unix_nano`, else `observed_time_unix_nano`, in RFC 3339 with nanoseconds |
//! | `user_id` | the attribute `user.id` (a string) |
//! | `event_id` | the attribute `log.record.uid` (a string), else the request id |
//!
//! A request is stored whole or not at all, so the answer never reports a partial success: an accepted export's
//! `ExportLogsServiceResponse` is empty (`{}` in JSON).

mod json;

use base64::Engine;
use prost::Message;

use super::Scratch;
use crate::event::clock::Civil;
use crate::event::json::escape_into;
use crate::event::object::Text;
use crate::event::record::{Emitter, EventFields};
use crate::grpc::proto::otlp::{
    AnyValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, LogRecord, any_value,
};
use crate::http::HttpError;

/// How an OTLP/HTTP request's body is written, by its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// `application/x-protobuf` or `application/json` (parameters ignored); anything else is refused (415).
    pub fn of(content_type: Option<&[u8]>) -> Result<Format, HttpError> {
        let media = content_type.map(|t| t.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii());
        match media {
            Some(m) if m.eq_ignore_ascii_case(b"application/x-protobuf") => Ok(Format::Protobuf),
            Some(m) if m.eq_ignore_ascii_case(b"application/json") => Ok(Format::Json),
            _ => Err(HttpError::UnsupportedMediaType("OTLP/HTTP takes application/x-protobuf or application/json")),
        }
    }
}

/// `google.rpc.Status`, the body OTLP/HTTP gives every refusal (its fields 1 and 2; no details).
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The body of a refusal of an OTLP/HTTP request in `format`: a `google.rpc.Status` with the gRPC code of
/// `error` and its reason, into `out`; returns its content type.
pub fn status(error: HttpError, format: Format, out: &mut Vec<u8>) -> &'static str {
    out.clear();
    let status = Status { code: crate::grpc::Code::of(error) as i32, message: error.reason().to_string() };
    match format {
        Format::Protobuf => {
            status.encode(out).expect("a Vec grows");
            "application/x-protobuf"
        }
        Format::Json => {
            let json = serde_json::json!({"code": status.code, "message": status.message});
            out.extend_from_slice(json.to_string().as_bytes());
            "application/json"
        }
    }
}

/// An export's Protobuf message.
pub fn decode(message: &[u8]) -> Result<ExportLogsServiceRequest, HttpError> {
    ExportLogsServiceRequest::decode(message).map_err(|_| HttpError::BadRequest("not an OTLP ExportLogsServiceRequest"))
}

/// An OTLP/HTTP request's body in its format.
pub fn parse(body: &[u8], format: Format) -> Result<ExportLogsServiceRequest, HttpError> {
    match format {
        Format::Protobuf => decode(body),
        Format::Json => json::request(body),
    }
}

/// Every log record of `request`, one record each.
pub fn emit(request: &ExportLogsServiceRequest, emit: &mut Emitter<'_>, scratch: &mut Scratch) {
    let (raw, more) = (&mut scratch.nested, &mut scratch.more);
    for resource_logs in &request.resource_logs {
        let resource = resource_logs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        for scope_logs in &resource_logs.scope_logs {
            for log in &scope_logs.log_records {
                raw.clear();
                raw_data(raw, log, resource, scope_logs.scope.as_ref());
                more.clear();
                let time = if log.time_unix_nano != 0 { log.time_unix_nano } else { log.observed_time_unix_nano };
                if time != 0 {
                    rfc3339_nanos(more, time);
                }
                let client_ts = std::str::from_utf8(more).ok().filter(|t| !t.is_empty());
                let fields = EventFields {
                    event_type: Some(Text::Static("log")),
                    event_name: (!log.event_name.is_empty()).then_some(Text::Plain(&log.event_name)),
                    user_id: string_attribute(&log.attributes, "user.id").map(Text::Plain),
                    event_id: string_attribute(&log.attributes, "log.record.uid").map(Text::Plain),
                    client_ts: client_ts.map(Text::Plain),
                    ..EventFields::default()
                };
                emit.event(&fields, |out| out.extend_from_slice(raw));
            }
        }
    }
}

/// A log record's `raw_data` object.
fn raw_data(out: &mut Vec<u8>, log: &LogRecord, resource: &[KeyValue], scope: Option<&InstrumentationScope>) {
    let mut members = Members::open(out);
    if let Some(body) = &log.body {
        members.key(b"body");
        any(members.out, body);
    }
    if !log.severity_text.is_empty() {
        members.key(b"severity_text");
        string(members.out, &log.severity_text);
    }
    if log.severity_number != 0 {
        members.key(b"severity_number");
        members.out.extend_from_slice(log.severity_number.to_string().as_bytes());
    }
    if !log.attributes.is_empty() {
        members.key(b"attributes");
        object(members.out, &log.attributes);
    }
    if !resource.is_empty() {
        members.key(b"resource");
        object(members.out, resource);
    }
    if let Some(scope) = scope.filter(|s| !s.name.is_empty() || !s.version.is_empty() || !s.attributes.is_empty()) {
        members.key(b"scope");
        let mut inner = Members::open(members.out);
        if !scope.name.is_empty() {
            inner.key(b"name");
            string(inner.out, &scope.name);
        }
        if !scope.version.is_empty() {
            inner.key(b"version");
            string(inner.out, &scope.version);
        }
        if !scope.attributes.is_empty() {
            inner.key(b"attributes");
            object(inner.out, &scope.attributes);
        }
        inner.close();
    }
    for (name, id) in [(&b"trace_id"[..], &log.trace_id), (b"span_id", &log.span_id)] {
        if !id.is_empty() && id.iter().any(|&b| b != 0) {
            members.key(name);
            hex(members.out, id);
        }
    }
    if log.flags != 0 {
        members.key(b"flags");
        members.out.extend_from_slice(log.flags.to_string().as_bytes());
    }
    if log.observed_time_unix_nano != 0 {
        members.key(b"observed_time");
        members.out.push(b'"');
        rfc3339_nanos(members.out, log.observed_time_unix_nano);
        members.out.push(b'"');
    }
    members.close();
}

/// A JSON object being written member by member.
struct Members<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Members<'a> {
    fn open(out: &'a mut Vec<u8>) -> Members<'a> {
        out.push(b'{');
        Members { out, first: true }
    }

    fn key(&mut self, name: &[u8]) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        escape_into(self.out, name);
        self.out.extend_from_slice(b"\":");
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// Attributes as one JSON object (a key repeated: the last value, as JSON readers keep it).
pub(super) fn object(out: &mut Vec<u8>, attributes: &[KeyValue]) {
    let mut members = Members::open(out);
    for attribute in attributes {
        members.key(attribute.key.as_bytes());
        match &attribute.value {
            Some(value) => any(members.out, value),
            None => members.out.extend_from_slice(b"null"),
        }
    }
    members.close();
}

/// An `AnyValue` as JSON: strings, booleans, integers and doubles as themselves (a double that is not finite
/// as null), arrays and key-value lists as arrays and objects, bytes as base64; an empty value as null.
fn any(out: &mut Vec<u8>, value: &AnyValue) {
    match &value.value {
        None => out.extend_from_slice(b"null"),
        Some(any_value::Value::StringValue(s)) => string(out, s),
        Some(any_value::Value::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(any_value::Value::IntValue(n)) => out.extend_from_slice(n.to_string().as_bytes()),
        Some(any_value::Value::DoubleValue(x)) if x.is_finite() => {
            out.extend_from_slice(serde_json::Number::from_f64(*x).map_or("null".into(), |n| n.to_string()).as_bytes())
        }
        Some(any_value::Value::DoubleValue(_)) => out.extend_from_slice(b"null"),
        Some(any_value::Value::ArrayValue(array)) => {
            out.push(b'[');
            for (k, element) in array.values.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                any(out, element);
            }
            out.push(b']');
        }
        Some(any_value::Value::KvlistValue(list)) => object(out, &list.values),
        Some(any_value::Value::BytesValue(bytes)) => {
            out.push(b'"');
            out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(bytes).as_bytes());
            out.push(b'"');
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s.as_bytes());
    out.push(b'"');
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
    }
    out.push(b'"');
}

/// The string value of the attribute `key`, if it has one.
fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().rev().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    })
}

/// `nanos` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub(super) fn rfc3339_nanos(out: &mut Vec<u8>, nanos: u64) {
    let secs = (nanos / 1_000_000_000) as i64;
    let c = Civil::from_unix(secs);
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        nanos % 1_000_000_000
    );
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests;
