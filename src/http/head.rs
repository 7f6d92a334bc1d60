//! Request heads: the request line and headers (httparse), checked for what RFC 9112 requires of a server
//! (Host, the request-target forms, Transfer-Encoding and Content-Length), and the limits on their size.

use super::codings::Codings;
use super::target::{is_host_char, split_target};
use super::{HttpError, Method, Parse};

/// The largest request head accepted (request line + headers) → 431 beyond.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The largest request target accepted → 414 beyond.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header lines accepted (trailer lines count too) → 431 beyond.
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head; slices borrow the connection's buffer.
#[derive(Debug)]
pub struct RequestHead<'b> {
    pub method: Method,
    /// The path of the target (origin form, or the path part of an absolute-form target).
    pub path: &'b [u8],
    pub query: &'b [u8],
    pub http10: bool,
    pub keep_alive: bool,
    pub framing: Framing,
    pub expect_continue: bool,
    pub content_type: Option<&'b [u8]>,
    pub content_encoding: Option<&'b [u8]>,
    pub user_agent: &'b [u8],
    /// Has `X-Forwarded-For` or `Forwarded` lines (read with `fields` when the peer is a trusted proxy).
    pub forwarded: bool,
    /// The whole head, request line to blank line. The lines only some settings read (`Origin`, `X-Write-Key`,
    /// `Authorization`, a preflight's `Access-Control-Request-*`, forwarding, captured headers) are looked up
    /// here with `field` / `fields` when those settings are on, so the head every request moves stays small.
    pub raw: &'b [u8],
    /// Bytes of the head including the blank line.
    pub len: usize,
    /// Header lines in the head.
    pub headers: usize,
}

/// Where the head at the start of `buf` ends (just past its blank line), if it is complete. Only bytes from
/// `scanned` on (less the three a blank line can straddle) are searched: a caller that keeps `scanned` between
/// reads looks at each byte of a trickled head a bounded number of times.
pub fn find_head_end(buf: &[u8], scanned: usize) -> Option<usize> {
    let from = scanned.saturating_sub(3);
    super::cost::examined(buf.len() - from);
    memchr::memchr_iter(b'\n', &buf[from..]).map(|i| from + i).find_map(|lf| match &buf[lf + 1..] {
        [b'\n', ..] => Some(lf + 2),
        [b'\r', b'\n', ..] => Some(lf + 3),
        _ => None,
    })
}

/// The error for an incomplete head of `len` bytes whose first line ends at `line_end` (if it has ended) that
/// already broke a limit: 414 while the request line is unfinished and longer than a target may be, 431 once
/// the head is longer than a head may be.
pub fn partial_head_error(len: usize, line_end: Option<usize>) -> Option<HttpError> {
    match line_end {
        None if len > MAX_URI_BYTES => Some(HttpError::UriTooLong),
        Some(line_end) if line_end > MAX_URI_BYTES + 64 => Some(HttpError::UriTooLong),
        _ if len > MAX_HEAD_BYTES => Some(HttpError::HeadersTooLarge),
        _ => None,
    }
}

/// Where the first line of `buf` ends, searching only from `from` (the bytes before it hold no LF).
pub fn first_line_end(buf: &[u8], from: usize) -> Option<usize> {
    let found = memchr::memchr(b'\n', &buf[from..]);
    super::cost::examined(found.map_or(buf.len() - from, |i| i + 1));
    found.map(|i| from + i)
}

/// Empty-line bytes (CR, LF) tolerated before a request line (RFC 9112 §2.2: at least one CRLF should be): more
/// would let a client make the parser skip the same growing run of newlines on every read.
pub(super) const MAX_LEADING_NEWLINES: usize = 4;

