//! PostHog's capture API (`/batch`, `/capture`, `/i/v0/e`, `/track`, `/engage`, `/e/`, each with or without its
//! trailing slash, as PostHog's own server takes them): a single event, an array of events, or an envelope
//! `{"api_key":…,"batch":[…],"sent_at":…}`.
//!
//! How the payload is wrapped is decided once, before it is read, as PostHog's server decides it: gzip by
//! `Content-Encoding` (undone before this module), else by the magic bytes every gzip stream opens with, which is
//! what `?compression=gzip-js` announces (posthog-js sends gzip as `text/plain` without a header; posthog-node and
//! RudderStack gzip by default); a form body or a GET query carries it as `data=`, base64-encoded when
//! `compression=base64` says so or when it is not JSON as it stands. lz-string (`compression=lz64`, posthog-js
//! before 2020) is refused with 415. Every inflation is capped at `MAX_DECOMPRESSED_BYTES`.
//!
//! Each event is one record; its `raw_data` is the event without its key (`api_key`, `token`, and `token` in its
//! `properties`). The key is the envelope's `api_key`, else the event's `api_key`, `token` or `properties.token`.
//! Success is `200 {"status":1}`: posthog-js and RudderStack take any other 2xx for a failure.

use super::{Intake, Scratch, minified_json};
use crate::event::body;
use crate::event::json;
use crate::event::object::{Edit, Members, Text, key, text, write_object};
use crate::event::record::{Emitter, EventFields};
use crate::http::write_key::KeyGate;
use crate::http::{HttpError, Method, percent};

/// The body of a success, as PostHog answers.
pub const ACCEPTED: &[u8] = br#"{"status":1}"#;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// How the payload says it is wrapped. gzip needs no word: a gzip stream opens with its magic bytes, and those
/// decide (`?compression=gzip-js` over a body whose `Content-Encoding: gzip` was already undone is JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapping {
    /// Whatever it looks like: base64 when a form's `data` is not JSON as it stands.
    Detect,
    Base64,
}

/// The events of one capture request.
pub fn ingest(
    capture: &Intake<'_>,
    gate: KeyGate<'_>,
    emit: &mut Emitter<'_>,
    scratch: &mut Scratch,
) -> Result<(), HttpError> {
    let Scratch { json, decoded, nested, more, elements, .. } = scratch;
    let payload = payload(capture, decoded, more, nested)?;
    minified_json(payload, json)?;
    // posthog-js before 1.0 named the send time in the query, in milliseconds.
    let query_sent_at =
        percent::find_param(capture.query, b"_").filter(|t| !t.is_empty() && t.iter().all(u8::is_ascii_digit));
    events(json, elements, query_sent_at.map(Text::Number), gate, emit)
}

/// The payload's JSON text: out of a form or the query, out of base64, out of gzip, as it says or looks.
fn payload<'a>(
    capture: &Intake<'a>,
    form_data: &'a mut Vec<u8>,
    unbase64: &'a mut Vec<u8>,
    inflated: &'a mut Vec<u8>,
) -> Result<&'a [u8], HttpError> {
    let is_form = capture.content_type.is_some_and(|ct| {
        ct.split(|&b| b == b';')
            .next()
            .unwrap_or(b"")
            .trim_ascii()
            .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
    });
    let form = match capture.method {
        Method::Get => Some(capture.query),
        _ if is_form || capture.body.starts_with(b"data=") => Some(capture.body),
        _ => None,
    };
    let hint = percent::find_param(capture.query, b"compression")
        .or_else(|| form.and_then(|f| percent::find_param(f, b"compression")))
        .unwrap_or(b"");
    let wrapping = match hint {
        b"base64" => Wrapping::Base64,
        b"lz64" | b"lz-string" => {
            return Err(HttpError::UnsupportedMediaType("lz64 compression is not supported: use gzip-js"));
        }
        _ => Wrapping::Detect,
    };
    let mut data: &[u8] = capture.body;
    if let Some(form) = form {
        let Some(raw) = percent::find_param(form, b"data") else {
            return Err(HttpError::BadRequest("expected the events in a data= parameter"));
        };
        form_data.clear();
        percent::decode_into(form_data, raw);
        let json_as_is = matches!(form_data.trim_ascii_start().first(), Some(b'{' | b'['));
        if wrapping == Wrapping::Base64
            || (wrapping == Wrapping::Detect && !json_as_is && !form_data.starts_with(GZIP_MAGIC))
        {
            // A `+` of base64 sent unescaped in a form arrives as a space.
            form_data.iter_mut().filter(|b| **b == b' ').for_each(|b| *b = b'+');
            data = unbase64_into(form_data, unbase64)?;
        } else {
            data = form_data;
        }
    } else if wrapping == Wrapping::Base64 {
        data = unbase64_into(data, unbase64)?;
    }
    if data.starts_with(GZIP_MAGIC) {
        inflated.clear();
        body::gunzip(data, capture.max_decompressed, inflated)?;
        data = inflated;
    }
    Ok(data)
}

