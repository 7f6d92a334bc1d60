//! The ingest paths of a request: plutos's own `/e` (a query, or a body of JSON, NDJSON or a form) and the SDK
//! protocols. Each follows one skeleton: start the request's records (the fields every record shares), take a
//! mark in the batch, append its events through the one record path, then `finish_request` keeps them all or
//! rolls the batch back to the mark — a request is stored whole or not at all — and marks the connection's
//! answer as waiting for the spool write.

use super::{Payload, Requests};
use crate::event::body;
use crate::event::clock::Clock;
use crate::event::query::append_query_object;
use crate::event::record::{Emitter, Protocol, RecordBuilder, RequestMeta};
use crate::http::route::{Endpoint, Route};
use crate::http::{HttpError, RequestHead, field, percent};
use crate::protocol::posthog::Capture;
use crate::protocol::{posthog, segment, snowplow};
use crate::spool::batch::{Batch, Mark};
use crate::worker::connection::Connection;
use crate::worker::edge::{Admission, Edge};

/// Who a request is from, as its records say besides the address: its protocol, its retry count and its
/// visitor.
struct Sender<'a> {
    protocol: Protocol,
    retry_count: Option<u32>,
    visitor_id: Option<&'a str>,
    /// Tracking declined (`SP-Anonymous`): no address is kept.
    anonymous: bool,
}

/// The per-request parts of a request's records (fields of `Requests`, borrowed apart so a visitor id can be
/// lent from `Requests::visitors` meanwhile). Returns whether its events are kept: a bot's are not under
/// `BOTS=drop` (they are still read, so a bot gets the answer its request deserves, then taken back).
fn start_request(
    (edge, records, clock): (&mut Edge, &mut RecordBuilder, &Clock),
    conn: &Connection,
    head: &RequestHead<'_>,
    sender: &Sender<'_>,
) -> Keep {
    let identity = edge.identify(&conn.peer, head, sender.anonymous);
    let meta = RequestMeta {
        ip: identity.ip,
        user_agent: head.user_agent,
        method: head.method,
        path: head.path,
        transport: conn.peer.transport,
        headers: identity.headers,
        enrichment: identity.enrichment,
        protocol: sender.protocol,
        retry_count: sender.retry_count,
        visitor_id: sender.visitor_id,
    };
    records.start_request(&meta, clock);
    if identity.drop { Keep::No } else { Keep::Yes }
}

/// Whether a request's events are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    Yes,
    /// From a bot under `BOTS=drop`.
    No,
}

impl Requests {
    /// GET/HEAD `/e`: the query string is one event.
    pub(super) fn ingest_query(
        &mut self,
        conn: &mut Connection,
        route: Route,
        head: &RequestHead<'_>,
        batch: &mut Batch,
    ) -> Result<(), HttpError> {
        self.accepting?;
        let declined = self.declines_tracking(head);
        let visitor_id = self.first_party.identify(head.raw, None, declined);
        let sender = Sender { visitor_id, ..PLUTOS };
        let keep = start_request((&mut self.edge, &mut self.records, &self.clock), conn, head, &sender);
        let mark = batch.mark();
        self.records.begin_record(batch.lines_mut());
        let written = append_query_object(batch.lines_mut(), head.query, &mut self.query).map_err(HttpError::from);
        if written.is_ok() {
            self.records.finish_record(batch.lines_mut(), &mut self.ids);
        }
        self.finish_request(batch, mark, written.map(|()| 1), keep, Some((conn, route)))?;
        Ok(())
    }

