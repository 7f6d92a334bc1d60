//! plutos's own `/e` (and Plutos's before it): a GET's or HEAD's query is one event (`raw_data` the query's
//! keys and values, decoded); a POST's body is one JSON object, a JSON array of events, an NDJSON batch, or a
//! form, by its Content-Type. Its events bring no fields of their own: `event_id` is the request id.

use super::{Intake, Scratch};
use crate::event::body::{append_body_events, body_kind};
use crate::event::query::append_query_object;
use crate::event::record::Emitter;
use crate::http::{HttpError, Method};

/// A POST's body must be of a type this reads (415 otherwise), before anything of it is.
pub fn check(method: Method, content_type: Option<&[u8]>) -> Result<(), HttpError> {
    match method {
        Method::Post => body_kind(content_type).map(drop),
        _ => Ok(()),
    }
}

/// The events of one request.
pub fn ingest(intake: &Intake<'_>, emit: &mut Emitter<'_>, scratch: &mut Scratch) -> Result<(), HttpError> {
    match intake.method {
        Method::Post => {
            let kind = body_kind(intake.content_type)?;
            append_body_events(kind, intake.body, emit, &mut scratch.json, &mut scratch.query)
        }
        _ => emit.plain(|out| append_query_object(out, intake.query, &mut scratch.query).map_err(HttpError::from)),
    }
}
