//! HTTP/3, the third front end of the request exchange. A request stream's bytes (gathered by the connection's
//! session, `worker/quic/session.rs`) are its frames: HEADERS (QPACK, `h3::qpack`), DATA, maybe trailers. The
//! head is rendered as an HTTP/1.1 head and parsed by the same parser; the `Answer`, encoded by the same
//! encoder as HTTP/1.1's, becomes a HEADERS frame and a DATA frame. An answer that acknowledges events waits in
//! the session until the group commit.

use std::net::IpAddr;

use super::exchange::{Answer, Payload, Request};
use super::{Requests, translate};
use crate::event::record::Transport;
use crate::h3::frame;
use crate::h3::qpack::{self, QpackError};
use crate::http::response::ConnectionHeader;
use crate::http::{Framing, HttpError, Method, Parse, RequestHead, parse_head_into};
use crate::spool::batch::Batch;
use crate::worker::connection::Peer;
use crate::worker::quic::session::Exchange;

/// The largest field section plutos takes (`SETTINGS_MAX_FIELD_SECTION_SIZE`), as HTTP/1.1's head limit.
pub const MAX_FIELD_SECTION: u64 = 16 * 1024;

/// The worker's request handling as an HTTP/3 session needs it.
pub struct Http3<'a> {
    pub requests: &'a mut Requests,
    pub batch: &'a mut Batch,
}

impl Exchange for Http3<'_> {
    fn answer(&mut self, peer: &Peer, request: &[u8], oversized: bool, out: &mut Vec<u8>) -> Result<bool, u64> {
        self.requests.answer_h3(peer, request, oversized, self.batch, out)
    }

    fn refusal(&mut self, timed_out: bool, out: &mut Vec<u8>) {
        let error = if timed_out { HttpError::RequestTimeout } else { HttpError::SpoolWriteFailed };
        self.requests.frames(Answer::error(error, None, Method::Post), out);
    }

    fn peer(&self, addr: IpAddr) -> Peer {
        self.requests.peer(addr, Transport::H3)
    }
}

/// A request stream's frames taken apart.
struct Frames<'a> {
    headers: Option<&'a [u8]>,
    /// The DATA frames' payloads (a cut frame's first bytes when the stream outgrew its limit).
    data: Vec<&'a [u8]>,
}

/// The frames of a request stream (RFC 9114 §4.1): HEADERS, DATA frames, maybe trailers; unknown types are
/// skipped. `Err`: a connection error. `cut`: the stream was cut at its limit, so its last frame may be partial.
fn frames(bytes: &[u8], cut: bool) -> Result<Frames<'_>, u64> {
    let mut frames = Frames { headers: None, data: Vec::new() };
    let mut trailers = false;
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = frame::header(&bytes[at..]) else {
            return if cut { Ok(frames) } else { Err(frame::H3_FRAME_ERROR) };
        };
        let start = at + header.header_len;
        let whole =
            usize::try_from(header.len).ok().and_then(|len| start.checked_add(len)).filter(|&e| e <= bytes.len());
        let end = match whole {
            Some(end) => end,
            None if cut => bytes.len(),
            None => return Err(frame::H3_FRAME_ERROR),
        };
        let payload = &bytes[start..end];
        match header.kind {
            frame::HEADERS if frames.headers.is_none() => frames.headers = Some(payload),
            // Trailers: nothing of them is kept; nothing may follow them.
            frame::HEADERS if !trailers => trailers = true,
            frame::DATA if frames.headers.is_some() && !trailers => frames.data.push(payload),
            frame::HEADERS | frame::DATA => return Err(frame::H3_FRAME_UNEXPECTED),
            frame::SETTINGS | frame::GOAWAY | frame::MAX_PUSH_ID | frame::CANCEL_PUSH | frame::PUSH_PROMISE => {
                return Err(frame::H3_FRAME_UNEXPECTED);
            }
            kind if frame::is_http2_only(kind) => return Err(frame::H3_FRAME_UNEXPECTED),
            _ => {}
        }
        at = end;
    }
    Ok(frames)
}

impl Requests {
    /// One request stream: its answer's frames appended to `out`; `Ok(true)`: they wait for the group commit.
    pub(super) fn answer_h3(
        &mut self,
        peer: &Peer,
        bytes: &[u8],
        oversized: bool,
        batch: &mut Batch,
        out: &mut Vec<u8>,
    ) -> Result<bool, u64> {
        let parts = frames(bytes, oversized)?;
        let Some(block) = parts.headers else {
            let answer = Answer::error(HttpError::BadRequest("no HEADERS frame"), None, Method::Get);
            return Ok(self.frames(answer, out));
        };
        let mut fields = std::mem::take(&mut self.h3_fields);
        let answer = match qpack::decode(block, MAX_FIELD_SECTION as usize, &mut fields) {
            Err(QpackError::DecompressionFailed(_)) => {
                self.h3_fields = fields;
                return Err(frame::QPACK_DECOMPRESSION_FAILED);
            }
            Err(QpackError::TooLarge) => Answer::error(HttpError::HeadersTooLarge, None, Method::Get),
            Ok(()) => self.answer_fields(peer, &fields, &parts.data, oversized, batch),
        };
        self.h3_fields = fields;
        Ok(self.frames(answer, out))
    }

