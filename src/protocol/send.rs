//! plutos's own gRPC service, `plutos.v1.Collector/Send` (`proto/plutos/v1/collector.proto`): a batch of events,
//! each one record with protocol `plutos`. An event with only `json` is stored as a POST to `/e` stores that
//! object (validated the same way, when it is self-describing); one with typed fields has them in the record's
//! fields of the same names, its data from `json` or else from `properties` (typed values as JSON).

use prost::Message;

use super::{Intake, Scratch, minified_json, otlp};
use crate::event::object::Text;
use crate::event::record::{Emitter, EventFields};
use crate::grpc;
use crate::grpc::proto::plutos::v1::SendRequest;
use crate::http::HttpError;

pub fn ingest(intake: &Intake<'_>, emit: &mut Emitter<'_>, scratch: &mut Scratch) -> Result<(), HttpError> {
    let message = grpc::message(intake.body, intake.grpc_encoding, intake.max_decompressed, &mut scratch.decoded)?;
    let request = SendRequest::decode(message).map_err(|_| HttpError::BadRequest("not a plutos.v1.SendRequest"))?;
    let (raw, time) = (&mut scratch.json, &mut scratch.more);
    for event in &request.events {
        if event.json.is_empty() {
            raw.clear();
            otlp::object(raw, &event.properties);
        } else {
            minified_json(event.json.as_bytes(), raw)?;
            if raw.first() != Some(&b'{') {
                return Err(HttpError::BadRequest("an event's json is one JSON object"));
            }
        }
        fn text(s: &str) -> Option<Text<'_>> {
            (!s.is_empty()).then_some(Text::Plain(s))
        }
        time.clear();
        if event.time_unix_nano != 0 {
            otlp::rfc3339_nanos(time, event.time_unix_nano);
        }
        let fields = EventFields {
            event_id: text(&event.event_id),
            event_type: text(&event.event_type),
            event_name: text(&event.event_name),
            user_id: text(&event.user_id),
            anonymous_id: text(&event.anonymous_id),
            client_ts: std::str::from_utf8(time).ok().and_then(text),
            ..EventFields::default()
        };
        let typed = [fields.event_id, fields.event_type, fields.event_name, fields.user_id, fields.anonymous_id];
        if typed.iter().all(Option::is_none) && fields.client_ts.is_none() && !event.json.is_empty() {
            emit.record(raw);
        } else {
            emit.event(&fields, |out| out.extend_from_slice(raw));
        }
    }
    Ok(())
}
