//! Snowplow's tracker protocol: `POST /com.snowplowanalytics.snowplow/tp2` carries a `payload_data` envelope
//! (`{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{…},…]}`), and
//! `GET /i` or `/ice.png` one event in its query, answered with a 1×1 GIF. An event is a flat map of short
//! parameters (`e`, `eid`, `aid`, `dtm`, `stm`, `uid`, `duid`, …), all strings.
//!
//! Each event is one record whose `raw_data` is that map, with the self-describing event and the contexts as
//! JSON: `ue_px` and `cx` (base64url, padded or not) are decoded into `ue_pr` and `co`, and `ue_pr` and `co`
//! (JSON as strings) are parsed, so a reader finds the same JSON however the tracker encoded it.
//!
//! Snowplow carries no write key. With `WRITE_KEYS` set, a request whose head presents a known key (a tracker's
//! custom header `X-Write-Key`) is admitted; otherwise each event's app id (`aid`) must be one of the keys, so
//! a tracker's `appId` is its key — as public as a Segment or PostHog browser key.
//!
//! Snowplow's trackers send a payload again forever when it is refused as too large, so these routes never
//! answer 413: a body over the limit becomes a `size_violation` bad row in the bad stream (its size, its first
//! bytes: `schema::badrow`) and the answer is 200.

use super::{Scratch, minified_json};
use crate::event::json;
use crate::event::object::{Edit, Members, Text, get, key, text, write_object};
use crate::event::query::append_query_object;
use crate::event::record::{Emitter, EventFields};
use crate::http::HttpError;
use crate::http::write_key::KeyGate;
use crate::schema::Checker;

/// The body of a POST's success, as Snowplow's collector answers.
pub const ACCEPTED: &[u8] = b"ok";
/// How many first bytes of an oversized payload its bad row keeps.
pub const BAD_ROW_HEAD: usize = 1024;

const PAYLOAD_DATA: &str = "iglu:com.snowplowanalytics.snowplow/payload_data/";
const NOT_AN_ENVELOPE: HttpError = HttpError::BadRequest(
    "expected a Snowplow payload: {\"schema\":\"iglu:com.snowplowanalytics.snowplow/payload_data/…\",\"data\":[…]}",
);

/// The events of a tp2 POST.
pub fn ingest_post(
    body: &[u8],
    gate: KeyGate<'_>,
    emit: &mut Emitter<'_>,
    scratch: &mut Scratch,
) -> Result<(), HttpError> {
    let Scratch { json, decoded, nested, more, .. } = scratch;
    minified_json(body, json)?;
    let schema = get(json, "schema").and_then(text);
    let data = get(json, "data").filter(|d| d.starts_with(b"["));
    let (Some(data), true) = (data, schema.is_some_and(|s| s.starts_with(PAYLOAD_DATA))) else {
        return Err(NOT_AN_ENVELOPE);
    };
    let mut result = Ok(());
    json::for_each_array_element(data, |e| {
        if result.is_ok() {
            result = event(e, gate, emit, Buffers { base64: decoded, ue: nested, co: more });
        }
    });
    result
}

/// The one event of a pixel GET, from its query.
pub fn ingest_pixel(
    query: &[u8],
    gate: KeyGate<'_>,
    emit: &mut Emitter<'_>,
    scratch: &mut Scratch,
) -> Result<(), HttpError> {
    let Scratch { json, decoded, nested, more, query: pairs, .. } = scratch;
    json.clear();
    append_query_object(json, query, pairs)?;
    event(json, gate, emit, Buffers { base64: decoded, ue: nested, co: more })
}

struct Buffers<'s> {
    base64: &'s mut Vec<u8>,
    ue: &'s mut Vec<u8>,
    co: &'s mut Vec<u8>,
}

