//! An Iglu static registry read from disk and compiled: `{dir}/schemas/{vendor}/{name}/jsonschema/{version}`,
//! each file a self-describing JSON Schema whose `self` names the same key as its path.
//!
//! Every file is read and every schema compiled at load, on the thread that loads (start-up, or the reload
//! thread); the workers only look keys up. A `$ref` to another Iglu schema (`http://iglucentral.com/schemas/…`
//! or `iglu:…`) resolves from the files read, nothing else: no network, no file outside the registry.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonschema::{Draft, PatternOptions, Retrieve, Uri, Validator};
use serde_json::Value;

use super::key::SchemaKey;
use super::plan::Plan;

/// A schema file larger than this is refused (Iglu Central's largest is under 100 KiB).
const MAX_SCHEMA_BYTES: u64 = 1 << 20;
/// The only format validated; other formats' directories are left alone.
const JSON_SCHEMA: &str = "jsonschema";

/// A registry's schemas, compiled.
pub struct Registry {
    /// Each schema's index by its URI as written (`iglu:vendor/name/format/version`): a worker looks a client's
    /// URI up as it came, with no parsing and no allocation (a URI that parses is exactly its key's text).
    by_uri: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    /// In index order.
    compiled: Vec<Compiled>,
    /// The keys in order: a schema's index is its place here (its metric label).
    keys: Vec<SchemaKey>,
    /// Every directory and file read: what the reload thread watches.
    files: Vec<PathBuf>,
    /// Validations per worker and schema, `[valid, invalid]` side by side; each worker's block starts on its
    /// own cache line (`stride` counters apart), so workers never write the same line.
    counts: Box<[AtomicU64]>,
    stride: usize,
    /// The tracking plan (`TRACKING_PLAN`), whose schemas are this registry's.
    plan: Option<Plan>,
}

pub struct Compiled {
    /// Its place in `Registry::keys`.
    pub index: usize,
    pub validator: Validator,
}

/// Why a registry did not load: the file (or directory) and the reason, for one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl std::error::Error for LoadError {}

