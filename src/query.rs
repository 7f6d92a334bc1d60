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
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

/// Appends the JSON object for `query` to `out`. On error `out` is left as it was.
pub fn append_query_object(out: &mut Vec<u8>, query: &[u8], scratch: &mut QueryScratch) -> Result<(), InvalidUtf8> {
    scratch.decoded.clear();
    scratch.pairs.clear();
    // Without percent escapes, decoding only turns `+` into a space: the pieces are valid UTF-8 exactly when
    // the whole query is, so one check covers them all.
    let escaped = query.contains(&b'%');
    if !escaped && std::str::from_utf8(query).is_err() {
        return Err(InvalidUtf8);
    }
    for segment in query.split(|&b| b == b'&') {
        if segment.is_empty() {
            continue;
        }
        let (key, value) = match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (&segment[..eq], &segment[eq + 1..]),
            None => (segment, &b""[..]),
        };
        let key = decode_into(&mut scratch.decoded, key, escaped)?;
        let value = decode_into(&mut scratch.decoded, value, escaped)?;
        scratch.pairs.push((key, value));
    }

    let d = &scratch.decoded;
    let pairs = &scratch.pairs;
    out.push(b'{');
    let mut first = true;
    for (i, (key, value)) in pairs.iter().enumerate() {
        let same_key = |(k, _): &(Range<usize>, Range<usize>)| d[k.clone()] == d[key.clone()];
        if pairs[..i].iter().any(same_key) {
            continue; // already emitted with its first occurrence
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        escape_into(out, &d[key.clone()]);
        out.extend_from_slice(b"\":");
        let repeats = pairs[i + 1..].iter().filter(|p| same_key(p)).count();
        if repeats == 0 {
            push_string(out, &d[value.clone()]);
        } else {
            out.push(b'[');
            push_string(out, &d[value.clone()]);
            for (_, v) in pairs[i + 1..].iter().filter(|p| same_key(p)) {
                out.push(b',');
                push_string(out, &d[v.clone()]);
            }
            out.push(b']');
        }
    }
    out.push(b'}');
    Ok(())
}

fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Percent- and `+`-decodes `raw` onto the end of `buf`, returning where it landed. `validate`: check that the
/// result is UTF-8 (the caller may know it already is).
fn decode_into(buf: &mut Vec<u8>, raw: &[u8], validate: bool) -> Result<Range<usize>, InvalidUtf8> {
    let start = buf.len();
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        buf.extend_from_slice(raw);
        if validate {
            std::str::from_utf8(&buf[start..]).map_err(|_| InvalidUtf8)?;
        }
        return Ok(start..buf.len());
    }
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => buf.push(b' '),
            b'%' => match (hex_value(raw.get(i + 1)), hex_value(raw.get(i + 2))) {
                (Some(h), Some(l)) => {
                    buf.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => buf.push(b'%'),
            },
            b => buf.push(b),
        }
        i += 1;
    }
    if validate {
        std::str::from_utf8(&buf[start..]).map_err(|_| InvalidUtf8)?;
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
