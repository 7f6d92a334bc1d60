//! What a worker does with the bytes of one connection: frame each complete request, route it, append its
//! events to the worker's batch and its response to the connection's output.
//!
//! Responses are encoded at once but only leave after the worker's group commit (`worker.rs`) moved the
//! connection's committed boundary past them; `Connection::mark_ingest` notes where the answers that wait for
//! the spool write start, so a failed write can take them back.

use std::sync::Arc;

use crate::body::{self, BodyScratch};
use crate::clock::Clock;
use crate::config::Config;
use crate::connection::Connection;
use crate::http::{Framing, HttpError, Method, Parse, RequestHead, parse_head, scan_chunked};
use crate::ids::RequestIds;
use crate::metrics::{WorkerMetrics, add};
use crate::query::{QueryScratch, append_query_object};
use crate::record::{RecordBuilder, RequestMeta};
use crate::response::{self, ALLOW_INGEST, ALLOW_READ_ONLY, Response};
use crate::state::{Phase, Shared};

/// Extra room a chunked body may take on the wire over its decoded size (chunk-size lines).
const CHUNKED_OVERHEAD: usize = 64 * 1024;

/// A worker's request-handling state: clock, ids, scratch buffers and the batch of lines of this iteration.
pub struct Requests {
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
    worker: usize,
    pub clock: Clock,
    ids: RequestIds,
    records: RecordBuilder,
    body: BodyScratch,
    query: QueryScratch,
    /// Lines of the events accepted in this iteration, written to the spool by the group commit.
    pub batch: Vec<u8>,
    pub batch_events: u64,
    /// Requests answered since the worker last added them to its counter (once per iteration, not per request).
    pub requests_seen: u64,
    /// Whether ingest may accept now; `Err` carries the 503 reason. Set by the worker each iteration.
    pub accepting: Result<(), &'static str>,
    /// The keep-alive answer to an accepted GET, rendered once per second (it carries the Date).
    event_ok: Vec<u8>,
    event_ok_second: i64,
}

impl Requests {
    pub fn new(config: Arc<Config>, shared: Arc<Shared>, worker: usize, boot_random: u32) -> Requests {
        Requests {
            config,
            shared,
            worker,
            clock: Clock::new(),
            ids: RequestIds::new(worker, boot_random),
            records: RecordBuilder::default(),
            body: BodyScratch::default(),
            query: QueryScratch::default(),
            batch: Vec::with_capacity(64 * 1024),
            batch_events: 0,
            requests_seen: 0,
            accepting: Ok(()),
            event_ok: Vec::new(),
            event_ok_second: i64::MIN,
        }
    }

    fn metrics(&self) -> &WorkerMetrics {
        &self.shared.workers[self.worker]
    }

    /// Handles every complete request at the start of `data`; returns how many bytes they took.
    pub fn process(&mut self, conn: &mut Connection, data: &[u8]) -> usize {
        let mut pos = 0;
        while pos < data.len() && !conn.close_after_flush {
            match self.handle_one(conn, &data[pos..]) {
                Some(n) => {
                    pos += n;
                    conn.continue_sent = false;
                }
                None => break,
            }
        }
        pos
    }

