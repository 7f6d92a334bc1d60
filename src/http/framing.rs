//! Where the request at the start of a connection's input stands, kept between reads: how far the search for
//! the end of its head got, or — once the head is complete — how far its body got. Each read then looks only at
//! the bytes it brought, so a request trickled in small pieces costs time linear in its size; the head is
//! parsed once when it is complete and once more when the whole request is.

use super::chunked::{ChunkedLimits, ChunkedScanner};
use super::head::MAX_LEADING_NEWLINES;
use super::response::Body;
use super::{
    Framing, HttpError, MAX_HEAD_BYTES, MAX_HEADERS, Method, Parse, RequestHead, find_head_end, first_line_end,
    parse_head_into, partial_head_error, request_line_error,
};

#[derive(Debug, Clone)]
pub enum Progress {
    /// No complete head yet; `scanned` bytes hold no end of head; the request line ends at `line_end` if it
    /// has ended (else the `scanned` bytes hold no LF).
    Head { scanned: usize, line_end: Option<usize> },
    /// The head (`head_len` bytes) is complete, the body is not.
    Body { head_len: usize, body: BodyProgress },
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::Head { scanned: 0, line_end: None }
    }
}

#[derive(Debug, Clone)]
pub enum BodyProgress {
    Length(u64),
    Chunked(ChunkedScanner),
    /// A declared length over the limit on a route that keeps oversized payloads: only this many first bytes
    /// are waited for.
    Oversized(u64),
}

/// What the bytes so far make of the request at their start.
/// The head, once parsed, is in the caller's `RequestHead` (kept in place: returned by value, it was copied
/// field by field on every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    /// The whole request, which ends at `end`.
    Complete { end: usize },
    /// The head just became complete and the body is still to come (the moment to answer 100-continue).
    HeadOnly,
    /// Still waiting for bytes.
    Partial,
    /// The body is over the limit on a route that keeps such a payload as a bad-row record instead of refusing
    /// it (Snowplow's, whose trackers send a refused payload again forever): `buf[head.len..end]` are the first
    /// bytes of a body of declared length (up to `OVERSIZED_HEAD`), none of a chunked one. Nothing after them is
    /// read: the connection ends with its answer.
    Oversized { end: usize },
}

/// How many first bytes of an oversized body `Framed::Oversized` waits for and hands on.
pub const OVERSIZED_HEAD: usize = 1024;

/// The request cannot be framed; the connection must end after this answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingError {
    pub error: HttpError,
    /// `Omit` when the request was a HEAD.
    pub body: Body,
}

impl From<HttpError> for FramingError {
    fn from(error: HttpError) -> FramingError {
        FramingError { error, body: Body::Send }
    }
}