    /// POST `/e`: every event of the body, or none of them.
    pub(super) fn ingest_body(
        &mut self,
        conn: &mut Connection,
        route: Route,
        head: &RequestHead<'_>,
        body: &[u8],
        batch: &mut Batch,
    ) -> Result<u64, HttpError> {
        self.accepting?;
        let kind = body::body_kind(head.content_type)?;
        let declined = self.declines_tracking(head);
        let visitor_id = self.first_party.identify(head.raw, None, declined);
        let sender = Sender { visitor_id, ..PLUTOS };
        let keep = start_request((&mut self.edge, &mut self.records, &self.clock), conn, head, &sender);
        let max = self.config.max_decompressed_bytes;
        let body = body::decode_content(head.content_encoding, body, max, &mut self.body.decompressed)?;
        let mark = batch.mark();
        let written = body::append_body_events(
            kind,
            body,
            batch.lines_mut(),
            &self.records,
            &mut self.ids,
            &mut self.body.minified,
            &mut self.query,
        );
        self.finish_request(batch, mark, written, keep, Some((conn, route)))
    }

    /// A request to an SDK's route: its events, each through its protocol's module, or none of them.
    pub(super) fn ingest_sdk(
        &mut self,
        conn: &mut Connection,
        route: Route,
        head: &RequestHead<'_>,
        payload: Payload<'_>,
        admission: Admission,
        batch: &mut Batch,
    ) -> Result<(), HttpError> {
        self.accepting?;
        let endpoint = route.endpoint();
        let snowplow = matches!(endpoint, Endpoint::SnowplowPost | Endpoint::SnowplowPixel);
        let anonymous = snowplow && field(head.raw, b"sp-anonymous").is_some();
        let retry_count = field(head.raw, b"x-retry-count")
            .or_else(|| percent::find_param(head.query, b"retry_count"))
            .and_then(|n| std::str::from_utf8(n).ok()?.trim().parse().ok());
        let protocol = match endpoint {
            Endpoint::Segment(_) => Protocol::Segment,
            Endpoint::PostHog => Protocol::PostHog,
            _ => Protocol::Snowplow,
        };
        // Snowplow's network user id: the tracker's `nuid`, the cookie, or a new one (none when declined).
        let declined = self.declines_tracking(head);
        let named = &mut self.protocols.decoded;
        named.clear();
        let nuid = percent::find_param(head.query, b"nuid").map(|raw| percent::decode_into(named, raw));
        let nuid = nuid.map(|range| &named[range]);
        let visitor_id = match snowplow {
            true => self.visitors.identify(head.raw, nuid, anonymous || declined),
            false => self.first_party.identify(head.raw, None, declined),
        };
        let sender = Sender { protocol, retry_count, visitor_id, anonymous };
        let keep = start_request((&mut self.edge, &mut self.records, &self.clock), conn, head, &sender);
        let max = self.config.max_decompressed_bytes;
        let raw = match payload {
            Payload::Whole(body) => body,
            Payload::Oversized { .. } if keep == Keep::No => return Ok(()),
            Payload::Oversized { declared, first } => {
                return self.store_bad_row(conn, route, admission, declared, first, batch);
            }
        };
        let body = match body::decode_content(head.content_encoding, raw, max, &mut self.body.decompressed) {
            Ok(body) => body,
            // Never 413 on Snowplow's routes: its trackers would send the payload again forever.
            Err(HttpError::PayloadTooLarge(_)) if snowplow && keep == Keep::No => return Ok(()),
            Err(HttpError::PayloadTooLarge(_)) if snowplow => {
                return self.store_bad_row(conn, route, admission, None, raw, batch);
            }
            Err(e) => return Err(e),
        };
        let gate = self.edge.gate(admission);
        let mark = batch.mark();
        let mut emit = Emitter::new(batch.lines_mut(), &self.records, &mut self.ids);
        let scratch = &mut self.protocols;
        let result = match endpoint {
            Endpoint::Segment(implied_type) => segment::ingest(implied_type, body, gate, &mut emit, scratch),
            Endpoint::PostHog => {
                let capture = Capture {
                    method: head.method,
                    body,
                    query: head.query,
                    content_type: head.content_type,
                    max_decompressed: max,
                };
                posthog::ingest(&capture, gate, &mut emit, scratch)
            }
            Endpoint::SnowplowPost => snowplow::ingest_post(body, gate, &mut emit, scratch),
            _ => snowplow::ingest_pixel(head.query, gate, &mut emit, scratch),
        };
        let written = result.map(|()| emit.events());
        match self.finish_request(batch, mark, written, keep, Some((&mut *conn, route))) {
            // An event larger than the sink takes: on Snowplow's routes a bad row too, never a 413.
            Err(HttpError::PayloadTooLarge(_)) if snowplow => {
                self.store_bad_row(conn, route, admission, None, raw, batch)
            }
            finished => finished.map(drop),
        }
    }