    fn answer_fields(
        &mut self,
        peer: &Peer,
        fields: &qpack::Fields,
        data: &[&[u8]],
        oversized: bool,
        batch: &mut Batch,
    ) -> Answer {
        let mut raw = std::mem::take(&mut self.h2_head);
        if let Err(reason) = render(fields, &mut raw) {
            self.h2_head = raw;
            return Answer::error(HttpError::BadRequest(reason), None, Method::Get);
        }
        let mut head = RequestHead::default();
        let answer = match parse_head_into(&raw, &mut head) {
            Ok(Parse::Complete(())) => {
                let mut body = std::mem::take(&mut self.h3_body);
                let whole: &[u8] = match data {
                    [] => &[],
                    [one] => one,
                    more => {
                        body.clear();
                        more.iter().for_each(|piece| body.extend_from_slice(piece));
                        &body
                    }
                };
                let answer = self.answer_head(&head, peer, whole, oversized, batch);
                self.h3_body = body;
                answer
            }
            Ok(Parse::Partial) => Answer::error(HttpError::BadRequest("malformed request head"), None, Method::Get),
            Err(e) => Answer::error(e, None, head.method),
        };
        self.h2_head = raw;
        answer
    }

    fn answer_head(
        &mut self,
        head: &RequestHead,
        peer: &Peer,
        body: &[u8],
        oversized: bool,
        batch: &mut Batch,
    ) -> Answer {
        let declared = match head.framing {
            Framing::Length(length) => Some(length),
            _ => None,
        };
        if !oversized && declared.is_some_and(|length| length != body.len() as u64) {
            // RFC 9114 §4.1.2: a content-length that the DATA frames contradict makes the request malformed.
            return Answer::error(HttpError::BadRequest("content-length differs from the body"), None, head.method);
        }
        let payload = match oversized {
            false => Payload::Whole(body),
            true if crate::route::keeps_oversized(head) => Payload::Oversized { declared, first: body },
            true => {
                let limit = HttpError::PayloadTooLarge("body larger than MAX_BODY_BYTES");
                return Answer::error(limit, None, head.method);
            }
        };
        // Every stream the session took is served, also after the drain ended: its GOAWAY told the client which.
        let request = Request { head, body: payload, peer, in_flight_at_drain_end: true };
        self.exchange(&request, batch)
    }

    /// `answer` as HTTP/3 frames: encoded as HTTP/1.1 (counted there), its status and header lines (less the
    /// connection-specific ones) as a HEADERS frame, its body as a DATA frame. Returns whether it commits.
    pub(super) fn frames(&mut self, answer: Answer, out: &mut Vec<u8>) -> bool {
        let mut encoded = std::mem::take(&mut self.h2_answer);
        encoded.clear();
        self.encode(&mut encoded, answer, ConnectionHeader::Omit, false);
        let mut block = std::mem::take(&mut self.h3_block);
        block.clear();
        let mut names = std::mem::take(&mut self.h3_names);
        names.clear();
        let mut lines = Vec::with_capacity(16);
        let (status, end) = translate::split_answer(&encoded, |name, value| {
            let start = names.len();
            names.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            lines.push((start..names.len(), value));
        });
        qpack::encode(status, lines.iter().map(|(name, value)| (&names[name.clone()], *value)), &mut block);
        frame::put_header(frame::HEADERS, block.len(), out);
        out.extend_from_slice(&block);
        let body = &encoded[end..];
        if !body.is_empty() {
            frame::put_header(frame::DATA, body.len(), out);
            out.extend_from_slice(body);
        }
        self.h2_answer = encoded;
        self.h3_block = block;
        self.h3_names = names;
        answer.commits
    }
}

/// Renders the head of a request whose fields are `fields` (RFC 9114 §4.3.1): `:method`, `:scheme` and `:path`
/// once each (`:authority` at most once), pseudo-headers before the other fields, names in lowercase and no
/// connection-specific field; no CR, LF or NUL in a value.
fn render(fields: &qpack::Fields, raw: &mut Vec<u8>) -> Result<(), &'static str> {
    let (mut method, mut scheme, mut path, mut authority) = (None, None, None, None);
    let mut regular = false;
    for (name, value) in fields.iter() {
        if value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err("a field value with CR, LF or NUL");
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if regular {
                return Err("a pseudo-header after the fields");
            }
            let slot = match pseudo {
                b"method" => &mut method,
                b"scheme" => &mut scheme,
                b"path" => &mut path,
                b"authority" => &mut authority,
                _ => return Err("an unknown pseudo-header"),
            };
            if slot.replace(value).is_some() {
                return Err("a pseudo-header twice");
            }
            continue;
        }
        regular = true;
        if name.is_empty()
            || name.iter().any(|b| b.is_ascii_uppercase() || matches!(b, b' ' | b':' | b'\r' | b'\n' | 0))
        {
            return Err("a field name that is not lowercase HTTP/3");
        }
        if matches!(name, b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade")
            || (name == b"te" && value != b"trailers")
        {
            return Err("a connection-specific field");
        }
    }
    let (Some(method), Some(_), Some(path)) = (method, scheme, path) else {
        return Err("a request without :method, :scheme or :path");
    };
    if method == b"CONNECT" {
        return Err("CONNECT is not served");
    }
    let regular = || fields.iter().filter(|(name, _)| !name.starts_with(b":"));
    translate::render_head(method, path, authority, regular, raw);
    Ok(())
}
