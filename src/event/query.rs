//! `a=1&b=x+y&a=2` (a query string or a form body) → `{"a":["1","2"],"b":"x y"}`.
//!
//! Keys keep their first-seen order; a repeated key becomes an array of its values in order; a key without `=`
//! gets `""`; empty segments (`&&`) are skipped. Percent escapes and `+` are decoded; an escape that is not two
//! hex digits is kept literally (as fasthttp, which Plutos used, does). Decoded text that is not UTF-8 is
//! rejected: JSON cannot carry it and replacing it would silently change the data. More than `MAX_KEYS` keys in
//! one event are rejected.
//!
//! Finding repeated keys costs time linear in the number of keys: a few keys are compared with each other (by a
//! fingerprint first), more go through a hash table keyed with a per-worker random seed, so no crafted set of
//! keys makes a worker compare every key with every other.

use std::hash::{BuildHasher, RandomState};
use std::ops::Range;

use crate::event::json::escape_into;
use crate::http::{HttpError, percent};

/// The most keys (pairs, repeats included) one event may have → 400.
pub const MAX_KEYS: usize = 1000;
/// Up to this many keys, comparing each with the first key of every group costs less than hashing them.
const FEW_KEYS: usize = 16;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    InvalidUtf8,
    TooManyKeys,
}

impl From<QueryError> for HttpError {
    fn from(e: QueryError) -> HttpError {
        match e {
            QueryError::InvalidUtf8 => HttpError::BadRequest("invalid UTF-8 after decoding"),
            QueryError::TooManyKeys => HttpError::BadRequest("more than 1000 keys in one event"),
        }
    }
}

/// Reusable buffers, so decoding allocates nothing in steady state.
#[derive(Default)]
pub struct QueryScratch {
    decoded: Vec<u8>,
    pairs: Vec<Pair>,
    /// Open-addressing table of pair index + 1 (0 = empty), for many keys.
    table: Vec<u32>,
    hasher: RandomState,
    /// A key left out of every object (`write_key` when write keys are required: a key is never recorded).
    hidden_key: Option<&'static [u8]>,
}

impl QueryScratch {
    /// Leaves every pair whose decoded key is `key` out of the objects.
    pub fn hide_key(&mut self, key: &'static [u8]) {
        self.hidden_key = Some(key);
    }
}

struct Pair {
    key: Range<usize>,
    value: Range<usize>,
    /// Few keys: length and first bytes of the key. Many keys: its seeded hash. Most keys differ here,
    /// sparing a byte comparison.
    fingerprint: u64,
    /// The next pair with the same key, or NONE.
    next: u32,
    /// For the first pair of a key: the last pair with that key so far.
    last: u32,
    /// The first pair with this key: the key is emitted here, with every value of the group.
    first: bool,
}

/// Appends the JSON object for `query` to `out`. On error `out` is left as it was.
pub fn append_query_object(out: &mut Vec<u8>, query: &[u8], scratch: &mut QueryScratch) -> Result<(), QueryError> {
    scratch.decoded.clear();
    scratch.pairs.clear();
    for segment in memchr::memchr_iter(b'&', query).chain([query.len()]).scan(0, |start, end| {
        let segment = &query[*start..end];
        *start = end + 1;
        Some(segment)
    }) {
        if segment.is_empty() {
            continue;
        }
        if scratch.pairs.len() == MAX_KEYS {
            return Err(QueryError::TooManyKeys);
        }
        let (key, value) = match memchr::memchr(b'=', segment) {
            Some(eq) => (&segment[..eq], &segment[eq + 1..]),
            None => (segment, &b""[..]),
        };
        let key = decode_into(&mut scratch.decoded, key)?;
        if scratch.hidden_key.is_some_and(|hidden| scratch.decoded[key.clone()] == *hidden) {
            scratch.decoded.truncate(key.start);
            continue;
        }
        let value = decode_into(&mut scratch.decoded, value)?;
        scratch.pairs.push(Pair { key, value, fingerprint: 0, next: NONE, last: NONE, first: true });
    }
    link_repeated_keys(scratch);

    let d = &scratch.decoded;
    let pairs = &scratch.pairs;
    out.push(b'{');
    for pair in pairs.iter().filter(|p| p.first) {
        if out.last() != Some(&b'{') {
            out.push(b',');
        }
        push_string(out, &d[pair.key.clone()]);
        out.push(b':');
        if pair.next == NONE {
            push_string(out, &d[pair.value.clone()]);
            continue;
        }
        out.push(b'[');
        push_string(out, &d[pair.value.clone()]);
        let mut next = pair.next;
        while next != NONE {
            let p = &pairs[next as usize];
            out.push(b',');
            push_string(out, &d[p.value.clone()]);
            next = p.next;
        }
        out.push(b']');
    }
    out.push(b'}');
    Ok(())
}

