//! What a worker does with requests, whichever framing carries them:
//! - `exchange`: the request exchange — a request (its head, its body, the facts of its connection) in, an
//!   `Answer` out, its events in the worker's batch — which every front end feeds;
//! - `ingest`: the ingest path of every protocol, one skeleton (a request is stored whole or not at all);
//! - `http1` and `answer`: HTTP/1.1, the requests in a connection's bytes and their answers encoded into its
//!   output; `datagram`: a UDP datagram, a request without an answer.
//!
//! An answer that acknowledges events leaves only after the worker's group commit (`worker/core.rs`) made them
//! durable: HTTP/1.1 encodes it at once, behind the connection's committed boundary, which only the group
//! commit moves; the answers that wait for the spool write are marked, so a failed write can take them back.

mod answer;
mod datagram;
mod exchange;
mod http1;
mod http2;
mod http3;
mod ingest;
mod translate;

pub use datagram::Dropped;
pub use exchange::{Answer, AnswerKind, Payload, Request};
pub use http3::{Http3, MAX_FIELD_SECTION};

use std::sync::Arc;
use std::time::Instant;

use h2::server::Builder;

use crate::config::{EdgeConfig, HttpConfig};
use crate::event::body::BodyScratch;
use crate::event::clock::Clock;
use crate::event::ids::{RequestIds, random_u64};
use crate::event::record::{RecordBuilder, Transport};
use crate::event::visitor::Visitors;
use crate::http::{HttpError, write_key};
use crate::metrics::{H2Counts, Tally};
use crate::protocol;
use crate::schema::Checker;
use crate::spool::batch::Batch;
use crate::state::Shared;
use crate::worker::connection::{Connection, Peer};
use crate::worker::edge::Edge;
use crate::worker::h2::{self as session, Complete, PREFACE, Session};
use answer::CachedAnswer;

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
    protocols: protocol::Scratch,
    /// Snowplow's network user ids (the `sp` cookie).
    visitors: Visitors,
    /// The first-party visitor ids of the other ingest routes (`VISITOR_COOKIE`): the same mechanism, its own
    /// cookie.
    first_party: Visitors,
    /// `HONOR_GPC=on`.
    honor_gpc: bool,
    /// Reads self-describing events' schemas, and validates them (`SCHEMAS_DIR` with `VALIDATION` on).
    checker: Checker,
    /// The last datagram sender, its `ip` rendered once for as long as datagrams keep coming from it.
    datagram_peer: Option<Peer>,
    /// Requests answered since the worker last counted them (once per iteration, not per request).
    answered: u64,
    tally: Tally,
    /// Bad rows written since the last `publish_counts`, by `BadRowKind`.
    bad_rows: [u64; 2],
    /// Whether ingest may accept in this iteration; `Err` carries the 503.
    accepting: Result<(), HttpError>,
    /// The keep-alive answer to an accepted GET, rendered once per second (it carries the Date).
    event_ok: CachedAnswer,
    /// The header lines of an answer being built (a preflight's, a cookie with CORS lines).
    extra: Vec<u8>,
    /// The body of a text answer (`/health`, `/ready`, `/metrics`).
    text: Vec<u8>,
    /// The header lines an answer adds (CORS, a cookie, `Alt-Svc`) when they are not one borrowed line.
    lines: Vec<u8>,
    /// With `QUIC_PORT`: the `Alt-Svc` line of HTTPS answers, advertising HTTP/3.
    alt_svc: Option<Box<[u8]>>,
    /// The HTTP/2 connection being served is over TLS (its answers carry `Alt-Svc`).
    h2_https: bool,
    /// `HTTP2=on`: the settings every HTTP/2 session of this worker starts with, and its limits.
    http2: Option<(Builder, session::Limits)>,
    /// The instant this iteration began (streams are timed from it).
    now: Instant,
    /// HTTP/2 scratch: the requests a poll of a session found, a head rendered as HTTP/1.1, an answer encoded.
    h2_complete: Vec<Complete>,
    h2_head: Vec<u8>,
    h2_answer: Vec<u8>,
    h2_counts: H2Counts,
    /// HTTP/3 scratch: a request's fields, its body when it came in several DATA frames, an answer's field
    /// section and its names in lowercase.
    h3_fields: crate::h3::qpack::Fields,
    h3_body: Vec<u8>,
    h3_block: Vec<u8>,
    h3_names: Vec<u8>,
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
        let checker = Checker::new(shared.schemas.as_ref().map(|s| (s.published(), s.mode())), worker);
        let mut protocols = protocol::Scratch::default();
        if edge.hides_write_key() {
            protocols.query.hide_key(write_key::PARAM);
        }
        let http2 = config.http2_max_streams.map(|max_streams| {
            let limits = session::Limits { max_streams, max_body: config.max_body_bytes };
            (limits.builder(), limits)
        });
        Requests {
            http2,
            now: Instant::now(),
            h2_complete: Vec::new(),
            h2_head: Vec::new(),
            h2_answer: Vec::new(),
            h2_counts: H2Counts::default(),
            h3_fields: Default::default(),
            h3_body: Vec::new(),
            h3_block: Vec::new(),
            h3_names: Vec::new(),
            config,
            edge,
            shared,
            worker,
            clock: Clock::new(),
            ids: RequestIds::new(worker, boot_random),
            records: RecordBuilder::default(),
            body: BodyScratch::default(),
            protocols,
            visitors,
            first_party,
            honor_gpc,
            checker,
            datagram_peer: None,
            answered: 0,
            tally: Tally::default(),
            bad_rows: [0; 2],
            accepting: Ok(()),
            event_ok: CachedAnswer::default(),
            extra: Vec::new(),
            text: Vec::new(),
            lines: Vec::new(),
            alt_svc: config.alt_svc.map(|port| format!("Alt-Svc: h3=\":{port}\"; ma=86400\r\n").into_bytes().into()),
            h2_https: false,
            #[cfg(debug_assertions)]
            debug_faults: std::env::var_os("PLUTOS_DEBUG_FAULTS").is_some(),
        }
    }

    /// Once per event-loop iteration, before any request: the time, and whether ingest may accept (`Err`: the
    /// reason of its 503).
    pub fn begin_iteration(&mut self, now: Instant, accepting: Result<(), HttpError>) {
        self.now = now;
        self.clock.refresh();
        self.edge.enricher.refresh(now);
        if let Some(schemas) = &self.shared.schemas {
            self.checker.refresh(schemas.published());
            self.checker.set_time(&self.clock);
        }
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
        self.h2_counts.publish(metrics);
        metrics.add_enrichment(self.edge.enricher.take_counts());
        metrics.validations_unknown.fetch_add(self.checker.take_unknown(), std::sync::atomic::Ordering::Relaxed);
        for (counter, n) in metrics.bad_rows.iter().zip(std::mem::take(&mut self.bad_rows)) {
            if n > 0 {
                counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        }
        std::mem::take(&mut self.answered)
    }

    /// A connection's input (after TLS), given to its front end: HTTP/2 once the connection chose it (ALPN `h2`,
    /// or the h2c preface as its first bytes, with `HTTP2=on`), else HTTP/1.1. Returns the bytes taken.
    pub fn take(&mut self, conn: &mut Connection, data: &[u8], batch: &mut Batch) -> usize {
        if conn.h2.is_none() && conn.front_undecided() {
            match self.http2.as_ref() {
                None => conn.front_decided(),
                // Nothing is decided before the TLS handshake ended (no plaintext arrives before).
                Some(_) if conn.handshaking() => return 0,
                Some(_) if conn.negotiated_h2() => self.start_h2(conn, Transport::H2),
                Some(_) if conn.peer.transport == Transport::Http => {
                    if data.len() < PREFACE.len() && PREFACE.starts_with(data) {
                        return 0; // the start of the preface, or of a request to a path starting with "RI"
                    }
                    if data.starts_with(PREFACE) {
                        self.start_h2(conn, Transport::H2c);
                    } else {
                        conn.front_decided();
                    }
                }
                Some(_) => conn.front_decided(),
            }
        }
        if conn.h2.is_some() { self.process_h2(conn, data, batch) } else { self.process(conn, data, batch) }
    }

    /// The connection speaks HTTP/2 from now on; its records say `transport`.
    fn start_h2(&mut self, conn: &mut Connection, transport: Transport) {
        let Some((builder, limits)) = self.http2.as_ref() else {
            return;
        };
        conn.h2 = Some(Box::new(Session::new(builder, *limits)));
        self.h2_counts.connections[(transport == Transport::H2c) as usize] += 1;
        conn.peer.transport = transport;
        conn.front_decided();
    }
}
