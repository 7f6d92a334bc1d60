//! A worker's reading of self-describing events (`{"schema":"iglu:…","data":…}`): the event's schema for its
//! record's `schema` field, whether or not anything is validated, and — with a registry and `VALIDATION` on —
//! what failed against the registry in service for its `validation` field.
//!
//! The registry is taken at the start of each loop iteration (`refresh`), so a reload never waits on a worker
//! and a worker never waits on a reload. Only the data is parsed into a tree (the validator needs one); the
//! envelope is read where it lies. Counts go to the registry's per-worker counters: a client's URI is never a
//! label, only a schema the registry holds.

use crate::event::json::escape_lossy_into;
use crate::event::object::{Members, key, text};
use crate::reload::{Follower, Published};
use crate::schema::{Registry, SchemaKey};

/// What a failed validation does (`VALIDATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Validation {
    /// Nothing is validated.
    Off,
    /// The event is kept, with what failed in its record's `validation`.
    Flag,
}

/// At most this many failures are reported per event, whatever its number of parts (the first ones).
const MAX_FAILURES: usize = 10;
/// A failure's message is cut at this many bytes (messages quote the instance, which may be large).
const MAX_MESSAGE_BYTES: usize = 256;

/// What the check of one event found: its schema (a JSON string literal) and, when it failed, the JSON array of
/// failures.
pub struct Checked<'a> {
    pub schema: &'a [u8],
    pub failures: Option<&'a [u8]>,
}

pub struct Checker {
    /// `None`: events are not validated (no `SCHEMAS_DIR`, or `VALIDATION=off`); their schema is still read.
    registry: Option<Follower<Registry>>,
    worker: usize,
    /// The failures of the event being checked, comma-separated, and how many.
    failures: Vec<u8>,
    reported: usize,
    /// The same as a JSON array, for its record.
    rendered: Vec<u8>,
    /// Events whose schema the registry does not hold (or whose URI is not one), since the last `take_unknown`.
    unknown: u64,
}

impl Checker {
    /// `published`: the registry to validate against, if events are validated.
    pub fn new(published: Option<&Published<Registry>>, worker: usize) -> Checker {
        let registry = published.map(Published::follow);
        Checker { registry, worker, failures: Vec::new(), reported: 0, rendered: Vec::new(), unknown: 0 }
    }

    /// Takes the registry a reload published, if one did.
    pub fn refresh(&mut self, published: &Published<Registry>) {
        if let Some(registry) = &mut self.registry {
            registry.refresh(published);
        }
    }

    /// Unknown schemas counted since the last call.
    pub fn take_unknown(&mut self) -> u64 {
        std::mem::take(&mut self.unknown)
    }

    /// Reads `event` (a minified, validated JSON value) as a self-describing event and validates it if events
    /// are validated: its schema and what failed. `None` for any other event.
    pub fn check<'e>(&'e mut self, event: &'e [u8]) -> Option<Checked<'e>> {
        let (schema, data) = self_describing(event)?;
        self.begin();
        self.validate_data(schema, data);
        Some(Checked { schema, failures: self.finish() })
    }

    /// Starts the checks of one event (which may hold several self-describing parts: Snowplow's).
    pub fn begin(&mut self) {
        self.failures.clear();
        self.reported = 0;
    }

    /// Checks one self-describing part of the event begun: returns its schema (a JSON string literal), or
    /// `None` when `json` is not self-describing — itself a failure when events are validated.
    pub fn validate_part<'e>(&mut self, json: &'e [u8], what: &str) -> Option<&'e [u8]> {
        let Some((schema, data)) = self_describing(json) else {
            if self.registry.is_some() {
                let message = format!("{what} is not a self-describing JSON ({{\"schema\":\"iglu:…\",\"data\":…}})");
                self.fail("", "INVALID_DATA_PAYLOAD", "", "", &message);
            }
            return None;
        };
        self.validate_data(schema, data);
        Some(schema)
    }

    /// What failed in the event begun, as a JSON array; `None` when nothing did.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.failures.is_empty() {
            return None;
        }
        self.rendered.clear();
        self.rendered.push(b'[');
        self.rendered.extend_from_slice(&self.failures);
        self.rendered.push(b']');
        Some(&self.rendered)
    }

    fn validate_data(&mut self, schema: &[u8], data: &[u8]) {
        if self.registry.is_some() {
            let uri = text(schema).unwrap_or_default();
            self.validate(&uri, data);
        }
    }

    /// Validates `data` against the schema `uri` names; what fails goes to `self.failures`.
    fn validate(&mut self, uri: &str, data: &[u8]) {
        let Some(registry) = &self.registry else {
            return;
        };
        let registry = &*registry.value;
        let Some(compiled) = registry.get_uri(uri) else {
            self.unknown += 1;
            // Not in the registry: parsed only now, to say whether it is an Iglu URI at all.
            let (error, message) = match SchemaKey::parse(uri) {
                Ok(_) => ("ResolutionError", "the registry holds no such schema".to_string()),
                Err(e @ crate::schema::KeyError::Uri) => ("INVALID_IGLUURI", e.to_string()),
                Err(e @ crate::schema::KeyError::Version) => ("INVALID_SCHEMAVER", e.to_string()),
            };
            return self.fail(uri, error, "", "", &message);
        };
        // The data passed the body's JSON check, so it parses; a number beyond f64 was refused there too.
        let Ok(instance) = serde_json::from_slice::<serde_json::Value>(data) else {
            return self.fail(uri, "ValidationError", "", "", "the data is not JSON");
        };
        // Most events are valid: the validator's yes/no path first, which builds no errors.
        let valid = compiled.validator.is_valid(&instance);
        registry.count(self.worker, compiled.index, valid);
        if valid {
            return;
        }
        let room = MAX_FAILURES.saturating_sub(self.reported);
        let mut errors = Vec::new();
        for error in compiled.validator.iter_errors(&instance).take(room) {
            errors.push((
                error.instance_path().as_str().to_string(),
                error.kind().keyword().to_string(),
                error.to_string(),
            ));
        }
        for (pointer, keyword, message) in errors {
            self.fail(uri, "ValidationError", &pointer, &keyword, &message);
        }
    }

    /// Reports one failure of the event begun, while there is room.
    fn fail(&mut self, uri: &str, error: &str, pointer: &str, keyword: &str, message: &str) {
        if self.reported < MAX_FAILURES {
            self.reported += 1;
            failure(&mut self.failures, uri, error, pointer, keyword, message);
        }
    }
}

