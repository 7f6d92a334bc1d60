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
pub(super) mod wire;

use std::io::Write;

use prost::Message;

use crate::event::clock::{Civil, put_digits};
use crate::event::json::escape_into;
use crate::event::object::Text;
use crate::event::record::{Emitter, EventFields};
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

/// An OTLP/HTTP request's body as the Protobuf bytes of its export: itself, or its JSON mapping read and encoded
/// (into `encoded`), so both forms take one path.
pub fn protobuf<'a>(body: &'a [u8], format: Format, encoded: &'a mut Vec<u8>) -> Result<&'a [u8], HttpError> {
    match format {
        Format::Protobuf => Ok(body),
        Format::Json => {
            encoded.clear();
            json::request(body)?.encode(encoded).expect("a Vec grows");
            Ok(encoded)
        }
    }
}

/// Every log record of the export `message` (its Protobuf bytes), one record each, read without decoding the
/// message into owned types (`wire.rs`). Malformed, the export is refused whole (the worker rolls back what was
/// written).
/// `raw` and `time` are scratch (a record's raw data, its time as text).
pub fn emit(message: &[u8], emit: &mut Emitter<'_>, raw: &mut Vec<u8>, time: &mut Vec<u8>) -> Result<(), HttpError> {
    wire::each_log(message, |log, resource, scope| {
        let scalars = wire::Scalars::of(log)?;
        raw.clear();
        wire::raw_data(raw, log, &scalars, resource, scope)?;
        time.clear();
        let at = if scalars.time != 0 { scalars.time } else { scalars.observed };
        if at != 0 {
            rfc3339_nanos(time, at);
        }
        let fields = EventFields {
            event_type: Some(Text::Static("log")),
            event_name: (!scalars.event_name.is_empty()).then_some(Text::Plain(scalars.event_name)),
            user_id: scalars.user_id.map(Text::Plain),
            event_id: scalars.uid.map(Text::Plain),
            client_ts: std::str::from_utf8(time).ok().filter(|t| !t.is_empty()).map(Text::Plain),
            ..EventFields::default()
        };
        emit.event(&fields, |out| out.extend_from_slice(raw));
        Ok(())
    })
}

/// Typed values (`KeyValue`s, each in field `number` of `message`) as one JSON object: plutos's gRPC `Send`
/// event's `properties`.
pub(super) fn properties(out: &mut Vec<u8>, message: &[u8], number: u32) -> Result<(), HttpError> {
    wire::object(out, message, number, 0)
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

pub(super) fn string(out: &mut Vec<u8>, s: &str) {
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

/// `nanos` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (a record per log record has two: written
/// digit by digit, not formatted).
pub(super) fn rfc3339_nanos(out: &mut Vec<u8>, nanos: u64) {
    let c = Civil::from_unix((nanos / 1_000_000_000) as i64);
    let mut text = *b"0000-00-00T00:00:00.000000000Z";
    put_digits(&mut text[0..4], c.year.clamp(0, 9999) as u32);
    put_digits(&mut text[5..7], c.month);
    put_digits(&mut text[8..10], c.day);
    put_digits(&mut text[11..13], c.hour);
    put_digits(&mut text[14..16], c.minute);
    put_digits(&mut text[17..19], c.second);
    put_digits(&mut text[20..29], (nanos % 1_000_000_000) as u32);
    out.extend_from_slice(&text);
}

/// An integer's decimal digits (no allocation).
fn integer(out: &mut Vec<u8>, n: impl std::fmt::Display) {
    let _ = write!(out, "{n}");
}

#[cfg(test)]
mod tests;