/// Links every pair to the next pair with the same key and marks the first of each key.
fn link_repeated_keys(scratch: &mut QueryScratch) {
    let QueryScratch { decoded, pairs, table, hasher, .. } = scratch;
    let n = pairs.len();
    if n <= FEW_KEYS {
        for i in 0..n {
            let key = &decoded[pairs[i].key.clone()];
            pairs[i].fingerprint = fingerprint(key);
            crate::cost::examined(i);
            let earlier = (0..i).find(|&j| {
                let p = &pairs[j];
                p.first && p.fingerprint == pairs[i].fingerprint && decoded[p.key.clone()] == *key
            });
            add_to_group(pairs, earlier, i);
        }
        return;
    }
    let mask = (2 * n).next_power_of_two() - 1;
    table.clear();
    table.resize(mask + 1, 0);
    for i in 0..n {
        let key = &decoded[pairs[i].key.clone()];
        let hash = hasher.hash_one(key);
        pairs[i].fingerprint = hash;
        let mut slot = hash as usize & mask;
        let earlier = loop {
            crate::cost::examined(1);
            match table[slot] {
                0 => {
                    table[slot] = i as u32 + 1;
                    break None;
                }
                entry => {
                    let j = entry as usize - 1;
                    if pairs[j].fingerprint == hash && decoded[pairs[j].key.clone()] == *key {
                        break Some(j);
                    }
                    slot = (slot + 1) & mask;
                }
            }
        };
        add_to_group(pairs, earlier, i);
    }
}

/// Pair `i` starts a new key (`first` = None) or joins the group that starts at `first`.
fn add_to_group(pairs: &mut [Pair], first: Option<usize>, i: usize) {
    match first {
        None => pairs[i].last = i as u32,
        Some(j) => {
            let last = pairs[j].last as usize;
            pairs[last].next = i as u32;
            pairs[j].last = i as u32;
            pairs[i].first = false;
        }
    }
}

fn fingerprint(key: &[u8]) -> u64 {
    key.iter().take(7).enumerate().fold((key.len() as u64) << 56, |f, (i, &b)| f ^ (u64::from(b) << (8 * i)))
}

fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Percent- and `+`-decodes `raw` onto the end of `buf`, returning where it landed; the result must be UTF-8.
fn decode_into(buf: &mut Vec<u8>, raw: &[u8]) -> Result<Range<usize>, QueryError> {
    let range = percent::decode_into(buf, raw);
    let decoded = &buf[range.clone()];
    if !decoded.is_ascii() && std::str::from_utf8(decoded).is_err() {
        return Err(QueryError::InvalidUtf8);
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_json(query: &str) -> Result<String, QueryError> {
        let mut out = b"prefix".to_vec();
        append_query_object(&mut out, query.as_bytes(), &mut QueryScratch::default())?;
        Ok(String::from_utf8(out[6..].to_vec()).unwrap())
    }

    #[test]
    fn decodes_queries_into_json_objects() {
        let table: &[(&str, &str)] = &[
            ("", "{}"),
            ("test=me", r#"{"test":"me"}"#),
            ("a=1&b=2", r#"{"a":"1","b":"2"}"#),
            ("a=1&a=2", r#"{"a":["1","2"]}"#),
            ("a=1&b=2&a=3&a=4", r#"{"a":["1","3","4"],"b":"2"}"#),
            ("flag", r#"{"flag":""}"#),
            ("flag&x=", r#"{"flag":"","x":""}"#),
            ("=v", r#"{"":"v"}"#),
            ("&&a=1&&", r#"{"a":"1"}"#),
            ("q=x+y%20z", r#"{"q":"x y z"}"#),
            ("a%20b=c%3Dd%26e", r#"{"a b":"c=d&e"}"#),
            ("u=%E2%9C%93", r#"{"u":"✓"}"#),
            ("bad=%zz%4", r#"{"bad":"%zz%4"}"#),
            ("pct=100%", r#"{"pct":"100%"}"#),
            ("q=%22quoted%22%5C", r#"{"q":"\"quoted\"\\"}"#),
            ("nl=a%0Ab%00", r#"{"nl":"a\nb\u0000"}"#),
            ("{\"}", r#"{"{\"}":""}"#),
            ("a+b=1&a%20b=2", r#"{"a b":["1","2"]}"#),
        ];
        for (query, want) in table {
            let got = to_json(query).unwrap();
            assert_eq!(&got, want, "query {query:?}");
            serde_json::from_str::<serde_json::Value>(&got).expect("valid JSON");
        }
    }

    #[test]
    fn a_hidden_key_is_left_out_whatever_its_encoding() {
        let mut scratch = QueryScratch::default();
        scratch.hide_key(b"write_key");
        for (query, want) in [
            ("a=1&write_key=secret&b=2", r#"{"a":"1","b":"2"}"#),
            ("write%5Fkey=secret&write_key=again", "{}"),
            ("write_keys=kept", r#"{"write_keys":"kept"}"#),
        ] {
            let mut out = Vec::new();
            append_query_object(&mut out, query.as_bytes(), &mut scratch).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "{query}");
        }
    }

    #[test]
    fn rejects_invalid_utf8_after_decoding() {
        for query in ["a=%ff", "%C3=x", "ok=1&b=%E2%9C"] {
            assert_eq!(to_json(query), Err(QueryError::InvalidUtf8), "{query}");
        }
        for raw in [&b"a=\xff"[..], b"\xc3=x&b=1", b"ok=1&b=\xe2\x9c", b"a=%41&b=\xff"] {
            let mut out = Vec::new();
            let result = append_query_object(&mut out, raw, &mut QueryScratch::default());
            assert_eq!(result, Err(QueryError::InvalidUtf8), "{:?}", String::from_utf8_lossy(raw));
        }
    }

    /// The same object, built the obvious quadratic way.
    fn reference(query: &str) -> String {
        let mut keys: Vec<(String, Vec<String>)> = Vec::new();
        for segment in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = segment.split_once('=').unwrap_or((segment, ""));
            match keys.iter_mut().find(|(key, _)| key == k) {
                Some((_, values)) => values.push(v.to_string()),
                None => keys.push((k.to_string(), vec![v.to_string()])),
            }
        }
        let fields: Vec<String> = keys
            .iter()
            .map(|(k, values)| match &values[..] {
                [one] => format!("\"{k}\":\"{one}\""),
                many => format!("\"{k}\":[{}]", many.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(",")),
            })
            .collect();
        format!("{{{}}}", fields.join(","))
    }

    #[test]
    fn repeated_keys_group_alike_for_few_and_many_keys() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut scratch = QueryScratch::default();
        for round in 0..400 {
            // Up to 4 × FEW_KEYS pairs over a small key alphabet, so both strategies see many repeats.
            let pairs = (next() % (4 * FEW_KEYS as u64 + 1)) as usize;
            let alphabet = 1 + round % 40;
            let query: Vec<String> = (0..pairs).map(|i| format!("k{}=v{i}", next() % alphabet as u64)).collect();
            let query = query.join("&");
            let mut out = Vec::new();
            append_query_object(&mut out, query.as_bytes(), &mut scratch).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), reference(&query), "{query}");
        }
    }

    #[test]
    fn keys_of_up_to_seven_bytes_are_told_apart_by_their_fingerprint_alone() {
        let bytes = [0u8, 1, 2, 3, b'a', b'b', 0xff];
        let mut keys = vec![Vec::new()];
        keys.extend(bytes.iter().map(|&b| vec![b]));
        keys.extend(bytes.iter().flat_map(|&a| bytes.iter().map(move |&b| vec![a, b])));
        keys.extend([b"abcdefg".to_vec(), b"abcdefh".to_vec(), b"bbcdefg".to_vec(), b"abcdef\0".to_vec()]);
        let mut seen = std::collections::HashMap::new();
        for key in &keys {
            if let Some(other) = seen.insert(fingerprint(key), key) {
                panic!("{key:?} and {other:?} share a fingerprint");
            }
        }
        assert_eq!(fingerprint(b"abcdefg"), fingerprint(b"abcdefg"));
    }

    #[test]
    fn many_keys_cost_a_few_probes_each_whether_distinct_or_repeated() {
        for (keys, repeated) in [(17, false), (1000, false), (1000, true)] {
            let query: Vec<String> = (0..keys).map(|i| format!("k{}=v", if repeated { 0 } else { i })).collect();
            crate::cost::take();
            append_query_object(&mut Vec::new(), query.join("&").as_bytes(), &mut QueryScratch::default()).unwrap();
            let probes = crate::cost::take();
            // Linear probing in a table at most half full: about 1.5 probes per key on average.
            assert!(probes <= 4 * keys, "{probes} probes for {keys} keys (repeated: {repeated})");
        }
    }

    #[test]
    fn keys_at_and_over_the_limit() {
        let at_limit: Vec<String> = (0..MAX_KEYS).map(|i| format!("k{i}=v")).collect();
        let json = to_json(&at_limit.join("&")).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap().as_object().unwrap().len(), MAX_KEYS);
        let repeats = "a=1&".repeat(MAX_KEYS); // repeats count too; empty segments do not
        assert!(to_json(&repeats).is_ok());
        assert_eq!(to_json(&format!("{repeats}a=1")), Err(QueryError::TooManyKeys));
        let over: Vec<String> = (0..=MAX_KEYS).map(|i| format!("k{i}")).collect();
        let mut out = b"kept".to_vec();
        let result = append_query_object(&mut out, over.join("&").as_bytes(), &mut QueryScratch::default());
        assert_eq!((result, out.as_slice()), (Err(QueryError::TooManyKeys), &b"kept"[..]));
    }
}
