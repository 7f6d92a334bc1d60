//! HTTP/1.1, the first front end of the request exchange: the requests in a connection's bytes are framed
//! (`http::framing`, resumable across reads), each complete one handed to `Requests::exchange`, and its answer
//! encoded into the connection's output (`answer.rs`) — behind the committed boundary when it acknowledges
//! events. What only HTTP/1.1 has is decided here: `Expect: 100-continue`, keep-alive and `Connection: close`,
//! HTTP/1.0, framing errors, and the 503 of a connection over `MAX_CONNECTIONS`.

use super::Requests;
use super::exchange::{Answer, AnswerKind, Payload, Request};
use crate::event::record::Transport;
use crate::http::chunked::decode_chunked;
use crate::http::framing::{self, BodyLimit, Framed, FramingError, Progress};
use crate::http::response::{self, ConnectionHeader};
use crate::http::{Framing, HttpError, RequestHead};
use crate::route::{self, Route};
use crate::spool::batch::Batch;
use crate::state::Phase;
use crate::worker::connection::Connection;

/// Room for a typical answer (a 200 with its headers is ~100 bytes; a keep-alive connection keeps its buffer, so
/// this is also about what an idle one holds).
const ANSWER_ROOM: usize = 256;

impl Requests {
    /// Handles every complete request at the start of `data` (a connection's input): answers go to the
    /// connection's output, accepted events to `batch`. Returns how many bytes the requests took; what is left
    /// is the start of an incomplete request, whose progress `conn.progress` keeps for the next call.
    pub fn process(&mut self, conn: &mut Connection, data: &[u8], batch: &mut Batch) -> usize {
        let mut pos = 0;
        while pos < data.len() && conn.life.takes_requests() {
            match self.handle_one(conn, &data[pos..], batch) {
                Some(n) => {
                    pos += n;
                    conn.progress = Progress::default();
                }
                None => break,
            }
        }
        pos
    }

    /// Answers `error` and ends the connection (a request not received in time, a failed spool write).
    pub fn refuse(&mut self, conn: &mut Connection, route: Option<Route>, error: HttpError) {
        let answer = Answer { close: true, head_only: false, ..Answer::error(error, route, crate::http::Method::Get) };
        self.write_answer(conn, answer, ConnectionHeader::Close, true);
    }

    /// Handles the request at the start of `buf`, if it is complete. Returns the bytes it took.
    fn handle_one(&mut self, conn: &mut Connection, buf: &[u8], batch: &mut Batch) -> Option<usize> {
        let mut head = RequestHead::default();
        let limit = BodyLimit { max: self.config.max_body_bytes, keeps_oversized: route::keeps_oversized };
        let (end, oversized) = match conn.progress.advance(buf, limit, &mut head) {
            Ok(Framed::Complete { end }) => (end, false),
            Ok(Framed::Oversized { end }) => (end, true),
            Ok(Framed::Partial) => return None,
            Ok(Framed::HeadOnly) => {
                if conn.life.over_limit() {
                    self.refuse(conn, None, HttpError::TooManyConnections);
                    return Some(buf.len());
                }
                if head.expect_continue {
                    if let Some(answer) = self.precheck(&head) {
                        self.write_answer(conn, Answer { close: true, ..answer }, ConnectionHeader::Close, true);
                        return Some(buf.len());
                    }
                    response::write_continue(conn.output.buf());
                }
                return None;
            }
            Err(FramingError { error, body }) => {
                // The request cannot be framed (or its body will not be read): answer and end the connection.
                let answer = Answer {
                    close: true,
                    head_only: body == response::Body::Omit,
                    ..Answer::error(error, None, head.method)
                };
                self.write_answer(conn, answer, ConnectionHeader::Close, true);
                return Some(buf.len());
            }
        };
        if conn.life.over_limit() {
            self.refuse(conn, None, HttpError::TooManyConnections);
            return Some(buf.len());
        }
        let mut dechunked = std::mem::take(&mut self.body.dechunked);
        let body = match head.framing {
            // The rest of an oversized body is never read: the connection ends with this answer.
            _ if oversized => {
                let declared = match head.framing {
                    Framing::Length(n) => Some(n),
                    _ => None,
                };
                Payload::Oversized { declared, first: &buf[head.len..end] }
            }
            Framing::Chunked => {
                dechunked.clear();
                let limits = framing::chunked_limits(&head, self.config.max_body_bytes);
                let decoded = decode_chunked(&buf[head.len..end], limits, &mut dechunked);
                debug_assert!(decoded.is_ok(), "a body the scanner found complete decodes");
                Payload::Whole(&dechunked[..])
            }
            _ => Payload::Whole(&buf[head.len..end]),
        };
        // Once the drain is over, the connection ends after this request.
        let ends = oversized || !head.keep_alive || self.shared.phase() == Phase::Closing;
        let request = Request {
            head: &head,
            body,
            peer: &conn.peer,
            in_flight_at_drain_end: conn.life.serves_request_after_drain(),
        };
        let answer = self.exchange(&request, batch);
        let connection = if ends || answer.close {
            ConnectionHeader::Close
        } else if head.http10 {
            ConnectionHeader::KeepAlive
        } else {
            ConnectionHeader::Omit
        };
        // A refusal that ends the connection, or a body left unread, may leave input behind: it lingers.
        let unread = oversized || matches!(answer.kind, AnswerKind::Error(_));
        self.write_answer(conn, answer, connection, unread);
        self.body.dechunked = dechunked;
        Some(if oversized { buf.len() } else { end })
    }

    /// Encodes `answer` into the connection's output — after the mark of the answers that wait for this
    /// iteration's group commit, when it acknowledges events — and ends the connection after it when its
    /// `Connection` header says so.
    /// `unread`: input may be left behind this answer (the connection lingers if it ends).
    fn write_answer(&mut self, conn: &mut Connection, answer: Answer, connection: ConnectionHeader, unread: bool) {
        if let (true, Some(route)) = (answer.commits, answer.route) {
            conn.output.mark_ingest(route);
        }
        let out = conn.output.buf();
        // A new connection's first answer: room for it at once, not grown piece by piece (four reallocations).
        out.reserve(ANSWER_ROOM);
        self.encode(out, answer, connection, conn.peer.transport == Transport::Https);
        if connection == ConnectionHeader::Close {
            conn.life.end_after_answer(unread);
        }
    }
}
