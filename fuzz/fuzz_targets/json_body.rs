//! (c) JSON / NDJSON / form bodies → record lines: whatever the body, either an error with nothing emitted, or
//! one record per event, each a JSON object serde_json's default reader accepts, ending in a newline.

#![no_main]

#[path = "support/records.rs"]
mod support;

use libfuzzer_sys::fuzz_target;
use plutos::event::body::{BodyKind, append_body_events};
use plutos::event::clock::Clock;
use plutos::event::ids::RequestIds;
use plutos::event::query::QueryScratch;
use plutos::event::record::{Emitter, Protocol, RecordBuilder, RequestMeta, Transport};
use plutos::http::Method;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let kind = match kind % 3 {
        0 => BodyKind::Json,
        1 => BodyKind::Ndjson,
        _ => BodyKind::Form,
    };
    let clock = Clock::new();
    let mut builder = RecordBuilder::default();
    let meta = RequestMeta {
        ip: "203.0.113.7",
        user_agent: b"fuzz",
        method: Method::Post,
        path: b"/e",
        transport: Transport::Http,
        headers: b"",
        enrichment: b"",
        protocol: Protocol::Plutos,
        retry_count: None,
        visitor_id: None,
    };
    builder.start_request(&meta, &clock);
    let (mut ids, mut minified, mut query) = (RequestIds::new(0, 1), Vec::new(), QueryScratch::default());
    let mut out = b"previous\n".to_vec();
    let mut emit = Emitter::new(&mut out, &builder, &mut ids);
    let result = append_body_events(kind, body, &mut emit, &mut minified, &mut query);
    let events = emit.events();
    // Whether the body was taken or refused part-way (the worker then rolls the request back), every record
    // written is one whole line that serde_json reads.
    support::whole_records(&out, events);
    let _ = result;
});
