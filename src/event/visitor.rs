//! A visitor's first-party id: a cookie the collector sets on its own domain, read back from the requests the
//! browser sends with credentials, and written into each record as `visitor_id`. Snowplow's network user id
//! (the `sp` cookie) is this mechanism.
//!
//! The id of a request is the one the client names (`?nuid=`, a tracker that knows its id), else the cookie's,
//! else a new one; the answer sets the cookie to it again (so its year starts over with each visit). A request
//! that opts out (`SP-Anonymous`) gets no id, reads no cookie and is set none. New ids are UUIDv4 text from a
//! per-worker generator seeded from the kernel: no syscall per new visitor, nothing shared between workers.

use crate::http::{fields, is_token};

/// Visitor ids longer than this, or with bytes outside a cookie value's, are not ids: a new one is given.
const MAX_ID: usize = 128;

/// The cookie's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// The cookie's name (a token).
    pub name: String,
    /// `Domain=` for the cookie (e.g. `.example.com`, so every subdomain's collector reads it); `None`: the
    /// collector's own host only.
    pub domain: Option<String>,
    pub max_age_seconds: u64,
}

/// One worker's visitor ids: its cookie settings, its id generator and the `Set-Cookie` line of the last answer.
pub struct Visitors {
    cookie: Option<Cookie>,
    state: u64,
    /// The id of the current request.
    id: String,
    /// `Set-Cookie: …\r\n` for the current request's answer (empty: none).
    set_cookie: Vec<u8>,
}

/// The cookie's settings, its `Set-Cookie` line rendered once but for the id.
struct Cookie {
    name: String,
    /// `Set-Cookie: {name}=`
    prefix: String,
    /// `; Max-Age=…[; Domain=…]; Path=/; SameSite=None; Secure; HttpOnly\r\n`
    attributes: String,
}

impl Cookie {
    fn new(config: CookieConfig) -> Cookie {
        let domain = config.domain.map(|d| format!("; Domain={d}")).unwrap_or_default();
        // SameSite=None: the cookie travels with requests from the pages of other sites that embed the tracker,
        // which browsers allow only for Secure cookies.
        let attributes =
            format!("; Max-Age={}{domain}; Path=/; SameSite=None; Secure; HttpOnly\r\n", config.max_age_seconds);
        Cookie { prefix: format!("Set-Cookie: {}=", config.name), name: config.name, attributes }
    }
}

impl Visitors {
    /// `cookie`: `None` keeps no cookie (only `?nuid=` names a visitor). `seed`: random bits for the generator.
    pub fn new(cookie: Option<CookieConfig>, seed: u64) -> Visitors {
        Visitors { cookie: cookie.map(Cookie::new), state: seed, id: String::new(), set_cookie: Vec::new() }
    }

    /// The visitor of a request whose head is `head_raw`, naming itself `named` (the decoded `nuid` parameter) or
    /// not, opting out (`anonymous`) or not.
    /// Returns the visitor's id; `set_cookie` is then the line its answer carries.
    pub fn identify(&mut self, head_raw: &[u8], named: Option<&[u8]>, anonymous: bool) -> Option<&str> {
        self.id.clear();
        self.set_cookie.clear();
        if anonymous {
            return None;
        }
        let from_cookie = || {
            let name = self.cookie.as_ref()?.name.as_bytes();
            fields(head_raw).filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie")).find_map(|(_, v)| cookie_value(v, name))
        };
        match named.filter(|id| is_id(id)).or_else(from_cookie) {
            // An id is ASCII (checked by `is_id`).
            Some(id) => self.id.push_str(std::str::from_utf8(id).unwrap_or_default()),
            None if self.cookie.is_some() => self.new_id(),
            None => return None,
        }
        if let Some(cookie) = &self.cookie {
            for part in [&cookie.prefix, &self.id, &cookie.attributes] {
                self.set_cookie.extend_from_slice(part.as_bytes());
            }
        }
        Some(&self.id)
    }

    /// The `Set-Cookie` line for the answer to the request last identified (empty: none).
    pub fn set_cookie(&self) -> &[u8] {
        &self.set_cookie
    }

