//! Request targets (RFC 9112 §3.2): the origin form nearly always, the absolute form (routed by its path) and
//! the asterisk form; and the bytes a Host header may hold.

use super::{HttpError, byte_set};

/// Origin form (`/path?query`), absolute form (`http://host/path?query`, RFC 9112 §3.2.2: accepted and routed
/// by its path) or asterisk form (`*`); a fragment or anything else is a 400.
pub(super) fn split_target(target: &[u8]) -> Result<(&[u8], &[u8]), HttpError> {
    const FRAGMENT: HttpError = HttpError::BadRequest("fragment in request target");
    if target.first() == Some(&b'/') {
        // The origin form, nearly always: one search finds the query, or a fragment before it.
        let (path, query) = match memchr::memchr2(b'?', b'#', target) {
            Some(at) if target[at] == b'#' => return Err(FRAGMENT),
            Some(q) => (&target[..q], &target[q + 1..]),
            None => (target, &b""[..]),
        };
        if memchr::memchr(b'#', query).is_some() {
            return Err(FRAGMENT);
        }
        return Ok((path, query));
    }
    if memchr::memchr(b'#', target).is_some() {
        return Err(FRAGMENT);
    }
    let origin = if target == b"*" {
        target
    } else {
        let scheme = memchr::memmem::find(target, b"://").unwrap_or(0);
        let (name, rest) = (&target[..scheme], &target[(scheme + 3).min(target.len())..]);
        if !(name.eq_ignore_ascii_case(b"http") || name.eq_ignore_ascii_case(b"https")) {
            return Err(HttpError::BadRequest("invalid request target"));
        }
        let authority = rest.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(rest.len());
        if authority == 0 || !rest[..authority].iter().all(|&b| is_host_char(b) || b == b'@') {
            return Err(HttpError::BadRequest("invalid request target"));
        }
        &rest[authority..]
    };
    let (path, query) = match memchr::memchr(b'?', origin) {
        Some(q) => (&origin[..q], &origin[q + 1..]),
        None => (origin, &b""[..]),
    };
    Ok((if path.is_empty() { b"/" } else { path }, query))
}

/// The bytes of `uri-host [ ":" port ]`: unreserved, pct-encoded, sub-delims, ":" and the IP-literal brackets.
pub(super) fn is_host_char(b: u8) -> bool {
    HOST[usize::from(b)]
}

static HOST: [bool; 256] = byte_set(b"-._~%!$&'()*+,;=:[]");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_absolute_and_asterisk_forms() {
        let table: &[(&[u8], &[u8], &[u8])] = &[
            (b"/e?a=1", b"/e", b"a=1"),
            (b"http://collector.example/e?a=1", b"/e", b"a=1"),
            (b"HTTPS://h:8080/e", b"/e", b""),
            (b"http://h?x=1", b"/", b"x=1"),
            (b"*", b"*", b""),
        ];
        for (target, path, query) in table {
            assert_eq!(split_target(target), Ok((*path, *query)), "{}", String::from_utf8_lossy(target));
        }
        for bad in [&b"/e#frag"[..], b"/e?a#b", b"ftp://h/e", b"http:///e", b"e"] {
            assert!(split_target(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
