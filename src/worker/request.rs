//! What a worker does with the bytes of one connection: frame each complete request, route it, append its
//! events to the worker's batch and its response to the connection's output.
//!
//! Responses are encoded at once but only leave after the worker's group commit (`worker/mod.rs`) moved the
//! connection's committed boundary past them; `Connection::mark_ingest` notes where the answers that wait for
//! the spool write start, so a failed write can take them back.

mod answer;
mod datagram;
mod ingest;

pub use datagram::Dropped;

use std::sync::Arc;
use std::time::Instant;

use crate::config::{EdgeConfig, HttpConfig};
use crate::event::body::BodyScratch;
use crate::event::clock::Clock;
use crate::event::ids::{RequestIds, random_u64};
use crate::event::query::QueryScratch;
use crate::event::record::{RecordBuilder, Transport};
use crate::event::visitor::Visitors;
use crate::http::chunked::decode_chunked;
use crate::http::cors::{Cors, Grant};
use crate::http::framing::{self, Framed, FramingError, Progress};
use crate::http::response::{self, Body, ConnectionHeader, Delivery, Response};
use crate::http::route::{self, Endpoint, Route};
use crate::http::{Framing, HttpError, Method, RequestHead, write_key};
use crate::metrics::Tally;
use crate::protocol;
use crate::spool::batch::Batch;
use crate::state::{Phase, Shared};
use crate::worker::connection::{Connection, Peer};
use crate::worker::edge::Edge;
use answer::{CachedAnswer, plain_text};

/// How one answer goes out, decided before it is encoded; borrows nothing, so handling can go on meanwhile.
#[derive(Debug, Clone, Copy)]
struct Answer {
    /// `None`: refused before a route was known.
    route: Option<Route>,
    body: Body,
    connection: ConnectionHeader,
    /// The CORS grant of the request's origin.
    grant: Option<Grant>,
}

impl Answer {
    fn delivery(self, cors: &Cors) -> Delivery<'_> {
        Delivery { body: self.body, connection: self.connection, cors: cors.headers(self.grant) }
    }
}

