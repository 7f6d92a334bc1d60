//! HTTP/1.x request heads (httparse), body framing (Content-Length, chunked) and the canned error answers.
//!
//! "Need more bytes" is `Parse::Partial`, never an error. Every error is an `HttpError`: a small `Copy` value
//! with a status and a static reason, turned into bytes in one place (`response::write_error`).

/// The largest request head accepted (request line + headers) → 431 beyond.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The largest request target accepted → 414 beyond.
pub const MAX_URI_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    BadRequest(&'static str),
    Unauthorized,
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
    Unavailable(&'static str),
}

impl HttpError {
    pub fn status(self) -> (u16, &'static str) {
        match self {
            HttpError::BadRequest(_) => (400, "Bad Request"),
            HttpError::Unauthorized => (401, "Unauthorized"),
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
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            HttpError::BadRequest(r)
            | HttpError::PayloadTooLarge(r)
            | HttpError::UnsupportedMediaType(r)
            | HttpError::NotImplemented(r)
            | HttpError::Unavailable(r) => r,
            HttpError::Unauthorized => "missing or unknown write key",
            HttpError::NotFound => "no such path",
            HttpError::MethodNotAllowed { .. } => "method not allowed",
            HttpError::RequestTimeout => "request not received in time",
            HttpError::LengthRequired => "POST needs Content-Length or chunked Transfer-Encoding",
            HttpError::UriTooLong => "request target too long",
            HttpError::HeadersTooLarge => "request headers too large",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Options,
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
    pub path: &'b [u8],
    pub query: &'b [u8],
    pub http10: bool,
    pub keep_alive: bool,
    pub framing: Framing,
    pub expect_continue: bool,
    pub content_type: Option<&'b [u8]>,
    pub content_encoding: Option<&'b [u8]>,
    pub user_agent: &'b [u8],
    /// Bytes of the head including the blank line.
    pub len: usize,
}

pub enum Parse<T> {
    Complete(T),
    Partial,
}

/// Parses one request head from the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Result<Parse<RequestHead<'_>>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return match memchr_crlf(buf) {
                None if buf.len() > MAX_URI_BYTES => Err(HttpError::UriTooLong),
                _ if buf.len() > MAX_HEAD_BYTES => Err(HttpError::HeadersTooLarge),
                _ => Ok(Parse::Partial),
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadersTooLarge),
        Err(httparse::Error::Version) => {
            return Err(HttpError::NotImplemented("unsupported HTTP version"));
        }
        Err(_) => return Err(HttpError::BadRequest("malformed request head")),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HttpError::HeadersTooLarge);
    }
    let target = req.path.unwrap_or("/").as_bytes();
    if target.len() > MAX_URI_BYTES {
        return Err(HttpError::UriTooLong);
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &b""[..]),
    };
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
        len,
    };
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = trim(h.value);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or(HttpError::BadRequest("invalid Content-Length"))?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(HttpError::BadRequest("conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if !value.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::NotImplemented("only chunked Transfer-Encoding is supported"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(HttpError::BadRequest("unsupported Expect"));
            }
            head.expect_continue = !http10;
        } else if name.eq_ignore_ascii_case(b"content-type") {
            head.content_type = Some(value);
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            head.content_encoding = Some(value);
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            head.user_agent = value;
        }
    }
    head.framing = match (chunked, content_length) {
        (true, Some(_)) => {
            return Err(HttpError::BadRequest("both Content-Length and Transfer-Encoding"));
        }
        (true, None) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::None,
    };
    Ok(Parse::Complete(head))
}

fn memchr_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Where a complete chunked body ends in `buf` (which starts right after the head), and its decoded size.
pub struct ChunkedBody {
    pub wire_len: usize,
    pub body_len: usize,
}

/// Scans a chunked body without copying. `max_body` bounds the decoded size (413 beyond).
pub fn scan_chunked(buf: &[u8], max_body: usize) -> Result<Parse<ChunkedBody>, HttpError> {
    let mut pos = 0;
    let mut body_len = 0usize;
    loop {
        let Some(line_end) = memchr_crlf(&buf[pos..]) else {
            if buf.len() - pos > 1024 {
                return Err(HttpError::BadRequest("malformed chunk size line"));
            }
            return Ok(Parse::Partial);
        };
        let line = &buf[pos..pos + line_end];
        let size_part = line.split(|&b| b == b';').next().unwrap_or(b"");
        let size = parse_hex(trim(size_part)).ok_or(HttpError::BadRequest("malformed chunk size"))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailer section: header lines until an empty line; trailers are ignored.
            loop {
                let Some(end) = memchr_crlf(&buf[pos..]) else {
                    if buf.len() - pos > MAX_HEAD_BYTES {
                        return Err(HttpError::HeadersTooLarge);
                    }
                    return Ok(Parse::Partial);
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(Parse::Complete(ChunkedBody { wire_len: pos, body_len }));
                }
            }
        }
        body_len = body_len.saturating_add(size);
        if body_len > max_body {
            return Err(HttpError::PayloadTooLarge("request body too large"));
        }
        if buf.len() < pos + size + 2 {
            return Ok(Parse::Partial);
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(HttpError::BadRequest("malformed chunk"));
        }
        pos += size + 2;
    }
}

