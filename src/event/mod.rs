//! Events: what the bytes of an accepted request become. A query or form is decoded into a JSON object
//! (`query`), a POST body is undone (Content-Encoding) and read as JSON, NDJSON or a form (`body`, with `json`
//! for escaping, checking and re-emitting JSON text), and each event is wrapped as one record line with its time
//! (`clock`), UUIDv7 (`ids`) and request fields (`record`, with the client's address from `client`). Nothing
//! here does I/O.

pub mod body;
pub mod client;
pub mod clock;
pub mod ids;
pub mod json;
pub mod object;
pub mod query;
pub mod record;
pub mod timestamp;
pub mod visitor;
