//! An export's log records read straight from its Protobuf bytes, each rendered as its record's `raw_data` and
//! fields without decoding the message into owned types: the strings are borrowed and checked for UTF-8 where
//! they are written. prost's decoding allocated a `String` or `Vec` per attribute key and value (a dozen per log
//! record) and was the largest cost of an export after compression (bench/results/2026-12-07-grpc.md).
//!
//! It follows Protobuf's reading rules where they matter for a record: fields in any order, unknown fields
//! skipped, the last value of a scalar field kept, repeated fields in order. A singular message field that
//! appears more than once (`resource`, `scope`, `body`) is taken from its last occurrence rather than merged —
//! no exporter writes one twice. Anything malformed (a cut varint or length, a group, a string that is not
//! UTF-8, `AnyValue`s nested deeper than 32) refuses the whole export.

use std::io::Write;

use base64::Engine;

use super::{Members, hex, integer, rfc3339_nanos, string};
use crate::http::HttpError;

pub(in crate::protocol) const INVALID: HttpError = HttpError::BadRequest("not an OTLP ExportLogsServiceRequest");
/// `AnyValue`s inside `AnyValue`s (arrays, key-value lists) deeper than this refuse the export.
const MAX_DEPTH: usize = 32;

/// One field of a message: its number and its value by wire type.
#[derive(Debug, Clone, Copy)]
pub(in crate::protocol) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// The fields of `message`, in order.
pub(in crate::protocol) struct Fields<'a> {
    rest: &'a [u8],
}

pub(in crate::protocol) fn fields(message: &[u8]) -> Fields<'_> {
    Fields { rest: message }
}

fn varint(rest: &mut &[u8]) -> Result<u64, HttpError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, tail) = rest.split_first().ok_or(INVALID)?;
        *rest = tail;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(INVALID)
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), HttpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u32, Value<'a>), HttpError> {
        let key = varint(&mut self.rest)?;
        let number = u32::try_from(key >> 3).map_err(|_| INVALID)?;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut self.rest)?),
            1 => {
                let (bytes, rest) = self.rest.split_first_chunk::<8>().ok_or(INVALID)?;
                self.rest = rest;
                Value::Fixed64(u64::from_le_bytes(*bytes))
            }
            2 => {
                let len = usize::try_from(varint(&mut self.rest)?).map_err(|_| INVALID)?;
                let (bytes, rest) = self.rest.split_at_checked(len).ok_or(INVALID)?;
                self.rest = rest;
                Value::Bytes(bytes)
            }
            5 => {
                let (bytes, rest) = self.rest.split_first_chunk::<4>().ok_or(INVALID)?;
                self.rest = rest;
                Value::Fixed32(u32::from_le_bytes(*bytes))
            }
            _ => return Err(INVALID), // groups (3, 4) and wire types that do not exist
        };
        Ok((number, value))
    }
}

/// The bytes of field `number` (length-delimited), each occurrence.
pub(in crate::protocol) fn each(message: &[u8], number: u32) -> impl Iterator<Item = Result<&[u8], HttpError>> {
    fields(message).filter_map(move |field| match field {
        Ok((n, Value::Bytes(bytes))) if n == number => Some(Ok(bytes)),
        Ok((n, _)) if n == number => Some(Err(INVALID)),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    })
}

/// The last occurrence of length-delimited field `number`.
fn last(message: &[u8], number: u32) -> Result<Option<&[u8]>, HttpError> {
    each(message, number).try_fold(None, |_, bytes| bytes.map(Some))
}

pub(in crate::protocol) fn text(bytes: &[u8]) -> Result<&str, HttpError> {
    std::str::from_utf8(bytes).map_err(|_| INVALID)
}

