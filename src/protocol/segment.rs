//! Segment's HTTP tracking API, which Segment's SDKs and RudderStack's speak: `POST /v1/batch` (and `/v1/import`,
//! analytics.js's `/v1/b`) carries `{"batch":[message, …],"sentAt":…,"context":…,"integrations":…}`; each of
//! `/v1/{track,identify,page,screen,group,alias}` and analytics.js's one-letter paths (`/v1/t`, …) carries one
//! message, whose type the path names when the message does not. analytics.js sends `text/plain`, read as JSON.
//!
//! Each message is one event. Its record's `raw_data` is the message without its `writeKey`, with the batch's
//! `context` and `integrations` merged in (the message's own values win). The key is the HTTP Basic user (the
//! SDKs' `writeKey:`), else the message's or the batch's `writeKey`. Segment's limits hold: 32 KB a message,
//! 500 KB a batch; over them the answer is 413 (Segment says 400; both make its SDKs drop the batch rather than
//! retry it, and 413 says why).

use super::{Scratch, minified_json};
use crate::event::object::{Edit, Members, Text, key, text, write_object};
use crate::event::record::{Emitter, EventFields};
use crate::http::HttpError;
use crate::http::write_key::KeyGate;

/// The largest message, as its minified JSON (Segment's documented limit).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// The largest request body, once its Content-Encoding is undone (Segment's documented limit).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;

/// The body of a success, as Segment answers.
pub const ACCEPTED: &[u8] = br#"{"success":true}"#;

/// What a batch gives each of its messages.
#[derive(Default)]
struct Batch<'a> {
    sent_at: Option<&'a [u8]>,
    context: Option<&'a [u8]>,
    integrations: Option<&'a [u8]>,
    write_key: Option<&'a [u8]>,
}

/// The events of one request: a batch (`implied_type` `None`) or one message of that type.
pub fn ingest(
    implied_type: Option<&'static str>,
    body: &[u8],
    gate: KeyGate<'_>,
    emit: &mut Emitter<'_>,
    scratch: &mut Scratch,
) -> Result<(), HttpError> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(HttpError::PayloadTooLarge("Segment batch over 500 KB"));
    }
    let Scratch { json, elements, .. } = scratch;
    minified_json(body, json)?;
    match implied_type {
        None => batch(json, elements, gate, emit),
        Some(kind) => message(json, &Batch::default(), Some(kind), gate, emit),
    }
}

fn batch(
    envelope: &[u8],
    elements: &mut Vec<(u32, u32)>,
    gate: KeyGate<'_>,
    emit: &mut Emitter<'_>,
) -> Result<(), HttpError> {
    let mut batch = Batch::default();
    let mut messages = None;
    let mut members = Members::of(envelope);
    // The messages are split in the scan that reads the envelope: the batch's other members (sentAt, writeKey,
    // context) may come after it, and every message needs them.
    while let Some(k) = members.next_key() {
        match &*key(k) {
            b"batch" => messages = Some(members.array_elements(elements)),
            b"sentAt" => batch.sent_at = Some(members.value()),
            b"context" => batch.context = Some(members.value()).filter(|v| v.starts_with(b"{")),
            b"integrations" => batch.integrations = Some(members.value()).filter(|v| v.starts_with(b"{")),
            b"writeKey" => batch.write_key = Some(members.value()),
            _ => _ = members.value(),
        }
    }
    if !messages.is_some_and(|m| m.starts_with(b"[")) {
        return Err(HttpError::BadRequest("expected a Segment batch: {\"batch\":[…]}"));
    }
    for &(start, end) in elements.iter() {
        message(&envelope[start as usize..end as usize], &batch, None, gate, emit)?;
    }
    Ok(())
}

