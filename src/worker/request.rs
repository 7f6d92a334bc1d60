//! What a worker does with the bytes of one connection: frame each complete request, route it, append its
//! events to the worker's batch and its response to the connection's output.
//!
//! Responses are encoded at once but only leave after the worker's group commit (`worker.rs`) moved the
//! connection's committed boundary past them; `Connection::mark_ingest` notes where the answers that wait for
//! the spool write start, so a failed write can take them back.

use std::sync::Arc;

use crate::config::Config;
use crate::event::body::{self, BodyScratch};
use crate::event::clock::Clock;
use crate::event::ids::RequestIds;
use crate::event::query::{QueryScratch, append_query_object};
use crate::event::record::{RecordBuilder, RequestMeta};
use crate::http::chunked::decode_chunked;
use crate::http::framing::{self, Framed, FramingError, Progress};
use crate::http::response::{self, ALLOW_INGEST, ALLOW_READ_ONLY, ConnectionHeader, Response};
use crate::http::{Framing, HttpError, Method, RequestHead};
use crate::metrics::{WorkerMetrics, add};
use crate::state::{Phase, Shared};
use crate::worker::connection::Connection;

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
    /// Debug builds with PLUTOS_DEBUG_FAULTS set: `/debug/panic` panics the worker (tests of the panic policy).
    #[cfg(debug_assertions)]
    debug_faults: bool,
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
            #[cfg(debug_assertions)]
            debug_faults: std::env::var_os("PLUTOS_DEBUG_FAULTS").is_some(),
        }
    }

    fn metrics(&self) -> &WorkerMetrics {
        &self.shared.workers[self.worker]
    }

    /// Handles every complete request at the start of `data`; returns how many bytes they took. What is left
    /// is the start of an incomplete request, whose progress `conn.progress` keeps for the next call.
    pub fn process(&mut self, conn: &mut Connection, data: &[u8]) -> usize {
        let mut pos = 0;
        while pos < data.len() && !conn.close_after_flush {
            match self.handle_one(conn, &data[pos..]) {
                Some(n) => {
                    pos += n;
                    conn.progress = Progress::default();
                }
                None => break,
            }
        }
        pos
    }

    /// Handles the request at the start of `buf`, if it is complete. Returns the bytes it took.
    fn handle_one(&mut self, conn: &mut Connection, buf: &[u8]) -> Option<usize> {
        let (head, end) = match conn.progress.advance(buf, self.config.max_body_bytes) {
            Ok(Framed::Complete { head, end }) => (head, end),
            Ok(Framed::Partial) => return None,
            Ok(Framed::HeadOnly(head)) => {
                if head.expect_continue {
                    if let Some(e) = self.refuse_early(&head) {
                        self.reject(conn, e, false, ConnectionHeader::Close);
                        return Some(buf.len());
                    }
                    response::write_continue(&mut conn.out);
                }
                return None;
            }
            Err(FramingError { error, head_only }) => {
                // The request cannot be framed (or its body will not be read): answer and end the connection.
                self.reject(conn, error, head_only, ConnectionHeader::Close);
                return Some(buf.len());
            }
        };
        let mut dechunked = std::mem::take(&mut self.body.dechunked);
        let body = match head.framing {
            Framing::Chunked => {
                dechunked.clear();
                let limits = framing::chunked_limits(&head, self.config.max_body_bytes);
                let decoded = decode_chunked(&buf[head.len..end], limits, &mut dechunked);
                debug_assert!(decoded.is_ok(), "a body the scanner found complete decodes");
                &dechunked[..]
            }
            _ => &buf[head.len..end],
        };
        // Once the drain is over, the connection ends after this request.
        let connection = if !head.keep_alive || self.shared.phase() == Phase::Closing {
            conn.close_after_flush = true;
            ConnectionHeader::Close
        } else if head.http10 {
            ConnectionHeader::KeepAlive
        } else {
            ConnectionHeader::Omit
        };
        self.respond(conn, &head, body, connection);
        self.body.dechunked = dechunked;
        Some(end)
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

    fn respond(&mut self, conn: &mut Connection, head: &RequestHead<'_>, body: &[u8], connection: ConnectionHeader) {
        self.requests_seen += 1;
        let head_only = head.method == Method::Head;
        if self.shared.phase() == Phase::Closing && !conn.inflight_at_close {
            return self.reject(conn, HttpError::Unavailable("shutting down"), head_only, ConnectionHeader::Close);
        }
        conn.inflight_at_close = false;
        let date = *self.clock.http_date();
        match (head.path, head.method) {
            (b"/e", Method::Get | Method::Head) => {
                if let Err(e) = self.ingest_query(conn, head) {
                    return self.reject(conn, e, head_only, connection);
                }
                let kind = self.config.response;
                if head_only || connection != ConnectionHeader::Omit {
                    response::write_event_accepted(&mut conn.out, &date, kind, head_only, connection);
                } else {
                    if self.event_ok_second != self.clock.unix_seconds() {
                        self.event_ok_second = self.clock.unix_seconds();
                        self.event_ok.clear();
                        response::write_event_accepted(&mut self.event_ok, &date, kind, false, ConnectionHeader::Omit);
                    }
                    conn.out.extend_from_slice(&self.event_ok);
                }
            }
            (b"/e", Method::Post) => match self.ingest_body(conn, head, body) {
                Ok(events) => response::write_batch_accepted(&mut conn.out, &date, events, connection),
                Err(e) => self.reject(conn, e, false, connection),
            },
            (b"/e", Method::Options) => {
                let preflight = Response {
                    status: (204, "No Content"),
                    content_type: None,
                    extra_headers: b"Allow: GET, HEAD, POST, OPTIONS\r\n",
                    body: b"",
                };
                response::write(&mut conn.out, &date, &preflight, false, connection);
            }
            (b"/e", _) => self.reject(conn, HttpError::MethodNotAllowed { allow: ALLOW_INGEST }, false, connection),
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
                response::write(&mut conn.out, &date, &health, head_only, connection);
            }
            (b"/metrics", Method::Get | Method::Head) => {
                let text = self.shared.metrics_text();
                let metrics = Response {
                    status: (200, "OK"),
                    content_type: Some("text/plain; version=0.0.4; charset=utf-8"),
                    extra_headers: b"",
                    body: text.as_bytes(),
                };
                response::write(&mut conn.out, &date, &metrics, head_only, connection);
            }
            (b"/health" | b"/metrics", _) => {
                self.reject(conn, HttpError::MethodNotAllowed { allow: ALLOW_READ_ONLY }, false, connection)
            }
            #[cfg(debug_assertions)]
            (b"/debug/panic", _) if self.debug_faults => panic!("fault injected by /debug/panic"),
            _ => self.reject(conn, HttpError::NotFound, head_only, connection),
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
        if let Err(e) = append_query_object(&mut self.batch, head.query, &mut self.query) {
            self.batch.truncate(start);
            return Err(e.into());
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

    /// Answers with the canned response for `e`; `ConnectionHeader::Close` ends the connection after it.
    pub fn reject(&mut self, conn: &mut Connection, e: HttpError, head_only: bool, connection: ConnectionHeader) {
        match e {
            HttpError::Unavailable(_) => add(&self.metrics().requests_unavailable, 1),
            _ => add(&self.metrics().requests_rejected, 1),
        }
        response::write_error(&mut conn.out, self.clock.http_date(), e, head_only, connection);
        if connection == ConnectionHeader::Close {
            conn.close_after_flush = true;
        }
    }
}
