//! An answer encoded as HTTP/1.1 into a connection's output, and counted: accepted events (the cached
//! keep-alive GET answer, a batch's count, an SDK's own body), preflights, texts and refusals, with the header
//! lines an answer adds (CORS, the visitor's cookie, no-cache, `Allow`).

use super::Requests;
use super::exchange::{Answer, AnswerKind};
use crate::event::clock::Clock;
use crate::http::cors::Cors;
use crate::http::response::{self, Body, ConnectionHeader, Delivery, NO_CACHE, Response, ResponseKind};
use crate::protocol::{Accepted, Cookie, otlp};

impl Requests {
    /// Appends `answer` to `out` with the `Connection` header `connection`, and counts it. `https`: it goes to
    /// an HTTPS client, which learns of HTTP/3 (`Alt-Svc`, with `QUIC_PORT`).
    pub(super) fn encode(&mut self, out: &mut Vec<u8>, answer: Answer, connection: ConnectionHeader, https: bool) {
        let alt_svc = match https {
            true => self.alt_svc.as_deref().unwrap_or_default(),
            false => &[],
        };
        let status = answer.status(self.config.response);
        self.tally.response(answer.route, status);
        let body = if answer.head_only { Body::Omit } else { Body::Send };
        let date = self.clock.http_date();
        match answer.kind {
            AnswerKind::Error(e) => {
                self.tally.rejection(e);
                let lines = header_lines(&self.edge.cors, answer, &[], &[], alt_svc, &mut self.lines);
                let delivery = Delivery { body, connection, cors: lines };
                match answer.otlp {
                    Some(format) => {
                        let content_type = otlp::status(e, format, &mut self.text);
                        response::write_error_as(out, date, e, Some((content_type, &self.text)), delivery);
                    }
                    None => response::write_error(out, date, e, delivery),
                }
            }
            AnswerKind::Accepted(accepted) => {
                let cookie = match answer.route.and_then(|r| r.endpoint().ingest()).map(|i| i.cookie()) {
                    Some(Cookie::Snowplow) => self.visitors.set_cookie(),
                    _ => self.first_party.set_cookie(),
                };
                match accepted {
                    Accepted::Event => {
                        let lines = header_lines(&self.edge.cors, answer, &[], cookie, alt_svc, &mut self.lines);
                        let kind = self.config.response;
                        if body == Body::Omit || connection != ConnectionHeader::Omit {
                            let delivery = Delivery { body, connection, cors: lines };
                            response::write_event_accepted(out, date, kind, delivery);
                        } else {
                            self.event_ok.write(out, &self.clock, kind, lines);
                        }
                    }
                    // A gRPC call's answer is framed by the HTTP/2 front end; were one encoded here (gRPC over
                    // HTTP/1.1 is refused before), it would read as a batch's count.
                    Accepted::Grpc { accepted, invalid } => {
                        let lines = header_lines(&self.edge.cors, answer, &[], cookie, alt_svc, &mut self.lines);
                        let delivery = Delivery { body, connection, cors: lines };
                        response::write_batch_accepted(out, date, accepted, Some(invalid), delivery);
                    }
                    Accepted::Count { accepted, invalid } => {
                        let lines = header_lines(&self.edge.cors, answer, &[], cookie, alt_svc, &mut self.lines);
                        let delivery = Delivery { body, connection, cors: lines };
                        response::write_batch_accepted(out, date, accepted, invalid, delivery);
                    }
                    Accepted::Body { content_type, body: text, no_cache } => {
                        let cache = if no_cache { NO_CACHE.as_bytes() } else { &[] };
                        let lines = header_lines(&self.edge.cors, answer, cache, cookie, alt_svc, &mut self.lines);
                        let accepted = Response {
                            status: (200, "OK"),
                            content_type: Some(content_type),
                            extra_headers: b"",
                            body: text,
                        };
                        response::write(out, date, &accepted, Delivery { body, connection, cors: lines });
                    }
                }
            }
            AnswerKind::Preflight => {
                // The `Allow` and preflight lines are in `extra` (the exchange put them there).
                let preflight =
                    Response { status: (204, "No Content"), content_type: None, extra_headers: &self.extra, body: b"" };
                let lines = header_lines(&self.edge.cors, answer, &[], &[], alt_svc, &mut self.lines);
                let delivery = Delivery { body: Body::Send, connection, cors: lines };
                response::write(out, date, &preflight, delivery);
            }
            AnswerKind::Text { status, content_type, no_store } => {
                let extra_headers: &[u8] = if no_store { b"Cache-Control: no-store\r\n" } else { b"" };
                let text = Response { status, content_type: Some(content_type), extra_headers, body: &self.text };
                let lines = header_lines(&self.edge.cors, answer, &[], &[], alt_svc, &mut self.lines);
                let delivery = Delivery { body, connection, cors: lines };
                response::write(out, date, &text, delivery);
            }
        }
    }
}

/// The header lines an answer adds: `before` (no-cache for a pixel), the CORS lines of its origin, the visitor's
/// cookie, and `after` (`Alt-Svc`). Borrowed from the CORS table when there is nothing else (the common case: no
/// copy).
fn header_lines<'a>(
    cors: &'a Cors,
    answer: Answer,
    before: &[u8],
    cookie: &[u8],
    after: &[u8],
    lines: &'a mut Vec<u8>,
) -> &'a [u8] {
    let cors = cors.headers(answer.grant);
    if before.is_empty() && cookie.is_empty() && after.is_empty() {
        return cors;
    }
    lines.clear();
    lines.extend_from_slice(before);
    lines.extend_from_slice(cors);
    lines.extend_from_slice(cookie);
    lines.extend_from_slice(after);
    lines
}

/// The keep-alive answer to an accepted GET, rendered once per second (it carries the Date). The CORS lines of
/// an allowed origin go in before the blank line, so they cost one more copy, not a rendering.
#[derive(Default)]
pub(super) struct CachedAnswer {
    bytes: Vec<u8>,
    /// Where the blank line that ends the head starts.
    head_end: usize,
    second: Option<i64>,
}

impl CachedAnswer {
    fn write(&mut self, out: &mut Vec<u8>, clock: &Clock, kind: ResponseKind, cors: &[u8]) {
        if self.second != Some(clock.unix_seconds()) {
            self.second = Some(clock.unix_seconds());
            self.bytes.clear();
            let delivery = Delivery { body: Body::Send, connection: ConnectionHeader::Omit, cors: b"" };
            response::write_event_accepted(&mut self.bytes, clock.http_date(), kind, delivery);
            self.head_end = memchr::memmem::find(&self.bytes, b"\r\n\r\n").map_or(0, |at| at + 2);
        }
        if cors.is_empty() {
            out.extend_from_slice(&self.bytes);
        } else {
            out.extend_from_slice(&self.bytes[..self.head_end]);
            out.extend_from_slice(cors);
            out.extend_from_slice(&self.bytes[self.head_end..]);
        }
    }
}
