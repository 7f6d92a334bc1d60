//! Encoding responses into a connection's output buffer. Every response carries the worker's cached `Date` and
//! `Content-Length` (except a 204, which RFC 9110 §8.6 forbids it); `Connection: close` when the connection
//! ends after it, `Connection: keep-alive` when an HTTP/1.0 client asked to keep it; and the CORS header lines
//! of an allowed origin.

use crate::http::{HttpError, Method};

/// `RESPONSE`: the answer to an accepted GET/HEAD on `/e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    Empty,
    Pixel,
    NoContent,
}

/// A transparent 1×1 GIF (43 bytes).
pub const PIXEL_GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\x21\xf9\x04\x01\x00\x00\x00\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b";

/// The header lines that keep a pixel from being cached (each view must reach the collector). `Cache-Control`
/// alone: `Pragma` is a request header and `Expires` wants a date (`Expires: 0` is invalid, REDbot says).
pub const NO_CACHE: &str = "Cache-Control: no-cache, no-store, must-revalidate\r\n";

/// Whether a response carries its body: the answer to a HEAD request has the headers (and `Content-Length`) of the
/// GET it stands for, and no body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Send,
    Omit,
}

impl Body {
    pub fn for_method(method: Method) -> Body {
        if method == Method::Head { Body::Omit } else { Body::Send }
    }
}

/// The `Connection` header of a response: what happens to the connection after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// HTTP/1.1 keeps the connection by default: no header.
    Omit,
    /// An HTTP/1.0 client that sent `Connection: keep-alive` learns that it was kept.
    KeepAlive,
    /// The connection ends after this response.
    Close,
}

/// How an answer goes out: with its body or not, what happens to the connection after it, and the CORS header
/// lines of an allowed origin (empty for any other request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub body: Body,
    pub connection: ConnectionHeader,
    pub cors: &'a [u8],
}

/// One response, borrowed for the time it takes to encode it.
pub struct Response<'a> {
    pub status: (u16, &'static str),
    pub content_type: Option<&'static str>,
    /// Complete extra header lines, each ending in `\r\n`.
    pub extra_headers: &'a [u8],
    pub body: &'a [u8],
}

