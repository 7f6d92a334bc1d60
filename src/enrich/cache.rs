//! A worker's bounded memo of rendered enrichment: byte keys (a user agent, a set of database offsets) to the
//! JSON fragment they render to. Two generations: lookups read the current one, then the previous one (a hit
//! there moves the entry forward); when the current one is full it becomes the previous one and the oldest
//! generation is dropped whole. Entries used within the last generation survive, a flood of one-off keys costs
//! at most two generations of memory, and no per-entry bookkeeping runs on a hit.
//!
//! Keys are hashed once with the std SipHash keyed per process (an attacker cannot aim keys at one bucket);
//! the map is keyed by that hash and the entry keeps its key bytes, so a hit is one hash, one probe and one
//! comparison. Two keys that share a hash take turns in one slot: the cache forgets, it never answers one key
//! with another's fragment. (tests/enrich_cache.rs checks the bounds against the heap the cache really holds,
//! and forces collisions with a hasher of its own.)

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// One cached rendering.
pub struct Entry {
    key: Box<[u8]>,
    /// The JSON fragment.
    pub fragment: Box<[u8]>,
    /// A verdict that came with it (a user agent: is it a bot).
    pub flag: bool,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.key.len() + self.fragment.len() + size_of::<Entry>() + size_of::<u64>()
    }
}

/// What a generation may hold before it is retired: entries, and their key and fragment bytes.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub entries: usize,
    pub bytes: usize,
}

pub struct Cache<S = RandomState> {
    hasher: S,
    current: HashMap<u64, Entry, BuildHasherDefault<PreHashed>>,
    previous: HashMap<u64, Entry, BuildHasherDefault<PreHashed>>,
    bounds: Bounds,
    current_bytes: usize,
    pub hits: u64,
    pub misses: u64,
}

impl Cache {
    pub fn new(bounds: Bounds) -> Cache {
        Cache::with_hasher(bounds, RandomState::new())
    }
}

impl<S: BuildHasher> Cache<S> {
    /// A cache whose keys are hashed by `hasher` (tests force collisions with one).
    pub fn with_hasher(bounds: Bounds, hasher: S) -> Cache<S> {
        Cache {
            hasher,
            current: HashMap::default(),
            previous: HashMap::default(),
            bounds,
            current_bytes: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// The entry of `key`, rendered by `render` (into a fragment, with its flag) when it is not cached.
    pub fn get_or_render(&mut self, key: &[u8], render: impl FnOnce(&mut Vec<u8>) -> bool) -> &Entry {
        self.get_or_try_render(key, |out| Some(render(out))).expect("render always renders")
    }

    /// The entry of `key`; when it is not cached, `render` may decline (`None`: nothing is cached, and the
    /// miss is counted all the same).
    pub fn get_or_try_render(
        &mut self,
        key: &[u8],
        render: impl FnOnce(&mut Vec<u8>) -> Option<bool>,
    ) -> Option<&Entry> {
        let hash = self.hasher.hash_one(key);
        if self.current.get(&hash).is_some_and(|e| *e.key == *key) {
            self.hits += 1;
            return Some(&self.current[&hash]);
        }
        let entry = match self.previous.remove(&hash) {
            Some(entry) if *entry.key == *key => {
                self.hits += 1;
                entry
            }
            _ => {
                self.misses += 1;
                let mut fragment = Vec::new();
                let flag = render(&mut fragment)?;
                Entry { key: key.into(), fragment: fragment.into_boxed_slice(), flag }
            }
        };
        if self.current.len() >= self.bounds.entries || self.current_bytes + entry.bytes() > self.bounds.bytes {
            self.previous = std::mem::take(&mut self.current);
            self.current_bytes = 0;
        }
        self.current_bytes += entry.bytes();
        // A different key with the same 64-bit hash is replaced: the cache forgets, it never answers wrongly.
        if let Some(old) = self.current.insert(hash, entry) {
            self.current_bytes -= old.bytes();
        }
        Some(&self.current[&hash])
    }

    /// Forgets everything (the data behind the fragments changed).
    pub fn clear(&mut self) {
        self.current.clear();
        self.previous.clear();
        self.current_bytes = 0;
    }
}

/// The map's hasher for keys that are already SipHash values.
#[derive(Default)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_len(key: &[u8]) -> impl FnOnce(&mut Vec<u8>) -> bool + '_ {
        move |out| {
            out.extend_from_slice(format!("{}", key.len()).as_bytes());
            key.first() == Some(&b'b')
        }
    }

    #[test]
    fn a_key_renders_once_and_hits_after() {
        let mut cache = Cache::new(Bounds { entries: 4, bytes: 1 << 20 });
        let first = cache.get_or_render(b"bot/1", render_len(b"bot/1"));
        assert_eq!((&*first.fragment, first.flag), (&b"5"[..], true));
        let again = cache.get_or_render(b"bot/1", |_| panic!("rendered twice"));
        assert_eq!(&*again.fragment, b"5");
        assert_eq!((cache.hits, cache.misses), (1, 1));
    }

    #[test]
    fn entries_used_in_the_last_generation_survive_a_retirement() {
        let mut cache = Cache::new(Bounds { entries: 2, bytes: 1 << 20 });
        cache.get_or_render(b"a", render_len(b"a"));
        cache.get_or_render(b"b", render_len(b"b"));
        // Full: "c" retires {a, b}; "a" comes back from the previous generation without rendering.
        cache.get_or_render(b"c", render_len(b"c"));
        cache.get_or_render(b"a", |_| panic!("a was in the previous generation"));
        assert_eq!(cache.misses, 3);
    }
}
