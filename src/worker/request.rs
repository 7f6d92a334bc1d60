//! What a worker does with the bytes of one connection: frame each complete request, route it, append its
//! events to the worker's batch and its response to the connection's output.
//!
//! Responses are encoded at once but only leave after the worker's group commit (`worker/mod.rs`) moved the
//! connection's committed boundary past them; `Connection::mark_ingest` notes where the answers that wait for
//! the spool write start, so a failed write can take them back.

use std::sync::Arc;

use crate::config::HttpConfig;
use crate::event::body::{self, BodyScratch};
use crate::event::clock::Clock;
use crate::event::ids::RequestIds;
use crate::event::query::{QueryScratch, append_query_object};
use crate::event::record::{RecordBuilder, RequestMeta};
use crate::http::chunked::decode_chunked;
use crate::http::framing::{self, Framed, FramingError, Progress};
use crate::http::response::{self, Body, ConnectionHeader, Response};
use crate::http::route::{self, Route};
use crate::http::{Framing, HttpError, Method, RequestHead};
use crate::metrics::{WorkerMetrics, add};
use crate::spool::batch::Batch;
use crate::state::{Phase, Shared};
use crate::worker::connection::Connection;

/// A worker's request handling: its clock, request ids, record builder and scratch buffers.
pub struct Requests {
    config: HttpConfig,
    shared: Arc<Shared>,
    worker: usize,
    clock: Clock,
    ids: RequestIds,
    records: RecordBuilder,
    body: BodyScratch,
    query: QueryScratch,
    /// Requests answered since the worker last counted them (once per iteration, not per request).
    answered: u64,
    /// Whether ingest may accept in this iteration; `Err` carries the 503 reason.
    accepting: Result<(), &'static str>,
    /// The keep-alive answer to an accepted GET, rendered once per second (it carries the Date).
    event_ok: Vec<u8>,
    event_ok_second: i64,
    /// Debug builds with PLUTOS_DEBUG_FAULTS set: `/debug/panic` panics the worker (tests of the panic policy).
    #[cfg(debug_assertions)]
    debug_faults: bool,
}