/// `data` out of base64 into `out`.
fn unbase64_into<'a>(data: &[u8], out: &'a mut Vec<u8>) -> Result<&'a [u8], HttpError> {
    super::unbase64(data, out).map_err(|_| HttpError::BadRequest("data is neither JSON nor base64"))?;
    Ok(out)
}

/// The envelope's part of every event.
#[derive(Default, Clone, Copy)]
struct Envelope<'a> {
    key: Option<&'a [u8]>,
    sent_at: Option<Text<'a>>,
}

fn events(
    json: &[u8],
    elements: &mut Vec<(u32, u32)>,
    query_sent_at: Option<Text<'_>>,
    gate: KeyGate<'_>,
    emit: &mut Emitter<'_>,
) -> Result<(), HttpError> {
    let mut envelope = Envelope { key: None, sent_at: query_sent_at };
    match json.first() {
        Some(b'{') => {
            // The events of an envelope are split in the scan that reads it: its api_key and sent_at may come
            // after them.
            let mut batch = None;
            let mut members = Members::of(json);
            while let Some(k) = members.next_key() {
                match &*key(k) {
                    b"batch" => batch = Some(members.array_elements(elements)),
                    b"api_key" | b"token" => envelope.key = envelope.key.or(Some(members.value())),
                    b"sent_at" => envelope.sent_at = Text::of(members.value()).or(envelope.sent_at),
                    _ => _ = members.value(),
                }
            }
            match batch {
                Some(batch) if batch.starts_with(b"[") => {}
                Some(_) => return Err(HttpError::BadRequest("expected \"batch\" to be an array of events")),
                // A single event: the members read were its own.
                None => return event(json, Envelope { key: None, ..envelope }, gate, emit),
            }
            for &(start, end) in elements.iter() {
                event(&json[start as usize..end as usize], envelope, gate, emit)?;
            }
            Ok(())
        }
        Some(b'[') => {
            let mut result = Ok(());
            json::for_each_array_element(json, |e| {
                if result.is_ok() {
                    result = event(e, envelope, gate, emit);
                }
            });
            result
        }
        _ => Err(HttpError::BadRequest("expected a PostHog event, an array of events or {\"batch\":[…]}")),
    }
}

/// One event: checked, then one record.
fn event(event: &[u8], envelope: Envelope<'_>, gate: KeyGate<'_>, emit: &mut Emitter<'_>) -> Result<(), HttpError> {
    if !event.starts_with(b"{") {
        return Err(HttpError::BadRequest("a PostHog event must be a JSON object"));
    }
    let mut f = EventFields::default();
    let (mut own_key, mut properties, mut sent_at) = (None, None, None);
    for (k, value) in Members::of(event) {
        match &*key(k) {
            b"uuid" => f.event_id = Text::of(value),
            b"event" => f.event_name = Text::of(value).filter(|_| value.starts_with(b"\"")),
            b"distinct_id" => f.user_id = Text::of(value),
            b"timestamp" => f.client_ts = Text::of(value),
            b"sent_at" => sent_at = Text::of(value),
            b"api_key" | b"token" => own_key = own_key.or(Some(value)),
            b"properties" if value.starts_with(b"{") => properties = Some(value),
            _ => {}
        }
    }
    let Some(name) = f.event_name else {
        return Err(HttpError::BadRequest("a PostHog event needs its name in \"event\""));
    };
    let mut token = None;
    for (k, value) in properties.map(Members::of).into_iter().flatten() {
        match &*key(k) {
            b"distinct_id" | b"$distinct_id" => f.user_id = f.user_id.or(Text::of(value)),
            b"$device_id" => f.anonymous_id = Text::of(value).or(f.anonymous_id),
            b"$anon_distinct_id" => f.anonymous_id = f.anonymous_id.or(Text::of(value)),
            b"token" => token = Some(value),
            _ => {}
        }
    }
    let found = envelope.key.or(own_key).or(token).and_then(text);
    gate.admit(found.as_deref())?;
    f.event_type = Some(Text::Static(kind(name)));
    f.sent_at = envelope.sent_at.or(sent_at);
    // An event without a key of its own (posthog-python and posthog-node put it in the envelope) is copied as it
    // stands.
    let edited = own_key.is_some() || token.is_some();
    let planned = match name {
        Text::Literal(literal) => text(literal),
        _ => None,
    };
    emit.event_planned(f, planned.as_deref(), properties, |out| {
        if !edited {
            return out.extend_from_slice(event);
        }
        let edit = |k: &[u8], _: &[u8]| match &*key(k) {
            b"api_key" | b"token" => Edit::Drop,
            b"properties" => Edit::Without(&["token"]),
            _ => Edit::Keep,
        };
        write_object(out, event, edit, &[]);
    });
    Ok(())
}

/// The kind of call an event is, in the words every protocol's records share.
fn kind(name: Text<'_>) -> &'static str {
    let Text::Literal(literal) = name else {
        return "track";
    };
    match &literal[1..literal.len() - 1] {
        b"$pageview" => "page",
        b"$screen" => "screen",
        b"$identify" | b"$set" => "identify",
        b"$create_alias" => "alias",
        b"$groupidentify" => "group",
        _ => "track",
    }
}
