//! `a=1&b=x+y&a=2` (a query string or a form body) → `{"a":["1","2"],"b":"x y"}`.
//!
//! Keys keep their first-seen order; a repeated key becomes an array of its values in order; a key without `=`
//! gets `""`; empty segments (`&&`) are skipped. Percent escapes and `+` are decoded; an escape that is not two
//! hex digits is kept literally (as fasthttp, which Plutos used, does). Decoded text that is not UTF-8 is
//! rejected: JSON cannot carry it and replacing it would silently change the data.

use std::ops::Range;

use crate::json::escape_into;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Reusable buffers, so decoding allocates nothing in steady state.
#[derive(Default)]
pub struct QueryScratch {
    decoded: Vec<u8>,
    pairs: Vec<Pair>,
}

struct Pair {
    key: Range<usize>,
    value: Range<usize>,
    /// Length and first bytes of the decoded key: most keys differ here, sparing a byte comparison.
    fingerprint: u64,
}

/// Appends the JSON object for `query` to `out`. On error `out` is left as it was.
pub fn append_query_object(out: &mut Vec<u8>, query: &[u8], scratch: &mut QueryScratch) -> Result<(), InvalidUtf8> {
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
        let (key, value) = match memchr::memchr(b'=', segment) {
            Some(eq) => (&segment[..eq], &segment[eq + 1..]),
            None => (segment, &b""[..]),
        };
        let key = decode_into(&mut scratch.decoded, key)?;
        let value = decode_into(&mut scratch.decoded, value)?;
        let fingerprint = fingerprint(&scratch.decoded[key.clone()]);
        scratch.pairs.push(Pair { key, value, fingerprint });
    }

    let d = &scratch.decoded;
    let pairs = &scratch.pairs;
    out.push(b'{');
    for (i, pair) in pairs.iter().enumerate() {
        let key = &d[pair.key.clone()];
        let same_key = |p: &&Pair| p.fingerprint == pair.fingerprint && d[p.key.clone()] == *key;
        if pairs[..i].iter().any(|p| same_key(&p)) {
            continue; // already emitted with its first occurrence
        }
        if out.last() != Some(&b'{') {
            out.push(b',');
        }
        push_string(out, key);
        out.push(b':');
        let mut repeats = pairs[i + 1..].iter().filter(same_key).peekable();
        if repeats.peek().is_none() {
            push_string(out, &d[pair.value.clone()]);
        } else {
            out.push(b'[');
            push_string(out, &d[pair.value.clone()]);
            for p in repeats {
                out.push(b',');
                push_string(out, &d[p.value.clone()]);
            }
            out.push(b']');
        }
    }
    out.push(b'}');
    Ok(())
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
fn decode_into(buf: &mut Vec<u8>, raw: &[u8]) -> Result<Range<usize>, InvalidUtf8> {
    let start = buf.len();
    let mut rest = raw;
    while let Some(at) = memchr::memchr2(b'%', b'+', rest) {
        buf.extend_from_slice(&rest[..at]);
        if rest[at] == b'+' {
            buf.push(b' ');
            rest = &rest[at + 1..];
            continue;
        }
        match (hex_value(rest.get(at + 1)), hex_value(rest.get(at + 2))) {
            (Some(h), Some(l)) => {
                buf.push(h << 4 | l);
                rest = &rest[at + 3..];
            }
            _ => {
                buf.push(b'%');
                rest = &rest[at + 1..];
            }
        }
    }
    buf.extend_from_slice(rest);
    let decoded = &buf[start..];
    if !decoded.is_ascii() && std::str::from_utf8(decoded).is_err() {
        return Err(InvalidUtf8);
    }
    Ok(start..buf.len())
}

fn hex_value(b: Option<&u8>) -> Option<u8> {
    match *b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_json(query: &str) -> Result<String, InvalidUtf8> {
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
    fn rejects_invalid_utf8_after_decoding() {
        for query in ["a=%ff", "%C3=x", "ok=1&b=%E2%9C"] {
            assert_eq!(to_json(query), Err(InvalidUtf8), "{query}");
        }
        for raw in [&b"a=\xff"[..], b"\xc3=x&b=1", b"ok=1&b=\xe2\x9c", b"a=%41&b=\xff"] {
            let mut out = Vec::new();
            let result = append_query_object(&mut out, raw, &mut QueryScratch::default());
            assert_eq!(result, Err(InvalidUtf8), "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
