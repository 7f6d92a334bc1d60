//! Where a client is: its address looked up in MaxMind-format databases (`GEOIP_DB`: City, Country, ASN —
//! any of them, or several), rendered as the record's `geo` object.
//!
//! Each database is read whole into memory (never mapped: a file replaced in place under a mapping is the
//! classic SIGBUS) and verified before it serves. Workers share one `GeoSet` behind an `Arc`; a reload builds a
//! new set on the reload thread and publishes it (`Geo::published`), and each worker takes it at the start of
//! its next loop iteration, so no lookup waits on a lock.
//!
//! Both layouts in use are read: MaxMind's (`country.iso_code`, `subdivisions[0].iso_code`, `city.names.en`,
//! `location.{latitude,longitude,time_zone}`, `autonomous_system_{number,organization}`) and the flat one of
//! the ip-location-db builds (`country_code`, `state1`, `city`, `latitude`, `longitude`, `timezone`). The first
//! database that holds a field gives it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use maxminddb::Reader;
use serde::Deserialize;

use crate::event::json::escape_into;
use crate::reload::{FileIdentity, Published, Reloadable};

/// More databases than City + Country + ASN and a spare are a configuration mistake.
pub const MAX_DATABASES: usize = 4;

/// How fine a location records keep (`GEO_PRECISION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `country` only.
    Country,
    /// Also `region`, `tz`, `asn` and `as_org`.
    Region,
    /// Also `city`, `lat` and `lon`.
    City,
}

/// One database, read into memory.
pub struct GeoDb {
    path: PathBuf,
    reader: Reader<Vec<u8>>,
    identity: FileIdentity,
}

#[derive(Debug, thiserror::Error)]
#[error("GEOIP_DB {path}: {reason}")]
pub struct LoadError {
    pub path: String,
    pub reason: String,
}

impl GeoDb {
    /// Reads and verifies the database at `path`.
    pub fn load(path: &Path) -> Result<GeoDb, LoadError> {
        let error = |reason: String| LoadError { path: path.display().to_string(), reason };
        let identity = FileIdentity::of(path).map_err(|e| error(e.to_string()))?;
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let mut reader = Reader::from_source(bytes).map_err(|e| error(e.to_string()))?;
        // The format requires a description; some published databases (ip-location-db's) have an empty one. It
        // is never read, so that alone does not refuse a database that is otherwise whole.
        if reader.metadata.description.is_empty() {
            reader.metadata.description.insert("en".into(), String::new());
        }
        reader.verify().map_err(|e| error(format!("not a valid MaxMind DB: {e}")))?;
        Ok(GeoDb { path: path.to_path_buf(), reader, identity })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file this database was read from, as it was then.
    pub fn identity(&self) -> FileIdentity {
        self.identity
    }

    /// The metadata's `database_type` (e.g. `GeoLite2-City`).
    pub fn kind(&self) -> &str {
        &self.reader.metadata.database_type
    }

    /// Unix seconds of the database's build.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata.build_epoch
    }

    /// The data section offset of `addr`'s record (a stable name for that record), if the tree holds one.
    fn offset(&self, addr: IpAddr) -> Option<usize> {
        // An IPv6 address in an IPv4-only database is an error: there is nothing for it.
        self.reader.lookup(addr).ok()?.offset()
    }

    fn place(&self, addr: IpAddr) -> Option<Place<'_>> {
        self.reader.lookup(addr).ok()?.decode().ok()?
    }
}

/// The databases in service, in `GEOIP_DB`'s order.
pub struct GeoSet {
    pub dbs: Vec<Arc<GeoDb>>,
}

impl GeoSet {
    /// The key of `addr`'s records: one offset per database (`u32::MAX`: none), so every address of one
    /// network shares a cached rendering. Empty when no database holds anything for it.
    pub fn key(&self, addr: IpAddr, key: &mut Vec<u8>) {
        key.clear();
        let addr = addr.to_canonical();
        let mut found = false;
        for db in &self.dbs {
            let offset = db.offset(addr).and_then(|o| u32::try_from(o).ok());
            found |= offset.is_some();
            key.extend_from_slice(&offset.unwrap_or(u32::MAX).to_le_bytes());
        }
        if !found {
            key.clear();
        }
    }

    /// `,"geo":{…}` for `addr` at `precision`, or `,"geo":null` when nothing matched.
    pub fn render(&self, addr: IpAddr, precision: Precision, out: &mut Vec<u8>) {
        let addr = addr.to_canonical();
        let mut fields = Fields::default();
        for db in &self.dbs {
            if let Some(place) = db.place(addr) {
                fields.take(place);
            }
        }
        fields.render(precision, out);
    }
}

/// Addresses that name no place: private, loopback, link-local, shared (CGNAT) and unspecified ones. They are
/// never looked up — some published databases map private ranges to a country.
pub fn is_internal(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(v4) => {
            let cgnat = v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64;
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || cgnat
        }
        IpAddr::V6(v6) => {
            let unique_local = (v6.segments()[0] & 0xfe00) == 0xfc00;
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            v6.is_loopback() || v6.is_unspecified() || unique_local || link_local
        }
    }
}

/// The fields `geo` can carry, from whichever database held each first.
#[derive(Default)]
struct Fields {
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    tz: Option<String>,
    asn: Option<u32>,
    as_org: Option<String>,
}

