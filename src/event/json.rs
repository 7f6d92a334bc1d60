//! The JSON pieces of the hot path: escaping strings, validating a body, and re-emitting validated JSON on
//! one line. Validation is serde_json's (after `std::str::from_utf8`: `IgnoredAny` alone would accept invalid
//! UTF-8 inside strings); the re-emission and the array split are byte scans that are correct only on input
//! that already passed `validate`. Re-emission also refuses what `validate` lets through but a strict reader
//! of the shipped line would not take: nesting deeper than `MAX_DEPTH` (`IgnoredAny` has no depth limit),
//! lone surrogate escapes, numbers beyond an f64. Duplicate keys and integers beyond 64 bits are kept verbatim.

use serde::de::IgnoredAny;

use crate::http::HttpError;

/// Which bytes need escaping inside a JSON string: controls, `"` and `\`.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `s` (valid UTF-8) as the inside of a JSON string.
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if !NEEDS_ESCAPE[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Appends `s` as the inside of a JSON string, replacing invalid UTF-8 with U+FFFD. For header values, which
/// HTTP allows to carry any octet.
pub fn escape_lossy_into(out: &mut Vec<u8>, s: &[u8]) {
    match std::str::from_utf8(s) {
        Ok(_) => escape_into(out, s),
        Err(_) => escape_into(out, String::from_utf8_lossy(s).as_bytes()),
    }
}

/// Is `text` one valid JSON value (surrounding whitespace allowed)?
pub fn validate(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

/// The deepest nesting of arrays and objects a body (or NDJSON line) may have → 400. A record adds one level,
/// so every line stays well inside the 128 levels serde_json's default reader (and Python's json) accept.
pub const MAX_DEPTH: usize = 64;

/// Validated JSON that strict readers would still refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    TooDeep,
    /// A `\uD800`–`\uDFFF` escape that is not half of a surrogate pair: not Unicode.
    LoneSurrogate,
    /// A number beyond the range of an f64 (`1e400`): readers fail or turn it into infinity.
    NumberOutOfRange,
}

impl From<JsonError> for HttpError {
    fn from(e: JsonError) -> HttpError {
        HttpError::BadRequest(match e {
            JsonError::TooDeep => "JSON nested deeper than 64 levels",
            JsonError::LoneSurrogate => "lone UTF-16 surrogate escape in a JSON string",
            JsonError::NumberOutOfRange => "JSON number out of range",
        })
    }
}

/// Appends validated JSON `text` without insignificant whitespace, so it fits on one line, and refuses what a
/// strict reader could not read back (`JsonError`). On error `out` is left as it was.
pub fn minify_into(out: &mut Vec<u8>, text: &[u8]) -> Result<(), JsonError> {
    let len = out.len();
    let result = minify(out, text);
    if result.is_err() {
        out.truncate(len);
    }
    result
}

fn minify(out: &mut Vec<u8>, text: &[u8]) -> Result<(), JsonError> {
    let mut depth = 0usize;
    let mut copy_from = 0;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                i = string_end(text, i)?;
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(JsonError::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b' ' | b'\t' | b'\n' | b'\r' => {
                out.extend_from_slice(&text[copy_from..i]);
                copy_from = i + 1;
            }
            b'-' | b'0'..=b'9' => {
                let end = i + text[i..].iter().take_while(|&&b| NUMBER[usize::from(b)]).count();
                check_number(&text[i..end])?;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.extend_from_slice(&text[copy_from..]);
    Ok(())
}

/// The bytes of a JSON number token.
static NUMBER: [bool; 256] = {
    let mut set = [false; 256];
    let bytes = b"0123456789+-.eE";
    let mut i = 0;
    while i < bytes.len() {
        set[bytes[i] as usize] = true;
        i += 1;
    }
    set
};

/// Where the string literal whose opening quote is at `quote` ends (just past its closing quote). Checks that
/// every `\u` surrogate escape is half of a pair.
pub(crate) fn string_end(text: &[u8], quote: usize) -> Result<usize, JsonError> {
    let mut i = quote + 1;
    while let Some(at) = quote_or_escape(text, i) {
        i = at;
        if text[i] == b'"' {
            return Ok(i + 1);
        }
        if text.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        match utf16_escape(text, i) {
            Some(0xD800..=0xDBFF) if matches!(utf16_escape(text, i + 6), Some(0xDC00..=0xDFFF)) => i += 12,
            Some(0xD800..=0xDFFF) => return Err(JsonError::LoneSurrogate),
            _ => i += 6,
        }
    }
    Ok(text.len())
}

/// Where the first `"` or `\\` at or after `from` is. Most strings of events are keys and short values, for which
/// a call to memchr costs more than it finds: the first 32 bytes are searched a word (8 bytes) at a time, the
/// rest by memchr.
#[inline]
fn quote_or_escape(text: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while i + 8 <= text.len() && i - from < 32 {
        let word = u64::from_le_bytes(text[i..i + 8].try_into().unwrap_or_default());
        let (quote, backslash) = (word ^ (ONES * u64::from(b'"')), word ^ (ONES * u64::from(b'\\')));
        // A zero byte of either marks a match; the lowest one is exact (only bytes above it can be false).
        let found = ((quote.wrapping_sub(ONES) & !quote) | (backslash.wrapping_sub(ONES) & !backslash)) & HIGHS;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i + 8 > text.len() {
        return text[i..].iter().position(|&b| b == b'"' || b == b'\\').map(|at| i + at);
    }
    memchr::memchr2(b'"', b'\\', &text[i..]).map(|at| i + at)
}

/// The code unit of the `\uXXXX` escape at `at`, if there is one.
fn utf16_escape(text: &[u8], at: usize) -> Option<u32> {
    let digits = text.get(at..at + 6)?.strip_prefix(b"\\u")?;
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// A number token of validated JSON. Only an exponent or more digits than an f64 can hold can leave its range.
fn check_number(token: &[u8]) -> Result<(), JsonError> {
    if token.len() <= 300 && !token.iter().any(|&b| b == b'e' || b == b'E') {
        return Ok(());
    }
    let value: f64 = std::str::from_utf8(token).ok().and_then(|t| t.parse().ok()).unwrap_or(f64::INFINITY);
    if value.is_finite() { Ok(()) } else { Err(JsonError::NumberOutOfRange) }
}

/// Calls `f` with each top-level element of a minified, validated JSON array `text` (`[` ... `]`).
pub fn for_each_array_element(text: &[u8], mut f: impl FnMut(&[u8])) {
    debug_assert!(text.first() == Some(&b'[') && text.last() == Some(&b']'));
    let inner = &text[1..text.len() - 1];
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < inner.len() {
        match inner[i] {
            b'"' => {
                // minify_into already checked every string.
                i = string_end(inner, i).unwrap_or(inner.len());
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                f(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if !inner.is_empty() {
        f(&inner[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        let table: &[(&[u8], &[u8])] = &[
            (b"plain", b"plain"),
            (b"a\"b", b"a\\\"b"),
            (b"back\\slash", b"back\\\\slash"),
            (b"line\nbreak\r\t", b"line\\nbreak\\r\\t"),
            (b"\x00\x1f", b"\\u0000\\u001f"),
            ("héllo ✓".as_bytes(), "héllo ✓".as_bytes()),
            (b"{\"}", b"{\\\"}"),
        ];
        for (input, want) in table {
            let mut out = Vec::new();
            escape_into(&mut out, input);
            assert_eq!(&out[..], *want, "{:?}", String::from_utf8_lossy(input));
            let quoted = format!("\"{}\"", String::from_utf8(out).unwrap());
            let back: String = serde_json::from_str(&quoted).unwrap();
            assert_eq!(back.as_bytes(), *input);
        }
    }

    #[test]
    fn lossy_escape_replaces_invalid_utf8() {
        let mut out = Vec::new();
        escape_lossy_into(&mut out, b"ok\xffok");
        assert_eq!(out, "ok\u{fffd}ok".as_bytes());
    }

    #[test]
    fn validates_utf8_inside_strings() {
        assert!(validate(br#"{"a":"b"}"#));
        assert!(validate(b" [1, 2] \n"));
        assert!(!validate(b"{\"a\":\"\xff\"}"));
        assert!(!validate(br#"{"a":}"#));
        assert!(!validate(br#"{"a":1} {"b":2}"#));
        assert!(!validate(b""));
    }

    #[test]
    fn minifies_outside_strings_only() {
        let table: &[(&str, &str)] = &[
            ("{ \"a b\" : [ 1 ,\n 2 ] }", r#"{"a b":[1,2]}"#),
            ("\"x\\\" y\"", "\"x\\\" y\""),
            ("{\"k\":\"a\\\\\" , \"z\" :\t true}", r#"{"k":"a\\","z":true}"#),
        ];
        for (input, want) in table {
            assert!(validate(input.as_bytes()), "{input}");
            let mut out = Vec::new();
            minify_into(&mut out, input.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), *want);
        }
    }

    #[test]
    fn the_end_of_every_string_is_found_wherever_its_quote_falls() {
        // Every position of the closing quote and of an escape, across the word-at-a-time part and memchr's.
        for len in 0..80 {
            for escape in [None, Some(0), Some(7), Some(8), Some(31), Some(32), Some(60)] {
                let mut inner: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                if let Some(at) = escape.filter(|&at| at + 2 <= len) {
                    inner[at] = b'\\';
                    inner[at + 1] = b'"';
                }
                let text = [b"\"".as_slice(), &inner, b"\",1"].concat();
                assert_eq!(string_end(&text, 0), Ok(len + 2), "{}", String::from_utf8_lossy(&text));
                assert_eq!(
                    quote_or_escape(&text, 1),
                    Some(1 + inner.iter().position(|&b| b == b'"' || b == b'\\').unwrap_or(len))
                );
            }
        }
        assert_eq!(quote_or_escape(b"abc", 0), None);
        assert_eq!(quote_or_escape(&[b'x'; 100], 0), None);
    }

    #[test]
    fn splits_top_level_array_elements() {
        let table: &[(&str, &[&str])] = &[
            ("[]", &[]),
            ("[1]", &["1"]),
            (r#"[{"a":[1,2]},"x,y",[3,{"b":"]"}],null]"#, &[r#"{"a":[1,2]}"#, r#""x,y""#, r#"[3,{"b":"]"}]"#, "null"]),
            (r#"["\"",2]"#, &[r#""\"""#, "2"]),
        ];
        for (input, want) in table {
            let mut got = Vec::new();
            for_each_array_element(input.as_bytes(), |e| got.push(String::from_utf8(e.to_vec()).unwrap()));
            assert_eq!(&got, want, "{input}");
        }
    }

    #[test]
    fn refuses_what_strict_readers_cannot_read() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deep_objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        let table: Vec<(String, Result<(), JsonError>)> = vec![
            (deep(MAX_DEPTH), Ok(())),
            (deep(MAX_DEPTH + 1), Err(JsonError::TooDeep)),
            (deep(100_000), Err(JsonError::TooDeep)),
            (deep_objects(MAX_DEPTH), Ok(())),
            (deep_objects(MAX_DEPTH + 1), Err(JsonError::TooDeep)),
            (format!("[{},{}]", deep(MAX_DEPTH - 1), deep(MAX_DEPTH - 1)), Ok(())),
            (r#"{"s":"\ud83d\ude00"}"#.into(), Ok(())),
            (r#"{"s":"\uD83D\uDE00 and \u00e9"}"#.into(), Ok(())),
            (r#"{"s":"\\ud800"}"#.into(), Ok(())),
            (r#"{"s":"\ud800"}"#.into(), Err(JsonError::LoneSurrogate)),
            (r#"{"s":"\udc00"}"#.into(), Err(JsonError::LoneSurrogate)),
            (r#"{"s":"\ud800\u0041"}"#.into(), Err(JsonError::LoneSurrogate)),
            (r#"{"s":"x\ude00\ud83d"}"#.into(), Err(JsonError::LoneSurrogate)),
            (r#"{"\ud800":1}"#.into(), Err(JsonError::LoneSurrogate)),
            ("[1e308, -1.7976931348623157e308, 1e-400, 0.5E+3]".into(), Ok(())),
            ("[1e400]".into(), Err(JsonError::NumberOutOfRange)),
            ("[-1E400]".into(), Err(JsonError::NumberOutOfRange)),
            (format!("[{}]", "9".repeat(300)), Ok(())),
            (format!("[1{}]", "0".repeat(400)), Err(JsonError::NumberOutOfRange)),
            (format!("[1{}]", "0".repeat(100)), Ok(())),
            (r#"{"a":1,"a":2}"#.into(), Ok(())),
            (r#"{"e":"1e400 in a string is text"}"#.into(), Ok(())),
        ];
        for (text, want) in table {
            assert!(validate(text.as_bytes()), "{text:.60}");
            let mut out = b"kept".to_vec();
            let got = minify_into(&mut out, text.as_bytes());
            assert_eq!(got, want, "{text:.60}");
            match got {
                // What is accepted reads back with serde_json's default reader.
                Ok(()) => {
                    serde_json::from_slice::<serde_json::Value>(&out[4..]).unwrap();
                }
                Err(_) => assert_eq!(out, b"kept", "nothing appended on error"),
            }
        }
    }
}
