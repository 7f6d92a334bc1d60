//! Enrichment at the edge: what a record says about where its client is (`geo`, from `GEOIP_DB`) and what it
//! runs (`agent`, `bot`, from the user agent), decided per request while the full address is still known,
//! before `IP_MODE` truncates, hashes or drops it.
//!
//! - `geo`: the MaxMind-format databases and their reload (`Geo`, shared; replaced whole, never locked on the
//!   request path).
//! - `agent`: the uap-core and isbot lists, compiled once and shared.
//! - `cache`: each worker's bounded memo of rendered fragments, so the lookups' decoding and the regexes run
//!   once per distinct network record and user agent per core.
//!
//! The databases are reloaded on SIGHUP and when their files are replaced by `crate::reload`'s thread.
//!
//! A worker's `Enricher` renders one fragment per request, spliced into each record after `user_agent`.

pub mod agent;
pub mod cache;
pub mod geo;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::client::IpMode;
use crate::reload::Follower;
use agent::Agents;
use cache::{Bounds, Cache};
use geo::{Geo, GeoSet, Precision};

/// `BOTS`: what becomes of events from bots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BotPolicy {
    /// Not looked for.
    #[default]
    Keep,
    /// Stored with `"bot":true` and the pattern that matched.
    Flag,
    /// Answered as if stored, counted, not stored.
    Drop,
}

/// `GEO_PRECISION`: how fine a `geo` object may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeoPrecision {
    /// `city` with `IP_MODE=full`, `region` otherwise: a record never locates its client more finely than its
    /// `ip` field does.
    #[default]
    Auto,
    Country,
    Region,
    City,
}

