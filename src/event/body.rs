//! POST bodies → events: Content-Encoding (gzip, deflate, zstd) under the decompressed-size cap, then
//! Content-Type: a JSON object (one event), a JSON array (one per element), NDJSON (one per line) or a form
//! (one event, like a query). A body is accepted whole or not at all: on any error the records already
//! appended for it are cut off again.

use std::io::Read;

use crate::event::json;
use crate::event::query::{QueryScratch, append_query_object};
use crate::event::record::Emitter;
use crate::http::HttpError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Ndjson,
    Form,
}

const INVALID_JSON: HttpError = HttpError::BadRequest("invalid JSON");

/// The body kind of a Content-Type. No type and `text/plain` (what `navigator.sendBeacon` sends for a
/// string) are read as JSON.
pub fn body_kind(content_type: Option<&[u8]>) -> Result<BodyKind, HttpError> {
    let Some(ct) = content_type else {
        return Ok(BodyKind::Json);
    };
    let media = ct.split(|&b| b == b';').next().unwrap_or(b"");
    let media = media.trim_ascii();
    let is = |name: &[u8]| media.eq_ignore_ascii_case(name);
    if is(b"application/json") || is(b"text/plain") || is(b"") {
        Ok(BodyKind::Json)
    } else if is(b"application/x-ndjson") || is(b"application/ndjson") || is(b"application/jsonlines") {
        Ok(BodyKind::Ndjson)
    } else if is(b"application/x-www-form-urlencoded") {
        Ok(BodyKind::Form)
    } else {
        Err(HttpError::UnsupportedMediaType(
            "unsupported Content-Type: use application/json, application/x-ndjson or application/x-www-form-urlencoded",
        ))
    }
}

/// Reusable buffers of one worker.
#[derive(Default)]
pub struct BodyScratch {
    pub dechunked: Vec<u8>,
    pub decompressed: Vec<u8>,
}

/// Undoes Content-Encoding. The result borrows `body` (identity) or the scratch buffer.
pub fn decode_content<'a>(
    encoding: Option<&[u8]>,
    body: &'a [u8],
    max: usize,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], HttpError> {
    let Some(encoding) = encoding.map(<[u8]>::trim_ascii).filter(|e| !e.is_empty()) else {
        return Ok(body);
    };
    let is = |name: &[u8]| encoding.eq_ignore_ascii_case(name);
    scratch.clear();
    let result = if is(b"identity") {
        return Ok(body);
    } else if is(b"gzip") || is(b"x-gzip") {
        gunzip(body, max, scratch)
    } else if is(b"deflate") {
        // HTTP's "deflate" is zlib-wrapped, but some clients send raw deflate: accept both.
        read_capped(flate2::read::ZlibDecoder::new(body), max, scratch).or_else(|e| match e {
            HttpError::PayloadTooLarge(_) => Err(e),
            _ => {
                scratch.clear();
                read_capped(flate2::read::DeflateDecoder::new(body), max, scratch)
            }
        })
    } else if is(b"zstd") {
        // Without a cap a 6-byte frame header could make the decoder reserve its largest window (128 MiB+).
        match zstd::stream::read::Decoder::with_buffer(body) {
            Ok(mut decoder) => match decoder.window_log_max(ZSTD_WINDOW_LOG_MAX) {
                Ok(()) => read_capped(decoder, max, scratch),
                Err(_) => Err(HttpError::BadRequest("invalid compressed body")),
            },
            Err(_) => Err(HttpError::BadRequest("invalid compressed body")),
        }
    } else {
        Err(HttpError::UnsupportedMediaType("unsupported Content-Encoding: use gzip, deflate or zstd"))
    };
    result.map(|()| &scratch[..])
}

/// Inflates gzip (one member or several) onto `out`, capped at `max` bytes (→ 413).
pub fn gunzip(data: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), HttpError> {
    read_capped(flate2::read::MultiGzDecoder::new(data), max, out)
}

/// The largest zstd window a request body may ask for: 2^23 = 8 MiB (→ 413).
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

fn read_capped(decoder: impl Read, max: usize, out: &mut Vec<u8>) -> Result<(), HttpError> {
    match decoder.take(max as u64 + 1).read_to_end(out) {
        Ok(n) if n > max => Err(HttpError::PayloadTooLarge("decompressed body too large")),
        Ok(_) => Ok(()),
        // zstd's name for frameParameter_windowTooLarge: the frame wants a window over ZSTD_WINDOW_LOG_MAX.
        Err(e) if e.to_string().contains("too much memory") => {
            Err(HttpError::PayloadTooLarge("zstd window over 8 MiB"))
        }
        Err(_) => Err(HttpError::BadRequest("invalid compressed body")),
    }
}

