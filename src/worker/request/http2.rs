//! HTTP/2, the second front end of the request exchange. A connection becomes HTTP/2 before its first request:
//! by ALPN `h2` on the HTTPS listener, or by the prior-knowledge preface on the HTTP listener (h2c). Its session
//! (`worker/h2.rs`) gathers each stream's request; here a request that ended becomes a `Request` — its head
//! rendered as an HTTP/1.1 head and parsed by the same parser, so every route reads the same fields, with the
//! same checks — and its `Answer`, encoded by the same encoder as HTTP/1.1's, becomes the stream's HEADERS and
//! DATA (the status, the header lines less the connection-specific ones, the body). An answer that
//! acknowledges events waits in the session until the group commit (`release_h2`); the others leave at once.

use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Response};
use prost::Message;

use super::Requests;
use super::exchange::{Answer, AnswerKind, Payload, Request};
use super::translate;
use crate::event::record::Transport;
use crate::grpc::proto::otlp::ExportLogsServiceResponse;
use crate::grpc::proto::plutos::v1::SendResponse;
use crate::grpc::{self, Code};
use crate::http::response::ConnectionHeader;
use crate::http::{HttpError, Method, Parse, RequestHead, parse_head_into};
use crate::metrics::H2Counts;
use crate::protocol::{Accepted, Ingest};
use crate::spool::batch::Batch;
use crate::worker::connection::Connection;
use crate::worker::h2::{Complete, Outgoing, Polled, Session, Waiting, Wire};

impl Requests {
    /// Input of an HTTP/2 connection: fed to its session, which is polled; each request that ended is answered.
    /// Takes all of `data` (the session buffers what h2 has not read).
    pub(super) fn process_h2(&mut self, conn: &mut Connection, data: &[u8], batch: &mut Batch) -> usize {
        if let Some(session) = conn.h2.as_mut() {
            session.feed(data);
        }
        self.drive_h2(conn, batch, true);
        data.len()
    }

    /// Polls the connection's session until it rests, answering the requests that ended, and moves what it
    /// wrote into the connection's output. `accept`: new streams are taken (not while answers are released
    /// after the group commit).
    pub fn drive_h2(&mut self, conn: &mut Connection, batch: &mut Batch, accept: bool) {
        let Some(mut session) = conn.h2.take() else {
            return;
        };
        self.h2_https = conn.peer.transport == Transport::H2;
        let mut complete = std::mem::take(&mut self.h2_complete);
        let polled = loop {
            let polled = session.poll(&mut complete, accept, self.now);
            if complete.is_empty() {
                break polled;
            }
            for request in complete.drain(..) {
                self.answer_h2(conn, &mut session, request, batch);
            }
        };
        self.h2_complete = complete;
        self.h2_counts.resets += session.take_resets();
        if let Some(reason) = session.failure.take() {
            self.h2_counts.failures[H2Counts::failure_row(reason)] += 1;
        }
        session.take_output(conn.output.buf());
        session.set_unsent(conn.output.unsent());
        if polled == Polled::Ended && conn.life.takes_requests() {
            conn.life.end_after_answer(false);
        }
        conn.h2 = Some(session);
    }

    /// The group commit returned: the answers that waited for it leave (`durable`), or — the spool write
    /// failed — each becomes a 503 (a gRPC call's: UNAVAILABLE).
    pub fn release_h2(&mut self, conn: &mut Connection, batch: &mut Batch, durable: bool) {
        let Some(session) = conn.h2.as_mut() else {
            return;
        };
        self.h2_https = conn.peer.transport == Transport::H2;
        for waiting in std::mem::take(&mut session.waiting) {
            let answer = match durable {
                true => waiting.answer,
                false => self.outgoing(Answer::error(HttpError::SpoolWriteFailed, None, Method::Post), waiting.wire),
            };
            Session::send(waiting.respond, answer);
        }
        self.drive_h2(conn, batch, false);
    }

    /// Answers the streams whose request took longer than the header timeout (408; a gRPC call's:
    /// DEADLINE_EXCEEDED).
    pub fn time_out_h2(&mut self, conn: &mut Connection, batch: &mut Batch) {
        let Some(session) = conn.h2.as_mut() else {
            return;
        };
        self.h2_https = conn.peer.transport == Transport::H2;
        for (respond, wire) in session.expired(self.now, self.config.header_timeout) {
            let answer = self.outgoing(Answer::error(HttpError::RequestTimeout, None, Method::Post), wire);
            Session::send(respond, answer);
        }
        self.drive_h2(conn, batch, true);
    }

