//! Iglu schema keys: `iglu:{vendor}/{name}/{format}/{model}-{revision}-{addition}`, the name a self-describing
//! event gives its schema and the path of that schema in a static registry.
//!
//! Parsed strictly, with Iglu's own character sets (vendor `[a-zA-Z0-9-_.]`, name and format `[a-zA-Z0-9-_]`,
//! SchemaVer numbers without leading zeros, the model from 1). A key is only ever looked up in the registry
//! loaded at start, never turned into a path, so what a client sends cannot name a file; a vendor of dots alone
//! is refused all the same, so no key could ever be one.

use std::fmt;

/// The longest URI accepted (Iglu Central's longest is under 120 bytes).
pub const MAX_URI_BYTES: usize = 256;

const PREFIX: &str = "iglu:";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaKey {
    pub vendor: Box<str>,
    pub name: Box<str>,
    pub format: Box<str>,
    pub version: SchemaVer,
}

/// SchemaVer: MODEL-REVISION-ADDITION.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaVer {
    pub model: u32,
    pub revision: u32,
    pub addition: u32,
}

/// Why a string is not a schema key (the bad row's `INVALID_IGLUURI` / `INVALID_SCHEMAVER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not `iglu:` followed by four parts, a part empty or with a character Iglu does not allow, or too long.
    Uri,
    /// The version is not MODEL-REVISION-ADDITION.
    Version,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::Uri => "not an Iglu URI (iglu:vendor/name/format/model-revision-addition)",
            KeyError::Version => "not a SchemaVer (model-revision-addition, e.g. 1-0-0)",
        })
    }
}

impl SchemaKey {
    /// Parses `iglu:vendor/name/format/version`.
    pub fn parse(uri: &str) -> Result<SchemaKey, KeyError> {
        if uri.len() > MAX_URI_BYTES {
            return Err(KeyError::Uri);
        }
        let path = uri.strip_prefix(PREFIX).ok_or(KeyError::Uri)?;
        let mut parts = path.split('/');
        let (Some(vendor), Some(name), Some(format), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::Uri);
        };
        SchemaKey::from_parts(vendor, name, format, version)
    }

    /// A key from its four parts, as a registry's directories name them.
    pub fn from_parts(vendor: &str, name: &str, format: &str, version: &str) -> Result<SchemaKey, KeyError> {
        let name_char = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        let vendor_ok = vendor.bytes().all(|c| name_char(c) || c == b'.') && vendor.bytes().any(|c| c != b'.');
        if !vendor_ok || !is_part(name, name_char) || !is_part(format, name_char) {
            return Err(KeyError::Uri);
        }
        Ok(SchemaKey {
            vendor: vendor.into(),
            name: name.into(),
            format: format.into(),
            version: SchemaVer::parse(version)?,
        })
    }

    /// `http://iglucentral.com/schemas/{vendor}/{name}/{format}/{version}`: how Iglu schemas `$ref` each other.
    pub fn from_iglu_central_url(url: &str) -> Option<SchemaKey> {
        let path = url.strip_prefix("http://iglucentral.com/schemas/")?;
        let path = path.strip_suffix('#').unwrap_or(path);
        SchemaKey::parse(&format!("{PREFIX}{path}")).ok()
    }
}

fn is_part(part: &str, allowed: impl Fn(u8) -> bool) -> bool {
    !part.is_empty() && part.bytes().all(allowed)
}

impl SchemaVer {
    pub fn parse(version: &str) -> Result<SchemaVer, KeyError> {
        let mut numbers = version.split('-').map(|n| {
            let canonical = !n.is_empty() && n.len() <= 9 && n.bytes().all(|c| c.is_ascii_digit());
            match canonical && (n == "0" || !n.starts_with('0')) {
                true => n.parse::<u32>().ok(),
                false => None,
            }
        });
        match (numbers.next(), numbers.next(), numbers.next(), numbers.next()) {
            (Some(Some(model)), Some(Some(revision)), Some(Some(addition)), None) if model >= 1 => {
                Ok(SchemaVer { model, revision, addition })
            }
            _ => Err(KeyError::Version),
        }
    }
}

impl fmt::Display for SchemaVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.model, self.revision, self.addition)
    }
}

impl fmt::Display for SchemaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}/{}/{}/{}", self.vendor, self.name, self.format, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iglu_uri_parses_and_prints_back() {
        let uri = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0";
        let key = SchemaKey::parse(uri).unwrap();
        assert_eq!(&*key.vendor, "com.snowplowanalytics.snowplow");
        assert_eq!(&*key.name, "web_page");
        assert_eq!(key.version, SchemaVer { model: 1, revision: 0, addition: 0 });
        assert_eq!(key.to_string(), uri);
        assert_eq!(SchemaKey::parse("iglu:com.acme-co/order_2/jsonschema/12-3-10").unwrap().version.model, 12);
    }

    #[test]
    fn what_could_name_a_path_or_is_not_iglu_is_refused() {
        for uri in [
            "iglu:../etc/passwd/1-0-0",
            "iglu:./x/jsonschema/1-0-0",
            "iglu:../../jsonschema/1-0-0",
            "iglu:com.acme/../jsonschema/1-0-0",
            "iglu:com.acme/a/b/jsonschema/1-0-0",
            "iglu:com.acme/%2e%2e/jsonschema/1-0-0",
            "iglu:com.acme/x\0y/jsonschema/1-0-0",
            "iglu:com.acme/x y/jsonschema/1-0-0",
            "iglu:com.acme//jsonschema/1-0-0",
            "iglu:/order/jsonschema/1-0-0",
            "iglu:com.acme/order/jsonschema",
            "iglu:com.acme/order/json.schema/1-0-0",
            "iglu:com.acme/ordér/jsonschema/1-0-0",
            "http://iglucentral.com/schemas/com.acme/order/jsonschema/1-0-0",
            "IGLU:com.acme/order/jsonschema/1-0-0",
            "",
        ] {
            assert_eq!(SchemaKey::parse(uri), Err(KeyError::Uri), "{uri:?}");
        }
        let long = format!("iglu:com.acme/{}/jsonschema/1-0-0", "a".repeat(MAX_URI_BYTES));
        assert_eq!(SchemaKey::parse(&long), Err(KeyError::Uri));
    }

    #[test]
    fn a_version_is_three_canonical_numbers_from_model_one() {
        for version in ["1-0", "1-0-0-0", "0-1-0", "01-0-0", "1-00-0", "1-0-+1", "1--0", "a-b-c", "1-0-9999999999", ""]
        {
            let uri = format!("iglu:com.acme/order/jsonschema/{version}");
            assert_eq!(SchemaKey::parse(&uri), Err(KeyError::Version), "{version:?}");
        }
        let key = SchemaKey::parse("iglu:com.acme/order/jsonschema/2-10-0").unwrap();
        assert_eq!(key.version, SchemaVer { model: 2, revision: 10, addition: 0 });
    }

    #[test]
    fn iglu_centrals_ref_urls_name_keys() {
        let key = SchemaKey::from_iglu_central_url(
            "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/instance-iglu-only/jsonschema/1-0-0#",
        )
        .unwrap();
        assert_eq!(key.to_string(), "iglu:com.snowplowanalytics.self-desc/instance-iglu-only/jsonschema/1-0-0");
        assert_eq!(SchemaKey::from_iglu_central_url("http://json-schema.org/draft-04/schema#"), None);
    }
}
