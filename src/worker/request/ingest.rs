//! The ingest path, the same for every protocol: who sent the request (its protocol's sender fields, its
//! visitor), the fields every record of it shares, its body undone (Content-Encoding), its events through its
//! protocol's module (`Ingest::events`), then `finish_request`: all of them kept, or the batch rolled back to
//! where the request began — a request is stored whole or not at all.

use super::Requests;
use super::exchange::{Payload, Request, Taken};
use crate::event::body;
use crate::event::record::{Emitter, Protocol, RecordBuilder, RequestMeta, Transport};
use crate::http::{HttpError, MAX_URI_BYTES, RequestHead, field, percent};
use crate::protocol::{Cookie, Ingest, Intake, snowplow};
use crate::schema::badrow::{self, BadRowKind};
use crate::spool::Stream;
use crate::spool::batch::{Batch, Mark};
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

/// Whether a request's events are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    Yes,
    /// From a bot under `BOTS=drop`.
    No,
}

impl Requests {
    /// The events of an admitted request to an ingest route, into `batch`.
    pub(super) fn ingest(
        &mut self,
        request: &Request<'_, '_>,
        ingest: Ingest,
        admission: Admission,
        batch: &mut Batch,
    ) -> Result<Taken, HttpError> {
        self.accepting?;
        let head = request.head;
        if ingest.is_grpc() && !matches!(request.peer.transport, Transport::H2 | Transport::H2c) {
            return Err(HttpError::NotImplemented("gRPC needs HTTP/2"));
        }
        ingest.check(head)?;
        let keep = self.start_request(request, ingest);
        if head.oversized_target {
            // Only where oversized payloads are bad rows (Snowplow's pixel: its query is its payload).
            if keep == Keep::No {
                return Ok(Taken::NOTHING);
            }
            let target = request_target(head.raw);
            let over =
                Oversize { limit: MAX_URI_BYTES, size: target.len() as u64, setting: "8 KiB (a request target)" };
            return self.store_bad_row(admission, over, target, batch);
        }
        let raw = match request.body {
            Payload::Whole(body) => body,
            Payload::Oversized { .. } if keep == Keep::No => return Ok(Taken::NOTHING),
            Payload::Oversized { declared, first } => {
                // Without a declared length (chunked), all that is known is that it passed the limit.
                let limit = self.config.max_body_bytes;
                let size = declared.unwrap_or(limit as u64 + 1);
                let over = Oversize { limit, size, setting: "MAX_BODY_BYTES" };
                return self.store_bad_row(admission, over, first, batch);
            }
        };
        let max = self.config.max_decompressed_bytes;
        // An empty body (a GET's) has no content coding to undo.
        let encoding = head.content_encoding.filter(|_| !raw.is_empty());
        let body = match body::decode_content(encoding, raw, max, &mut self.body.decompressed) {
            Ok(body) => body,
            // Never 413 where a payload over the limit is a bad row: Snowplow's trackers would send it forever.
            Err(HttpError::PayloadTooLarge(_)) if ingest.keeps_oversized() && keep == Keep::No => {
                return Ok(Taken::NOTHING);
            }
            Err(HttpError::PayloadTooLarge(_)) if ingest.keeps_oversized() => {
                // Inflating stopped at the limit: the size is at least one byte over it.
                let over = Oversize { limit: max, size: max as u64 + 1, setting: "MAX_DECOMPRESSED_BYTES" };
                return self.store_bad_row(admission, over, raw, batch);
            }
            Err(e) => return Err(e),
        };
        let intake = Intake {
            method: head.method,
            query: head.query,
            body,
            content_type: head.content_type,
            grpc_encoding: if ingest.is_grpc() { field(head.raw, b"grpc-encoding") } else { None },
            max_decompressed: max,
        };
        let gate = self.edge.gate(admission);
        let mark = batch.mark();
        let (good, bad) = batch.streams_mut();
        let mut emit = Emitter::new(good, &self.records, &mut self.ids).checked(&mut self.checker, bad);
        let written = ingest.events(&intake, gate, &mut emit, &mut self.protocols).map(|()| Written::by(&emit));
        match self.finish_request(batch, mark, written, keep) {
            // An event larger than the sink takes: where oversize payloads are bad rows, this is one too.
            Err(HttpError::PayloadTooLarge(_)) if ingest.keeps_oversized() => {
                let (limit, setting) = self.config.max_event_bytes.map_or((usize::MAX, ""), |l| (l.bytes, l.setting));
                let over = Oversize { limit, size: raw.len() as u64, setting };
                self.store_bad_row(admission, over, raw, batch)
            }
            finished => finished,
        }
    }

    /// The per-request parts of the request's records: who sent it (its protocol's sender fields, its visitor
    /// id) and who it is from (`Edge::identify`). Returns whether its events are kept: a bot's are not under
    /// `BOTS=drop` (they are still read, so a bot gets the answer its request deserves, then taken back).
    fn start_request(&mut self, request: &Request<'_, '_>, ingest: Ingest) -> Keep {
        let head = request.head;
        let declined = self.declines_tracking(head);
        let (retry_count, anonymous) = match ingest.is_sdk() {
            false => (None, false),
            true => {
                let retry_count = field(head.raw, b"x-retry-count")
                    .or_else(|| percent::find_param(head.query, b"retry_count"))
                    .and_then(|n| std::str::from_utf8(n).ok()?.trim().parse().ok());
                (retry_count, ingest.cookie() == Cookie::Snowplow && field(head.raw, b"sp-anonymous").is_some())
            }
        };
        let visitor_id = match ingest.cookie() {
            // Snowplow's network user id: the tracker's `nuid`, the cookie, or a new one (none when declined).
            Cookie::Snowplow => {
                let named = &mut self.protocols.decoded;
                named.clear();
                let nuid = percent::find_param(head.query, b"nuid").map(|raw| percent::decode_into(named, raw));
                let nuid = nuid.map(|range| &named[range]);
                self.visitors.identify(head.raw, nuid, anonymous || declined)
            }
            Cookie::FirstParty => self.first_party.identify(head.raw, None, declined),
        };
        let sender = Sender { protocol: ingest.protocol(), retry_count, visitor_id, anonymous };
        describe((&mut self.edge, &mut self.records, &self.clock), request, &sender)
    }

