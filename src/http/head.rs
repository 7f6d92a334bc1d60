//! Request heads: the request line and headers (httparse), checked for what RFC 9112 requires of a server
//! (Host, the request-target forms, Transfer-Encoding and Content-Length), and the limits on their size.

use super::codings::Codings;
use super::target::{is_host_char, split_target};
use super::{HttpError, Method, Parse, trim_ows};

/// The largest request head accepted (request line + headers) → 431 beyond.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The largest request target accepted → 414 beyond.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header lines accepted (trailer lines count too) → 431 beyond.
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    #[default]
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head; slices borrow the connection's buffer.
#[derive(Debug, Default)]
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
    /// The target is longer than `MAX_URI_BYTES` on a route that keeps an oversized payload as a bad row
    /// (Snowplow's pixel, whose trackers would send it again forever if refused): `query` is left empty and the
    /// request becomes a size-violation bad row. Any other route answers 414.
    pub oversized_target: bool,
}

/// Where the head at the start of `buf` ends (just past its blank line), if it is complete. Only bytes from
/// `scanned` on (less the three a blank line can straddle) are searched: a caller that keeps `scanned` between
/// reads looks at each byte of a trickled head a bounded number of times.
pub fn find_head_end(buf: &[u8], scanned: usize) -> Option<usize> {
    let from = scanned.saturating_sub(3);
    crate::cost::examined(buf.len() - from);
    memchr::memchr_iter(b'\n', &buf[from..]).map(|i| from + i).find_map(|lf| match &buf[lf + 1..] {
        [b'\n', ..] => Some(lf + 2),
        [b'\r', b'\n', ..] => Some(lf + 3),
        _ => None,
    })
}

/// A request line longer than this is 414 however it goes on (a target plus room for the method and version).
const MAX_LINE_BYTES: usize = MAX_URI_BYTES + 64;

/// 414 for a head whose request line is longer than a request line may be (and whose route does not keep a long
/// target): the judgement a head read in pieces reaches before the rest arrives, so a whole one reaches it too,
/// whatever else is wrong with it.
fn long_line_error(buf: &[u8]) -> Option<HttpError> {
    let end = first_line_end(buf, 0)?;
    (end > MAX_LINE_BYTES && !crate::route::keeps_long_target(buf)).then_some(HttpError::UriTooLong)
}

/// The error for the incomplete head `buf` whose first line ends at `line_end` (if it has ended) that already
/// broke a limit: 414 while the request line is unfinished and longer than a target may be (unless its route
/// keeps an oversized payload as a bad row: `crate::route::keeps_long_target`), 431 once the head is longer than
/// a head may be.
pub fn partial_head_error(buf: &[u8], line_end: Option<usize>) -> Option<HttpError> {
    let len = buf.len();
    let target_limit = |over: bool| over && !crate::route::keeps_long_target(buf);
    // The same bound whether the line has ended or not, so a head judged in pieces is judged as it is whole.
    match line_end {
        None if target_limit(len > MAX_LINE_BYTES) => Some(HttpError::UriTooLong),
        Some(line_end) if target_limit(line_end > MAX_LINE_BYTES) => Some(HttpError::UriTooLong),
        _ if len > MAX_HEAD_BYTES => Some(HttpError::HeadersTooLarge),
        _ => None,
    }
}

/// Where the request line of `buf` ends (its LF), searching only from `from` (the bytes before it hold no LF but
/// those of the empty lines allowed before a request line, which are skipped).
pub fn first_line_end(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.max(leading_newlines(buf));
    let found = memchr::memchr(b'\n', &buf[from..]);
    crate::cost::examined(found.map_or(buf.len() - from, |i| i + 1));
    found.map(|i| from + i)
}

