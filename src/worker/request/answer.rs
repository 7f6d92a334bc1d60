//! The answers of a request, encoded into its connection's output and counted: accepted events (the cached
//! keep-alive GET answer, a batch's count, an SDK's own body), preflights, plain texts and refusals, with the
//! header lines an answer adds (CORS, the visitor's cookie).

use super::{Answer, Requests};
use crate::event::clock::Clock;
use crate::http::HttpError;
use crate::http::RequestHead;
use crate::http::cors::Cors;
use crate::http::response::{self, Body, ConnectionHeader, Delivery, Response, ResponseKind};
use crate::http::route::{Endpoint, Route};
use crate::protocol::{posthog, segment, snowplow};
use crate::worker::connection::Connection;

impl Requests {
    /// `OPTIONS`: 204 with the route's `Allow`, and for an allowed origin the CORS preflight headers.
    pub(super) fn preflight(&mut self, conn: &mut Connection, head: &RequestHead<'_>, route: Route, answer: Answer) {
        let allow = route.allow();
        let mut extra = std::mem::take(&mut self.extra);
        extra.clear();
        extra.extend_from_slice(b"Allow: ");
        extra.extend_from_slice(allow.as_bytes());
        extra.extend_from_slice(b"\r\n");
        self.edge.preflight(head, allow, route.endpoint().is_sdk(), &mut extra);
        let preflight = Response { status: (204, "No Content"), content_type: None, extra_headers: &extra, body: b"" };
        self.send(conn, &preflight, Answer { body: Body::Send, ..answer });
        self.extra = extra;
    }

    /// Encodes `response` into the connection's output and counts it.
    pub(super) fn send(&mut self, conn: &mut Connection, response: &Response<'_>, answer: Answer) {
        let delivery = answer.delivery(&self.edge.cors);
        response::write(conn.output.buf(), self.clock.http_date(), response, delivery);
        self.tally.response(answer.route, response.status.0);
    }

    /// The answer to an accepted POST.
    pub(super) fn accept_batch(&mut self, conn: &mut Connection, events: u64, answer: Answer) {
        let lines = accepted_lines(&self.edge.cors, answer, self.first_party.set_cookie(), &mut self.extra);
        let delivery = Delivery { body: answer.body, connection: answer.connection, cors: lines };
        response::write_batch_accepted(conn.output.buf(), self.clock.http_date(), events, delivery);
        self.tally.response(answer.route, 200);
    }

    /// The answer to an accepted GET/HEAD: the common keep-alive one is copied from a per-second cache.
    pub(super) fn accept_event(&mut self, conn: &mut Connection, answer: Answer) {
        let kind = self.config.response;
        let lines = accepted_lines(&self.edge.cors, answer, self.first_party.set_cookie(), &mut self.extra);
        if answer.body == Body::Omit || answer.connection != ConnectionHeader::Omit {
            let delivery = Delivery { body: answer.body, connection: answer.connection, cors: lines };
            response::write_event_accepted(conn.output.buf(), self.clock.http_date(), kind, delivery);
        } else {
            self.event_ok.write(conn.output.buf(), &self.clock, kind, lines);
        }
        let status = if kind == ResponseKind::NoContent { 204 } else { 200 };
        self.tally.response(answer.route, status);
    }

    /// The answer to an accepted SDK request: exactly 200, with the body its SDK expects (and the visitor's
    /// cookie: Snowplow's, or the first-party one).
    pub(super) fn accept_sdk(&mut self, conn: &mut Connection, endpoint: Endpoint, answer: Answer) {
        let (content_type, body, cache) = match endpoint {
            Endpoint::Segment(_) => ("application/json", segment::ACCEPTED, ""),
            Endpoint::PostHog => ("application/json", posthog::ACCEPTED, ""),
            Endpoint::SnowplowPixel => ("image/gif", response::PIXEL_GIF, response::NO_CACHE),
            _ => ("text/plain; charset=utf-8", snowplow::ACCEPTED, ""),
        };
        let snowplow = matches!(endpoint, Endpoint::SnowplowPost | Endpoint::SnowplowPixel);
        let mut extra = std::mem::take(&mut self.extra);
        extra.clear();
        extra.extend_from_slice(cache.as_bytes());
        let visitors = if snowplow { &self.visitors } else { &self.first_party };
        extra.extend_from_slice(visitors.set_cookie());
        let accepted = Response { status: (200, "OK"), content_type: Some(content_type), extra_headers: &extra, body };
        self.send(conn, &accepted, answer);
        self.extra = extra;
    }

    /// Answers with the canned response for `e`; `ConnectionHeader::Close` ends the connection after it.
    pub(super) fn reject(&mut self, conn: &mut Connection, e: HttpError, answer: Answer) {
        self.tally.rejection(e);
        let delivery = answer.delivery(&self.edge.cors);
        response::write_error(conn.output.buf(), self.clock.http_date(), e, delivery);
        self.tally.response(answer.route, e.status().0);
        if answer.connection == ConnectionHeader::Close {
            conn.life.end_after_answer();
        }
    }
}

/// The header lines an accepted `/e` request's answer adds: the CORS lines of its origin and the visitor's
/// cookie. Borrowed from the CORS table when there is no cookie (the common case: no copy).
fn accepted_lines<'a>(cors: &'a Cors, answer: Answer, cookie: &[u8], extra: &'a mut Vec<u8>) -> &'a [u8] {
    let cors = cors.headers(answer.grant);
    if cookie.is_empty() {
        return cors;
    }
    extra.clear();
    extra.extend_from_slice(cors);
    extra.extend_from_slice(cookie);
    extra
}

pub(super) fn plain_text<'a>(status: (u16, &'static str), text: &'a [u8]) -> Response<'a> {
    Response {
        status,
        content_type: Some("text/plain; charset=utf-8"),
        extra_headers: b"Cache-Control: no-store\r\n",
        body: text,
    }
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