/// A log record's scalar fields (the last of each), and whether it has attributes.
#[derive(Default)]
pub(super) struct Scalars<'a> {
    pub time: u64,
    pub observed: u64,
    pub severity_number: i64,
    pub severity_text: &'a str,
    pub body: Option<&'a [u8]>,
    pub flags: u32,
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub event_name: &'a str,
    pub has_attributes: bool,
    /// The string values of the attributes `user.id` and `log.record.uid`.
    pub user_id: Option<&'a str>,
    pub uid: Option<&'a str>,
}

impl<'a> Scalars<'a> {
    pub fn of(log: &'a [u8]) -> Result<Scalars<'a>, HttpError> {
        let mut s = Scalars::default();
        for field in fields(log) {
            match field? {
                (1, Value::Fixed64(t)) => s.time = t,
                (11, Value::Fixed64(t)) => s.observed = t,
                (2, Value::Varint(n)) => s.severity_number = n as i32 as i64,
                (3, Value::Bytes(b)) => s.severity_text = text(b)?,
                (5, Value::Bytes(b)) => s.body = Some(b),
                (6, Value::Bytes(kv)) => {
                    s.has_attributes = true;
                    // Keys are compared as bytes here and checked for UTF-8 once, where they are written.
                    let (key, value) = key_value(kv)?;
                    match key {
                        // The last attribute of the name decides (a JSON reader keeps the last member too).
                        b"user.id" => s.user_id = string_value(value)?,
                        b"log.record.uid" => s.uid = string_value(value)?,
                        _ => {}
                    }
                }
                (8, Value::Fixed32(f)) => s.flags = f,
                (9, Value::Bytes(b)) => s.trace_id = b,
                (10, Value::Bytes(b)) => s.span_id = b,
                (12, Value::Bytes(b)) => s.event_name = text(b)?,
                (1 | 2 | 3 | 5 | 6 | 8 | 9 | 10 | 11 | 12, _) => return Err(INVALID), // a known field, wrong type
                _ => {}
            }
        }
        Ok(s)
    }
}

/// A `KeyValue`'s key (its bytes, not yet checked for UTF-8) and the bytes of its value (`None`: no value).
fn key_value(kv: &[u8]) -> Result<(&[u8], Option<&[u8]>), HttpError> {
    let (mut key, mut value) = (&[][..], None);
    for field in fields(kv) {
        match field? {
            (1, Value::Bytes(b)) => key = b,
            (2, Value::Bytes(b)) => value = Some(b),
            (1 | 2, _) => return Err(INVALID),
            _ => {}
        }
    }
    Ok((key, value))
}

/// A non-empty `string_value` of an `AnyValue`.
fn string_value(value: Option<&[u8]>) -> Result<Option<&str>, HttpError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let mut found = None;
    for field in fields(value) {
        if let (1, Value::Bytes(b)) = field? {
            found = Some(text(b)?).filter(|s| !s.is_empty());
        }
    }
    Ok(found)
}

/// A log record's `raw_data`, in the members order of `otlp.rs`'s table.
pub(super) fn raw_data(
    out: &mut Vec<u8>,
    log: &[u8],
    s: &Scalars<'_>,
    resource: Option<&[u8]>,
    scope: Option<&[u8]>,
) -> Result<(), HttpError> {
    let mut members = Members::open(out);
    if let Some(body) = s.body {
        members.key(b"body");
        any(members.out, body, 0)?;
    }
    if !s.severity_text.is_empty() {
        members.key(b"severity_text");
        string(members.out, s.severity_text);
    }
    if s.severity_number != 0 {
        members.key(b"severity_number");
        integer(members.out, s.severity_number);
    }
    if s.has_attributes {
        members.key(b"attributes");
        object(members.out, log, 6, 0)?;
    }
    if let Some(resource) = resource
        && each(resource, 1).next().is_some()
    {
        members.key(b"resource");
        object(members.out, resource, 1, 0)?;
    }
    if let Some(scope) = scope {
        let (mut name, mut version, mut attributes) = ("", "", false);
        for field in fields(scope) {
            match field? {
                (1, Value::Bytes(b)) => name = text(b)?,
                (2, Value::Bytes(b)) => version = text(b)?,
                (3, Value::Bytes(_)) => attributes = true,
                (1..=3, _) => return Err(INVALID),
                _ => {}
            }
        }
        if !name.is_empty() || !version.is_empty() || attributes {
            members.key(b"scope");
            let mut inner = Members::open(members.out);
            if !name.is_empty() {
                inner.key(b"name");
                string(inner.out, name);
            }
            if !version.is_empty() {
                inner.key(b"version");
                string(inner.out, version);
            }
            if attributes {
                inner.key(b"attributes");
                object(inner.out, scope, 3, 0)?;
            }
            inner.close();
        }
    }
    for (name, id) in [(&b"trace_id"[..], s.trace_id), (b"span_id", s.span_id)] {
        if id.iter().any(|&b| b != 0) {
            members.key(name);
            hex(members.out, id);
        }
    }
    if s.flags != 0 {
        members.key(b"flags");
        integer(members.out, s.flags);
    }
    if s.observed != 0 {
        members.key(b"observed_time");
        members.out.push(b'"');
        rfc3339_nanos(members.out, s.observed);
        members.out.push(b'"');
    }
    members.close();
    Ok(())
}