/// The error a head gets for its request line alone, once that line is complete (`line`: the head up to and
/// including the line's LF). A line without an HTTP version (`GET /e?x`, HTTP/0.9 style) is refused now: such a
/// client never sends the blank line that would end its head. The same error as parsing the whole head would
/// give, so the answer does not depend on how the head arrived; `None` while the line is fine.
pub fn request_line_error(line: &[u8]) -> Option<HttpError> {
    parse_head(line).err()
}

/// How many CR and LF bytes open `buf`, counting no further than one past what is tolerated.
fn leading_newlines(buf: &[u8]) -> usize {
    buf.iter().take(MAX_LEADING_NEWLINES + 1).take_while(|&&b| b == b'\r' || b == b'\n').count()
}

/// Empty-line bytes (CR, LF) tolerated before a request line (RFC 9112 §2.2: at least one CRLF should be): more
/// would let a client make the parser skip the same growing run of newlines on every read.
pub(super) const MAX_LEADING_NEWLINES: usize = 4;

/// Parses one request head from the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Result<Parse<RequestHead<'_>>, HttpError> {
    let mut head = RequestHead::default();
    Ok(match parse_head_into(buf, &mut head)? {
        Parse::Complete(()) => Parse::Complete(head),
        Parse::Partial => Parse::Partial,
    })
}

/// Parses one request head from the start of `buf` into `head`, which the request path keeps in place: a head
/// returned by value was copied field by field on every request.
pub fn parse_head_into<'b>(buf: &'b [u8], head: &mut RequestHead<'b>) -> Result<Parse<()>, HttpError> {
    let newlines = leading_newlines(buf);
    if newlines > MAX_LEADING_NEWLINES {
        return Err(HttpError::BadRequest("empty lines before the request line"));
    }
    // Uninitialised: zeroing 64 headers (2 KiB) took about a third of the time of parsing a small GET.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(buf, &mut headers);
    // httparse stops at the end of a complete head; otherwise it may have looked at all of `buf`.
    crate::cost::examined(match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        _ => buf.len(),
    });
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return match partial_head_error(buf, first_line_end(buf, 0)) {
                Some(e) => Err(e),
                None => Ok(Parse::Partial),
            };
        }
        Err(_) if long_line_error(buf).is_some() => return Err(HttpError::UriTooLong),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadersTooLarge),
        Err(httparse::Error::Version) if has_http_version(buf) => return Err(HttpError::VersionNotSupported),
        Err(_) if lacks_version(&buf[newlines..]) => return Err(NO_VERSION),
        Err(_) => return Err(HttpError::BadRequest("malformed request head")),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HttpError::HeadersTooLarge);
    }
    let target = req.path.unwrap_or("").as_bytes();
    let oversized_target = target.len() > MAX_URI_BYTES;
    if oversized_target && !crate::route::keeps_long_target(buf) {
        return Err(HttpError::UriTooLong);
    }
    let (path, query) = split_target(target)?;
    let query = if oversized_target { &[][..] } else { query };
    let method = match req.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "OPTIONS" => Method::Options,
        _ => Method::Other,
    };
    let http10 = req.version == Some(0);
    *head = RequestHead {
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
        oversized_target,
    };
    read_fields(head, req.headers)?;
    Ok(Parse::Complete(()))
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

const NO_VERSION: HttpError = HttpError::BadRequest("request line without an HTTP version (HTTP/0.9 is not supported)");

/// Is the request line of `buf` (complete, or cut at the end of `buf`) a method and a target with nothing after
/// them? HTTP/0.9 asked for a document that way.
fn lacks_version(buf: &[u8]) -> bool {
    let line = &buf[..memchr::memchr(b'\n', buf).unwrap_or(buf.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.split(|&b| b == b' ').filter(|part| !part.is_empty()).count() < 3
}

/// Does the request line end in something shaped like `HTTP/d.d`? (httparse reports 1.0 and 1.1 only.)
fn has_http_version(buf: &[u8]) -> bool {
    let line = &buf[..memchr::memchr(b'\n', buf).unwrap_or(buf.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit())
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
mod tests;