/// The body of a framed request, as its handler gets it.
#[derive(Debug, Clone, Copy)]
enum Payload<'a> {
    /// The whole body (chunked framing undone).
    Whole(&'a [u8]),
    /// Over the body limit on a route that keeps such a payload as a bad row: its declared length (none when
    /// chunked) and its first bytes.
    Oversized { declared: Option<u64>, first: &'a [u8] },
}

/// A worker's request handling: its clock, request ids, record builder and scratch buffers.
pub struct Requests {
    config: HttpConfig,
    edge: Edge,
    shared: Arc<Shared>,
    worker: usize,
    clock: Clock,
    ids: RequestIds,
    records: RecordBuilder,
    body: BodyScratch,
    query: QueryScratch,
    protocols: protocol::Scratch,
    /// Snowplow's network user ids (the `sp` cookie).
    visitors: Visitors,
    /// The first-party visitor ids of the other ingest routes (`VISITOR_COOKIE`): the same mechanism, its own
    /// cookie.
    first_party: Visitors,
    /// `HONOR_GPC=on`.
    honor_gpc: bool,
    /// The last datagram sender, its `ip` rendered once for as long as datagrams keep coming from it.
    datagram_peer: Option<Peer>,
    /// Requests answered since the worker last counted them (once per iteration, not per request).
    answered: u64,
    tally: Tally,
    /// Whether ingest may accept in this iteration; `Err` carries the 503.
    accepting: Result<(), HttpError>,
    /// The keep-alive answer to an accepted GET, rendered once per second (it carries the Date).
    event_ok: CachedAnswer,
    /// The header lines of an answer being built (a preflight's).
    extra: Vec<u8>,
    /// Debug builds with PLUTOS_DEBUG_FAULTS set: `/debug/panic` panics the worker (tests of the panic policy).
    #[cfg(debug_assertions)]
    debug_faults: bool,
}

impl Requests {
    pub fn new(
        config: HttpConfig,
        edge: &EdgeConfig,
        shared: Arc<Shared>,
        worker: usize,
        boot_random: u32,
    ) -> Requests {
        let seed = random_u64() ^ worker as u64;
        let visitors = Visitors::new(edge.snowplow_cookie.clone(), seed);
        let first_party = Visitors::new(edge.visitor_cookie.clone(), seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15);
        let honor_gpc = edge.honor_gpc;
        let edge = Edge::new(edge, shared.enrichment.clone());
        let mut query = QueryScratch::default();
        let mut protocols = protocol::Scratch::default();
        if edge.hides_write_key() {
            query.hide_key(write_key::PARAM);
            protocols.query.hide_key(write_key::PARAM);
        }
        Requests {
            config,
            edge,
            shared,
            worker,
            clock: Clock::new(),
            ids: RequestIds::new(worker, boot_random),
            records: RecordBuilder::default(),
            body: BodyScratch::default(),
            query,
            protocols,
            visitors,
            first_party,
            honor_gpc,
            datagram_peer: None,
            answered: 0,
            tally: Tally::default(),
            accepting: Ok(()),
            event_ok: CachedAnswer::default(),
            extra: Vec::new(),
            #[cfg(debug_assertions)]
            debug_faults: std::env::var_os("PLUTOS_DEBUG_FAULTS").is_some(),
        }
    }

    /// Once per event-loop iteration, before any request: the time, and whether ingest may accept (`Err`: the
    /// reason of its 503).
    pub fn begin_iteration(&mut self, now: Instant, accepting: Result<(), HttpError>) {
        self.clock.refresh();
        self.edge.enricher.refresh(now);
        self.accepting = accepting;
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A new connection's peer as its records name it.
    pub fn peer(&self, addr: std::net::IpAddr, transport: Transport) -> Peer {
        self.edge.peer(addr, transport)
    }

    /// Publishes the answers counted since the last call; returns how many requests were answered.
    pub fn publish_counts(&mut self) -> u64 {
        let metrics = &self.shared.workers[self.worker];
        self.tally.publish(metrics);
        metrics.add_enrichment(self.edge.enricher.take_counts());
        std::mem::take(&mut self.answered)
    }

    /// Handles every complete request at the start of `data` (a connection's input): answers go to `conn.out`,
    /// accepted events to `batch`. Returns how many bytes the requests took; what is left is the start of an
    /// incomplete request, whose progress `conn.progress` keeps for the next call.
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
        let answer = Answer { route, body: Body::Send, connection: ConnectionHeader::Close, grant: None };
        self.reject(conn, error, answer);
    }

    /// Handles the request at the start of `buf`, if it is complete. Returns the bytes it took.
    fn handle_one(&mut self, conn: &mut Connection, buf: &[u8], batch: &mut Batch) -> Option<usize> {
        let mut head = RequestHead::default();
        let (end, oversized) = match conn.progress.advance(buf, self.config.max_body_bytes, &mut head) {
            Ok(Framed::Complete { end }) => (end, false),
            Ok(Framed::Oversized { end }) => (end, true),
            Ok(Framed::Partial) => return None,
            Ok(Framed::HeadOnly) => {
                if conn.life.over_limit() {
                    self.refuse(conn, None, HttpError::TooManyConnections);
                    return Some(buf.len());
                }
                if head.expect_continue {
                    if let Some((e, answer)) = self.refuse_early(&head) {
                        self.reject(conn, e, answer);
                        return Some(buf.len());
                    }
                    response::write_continue(conn.output.buf());
                }
                return None;
            }
            Err(FramingError { error, body }) => {
                // The request cannot be framed (or its body will not be read): answer and end the connection.
                let answer = Answer { route: None, body, connection: ConnectionHeader::Close, grant: None };
                self.reject(conn, error, answer);
                return Some(buf.len());
            }
        };
        if conn.life.over_limit() {
            self.refuse(conn, None, HttpError::TooManyConnections);
            return Some(buf.len());
        }
        let mut dechunked = std::mem::take(&mut self.body.dechunked);
        let payload = match head.framing {
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
        let connection = if oversized || !head.keep_alive || self.shared.phase() == Phase::Closing {
            conn.life.end_after_answer();
            ConnectionHeader::Close
        } else if head.http10 {
            ConnectionHeader::KeepAlive
        } else {
            ConnectionHeader::Omit
        };
        self.respond(conn, &head, payload, connection, batch);
        self.body.dechunked = dechunked;
        Some(if oversized { buf.len() } else { end })
    }

    /// For `Expect: 100-continue`: the answer the request will get whatever its body, if it is an error.
    fn refuse_early(&mut self, head: &RequestHead<'_>) -> Option<(HttpError, Answer)> {
        let mut answer = Answer { route: None, body: Body::Send, connection: ConnectionHeader::Close, grant: None };
        let route = match route::route(head.path, head.method) {
            Ok(route) => route,
            Err(e) => return Some((e, answer)),
        };
        answer.route = Some(route);
        if !route.endpoint().ingests() || head.method != Method::Post {
            return None;
        }
        let (grant, admitted) = self.edge.admit(head, route.endpoint().is_sdk());
        answer.grant = grant;
        match admitted.and(self.accepting) {
            Ok(()) => None,
            Err(e) => Some((e, answer)),
        }
    }

    fn respond(
        &mut self,
        conn: &mut Connection,
        head: &RequestHead<'_>,
        payload: Payload<'_>,
        connection: ConnectionHeader,
        batch: &mut Batch,
    ) {
        self.answered += 1;
        let mut answer = Answer { route: None, body: Body::for_method(head.method), connection, grant: None };
        let in_flight_at_drain_end = conn.life.serves_request_after_drain();
        if self.shared.phase() == Phase::Closing && !in_flight_at_drain_end {
            answer.connection = ConnectionHeader::Close;
            return self.reject(conn, HttpError::ShuttingDown, answer);
        }
        #[cfg(debug_assertions)]
        if self.debug_faults && head.path == b"/debug/panic" {
            panic!("fault injected by /debug/panic");
        }
        let route = match route::route(head.path, head.method) {
            Ok(route) => route,
            Err(e) => return self.reject(conn, e, answer),
        };
        answer.route = Some(route);
        if head.method == Method::Options {
            return self.preflight(conn, head, route, answer);
        }
        match route.endpoint() {
            Endpoint::Events => {
                let (grant, admitted) = self.edge.admit(head, false);
                answer.grant = grant;
                let ingested = admitted.and_then(|_| match (head.method, payload) {
                    (Method::Post, Payload::Whole(body)) => self.ingest_body(conn, route, head, body, batch).map(Some),
                    // Framing hands an oversized body only to the routes that keep one.
                    (_, Payload::Oversized { .. }) => Err(HttpError::PayloadTooLarge("request body too large")),
                    _ => self.ingest_query(conn, route, head, batch).map(|()| None),
                });
                match ingested {
                    Ok(Some(events)) => self.accept_batch(conn, events, answer),
                    Ok(None) => self.accept_event(conn, answer),
                    Err(e) => self.reject(conn, e, answer),
                }
            }
            endpoint
            @ (Endpoint::Segment(_) | Endpoint::PostHog | Endpoint::SnowplowPost | Endpoint::SnowplowPixel) => {
                let (grant, admitted) = self.edge.admit(head, true);
                answer.grant = grant;
                match admitted.and_then(|admission| self.ingest_sdk(conn, route, head, payload, admission, batch)) {
                    Ok(()) => self.accept_sdk(conn, endpoint, answer),
                    Err(e) => self.reject(conn, e, answer),
                }
            }
            Endpoint::Health => {
                let (status, text): ((u16, &str), &[u8]) = match self.shared.phase() {
                    Phase::Running => ((200, "OK"), b"ok\n"),
                    _ => ((503, "Service Unavailable"), b"draining\n"),
                };
                self.send(conn, &plain_text(status, text), answer);
            }
            Endpoint::Ready => {
                let (status, text) = match self.shared.not_ready(self.config.ready_sink_window) {
                    None => match self.shared.ready_notes() {
                        None => ((200, "OK"), "ready\n".to_string()),
                        Some(notes) => ((200, "OK"), format!("ready; {notes}\n")),
                    },
                    Some(reason) => ((503, "Service Unavailable"), format!("{reason}\n")),
                };
                self.send(conn, &plain_text(status, text.as_bytes()), answer);
            }
            Endpoint::Metrics => {
                let text = self.shared.metrics_text();
                let metrics = Response {
                    status: (200, "OK"),
                    content_type: Some("text/plain; version=0.0.4; charset=utf-8"),
                    extra_headers: b"",
                    body: text.as_bytes(),
                };
                self.send(conn, &metrics, answer);
            }
        }
    }
}
