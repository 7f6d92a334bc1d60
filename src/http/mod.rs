//! HTTP/1.x: request heads (`head`, httparse), chunked bodies (`chunked`), how far the request at the start of a
//! connection's input got across reads (`framing`), encoding answers (`response`), and the error kinds every
//! answer is chosen from.
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
mod target;
pub mod write_key;

pub use head::{
    Framing, MAX_HEAD_BYTES, MAX_HEADERS, MAX_URI_BYTES, RequestHead, field, fields, find_head_end, first_line_end,
    parse_head, parse_head_into, partial_head_error, request_line_error,
};

/// Declares `HttpError` from one table: each kind of refusal with its status and its `reason` label in
/// `plutos_rejections_total`. The metrics' label and status lists are read from the table, so a new kind of
/// refusal is one line here (and its text in `HttpError::reason`, which the compiler asks for).
macro_rules! http_errors {
    ($($(#[$doc:meta])* $name:ident $(($payload:ty))? = $status:literal $text:literal, $label:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum HttpError {
            $($(#[$doc])* $name $(($payload))?,)*
        }

        impl HttpError {
            /// Every `reason` label, in the order of the table.
            pub const LABELS: &[&str] = &[$($label),*];
            /// The status of each kind, in the order of the table (repeats included).
            pub const STATUSES: &[u16] = &[$($status),*];

            pub fn status(self) -> (u16, &'static str) {
                match self {
                    $(HttpError::$name { .. } => ($status, $text),)*
                }
            }

            /// Where this kind is in the table: its row in `LABELS` and in the rejection counters.
            pub fn index(self) -> usize {
                let mut row = 0;
                $(
                    if matches!(self, HttpError::$name { .. }) {
                        return row;
                    }
                    row += 1;
                )*
                unreachable!("{row} rows, every kind among them")
            }
        }
    };
}

http_errors! {
    BadRequest(&'static str) = 400 "Bad Request", "malformed";
    Unauthorized = 401 "Unauthorized", "write_key";
    /// A browser request from an origin `CORS_ORIGINS` does not list.
    Forbidden = 403 "Forbidden", "origin";
    NotFound = 404 "Not Found", "not_found";
    /// With the route's `Allow` value.
    MethodNotAllowed(&'static str) = 405 "Method Not Allowed", "method";
    RequestTimeout = 408 "Request Timeout", "timeout";
    LengthRequired = 411 "Length Required", "length_required";
    PayloadTooLarge(&'static str) = 413 "Payload Too Large", "too_large";
    UriTooLong = 414 "URI Too Long", "uri_too_long";
    UnsupportedMediaType(&'static str) = 415 "Unsupported Media Type", "media_type";
    HeadersTooLarge = 431 "Request Header Fields Too Large", "headers_too_large";
    NotImplemented(&'static str) = 501 "Not Implemented", "not_implemented";
    VersionNotSupported = 505 "HTTP Version Not Supported", "version";
    // Each 503 is temporary, so its answer carries `Retry-After`.
    SpoolFull = 503 "Service Unavailable", "spool_full";
    SpoolWriteFailed = 503 "Service Unavailable", "spool_write_failed";
    ShuttingDown = 503 "Service Unavailable", "shutting_down";
    /// The connection was accepted over MAX_CONNECTIONS only to say so.
    TooManyConnections = 503 "Service Unavailable", "too_many_connections";
}

impl HttpError {
    /// The one line of the answer's body.
    pub fn reason(self) -> &'static str {
        match self {
            HttpError::BadRequest(r)
            | HttpError::PayloadTooLarge(r)
            | HttpError::UnsupportedMediaType(r)
            | HttpError::NotImplemented(r) => r,
            HttpError::Unauthorized => "missing or unknown write key",
            HttpError::Forbidden => "origin not allowed",
            HttpError::NotFound => "no such path",
            HttpError::MethodNotAllowed(_) => "method not allowed",
            HttpError::RequestTimeout => "request not received in time",
            HttpError::LengthRequired => "POST needs Content-Length or chunked Transfer-Encoding",
            HttpError::UriTooLong => "request target too long",
            HttpError::HeadersTooLarge => "request headers too large",
            HttpError::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are supported",
            HttpError::SpoolFull => "spool is full",
            HttpError::SpoolWriteFailed => "spool write failed",
            HttpError::ShuttingDown => "shutting down",
            HttpError::TooManyConnections => "too many connections",
        }
    }

    /// The `reason` label of `plutos_rejections_total`: one short word per kind of refusal.
    pub fn label(self) -> &'static str {
        HttpError::LABELS[self.index()]
    }

    /// A temporary refusal: the answer carries `Retry-After`, and a client should try again.
    pub fn is_busy(self) -> bool {
        self.status().0 == 503
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
    /// Not an HTTP method: what a datagram's record says (`UDP_PORT`).
    Udp,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
            Method::Udp => "UDP",
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
    fn each_kind_of_refusal_has_its_own_row_label_and_status() {
        let all = [
            HttpError::BadRequest(""),
            HttpError::Unauthorized,
            HttpError::Forbidden,
            HttpError::NotFound,
            HttpError::MethodNotAllowed(""),
            HttpError::RequestTimeout,
            HttpError::LengthRequired,
            HttpError::PayloadTooLarge(""),
            HttpError::UriTooLong,
            HttpError::UnsupportedMediaType(""),
            HttpError::HeadersTooLarge,
            HttpError::NotImplemented(""),
            HttpError::VersionNotSupported,
            HttpError::SpoolFull,
            HttpError::SpoolWriteFailed,
            HttpError::ShuttingDown,
            HttpError::TooManyConnections,
        ];
        assert_eq!(all.len(), HttpError::LABELS.len());
        for (row, e) in all.into_iter().enumerate() {
            assert_eq!(e.index(), row, "{e:?}");
            assert_eq!(HttpError::STATUSES[row], e.status().0, "{e:?}");
            assert!(crate::metrics::STATUSES.contains(&e.status().0), "{e:?}");
            assert_eq!(e.is_busy(), e.status().0 == 503);
        }
        let mut labels = HttpError::LABELS.to_vec();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), HttpError::LABELS.len(), "labels are distinct");
        assert_eq!(HttpError::MethodNotAllowed("GET").reason(), "method not allowed");
        assert_eq!(HttpError::BadRequest("invalid JSON").reason(), "invalid JSON");
    }
}
