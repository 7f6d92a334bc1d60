//! The protocols plutos speaks, one module each, each turning a request's bytes into events: `plutos` (its own
//! `/e`: a query, or a body of JSON, NDJSON or a form; Plutos's before it), `segment` (Segment's HTTP tracking
//! API, also what RudderStack's SDKs speak), `posthog` (PostHog's capture API) and `snowplow` (Snowplow's
//! tracker protocol). `Ingest` is the one place that knows them all: which module reads a route, what its
//! success looks like, what becomes of a payload over the limit, which visitor cookie it sets — so adding a
//! protocol is its module, one variant here and one line in the route table.
//!
//! Every event goes to the one record path (`event::record::Emitter`): the same record line, fields and
//! sequence of checks whatever the protocol. Nothing after that path knows which protocol brought an event,
//! but the record's `protocol` field. The SDK modules read their envelope once as minified, validated JSON
//! (`minified_json`) and walk it with `event::object`: no DOM, nothing decoded that is not looked at. A request
//! is accepted whole or not at all — on any error the worker rolls its batch back to where the request began.

pub mod otlp;
pub mod plutos;
pub mod posthog;
pub mod segment;
pub mod send;
pub mod snowplow;

use crate::event::json;
use crate::event::query::QueryScratch;
use crate::event::record::{Emitter, Protocol};
use crate::grpc;
use crate::http::write_key::KeyGate;
use crate::http::{HttpError, Method, RequestHead};

/// What an ingest route speaks: its protocol, with what the route itself tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    /// plutos's own `/e`: a query (GET, HEAD) or a body (POST).
    Plutos,
    /// Segment's HTTP API: a batch (`None`), or one message of the type the path names.
    Segment(Option<&'static str>),
    /// PostHog's capture API: one event, an array, or a batch envelope.
    PostHog,
    /// Snowplow's tracker protocol over POST: a `payload_data` batch.
    SnowplowPost,
    /// Snowplow's pixel: one event in the query, answered with a 1×1 GIF.
    SnowplowPixel,
    /// plutos's gRPC service, `plutos.v1.Collector/Send`: a batch of events (HTTP/2 only).
    Send,
    /// OTLP logs over gRPC, `LogsService/Export` (HTTP/2 only).
    OtlpGrpc,
    /// OTLP logs over HTTP, `POST /v1/logs` in Protobuf or JSON.
    OtlpHttp,
}

/// Which visitor id a protocol's records and answers carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookie {
    /// `VISITOR_COOKIE`, plutos's first-party id.
    FirstParty,
    /// Snowplow's network user id (`sp`, or the tracker's `nuid`), which its trackers read back.
    Snowplow,
}

/// What a protocol answers a request it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// plutos's GET: the answer `RESPONSE` names (empty 200, 1×1 GIF, 204), Plutos's contract.
    Event,
    /// plutos's POST: `{"accepted":N}`, and `"invalid":M` (events stored as bad rows) under `VALIDATION=reject`.
    Count { accepted: u64, invalid: Option<u64> },
    /// An SDK's own: exactly 200, this body and type (and no-cache headers for a pixel).
    Body { content_type: &'static str, body: &'static [u8], no_cache: bool },
    /// A gRPC call's: its service's response message with these counts, status OK (the HTTP/2 front end frames
    /// it).
    Grpc { accepted: u64, invalid: u64 },
}

/// What a protocol reads of a request besides the record's request fields.
#[derive(Debug, Clone, Copy)]
pub struct Intake<'a> {
    pub method: Method,
    pub query: &'a [u8],
    /// The body with its Content-Encoding undone.
    pub body: &'a [u8],
    pub content_type: Option<&'a [u8]>,
    /// A gRPC call's `grpc-encoding` (how its message is compressed).
    pub grpc_encoding: Option<&'a [u8]>,
    pub max_decompressed: usize,
}

impl Ingest {
    /// The record's `protocol`.
    pub fn protocol(self) -> Protocol {
        match self {
            Ingest::Plutos => Protocol::Plutos,
            Ingest::Segment(_) => Protocol::Segment,
            Ingest::PostHog => Protocol::PostHog,
            Ingest::SnowplowPost | Ingest::SnowplowPixel => Protocol::Snowplow,
            Ingest::Send => Protocol::Plutos,
            Ingest::OtlpGrpc | Ingest::OtlpHttp => Protocol::Otlp,
        }
    }

    /// A gRPC service: reached over HTTP/2 only, answered with a gRPC status.
    pub fn is_grpc(self) -> bool {
        matches!(self, Ingest::Send | Ingest::OtlpGrpc)
    }

    /// An SDK's protocol: answered as that SDK's own server does (CORS: any origin echoed; keys may be in the
    /// body; the client's retry count is read).
    pub fn is_sdk(self) -> bool {
        !matches!(self, Ingest::Plutos | Ingest::Send)
    }

    /// Keeps a payload over the body limit as a bad-row record and answers 200, instead of 413: Snowplow's
    /// trackers send a refused payload again forever.
    pub fn keeps_oversized(self) -> bool {
        match self {
            Ingest::SnowplowPost | Ingest::SnowplowPixel => true,
            Ingest::Plutos | Ingest::Segment(_) | Ingest::PostHog => false,
            Ingest::Send | Ingest::OtlpGrpc | Ingest::OtlpHttp => false,
        }
    }

    pub fn cookie(self) -> Cookie {
        match self {
            Ingest::SnowplowPost | Ingest::SnowplowPixel => Cookie::Snowplow,
            Ingest::Plutos | Ingest::Segment(_) | Ingest::PostHog => Cookie::FirstParty,
            Ingest::Send | Ingest::OtlpGrpc | Ingest::OtlpHttp => Cookie::FirstParty,
        }
    }