/// One event: checked, its JSON parameters decoded, then one record.
fn event(event: &[u8], gate: KeyGate<'_>, emit: &mut Emitter<'_>, buffers: Buffers<'_>) -> Result<(), HttpError> {
    if !event.starts_with(b"{") {
        return Err(HttpError::BadRequest("a Snowplow event must be a JSON object"));
    }
    let mut f = EventFields::default();
    let (mut e, mut aid, mut action) = (None, None, None);
    let (mut ue_px, mut ue_pr, mut cx, mut co) = (None, None, None, None);
    for (k, value) in Members::of(event) {
        match &*key(k) {
            b"e" => e = text(value),
            b"eid" => f.event_id = Text::of(value),
            b"aid" => aid = Some(value),
            b"uid" => f.user_id = Text::of(value),
            b"duid" => f.anonymous_id = Text::of(value),
            b"dtm" => f.client_ts = Text::of(value),
            b"stm" => f.sent_at = Text::of(value),
            b"se_ac" => action = Text::of(value),
            b"ue_px" => ue_px = Some(value),
            b"ue_pr" => ue_pr = Some(value),
            b"cx" => cx = Some(value),
            b"co" => co = Some(value),
            _ => {}
        }
    }
    gate.admit(aid.and_then(text).as_deref())?;
    let Buffers { base64, ue, co: contexts } = buffers;
    let ue = json_parameter(ue_px, ue_pr, base64, ue, "ue_px is not base64-encoded JSON", "ue_pr is not JSON")?;
    let co = json_parameter(cx, co, base64, contexts, "cx is not base64-encoded JSON", "co is not JSON")?;
    let schema_name = ue.and_then(|ue| get(ue, "data")).and_then(|data| get(data, "schema")).and_then(text);
    let name = schema_name.as_deref().and_then(|schema| schema.split('/').nth(1));
    let known = |kind, name: &'static str| (Some(Text::Static(kind)), Some(Text::Static(name)));
    (f.event_type, f.event_name) = match e.as_deref() {
        Some("pv") => known("page", "page_view"),
        Some("pp") => known("page_ping", "page_ping"),
        Some("se") => (Some(Text::Static("track")), action),
        Some("ue") if name == Some("screen_view") => (Some(Text::Static("screen")), name.map(Text::Plain)),
        Some("ue") => (Some(Text::Static("track")), name.map(Text::Plain)),
        Some("tr") => known("transaction", "transaction"),
        Some("ti") => known("transaction_item", "transaction_item"),
        // Another kind is named as the tracker named it.
        Some(other) => (Some(Text::Plain(other)), None),
        None => (None, None),
    };
    let edited = ue_px.is_some() || ue_pr.is_some() || cx.is_some() || co.is_some();
    let parts = |checker: &mut Checker| self_describing_parts(checker, ue, co);
    emit.event_checked(f, parts, |out| {
        if !edited {
            return out.extend_from_slice(event);
        }
        let edit = |k: &[u8], _: &[u8]| match decoded_key(k) {
            Key::UePx => ue.map_or(Edit::Keep, |json| Edit::Rename("ue_pr", json)),
            Key::UePr if ue_px.is_some() => Edit::Drop,
            Key::UePr => ue.map_or(Edit::Keep, Edit::Replace),
            Key::Cx => co.map_or(Edit::Keep, |json| Edit::Rename("co", json)),
            Key::Co if cx.is_some() => Edit::Drop,
            Key::Co => co.map_or(Edit::Keep, Edit::Replace),
            Key::Other => Edit::Keep,
        };
        write_object(out, event, edit, &[]);
    });
    Ok(())
}

/// The self-describing parts of an event, each checked: the unstructured event's envelope (`unstruct_event`)
/// and the event inside it, the contexts' envelope (`contexts`) and each context. Returns the event's own schema
/// (the one inside the envelope).
fn self_describing_parts<'e>(checker: &mut Checker, ue: Option<&'e [u8]>, co: Option<&[u8]>) -> Option<&'e [u8]> {
    let mut schema = None;
    if let Some(ue) = ue
        && checker.validate_part(ue).is_some()
    {
        schema = get(ue, "data").and_then(|event| checker.validate_part(event));
    }
    if let Some(co) = co
        && checker.validate_part(co).is_some()
        && let Some(contexts) = get(co, "data")
    {
        json::for_each_array_element(contexts, |context| _ = checker.validate_part(context));
    }
    schema
}

#[derive(Clone, Copy)]
enum Key {
    UePx,
    UePr,
    Cx,
    Co,
    Other,
}

fn decoded_key(k: &[u8]) -> Key {
    match &*key(k) {
        b"ue_px" => Key::UePx,
        b"ue_pr" => Key::UePr,
        b"cx" => Key::Cx,
        b"co" => Key::Co,
        _ => Key::Other,
    }
}

/// A JSON parameter of an event, from its base64 form (`encoded`: `ue_px`, `cx`) or its plain one (`plain`:
/// `ue_pr`, `co`, a string of JSON), minified into `out`. `None` when the event has neither.
fn json_parameter<'o>(
    encoded: Option<&[u8]>,
    plain: Option<&[u8]>,
    scratch: &mut Vec<u8>,
    out: &'o mut Vec<u8>,
    bad_encoded: &'static str,
    bad_plain: &'static str,
) -> Result<Option<&'o [u8]>, HttpError> {
    out.clear();
    if let Some(value) = encoded {
        let text = text(value).filter(|_| value.starts_with(b"\"")).ok_or(HttpError::BadRequest(bad_encoded))?;
        super::unbase64(text.as_bytes(), scratch).map_err(|_| HttpError::BadRequest(bad_encoded))?;
        minified_json(scratch, out).map_err(|_| HttpError::BadRequest(bad_encoded))?;
        return Ok(Some(out));
    }
    match plain {
        // Already JSON (a tracker that sent an object, not a string): as it is.
        Some(value) if value.starts_with(b"{") || value.starts_with(b"[") => {
            out.extend_from_slice(value);
            Ok(Some(out))
        }
        Some(value) => {
            let text = text(value).filter(|_| value.starts_with(b"\"")).ok_or(HttpError::BadRequest(bad_plain))?;
            minified_json(text.as_bytes(), out).map_err(|_| HttpError::BadRequest(bad_plain))?;
            Ok(Some(out))
        }
        None => Ok(None),
    }
}
