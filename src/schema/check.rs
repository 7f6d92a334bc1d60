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
use crate::schema::plan::Unplanned;
use crate::schema::{Compiled, Registry, SchemaKey};

/// What a failed validation does (`VALIDATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Validation {
    /// Nothing is validated.
    Off,
    /// The event is kept, with what failed in its record's `validation`.
    Flag,
    /// The event becomes a bad row (the bad stream) saying what failed.
    Reject,
}

/// One way data failed its schema: (JSONPath, keyword, message).
type Report = (String, String, String);

/// At most this many failures are reported per event, whatever its number of parts (the first ones).
const MAX_FAILURES: usize = 10;
/// A failure's message is cut at this many bytes (messages quote the instance, which may be large).
const MAX_MESSAGE_BYTES: usize = 256;
/// A part that is not self-describing is quoted whole up to this size, and as the string of its first bytes
/// beyond.
const MAX_QUOTED_BYTES: usize = 1024;
/// Where a resolution error says the schema was looked for.
const REPOSITORY: &str = "SCHEMAS_DIR";

/// What the check of one event found: its schema (a JSON string literal) and, when it failed, the JSON array of
/// failures.
pub struct Checked<'a> {
    pub schema: &'a [u8],
    pub failures: Option<&'a [u8]>,
}

pub struct Checker {
    /// `None`: events are not validated (no `SCHEMAS_DIR`, or `VALIDATION=off`); their schema is still read.
    registry: Option<Follower<Registry>>,
    rejects: bool,
    worker: usize,
    /// The time failures are stamped with (a JSON string literal): the records' `written_at`.
    now: Vec<u8>,
    /// The failures of the event being checked, comma-separated, and how many.
    failures: Vec<u8>,
    reported: usize,
    /// The same as a JSON array, for its record.
    rendered: Vec<u8>,
    /// A planned event's schema (a JSON string literal), for its record.
    schema: Vec<u8>,
    /// Events whose schema the registry does not hold (or whose URI is not one), since the last `take_unknown`.
    unknown: u64,
}

impl Checker {
    /// `published`: the registry to validate against, if events are validated, and what a failure does.
    pub fn new(published: Option<(&Published<Registry>, Validation)>, worker: usize) -> Checker {
        let rejects = published.is_some_and(|(_, mode)| mode == Validation::Reject);
        let registry = published.filter(|(_, mode)| *mode != Validation::Off).map(|(p, _)| p.follow());
        Checker {
            registry,
            rejects,
            worker,
            now: b"\"1970-01-01T00:00:00.000000Z\"".to_vec(),
            failures: Vec::new(),
            reported: 0,
            rendered: Vec::new(),
            schema: Vec::new(),
            unknown: 0,
        }
    }

    /// Whether an event that fails becomes a bad row (`VALIDATION=reject`).
    pub fn rejects(&self) -> bool {
        self.rejects
    }

    /// The time of the loop iteration, for the failures' timestamps.
    pub fn set_time(&mut self, clock: &crate::event::clock::Clock) {
        self.now.clear();
        self.now.push(b'"');
        clock.append_rfc3339_micros(&mut self.now);
        self.now.push(b'"');
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
        self.validate_data(event, schema, data);
        Some(Checked { schema, failures: self.finish() })
    }

    /// Starts the checks of one event (which may hold several self-describing parts: Snowplow's).
    pub fn begin(&mut self) {
        self.failures.clear();
        self.reported = 0;
    }