/// The `KeyValue`s in field `number` of `message` as one JSON object.
pub(super) fn object(out: &mut Vec<u8>, message: &[u8], number: u32, depth: usize) -> Result<(), HttpError> {
    let mut members = Members::open(out);
    for kv in each(message, number) {
        let (key, value) = key_value(kv?)?;
        members.key(text(key)?.as_bytes());
        match value {
            Some(value) => any(members.out, value, depth)?,
            None => members.out.extend_from_slice(b"null"),
        }
    }
    members.close();
    Ok(())
}

/// An `AnyValue` as JSON (as `otlp::any` writes a decoded one): the last of its oneof's fields.
fn any(out: &mut Vec<u8>, value: &[u8], depth: usize) -> Result<(), HttpError> {
    if depth > MAX_DEPTH {
        return Err(INVALID);
    }
    let mut kind = None;
    for field in fields(value) {
        let (n, v) = field?;
        if (1..=7).contains(&n) {
            kind = Some((n, v));
        }
    }
    match kind {
        None => out.extend_from_slice(b"null"),
        Some((1, Value::Bytes(b))) => string(out, text(b)?),
        Some((2, Value::Varint(b))) => out.extend_from_slice(if b != 0 { b"true" } else { b"false" }),
        Some((3, Value::Varint(n))) => integer(out, n as i64),
        Some((4, Value::Fixed64(bits))) => match f64::from_bits(bits) {
            x if x.is_finite() => {
                let _ = write!(out, "{x}");
            }
            _ => out.extend_from_slice(b"null"),
        },
        Some((5, Value::Bytes(array))) => {
            out.push(b'[');
            for (k, element) in each(array, 1).enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                any(out, element?, depth + 1)?;
            }
            out.push(b']');
        }
        Some((6, Value::Bytes(list))) => object(out, list, 1, depth + 1)?,
        Some((7, Value::Bytes(bytes))) => {
            out.push(b'"');
            out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(bytes).as_bytes());
            out.push(b'"');
        }
        Some(_) => return Err(INVALID),
    }
    Ok(())
}

/// Every log record of the export `message`, with its resource and scope: `(record, resource, scope)`.
pub(super) fn each_log<'a>(
    message: &'a [u8],
    mut f: impl FnMut(&'a [u8], Option<&'a [u8]>, Option<&'a [u8]>) -> Result<(), HttpError>,
) -> Result<(), HttpError> {
    for resource_logs in each(message, 1) {
        let resource_logs = resource_logs?;
        let resource = last(resource_logs, 1)?;
        for scope_logs in each(resource_logs, 2) {
            let scope_logs = scope_logs?;
            let scope = last(scope_logs, 1)?;
            for log in each(scope_logs, 2) {
                f(log?, resource, scope)?;
            }
        }
    }
    Ok(())
}
