//! HTTP/1.x: request heads (`head`, httparse), chunked bodies (`chunked`), how far the request at the start of a
//! connection's input got across reads (`framing`), the route table (`route`), encoding answers (`response`), and
//! the error kinds every answer is chosen from.
//!
//! "Need more bytes" is `Parse::Partial`, never an error. Every error is an `HttpError`: a small `Copy` value
//! with a status and a static reason, turned into bytes in one place (`response::write_error`).
//!
//! Framing is strict (RFC 9112 §6, §7): anything two HTTP implementations could read differently — two Host
//! lines, a Transfer-Encoding whose last coding is not chunked, Transfer-Encoding in HTTP/1.0, Transfer-Encoding
//! beside Content-Length, conflicting lengths, a bare LF in chunked framing — is an error that closes the
//! connection. A head may end its lines with a bare LF (RFC 9112 §2.2 lets a recipient accept that, as
//! httparse and most front-ends do); chunked framing may not.

pub mod chunked;
mod codings;
pub mod cors;
pub mod framing;
mod head;
pub mod percent;
pub mod response;
pub mod route;
mod target;
pub mod write_key;

pub use head::{
    Framing, MAX_HEAD_BYTES, MAX_HEADERS, MAX_URI_BYTES, RequestHead, field, fields, find_head_end, first_line_end,
    parse_head, parse_head_into, partial_head_error,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    BadRequest(&'static str),
    Unauthorized,
    /// A browser request from an origin `CORS_ORIGINS` does not list.
    Forbidden,
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    RequestTimeout,
    LengthRequired,
    PayloadTooLarge(&'static str),
    UriTooLong,
    UnsupportedMediaType(&'static str),
    HeadersTooLarge,
    NotImplemented(&'static str),
    /// 503 with Retry-After.
    Unavailable(Busy),
    VersionNotSupported,
}

/// Why ingest answers 503: each is temporary, so the answer carries `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    SpoolFull,
    SpoolWriteFailed,
    ShuttingDown,
    /// The connection was accepted over MAX_CONNECTIONS only to say so.
    TooManyConnections,
}

impl Busy {
    pub fn reason(self) -> &'static str {
        match self {
            Busy::SpoolFull => "spool is full",
            Busy::SpoolWriteFailed => "spool write failed",
            Busy::ShuttingDown => "shutting down",
            Busy::TooManyConnections => "too many connections",
        }
    }
}

impl HttpError {
    pub fn status(self) -> (u16, &'static str) {
        match self {
            HttpError::BadRequest(_) => (400, "Bad Request"),
            HttpError::Unauthorized => (401, "Unauthorized"),
            HttpError::Forbidden => (403, "Forbidden"),
            HttpError::NotFound => (404, "Not Found"),
            HttpError::MethodNotAllowed { .. } => (405, "Method Not Allowed"),
            HttpError::RequestTimeout => (408, "Request Timeout"),
            HttpError::LengthRequired => (411, "Length Required"),
            HttpError::PayloadTooLarge(_) => (413, "Payload Too Large"),
            HttpError::UriTooLong => (414, "URI Too Long"),
            HttpError::UnsupportedMediaType(_) => (415, "Unsupported Media Type"),
            HttpError::HeadersTooLarge => (431, "Request Header Fields Too Large"),
            HttpError::NotImplemented(_) => (501, "Not Implemented"),
            HttpError::Unavailable(_) => (503, "Service Unavailable"),
            HttpError::VersionNotSupported => (505, "HTTP Version Not Supported"),
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            HttpError::BadRequest(r)
            | HttpError::PayloadTooLarge(r)
            | HttpError::UnsupportedMediaType(r)
            | HttpError::NotImplemented(r) => r,
            HttpError::Unavailable(busy) => busy.reason(),
            HttpError::Unauthorized => "missing or unknown write key",
            HttpError::Forbidden => "origin not allowed",
            HttpError::NotFound => "no such path",
            HttpError::MethodNotAllowed { .. } => "method not allowed",
            HttpError::RequestTimeout => "request not received in time",
            HttpError::LengthRequired => "POST needs Content-Length or chunked Transfer-Encoding",
            HttpError::UriTooLong => "request target too long",
            HttpError::HeadersTooLarge => "request headers too large",
            HttpError::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are supported",
        }
    }

    /// The `reason` label of `plutos_rejections_total`: one short word per kind of refusal.
    pub fn label(self) -> &'static str {
        match self {
            HttpError::BadRequest(_) => "malformed",
            HttpError::Unauthorized => "write_key",
            HttpError::Forbidden => "origin",
            HttpError::NotFound => "not_found",
            HttpError::MethodNotAllowed { .. } => "method",
            HttpError::RequestTimeout => "timeout",
            HttpError::LengthRequired => "length_required",
            HttpError::PayloadTooLarge(_) => "too_large",
            HttpError::UriTooLong => "uri_too_long",
            HttpError::UnsupportedMediaType(_) => "media_type",
            HttpError::HeadersTooLarge => "headers_too_large",
            HttpError::NotImplemented(_) => "not_implemented",
            HttpError::VersionNotSupported => "version",
            HttpError::Unavailable(Busy::SpoolFull) => "spool_full",
            HttpError::Unavailable(Busy::SpoolWriteFailed) => "spool_write_failed",
            HttpError::Unavailable(Busy::ShuttingDown) => "shutting_down",
            HttpError::Unavailable(Busy::TooManyConnections) => "too_many_connections",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    Get,
    Head,
    Post,
    Options,
    #[default]
    Other,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

#[derive(Debug)]
pub enum Parse<T> {
    Complete(T),
    Partial,
}

/// tchar (RFC 9110 §5.6.2): the bytes of header names, methods, transfer codings, extension names.
pub fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

static TOKEN: [bool; 256] = byte_set(b"!#$%&'*+-.^_`|~");

/// The ASCII letters and digits plus `extra`, as a lookup table.
pub(crate) const fn byte_set(extra: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut b = 0;
    while b < 256 {
        set[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        set[extra[i] as usize] = true;
        i += 1;
    }
    set
}

/// Strips optional whitespace (SP, HTAB) — not the other bytes `is_ascii_whitespace` would take.
pub fn trim_ows(v: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ows(b)).map_or(start, |e| e + 1);
    &v[start..end]
}

/// A field value with its surrounding OWS: visible ASCII, obs-text, SP and HTAB only.
pub fn is_field_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7E).contains(&b) || b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_metrics_reason_and_a_listed_status() {
        let all = [
            HttpError::BadRequest(""),
            HttpError::Unauthorized,
            HttpError::Forbidden,
            HttpError::NotFound,
            HttpError::MethodNotAllowed { allow: "" },
            HttpError::RequestTimeout,
            HttpError::LengthRequired,
            HttpError::PayloadTooLarge(""),
            HttpError::UriTooLong,
            HttpError::UnsupportedMediaType(""),
            HttpError::HeadersTooLarge,
            HttpError::NotImplemented(""),
            HttpError::VersionNotSupported,
            HttpError::Unavailable(Busy::SpoolFull),
            HttpError::Unavailable(Busy::SpoolWriteFailed),
            HttpError::Unavailable(Busy::ShuttingDown),
            HttpError::Unavailable(Busy::TooManyConnections),
        ];
        for e in all {
            assert!(crate::metrics::REASONS.contains(&e.label()), "{e:?}");
            assert!(crate::metrics::STATUSES.contains(&e.status().0), "{e:?}");
        }
        assert_eq!(all.len(), crate::metrics::REASONS.len());
    }
}