    /// Checks one self-describing part of the event begun: returns its schema (a JSON string literal), or
    /// `None` when `json` is not self-describing — itself a failure when events are validated.
    pub fn validate_part<'e>(&mut self, json: &'e [u8]) -> Option<&'e [u8]> {
        let Some((schema, data)) = self_describing(json) else {
            if self.registry.is_some() && self.room() {
                self.reported += 1;
                not_self_describing(&mut self.failures, json, "INVALID_DATA_PAYLOAD");
            }
            return None;
        };
        self.validate_data(json, schema, data);
        Some(schema)
    }

    /// What failed in the event begun, as a JSON array; `None` when nothing did.
    pub fn finish(&mut self) -> Option<&[u8]> {
        self.render().then_some(&self.rendered[..])
    }

    /// Renders what failed as a JSON array into `rendered`; false when nothing did.
    fn render(&mut self) -> bool {
        if self.failures.is_empty() {
            return false;
        }
        self.rendered.clear();
        self.rendered.push(b'[');
        self.rendered.extend_from_slice(&self.failures);
        self.rendered.push(b']');
        true
    }

    fn validate_data(&mut self, json: &[u8], schema: &[u8], data: &[u8]) {
        if self.registry.is_some() {
            let uri = text(schema).unwrap_or_default();
            self.validate(json, &uri, data);
        }
    }

    fn room(&self) -> bool {
        self.reported < MAX_FAILURES
    }

    /// Validates `data` (of the self-describing `json`) against the schema `uri` names; what fails goes to
    /// `self.failures`.
    fn validate(&mut self, json: &[u8], uri: &str, data: &[u8]) {
        let Some(registry) = &self.registry else {
            return;
        };
        let registry = &*registry.value;
        let Some(compiled) = registry.get_uri(uri) else {
            self.unknown += 1;
            if !self.room() {
                return;
            }
            self.reported += 1;
            // Not in the registry: parsed only now, to say whether it is an Iglu URI at all.
            return match SchemaKey::parse(uri) {
                Ok(_) => not_found(&mut self.failures, uri, &self.now),
                Err(crate::schema::KeyError::Uri) => not_self_describing(&mut self.failures, json, "INVALID_IGLUURI"),
                Err(crate::schema::KeyError::Version) => {
                    not_self_describing(&mut self.failures, json, "INVALID_SCHEMAVER")
                }
            };
        };
        let reports = validate_against(registry, compiled, self.worker, data, self.reported);
        invalid(&mut self.failures, &mut self.reported, uri, &reports);
    }

    /// Checks an event an SDK named (`name`) against the tracking plan: its `properties` (`{}` when it has none)
    /// against the planned schema, or the plan's rule for an unplanned event. `None` when there is no plan or
    /// the event is unplanned and allowed: nothing to say.
    pub fn check_planned(&mut self, name: &str, properties: Option<&[u8]>) -> Option<Verdict<'_>> {
        // Without a plan (most registries) nothing is taken.
        self.registry.as_ref()?.value.plan()?;
        let registry = self.registry.as_ref()?.value.clone();
        let plan = registry.plan()?;
        self.begin();
        let Some(planned) = plan.get(name) else {
            let reject = match plan.unplanned {
                Unplanned::Allow => return None,
                Unplanned::Flag => false,
                Unplanned::Reject => true,
            };
            self.reported += 1;
            unplanned(&mut self.failures, name);
            return Some(Verdict { schema: None, failures: self.finish(), reject });
        };
        let compiled = registry.at(planned.index);
        let reports = validate_against(&registry, compiled, self.worker, properties.unwrap_or(b"{}"), 0);
        let uri = text(&planned.literal).unwrap_or_default();
        invalid(&mut self.failures, &mut self.reported, &uri, &reports);
        self.schema.clear();
        self.schema.extend_from_slice(&planned.literal);
        let failed = self.render();
        let failures = failed.then_some(&self.rendered[..]);
        Some(Verdict { schema: Some(&self.schema), failures, reject: self.rejects })
    }
}

/// What the tracking plan says of a named event: the schema its properties were checked against (a JSON string
/// literal), what failed, and whether that makes it a bad row.
pub struct Verdict<'a> {
    pub schema: Option<&'a [u8]>,
    pub failures: Option<&'a [u8]>,
    pub reject: bool,
}

/// Validates `data` against `compiled` (of `registry`) and counts it for `worker`: the ways it failed, at most
/// what is left of the event's bound after `reported`.
fn validate_against(
    registry: &Registry,
    compiled: &Compiled,
    worker: usize,
    data: &[u8],
    reported: usize,
) -> Vec<Report> {
    // The data passed the body's JSON check, so it parses; a number beyond f64 was refused there too.
    let Ok(instance) = serde_json::from_slice::<serde_json::Value>(data) else {
        return vec![(String::from("$"), String::new(), "the data is not JSON".to_string())];
    };
    // Most events are valid: the validator's yes/no path first, which builds no errors.
    let valid = compiled.validator.is_valid(&instance);
    registry.count(worker, compiled.index, valid);
    if valid {
        return Vec::new();
    }
    compiled
        .validator
        .iter_errors(&instance)
        .take(MAX_FAILURES.saturating_sub(reported))
        .map(|e| (json_path(e.instance_path().as_str()), e.kind().keyword().to_string(), e.to_string()))
        .collect()
}