    /// The end of every ingest path: the request's `written` events (appended to `batch` since `mark`) are kept
    /// whole, or the batch goes back to the mark — on an error, for a bot under `BOTS=drop` (answered as if
    /// stored, and counted), or when an event is larger than the sink can take (`max_event_bytes`: a 413
    /// instead of an event the sink would have to set aside). Kept events make the answer of `answering` (a
    /// connection's request; none for a datagram) wait for the spool write. Returns how many were written.
    pub(super) fn finish_request(
        &mut self,
        batch: &mut Batch,
        mark: Mark,
        written: Result<u64, HttpError>,
        keep: Keep,
        answering: Option<(&mut Connection, Route)>,
    ) -> Result<u64, HttpError> {
        let refused = match written {
            Err(e) => Some(e),
            Ok(_) if keep == Keep::No => None,
            Ok(_) if self.config.max_event_bytes.is_some_and(|max| batch.longest_line_since(mark) > max) => {
                Some(HttpError::PayloadTooLarge("an event is larger than the sink takes (KAFKA_MESSAGE_MAX_BYTES)"))
            }
            Ok(_) => None,
        };
        let events = match (refused, written) {
            (Some(e), _) => {
                batch.rollback(mark);
                return Err(e);
            }
            (None, Ok(events)) => events,
            (None, Err(_)) => unreachable!("an error is refused"),
        };
        if keep == Keep::No {
            batch.rollback(mark);
            self.edge.enricher.bots_dropped += events;
            return Ok(events);
        }
        if events > 0 {
            batch.add_events(events);
            if let Some((conn, route)) = answering {
                conn.output.mark_ingest(route);
            }
        }
        Ok(events)
    }

    /// `HONOR_GPC=on` and the request says `DNT: 1` or `Sec-GPC: 1`: no visitor id, no cookie.
    fn declines_tracking(&self, head: &RequestHead<'_>) -> bool {
        self.honor_gpc
            && [&b"dnt"[..], b"sec-gpc"]
                .iter()
                .any(|name| field(head.raw, name).is_some_and(|v| v.trim_ascii() == b"1"))
    }

    /// A Snowplow payload over the body limit: one bad-row record instead of its events (`declared`: the
    /// length it declared; `head`: its first bytes), so its answer can be 200. Refused (401) when its events
    /// would need keys in the body to be admitted: a bad row's body is never read for them.
    fn store_bad_row(
        &mut self,
        conn: &mut Connection,
        route: Route,
        admission: Admission,
        declared: Option<u64>,
        head: &[u8],
        batch: &mut Batch,
    ) -> Result<(), HttpError> {
        if admission != Admission::Admitted {
            return Err(HttpError::Unauthorized);
        }
        let mark = batch.mark();
        let mut emit = Emitter::new(batch.lines_mut(), &self.records, &mut self.ids);
        snowplow::bad_row(&mut emit, declared, self.config.max_body_bytes, head);
        self.finish_request(batch, mark, Ok(1), Keep::Yes, Some((conn, route)))?;
        Ok(())
    }
}

/// The sender of plutos's own `/e`: nothing but its address.
const PLUTOS: Sender<'static> =
    Sender { protocol: Protocol::Plutos, retry_count: None, visitor_id: None, anonymous: false };