impl Progress {
    /// Continues over `buf`, the connection's input from the start of the request (a longer prefix of the same
    /// bytes on every call until the request is complete, then the caller resets `self`). A complete head is
    /// parsed into `head`.
    #[inline]
    pub fn advance<'b>(
        &mut self,
        buf: &'b [u8],
        limit: BodyLimit,
        head: &mut RequestHead<'b>,
    ) -> Result<Framed, FramingError> {
        let keeps_oversized = limit.keeps_oversized;
        match self {
            // A head that arrives whole (the common case) is parsed at once; only after a partial one does the
            // search for its end spare the parser from re-reading it on every read.
            Progress::Head { scanned, line_end } if *scanned > 0 && find_head_end(buf, *scanned).is_none() => {
                if line_end.is_none() {
                    *line_end = first_line_end(buf, *scanned);
                    if let Some(error) = line_end.and_then(|end| request_line_error(&buf[..=end])) {
                        return Err(error.into());
                    }
                }
                *scanned = buf.len();
                match partial_head_error(buf, *line_end) {
                    Some(error) => Err(error.into()),
                    None => Ok(Framed::Partial),
                }
            }
            Progress::Head { .. } => self.head_complete(buf, limit, head),
            Progress::Body { head_len, body } => {
                let (head_len, body_progress) = (*head_len, body.complete_len(&buf[*head_len..]));
                let oversized = matches!(body, BodyProgress::Oversized(_));
                if let Ok(None) = body_progress {
                    return Ok(Framed::Partial);
                }
                match parse_head_into(buf, head)? {
                    Parse::Complete(()) => {}
                    // The same bytes parsed complete before.
                    Parse::Partial => return Err(HttpError::BadRequest("malformed request head").into()),
                }
                match body_progress {
                    Ok(Some(body_len)) if oversized => Ok(Framed::Oversized { end: head_len + body_len }),
                    Ok(Some(body_len)) => Ok(Framed::Complete { end: head_len + body_len }),
                    Ok(None) => Ok(Framed::Partial),
                    Err(HttpError::PayloadTooLarge(_)) if keeps_oversized(head) => {
                        Ok(Framed::Oversized { end: head_len })
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// The head's end is in `buf`: parse it and see how far its body got.
    #[inline]
    fn head_complete<'b>(
        &mut self,
        buf: &'b [u8],
        limit: BodyLimit,
        head: &mut RequestHead<'b>,
    ) -> Result<Framed, FramingError> {
        let BodyLimit { max: max_body, keeps_oversized } = limit;
        match parse_head_into(buf, head) {
            Ok(Parse::Complete(())) => {}
            // A head is judged once it is whole (or over a limit): an error seen before its end waits for the
            // end, as it does when the same bytes arrive in more pieces (found by fuzz/framing: a malformed
            // partial head got 400 when read at once and waited when trickled).
            Ok(Parse::Partial) => {
                *self = Progress::Head { scanned: buf.len(), line_end: first_line_end(buf, 0) };
                return Ok(Framed::Partial);
            }
            Err(_) if !head_is_whole(buf) => {
                let line_end = first_line_end(buf, 0);
                if let Some(limit) = partial_head_error(buf, line_end) {
                    return Err(limit.into());
                }
                // A complete request line that is itself the error is answered now, not when the head ends.
                if let Some(error) = line_end.and_then(|end| request_line_error(&buf[..=end])) {
                    return Err(error.into());
                }
                *self = Progress::Head { scanned: buf.len(), line_end };
                return Ok(Framed::Partial);
            }
            Err(e) => return Err(e.into()),
        }
        let refuse = |error| FramingError { error, body: Body::for_method(head.method) };
        let mut body = match head.framing {
            Framing::None if head.method == Method::Post => return Err(refuse(HttpError::LengthRequired)),
            Framing::None => return Ok(Framed::Complete { end: head.len }),
            Framing::Length(n) if n > max_body as u64 && keeps_oversized(head) => {
                BodyProgress::Oversized(n.min(OVERSIZED_HEAD as u64))
            }
            Framing::Length(n) if n > max_body as u64 => {
                return Err(refuse(HttpError::PayloadTooLarge("request body too large")));
            }
            Framing::Length(n) => BodyProgress::Length(n),
            Framing::Chunked => BodyProgress::Chunked(ChunkedScanner::new(chunked_limits(head, max_body))),
        };
        match body.complete_len(&buf[head.len..]) {
            Ok(Some(body_len)) if matches!(body, BodyProgress::Oversized(_)) => {
                Ok(Framed::Oversized { end: head.len + body_len })
            }
            Ok(Some(body_len)) => Ok(Framed::Complete { end: head.len + body_len }),
            Ok(None) => {
                *self = Progress::Body { head_len: head.len, body };
                Ok(Framed::HeadOnly)
            }
            Err(HttpError::PayloadTooLarge(_)) if keeps_oversized(head) => Ok(Framed::Oversized { end: head.len }),
            Err(e) => Err(refuse(e)),
        }
    }
}

impl BodyProgress {
    /// The body's length on the wire once all of it is in `buf`.
    fn complete_len(&mut self, buf: &[u8]) -> Result<Option<usize>, HttpError> {
        match self {
            BodyProgress::Length(n) | BodyProgress::Oversized(n) => Ok((buf.len() as u64 >= *n).then_some(*n as usize)),
            BodyProgress::Chunked(scanner) => match scanner.scan(buf)? {
                Parse::Complete(body) => Ok(Some(body.wire_len)),
                Parse::Partial => Ok(None),
            },
        }
    }
}

/// How large a body may be, and which requests keep one over it (a bad row instead of 413: the route table
/// says, asked only when a body is over the limit).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    pub max: usize,
    pub keeps_oversized: fn(&RequestHead<'_>) -> bool,
}

impl BodyLimit {
    /// `max` for every request: none keeps an oversized body.
    pub fn strict(max: usize) -> BodyLimit {
        BodyLimit { max, keeps_oversized: |_| false }
    }
}

/// The limits of a chunked body: `max_body` of data; its trailers share the head's limits with the head.
pub fn chunked_limits(head: &RequestHead<'_>, max_body: usize) -> ChunkedLimits {
    ChunkedLimits {
        max_body,
        max_trailer_bytes: MAX_HEAD_BYTES.saturating_sub(head.len),
        max_trailer_lines: MAX_HEADERS.saturating_sub(head.headers),
    }
}

/// Has `buf` a head's end after its request line? The empty lines allowed before a request line do not end a
/// head; past that many, the run itself is the (final) error. Looks at no more of a newline run than that, so a
/// client trickling newlines does not make each read rescan its growing run.
fn head_is_whole(buf: &[u8]) -> bool {
    let start = buf.iter().take(MAX_LEADING_NEWLINES).take_while(|&&b| b == b'\r' || b == b'\n').count();
    find_head_end(&buf[start..], 0).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `advance` answers for `stream` fed in `pieces` (each a longer prefix, as a connection's input grows):
    /// `None` while partial, else the status of the error, 0 for a complete request, 1 for an oversized one kept.
    fn outcome(stream: &[u8], cuts: &[usize]) -> Option<u16> {
        let mut progress = Progress::default();
        for end in cuts.iter().copied().chain([stream.len()]) {
            match progress.advance(&stream[..end], keeping_tp2(1024), &mut RequestHead::default()) {
                Ok(Framed::Partial) | Ok(Framed::HeadOnly) => continue,
                Ok(Framed::Complete { .. }) => return Some(0),
                Ok(Framed::Oversized { .. }) => return Some(1),
                Err(e) => return Some(e.error.status().0),
            }
        }
        None
    }

    fn complete_end(framed: Result<Framed, FramingError>) -> usize {
        match framed {
            Ok(Framed::Complete { end }) => end,
            other => panic!("{other:?}"),
        }
    }

    /// The limit the tests frame with: Snowplow's tp2 path keeps an oversized body, as the route table says.
    fn keeping_tp2(max: usize) -> BodyLimit {
        BodyLimit { max, keeps_oversized: |head| head.path == b"/com.snowplowanalytics.snowplow/tp2" }
    }

    /// `progress.advance` with a head that is thrown away.
    fn advance(progress: &mut Progress, buf: &[u8], max_body: usize) -> Result<Framed, FramingError> {
        progress.advance(buf, keeping_tp2(max_body), &mut RequestHead::default())
    }

    #[test]
    fn a_body_ends_where_its_length_or_its_last_chunk_says_whichever_read_brings_it() {
        let length = b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n".as_slice();
        let chunked = b"POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice();
        for (head, body) in [(length, b"hello".as_slice()), (chunked, b"5\r\nhello\r\n0\r\n\r\n")] {
            let stream = [head, body, b"GET /next HTTP/1.1\r\n"].concat();
            let end = head.len() + body.len();
            assert_eq!(complete_end(advance(&mut Progress::default(), &stream, 1024)), end, "read at once");
            let mut progress = Progress::default();
            assert_eq!(advance(&mut progress, &stream[..head.len()], 1024), Ok(Framed::HeadOnly));
            assert_eq!(advance(&mut progress, &stream[..end - 1], 1024), Ok(Framed::Partial));
            assert_eq!(complete_end(advance(&mut progress, &stream, 1024)), end, "body read after the head");
        }
    }

    #[test]
    fn requests_without_a_body_length_and_lengths_over_the_cap() {
        let get = b"GET /e HTTP/1.1\r\nHost: t\r\n\r\n";
        assert_eq!(complete_end(advance(&mut Progress::default(), get, 1024)), get.len(), "no body");
        let status =
            |raw: &[u8]| advance(&mut Progress::default(), raw, 1024).err().map(|e| (e.error.status().0, e.body));
        assert_eq!(status(b"POST /e HTTP/1.1\r\nHost: t\r\n\r\n"), Some((411, Body::Send)));
        assert_eq!(status(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n"), Some((413, Body::Send)));
        assert_eq!(status(b"HEAD /e HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n"), Some((413, Body::Omit)));
        let at_cap = b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n";
        assert_eq!(advance(&mut Progress::default(), at_cap, 1024), Ok(Framed::HeadOnly), "waits for its body");
    }

    #[test]
    fn an_oversized_body_on_a_route_that_keeps_it_hands_on_its_first_bytes_however_it_arrives() {
        let tp2 = "POST /com.snowplowanalytics.snowplow/tp2 HTTP/1.1\r\nHost: t";
        let declared = |len: usize| format!("{tp2}\r\nContent-Length: {len}\r\n\r\n").into_bytes();
        let body = vec![b'x'; 5000];
        // Over the 1024-byte limit: the first OVERSIZED_HEAD bytes are waited for, then handed on.
        let head = declared(5000);
        let stream = [&head[..], &body].concat();
        let end = head.len() + OVERSIZED_HEAD;
        for cuts in [vec![], vec![head.len()], vec![head.len() + 1, end - 1]] {
            let mut progress = Progress::default();
            let mut result = Ok(Framed::Partial);
            for cut in cuts.into_iter().chain([stream.len()]) {
                result = advance(&mut progress, &stream[..cut], 1024);
                if !matches!(result, Ok(Framed::Partial | Framed::HeadOnly)) {
                    break;
                }
            }
            assert_eq!(result, Ok(Framed::Oversized { end }));
        }
        assert_eq!(outcome(&[&declared(1025)[..], &body[..1025]].concat(), &[60, 70]), Some(1));
        assert_eq!(outcome(&[&declared(1024)[..], &body[..1024]].concat(), &[60]), Some(0), "at the limit: a body");
        // A short declared length over a lower limit: all of it.
        let short = [&declared(20)[..], &body[..20]].concat();
        assert_eq!(advance(&mut Progress::default(), &short, 10), Ok(Framed::Oversized { end: short.len() }));
        // Chunked: the data over the limit is the end of what is read; no bytes of it are handed on.
        let chunked = format!("{tp2}\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{}\r\n0\r\n\r\n", "y".repeat(2048));
        let head_len = chunked.find("\r\n\r\n").unwrap() + 4;
        assert_eq!(
            advance(&mut Progress::default(), chunked.as_bytes(), 1024),
            Ok(Framed::Oversized { end: head_len })
        );
        assert_eq!(outcome(chunked.as_bytes(), &[head_len, head_len + 3, head_len + 900]), Some(1));
        // Other routes refuse: 413.
        let pixel = format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n{}", "x".repeat(5000));
        assert_eq!(outcome(pixel.as_bytes(), &[30]), Some(413));
        let segment = pixel.replace("/e ", "/v1/batch ");
        assert_eq!(outcome(segment.as_bytes(), &[]), Some(413));
    }

    #[test]
    fn a_request_trickled_one_byte_per_read_examines_each_byte_a_bounded_number_of_times() {
        let head = [
            b"GET /e?".as_slice(),
            &[b'a'; 4000],
            b" HTTP/1.1\r\nHost: t\r\n",
            format!("X-Pad: {}\r\n", "p".repeat(100)).repeat(50).as_bytes(),
            b"\r\n",
        ]
        .concat();
        let chunks = b"3\r\nabc\r\n".repeat(300);
        let post =
            [b"POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(), &chunks, b"0\r\n\r\n"]
                .concat();
        for stream in [head, post] {
            crate::cost::take();
            let mut progress = Progress::default();
            for end in 1..stream.len() {
                assert!(!matches!(
                    advance(&mut progress, &stream[..end], 1 << 20),
                    Ok(Framed::Complete { .. }) | Err(_)
                ));
            }
            assert_eq!(complete_end(advance(&mut progress, &stream, 1 << 20)), stream.len());
            // At most 8 per input byte and 16 per read, as fuzz/framing asserts (here a read per byte).
            let (examined, len, reads) = (crate::cost::take(), stream.len() as u64, stream.len() as u64);
            assert!(examined <= 8 * len + 16 * reads, "{examined} bytes examined for {len} bytes in {reads} reads");
        }
    }

    #[test]
    fn pipelined_requests_read_at_once_examine_each_byte_a_bounded_number_of_times() {
        let stream = b"GET /e?a=1 HTTP/1.1\r\nHost: t\r\n\r\n".repeat(500);
        crate::cost::take();
        let mut pos = 0;
        while pos < stream.len() {
            pos += complete_end(advance(&mut Progress::default(), &stream[pos..], 1024));
        }
        let (examined, len) = (crate::cost::take(), stream.len() as u64);
        assert!(examined <= 8 * len, "{examined} bytes examined for {len} bytes in one read");
    }

    #[test]
    fn a_head_is_judged_the_same_whether_it_arrives_whole_or_in_pieces() {
        // Found by fuzz/framing: an invalid header line before the head's end got 400 when read at once and
        // waited for the end when trickled.
        let malformed = b"GET /e?a=1 HTTP/1.1\r\nHos 7\rGlEaeT/ hth HTTP/1.1\r\nHONS P/0.\r\n";
        let over_limit = [b"GET /e?".as_slice(), &[b'a'; 9000]].concat();
        let cases: [(&[u8], Option<u16>); 14] = [
            (malformed, None),
            (&[malformed.as_slice(), b"\r\n"].concat(), Some(400)),
            // A complete request line that is itself the error is answered at once: an HTTP/0.9 client never
            // sends the blank line that would end its head.
            (b"NOT HTTP\r\n", Some(400)),
            (b"NOT HTTP\r\n\r\n", Some(400)),
            (b"GET /e?x\r\n", Some(400)),
            (b"GET /e?x\n", Some(400)),
            (b"\r\nGET /e?x\r\n", Some(400)),
            (b"GET /e HTTP/2.0\r\n", Some(505)),
            (b"GET /e?x", None),
            (b"GET /e HTTP/1.1\r\nHost: t\r\n", None),
            (&over_limit, Some(414)),
            // Found next: empty lines before the request line look like a head's end to the end search.
            (b"\r\n\r\nPOST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n{", Some(0)),
            (b"\r\n\r\nport\xff\xff\x00 ", None),
            (b"\r\n\r\n\r\n\r\n", Some(400)),
        ];
        for (stream, want) in cases {
            for cuts in [vec![], vec![5], vec![16, 48], (1..stream.len()).step_by(7).collect()] {
                let cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < stream.len()).collect();
                assert_eq!(outcome(stream, &cuts), want, "{:?} cut at {cuts:?}", String::from_utf8_lossy(stream));
            }
        }
    }
}