/// Whether minified `json` may be a self-describing value: most events are not, and their first key says so
/// at once (a key spelt with escapes is not recognised).
#[inline]
pub fn may_be_self_describing(json: &[u8]) -> bool {
    json.starts_with(b"{\"schema\":\"iglu:") || json.starts_with(b"{\"data\":")
}

/// `json` (minified) as a self-describing value — an object of exactly a `schema` string naming an Iglu URI and a
/// `data` member, in either order: (the schema's JSON string literal, the data). `None` for anything else.
fn self_describing(json: &[u8]) -> Option<(&[u8], &[u8])> {
    if !may_be_self_describing(json) {
        return None;
    }
    let (mut schema, mut data) = (None, None);
    let mut members = Members::of(json);
    while let Some(k) = members.next_key() {
        match (&*key(k), schema, data) {
            (b"schema", None, _) => schema = Some(members.value()).filter(|v| v.starts_with(b"\"iglu:")),
            (b"data", _, None) => data = Some(members.value()),
            _ => return None,
        }
        // A `schema` that is no Iglu URI ends it at once.
        if schema.is_none() && data.is_none() {
            return None;
        }
    }
    Some((schema?, data?))
}

/// Appends one failure (a JSON object) to the comma-separated list in `out`.
fn failure(out: &mut Vec<u8>, uri: &str, error: &str, pointer: &str, keyword: &str, message: &str) {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"schema\":\"");
    escape_lossy_into(out, &uri.as_bytes()[..uri.len().min(crate::schema::key::MAX_URI_BYTES)]);
    out.extend_from_slice(b"\",\"error\":\"");
    out.extend_from_slice(error.as_bytes());
    out.extend_from_slice(b"\",\"pointer\":\"");
    escape_lossy_into(out, pointer.as_bytes());
    out.extend_from_slice(b"\",\"keyword\":\"");
    escape_lossy_into(out, keyword.as_bytes());
    out.extend_from_slice(b"\",\"message\":\"");
    let mut end = message.len().min(MAX_MESSAGE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    escape_lossy_into(out, &message.as_bytes()[..end]);
    out.extend_from_slice(b"\"}");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{Value, json};

    use super::*;

    const WEB_PAGE: &str = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0";

    fn registry() -> Published<Registry> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/iglu");
        Published::new(Registry::load(&dir, 1).unwrap())
    }

    /// (the schema literal, the failures as JSON) of `event`, or `None` when it is not self-describing.
    fn check(checker: &mut Checker, event: &Value) -> Option<(String, Value)> {
        let text = event.to_string();
        let checked = checker.check(text.as_bytes())?;
        let failures = checked.failures.map_or(Value::Null, |f| serde_json::from_slice(f).unwrap());
        Some((String::from_utf8(checked.schema.to_vec()).unwrap(), failures))
    }

    #[test]
    fn only_an_object_of_an_iglu_schema_and_data_is_self_describing() {
        let published = registry();
        let mut checker = Checker::new(Some(&published), 0);
        let id = "0d3d4a4a-3b3c-4e5f-9a6b-1c2d3e4f5a6b";
        let valid = check(&mut checker, &json!({"schema": WEB_PAGE, "data": {"id": id}})).unwrap();
        assert_eq!(valid, (format!("\"{WEB_PAGE}\""), Value::Null));
        let reversed = r#"{"data":{"id":"0d3d4a4a-3b3c-4e5f-9a6b-1c2d3e4f5a6b"},"schema":"iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"}"#;
        assert!(checker.check(reversed.as_bytes()).is_some_and(|c| c.failures.is_none()), "either order");
        for other in [
            json!({"schema": WEB_PAGE, "data": {"id": id}, "extra": 1}),
            json!({"schema": WEB_PAGE}),
            json!({"data": {}}),
            json!({"schema": "https://example.com/x.json", "data": {}}),
            json!({"schema": 1, "data": {}}),
            json!({"event": "x"}),
            json!([{"schema": WEB_PAGE, "data": {}}]),
        ] {
            assert!(check(&mut checker, &other).is_none(), "{other}");
        }
        assert_eq!(registry_counts(&published), (2, 0), "counted per schema");
    }

    fn registry_counts(published: &Published<Registry>) -> (u64, u64) {
        let registry = published.current();
        let index = registry.get(&SchemaKey::parse(WEB_PAGE).unwrap()).unwrap().index;
        registry.counts(index)
    }

    #[test]
    fn failures_name_the_schema_the_error_the_pointer_and_the_keyword() {
        let published = registry();
        let mut checker = Checker::new(Some(&published), 0);
        let (_, failures) = check(&mut checker, &json!({"schema": WEB_PAGE, "data": {"id": "not a uuid"}})).unwrap();
        assert_eq!(failures.as_array().unwrap().len(), 1, "{failures}");
        let failure = &failures[0];
        assert_eq!((&failure["schema"], &failure["error"]), (&json!(WEB_PAGE), &json!("ValidationError")));
        assert_eq!((&failure["pointer"], &failure["keyword"]), (&json!("/id"), &json!("pattern")));
        assert!(failure["message"].as_str().unwrap().contains("not a uuid"), "{failure}");
        assert_eq!(registry_counts(&published), (0, 1));

        let (_, unknown) =
            check(&mut checker, &json!({"schema": "iglu:com.acme/nothing/jsonschema/1-0-0", "data": {}})).unwrap();
        assert_eq!(unknown[0]["error"], "ResolutionError");
        for (uri, error) in [
            ("iglu:com.acme/../jsonschema/1-0-0", "INVALID_IGLUURI"),
            ("iglu:com.acme/x/jsonschema/1-0", "INVALID_SCHEMAVER"),
        ] {
            let (_, failures) = check(&mut checker, &json!({"schema": uri, "data": {}})).unwrap();
            assert_eq!(failures[0]["error"], error, "{uri}");
        }
        assert_eq!(checker.take_unknown(), 3);
        assert_eq!(checker.take_unknown(), 0);
    }

    #[test]
    fn failures_are_bounded_in_number_and_length() {
        let published = registry();
        let mut checker = Checker::new(Some(&published), 0);
        // web_page has one property; link_click's several: a long wrong value of each kind.
        let long = "x".repeat(100_000);
        let (_, failures) = check(&mut checker, &json!({"schema": WEB_PAGE, "data": {"id": long}})).unwrap();
        let message = failures[0]["message"].as_str().unwrap();
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{} bytes", message.len());
        let link = "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1";
        let many: serde_json::Map<String, Value> = ["elementId", "elementTarget", "targetUrl", "elementContent"]
            .iter()
            .map(|k| (k.to_string(), json!(7)))
            .collect();
        let (_, failures) = check(&mut checker, &json!({"schema": link, "data": many})).unwrap();
        assert!((2..=MAX_FAILURES).contains(&failures.as_array().unwrap().len()), "{failures}");
    }

    #[test]
    fn an_event_of_many_parts_reports_at_most_the_bound() {
        let published = registry();
        let mut checker = Checker::new(Some(&published), 0);
        checker.begin();
        let part = json!({"schema": WEB_PAGE, "data": {"id": "not a uuid"}}).to_string();
        for _ in 0..MAX_FAILURES + 5 {
            assert!(checker.validate_part(part.as_bytes(), "a context").is_some());
        }
        let failures: Value = serde_json::from_slice(checker.finish().unwrap()).unwrap();
        assert_eq!(failures.as_array().unwrap().len(), MAX_FAILURES);
        assert_eq!(registry_counts(&published), (0, MAX_FAILURES as u64 + 5), "every part is counted");
        checker.begin();
        assert!(checker.finish().is_none(), "the next event starts afresh");
    }

    #[test]
    fn without_validation_the_schema_is_still_read() {
        let mut checker = Checker::new(None, 0);
        let (schema, failures) =
            check(&mut checker, &json!({"schema": WEB_PAGE, "data": {"id": "not a uuid"}})).unwrap();
        assert_eq!((schema, failures), (format!("\"{WEB_PAGE}\""), Value::Null));
        assert_eq!(checker.take_unknown(), 0);
    }
}