impl Registry {
    /// Reads and compiles every schema under `dir/schemas`, with validation counters for `workers`; the first
    /// schema that fails is the error.
    pub fn load(dir: &Path, workers: usize) -> Result<Registry, LoadError> {
        let mut files = Vec::new();
        let sources = read_tree(&dir.join("schemas"), &mut files)?;
        let documents: Arc<BTreeMap<SchemaKey, Value>> =
            Arc::new(sources.iter().map(|(key, (_, value))| (key.clone(), value.clone())).collect());
        let keys: Vec<SchemaKey> = documents.keys().cloned().collect();
        let mut compiled = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            let (path, schema) = &sources[key];
            let validator = jsonschema::options()
                .with_draft(Draft::Draft4)
                .with_retriever(InRegistry(documents.clone()))
                .with_pattern_options(PatternOptions::regex())
                .build(schema)
                .map_err(|e| LoadError {
                    path: path.display().to_string(),
                    reason: format!("does not compile: {e}"),
                })?;
            compiled.push(Compiled { index, validator });
        }
        let stride = (keys.len() * 2).next_multiple_of(8);
        let counts = (0..stride * workers).map(|_| AtomicU64::new(0)).collect();
        let by_uri = keys.iter().enumerate().map(|(index, key)| (key.to_string().into(), index)).collect();
        Ok(Registry { by_uri, compiled, keys, files, counts, stride, plan: None })
    }

    /// Reads the tracking plan at `path` into this registry (its file watched with the schemas').
    pub fn with_plan(mut self, path: &Path) -> Result<Registry, LoadError> {
        self.plan = Some(Plan::load(path, &self)?);
        self.files.push(path.to_path_buf());
        Ok(self)
    }

    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// The schema at `index`.
    pub fn at(&self, index: usize) -> &Compiled {
        &self.compiled[index]
    }

    /// Counts one validation of the schema at `index` by `worker`.
    pub fn count(&self, worker: usize, index: usize, valid: bool) {
        let counter = &self.counts[worker * self.stride + index * 2 + usize::from(!valid)];
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Validations of the schema at `index` by every worker: (valid, invalid).
    pub fn counts(&self, index: usize) -> (u64, u64) {
        let workers = self.counts.len() / self.stride.max(1);
        (0..workers).fold((0, 0), |(valid, invalid), w| {
            let at = w * self.stride + index * 2;
            (valid + self.counts[at].load(Ordering::Relaxed), invalid + self.counts[at + 1].load(Ordering::Relaxed))
        })
    }

    /// Starts each schema's counters where `before` (the registry this one replaces) left the same key's, so a
    /// reload does not reset a counter. What workers count on `before` until they take this one is not carried.
    pub fn carry_counts(&self, before: &Registry) {
        let workers = self.counts.len() / self.stride.max(1);
        for (index, key) in self.keys.iter().enumerate() {
            let Some(old) = before.get(key) else {
                continue;
            };
            for w in 0..workers.min(before.counts.len() / before.stride.max(1)) {
                for result in 0..2 {
                    let value = before.counts[w * before.stride + old.index * 2 + result].load(Ordering::Relaxed);
                    self.counts[w * self.stride + index * 2 + result].store(value, Ordering::Relaxed);
                }
            }
        }
    }

    pub fn get(&self, key: &SchemaKey) -> Option<&Compiled> {
        self.get_uri(&key.to_string())
    }

    /// The schema of an Iglu URI as a client wrote it.
    pub fn get_uri(&self, uri: &str) -> Option<&Compiled> {
        self.by_uri.get(uri).map(|&index| &self.compiled[index])
    }

    /// Every key, in index order.
    pub fn keys(&self) -> &[SchemaKey] {
        &self.keys
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The directories and files it was read from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// Resolves a `$ref` to another schema of the registry; anything else is not found.
struct InRegistry(Arc<BTreeMap<SchemaKey, Value>>);

impl Retrieve for InRegistry {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let key = SchemaKey::from_iglu_central_url(uri).or_else(|| SchemaKey::parse(uri).ok());
        match key.and_then(|key| self.0.get(&key)) {
            Some(schema) => Ok(schema.clone()),
            None => Err(format!("{uri} is not in the registry").into()),
        }
    }
}

/// The schema files under `schemas`: vendor, name, format directories, then one file per version.
fn read_tree(schemas: &Path, files: &mut Vec<PathBuf>) -> Result<BTreeMap<SchemaKey, (PathBuf, Value)>, LoadError> {
    let mut found = BTreeMap::new();
    files.push(schemas.to_path_buf());
    for vendor in entries(schemas, true)? {
        files.push(vendor.clone());
        for name in entries(&vendor, true)? {
            files.push(name.clone());
            for format in entries(&name, true)? {
                if file_name(&format) != JSON_SCHEMA {
                    continue;
                }
                files.push(format.clone());
                for version in entries(&format, false)? {
                    let key =
                        SchemaKey::from_parts(file_name(&vendor), file_name(&name), JSON_SCHEMA, file_name(&version))
                            .map_err(|e| error(&version, format!("not a schema's place in an Iglu registry: {e}")))?;
                    let schema = read_schema(&version, &key)?;
                    files.push(version.clone());
                    found.insert(key, (version, schema));
                }
            }
        }
    }
    Ok(found)
}

/// The entries of `dir`, sorted; each must be a directory (`dirs`) or a regular file. Hidden entries (an
/// editor's or a sync tool's) are skipped.
fn entries(dir: &Path, dirs: bool) -> Result<Vec<PathBuf>, LoadError> {
    let read = std::fs::read_dir(dir).map_err(|e| error(dir, e.to_string()))?;
    let mut paths = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| error(dir, e.to_string()))?;
        let path = entry.path();
        if file_name(&path).starts_with('.') {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|e| error(&path, e.to_string()))?;
        match (dirs, meta.is_dir(), meta.is_file()) {
            (true, true, _) | (false, _, true) => paths.push(path),
            (true, ..) => return Err(error(&path, "a file where the registry's layout has a directory".into())),
            (false, ..) => return Err(error(&path, "not a file: a schema version is a file".into())),
        }
    }
    paths.sort();
    Ok(paths)
}