/// Copies the data of a chunked body that `scan_chunked` found complete into `out`.
pub fn decode_chunked(buf: &[u8], out: &mut Vec<u8>) {
    let mut pos = 0;
    while let Some(line_end) = memchr_crlf(&buf[pos..]) {
        let line = &buf[pos..pos + line_end];
        let size = parse_hex(trim(line.split(|&b| b == b';').next().unwrap_or(b""))).unwrap_or(0);
        pos += line_end + 2;
        if size == 0 {
            return;
        }
        out.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

fn parse_hex(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 15 {
        return None;
    }
    v.iter().try_fold(0usize, |n, &c| {
        let d = (c as char).to_digit(16)?;
        Some(n * 16 + d as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Summary = (Method, Vec<u8>, Vec<u8>, bool, Framing, usize);

    fn head(raw: &[u8]) -> Result<Option<Summary>, HttpError> {
        Ok(match parse_head(raw)? {
            Parse::Complete(h) => Some((h.method, h.path.to_vec(), h.query.to_vec(), h.keep_alive, h.framing, h.len)),
            Parse::Partial => None,
        })
    }

    #[test]
    fn parses_request_heads() {
        let get = b"GET /e?test=me HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            head(get).unwrap(),
            Some((Method::Get, b"/e".to_vec(), b"test=me".to_vec(), true, Framing::None, get.len()))
        );
        let post = b"POST /e HTTP/1.1\r\nContent-Length: 12\r\n\r\n";
        assert_eq!(head(post).unwrap().unwrap().4, Framing::Length(12));
        let chunked = b"POST /e HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(head(chunked).unwrap().unwrap().4, Framing::Chunked);
        let http10 = b"GET /e HTTP/1.0\r\n\r\n";
        assert!(!head(http10).unwrap().unwrap().3, "HTTP/1.0 closes by default");
        let http10_ka = b"GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert!(head(http10_ka).unwrap().unwrap().3);
        let close = b"GET /e HTTP/1.1\r\nConnection: close\r\n\r\n";
        assert!(!head(close).unwrap().unwrap().3);
        assert!(head(b"GET /e HTTP/1.1\r\nHost:").unwrap().is_none(), "partial");
        assert!(head(b"GE").unwrap().is_none(), "partial");
    }

    #[test]
    fn rejects_bad_heads() {
        let long_uri = [b"GET /e?".as_slice(), &vec![b'a'; MAX_URI_BYTES + 10], b" HTTP/1.1\r\n\r\n"].concat();
        let long_partial_uri = [b"GET /e?".as_slice(), &vec![b'a'; MAX_URI_BYTES + 10]].concat();
        let big_header = [b"GET /e HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD_BYTES]].concat();
        let many_headers = [b"GET /e HTTP/1.1\r\n".as_slice(), &b"A: b\r\n".repeat(100), b"\r\n"].concat();
        let table: &[(&[u8], u16)] = &[
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET /e HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
            (b"GET /e HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"POST /e HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST /e HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"GET /e HTTP/1.1\r\nExpect: magic\r\n\r\n", 400),
            (&long_uri, 414),
            (&long_partial_uri, 414),
            (&big_header, 431),
            (&many_headers, 431),
        ];
        for (raw, status) in table {
            let err = head(raw).err().unwrap_or_else(|| panic!("{:?} accepted", String::from_utf8_lossy(&raw[..20])));
            assert_eq!(err.status().0, *status, "{:?}", String::from_utf8_lossy(&raw[..20]));
        }
    }

    #[test]
    fn scans_and_decodes_chunked_bodies() {
        let complete: &[u8] = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let Parse::Complete(c) = scan_chunked(complete, 100).unwrap() else { panic!("complete") };
        assert_eq!(c.wire_len, complete.len() - 4);
        assert_eq!(c.body_len, 11);
        let mut out = Vec::new();
        decode_chunked(&complete[..c.wire_len], &mut out);
        assert_eq!(out, b"hello world");

        for cut in 0..complete.len() - 4 {
            assert!(matches!(scan_chunked(&complete[..cut], 100), Ok(Parse::Partial)), "cut at {cut}");
        }
        assert!(matches!(scan_chunked(b"zz\r\n", 100), Err(HttpError::BadRequest(_))));
        assert!(matches!(scan_chunked(b"5\r\nhelloXX", 100), Err(HttpError::BadRequest(_))));
        assert!(matches!(scan_chunked(b"ff\r\n", 100), Err(HttpError::PayloadTooLarge(_))));
    }
}