/// An event the tracking plan does not name: no schema says what it may hold.
fn unplanned(out: &mut Vec<u8>, name: &str) {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"json\":{\"event\":\"");
    escape_lossy_into(out, &name.as_bytes()[..name.len().min(MAX_QUOTED_BYTES)]);
    out.extend_from_slice(b"\"},\"error\":\"INVALID_SCHEMA\"}");
}

/// Reports data that `uri`'s schema refused, while there is room: one message, one report per (path, keyword,
/// message).
fn invalid(out: &mut Vec<u8>, reported: &mut usize, uri: &str, reports: &[Report]) {
    let reports = &reports[..reports.len().min(MAX_FAILURES.saturating_sub(*reported))];
    if reports.is_empty() {
        return;
    }
    *reported += reports.len();
    start_message(out, uri);
    out.extend_from_slice(b"\"error\":{\"error\":\"ValidationError\",\"dataReports\":[");
    for (i, (path, keyword, message)) in reports.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"message\":\"");
        let mut end = message.len().min(MAX_MESSAGE_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        escape_lossy_into(out, &message.as_bytes()[..end]);
        out.extend_from_slice(b"\",\"path\":\"");
        escape_lossy_into(out, path.as_bytes());
        out.extend_from_slice(b"\",\"keyword\":");
        if keyword.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            out.push(b'"');
            escape_lossy_into(out, keyword.as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"targets\":null}");
    }
    out.extend_from_slice(b"]}}");
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

// Failures are the messages of Snowplow's `schema_violations` bad row (2-0-0), appended to a comma-separated
// list: the same JSON in a flagged record's `validation` and in a bad row's `failure.messages`.

/// `{"schemaKey":"…",` after a comma when the list has one already.
fn start_message(out: &mut Vec<u8>, uri: &str) {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"schemaKey\":\"");
    escape_lossy_into(out, &uri.as_bytes()[..uri.len().min(crate::schema::key::MAX_URI_BYTES)]);
    out.extend_from_slice(b"\",");
}

/// A schema the registry does not hold: Snowplow's resolution error, one lookup in `SCHEMAS_DIR`.
fn not_found(out: &mut Vec<u8>, uri: &str, now: &[u8]) {
    start_message(out, uri);
    out.extend_from_slice(b"\"error\":{\"error\":\"ResolutionError\",\"lookupHistory\":[{\"repository\":\"");
    out.extend_from_slice(REPOSITORY.as_bytes());
    out.extend_from_slice(b"\",\"errors\":[{\"error\":\"NotFound\"}],\"attempts\":1,\"lastAttempt\":");
    out.extend_from_slice(now);
    out.extend_from_slice(b"}]}}");
}

/// A part that is not self-describing (`INVALID_DATA_PAYLOAD`) or names no Iglu URI (`INVALID_IGLUURI`,
/// `INVALID_SCHEMAVER`): the part itself, whole when short, else the string of its first bytes.
fn not_self_describing(out: &mut Vec<u8>, json: &[u8], error: &str) {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"json\":");
    if json.len() <= MAX_QUOTED_BYTES {
        out.extend_from_slice(json);
    } else {
        out.push(b'"');
        escape_lossy_into(out, &json[..MAX_QUOTED_BYTES]);
        out.push(b'"');
    }
    out.extend_from_slice(b",\"error\":\"");
    out.extend_from_slice(error.as_bytes());
    out.extend_from_slice(b"\"}");
}

