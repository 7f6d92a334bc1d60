//! The enrichment's counters: each worker's lookups by kind and result and the bot events it dropped, added
//! once per loop iteration, and their lines in `/metrics` with the GeoIP databases' build times and reloads.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_utils::CachePadded;

use super::{WorkerMetrics, add};
use crate::enrich::{EnrichCounts, Enrichment};

/// The `result` labels of `geo_lookups`: the worker's address cache held the rendering, or the databases were
/// read, or the address is internal (private, loopback, …) and was not looked up.
const GEO_RESULTS: [&str; 3] = ["hit", "miss", "internal"];
/// The `result` labels of `agent_lookups`: unclassified is a miss left unclassified because the worker's
/// budget for new user agents was spent (`enrich::AGENT_MISSES_PER_ITERATION`, `AGENT_TIME_PER_SECOND`).
const AGENT_RESULTS: [&str; 3] = ["hit", "miss", "unclassified"];

impl WorkerMetrics {
    /// Adds a worker's enrichment counts.
    pub fn add_enrichment(&self, c: EnrichCounts) {
        for (counter, n) in self.geo_lookups.iter().zip([c.geo_hits, c.geo_misses, c.geo_internal]) {
            if n > 0 {
                add(counter, n);
            }
        }
        for (counter, n) in self.agent_lookups.iter().zip([c.agent_hits, c.agent_misses, c.agent_unclassified]) {
            if n > 0 {
                add(counter, n);
            }
        }
        if c.bots_dropped > 0 {
            add(&self.bot_events_dropped, c.bots_dropped);
        }
    }
}

/// The enrichment's lines: lookups by kind and result (cache hit ratio = hit / (hit + miss)), bot events
/// dropped, and each GeoIP database's build time and the reloads.
pub fn render_enrichment(out: &mut String, workers: &[CachePadded<WorkerMetrics>], enrichment: Option<&Enrichment>) {
    let Some(enrichment) = enrichment else {
        return;
    };
    let _ = writeln!(
        out,
        "# HELP plutos_enrich_lookups_total enrichment lookups by kind and result: hit (the worker's cache held \
         the rendering), miss (databases or regexes consulted), internal (a private or loopback address, not \
         looked up), unclassified (a new user agent over the worker's budget for them, recorded as not \
         classified)\n\
         # TYPE plutos_enrich_lookups_total counter"
    );
    let sum = |f: &dyn Fn(&WorkerMetrics) -> &AtomicU64| workers.iter().map(|w| f(w).load(Relaxed)).sum::<u64>();
    if enrichment.geo.is_some() {
        for (i, result) in GEO_RESULTS.iter().enumerate() {
            let n = sum(&|w| &w.geo_lookups[i]);
            let _ = writeln!(out, "plutos_enrich_lookups_total{{kind=\"geo\",result=\"{result}\"}} {n}");
        }
    }
    if enrichment.parses_agents() {
        for (i, result) in AGENT_RESULTS.iter().enumerate() {
            let n = sum(&|w| &w.agent_lookups[i]);
            let _ = writeln!(out, "plutos_enrich_lookups_total{{kind=\"user_agent\",result=\"{result}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP plutos_bot_events_dropped_total events from bots answered and not stored (BOTS=drop)\n\
         # TYPE plutos_bot_events_dropped_total counter\nplutos_bot_events_dropped_total {}",
        sum(&|w| &w.bot_events_dropped)
    );
    let Some(geo) = &enrichment.geo else {
        return;
    };
    let _ = writeln!(
        out,
        "# HELP plutos_geoip_database_build_timestamp_seconds build time of each GeoIP database in service\n\
         # TYPE plutos_geoip_database_build_timestamp_seconds gauge"
    );
    for db in &geo.current().dbs {
        let path = db.path().display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "plutos_geoip_database_build_timestamp_seconds{{path=\"{path}\",type=\"{}\"}} {}",
            db.kind().replace('"', ""),
            db.build_epoch()
        );
    }
    let _ = writeln!(
        out,
        "# HELP plutos_geoip_reloads_total GeoIP reloads by result (a failed one keeps the database loaded before)\n\
         # TYPE plutos_geoip_reloads_total counter\n\
         plutos_geoip_reloads_total{{result=\"ok\"}} {}\nplutos_geoip_reloads_total{{result=\"failed\"}} {}",
        geo.reloads.load(Relaxed),
        geo.reload_failures.load(Relaxed)
    );
}