    /// The end of every ingest path: the request's `written` events (appended to `batch` since `mark`) are kept
    /// whole, or the batch goes back to the mark — on an error, for a bot under `BOTS=drop` (answered as if
    /// stored, and counted), or when an event is larger than the sink can take (`max_event_bytes`: a 413
    /// instead of an event the sink would have to set aside).
    pub(super) fn finish_request(
        &mut self,
        batch: &mut Batch,
        mark: Mark,
        written: Result<Written, HttpError>,
        keep: Keep,
    ) -> Result<Taken, HttpError> {
        let written = match written {
            Ok(written) => written,
            Err(e) => {
                batch.rollback(mark);
                return Err(e);
            }
        };
        let events = written.records + written.bad_rows.iter().sum::<u64>();
        if keep == Keep::No {
            batch.rollback(mark);
            self.edge.enricher.bots_dropped += events;
            return Ok(Taken { events, stored: 0, invalid: 0 });
        }
        if let Some(max) = self.config.max_event_bytes.filter(|max| batch.longest_line_since(mark) > max.bytes) {
            batch.rollback(mark);
            return Err(HttpError::PayloadTooLarge(max.refusal));
        }
        batch.add_events(Stream::Good, written.records);
        batch.add_events(Stream::Bad, events - written.records);
        for (tally, n) in self.bad_rows.iter_mut().zip(written.bad_rows) {
            *tally += n;
        }
        Ok(Taken { events, stored: events, invalid: events - written.records })
    }

    /// `HONOR_GPC=on` and the request says `DNT: 1` or `Sec-GPC: 1`: no visitor id, no cookie.
    fn declines_tracking(&self, head: &RequestHead<'_>) -> bool {
        self.honor_gpc
            && [&b"dnt"[..], b"sec-gpc"]
                .iter()
                .any(|name| field(head.raw, name).is_some_and(|v| v.trim_ascii() == b"1"))
    }

    /// A payload over a limit where such a payload is a bad row (Snowplow's routes): one `size_violation` bad
    /// row instead of its events (`head`: its first bytes), so its answer can be 200. Refused (401) when its
    /// events would need keys in the body to be admitted: a bad row's body is never read for them.
    fn store_bad_row(
        &mut self,
        admission: Admission,
        over: Oversize,
        head: &[u8],
        batch: &mut Batch,
    ) -> Result<Taken, HttpError> {
        if admission != Admission::Admitted {
            return Err(HttpError::Unauthorized);
        }
        let mark = batch.mark();
        let head = &head[..head.len().min(snowplow::BAD_ROW_HEAD)];
        let received = self.records.received();
        badrow::size_violation(batch.streams_mut().1, &received, over.limit as u64, over.size, over.setting, head);
        let mut bad_rows = [0; 2];
        bad_rows[BadRowKind::SizeViolation as usize] = 1;
        self.finish_request(batch, mark, Ok(Written { records: 0, bad_rows }), Keep::Yes)
    }
}

/// The target of the request line that starts `raw` (a parsed head: method, one space, target, one space,
/// version).
fn request_target(raw: &[u8]) -> &[u8] {
    let line = &raw[..memchr::memchr(b'\n', raw).unwrap_or(raw.len())];
    let start = memchr::memchr(b' ', line).map_or(0, |i| i + 1);
    let end = memchr::memrchr(b' ', line).filter(|&end| end > start).unwrap_or(line.len());
    &line[start..end]
}

/// Which limit a payload is over, and its size (or as much of it as is known).
struct Oversize {
    limit: usize,
    size: u64,
    setting: &'static str,
}

/// What a request's events became: records in the good stream, bad rows (by `BadRowKind`) in the bad one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Written {
    pub records: u64,
    pub bad_rows: [u64; 2],
}

impl Written {
    pub fn by(emit: &Emitter<'_>) -> Written {
        let mut bad_rows = [0; 2];
        bad_rows[BadRowKind::SchemaViolations as usize] = emit.bad_rows();
        Written { records: emit.events(), bad_rows }
    }
}

/// Renders the per-request parts of a request's records (fields of `Requests`, borrowed apart so a visitor id
/// can be lent from `Requests::visitors` meanwhile).
fn describe(
    (edge, records, clock): (&mut Edge, &mut RecordBuilder, &crate::event::clock::Clock),
    request: &Request<'_, '_>,
    sender: &Sender<'_>,
) -> Keep {
    let head = request.head;
    let identity = edge.identify(request.peer, head, sender.anonymous);
    let meta = RequestMeta {
        ip: identity.ip,
        user_agent: head.user_agent,
        method: head.method,
        path: head.path,
        transport: request.peer.transport,
        headers: identity.headers,
        enrichment: identity.enrichment,
        protocol: sender.protocol,
        retry_count: sender.retry_count,
        visitor_id: sender.visitor_id,
    };
    records.start_request(&meta, clock);
    if identity.drop { Keep::No } else { Keep::Yes }
}
