//! CORS for `/e` (`CORS_ORIGINS`): which web origins may call the collector from a page, the headers that tell a
//! browser so, and the answer to a preflight.
//!
//! With an explicit list, an allowed origin is echoed with `Access-Control-Allow-Credentials: true` (a
//! `sendBeacon` or a `fetch` with credentials needs both) and a request from any other origin is refused (403,
//! nothing stored); with `*`, every origin is allowed and the answers say `*`. Without `CORS_ORIGINS` no answer
//! carries CORS headers and the `Origin` header is not looked at. The header block of each allowed origin is
//! rendered once, at start, so an answer only copies it.

/// `CORS_ORIGINS`: a list of origins (`https://shop.example`, `http://localhost:3000`), or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origins {
    /// No CORS headers; `Origin` is not checked.
    #[default]
    Off,
    Any,
    List(Vec<String>),
}

/// The request headers a page may send to `/e` (what a preflight may be told): the body type, its
/// compression, and the two places a write key travels.
const ALLOWED_HEADERS: [&[u8]; 4] = [b"content-type", b"content-encoding", b"x-write-key", b"authorization"];

/// Seconds a browser may cache a preflight answer (Chromium caps it at 7200).
const MAX_AGE: &str = "7200";

/// What the `Origin` of a request means for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No `Origin`, or CORS off: an answer without CORS headers.
    Plain,
    /// An allowed origin: `Cors::headers` of the grant go into every answer to it.
    Allowed(Grant),
    /// An origin the list does not name: 403, nothing stored.
    Refused,
}

/// Which allowed origin a request came from (an index, so it borrows nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant(u32);

#[derive(Debug, Clone, Default)]
pub struct Cors {
    mode: Mode,
}

#[derive(Debug, Clone, Default)]
enum Mode {
    #[default]
    Off,
    Any,
    List(Vec<Listed>),
}

/// An origin of the list, with the header lines of an answer to it.
#[derive(Debug, Clone)]
struct Listed {
    origin: Box<[u8]>,
    headers: Box<[u8]>,
}

/// The header lines of an answer to an allowed origin when every origin is allowed.
const ANY_HEADERS: &[u8] = b"Access-Control-Allow-Origin: *\r\n";

impl Cors {
    pub fn new(origins: &Origins) -> Cors {
        let mode = match origins {
            Origins::Off => Mode::Off,
            Origins::Any => Mode::Any,
            Origins::List(list) => Mode::List(
                list.iter()
                    .map(|origin| {
                        let headers = format!(
                            "Access-Control-Allow-Origin: {origin}\r\nAccess-Control-Allow-Credentials: true\r\n\
                             Vary: Origin\r\n"
                        );
                        Listed { origin: origin.as_bytes().into(), headers: headers.into_bytes().into() }
                    })
                    .collect(),
            ),
        };
        Cors { mode }
    }

    /// No `CORS_ORIGINS`: `Origin` is not even looked at.
    pub fn is_off(&self) -> bool {
        matches!(self.mode, Mode::Off)
    }

    /// What a request's `Origin` header means for its answer.
    pub fn verdict(&self, origin: Option<&[u8]>) -> Verdict {
        match (&self.mode, origin) {
            (Mode::Off, _) | (_, None) => Verdict::Plain,
            (Mode::Any, Some(_)) => Verdict::Allowed(Grant(0)),
            (Mode::List(list), Some(origin)) => match list.iter().position(|l| *l.origin == *origin) {
                Some(i) => Verdict::Allowed(Grant(i as u32)),
                None => Verdict::Refused,
            },
        }
    }

    /// The header lines of every answer to a request with `grant` (none without one).
    pub fn headers(&self, grant: Option<Grant>) -> &[u8] {
        match (&self.mode, grant) {
            (Mode::Off, _) | (_, None) => b"",
            (Mode::Any, Some(_)) => ANY_HEADERS,
            (Mode::List(list), Some(Grant(i))) => list.get(i as usize).map_or(&b""[..], |l| &l.headers),
        }
    }