/// One schema file: JSON, an object, whose `self` is the key its path names.
fn read_schema(path: &Path, key: &SchemaKey) -> Result<Value, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| error(path, e.to_string()))?;
    if meta.len() > MAX_SCHEMA_BYTES {
        return Err(error(path, format!("larger than {MAX_SCHEMA_BYTES} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| error(path, e.to_string()))?;
    let schema: Value = serde_json::from_slice(&bytes).map_err(|e| error(path, format!("not JSON: {e}")))?;
    let named = schema.get("self").and_then(|s| {
        let part = |field: &str| s.get(field).and_then(Value::as_str);
        SchemaKey::from_parts(part("vendor")?, part("name")?, part("format")?, part("version")?).ok()
    });
    match named {
        Some(named) if named == *key => {
            // Every Iglu schema is draft 4 and names Iglu's own meta-schema in `$schema`, which a registry need
            // not hold: with the draft set, the compiler has no use for it, but it would look it up on a `$ref`.
            let mut schema = schema;
            if let Some(object) = schema.as_object_mut() {
                object.remove("$schema");
            }
            Ok(schema)
        }
        Some(named) => Err(error(path, format!("its \"self\" is {named}, its place in the registry {key}"))),
        None => Err(error(path, "not a self-describing schema (no valid \"self\")".into())),
    }
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

fn error(path: &Path, reason: String) -> LoadError {
    LoadError { path: path.display().to_string(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn iglu() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/iglu")
    }

    fn key(uri: &str) -> SchemaKey {
        SchemaKey::parse(uri).unwrap()
    }

    /// A registry with one schema per `(path under schemas/, content)`.
    fn load_files(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Registry, LoadError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("schemas")).unwrap();
        for (path, content) in files {
            let path = dir.path().join("schemas").join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let loaded = Registry::load(dir.path(), 1);
        (dir, loaded)
    }

    fn schema(vendor: &str, name: &str, version: &str, body: &str) -> String {
        format!(
            r#"{{"$schema":"http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
            "self":{{"vendor":"{vendor}","name":"{name}","format":"jsonschema","version":"{version}"}},{body}}}"#
        )
    }

    #[test]
    fn iglu_centrals_schemas_compile_and_validate() {
        let registry = Registry::load(&iglu(), 1).unwrap();
        assert_eq!(registry.len(), 14);
        let web_page = &registry.get(&key("iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0")).unwrap();
        assert!(web_page.validator.is_valid(&json!({"id": "0d3d4a4a-3b3c-4e5f-9a6b-1c2d3e4f5a6b"})));
        assert!(!web_page.validator.is_valid(&json!({"id": "not a uuid"})));
        assert!(!web_page.validator.is_valid(&json!({})), "id is required");
        let link = &registry.get(&key("iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1")).unwrap();
        assert!(link.validator.is_valid(&json!({"targetUrl": "https://example.com/x"})));
        assert!(!link.validator.is_valid(&json!({"target": "/x"})));
        // The meta-schema $refs draft 4's own meta-schema: a schema is a schema.
        let meta = &registry.get(&key("iglu:com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0")).unwrap();
        assert!(meta.validator.is_valid(&json!({"self": {"vendor": "a", "name": "b", "format": "jsonschema",
            "version": "1-0-0"}, "type": "object"})));
        assert!(!meta.validator.is_valid(&json!({"self": {"vendor": "a"}, "type": "object"})));
        assert_eq!(
            registry.keys()[web_page.index],
            key("iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0")
        );
    }

    #[test]
    fn a_ref_to_another_schema_resolves_from_the_registry_only() {
        let order = schema(
            "com.acme",
            "order",
            "1-0-0",
            r#""type":"object","properties":{"item":{"$ref":"http://iglucentral.com/schemas/com.acme/item/jsonschema/1-0-0#"}}"#,
        );
        let item = schema("com.acme", "item", "1-0-0", r#""type":"object","required":["sku"]"#);
        let (_dir, loaded) =
            load_files(&[("com.acme/order/jsonschema/1-0-0", &order), ("com.acme/item/jsonschema/1-0-0", &item)]);
        let registry = loaded.unwrap();
        let order = &registry.get(&key("iglu:com.acme/order/jsonschema/1-0-0")).unwrap().validator;
        assert!(order.is_valid(&json!({"item": {"sku": "a"}})));
        assert!(!order.is_valid(&json!({"item": {}})));

        for target in
            ["http://iglucentral.com/schemas/com.acme/missing/jsonschema/1-0-0#", "https://example.com/x.json"]
        {
            let body = format!(r#""type":"object","properties":{{"x":{{"$ref":"{target}"}}}}"#);
            let (_dir, loaded) =
                load_files(&[("com.acme/order/jsonschema/1-0-0", &schema("com.acme", "order", "1-0-0", &body))]);
            let e = loaded.err().expect(target);
            assert!(e.reason.starts_with("does not compile"), "{e}");
        }
    }

    #[test]
    fn formats_are_asserted_as_draft_4_does() {
        let body =
            r#""type":"object","properties":{"at":{"type":"string","format":"date-time"},"to":{"format":"uri"}}"#;
        let (_dir, loaded) =
            load_files(&[("com.acme/when/jsonschema/1-0-0", &schema("com.acme", "when", "1-0-0", body))]);
        let registry = loaded.unwrap();
        let when = &registry.get(&key("iglu:com.acme/when/jsonschema/1-0-0")).unwrap().validator;
        assert!(when.is_valid(&json!({"at": "2026-12-06T15:00:00Z", "to": "https://example.com/x"})));
        assert!(!when.is_valid(&json!({"at": "yesterday"})));
        assert!(!when.is_valid(&json!({"to": "not a uri"})));
    }

    #[test]
    fn a_broken_registry_is_one_error_naming_the_file() {
        let good = schema("com.acme", "order", "1-0-0", r#""type":"object""#);
        let order = "com.acme/order/jsonschema/1-0-0";
        let with = |version: &str, body: &str| schema("com.acme", "order", version, body);
        // (the file, its content, how the failing path ends, the reason)
        let cases = [
            (order, "{".to_string(), "1-0-0", "not JSON"),
            (order, with("1-0-1", r#""type":"object""#), "1-0-0", "its \"self\" is"),
            (order, r#"{"type":"object"}"#.to_string(), "1-0-0", "not a self-describing"),
            (order, with("1-0-0", r#""type":"objekt""#), "1-0-0", "does not compile"),
            (order, with("1-0-0", r#""pattern":"(?=a)""#), "1-0-0", "does not compile"),
            ("com.acme/order/jsonschema/v1", good.clone(), "v1", "not a schema's place"),
            ("com.acme/order/jsonschema/1-0-0/x", good.clone(), "1-0-0", "a schema version is a file"),
            ("com.acme/order", good.clone(), "order", "a file where"),
        ];
        for (file, content, path_end, reason) in &cases {
            let (_dir, loaded) = load_files(&[(file, content)]);
            let e = loaded.err().unwrap_or_else(|| panic!("{file} loaded"));
            assert!(e.path.ends_with(path_end) && e.reason.contains(reason), "{file}: {e}");
        }
        let (dir, loaded) = load_files(&[]);
        assert!(loaded.unwrap().is_empty());
        std::fs::remove_dir(dir.path().join("schemas")).unwrap();
        assert!(Registry::load(dir.path(), 1).is_err(), "no schemas/ directory");
    }

    #[test]
    fn other_formats_and_hidden_entries_are_left_alone() {
        let good = schema("com.acme", "order", "1-0-0", r#""type":"object""#);
        let (_dir, loaded) = load_files(&[
            ("com.acme/order/jsonschema/1-0-0", &good),
            ("com.acme/order/jsonschema/.1-0-1.swp", "junk"),
            ("com.acme/order/thrift/1-0-0", "not json"),
        ]);
        let registry = loaded.unwrap();
        assert_eq!(registry.keys(), [key("iglu:com.acme/order/jsonschema/1-0-0")]);
        assert!(registry.files().iter().any(|f| f.ends_with("com.acme/order/jsonschema/1-0-0")));
    }
}