impl Fields {
    fn take(&mut self, p: Place<'_>) {
        let first = |slot: &mut Option<String>, value: Option<&str>| {
            if slot.is_none() {
                *slot = value.filter(|v| !v.is_empty()).map(str::to_string);
            }
        };
        first(&mut self.country, p.country.as_ref().and_then(|c| c.iso_code).or(p.country_code));
        let subdivision = p.subdivisions.as_ref().and_then(|s| s.first()).and_then(|s| s.iso_code);
        first(&mut self.region, subdivision.or(p.state1));
        let city = match &p.city {
            Some(City::Names { names }) => names.get("en").map(String::as_str),
            Some(City::Name(name)) => Some(name.as_str()),
            None => None,
        };
        first(&mut self.city, city);
        let location = p.location.as_ref();
        first(&mut self.tz, location.and_then(|l| l.time_zone).or(p.timezone));
        if self.lat.is_none() && self.lon.is_none() {
            // Four decimals (about 11 m): finer than any database is right, and what a float32 database holds
            // prints without its binary noise (37.751, not 37.750999450683594).
            let degrees = |v: Option<f64>| v.filter(|v| v.is_finite()).map(|v| (v * 1e4).round() / 1e4);
            self.lat = degrees(location.and_then(|l| l.latitude).or(p.latitude));
            self.lon = degrees(location.and_then(|l| l.longitude).or(p.longitude));
        }
        self.asn = self.asn.or(p.autonomous_system_number);
        first(&mut self.as_org, p.autonomous_system_organization);
    }

    fn render(&self, precision: Precision, out: &mut Vec<u8>) {
        let region = precision != Precision::Country;
        let city = precision == Precision::City;
        let texts = [
            ("country", self.country.as_deref(), true),
            ("region", self.region.as_deref(), region),
            ("city", self.city.as_deref(), city),
            ("tz", self.tz.as_deref(), region),
            ("as_org", self.as_org.as_deref(), region),
        ];
        let start = out.len();
        out.extend_from_slice(b",\"geo\":{");
        let member = |out: &mut Vec<u8>, name: &str| {
            if !out.ends_with(b"{") {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        for (name, value, kept) in texts {
            if let (Some(value), true) = (value, kept) {
                member(out, name);
                out.push(b'"');
                escape_into(out, value.as_bytes());
                out.push(b'"');
            }
        }
        let mut number = String::new();
        for (name, value, kept) in [("lat", self.lat, city), ("lon", self.lon, city)] {
            if let (Some(value), true) = (value, kept) {
                member(out, name);
                number.clear();
                let _ = write!(number, "{value}");
                out.extend_from_slice(number.as_bytes());
            }
        }
        if let (Some(asn), true) = (self.asn, region) {
            member(out, "asn");
            out.extend_from_slice(asn.to_string().as_bytes());
        }
        if out.ends_with(b"{") {
            out.truncate(start);
            out.extend_from_slice(b",\"geo\":null");
        } else {
            out.push(b'}');
        }
    }
}

/// A database record, in either layout.
#[derive(Deserialize, Default)]
struct Place<'a> {
    #[serde(borrow)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow)]
    subdivisions: Option<Vec<IsoCode<'a>>>,
    city: Option<City>,
    #[serde(borrow)]
    location: Option<Location<'a>>,
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<&'a str>,
    country_code: Option<&'a str>,
    state1: Option<&'a str>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    timezone: Option<&'a str>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    iso_code: Option<&'a str>,
}

/// MaxMind's `city` is a map of names by language; the flat layout's is the name.
#[derive(Deserialize)]
#[serde(untagged)]
enum City {
    Names { names: BTreeMap<String, String> },
    Name(String),
}

#[derive(Deserialize)]
struct Location<'a> {
    latitude: Option<f64>,
    longitude: Option<f64>,
    time_zone: Option<&'a str>,
}

/// The databases of `GEOIP_DB`, shared by the workers and replaced by the reload thread.
pub struct Geo {
    pub published: Published<GeoSet>,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
}

impl Geo {
    /// Loads every file; the first that fails is the error (at start an operator must hear of it at once).
    pub fn load(paths: &[PathBuf]) -> Result<Geo, LoadError> {
        let dbs = paths.iter().map(|p| GeoDb::load(p).map(Arc::new)).collect::<Result<Vec<_>, _>>()?;
        Ok(Geo {
            published: Published::new(GeoSet { dbs }),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        })
    }

    /// The set in service.
    pub fn current(&self) -> Arc<GeoSet> {
        self.published.current()
    }

    /// The files of the databases in service, in `GEOIP_DB`'s order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.current().dbs.iter().map(|db| db.path.clone()).collect()
    }
}

impl Reloadable for Geo {
    fn what(&self) -> &'static str {
        "the GeoIP databases"
    }

    fn files(&self) -> Vec<PathBuf> {
        self.paths()
    }

    /// Reads again each database whose file changed (all of them when `forced`, a SIGHUP). A file that fails
    /// to load keeps its old database in service and is logged in one line; the others switch.
    fn reload(&self, forced: bool) {
        let old = self.current();
        let mut changed = false;
        let mut dbs = Vec::with_capacity(old.dbs.len());
        for db in &old.dbs {
            let replaced = FileIdentity::of(&db.path).map_or(true, |now| now != db.identity);
            if !forced && !replaced {
                dbs.push(db.clone());
                continue;
            }
            match GeoDb::load(&db.path) {
                Ok(new) => {
                    tracing::info!(path = %db.path.display(), kind = new.kind(), build_epoch = new.build_epoch(), "GeoIP database reloaded");
                    dbs.push(Arc::new(new));
                    changed = true;
                }
                Err(e) => {
                    self.reload_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "GeoIP database not reloaded; the one loaded before stays in service");
                    dbs.push(db.clone());
                }
            }
        }
        if changed {
            self.published.publish(GeoSet { dbs });
            self.reloads.fetch_add(1, Ordering::Release);
        }
    }
}