/// One record per event in `body`, through `emit`. On an error some may have been written: the caller rolls
/// the request back.
pub fn append_body_events(
    kind: BodyKind,
    body: &[u8],
    emit: &mut Emitter<'_>,
    minified: &mut Vec<u8>,
    query: &mut QueryScratch,
) -> Result<(), HttpError> {
    match kind {
        BodyKind::Json => append_json(body, emit, minified),
        BodyKind::Ndjson => append_ndjson(body, emit, minified),
        BodyKind::Form => emit.plain(|out| append_query_object(out, body, query).map_err(HttpError::from)),
    }
}

fn append_json(body: &[u8], emit: &mut Emitter<'_>, minified: &mut Vec<u8>) -> Result<(), HttpError> {
    if !json::validate(body) {
        return Err(INVALID_JSON);
    }
    minified.clear();
    json::minify_into(minified, body)?;
    match minified.first() {
        Some(b'{') => emit.record(minified),
        Some(b'[') => json::for_each_array_element(minified, |element| emit.record(element)),
        _ => return Err(HttpError::BadRequest("expected a JSON object or array")),
    }
    Ok(())
}

fn append_ndjson(body: &[u8], emit: &mut Emitter<'_>, minified: &mut Vec<u8>) -> Result<(), HttpError> {
    // memchr's SIMD search for the line ends: a byte-by-byte split costs ~2 instructions a byte, and how well the
    // compiler unrolls it moved with unrelated changes (callgrind: 110 to 330 instructions per 100-byte line).
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for end in ends {
        let line = &body[start..end];
        start = end + 1;
        if line.trim_ascii().is_empty() {
            continue;
        }
        if !json::validate(line) {
            return Err(HttpError::BadRequest("invalid JSON on an NDJSON line"));
        }
        minified.clear();
        json::minify_into(minified, line)?;
        emit.record(minified);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::event::clock::Clock;
    use crate::event::ids::RequestIds;
    use crate::event::record::{Protocol, RecordBuilder, RequestMeta, Transport};
    use crate::http::Method;

    fn events(kind: BodyKind, body: &[u8]) -> Result<Vec<serde_json::Value>, HttpError> {
        let mut builder = RecordBuilder::default();
        let meta = RequestMeta {
            ip: "127.0.0.1",
            user_agent: b"t",
            method: Method::Post,
            path: b"/e",
            transport: Transport::Http,
            headers: b"",
            enrichment: b"",
            protocol: Protocol::Plutos,
            retry_count: None,
            visitor_id: None,
        };
        builder.start_request(&meta, &Clock::new());
        let mut out = b"earlier\n".to_vec();
        let mut minified = Vec::new();
        let mut query = QueryScratch::default();
        let mut ids = RequestIds::new(0, 0);
        let mut emit = Emitter::new(&mut out, &builder, &mut ids);
        let result = append_body_events(kind, body, &mut emit, &mut minified, &mut query);
        let n = emit.events();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines[0], "earlier");
        result?;
        assert_eq!(lines.len() as u64 - 1, n);
        Ok(lines[1..]
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["raw_data"].clone())
            .collect())
    }

    #[test]
    fn bodies_become_events() {
        use serde_json::json;
        let table: &[(BodyKind, &[u8], serde_json::Value)] = &[
            (BodyKind::Json, br#"{"a": 1}"#, json!([{"a": 1}])),
            (
                BodyKind::Json,
                b"{\n  \"multi\": \"line\",\n  \"n\": [1, 2]\n}\n",
                json!([{"multi": "line", "n": [1, 2]}]),
            ),
            (BodyKind::Json, br#"[{"a":1}, {"b":2}, "three", 4]"#, json!([{"a": 1}, {"b": 2}, "three", 4])),
            (BodyKind::Json, b"[]", json!([])),
            (BodyKind::Ndjson, b"{\"a\":1}\n\n{\"b\":2}\r\n[3]\n", json!([{"a": 1}, {"b": 2}, [3]])),
            (BodyKind::Ndjson, b"", json!([])),
            (BodyKind::Form, b"x=1&y=a+b&x=2", json!([{"x": ["1", "2"], "y": "a b"}])),
            (
                BodyKind::Json,
                br#"{"smile":"\ud83d\ude00","big":123456789012345678901234567890}"#,
                json!([{
                    "smile": "\u{1f600}", "big": 123456789012345678901234567890.0
                }]),
            ),
            (BodyKind::Json, br#"{"dup":1,"dup":2}"#, json!([{"dup": 2}])),
        ];
        for (kind, body, want) in table {
            let got = events(*kind, body).unwrap();
            assert_eq!(serde_json::Value::Array(got), *want, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn bad_bodies_are_rejected_whole() {
        let table: &[(BodyKind, &[u8])] = &[
            (BodyKind::Json, b""),
            (BodyKind::Json, b"{\"a\":"),
            (BodyKind::Json, b"\"just a string\""),
            (BodyKind::Json, b"{\"a\":\"\xff\"}"),
            (BodyKind::Json, b"{\"a\":1}\n{\"b\":2}"),
            (BodyKind::Ndjson, b"{\"a\":1}\n{\"b\":\n"),
            (BodyKind::Form, b"a=%ff"),
            (BodyKind::Json, br#"{"s":"\ud800"}"#),
            (BodyKind::Json, br#"[{"n":1e400}]"#),
            (BodyKind::Ndjson, b"{\"ok\":1}\n{\"s\":\"\\udfff\"}\n"),
        ];
        for (kind, body) in table {
            let err = events(*kind, body).unwrap_err();
            assert_eq!(err.status().0, 400, "{}", String::from_utf8_lossy(body));
        }
        // Nesting: the body's depth counts, so an array of events leaves them one level less.
        let deep = |n: usize| format!("{}{{}}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(events(BodyKind::Json, deep(json::MAX_DEPTH - 1).as_bytes()).unwrap().len(), 1);
        assert_eq!(events(BodyKind::Json, deep(json::MAX_DEPTH).as_bytes()).unwrap_err().status().0, 400);
        assert_eq!(events(BodyKind::Ndjson, deep(json::MAX_DEPTH).as_bytes()).unwrap_err().status().0, 400);
        assert_eq!(events(BodyKind::Json, deep(100_000).as_bytes()).unwrap_err().status().0, 400);
    }

    #[test]
    fn content_types() {
        assert_eq!(body_kind(None), Ok(BodyKind::Json));
        assert_eq!(body_kind(Some(b"application/json; charset=utf-8")), Ok(BodyKind::Json));
        assert_eq!(body_kind(Some(b"text/plain;charset=UTF-8")), Ok(BodyKind::Json));
        assert_eq!(body_kind(Some(b"Application/X-NDJSON")), Ok(BodyKind::Ndjson));
        assert_eq!(body_kind(Some(b"application/ndjson")), Ok(BodyKind::Ndjson));
        assert_eq!(body_kind(Some(b"application/jsonlines")), Ok(BodyKind::Ndjson));
        assert_eq!(body_kind(Some(b" ; charset=utf-8")), Ok(BodyKind::Json), "no media type: JSON");
        assert_eq!(body_kind(Some(b"application/x-www-form-urlencoded")), Ok(BodyKind::Form));
        assert_eq!(body_kind(Some(b"application/xml")).unwrap_err().status().0, 415);
    }

    #[test]
    fn content_encodings_and_the_decompressed_cap() {
        let plain = br#"{"hello":"world"}"#.repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&plain).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&plain).unwrap();
        let raw = raw.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 3).unwrap();
        let mut scratch = Vec::new();
        for (enc, body) in [(b"gzip".as_slice(), &gz), (b"deflate", &zlib), (b"deflate", &raw), (b"zstd", &zst)] {
            assert_eq!(decode_content(Some(enc), body, 1 << 20, &mut scratch).unwrap(), &plain[..]);
            let exactly = decode_content(Some(enc), body, plain.len(), &mut scratch);
            assert_eq!(exactly.unwrap(), &plain[..], "the cap itself is allowed");
            let err = decode_content(Some(enc), body, plain.len() - 1, &mut scratch).unwrap_err();
            assert_eq!(err.status().0, 413, "{}", String::from_utf8_lossy(enc));
        }
        assert_eq!(decode_content(None, b"abc", 1, &mut scratch).unwrap(), b"abc");

        // zstd windows: 8 MiB is allowed, 16 MiB and 128 MiB are not (whatever the content size).
        for (window_log, status) in [(23, None), (24, Some(413)), (27, Some(413))] {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(window_log)).unwrap();
            enc.write_all(&plain).unwrap();
            let frame = enc.finish().unwrap();
            let result = decode_content(Some(b"zstd"), &frame, 1 << 20, &mut scratch);
            assert_eq!(result.err().map(|e| e.status().0), status, "window log {window_log}");
        }
        // A bare frame header asking for a 128 MiB window, with nothing after it.
        let header = [0x28, 0xb5, 0x2f, 0xfd, 0x00, (27 - 10) << 3];
        assert_eq!(decode_content(Some(b"zstd"), &header, 1 << 20, &mut scratch).unwrap_err().status().0, 413);
        assert_eq!(decode_content(Some(b"gzip"), b"not gzip", 100, &mut scratch).unwrap_err().status().0, 400);
        assert_eq!(decode_content(Some(b"br"), b"x", 100, &mut scratch).unwrap_err().status().0, 415);
    }
}