    /// What the request must be before anything of it is read (plutos's POST: a body type it reads).
    pub fn check(self, head: &RequestHead<'_>) -> Result<(), HttpError> {
        match self {
            Ingest::Plutos => plutos::check(head.method, head.content_type),
            Ingest::Segment(_) | Ingest::PostHog | Ingest::SnowplowPost | Ingest::SnowplowPixel => Ok(()),
            Ingest::Send | Ingest::OtlpGrpc => match head.content_type {
                Some(t) if grpc::is_call(t) => Ok(()),
                _ => Err(HttpError::UnsupportedMediaType("a gRPC call is application/grpc")),
            },
            Ingest::OtlpHttp => otlp::Format::of(head.content_type).map(drop),
        }
    }

    /// The request's events, each through `emit`; an error refuses the whole request.
    pub fn events(
        self,
        intake: &Intake<'_>,
        gate: KeyGate<'_>,
        emit: &mut Emitter<'_>,
        scratch: &mut Scratch,
    ) -> Result<(), HttpError> {
        match self {
            Ingest::Plutos => plutos::ingest(intake, emit, scratch),
            Ingest::Segment(implied_type) => segment::ingest(implied_type, intake.body, gate, emit, scratch),
            Ingest::PostHog => posthog::ingest(intake, gate, emit, scratch),
            Ingest::SnowplowPost => snowplow::ingest_post(intake.body, gate, emit, scratch),
            Ingest::SnowplowPixel => snowplow::ingest_pixel(intake.query, gate, emit, scratch),
            Ingest::Send => send::ingest(intake, emit, scratch),
            Ingest::OtlpGrpc => {
                let message =
                    grpc::message(intake.body, intake.grpc_encoding, intake.max_decompressed, &mut scratch.decoded)?;
                otlp::emit(message, emit, &mut scratch.nested, &mut scratch.more)
            }
            Ingest::OtlpHttp => {
                let format = otlp::Format::of(intake.content_type)?;
                let message = otlp::protobuf(intake.body, format, &mut scratch.decoded)?;
                otlp::emit(message, emit, &mut scratch.nested, &mut scratch.more)
            }
        }
    }

    /// The answer to an accepted request of `method` that brought `events`, `invalid` of them stored as bad
    /// rows (`None` unless events are rejected: `VALIDATION=reject`). An SDK's answer is the same either way: a
    /// bad row is stored, and its batch must not be sent again.
    pub fn accepted(self, head: &RequestHead<'_>, events: u64, invalid: Option<u64>) -> Accepted {
        let method = head.method;
        let json = |body| Accepted::Body { content_type: "application/json", body, no_cache: false };
        match self {
            Ingest::Plutos if method == Method::Post => {
                Accepted::Count { accepted: events - invalid.unwrap_or(0), invalid }
            }
            Ingest::Plutos => Accepted::Event,
            Ingest::Segment(_) => json(segment::ACCEPTED),
            Ingest::PostHog => json(posthog::ACCEPTED),
            Ingest::SnowplowPost => {
                Accepted::Body { content_type: "text/plain; charset=utf-8", body: snowplow::ACCEPTED, no_cache: false }
            }
            Ingest::SnowplowPixel => {
                Accepted::Body { content_type: "image/gif", body: crate::http::response::PIXEL_GIF, no_cache: true }
            }
            Ingest::Send | Ingest::OtlpGrpc => {
                Accepted::Grpc { accepted: events - invalid.unwrap_or(0), invalid: invalid.unwrap_or(0) }
            }
            // Stored whole: never a partial success, so the response message is empty.
            Ingest::OtlpHttp => match otlp::Format::of(head.content_type) {
                Ok(otlp::Format::Json) => json(b"{}"),
                _ => Accepted::Body { content_type: "application/x-protobuf", body: b"", no_cache: false },
            },
        }
    }
}

/// One worker's reusable buffers for the protocols, so a request allocates nothing in steady state.
#[derive(Default)]
pub struct Scratch {
    /// The request's JSON, minified.
    pub json: Vec<u8>,
    /// A payload undone (base64, gzip, a form's `data`) before it is JSON.
    pub decoded: Vec<u8>,
    /// An event's value being built (an edited object, a decoded context).
    pub nested: Vec<u8>,
    pub more: Vec<u8>,
    /// A query or form being read (the write key's parameter left out when keys are required).
    pub query: QueryScratch,
    /// The spans of a batch's events in `json`.
    pub elements: Vec<(u32, u32)>,
}

/// Validates `text` as one JSON value and writes it minified into `out` (cleared first): the form every protocol
/// reads its envelope in. The same checks as `/e`'s bodies: UTF-8, syntax, depth, surrogates, number range.
pub fn minified_json(text: &[u8], out: &mut Vec<u8>) -> Result<(), HttpError> {
    out.clear();
    if !json::validate(text) {
        return Err(HttpError::BadRequest("invalid JSON"));
    }
    json::minify_into(out, text)?;
    Ok(())
}

/// Decodes base64 of either alphabet (`+/` or `-_`), padded or not — trackers differ — onto `out` (cleared).
pub fn unbase64(text: &[u8], out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    use base64::Engine;
    out.clear();
    let url_safe = text.iter().any(|&b| b == b'-' || b == b'_');
    let engine = if url_safe { &URL_SAFE } else { &STANDARD };
    engine.decode_vec(text.trim_ascii(), out)
}

const PADDING_EITHER: base64::engine::GeneralPurposeConfig = base64::engine::GeneralPurposeConfig::new()
    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
const STANDARD: base64::engine::GeneralPurpose =
    base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, PADDING_EITHER);
const URL_SAFE: base64::engine::GeneralPurpose =
    base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, PADDING_EITHER);
