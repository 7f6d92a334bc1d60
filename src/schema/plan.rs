//! A tracking plan (`TRACKING_PLAN`): for SDKs that name their events (Segment's `track`, PostHog's events), the
//! schema each planned event's properties are validated against, and what an event the plan does not name gets.
//!
//! ```json
//! {"events": {"Order Completed": "iglu:com.acme/order_completed/jsonschema/1-0-0"}, "unplanned": "allow"}
//! ```
//!
//! Loaded with the registry it names schemas of (and reloaded with it, its file watched like the schemas'): a
//! plan that names a schema the registry does not hold does not load.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::key::SchemaKey;
use super::registry::{LoadError, Registry};

/// What an event the plan does not name gets (`unplanned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unplanned {
    /// Kept as any event, unvalidated.
    #[default]
    Allow,
    /// Kept, with a failure in its record's `validation`.
    Flag,
    /// A bad row.
    Reject,
}

/// A plan file larger than this is refused.
const MAX_PLAN_BYTES: u64 = 4 << 20;

/// One planned event: its schema's place in the registry and its URI as a JSON string literal (the record's
/// `schema`).
#[derive(Debug)]
pub struct Planned {
    pub index: usize,
    pub literal: Box<[u8]>,
}

#[derive(Debug)]
pub struct Plan {
    events: HashMap<Box<str>, Planned, foldhash::fast::RandomState>,
    pub unplanned: Unplanned,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    events: HashMap<String, String>,
    #[serde(default)]
    unplanned: Unplanned,
}

impl Plan {
    /// Reads the plan at `path`; every schema it names must be in `registry`.
    pub fn load(path: &Path, registry: &Registry) -> Result<Plan, LoadError> {
        let error = |reason: String| LoadError { path: path.display().to_string(), reason };
        let meta = std::fs::metadata(path).map_err(|e| error(e.to_string()))?;
        if meta.len() > MAX_PLAN_BYTES {
            return Err(error(format!("larger than {MAX_PLAN_BYTES} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let file: File = serde_json::from_slice(&bytes).map_err(|e| {
            error(format!("not a tracking plan ({{\"events\":{{name: iglu URI}},\"unplanned\":…}}): {e}"))
        })?;
        let mut events = HashMap::with_capacity_and_hasher(file.events.len(), Default::default());
        for (name, uri) in file.events {
            let key = SchemaKey::parse(&uri).map_err(|e| error(format!("{name:?}: {uri:?}: {e}")))?;
            let compiled = registry.get(&key).ok_or_else(|| error(format!("{name:?}: {uri} is not in SCHEMAS_DIR")))?;
            let literal = serde_json::to_vec(&uri).expect("a string serializes").into_boxed_slice();
            events.insert(name.into_boxed_str(), Planned { index: compiled.index, literal });
        }
        Ok(Plan { events, unplanned: file.unplanned })
    }

    /// The plan for an event of this name.
    pub fn get(&self, name: &str) -> Option<&Planned> {
        self.events.get(name)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB_PAGE: &str = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0";

    fn registry() -> Registry {
        Registry::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/iglu"), 1).unwrap()
    }

    fn load(text: &str) -> Result<Plan, LoadError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, text).unwrap();
        Plan::load(&path, &registry())
    }

    #[test]
    fn a_plan_maps_names_to_registry_schemas() {
        let plan = load(&format!(r#"{{"events":{{"Page Viewed":"{WEB_PAGE}"}},"unplanned":"reject"}}"#)).unwrap();
        assert_eq!(plan.unplanned, Unplanned::Reject);
        let planned = plan.get("Page Viewed").unwrap();
        assert_eq!(&*planned.literal, format!("\"{WEB_PAGE}\"").as_bytes());
        assert_eq!(planned.index, registry().get(&SchemaKey::parse(WEB_PAGE).unwrap()).unwrap().index);
        assert!(plan.get("page viewed").is_none(), "names are exact");
        assert_eq!(load(r#"{"events":{}}"#).unwrap().unplanned, Unplanned::Allow, "allow by default");
    }

    #[test]
    fn a_plan_that_names_what_is_not_there_does_not_load() {
        for (text, reason) in [
            (r#"{"events":{"A":"iglu:com.acme/a/jsonschema/1-0-0"}}"#.to_string(), "is not in SCHEMAS_DIR"),
            (r#"{"events":{"A":"iglu:com.acme/../jsonschema/1-0-0"}}"#.to_string(), "not an Iglu URI"),
            (format!(r#"{{"events":{{"A":"{WEB_PAGE}"}},"unplanned":"drop"}}"#), "not a tracking plan"),
            (r#"{"event":{}}"#.to_string(), "not a tracking plan"),
            ("[".to_string(), "not a tracking plan"),
        ] {
            let e = load(&text).unwrap_err();
            assert!(e.reason.contains(reason) && e.path.ends_with("plan.json"), "{text}: {e}");
        }
    }
}