/// Parses one request head from the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Result<Parse<RequestHead<'_>>, HttpError> {
    let newlines = buf.iter().take(MAX_LEADING_NEWLINES + 1).take_while(|&&b| b == b'\r' || b == b'\n').count();
    if newlines > MAX_LEADING_NEWLINES {
        return Err(HttpError::BadRequest("empty lines before the request line"));
    }
    // Uninitialised: zeroing 64 headers (2 KiB) took about a third of the time of parsing a small GET.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(buf, &mut headers);
    // httparse stops at the end of a complete head; otherwise it may have looked at all of `buf`.
    super::cost::examined(match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        _ => buf.len(),
    });
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return match partial_head_error(buf.len(), first_line_end(buf, 0)) {
                Some(e) => Err(e),
                None => Ok(Parse::Partial),
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadersTooLarge),
        Err(httparse::Error::Version) if has_http_version(buf) => return Err(HttpError::VersionNotSupported),
        Err(_) => return Err(HttpError::BadRequest("malformed request head")),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HttpError::HeadersTooLarge);
    }
    let target = req.path.unwrap_or("").as_bytes();
    if target.len() > MAX_URI_BYTES {
        return Err(HttpError::UriTooLong);
    }
    let (path, query) = split_target(target)?;
    let method = match req.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "OPTIONS" => Method::Options,
        _ => Method::Other,
    };
    let http10 = req.version == Some(0);
    let mut head = RequestHead {
        method,
        path,
        query,
        http10,
        keep_alive: !http10,
        framing: Framing::None,
        expect_continue: false,
        content_type: None,
        content_encoding: None,
        user_agent: b"",
        forwarded: false,
        raw: &buf[newlines..len],
        len,
        headers: req.headers.len(),
    };
    read_fields(&mut head, req.headers)?;
    Ok(Parse::Complete(head))
}

