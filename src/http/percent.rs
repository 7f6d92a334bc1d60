//! Percent- and `+`-decoding of URL query and form text (`application/x-www-form-urlencoded`).

use std::ops::Range;

/// Decodes `raw` onto the end of `buf` and returns where it landed. `+` is a space; an escape that is not two
/// hex digits is kept literally (as fasthttp, which Plutos used, does). The result may be any bytes.
/// Inlined into the query decoder, which runs for every GET.
#[inline]
pub fn decode_into(buf: &mut Vec<u8>, raw: &[u8]) -> Range<usize> {
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
    start..buf.len()
}

/// The raw (still encoded) value of the first `name=` pair of a query, if any.
pub fn find_param<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix(b"="))
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

    fn decoded(raw: &str) -> Vec<u8> {
        let mut buf = b"x".to_vec();
        let range = decode_into(&mut buf, raw.as_bytes());
        buf[range].to_vec()
    }

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(decoded("a+b%20c%2b"), b"a b c+");
        assert_eq!(decoded("100%"), b"100%");
        assert_eq!(decoded("%zz%4"), b"%zz%4");
        assert_eq!(decoded("%ff"), [0xff]);
    }

    #[test]
    fn finds_the_first_pair_by_exact_name() {
        assert_eq!(find_param(b"a=1&write_key=k%2B1&write_key=2", b"write_key"), Some(&b"k%2B1"[..]));
        assert_eq!(find_param(b"xwrite_key=1&write_key", b"write_key"), None);
        assert_eq!(find_param(b"", b"write_key"), None);
    }
}