    /// Handles the request at the start of `buf`, if it is complete. Returns the bytes it took.
    fn handle_one(&mut self, conn: &mut Connection, buf: &[u8]) -> Option<usize> {
        let head = match parse_head(buf) {
            Ok(Parse::Complete(head)) => head,
            Ok(Parse::Partial) => return None,
            Err(e) => {
                self.reject(conn, e, false, true);
                return Some(buf.len());
            }
        };
        let max_body = self.config.max_body_bytes;
        let rest = &buf[head.len..];
        let mut dechunked = std::mem::take(&mut self.body.dechunked);
        let framed: Result<Option<(bool, usize)>, HttpError> = match head.framing {
            Framing::None if head.method == Method::Post => Err(HttpError::LengthRequired),
            Framing::None => Ok(Some((false, 0))),
            Framing::Length(n) if n > max_body as u64 => Err(HttpError::PayloadTooLarge("request body too large")),
            Framing::Length(n) if (rest.len() as u64) < n => Ok(None),
            Framing::Length(n) => Ok(Some((false, n as usize))),
            Framing::Chunked => match scan_chunked(rest, max_body) {
                Ok(Parse::Complete(c)) => {
                    dechunked.clear();
                    crate::http::decode_chunked(&rest[..c.wire_len], &mut dechunked);
                    Ok(Some((true, c.wire_len)))
                }
                Ok(Parse::Partial) if rest.len() > max_body + CHUNKED_OVERHEAD => {
                    Err(HttpError::PayloadTooLarge("request body too large"))
                }
                Ok(Parse::Partial) => Ok(None),
                Err(e) => Err(e),
            },
        };
        let result = match framed {
            Err(e) => {
                // The body cannot be framed (or will not be read): answer and end the connection.
                self.reject(conn, e, head.method == Method::Head, true);
                Some(buf.len())
            }
            Ok(None) => {
                if head.expect_continue && !conn.continue_sent {
                    if let Some(e) = self.refuse_early(&head) {
                        self.reject(conn, e, false, true);
                        self.body.dechunked = dechunked;
                        return Some(buf.len());
                    }
                    response::write_continue(&mut conn.out);
                    conn.continue_sent = true;
                }
                None
            }
            Ok(Some((chunked, wire_len))) => {
                let body = if chunked { &dechunked[..] } else { &rest[..wire_len] };
                // Once the drain is over, the connection ends after this request.
                let close = !head.keep_alive || self.shared.phase() == Phase::Closing;
                self.respond(conn, &head, body, close);
                if close {
                    conn.close_after_flush = true;
                }
                Some(head.len + wire_len)
            }
        };
        self.body.dechunked = dechunked;
        result
    }

    /// For `Expect: 100-continue`: the answer the request will get whatever its body, if it is an error.
    fn refuse_early(&self, head: &RequestHead<'_>) -> Option<HttpError> {
        match (head.path, head.method) {
            (b"/e", Method::Post) => self.accepting.err().map(HttpError::Unavailable),
            (b"/e", _) => None,
            (b"/health" | b"/metrics", Method::Get | Method::Head) => None,
            (b"/health" | b"/metrics", _) => Some(HttpError::MethodNotAllowed { allow: ALLOW_READ_ONLY }),
            _ => Some(HttpError::NotFound),
        }
    }