/// The header lines plutos reads (the rest it ignores), checked for what RFC 9112 requires: exactly one Host in
/// HTTP/1.1, consistent lengths, Transfer-Encoding ending in chunked, never both framings.
fn read_fields<'b>(head: &mut RequestHead<'b>, fields: &[httparse::Header<'b>]) -> Result<(), HttpError> {
    let http10 = head.http10;
    let mut content_length: Option<u64> = None;
    let mut codings = Codings::default();
    let mut hosts = 0;
    for h in fields {
        let name = h.name.as_bytes();
        let value = trim_ows(h.value);
        // Dispatching on the length first spares most comparisons: each header is compared with at most two names.
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        match name.len() {
            4 if is(b"host") => {
                hosts += 1;
                if !value.iter().all(|&b| is_host_char(b)) {
                    return Err(HttpError::BadRequest("invalid Host header"));
                }
            }
            6 if is(b"expect") => {
                if !value.eq_ignore_ascii_case(b"100-continue") {
                    return Err(HttpError::BadRequest("unsupported Expect"));
                }
                head.expect_continue = !http10;
            }
            9 if is(b"forwarded") => head.forwarded = true,
            10 if is(b"user-agent") => head.user_agent = value,
            10 if is(b"connection") => {
                for token in value.split(|&b| b == b',').map(trim_ows) {
                    if token.eq_ignore_ascii_case(b"close") {
                        head.keep_alive = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                        head.keep_alive = true;
                    }
                }
            }
            12 if is(b"content-type") => head.content_type = Some(value),
            14 if is(b"content-length") => {
                let n = parse_decimal(value).ok_or(HttpError::BadRequest("invalid Content-Length"))?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(HttpError::BadRequest("conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
            15 if is(b"x-forwarded-for") => head.forwarded = true,
            16 if is(b"content-encoding") => head.content_encoding = Some(value),
            17 if is(b"transfer-encoding") => codings.add(value),
            _ => {}
        }
    }
    match (hosts, http10) {
        (0, false) => return Err(HttpError::BadRequest("missing Host header")),
        (2.., _) => return Err(HttpError::BadRequest("more than one Host header")),
        _ => {}
    }
    head.framing = match (codings.framing(http10)?, content_length) {
        (true, Some(_)) => return Err(HttpError::BadRequest("both Content-Length and Transfer-Encoding")),
        (true, None) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::None,
    };
    Ok(())
}

/// The header lines of a head `parse_head` accepted, as (name, value without surrounding whitespace), in order.
/// For the headers only some settings read (forwarding, captured headers), so the common request pays nothing.
pub fn fields(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    raw.split(|&b| b == b'\n')
        .skip(1)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .filter_map(|line| {
            let colon = memchr::memchr(b':', line)?;
            Some((&line[..colon], trim_ows(&line[colon + 1..])))
        })
}

/// The value of the last `name` line (compared without case) of a head `parse_head` accepted.
pub fn field<'b>(raw: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    fields(raw).filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v).last()
}

/// Does the request line end in something shaped like `HTTP/d.d`? (httparse reports 1.0 and 1.1 only.)
fn has_http_version(buf: &[u8]) -> bool {
    let line = &buf[..memchr::memchr(b'\n', buf).unwrap_or(buf.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// Strips optional whitespace (SP, HTAB) — not the other bytes `is_ascii_whitespace` would take.
pub(super) fn trim_ows(v: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ows(b)).map_or(start, |e| e + 1);
    &v[start..end]
}

/// `1*DIGIT` (RFC 9110 §8.6), leading zeros included; `None` past 19 significant digits, before a `u64`
/// could overflow (no body is that long).
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = &v[v.iter().position(|&d| d != b'0').unwrap_or(v.len())..];
    if digits.len() > 19 {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Summary = (Method, Vec<u8>, Vec<u8>, bool, Framing, usize);

    #[test]
    fn content_lengths_are_decimal_digits_with_any_leading_zeros_and_never_overflow() {
        let table: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"12", Some(12)),
            (b"000000000000000000000000000016", Some(16)),
            (b"0000", Some(0)),
            (b"9999999999999999999", Some(9_999_999_999_999_999_999)),
            (b"09999999999999999999", Some(9_999_999_999_999_999_999)),
            (b"10000000000000000000", None),
            (b"18446744073709551615", None),
            (b"99999999999999999999999", None),
            (b"", None),
            (b"+1", None),
            (b"-1", None),
            (b"1 ", None),
            (b"0x10", None),
            (b"1e3", None),
        ];
        for &(text, expected) in table {
            assert_eq!(parse_decimal(text), expected, "{:?}", String::from_utf8_lossy(text));
        }
    }

    fn head(raw: &[u8]) -> Result<Option<Summary>, HttpError> {
        Ok(match parse_head(raw)? {
            Parse::Complete(h) => Some((h.method, h.path.to_vec(), h.query.to_vec(), h.keep_alive, h.framing, h.len)),
            Parse::Partial => None,
        })
    }

    fn show(raw: &[u8]) -> String {
        String::from_utf8_lossy(&raw[..raw.len().min(60)]).into_owned()
    }

    #[test]
    fn reads_the_edge_headers_and_lists_every_field() {
        let raw = b"\r\nOPTIONS /e HTTP/1.1\r\nHost: h\r\nORIGIN: https://a.example\r\nX-Write-Key:  k1 \r\n\
                    Authorization: Basic eA==\r\nAccess-Control-Request-Method: POST\r\n\
                    Access-Control-Request-Headers: content-type\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n";
        let Ok(Parse::Complete(h)) = parse_head(raw) else { panic!() };
        assert_eq!(field(h.raw, b"origin"), Some(&b"https://a.example"[..]));
        assert_eq!(field(h.raw, b"x-write-key"), Some(&b"k1"[..]));
        assert_eq!(field(h.raw, b"authorization"), Some(&b"Basic eA=="[..]));
        assert_eq!(field(h.raw, b"access-control-request-method"), Some(&b"POST"[..]));
        assert_eq!(field(h.raw, b"access-control-request-headers"), Some(&b"content-type"[..]));
        assert_eq!(field(h.raw, b"cookie"), None);
        assert!(h.forwarded);
        assert!(h.raw.starts_with(b"OPTIONS"), "leading empty lines are not part of the head");
        let names: Vec<&[u8]> = fields(h.raw).map(|(n, _)| n).collect();
        assert_eq!(names.len(), 7);
        assert_eq!(fields(h.raw).nth(2), Some((&b"X-Write-Key"[..], &b"k1"[..])));
        let Ok(Parse::Complete(plain)) = parse_head(b"GET /e HTTP/1.1\nHost: h\n\n") else { panic!() };
        assert!(!plain.forwarded && field(plain.raw, b"origin").is_none());
        assert_eq!(fields(plain.raw).collect::<Vec<_>>(), vec![(&b"Host"[..], &b"h"[..])]);
    }

    #[test]
    fn parses_request_heads() {
        let get = b"GET /e?test=me HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            head(get).unwrap(),
            Some((Method::Get, b"/e".to_vec(), b"test=me".to_vec(), true, Framing::None, get.len()))
        );
        let post = b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n";
        assert_eq!(head(post).unwrap().unwrap().4, Framing::Length(12));
        let chunked = b"POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(head(chunked).unwrap().unwrap().4, Framing::Chunked);
        let chunked = b"POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \tChunked \r\n\r\n";
        assert_eq!(head(chunked).unwrap().unwrap().4, Framing::Chunked);
        let http10 = b"GET /e HTTP/1.0\r\n\r\n";
        assert!(!head(http10).unwrap().unwrap().3, "HTTP/1.0 closes by default; Host is optional");
        let http10_ka = b"GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert!(head(http10_ka).unwrap().unwrap().3);
        let close = b"GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        assert!(!head(close).unwrap().unwrap().3);
        let bare_lf = b"GET /e?lf=1 HTTP/1.1\nHost: x\n\n";
        assert_eq!(head(bare_lf).unwrap().unwrap().2, b"lf=1");
        let after_empty_lines = b"\r\n\r\nGET /e?n=2 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(head(after_empty_lines).unwrap().unwrap().2, b"n=2");
        assert!(head(b"GET /e HTTP/1.1\r\nHost:").unwrap().is_none(), "partial");
        assert!(head(b"GE").unwrap().is_none(), "partial");
    }

    #[test]
    fn rejects_bad_heads() {
        let long_uri =
            [b"GET /e?".as_slice(), &vec![b'a'; MAX_URI_BYTES + 10], b" HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
        let long_partial_uri = [b"GET /e?".as_slice(), &vec![b'a'; MAX_URI_BYTES + 10]].concat();
        let big_header = [b"GET /e HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD_BYTES]].concat();
        let big_lf_header = [b"GET /e HTTP/1.1\nHost: x\nX: ".as_slice(), &vec![b'a'; MAX_HEAD_BYTES]].concat();
        let many_lf_lines = [b"GET /e HTTP/1.1\n".as_slice(), &b"X-Long-Header-Name: value\n".repeat(700)].concat();
        let many_headers = [b"GET /e HTTP/1.1\r\n".as_slice(), &b"A: b\r\n".repeat(100), b"\r\n"].concat();
        let h = "Host: x\r\n";
        let table: Vec<(Vec<u8>, u16)> = vec![
            (b"GARBAGE\r\n\r\n".to_vec(), 400),
            (b"\r\n\r\n\nGET /e HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
            (b"\n\n\n\n\n".to_vec(), 400),
            (format!("GET /e HTTP/1.1\r\n{h}Content-Length: abc\r\n\r\n").into_bytes(), 400),
            (format!("GET /e HTTP/1.1\r\n{h}Content-Length: +5\r\n\r\n").into_bytes(), 400),
            (format!("GET /e HTTP/1.1\r\n{h}Content-Length: 1\r\nContent-Length: 2\r\n\r\n").into_bytes(), 400),
            (
                format!("POST /e HTTP/1.1\r\n{h}Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes(),
                400,
            ),
            (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: chunked, identity\r\n\r\n").into_bytes(), 400),
            (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: gzip\r\n\r\n").into_bytes(), 400),
            (
                format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .into_bytes(),
                400,
            ),
            (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: chunked\x0c\r\n\r\n").into_bytes(), 400),
            (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: xchunked\r\n\r\n").into_bytes(), 400),
            (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: chunked,\r\n\r\n").into_bytes(), 400),
            (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding:\r\n\r\n").into_bytes(), 400),
            (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding : chunked\r\n\r\n").into_bytes(), 400),
            (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: gzip, chunked\r\n\r\n").into_bytes(), 501),
            (b"POST /e HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400),
            (b"POST /e HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n".to_vec(), 400),
            (format!("GET /e HTTP/1.1\r\n{h}X: a\r\n folded\r\n\r\n").into_bytes(), 400),
            (format!("GET /e HTTP/1.1\r\n{h}X: a\x00b\r\n\r\n").into_bytes(), 400),
            (format!("GET /e HTTP/1.1\r\n{h}X: a\rb\r\n\r\n").into_bytes(), 400),
            (format!("GET /e HTTP/1.1\r\n{h}Expect: magic\r\n\r\n").into_bytes(), 400),
            (b"GET /e HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET /e HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n".to_vec(), 400),
            (b"GET /e HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
            (b"GET /e HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(), 400),
            (b"GET /e HTTP/1.1\r\nHost: a/b\r\n\r\n".to_vec(), 400),
            (format!("GET /e?a=1#frag HTTP/1.1\r\n{h}\r\n").into_bytes(), 400),
            (format!("GET e?a=1 HTTP/1.1\r\n{h}\r\n").into_bytes(), 400),
            (format!("GET ftp://h/e HTTP/1.1\r\n{h}\r\n").into_bytes(), 400),
            (format!("GET http:///e HTTP/1.1\r\n{h}\r\n").into_bytes(), 400),
            (format!("GET /e HTTP/9.9\r\n{h}\r\n").into_bytes(), 505),
            (format!("GET /e HTTP/2.0\r\n{h}\r\n").into_bytes(), 505),
            (format!("GET /e HTTP/1.2\r\n{h}\r\n").into_bytes(), 505),
            (format!("GET /e HTTP/1\r\n{h}\r\n").into_bytes(), 400),
            (format!("GET /e FOO/1.1\r\n{h}\r\n").into_bytes(), 400),
            (long_uri.clone(), 414),
            (long_partial_uri.clone(), 414),
            (big_header.clone(), 431),
            (big_lf_header.clone(), 431),
            (many_lf_lines.clone(), 431),
            (many_headers.clone(), 431),
        ];
        for (raw, status) in table {
            let err = head(&raw).err().unwrap_or_else(|| panic!("{} accepted", show(&raw)));
            assert_eq!(err.status().0, status, "{}: {}", show(&raw), err.reason());
        }
    }

    #[test]
    fn the_documented_limits() {
        assert_eq!((MAX_URI_BYTES, MAX_HEAD_BYTES, MAX_HEADERS), (8192, 16384, 64), "README's numbers");
        // An unfinished head: 414 once its request line is longer than a target plus room for the method and
        // version, 431 once it is longer than a head; one byte less is still waited for.
        assert_eq!(partial_head_error(8192, None), None);
        assert_eq!(partial_head_error(8193, None), Some(HttpError::UriTooLong));
        assert_eq!(partial_head_error(9000, Some(8256)), None);
        assert_eq!(partial_head_error(9000, Some(8257)), Some(HttpError::UriTooLong));
        assert_eq!(partial_head_error(16384, Some(20)), None);
        assert_eq!(partial_head_error(16385, Some(20)), Some(HttpError::HeadersTooLarge));
        assert_eq!(first_line_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 3), Some(15));
        assert_eq!(first_line_end(b"GET / HTTP/1.1", 0), None);
    }

    #[test]
    fn head_limits_at_and_over_the_limit() {
        // A target of exactly MAX_URI_BYTES is accepted, one more byte is 414.
        for (extra, ok) in [(0, true), (1, false)] {
            let target = format!("/e?{}", "a".repeat(MAX_URI_BYTES - 3 + extra));
            let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(head(raw.as_bytes()).is_ok(), ok, "target of {} bytes", target.len());
        }
        // A head of exactly MAX_HEAD_BYTES is accepted, one more byte is 431.
        for (extra, ok) in [(0, true), (1, false)] {
            let prefix = "GET /e HTTP/1.1\r\nHost: x\r\nX: ";
            let value = "v".repeat(MAX_HEAD_BYTES - prefix.len() - 4 + extra);
            let raw = format!("{prefix}{value}\r\n\r\n");
            assert_eq!(head(raw.as_bytes()).is_ok(), ok, "head of {} bytes", raw.len());
        }
        // MAX_HEADERS header lines are accepted, one more is 431.
        for (extra, ok) in [(0, true), (1, false)] {
            let raw = format!("GET /e HTTP/1.1\r\nHost: x\r\n{}\r\n", "A: b\r\n".repeat(MAX_HEADERS - 1 + extra));
            assert_eq!(head(raw.as_bytes()).is_ok(), ok, "{} headers", MAX_HEADERS + extra);
        }
    }

    #[test]
    fn finds_the_end_of_a_head_from_where_it_stopped() {
        let raw = b"GET /e HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
        let end = raw.len() - 4;
        for scanned in 0..=end {
            assert_eq!(find_head_end(raw, scanned), Some(end), "from {scanned}");
        }
        for cut in 0..end {
            assert_eq!(find_head_end(&raw[..cut], 0), None, "cut at {cut}");
        }
        assert_eq!(find_head_end(b"GET /e HTTP/1.1\nHost: x\n\nNEXT", 0), Some(25));
    }
}