impl Requests {
    pub fn new(config: HttpConfig, shared: Arc<Shared>, worker: usize, boot_random: u32) -> Requests {
        Requests {
            config,
            shared,
            worker,
            clock: Clock::new(),
            ids: RequestIds::new(worker, boot_random),
            records: RecordBuilder::default(),
            body: BodyScratch::default(),
            query: QueryScratch::default(),
            answered: 0,
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

    /// Once per event-loop iteration, before any request: the time, and whether ingest may accept (`Err`: the
    /// reason of its 503).
    pub fn begin_iteration(&mut self, accepting: Result<(), &'static str>) {
        self.clock.refresh();
        self.accepting = accepting;
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Requests answered since the last call.
    pub fn take_answered(&mut self) -> u64 {
        std::mem::take(&mut self.answered)
    }

    /// Handles every complete request at the start of `data` (a connection's input): answers go to `conn.out`,
    /// accepted events to `batch`. Returns how many bytes the requests took; what is left is the start of an
    /// incomplete request, whose progress `conn.progress` keeps for the next call.
    pub fn process(&mut self, conn: &mut Connection, data: &[u8], batch: &mut Batch) -> usize {
        let mut pos = 0;
        while pos < data.len() && !conn.close_after_flush {
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
    pub fn refuse(&mut self, conn: &mut Connection, error: HttpError) {
        self.reject(conn, error, Body::Send, ConnectionHeader::Close);
    }

    /// Handles the request at the start of `buf`, if it is complete. Returns the bytes it took.
    fn handle_one(&mut self, conn: &mut Connection, buf: &[u8], batch: &mut Batch) -> Option<usize> {
        let (head, end) = match conn.progress.advance(buf, self.config.max_body_bytes) {
            Ok(Framed::Complete { head, end }) => (head, end),
            Ok(Framed::Partial) => return None,
            Ok(Framed::HeadOnly(head)) => {
                if head.expect_continue {
                    if let Some(e) = self.refuse_early(&head) {
                        self.refuse(conn, e);
                        return Some(buf.len());
                    }
                    response::write_continue(&mut conn.out);
                }
                return None;
            }
            Err(FramingError { error, body }) => {
                // The request cannot be framed (or its body will not be read): answer and end the connection.
                self.reject(conn, error, body, ConnectionHeader::Close);
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
        self.respond(conn, &head, body, connection, batch);
        self.body.dechunked = dechunked;
        Some(end)
    }

    /// For `Expect: 100-continue`: the answer the request will get whatever its body, if it is an error.
    fn refuse_early(&self, head: &RequestHead<'_>) -> Option<HttpError> {
        match route::route(head.path, head.method) {
            Ok(Route::Ingest) if head.method == Method::Post => self.accepting.err().map(HttpError::Unavailable),
            Ok(_) => None,
            Err(e) => Some(e),
        }
    }

    fn respond(
        &mut self,
        conn: &mut Connection,
        head: &RequestHead<'_>,
        body: &[u8],
        connection: ConnectionHeader,
        batch: &mut Batch,
    ) {
        self.answered += 1;
        let reply = Body::for_method(head.method);
        if self.shared.phase() == Phase::Closing && !conn.inflight_at_close {
            return self.reject(conn, HttpError::Unavailable("shutting down"), reply, ConnectionHeader::Close);
        }
        conn.inflight_at_close = false;
        #[cfg(debug_assertions)]
        if self.debug_faults && head.path == b"/debug/panic" {
            panic!("fault injected by /debug/panic");
        }
        let route = match route::route(head.path, head.method) {
            Ok(route) => route,
            Err(e) => return self.reject(conn, e, reply, connection),
        };
        let date = *self.clock.http_date();
        match (route, head.method) {
            (Route::Ingest, Method::Post) => match self.ingest_body(conn, head, body, batch) {
                Ok(events) => response::write_batch_accepted(&mut conn.out, &date, events, connection),
                Err(e) => self.reject(conn, e, reply, connection),
            },
            (Route::Ingest, Method::Options) => {
                let allow = ["Allow: ".as_bytes(), route::allow(Route::Ingest).as_bytes(), b"\r\n"].concat();
                let preflight =
                    Response { status: (204, "No Content"), content_type: None, extra_headers: &allow, body: b"" };
                response::write(&mut conn.out, &date, &preflight, Body::Send, connection);
            }
            (Route::Ingest, _) => match self.ingest_query(conn, head, batch) {
                Ok(()) => self.accept_event(conn, reply, connection),
                Err(e) => self.reject(conn, e, reply, connection),
            },
            (Route::Health, _) => {
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
                response::write(&mut conn.out, &date, &health, reply, connection);
            }
            (Route::Metrics, _) => {
                let text = self.shared.metrics_text();
                let metrics = Response {
                    status: (200, "OK"),
                    content_type: Some("text/plain; version=0.0.4; charset=utf-8"),
                    extra_headers: b"",
                    body: text.as_bytes(),
                };
                response::write(&mut conn.out, &date, &metrics, reply, connection);
            }
        }
    }

    /// The answer to an accepted GET/HEAD: the common keep-alive one is copied from a per-second cache.
    fn accept_event(&mut self, conn: &mut Connection, reply: Body, connection: ConnectionHeader) {
        let kind = self.config.response;
        let date = self.clock.http_date();
        if reply == Body::Omit || connection != ConnectionHeader::Omit {
            return response::write_event_accepted(&mut conn.out, date, kind, reply, connection);
        }
        if self.event_ok_second != self.clock.unix_seconds() {
            self.event_ok_second = self.clock.unix_seconds();
            self.event_ok.clear();
            response::write_event_accepted(&mut self.event_ok, date, kind, Body::Send, ConnectionHeader::Omit);
        }
        conn.out.extend_from_slice(&self.event_ok);
    }

    fn start_request(&mut self, conn: &Connection, head: &RequestHead<'_>) {
        let meta = RequestMeta { ip: &conn.ip, user_agent: head.user_agent, method: head.method, path: head.path };
        self.records.start_request(&meta, &self.clock);
    }

    /// GET/HEAD `/e`: the query string is one event.
    fn ingest_query(
        &mut self,
        conn: &mut Connection,
        head: &RequestHead<'_>,
        batch: &mut Batch,
    ) -> Result<(), HttpError> {
        self.accepting.map_err(HttpError::Unavailable)?;
        self.start_request(conn, head);
        let mark = batch.mark();
        self.records.begin_record(batch.lines_mut());
        if let Err(e) = append_query_object(batch.lines_mut(), head.query, &mut self.query) {
            batch.rollback(mark);
            return Err(e.into());
        }
        self.records.finish_record(batch.lines_mut(), &mut self.ids);
        batch.add_events(1);
        conn.mark_ingest();
        Ok(())
    }

    /// POST `/e`: every event of the body, or none of them.
    fn ingest_body(
        &mut self,
        conn: &mut Connection,
        head: &RequestHead<'_>,
        body: &[u8],
        batch: &mut Batch,
    ) -> Result<u64, HttpError> {
        self.accepting.map_err(HttpError::Unavailable)?;
        let kind = body::body_kind(head.content_type)?;
        self.start_request(conn, head);
        let max = self.config.max_decompressed_bytes;
        let body = body::decode_content(head.content_encoding, body, max, &mut self.body.decompressed)?;
        let events = body::append_body_events(
            kind,
            body,
            batch.lines_mut(),
            &self.records,
            &mut self.ids,
            &mut self.body.minified,
            &mut self.query,
        )?;
        if events > 0 {
            batch.add_events(events);
            conn.mark_ingest();
        }
        Ok(events)
    }

    /// Answers with the canned response for `e`; `ConnectionHeader::Close` ends the connection after it.
    fn reject(&mut self, conn: &mut Connection, e: HttpError, reply: Body, connection: ConnectionHeader) {
        match e {
            HttpError::Unavailable(_) => add(&self.metrics().requests_unavailable, 1),
            _ => add(&self.metrics().requests_rejected, 1),
        }
        response::write_error(&mut conn.out, self.clock.http_date(), e, reply, connection);
        if connection == ConnectionHeader::Close {
            conn.close_after_flush = true;
        }
    }
}