    fn respond(&mut self, conn: &mut Connection, head: &RequestHead<'_>, body: &[u8], close: bool) {
        self.requests_seen += 1;
        let head_only = head.method == Method::Head;
        if self.shared.phase() == Phase::Closing && !conn.inflight_at_close {
            return self.reject(conn, HttpError::Unavailable("shutting down"), head_only, true);
        }
        conn.inflight_at_close = false;
        let date = *self.clock.http_date();
        match (head.path, head.method) {
            (b"/e", Method::Get | Method::Head) => {
                if let Err(e) = self.ingest_query(conn, head) {
                    return self.reject(conn, e, head_only, close);
                }
                let kind = self.config.response;
                if head_only || close {
                    response::write_event_accepted(&mut conn.out, &date, kind, head_only, close);
                } else {
                    if self.event_ok_second != self.clock.unix_seconds() {
                        self.event_ok_second = self.clock.unix_seconds();
                        self.event_ok.clear();
                        response::write_event_accepted(&mut self.event_ok, &date, kind, false, false);
                    }
                    conn.out.extend_from_slice(&self.event_ok);
                }
            }
            (b"/e", Method::Post) => match self.ingest_body(conn, head, body) {
                Ok(events) => response::write_batch_accepted(&mut conn.out, &date, events, close),
                Err(e) => self.reject(conn, e, false, close),
            },
            (b"/e", Method::Options) => {
                let preflight = Response {
                    status: (204, "No Content"),
                    content_type: None,
                    extra_headers: b"Allow: GET, HEAD, POST, OPTIONS\r\n",
                    body: b"",
                };
                response::write(&mut conn.out, &date, &preflight, false, close);
            }
            (b"/e", _) => self.reject(conn, HttpError::MethodNotAllowed { allow: ALLOW_INGEST }, false, close),
            (b"/health", Method::Get | Method::Head) => {
                let (status, text): ((u16, &str), &[u8]) = match self.shared.phase() {
                    Phase::Running => ((200, "OK"), b"ok\n"),
                    _ => ((503, "Service Unavailable"), b"draining\n"),
                };
                let health = Response {
                    status,
                    content_type: Some("text/plain; charset=utf-8"),
                    extra_headers: b"Cache-Control: no-store\r\n",
                    body: text,
                };
                response::write(&mut conn.out, &date, &health, head_only, close);
            }
            (b"/metrics", Method::Get | Method::Head) => {
                let text = self.shared.metrics_text();
                let metrics = Response {
                    status: (200, "OK"),
                    content_type: Some("text/plain; version=0.0.4; charset=utf-8"),
                    extra_headers: b"",
                    body: text.as_bytes(),
                };
                response::write(&mut conn.out, &date, &metrics, head_only, close);
            }
            (b"/health" | b"/metrics", _) => {
                self.reject(conn, HttpError::MethodNotAllowed { allow: ALLOW_READ_ONLY }, false, close)
            }
            _ => self.reject(conn, HttpError::NotFound, head_only, close),
        }
    }

    fn start_request(&mut self, conn: &Connection, head: &RequestHead<'_>) {
        let meta = RequestMeta { ip: &conn.ip, user_agent: head.user_agent, method: head.method, path: head.path };
        self.records.start_request(&meta, &self.clock);
    }

    /// GET/HEAD `/e`: the query string is one event.
    fn ingest_query(&mut self, conn: &mut Connection, head: &RequestHead<'_>) -> Result<(), HttpError> {
        self.accepting.map_err(HttpError::Unavailable)?;
        self.start_request(conn, head);
        let start = self.batch.len();
        self.records.begin_record(&mut self.batch);
        if append_query_object(&mut self.batch, head.query, &mut self.query).is_err() {
            self.batch.truncate(start);
            return Err(HttpError::BadRequest("invalid UTF-8 after decoding"));
        }
        self.records.finish_record(&mut self.batch, &mut self.ids);
        self.batch_events += 1;
        conn.mark_ingest();
        Ok(())
    }

    /// POST `/e`: every event of the body, or none of them.
    fn ingest_body(&mut self, conn: &mut Connection, head: &RequestHead<'_>, body: &[u8]) -> Result<u64, HttpError> {
        self.accepting.map_err(HttpError::Unavailable)?;
        let kind = body::body_kind(head.content_type)?;
        self.start_request(conn, head);
        let max = self.config.max_decompressed_bytes;
        let body = body::decode_content(head.content_encoding, body, max, &mut self.body.decompressed)?;
        let events = body::append_body_events(
            kind,
            body,
            &mut self.batch,
            &self.records,
            &mut self.ids,
            &mut self.body.minified,
            &mut self.query,
        )?;
        if events > 0 {
            self.batch_events += events;
            conn.mark_ingest();
        }
        Ok(events)
    }

    /// Answers with the canned response for `e`; `close` ends the connection after it.
    pub fn reject(&mut self, conn: &mut Connection, e: HttpError, head_only: bool, close: bool) {
        match e {
            HttpError::Unavailable(_) => add(&self.metrics().requests_unavailable, 1),
            _ => add(&self.metrics().requests_rejected, 1),
        }
        response::write_error(&mut conn.out, self.clock.http_date(), e, head_only, close);
        if close {
            conn.close_after_flush = true;
        }
    }
}
