//! plutos's own gRPC service, `plutos.v1.Collector/Send` (`proto/plutos/v1/collector.proto`): a batch of events,
//! each one record with protocol `plutos`. An event with only `json` is stored as a POST to `/e` stores that
//! object (validated the same way, when it is self-describing); one with typed fields has them in the record's
//! fields of the same names, its data from `json` or else from `properties` (typed values as JSON). The message
//! is read from its Protobuf bytes as OTLP's are (`otlp/wire.rs`), nothing decoded into owned types.

use super::otlp::wire::{self, Value};
use super::{Intake, Scratch, minified_json, otlp};
use crate::event::object::Text;
use crate::event::record::{Emitter, EventFields};
use crate::grpc;
use crate::http::HttpError;

const INVALID: HttpError = HttpError::BadRequest("not a plutos.v1.SendRequest");

/// An event's fields as its message has them (the last of each).
#[derive(Default)]
struct Event<'a> {
    json: &'a [u8],
    typed: [&'a str; 5],
    time_unix_nano: u64,
}

pub fn ingest(intake: &Intake<'_>, emit: &mut Emitter<'_>, scratch: &mut Scratch) -> Result<(), HttpError> {
    let message = grpc::message(intake.body, intake.grpc_encoding, intake.max_decompressed, &mut scratch.decoded)?;
    let (raw, time) = (&mut scratch.json, &mut scratch.more);
    for bytes in wire::each(message, 1) {
        let bytes = bytes.map_err(|_| INVALID)?;
        let mut event = Event::default();
        for field in wire::fields(bytes) {
            match field.map_err(|_| INVALID)? {
                (1, Value::Bytes(json)) => event.json = json,
                (2, Value::Bytes(_)) => {}
                // event_id, event_type, event_name, user_id, anonymous_id
                (n @ 3..=7, Value::Bytes(text)) => {
                    event.typed[n as usize - 3] = wire::text(text).map_err(|_| INVALID)?
                }
                (8, Value::Fixed64(t)) => event.time_unix_nano = t,
                (1..=8, _) => return Err(INVALID),
                _ => {}
            }
        }
        if event.json.is_empty() {
            raw.clear();
            otlp::properties(raw, bytes, 2).map_err(|_| INVALID)?;
        } else {
            minified_json(event.json, raw)?;
            if raw.first() != Some(&b'{') {
                return Err(HttpError::BadRequest("an event's json is one JSON object"));
            }
        }
        time.clear();
        if event.time_unix_nano != 0 {
            otlp::rfc3339_nanos(time, event.time_unix_nano);
        }
        let [event_id, event_type, event_name, user_id, anonymous_id] =
            event.typed.map(|s| (!s.is_empty()).then_some(Text::Plain(s)));
        let fields = EventFields {
            event_id,
            event_type,
            event_name,
            user_id,
            anonymous_id,
            client_ts: std::str::from_utf8(time).ok().filter(|t| !t.is_empty()).map(Text::Plain),
            ..EventFields::default()
        };
        if event.typed.iter().all(|s| s.is_empty()) && fields.client_ts.is_none() && !event.json.is_empty() {
            emit.record(raw);
        } else {
            emit.event(&fields, |out| out.extend_from_slice(raw));
        }
    }
    Ok(())
}