    /// One request of the session: its head parsed, the exchange's answer sent now or kept for the commit.
    fn answer_h2(&mut self, conn: &mut Connection, session: &mut Session, request: Complete, batch: &mut Batch) {
        let Complete { head: parts, body, oversized, respond, started, wire } = request;
        self.h2_counts.streams += 1;
        let mut raw = std::mem::take(&mut self.h2_head);
        render_head(&parts, &mut raw);
        let mut head = RequestHead::default();
        let answer = match parse_head_into(&raw, &mut head) {
            Ok(Parse::Complete(())) if conn.life.over_limit() => {
                Answer::error(HttpError::TooManyConnections, None, head.method)
            }
            // A call whose deadline passed before it was whole is not served: its client has given up.
            Ok(Parse::Complete(())) if wire == Wire::Grpc && deadline_passed(&parts, started, self.now) => {
                Answer::error(HttpError::RequestTimeout, None, head.method)
            }
            Ok(Parse::Complete(())) => {
                let declared =
                    parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
                let body = match oversized {
                    false => Payload::Whole(&body),
                    true if crate::route::keeps_oversized(&head) => Payload::Oversized { declared, first: &body },
                    true => Payload::Whole(&[]),
                };
                if oversized && matches!(body, Payload::Whole(_)) {
                    let limit = HttpError::PayloadTooLarge("body larger than MAX_BODY_BYTES");
                    Answer::error(limit, None, head.method)
                } else {
                    // Every stream the session took is served, also after the drain ended: its GOAWAY told the
                    // client which streams would be.
                    let request = Request { head: &head, body, peer: &conn.peer, in_flight_at_drain_end: true };
                    self.exchange(&request, batch)
                }
            }
            Ok(Parse::Partial) => Answer::error(HttpError::BadRequest("malformed request head"), None, Method::Get),
            Err(e) => Answer::error(e, None, head.method),
        };
        // A refusal that ends an HTTP/1.1 connection ends the session; so does serving over MAX_CONNECTIONS.
        if answer.close || conn.life.over_limit() {
            session.go_away();
        }
        self.h2_head = raw;
        let commits = answer.commits;
        let outgoing = self.outgoing(answer, wire);
        if commits {
            session.waiting.push(Waiting { respond, answer: outgoing, wire });
        } else {
            Session::send(respond, outgoing);
        }
    }

    /// `answer` as its stream's wire writes it (and counted, as every answer is).
    fn outgoing(&mut self, answer: Answer, wire: Wire) -> Outgoing {
        match wire {
            Wire::Http => self.translate(answer),
            Wire::Grpc => self.grpc_answer(answer),
        }
    }

    /// `answer` as HTTP/2 sends it: encoded as HTTP/1.1 (counted there), then its status, header lines (less
    /// the connection-specific ones) and body taken from that encoding.
    fn translate(&mut self, answer: Answer) -> Outgoing {
        let mut encoded = std::mem::take(&mut self.h2_answer);
        encoded.clear();
        self.encode(&mut encoded, answer, ConnectionHeader::Omit, self.h2_https);
        let (head, body) = to_h2(&encoded);
        self.h2_answer = encoded;
        Outgoing { head, body, trailers: None }
    }

