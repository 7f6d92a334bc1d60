//! The edge part of the configuration: what request handling decides about who may send (CORS origins, write
//! keys) and what a record keeps of who sent (trusted proxies, IP mode, captured headers).

use std::path::PathBuf;

use ipnet::IpNet;

use super::args::Args;
use super::values::{CidrList, Words};
use super::{ConfigError, invalid};
use crate::enrich::EnrichConfig;
use crate::event::client::IpMode;
use crate::event::visitor::CookieConfig;
use crate::http::cors::Origins;

/// The shortest `IP_HASH_KEY` accepted: 128 bits, so the hash cannot be reversed by trying every key.
const MIN_HASH_KEY_BYTES: usize = 16;

/// A setting whose value is a secret: printed as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EdgeConfig {
    pub cors_origins: Origins,
    /// Empty: requests need no key.
    pub write_keys: Vec<Secret>,
    pub trusted_proxies: Vec<IpNet>,
    pub ip_mode: IpMode,
    pub ip_hash_key: Option<Secret>,
    /// Lower-case header names copied into each record's `headers`.
    pub capture_headers: Vec<String>,
    /// The cookie of Snowplow's network user id; `None`: no cookie.
    pub snowplow_cookie: Option<CookieConfig>,
    /// The first-party visitor cookie of the other ingest routes (`VISITOR_COOKIE`); `None`: none.
    pub visitor_cookie: Option<CookieConfig>,
    /// `HONOR_GPC=on`: `DNT: 1` / `Sec-GPC: 1` decline the visitor id.
    pub honor_gpc: bool,
    pub enrich: EnrichConfig,
}

/// A visitor cookie lives a year, as Snowplow's collector sets it.
const COOKIE_MAX_AGE_SECONDS: u64 = 365 * 86_400;

pub(super) fn edge(args: &Args) -> Result<EdgeConfig, ConfigError> {
    let Words(keys) = &args.write_keys;
    let Words(capture) = &args.capture_headers;
    let ip_hash_key = args.ip_hash_key.as_deref().filter(|k| !k.is_empty());
    if args.ip_mode == IpMode::Hash && ip_hash_key.is_none_or(|k| k.len() < MIN_HASH_KEY_BYTES) {
        return Err(invalid("IP_HASH_KEY", "IP_MODE=hash needs a secret of at least 16 bytes"));
    }
    if capture.iter().any(|h| h == "x-write-key") {
        return Err(invalid("CAPTURE_HEADERS (--capture-headers)", "x-write-key carries a secret"));
    }
    if !keys.is_empty() && capture.iter().any(|h| h == "authorization") {
        return Err(invalid(
            "CAPTURE_HEADERS (--capture-headers)",
            "authorization carries the write key when WRITE_KEYS is set",
        ));
    }
    let CidrList(trusted) = &args.trusted_proxies;
    let snowplow_cookie = cookie(
        ("SNOWPLOW_COOKIE (--snowplow-cookie)", &args.snowplow_cookie),
        ("SNOWPLOW_COOKIE_DOMAIN (--snowplow-cookie-domain)", args.snowplow_cookie_domain.as_deref()),
        COOKIE_MAX_AGE_SECONDS,
    )?;
    let visitor_cookie = cookie(
        ("VISITOR_COOKIE (--visitor-cookie)", &args.visitor_cookie),
        ("VISITOR_COOKIE_DOMAIN (--visitor-cookie-domain)", args.visitor_cookie_domain.as_deref()),
        args.visitor_cookie_max_age_seconds,
    )?;
    Ok(EdgeConfig {
        cors_origins: args.cors_origins.clone(),
        write_keys: keys.iter().map(|k| Secret(k.clone())).collect(),
        trusted_proxies: trusted.clone(),
        ip_mode: args.ip_mode,
        ip_hash_key: ip_hash_key.map(|k| Secret(k.to_string())),
        capture_headers: capture.clone(),
        snowplow_cookie,
        visitor_cookie,
        honor_gpc: args.honor_gpc,
        enrich: EnrichConfig {
            geoip_db: args.geoip_db.0.iter().map(PathBuf::from).collect(),
            geo_precision: args.geo_precision,
            ua_parse: args.ua_parse,
            bots: args.bots,
        },
    })
}

/// A visitor cookie's settings from its name (empty: no cookie) and domain settings, each with its setting's name
/// for the error.
fn cookie(
    (name_setting, name): (&'static str, &str),
    (domain_setting, domain): (&'static str, Option<&str>),
    max_age_seconds: u64,
) -> Result<Option<CookieConfig>, ConfigError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if !name.bytes().all(crate::http::is_token) {
        return Err(invalid(name_setting, format!("{name:?} is not a cookie name")));
    }
    let domain = domain.map(str::trim).filter(|d| !d.is_empty());
    if let Some(domain) = domain {
        let host_char = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
        if !domain.chars().all(host_char)
            || !domain.trim_start_matches('.').contains(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(invalid(domain_setting, format!("{domain:?} is not a domain")));
        }
    }
    Ok(Some(CookieConfig { name: name.to_string(), domain: domain.map(str::to_ascii_lowercase), max_age_seconds }))
}
