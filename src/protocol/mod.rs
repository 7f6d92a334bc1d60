//! The wire protocols of the analytics SDKs teams already run, beside plutos's own `/e` (which `event::query`
//! and `event::body` read): `segment` (Segment's HTTP tracking API, also what RudderStack's SDKs speak),
//! `posthog` (PostHog's capture API) and `snowplow` (Snowplow's tracker protocol). One module per protocol, each
//! turning a request's bytes into events and handing every event to the one record path
//! (`event::record::Emitter`): the same record line, fields and sequence of checks as any other route. Nothing
//! after that path knows which protocol brought an event, but the record's `protocol` field.
//!
//! Each module reads its envelope once as minified, validated JSON (`minified_json`) and walks it with
//! `event::object`: no DOM, nothing decoded that is not looked at. A request is accepted whole or not at all —
//! on any error the worker rolls its batch back to where the request began.

pub mod posthog;
pub mod segment;
pub mod snowplow;

use crate::event::json;
use crate::event::query::QueryScratch;
use crate::http::HttpError;

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