    /// `answer` as a gRPC call's: status 200 and `application/grpc` always; an accepted call's response message
    /// (its service's) then `grpc-status: 0` in the trailers; a refusal trailers-only, its code and reason in
    /// `grpc-status` and `grpc-message` (with `grpc-retry-pushback-ms` when a retry later can succeed).
    fn grpc_answer(&mut self, answer: Answer) -> Outgoing {
        let status = answer.status(self.config.response);
        self.tally.response(answer.route, status);
        let mut head = Response::new(());
        let headers = head.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-accept-encoding", HeaderValue::from_static(grpc::ACCEPT_ENCODING));
        let (code, reason) = match answer.kind {
            AnswerKind::Accepted(Accepted::Grpc { accepted, invalid }) => {
                let message = match answer.route.and_then(|r| r.endpoint().ingest()) {
                    Some(Ingest::Send) => SendResponse { accepted, invalid }.encode_to_vec(),
                    _ => ExportLogsServiceResponse::default().encode_to_vec(),
                };
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                return Outgoing { head, body: Bytes::from(grpc::frame(&message)), trailers: Some(trailers) };
            }
            AnswerKind::Error(e) => {
                self.tally.rejection(e);
                (Code::of(e), e.reason())
            }
            _ => (Code::Unimplemented, "not a gRPC method"),
        };
        let headers = head.headers_mut();
        headers.insert("grpc-status", HeaderValue::from(code as u32));
        if let Ok(reason) = HeaderValue::from_str(reason) {
            headers.insert("grpc-message", reason);
        }
        if matches!(code, Code::Unavailable | Code::ResourceExhausted) {
            headers.insert("grpc-retry-pushback-ms", HeaderValue::from_static("1000"));
        }
        Outgoing { head, body: Bytes::new(), trailers: None }
    }
}

/// Whether a gRPC call's `grpc-timeout`, counted from its first frame, has passed.
fn deadline_passed(parts: &http::request::Parts, started: Instant, now: Instant) -> bool {
    let timeout = parts.headers.get("grpc-timeout").and_then(|v| grpc::timeout(v.as_bytes()));
    timeout.is_some_and(|t| now.saturating_duration_since(started) >= t)
}

/// A request's head as HTTP/1.1 would have carried it (`translate::render_head`), `:authority` as its host. h2
/// has refused what HTTP/2 forbids (uppercase names, connection-specific fields, a missing pseudo-header), and
/// values with CR, LF or NUL.
fn render_head(parts: &http::request::Parts, raw: &mut Vec<u8>) {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
    let fields = || parts.headers.iter().map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()));
    translate::render_head(parts.method.as_str().as_bytes(), target.as_bytes(), authority, fields, raw);
}

/// An HTTP/1.1 answer (as `encode` writes it) as an HTTP/2 response head and body.
fn to_h2(encoded: &[u8]) -> (Response<()>, Bytes) {
    let mut response = Response::new(());
    let headers = response.headers_mut();
    let (status, end) = translate::split_answer(encoded, |name, value| {
        // `from_bytes` writes the name in lowercase itself, as HTTP/2 wants it.
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    });
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    (response, Bytes::copy_from_slice(&encoded[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_renders_as_http1_with_host_and_one_cookie_line() {
        let request = http::Request::builder()
            .method("POST")
            .uri("https://collector.example:8443/e?a=1")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let mut raw = Vec::new();
        render_head(&parts, &mut raw);
        assert_eq!(
            String::from_utf8(raw.clone()).unwrap(),
            "POST /e?a=1 HTTP/1.1\r\nhost: collector.example:8443\r\ncookie: a=1; b=2\r\n\
             content-type: application/json\r\n\r\n"
        );
        let mut head = RequestHead::default();
        assert!(matches!(parse_head_into(&raw, &mut head), Ok(Parse::Complete(()))));
        assert_eq!((head.method, head.path, head.query), (Method::Post, &b"/e"[..], &b"a=1"[..]));
        assert_eq!(head.content_type, Some(&b"application/json"[..]));
    }

    #[test]
    fn a_calls_deadline_counts_from_its_first_frame() {
        let request = http::Request::builder().header("grpc-timeout", "100m").body(()).unwrap();
        let (parts, ()) = request.into_parts();
        let started = Instant::now();
        assert!(!deadline_passed(&parts, started, started + std::time::Duration::from_millis(99)));
        assert!(deadline_passed(&parts, started, started + std::time::Duration::from_millis(100)));
        let (none, ()) = http::Request::new(()).into_parts();
        assert!(!deadline_passed(&none, started, started + std::time::Duration::from_secs(3600)), "no deadline");
    }

    #[test]
    fn an_answer_loses_its_connection_lines_and_keeps_the_rest() {
        let encoded = b"HTTP/1.1 200 OK\r\nDate: x\r\nConnection: close\r\nContent-Length: 2\r\n\
                        Access-Control-Allow-Origin: https://a.example\r\n\r\nok";
        let (response, body) = to_h2(encoded);
        assert_eq!(response.status(), 200);
        assert_eq!(&body[..], b"ok");
        let names: Vec<&str> = response.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["date", "content-length", "access-control-allow-origin"]);
    }
}