    /// A UUIDv4 from the worker's generator (wyrand: 64 bits a step, statistically sound, not secret — a
    /// visitor id is a name, not a credential).
    fn new_id(&mut self) {
        let mut bits = [0u8; 16];
        for half in bits.chunks_mut(8) {
            self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
            let product = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
            half.copy_from_slice(&((product >> 64) as u64 ^ product as u64).to_le_bytes());
        }
        bits[6] = (bits[6] & 0x0f) | 0x40;
        bits[8] = (bits[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in bits.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                self.id.push('-');
            }
            self.id.push(HEX[usize::from(byte >> 4)] as char);
            self.id.push(HEX[usize::from(byte & 0xf)] as char);
        }
    }
}

/// The value of cookie `name` in one `Cookie` header value (`a=1; sp=…; b=2`), if it is a usable id.
fn cookie_value<'h>(header: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let value = pair[eq + 1..].strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(&pair[eq + 1..]);
        (&pair[..eq] == name && is_id(value)).then_some(value)
    })
}

/// Whether `value` can be a visitor id: 1 to 128 token bytes (what a cookie value and a JSON string carry as is).
fn is_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_ID && value.iter().all(|&b| is_token(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitors(domain: Option<&str>) -> Visitors {
        let cookie = CookieConfig { name: "sp".into(), domain: domain.map(String::from), max_age_seconds: 31_536_000 };
        Visitors::new(Some(cookie), 7)
    }

    fn head(cookies: &str) -> Vec<u8> {
        format!("GET /i HTTP/1.1\r\nHost: c\r\n{cookies}\r\n").into_bytes()
    }

    #[test]
    fn the_id_is_the_named_one_then_the_cookies_then_a_new_one() {
        let mut v = visitors(None);
        let with_cookie = head("Cookie: a=1; sp=5f0c1d2e-aaaa-4bbb-8ccc-0123456789ab; b=2\r\n");
        assert_eq!(v.identify(&with_cookie, Some(b"nuid-from-tracker"), false), Some("nuid-from-tracker"));
        assert_eq!(
            v.set_cookie(),
            b"Set-Cookie: sp=nuid-from-tracker; Max-Age=31536000; Path=/; SameSite=None; Secure; HttpOnly\r\n"
        );
        assert_eq!(v.identify(&with_cookie, None, false), Some("5f0c1d2e-aaaa-4bbb-8ccc-0123456789ab"));
        let second_line = head("Cookie: a=1\r\nCookie: sp=\"quoted-id\"\r\n");
        assert_eq!(v.identify(&second_line, None, false), Some("quoted-id"));
        let fresh = v.identify(&head(""), None, false).unwrap().to_string();
        let another = v.identify(&head("Cookie: xsp=1; sp=\r\n"), None, false).unwrap().to_string();
        for id in [&fresh, &another] {
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!((&id[14..15], &id[8..9]), ("4", "-"), "UUIDv4 text: {id}");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        }
        assert_ne!(fresh, another);
    }

    #[test]
    fn unusable_ids_are_replaced_and_an_opt_out_gets_none() {
        let mut v = visitors(Some(".example.com"));
        for bad in ["Cookie: sp=a b\r\n", "Cookie: sp=<script>\r\n", &format!("Cookie: sp={}\r\n", "x".repeat(129))] {
            assert_eq!(v.identify(&head(bad), Some(b"has space"), false).unwrap().len(), 36, "{bad:?}");
            let line = String::from_utf8(v.set_cookie().to_vec()).unwrap();
            assert!(line.contains("; Domain=.example.com; Path=/;"), "{line}");
        }
        assert_eq!(v.identify(&head("Cookie: sp=abc\r\n"), None, true), None);
        assert_eq!(v.set_cookie(), b"");
        let mut cookieless = Visitors::new(None, 1);
        assert_eq!(cookieless.identify(&head("Cookie: sp=abc\r\n"), None, false), None);
        assert_eq!(cookieless.identify(&head(""), Some(b"n-1"), false), Some("n-1"));
        assert_eq!(cookieless.set_cookie(), b"");
    }
}
