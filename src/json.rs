//! The JSON pieces of the hot path: escaping strings, validating a body, and re-emitting validated JSON on
//! one line. Validation is serde_json's (after `std::str::from_utf8`: `IgnoredAny` alone would accept invalid
//! UTF-8 inside strings); the re-emission and the array split are byte scans that are correct only on input
//! that already passed `validate`.

use serde::de::IgnoredAny;

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

/// Follows JSON text byte by byte to tell string literals from structure.
#[derive(Default)]
struct StringTracker {
    in_string: bool,
    escaped: bool,
}

impl StringTracker {
    /// Feeds the next byte; true if it belongs to a string literal (its quotes included).
    fn in_string(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            true
        } else {
            self.in_string = b == b'"';
            self.in_string
        }
    }
}

/// Appends validated JSON `text` without insignificant whitespace, so it fits on one line.
pub fn minify_into(out: &mut Vec<u8>, text: &[u8]) {
    let mut strings = StringTracker::default();
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if !strings.in_string(b) && matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.extend_from_slice(&text[start..i]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&text[start..]);
}

/// Calls `f` with each top-level element of a minified, validated JSON array `text` (`[` ... `]`).
pub fn for_each_array_element(text: &[u8], mut f: impl FnMut(&[u8])) {
    debug_assert!(text.first() == Some(&b'[') && text.last() == Some(&b']'));
    let inner = &text[1..text.len() - 1];
    let mut strings = StringTracker::default();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, &b) in inner.iter().enumerate() {
        if strings.in_string(b) {
            continue;
        }
        match b {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                f(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
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
            minify_into(&mut out, input.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), *want);
        }
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
}