/// One message: checked, then one record.
fn message(
    message: &[u8],
    batch: &Batch<'_>,
    implied_type: Option<&'static str>,
    gate: KeyGate<'_>,
    emit: &mut Emitter<'_>,
) -> Result<(), HttpError> {
    if !message.starts_with(b"{") {
        return Err(HttpError::BadRequest("a Segment message must be a JSON object"));
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(HttpError::PayloadTooLarge("Segment message over 32 KB"));
    }
    let mut f = EventFields::default();
    let (mut kind, mut event, mut name, mut original, mut sent_at, mut write_key) =
        (None, None, None, None, None, None);
    let (mut has_context, mut has_integrations, mut properties) = (false, false, None);
    for (k, value) in Members::of(message) {
        match &*key(k) {
            b"messageId" => f.event_id = Text::of(value),
            b"type" => kind = Some(value),
            b"event" => event = Text::of(value),
            b"name" => name = Text::of(value),
            b"userId" => f.user_id = Text::of(value),
            b"anonymousId" => f.anonymous_id = Text::of(value),
            b"timestamp" => f.client_ts = Text::of(value),
            b"originalTimestamp" => original = Text::of(value),
            b"sentAt" => sent_at = Some(value),
            b"writeKey" => write_key = Some(value),
            b"context" => has_context = true,
            b"integrations" => has_integrations = true,
            b"properties" if value.starts_with(b"{") => properties = Some(value),
            _ => {}
        }
    }
    let write_key_text = write_key.or(batch.write_key).and_then(text);
    gate.admit(write_key_text.as_deref())?;
    let kind_text = kind.and_then(text);
    let kind_name = kind_text.as_deref().or(implied_type);
    f.event_type = kind.and_then(Text::of).or(implied_type.map(Text::Static));
    f.event_name = match kind_name {
        Some("track") => event,
        Some("page" | "screen") => name,
        _ => None,
    };
    f.client_ts = f.client_ts.or(original);
    f.sent_at = sent_at.or(batch.sent_at).and_then(Text::of);
    let mut extra: [(&str, &[u8]); 2] = [("", b""), ("", b"")];
    let mut extras = 0;
    for (name, own, defaults) in
        [("context", has_context, batch.context), ("integrations", has_integrations, batch.integrations)]
    {
        if let (false, Some(defaults)) = (own, defaults) {
            extra[extras] = (name, defaults);
            extras += 1;
        }
    }
    // Most messages need no edit (their SDK sent the key in the head or the batch, and no batch context):
    // they are copied as they are.
    let edited = write_key.is_some() || batch.context.is_some() || batch.integrations.is_some();
    // A `track` event is what a tracking plan names.
    let planned = match kind_name {
        Some("track") => event.and_then(|e| match e {
            Text::Literal(literal) => text(literal),
            _ => None,
        }),
        _ => None,
    };
    emit.event_planned(f, planned.as_deref(), properties, |out| {
        if !edited {
            return out.extend_from_slice(message);
        }
        let edit = |k: &[u8], _: &[u8]| match &*key(k) {
            b"writeKey" => Edit::Drop,
            b"context" => batch.context.map_or(Edit::Keep, Edit::MergeUnder),
            b"integrations" => batch.integrations.map_or(Edit::Keep, Edit::MergeUnder),
            _ => Edit::Keep,
        };
        write_object(out, message, edit, &extra[..extras]);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::event::clock::Clock;
    use crate::event::ids::RequestIds;
    use crate::event::record::{Protocol, RecordBuilder, RequestMeta, Transport};
    use crate::http::Method;
    use crate::http::write_key::WriteKeys;

    /// The records of one request to a Segment path, or its error (and then nothing written).
    fn records(implied: Option<&'static str>, body: &str, keys: &[&str]) -> Result<Vec<Value>, HttpError> {
        let mut builder = RecordBuilder::default();
        let meta = RequestMeta {
            ip: "127.0.0.1",
            user_agent: b"analytics-python/2.4.0",
            method: Method::Post,
            path: b"/v1/batch",
            transport: Transport::Http,
            headers: b"",
            enrichment: b"",
            protocol: Protocol::Segment,
            retry_count: None,
            visitor_id: None,
        };
        builder.start_request(&meta, &Clock::new());
        let (mut out, mut ids) = (Vec::new(), RequestIds::new(0, 0));
        let keys = WriteKeys::new(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        let gate = if keys.required() { KeyGate::BodyKeys(&keys) } else { KeyGate::Open };
        let mut emit = Emitter::new(&mut out, &builder, &mut ids);
        ingest(implied, body.as_bytes(), gate, &mut emit, &mut Scratch::default())?;
        Ok(String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect())
    }

    #[test]
    fn a_batch_of_the_python_sdk() {
        let body = r#"{"batch": [
            {"integrations": {}, "anonymousId": null, "properties": {"total": 12.5}, "timestamp": "2026-12-02T14:37:04.171+00:00",
             "context": {"ip": "1.2.3.4", "library": {"name": "analytics-python", "version": "2.4.0"}}, "userId": "user-1",
             "type": "track", "event": "Order Completed", "messageId": "5756802d-b09a-4dbc-ba08-70989925e4a0"},
            {"integrations": {}, "anonymousId": "anon-1", "timestamp": "2026-12-02T14:37:04.171+00:00", "context": {},
             "type": "identify", "userId": 42, "traits": {"email": "a@b.c"}, "messageId": "f510d375"},
            {"type": "page", "name": "Install", "category": "Docs", "userId": "user-1", "messageId": "604b8b26",
             "originalTimestamp": "2026-12-02T14:37:04Z"}
        ], "sentAt": "2026-12-02T14:37:04.671623+00:00", "writeKey": "seg-key"}"#;
        let records = records(None, body, &["seg-key"]).unwrap();
        assert_eq!(records.len(), 3);
        let track = &records[0];
        assert_eq!(track["protocol"], "segment");
        assert_eq!(track["event_id"], "5756802d-b09a-4dbc-ba08-70989925e4a0");
        assert_eq!((&track["event_type"], &track["event_name"]), (&json!("track"), &json!("Order Completed")));
        assert_eq!((&track["user_id"], &track["anonymous_id"]), (&json!("user-1"), &Value::Null));
        assert_eq!(track["client_ts"], "2026-12-02T14:37:04.171+00:00");
        assert_eq!(track["sent_at"], "2026-12-02T14:37:04.671623+00:00", "the batch's sentAt");
        assert_eq!(track["raw_data"]["properties"], json!({"total": 12.5}));
        assert!(track["raw_data"].get("writeKey").is_none());
        let identify = &records[1];
        assert_eq!((&identify["event_type"], &identify["event_name"]), (&json!("identify"), &Value::Null));
        assert_eq!((&identify["user_id"], &identify["anonymous_id"]), (&json!("42"), &json!("anon-1")));
        let page = &records[2];
        assert_eq!((&page["event_type"], &page["event_name"]), (&json!("page"), &json!("Install")));
        assert_eq!(page["client_ts"], "2026-12-02T14:37:04Z", "originalTimestamp when there is no timestamp");
        assert!(!serde_json::to_string(&records).unwrap().contains("seg-key"), "the key is in no record");
    }

    #[test]
    fn batch_context_and_integrations_fill_in_under_each_messages_own() {
        let body = r#"{"batch":[
            {"type":"track","event":"a","context":{"ip":"own","app":{"v":2}},"integrations":{"All":false}},
            {"type":"track","event":"b"}],
            "context":{"ip":"batch","library":{"name":"x"}},"integrations":{"All":true,"Mixpanel":false}}"#;
        let records = records(None, body, &[]).unwrap();
        assert_eq!(records[0]["raw_data"]["context"], json!({"ip": "own", "app": {"v": 2}, "library": {"name": "x"}}));
        assert_eq!(records[0]["raw_data"]["integrations"], json!({"All": false, "Mixpanel": false}));
        assert_eq!(records[1]["raw_data"]["context"], json!({"ip": "batch", "library": {"name": "x"}}));
        assert_eq!(records[1]["raw_data"]["integrations"], json!({"All": true, "Mixpanel": false}));
    }

    #[test]
    fn a_single_message_path_names_the_type_when_the_message_does_not() {
        let track = records(Some("track"), r#"{"event":"Clicked","anonymousId":"a-1","writeKey":"k"}"#, &["k"]);
        let record = &track.unwrap()[0];
        assert_eq!((&record["event_type"], &record["event_name"]), (&json!("track"), &json!("Clicked")));
        assert_eq!(record["raw_data"], json!({"event": "Clicked", "anonymousId": "a-1"}));
        assert_eq!(record["event_id"], record["request_id"], "no messageId: the request id");
        let page = records(Some("page"), r#"{"type":"screen","name":"Home"}"#, &[]).unwrap();
        assert_eq!((&page[0]["event_type"], &page[0]["event_name"]), (&json!("screen"), &json!("Home")));
    }

    #[test]
    fn broken_envelopes_keys_and_sizes_are_refused_whole() {
        let status = |implied, body: &str, keys: &[&str]| records(implied, body, keys).unwrap_err().status().0;
        assert_eq!(status(None, r#"{"batch":[{"type":"track"},"#, &[]), 400);
        assert_eq!(status(None, r#"[{"type":"track"}]"#, &[]), 400);
        assert_eq!(status(None, r#"{"batch":{"type":"track"}}"#, &[]), 400);
        assert_eq!(status(None, r#"{"messages":[]}"#, &[]), 400);
        assert_eq!(status(None, r#"{"batch":[{"type":"track"},7]}"#, &[]), 400, "a message that is not an object");
        assert_eq!(status(Some("track"), r#""track""#, &[]), 400);
        // Keys in the wrong place: none, an unknown one, one only inside properties.
        assert_eq!(status(None, r#"{"batch":[{"type":"track"}]}"#, &["k"]), 401);
        assert_eq!(status(None, r#"{"batch":[{"type":"track"}],"writeKey":"x"}"#, &["k"]), 401);
        assert_eq!(status(None, r#"{"batch":[{"properties":{"writeKey":"k"}}]}"#, &["k"]), 401);
        assert_eq!(status(None, r#"{"batch":[{"writeKey":"k"},{"writeKey":"x"}]}"#, &["k"]), 401, "every message");
        assert!(records(None, r#"{"batch":[{"writeKey":"k"},{}],"writeKey":"k"}"#, &["k"]).is_ok());
        // 32 KB a message, 500 KB a batch: at the limit and one over.
        let message = |size: usize| {
            let bare = r#"{"p":""}"#.len();
            format!(r#"{{"p":"{}"}}"#, "x".repeat(size - bare))
        };
        assert_eq!(message(MAX_MESSAGE_BYTES).len(), MAX_MESSAGE_BYTES);
        assert!(records(Some("track"), &message(MAX_MESSAGE_BYTES), &[]).is_ok());
        assert_eq!(status(Some("track"), &message(MAX_MESSAGE_BYTES + 1), &[]), 413);
        // A batch of 1000-byte messages padded to exactly `size` bytes, and how many messages it holds.
        let batch = |size: usize| {
            let one = message(1000);
            let mut body = String::from(r#"{"batch":["#);
            let mut messages = 1;
            while body.len() + one.len() + 100 < size {
                body.push_str(&one);
                body.push(',');
                messages += 1;
            }
            body.push_str(r#"{}],"p":""#);
            body.push_str(&"y".repeat(size - body.len() - 2));
            body.push_str("\"}");
            assert_eq!(body.len(), size);
            (body, messages)
        };
        let (at_limit, messages) = batch(MAX_BATCH_BYTES);
        assert_eq!(records(None, &at_limit, &[]).unwrap().len(), messages);
        assert_eq!(status(None, &batch(MAX_BATCH_BYTES + 1).0, &[]), 413);
    }

    #[test]
    fn times_give_a_corrected_timestamp() {
        let body = r#"{"batch":[{"timestamp":"2026-12-02T10:00:00Z"},{"timestamp":"garbage"}],
                      "sentAt":"2026-12-02T10:00:03Z"}"#;
        let records = records(None, body, &[]).unwrap();
        let written = crate::event::timestamp::parse(records[0]["written_at"].as_str().unwrap().as_bytes()).unwrap();
        let corrected = crate::event::timestamp::parse(records[0]["timestamp"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(written - corrected, 3_000_000, "3 s before it was received");
        assert_eq!(records[1]["timestamp"], records[1]["written_at"], "an unreadable time: received");
        assert_eq!(records[1]["client_ts"], "garbage", "raw values kept");
    }
}