/// A JSON pointer (`/a/0/b~1c`) as the JSONPath Snowplow's reports use (`$.a[0]['b/c']`).
fn json_path(pointer: &str) -> String {
    let mut path = String::from("$");
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{token}]"));
        } else if !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            path.push('.');
            path.push_str(&token);
        } else {
            path.push_str("['");
            path.push_str(&token.replace('\\', "\\\\").replace('\'', "\\'"));
            path.push_str("']");
        }
    }
    path
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
        let mut checker = Checker::new(Some((&published, Validation::Flag)), 0);
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
    fn failures_are_snowplow_schema_violation_messages() {
        let published = registry();
        let mut checker = Checker::new(Some((&published, Validation::Flag)), 0);
        let (_, failures) = check(&mut checker, &json!({"schema": WEB_PAGE, "data": {"id": "not a uuid"}})).unwrap();
        assert_eq!(failures.as_array().unwrap().len(), 1, "{failures}");
        let failure = &failures[0];
        assert_eq!((&failure["schemaKey"], &failure["error"]["error"]), (&json!(WEB_PAGE), &json!("ValidationError")));
        let report = &failure["error"]["dataReports"][0];
        assert_eq!(
            (&report["path"], &report["keyword"], &report["targets"]),
            (&json!("$.id"), &json!("pattern"), &Value::Null)
        );
        assert!(report["message"].as_str().unwrap().contains("not a uuid"), "{failure}");
        assert_eq!(registry_counts(&published), (0, 1));

        let (_, unknown) =
            check(&mut checker, &json!({"schema": "iglu:com.acme/nothing/jsonschema/1-0-0", "data": {}})).unwrap();
        assert_eq!(unknown[0]["error"]["error"], "ResolutionError");
        let lookup = &unknown[0]["error"]["lookupHistory"][0];
        assert_eq!(
            (&lookup["repository"], &lookup["errors"]),
            (&json!("SCHEMAS_DIR"), &json!([{"error": "NotFound"}]))
        );
        assert_eq!(lookup["lastAttempt"], "1970-01-01T00:00:00.000000Z", "the time set_time gave (none here)");
        for (uri, error) in [
            ("iglu:com.acme/../jsonschema/1-0-0", "INVALID_IGLUURI"),
            ("iglu:com.acme/x/jsonschema/1-0", "INVALID_SCHEMAVER"),
        ] {
            let event = json!({"schema": uri, "data": {}});
            let (_, failures) = check(&mut checker, &event).unwrap();
            assert_eq!((&failures[0]["error"], &failures[0]["json"]), (&json!(error), &event), "{uri}");
        }
        assert_eq!(checker.take_unknown(), 3);
        assert_eq!(checker.take_unknown(), 0);
    }

    #[test]
    fn pointers_become_json_paths() {
        assert_eq!(json_path(""), "$");
        assert_eq!(json_path("/a/0/b_c"), "$.a[0].b_c");
        assert_eq!(json_path("/a~1b/c~0d/it's"), "$['a/b']['c~d']['it\\'s']");
    }

    #[test]
    fn reject_mode_says_so_and_off_validates_nothing() {
        let published = registry();
        assert!(Checker::new(Some((&published, Validation::Reject)), 0).rejects());
        assert!(!Checker::new(Some((&published, Validation::Flag)), 0).rejects());
        let mut off = Checker::new(Some((&published, Validation::Off)), 0);
        let (_, failures) = check(&mut off, &json!({"schema": WEB_PAGE, "data": {"id": 1}})).unwrap();
        assert_eq!(failures, Value::Null);
    }

    #[test]
    fn failures_are_bounded_in_number_and_length() {
        let published = registry();
        let mut checker = Checker::new(Some((&published, Validation::Flag)), 0);
        // web_page has one property; link_click's several: a long wrong value of each kind.
        let long = "x".repeat(100_000);
        let (_, failures) = check(&mut checker, &json!({"schema": WEB_PAGE, "data": {"id": long}})).unwrap();
        let message = failures[0]["error"]["dataReports"][0]["message"].as_str().unwrap();
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{} bytes", message.len());
        let link = "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1";
        let many: serde_json::Map<String, Value> = ["elementId", "elementTarget", "targetUrl", "elementContent"]
            .iter()
            .map(|k| (k.to_string(), json!(7)))
            .collect();
        let (_, failures) = check(&mut checker, &json!({"schema": link, "data": many})).unwrap();
        let reports = failures[0]["error"]["dataReports"].as_array().unwrap().len();
        assert!((2..=MAX_FAILURES).contains(&reports), "one message, a report per failure: {failures}");
    }

    #[test]
    fn an_event_of_many_parts_reports_at_most_the_bound() {
        let published = registry();
        let mut checker = Checker::new(Some((&published, Validation::Flag)), 0);
        checker.begin();
        let part = json!({"schema": WEB_PAGE, "data": {"id": "not a uuid"}}).to_string();
        for _ in 0..MAX_FAILURES + 5 {
            assert!(checker.validate_part(part.as_bytes()).is_some());
        }
        let failures: Value = serde_json::from_slice(checker.finish().unwrap()).unwrap();
        assert_eq!(failures.as_array().unwrap().len(), MAX_FAILURES, "a message per part with one report each");
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