/// Appends `response`.
pub fn write(out: &mut Vec<u8>, date: &[u8; 29], response: &Response<'_>, delivery: Delivery<'_>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    append_decimal(out, u64::from(response.status.0));
    out.push(b' ');
    out.extend_from_slice(response.status.1.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    if let Some(ct) = response.content_type {
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(ct.as_bytes());
    }
    if response.status.0 != 204 {
        out.extend_from_slice(b"\r\nContent-Length: ");
        append_decimal(out, response.body.len() as u64);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(response.extra_headers);
    out.extend_from_slice(delivery.cors);
    match delivery.connection {
        ConnectionHeader::Omit => {}
        ConnectionHeader::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnectionHeader::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    if delivery.body == Body::Send {
        out.extend_from_slice(response.body);
    }
}

/// The answer to an accepted GET/HEAD on `/e`.
pub fn write_event_accepted(out: &mut Vec<u8>, date: &[u8; 29], kind: ResponseKind, delivery: Delivery<'_>) {
    let response = match kind {
        ResponseKind::Empty => Response { status: (200, "OK"), content_type: None, extra_headers: b"", body: b"" },
        ResponseKind::NoContent => {
            Response { status: (204, "No Content"), content_type: None, extra_headers: b"", body: b"" }
        }
        ResponseKind::Pixel => Response {
            status: (200, "OK"),
            content_type: Some("image/gif"),
            extra_headers: NO_CACHE.as_bytes(),
            body: PIXEL_GIF,
        },
    };
    write(out, date, &response, delivery);
}

/// The answer to an accepted POST: `{"accepted":N}`, or `{"accepted":N,"invalid":M}` when events are rejected.
pub fn write_batch_accepted(
    out: &mut Vec<u8>,
    date: &[u8; 29],
    accepted: u64,
    invalid: Option<u64>,
    delivery: Delivery<'_>,
) {
    let mut body = [0u8; 80];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        body[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(b"{\"accepted\":");
    let (digits, start) = decimal(accepted);
    put(&digits[start..]);
    if let Some(invalid) = invalid {
        put(b",\"invalid\":");
        let (digits, start) = decimal(invalid);
        put(&digits[start..]);
    }
    put(b"}");
    let response = Response {
        status: (200, "OK"),
        content_type: Some("application/json"),
        extra_headers: b"",
        body: &body[..len],
    };
    write(out, date, &response, Delivery { body: Body::Send, ..delivery });
}

/// The canned answer for `err`: its status and a one-line plain-text reason.
pub fn write_error(out: &mut Vec<u8>, date: &[u8; 29], err: HttpError, delivery: Delivery<'_>) {
    write_error_as(out, date, err, None, delivery);
}

/// `write_error` with a body of a protocol's own (its content type, its bytes) instead of the reason in text:
/// OTLP/HTTP's `google.rpc.Status`.
pub fn write_error_as(
    out: &mut Vec<u8>,
    date: &[u8; 29],
    err: HttpError,
    own: Option<(&'static str, &[u8])>,
    delivery: Delivery<'_>,
) {
    let mut text = [0u8; 128];
    let reason = err.reason().as_bytes();
    let n = reason.len().min(text.len() - 1);
    text[..n].copy_from_slice(&reason[..n]);
    text[n] = b'\n';
    let mut extra = [0u8; 64];
    let extra_len = match err {
        HttpError::MethodNotAllowed(allow) => header_line(&mut extra, "Allow", allow),
        _ if err.is_busy() => header_line(&mut extra, "Retry-After", "1"),
        HttpError::Unauthorized => header_line(&mut extra, "WWW-Authenticate", "X-Write-Key"),
        _ => 0,
    };
    let (content_type, body) = own.unwrap_or(("text/plain; charset=utf-8", &text[..=n]));
    let response =
        Response { status: err.status(), content_type: Some(content_type), extra_headers: &extra[..extra_len], body };
    write(out, date, &response, delivery);
}

/// `name: value\r\n` into `buf`; returns its length.
fn header_line(buf: &mut [u8; 64], name: &str, value: &str) -> usize {
    let mut len = 0;
    for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
        buf[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    len
}

pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

fn append_decimal(out: &mut Vec<u8>, n: u64) {
    let (digits, start) = decimal(n);
    out.extend_from_slice(&digits[start..]);
}

/// `n` in decimal, right-aligned in the array; the digits are `[start..]`.
fn decimal(mut n: u64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return (digits, start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; 29] = b"Thu, 26 Nov 2026 02:26:54 GMT";

    fn plain(body: Body, connection: ConnectionHeader) -> Delivery<'static> {
        Delivery { body, connection, cors: b"" }
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn encodes_canned_responses() {
        assert_eq!(
            text(|o| write_event_accepted(o, DATE, ResponseKind::Empty, plain(Body::Send, ConnectionHeader::Omit))),
            "HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 02:26:54 GMT\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            text(|o| write_batch_accepted(o, DATE, 1234, None, plain(Body::Omit, ConnectionHeader::Close))),
            "HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 02:26:54 GMT\r\nContent-Type: application/json\r\n\
             Content-Length: 17\r\nConnection: close\r\n\r\n{\"accepted\":1234}"
        );
        let rejecting =
            text(|o| write_batch_accepted(o, DATE, 0, Some(u64::MAX), plain(Body::Send, ConnectionHeader::Omit)));
        assert!(rejecting.ends_with("\r\n\r\n{\"accepted\":0,\"invalid\":18446744073709551615}"), "{rejecting}");
        let err = text(|o| write_error(o, DATE, HttpError::SpoolFull, plain(Body::Send, ConnectionHeader::Omit)));
        assert!(err.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{err}");
        assert!(err.contains("Retry-After: 1\r\n") && err.ends_with("\r\n\r\nspool is full\n"), "{err}");
        let head = text(|o| {
            write_event_accepted(o, DATE, ResponseKind::Pixel, plain(Body::Omit, ConnectionHeader::KeepAlive))
        });
        assert!(head.contains("Content-Length: 43\r\n") && head.ends_with("\r\n\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: keep-alive\r\n"), "{head}");
        let allow = text(|o| {
            let e = HttpError::MethodNotAllowed("GET, HEAD");
            write_error(o, DATE, e, plain(Body::Send, ConnectionHeader::Omit))
        });
        assert!(allow.contains("Allow: GET, HEAD\r\n"), "{allow}");
        let cors = b"Access-Control-Allow-Origin: *\r\n";
        let no_content = text(|o| {
            let delivery = Delivery { body: Body::Send, connection: ConnectionHeader::Omit, cors };
            write_event_accepted(o, DATE, ResponseKind::NoContent, delivery)
        });
        assert_eq!(
            no_content,
            "HTTP/1.1 204 No Content\r\nDate: Thu, 26 Nov 2026 02:26:54 GMT\r\nAccess-Control-Allow-Origin: *\r\n\r\n"
        );
    }

    #[test]
    fn decimal_formatting() {
        for n in [0u64, 7, 10, 99_999, u64::MAX] {
            let mut out = Vec::new();
            append_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