    /// The header lines of the answer to a preflight (`OPTIONS` with `Origin`), appended to `out`: the origin,
    /// the methods of the route, the requested headers that are allowed (echoed), the cache time and `Vary`.
    /// Nothing for an origin that is not allowed or a preflight of a method the route does not take, so the
    /// browser stops there.
    pub fn preflight(
        &self,
        origin: Option<&[u8]>,
        method: Option<&[u8]>,
        headers: Option<&[u8]>,
        allow: &str,
        out: &mut Vec<u8>,
    ) {
        let Verdict::Allowed(grant) = self.verdict(origin) else {
            return;
        };
        let allowed = self.headers(Some(grant));
        let method_allowed = method.is_some_and(|m| allow.split(", ").any(|a| a.as_bytes() == m));
        if !method_allowed {
            return;
        }
        out.extend_from_slice(allowed);
        if matches!(self.mode, Mode::Any) {
            // A listed origin's lines already carry it; a `*` preflight answer still depends on `Origin`.
            out.extend_from_slice(b"Vary: Origin\r\n");
        }
        out.extend_from_slice(b"Access-Control-Allow-Methods: ");
        out.extend_from_slice(allow.as_bytes());
        out.extend_from_slice(b"\r\n");
        let requested = headers.unwrap_or(b"").split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|h| !h.is_empty());
        let mut first = true;
        for name in requested.filter(|h| ALLOWED_HEADERS.iter().any(|a| h.eq_ignore_ascii_case(a))) {
            out.extend_from_slice(if first { b"Access-Control-Allow-Headers: " } else { b", " });
            out.extend_from_slice(name);
            first = false;
        }
        if !first {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Access-Control-Max-Age: ");
        out.extend_from_slice(MAX_AGE.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// `CORS_ORIGINS` as given: `*`, or origins separated by commas (`scheme://host[:port]`, no path).
pub fn parse_origins(value: &str) -> Result<Origins, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Origins::Off);
    }
    if value == "*" {
        return Ok(Origins::Any);
    }
    let mut list = Vec::new();
    for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let origin = origin.strip_suffix('/').unwrap_or(origin);
        let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        match host {
            Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ', '*']) => {
                list.push(origin.to_ascii_lowercase())
            }
            _ => return Err(format!("expected * or origins like https://shop.example, got {origin:?}")),
        }
    }
    Ok(Origins::List(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight(cors: &Cors, origin: &str, method: &str, headers: Option<&str>) -> String {
        let mut out = Vec::new();
        cors.preflight(
            Some(origin.as_bytes()),
            Some(method.as_bytes()),
            headers.map(str::as_bytes),
            "GET, HEAD, POST, OPTIONS",
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_the_setting() {
        assert_eq!(parse_origins(""), Ok(Origins::Off));
        assert_eq!(parse_origins("*"), Ok(Origins::Any));
        assert_eq!(
            parse_origins("https://Shop.example/, http://localhost:3000"),
            Ok(Origins::List(vec!["https://shop.example".into(), "http://localhost:3000".into()]))
        );
        for bad in ["shop.example", "https://shop.example/path", "ftp://x", "https://", "https://*.example"] {
            assert!(parse_origins(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_listed_origin_is_echoed_with_credentials_and_others_are_refused() {
        let cors = Cors::new(&Origins::List(vec!["https://a.example".into()]));
        let Verdict::Allowed(grant) = cors.verdict(Some(b"https://a.example")) else { panic!() };
        assert_eq!(
            cors.headers(Some(grant)),
            b"Access-Control-Allow-Origin: https://a.example\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
        );
        assert_eq!(cors.verdict(Some(b"https://b.example")), Verdict::Refused);
        assert_eq!(cors.verdict(Some(b"https://a.example.evil")), Verdict::Refused);
        assert_eq!(cors.verdict(None), Verdict::Plain);
        assert_eq!(Cors::new(&Origins::Off).verdict(Some(b"https://b.example")), Verdict::Plain);
        let any = Cors::new(&Origins::Any);
        let Verdict::Allowed(grant) = any.verdict(Some(b"https://b.example")) else { panic!() };
        assert_eq!(any.headers(Some(grant)), ANY_HEADERS);
        assert_eq!(any.headers(None), b"");
    }

    #[test]
    fn preflight_echoes_only_allowed_headers() {
        let cors = Cors::new(&Origins::List(vec!["https://a.example".into()]));
        let answer = preflight(&cors, "https://a.example", "POST", Some("Content-Type, X-Write-Key, X-Other"));
        assert!(answer.contains("Access-Control-Allow-Origin: https://a.example\r\n"), "{answer}");
        assert!(answer.contains("Access-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\r\n"), "{answer}");
        assert!(answer.contains("Access-Control-Allow-Headers: Content-Type, X-Write-Key\r\n"), "{answer}");
        assert!(answer.contains("Access-Control-Max-Age: 7200\r\n") && answer.contains("Vary: Origin\r\n"));
        let answer = preflight(&cors, "https://a.example", "POST", None);
        assert!(!answer.contains("Allow-Headers") && answer.contains("Allow-Methods"), "{answer}");
        assert_eq!(preflight(&cors, "https://b.example", "POST", None), "");
        assert_eq!(preflight(&cors, "https://a.example", "DELETE", None), "");
        let any = preflight(&Cors::new(&Origins::Any), "https://b.example", "POST", Some("content-type"));
        assert!(any.starts_with("Access-Control-Allow-Origin: *\r\nVary: Origin\r\n"), "{any}");
        assert!(!any.contains("Credentials"), "{any}");
    }
}
