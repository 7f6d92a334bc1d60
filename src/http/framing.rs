//! Where the request at the start of a connection's input stands, kept between reads: how far the search for
//! the end of its head got, or — once the head is complete — how far its body got. Each read then looks only at
//! the bytes it brought, so a request trickled in small pieces costs time linear in its size; the head is
//! parsed once when it is complete and once more when the whole request is.

use super::chunked::{ChunkedLimits, ChunkedScanner};
use super::response::Body;
use super::{
    Framing, HttpError, MAX_HEAD_BYTES, MAX_HEADERS, Method, Parse, RequestHead, find_head_end, parse_head,
    partial_head_error,
};

#[derive(Debug, Clone)]
pub enum Progress {
    /// No complete head yet; `scanned` bytes hold no end of head.
    Head { scanned: usize },
    /// The head (`head_len` bytes) is complete, the body is not.
    Body { head_len: usize, body: BodyProgress },
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::Head { scanned: 0 }
    }
}

#[derive(Debug, Clone)]
pub enum BodyProgress {
    Length(u64),
    Chunked(ChunkedScanner),
}

/// What the bytes so far make of the request at their start.
pub enum Framed<'b> {
    /// The whole request: its head, and where it ends.
    Complete { head: RequestHead<'b>, end: usize },
    /// The head just became complete and the body is still to come (the moment to answer 100-continue).
    HeadOnly(RequestHead<'b>),
    /// Still waiting for bytes.
    Partial,
}

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
    /// bytes on every call until the request is complete, then the caller resets `self`).
    #[inline]
    pub fn advance<'b>(&mut self, buf: &'b [u8], max_body: usize) -> Result<Framed<'b>, FramingError> {
        match self {
            // A head that arrives whole (the common case) is parsed at once; only after a partial one does the
            // search for its end spare the parser from re-reading it on every read.
            Progress::Head { scanned } if *scanned > 0 && find_head_end(buf, *scanned).is_none() => {
                *scanned = buf.len();
                match partial_head_error(buf) {
                    Some(error) => Err(error.into()),
                    None => Ok(Framed::Partial),
                }
            }
            Progress::Head { .. } => self.head_complete(buf, max_body),
            Progress::Body { head_len, body } => {
                let Some(body_len) = body.complete_len(&buf[*head_len..])? else {
                    return Ok(Framed::Partial);
                };
                let end = *head_len + body_len;
                match parse_head(buf)? {
                    Parse::Complete(head) => Ok(Framed::Complete { head, end }),
                    // The same bytes parsed complete before.
                    Parse::Partial => Err(HttpError::BadRequest("malformed request head").into()),
                }
            }
        }
    }

    /// The head's end is in `buf`: parse it and see how far its body got.
    #[inline]
    fn head_complete<'b>(&mut self, buf: &'b [u8], max_body: usize) -> Result<Framed<'b>, FramingError> {
        let head = match parse_head(buf)? {
            Parse::Complete(head) => head,
            Parse::Partial => {
                *self = Progress::Head { scanned: buf.len() };
                return Ok(Framed::Partial);
            }
        };
        let refuse = |error| FramingError { error, body: Body::for_method(head.method) };
        let mut body = match head.framing {
            Framing::None if head.method == Method::Post => return Err(refuse(HttpError::LengthRequired)),
            Framing::None => return Ok(Framed::Complete { end: head.len, head }),
            Framing::Length(n) if n > max_body as u64 => {
                return Err(refuse(HttpError::PayloadTooLarge("request body too large")));
            }
            Framing::Length(n) => BodyProgress::Length(n),
            Framing::Chunked => BodyProgress::Chunked(ChunkedScanner::new(chunked_limits(&head, max_body))),
        };
        match body.complete_len(&buf[head.len..]).map_err(refuse)? {
            Some(body_len) => Ok(Framed::Complete { end: head.len + body_len, head }),
            None => {
                *self = Progress::Body { head_len: head.len, body };
                Ok(Framed::HeadOnly(head))
            }
        }
    }
}

impl BodyProgress {
    /// The body's length on the wire once all of it is in `buf`.
    fn complete_len(&mut self, buf: &[u8]) -> Result<Option<usize>, HttpError> {
        match self {
            BodyProgress::Length(n) => Ok((buf.len() as u64 >= *n).then_some(*n as usize)),
            BodyProgress::Chunked(scanner) => match scanner.scan(buf)? {
                Parse::Complete(body) => Ok(Some(body.wire_len)),
                Parse::Partial => Ok(None),
            },
        }
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