impl GeoPrecision {
    fn resolve(self, ip_mode: IpMode) -> Precision {
        match self {
            GeoPrecision::Auto if ip_mode == IpMode::Full => Precision::City,
            GeoPrecision::Auto | GeoPrecision::Region => Precision::Region,
            GeoPrecision::Country => Precision::Country,
            GeoPrecision::City => Precision::City,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnrichConfig {
    /// `GEOIP_DB`: empty, no `geo`.
    pub geoip_db: Vec<PathBuf>,
    pub geo_precision: GeoPrecision,
    /// `UA_PARSE=on`.
    pub ua_parse: bool,
    pub bots: BotPolicy,
}

impl EnrichConfig {
    pub fn enabled(&self) -> bool {
        !self.geoip_db.is_empty() || self.ua_parse || self.bots != BotPolicy::Keep
    }
}

/// What every worker's enricher shares: the databases and the compiled lists.
pub struct Enrichment {
    pub geo: Option<Arc<Geo>>,
    agents: Option<Agents>,
    precision: Precision,
    bots: BotPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error(transparent)]
    Geo(#[from] geo::LoadError),
    #[error(transparent)]
    Agents(#[from] agent::AgentsError),
}

impl Enrichment {
    /// Loads the databases and compiles the lists `config` asks for.
    pub fn new(config: &EnrichConfig, ip_mode: IpMode) -> Result<Enrichment, EnrichError> {
        let geo = match config.geoip_db.is_empty() {
            true => None,
            false => Some(Arc::new(Geo::load(&config.geoip_db)?)),
        };
        let wants_agents = config.ua_parse || config.bots != BotPolicy::Keep;
        let agents = match wants_agents {
            true => Some(Agents::new(config.ua_parse, config.bots != BotPolicy::Keep)?),
            false => None,
        };
        Ok(Enrichment { geo, agents, precision: config.geo_precision.resolve(ip_mode), bots: config.bots })
    }
}

impl Enrichment {
    /// Whether the user agent is looked at (`UA_PARSE=on` or `BOTS` not `keep`).
    pub fn parses_agents(&self) -> bool {
        self.agents.is_some()
    }
}

/// A generation of the address cache: this many client addresses' renderings (a tree walk spared each).
const GEO_ADDRESS_CACHE: Bounds = Bounds { entries: 16_384, bytes: 4 << 20 };
/// A generation of the record cache: this many database records' renderings (a decoding spared each, for
/// addresses not in the address cache that share a network with one seen before).
const GEO_RECORD_CACHE: Bounds = Bounds { entries: 16_384, bytes: 4 << 20 };
/// A user-agent cache generation: this many user agents, or this many bytes of them and their renderings.
const AGENT_CACHE: Bounds = Bounds { entries: 8_192, bytes: 4 << 20 };

/// What a worker may spend on user agents it has not seen before, whose regexes cost ~30 µs each and up to
/// ~370 µs for one crafted to pass the prefilters (`examples/enrich_cost.rs`): at most this many per loop
/// iteration (a burst of new ones delays the loop's other connections by at most ~12 ms), and at most this much
/// time per second (a flood of crafted ones takes at most a tenth of the core). The rest are recorded
/// unclassified, like a user agent over `agent::MAX_CLASSIFIED`, and counted; a later request with the same one
/// classifies it once the budget allows.
const AGENT_MISSES_PER_ITERATION: u32 = 32;
const AGENT_TIME_PER_SECOND: Duration = Duration::from_millis(100);

/// The classification budget of one worker.
#[derive(Debug)]
struct AgentBudget {
    /// New user agents still allowed in this loop iteration.
    misses_left: u32,
    /// The second the time budget counts in, and the time spent classifying in it.
    window_start: Instant,
    spent: Duration,
}

impl AgentBudget {
    fn new(now: Instant) -> AgentBudget {
        AgentBudget { misses_left: AGENT_MISSES_PER_ITERATION, window_start: now, spent: Duration::ZERO }
    }

    /// A new loop iteration: its count starts again, and the time budget each second.
    fn next_iteration(&mut self, now: Instant) {
        self.misses_left = AGENT_MISSES_PER_ITERATION;
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.spent = Duration::ZERO;
        }
    }

    /// Whether one more new user agent may be classified now.
    fn allows(&self) -> bool {
        self.misses_left > 0 && self.spent < AGENT_TIME_PER_SECOND
    }

    /// One was classified, in `took`.
    fn spend(&mut self, took: Duration) {
        self.misses_left -= 1;
        self.spent += took;
    }
}

/// Counts a worker adds to its metrics once per loop iteration.
#[derive(Debug, Default, Clone, Copy)]
pub struct EnrichCounts {
    pub geo_hits: u64,
    pub geo_misses: u64,
    /// Internal addresses (private, loopback, …): never looked up.
    pub geo_internal: u64,
    pub agent_hits: u64,
    pub agent_misses: u64,
    /// New user agents left unclassified: the budget for this iteration or second was spent.
    pub agent_unclassified: u64,
    pub bots_dropped: u64,
}

/// One worker's enrichment: the shared data, the databases it uses now, its caches and the current request's
/// fragment.
pub struct Enricher {
    shared: Option<Arc<Enrichment>>,
    /// The geo set in use.
    set: Option<Follower<GeoSet>>,
    /// Client address → `geo` fragment.
    geo_addresses: Cache,
    /// The databases' record offsets (`GeoSet::key`) → `geo` fragment.
    geo_records: Cache,
    agent_cache: Cache,
    agent_budget: AgentBudget,
    agent_unclassified: u64,
    key: Vec<u8>,
    /// The current request's fragment.
    fragment: Vec<u8>,
    geo_internal: u64,
    pub bots_dropped: u64,
}

/// The enrichment of one request.
pub struct Enriched<'a> {
    /// Spliced into its records after `user_agent` (empty: nothing configured).
    pub fragment: &'a [u8],
    /// Its events are from a bot and `BOTS=drop`: answered, not stored.
    pub drop: bool,
}

impl Enricher {
    pub fn new(shared: Option<Arc<Enrichment>>) -> Enricher {
        let set = shared.as_ref().and_then(|s| s.geo.as_ref()).map(|g| g.published.follow());
        Enricher {
            shared,
            set,
            geo_addresses: Cache::new(GEO_ADDRESS_CACHE),
            geo_records: Cache::new(GEO_RECORD_CACHE),
            agent_cache: Cache::new(AGENT_CACHE),
            agent_budget: AgentBudget::new(Instant::now()),
            agent_unclassified: 0,
            key: Vec::new(),
            fragment: Vec::new(),
            geo_internal: 0,
            bots_dropped: 0,
        }
    }

    /// Once per loop iteration: the classification budget's next iteration, and the databases a reload
    /// published, if any.
    pub fn refresh(&mut self, now: Instant) {
        self.agent_budget.next_iteration(now);
        let (Some(geo), Some(set)) = (self.shared.as_ref().and_then(|s| s.geo.as_ref()), self.set.as_mut()) else {
            return;
        };
        if set.refresh(&geo.published) {
            self.geo_addresses.clear();
            self.geo_records.clear();
        }
    }

    /// The fragment for a request from `client` (`None`: its sender declined tracking, so no location) with
    /// `user_agent`.
    pub fn enrich(&mut self, client: Option<IpAddr>, user_agent: &[u8]) -> Enriched<'_> {
        self.fragment.clear();
        let Some(shared) = &self.shared else {
            return Enriched { fragment: &self.fragment, drop: false };
        };
        if let Some(Follower { value: set, .. }) = &self.set {
            let internal = client.is_some_and(geo::is_internal);
            self.geo_internal += u64::from(internal);
            match client.filter(|_| !internal) {
                None => self.fragment.extend_from_slice(b",\"geo\":null"),
                Some(addr) => {
                    let addr = addr.to_canonical();
                    let octets = match addr {
                        IpAddr::V4(v4) => &v4.octets()[..],
                        IpAddr::V6(v6) => &v6.octets()[..],
                    };
                    let (key, records) = (&mut self.key, &mut self.geo_records);
                    let precision = shared.precision;
                    let entry = self.geo_addresses.get_or_render(octets, |out| {
                        set.key(addr, key);
                        if key.is_empty() {
                            out.extend_from_slice(b",\"geo\":null");
                        } else {
                            let record = records.get_or_render(key, |out| {
                                set.render(addr, precision, out);
                                false
                            });
                            out.extend_from_slice(&record.fragment);
                        }
                        false
                    });
                    self.fragment.extend_from_slice(&entry.fragment);
                }
            }
        }
        let mut drop = false;
        if let Some(agents) = &shared.agents {
            let bot = if user_agent.len() > agent::MAX_CLASSIFIED {
                // Not classified, so not worth a place in the cache (a flood of long ones would fill it).
                agents.render(user_agent, &mut self.fragment)
            } else {
                let budget = &mut self.agent_budget;
                let classified = self.agent_cache.get_or_try_render(user_agent, |out| {
                    if !budget.allows() {
                        return None;
                    }
                    let start = Instant::now();
                    let bot = agents.render(user_agent, out);
                    budget.spend(start.elapsed());
                    Some(bot)
                });
                match classified {
                    Some(entry) => {
                        self.fragment.extend_from_slice(&entry.fragment);
                        entry.flag
                    }
                    None => {
                        self.agent_unclassified += 1;
                        agents.render_unclassified(&mut self.fragment)
                    }
                }
            };
            drop = bot && shared.bots == BotPolicy::Drop;
        }
        Enriched { fragment: &self.fragment, drop }
    }

    /// The counts since the last call.
    pub fn take_counts(&mut self) -> EnrichCounts {
        let counts = EnrichCounts {
            geo_hits: self.geo_addresses.hits,
            geo_misses: self.geo_addresses.misses,
            geo_internal: self.geo_internal,
            agent_hits: self.agent_cache.hits,
            agent_misses: self.agent_cache.misses - self.agent_unclassified,
            agent_unclassified: self.agent_unclassified,
            bots_dropped: self.bots_dropped,
        };
        self.geo_addresses.hits = 0;
        self.geo_addresses.misses = 0;
        self.geo_records.hits = 0;
        self.geo_records.misses = 0;
        self.agent_cache.hits = 0;
        self.agent_cache.misses = 0;
        self.agent_unclassified = 0;
        self.geo_internal = 0;
        self.bots_dropped = 0;
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents_only(ua_parse: bool) -> Enricher {
        let config = EnrichConfig { ua_parse, bots: BotPolicy::Flag, ..EnrichConfig::default() };
        Enricher::new(Some(Arc::new(Enrichment::new(&config, IpMode::Full).unwrap())))
    }

    #[test]
    fn the_cache_answers_what_the_parser_answers() {
        #[derive(serde::Deserialize)]
        struct Case {
            ua: String,
        }
        let cases: Vec<Case> = serde_json::from_str(include_str!("../../tests/data/ua_reference.json")).unwrap();
        let parser = Agents::new(true, true).unwrap();
        let mut enricher = agents_only(true);
        for pass in 0..2 {
            for case in &cases {
                let mut direct = Vec::new();
                parser.render(case.ua.as_bytes(), &mut direct);
                // A fresh budget for each: this compares renderings, not the budget (tests below).
                enricher.agent_budget = AgentBudget::new(Instant::now());
                assert_eq!(enricher.enrich(None, case.ua.as_bytes()).fragment, direct, "pass {pass}: {}", case.ua);
            }
        }
        let counts = enricher.take_counts();
        assert_eq!((counts.agent_misses, counts.agent_hits), (cases.len() as u64, cases.len() as u64));
    }

    #[test]
    fn a_burst_of_new_user_agents_classifies_a_bounded_number_per_iteration_and_records_the_rest_unclassified() {
        let mut enricher = agents_only(true);
        let agents: Vec<String> = (0..100).map(|i| format!("Mozilla/5.0 (X11; Linux x86_64) Firefox/{i}.0")).collect();
        let unclassified: &[u8] = b",\"agent\":null,\"bot\":false,\"bot_match\":null";
        let pass = |enricher: &mut Enricher| {
            let start = Instant::now();
            enricher.refresh(start);
            let left = agents.iter().filter(|ua| enricher.enrich(None, ua.as_bytes()).fragment == unclassified).count();
            (left, enricher.take_counts())
        };
        let (left, counts) = pass(&mut enricher);
        let per_iteration = AGENT_MISSES_PER_ITERATION as usize;
        assert_eq!(left, 100 - per_iteration);
        assert_eq!((counts.agent_misses, counts.agent_unclassified), (32, 68));
        // The next iteration: the classified ones hit, and another share of the rest is classified.
        let (left, counts) = pass(&mut enricher);
        assert_eq!(left, 100 - 2 * per_iteration);
        assert_eq!((counts.agent_hits, counts.agent_misses, counts.agent_unclassified), (32, 32, 36));
    }

    #[test]
    fn the_time_spent_on_new_user_agents_is_bounded_per_second() {
        let start = Instant::now();
        let mut budget = AgentBudget::new(start);
        for _ in 0..4 {
            assert!(budget.allows());
            budget.spend(AGENT_TIME_PER_SECOND / 4);
        }
        assert!(!budget.allows(), "the second's time is spent");
        budget.next_iteration(start + Duration::from_millis(500));
        assert!(!budget.allows(), "a new iteration in the same second does not give time back");
        budget.next_iteration(start + Duration::from_secs(1));
        assert!(budget.allows(), "the next second does");
        for _ in 0..AGENT_MISSES_PER_ITERATION {
            budget.spend(Duration::ZERO);
        }
        assert!(!budget.allows(), "and the count per iteration holds however cheap they were");
    }

    #[test]
    fn a_user_agent_over_the_limit_is_not_classified_and_takes_no_place_in_the_cache() {
        let mut enricher = agents_only(false);
        let long = "x".repeat(agent::MAX_CLASSIFIED + 1);
        for _ in 0..3 {
            assert_eq!(enricher.enrich(None, long.as_bytes()).fragment, b",\"bot\":false,\"bot_match\":null");
        }
        let counts = enricher.take_counts();
        assert_eq!((counts.agent_misses, counts.agent_hits), (0, 0), "the cache was not asked");
    }
}
