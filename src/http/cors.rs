//! CORS (`CORS_ORIGINS`): which web origins may call the collector from a page, the headers that tell a browser
//! so, and the answer to a preflight.
//!
//! With an explicit list, an allowed origin is echoed with `Access-Control-Allow-Credentials: true` (a
//! `sendBeacon` or a `fetch` with credentials needs both) and a request from any other origin is refused (403,
//! nothing stored), on every route. Otherwise routes differ:
//! - plutos's `/e`: with `*` every origin is allowed and the answers say `*`; without `CORS_ORIGINS` no answer
//!   carries CORS headers and the `Origin` header is not looked at.
//! - the SDK routes answer as the SDKs' own servers do: any origin is echoed with credentials (Snowplow's
//!   tracker sends its cookie, which `*` cannot carry), with `*` and without `CORS_ORIGINS` alike.
//!
//! The header block of each listed origin is rendered once, at start, so an answer only copies it; an echoed
//! origin is rendered per request.

/// `CORS_ORIGINS`: a list of origins (`https://shop.example`, `http://localhost:3000`), or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origins {
    /// No CORS headers; `Origin` is not checked.
    #[default]
    Off,
    Any,
    List(Vec<String>),
}

/// The request headers a page may send (what a preflight may be told): the body type, its compression, the two
/// places a write key travels, Snowplow's opt-out of tracking and an SDK's retry count.
const ALLOWED_HEADERS: [&[u8]; 6] =
    [b"content-type", b"content-encoding", b"x-write-key", b"authorization", b"sp-anonymous", b"x-retry-count"];

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

/// Which allowed origin a request came from (an index, so it borrows nothing; `ECHO`: the request's own origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant(u32);

impl Grant {
    const ECHO: Grant = Grant(u32::MAX);
}

#[derive(Debug, Clone, Default)]
pub struct Cors {
    mode: Mode,
    /// The header lines of the last echoed origin.
    echoed: Vec<u8>,
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

/// The header lines of an answer to an allowed origin when every origin is allowed. An allowed origin may also
/// read the answer's timing (`Timing-Allow-Origin`: its Resource Timing entries — `nextHopProtocol`, durations —
/// are blank otherwise, which real-user monitoring of the collector needs).
const ANY_HEADERS: &[u8] = b"Access-Control-Allow-Origin: *\r\nTiming-Allow-Origin: *\r\n";

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
                             Timing-Allow-Origin: {origin}\r\nVary: Origin\r\n"
                        );
                        Listed { origin: origin.as_bytes().into(), headers: headers.into_bytes().into() }
                    })
                    .collect(),
            ),
        };
        Cors { mode, echoed: Vec::new() }
    }

    /// Whether `Origin` need not be looked at: no `CORS_ORIGINS`, on a route that does not echo origins.
    pub fn ignores_origin(&self, echo: bool) -> bool {
        matches!(self.mode, Mode::Off) && !echo
    }

    /// What a request's `Origin` header means for its answer; `echo` on the routes that echo any origin.
    pub fn verdict(&mut self, origin: Option<&[u8]>, echo: bool) -> Verdict {
        match (&self.mode, origin) {
            (_, None) => Verdict::Plain,
            (Mode::List(list), Some(origin)) => match list.iter().position(|l| *l.origin == *origin) {
                Some(i) => Verdict::Allowed(Grant(i as u32)),
                None => Verdict::Refused,
            },
            (Mode::Off | Mode::Any, Some(origin)) if echo => {
                if !is_origin(origin) {
                    return Verdict::Plain;
                }
                self.echoed.clear();
                for part in [
                    &b"Access-Control-Allow-Origin: "[..],
                    origin,
                    b"\r\nAccess-Control-Allow-Credentials: true\r\nTiming-Allow-Origin: ",
                    origin,
                    b"\r\nVary: Origin\r\n",
                ] {
                    self.echoed.extend_from_slice(part);
                }
                Verdict::Allowed(Grant::ECHO)
            }
            (Mode::Off, Some(_)) => Verdict::Plain,
            (Mode::Any, Some(_)) => Verdict::Allowed(Grant(0)),
        }
    }

    /// The header lines of every answer to a request with `grant` (none without one).
    pub fn headers(&self, grant: Option<Grant>) -> &[u8] {
        match (&self.mode, grant) {
            (_, None) => b"",
            (_, Some(Grant::ECHO)) => &self.echoed,
            (Mode::Off, _) => b"",
            (Mode::Any, Some(_)) => ANY_HEADERS,
            (Mode::List(list), Some(Grant(i))) => list.get(i as usize).map_or(&b""[..], |l| &l.headers),
        }
    }

    /// The header lines of the answer to a preflight (`OPTIONS` with `Origin`), appended to `out`: the origin,
    /// the methods of the route, the requested headers that are allowed (echoed), the cache time and `Vary`.
    /// Nothing for an origin that is not allowed or a preflight of a method the route does not take, so the
    /// browser stops there.
    pub fn preflight(&mut self, preflight: Preflight<'_>, allow: &str, echo: bool, out: &mut Vec<u8>) {
        let Preflight { origin, method, headers } = preflight;
        let Verdict::Allowed(grant) = self.verdict(origin, echo) else {
            return;
        };
        let allowed = self.headers(Some(grant));
        let method_allowed = method.is_some_and(|m| allow.split(", ").any(|a| a.as_bytes() == m));
        if !method_allowed {
            return;
        }
        out.extend_from_slice(allowed);
        if matches!(self.mode, Mode::Any) && grant != Grant::ECHO {
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

/// The request headers of a preflight (`OPTIONS`): where it comes from, and what the real request will use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Preflight<'a> {
    pub origin: Option<&'a [u8]>,
    /// `Access-Control-Request-Method`
    pub method: Option<&'a [u8]>,
    /// `Access-Control-Request-Headers`
    pub headers: Option<&'a [u8]>,
}

/// Is `value` shaped like a web origin that may be echoed (`http(s)://host[:port]`, visible ASCII)? Anything
/// else — `null`, a file page — gets no CORS headers.
fn is_origin(value: &[u8]) -> bool {
    (value.starts_with(b"https://") || value.starts_with(b"http://"))
        && value.len() <= 512
        && value.iter().all(|&b| (0x21..=0x7E).contains(&b))
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

    fn preflight(cors: &mut Cors, origin: &str, method: &str, headers: Option<&str>, echo: bool) -> String {
        let mut out = Vec::new();
        let request = Preflight {
            origin: Some(origin.as_bytes()),
            method: Some(method.as_bytes()),
            headers: headers.map(str::as_bytes),
        };
        cors.preflight(request, "GET, HEAD, POST, OPTIONS", echo, &mut out);
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
        for echo in [false, true] {
            let mut cors = Cors::new(&Origins::List(vec!["https://a.example".into()]));
            let Verdict::Allowed(grant) = cors.verdict(Some(b"https://a.example"), echo) else { panic!() };
            assert_eq!(
                cors.headers(Some(grant)),
                b"Access-Control-Allow-Origin: https://a.example\r\nAccess-Control-Allow-Credentials: true\r\n\
                  Timing-Allow-Origin: https://a.example\r\nVary: Origin\r\n"
            );
            assert_eq!(cors.verdict(Some(b"https://b.example"), echo), Verdict::Refused, "a list holds on every route");
            assert_eq!(cors.verdict(Some(b"https://a.example.evil"), echo), Verdict::Refused);
            assert_eq!(cors.verdict(None, echo), Verdict::Plain);
        }
        assert_eq!(Cors::new(&Origins::Off).verdict(Some(b"https://b.example"), false), Verdict::Plain);
        let mut any = Cors::new(&Origins::Any);
        let Verdict::Allowed(grant) = any.verdict(Some(b"https://b.example"), false) else { panic!() };
        assert_eq!(any.headers(Some(grant)), ANY_HEADERS);
        assert_eq!(any.headers(None), b"");
    }

    #[test]
    fn sdk_routes_echo_any_origin_with_credentials_unless_a_list_is_set() {
        for origins in [Origins::Off, Origins::Any] {
            let mut cors = Cors::new(&origins);
            assert!(!cors.ignores_origin(true));
            let Verdict::Allowed(grant) = cors.verdict(Some(b"http://127.0.0.1:5173"), true) else { panic!() };
            assert_eq!(
                cors.headers(Some(grant)),
                b"Access-Control-Allow-Origin: http://127.0.0.1:5173\r\nAccess-Control-Allow-Credentials: true\r\n\
                  Timing-Allow-Origin: http://127.0.0.1:5173\r\nVary: Origin\r\n"
            );
            for not_an_origin in [&b"null"[..], b"file://", b"http://a b", b"https://x\x7f"] {
                assert_eq!(cors.verdict(Some(not_an_origin), true), Verdict::Plain);
            }
            let answer = preflight(&mut cors, "https://shop.example", "POST", Some("Content-Type, SP-Anonymous"), true);
            assert!(answer.starts_with("Access-Control-Allow-Origin: https://shop.example\r\n"), "{answer}");
            assert!(answer.contains("Access-Control-Allow-Credentials: true\r\n"), "{answer}");
            assert!(answer.contains("Access-Control-Allow-Headers: Content-Type, SP-Anonymous\r\n"), "{answer}");
            assert_eq!(answer.matches("Vary: Origin").count(), 1, "{answer}");
        }
        assert!(Cors::new(&Origins::Off).ignores_origin(false));
    }

    #[test]
    fn preflight_echoes_only_allowed_headers() {
        let mut cors = Cors::new(&Origins::List(vec!["https://a.example".into()]));
        let answer =
            preflight(&mut cors, "https://a.example", "POST", Some("Content-Type, X-Write-Key, X-Other"), false);
        assert!(answer.contains("Access-Control-Allow-Origin: https://a.example\r\n"), "{answer}");
        assert!(answer.contains("Access-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\r\n"), "{answer}");
        assert!(answer.contains("Access-Control-Allow-Headers: Content-Type, X-Write-Key\r\n"), "{answer}");
        assert!(answer.contains("Access-Control-Max-Age: 7200\r\n") && answer.contains("Vary: Origin\r\n"));
        let answer = preflight(&mut cors, "https://a.example", "POST", None, false);
        assert!(!answer.contains("Allow-Headers") && answer.contains("Allow-Methods"), "{answer}");
        assert_eq!(preflight(&mut cors, "https://b.example", "POST", None, false), "");
        assert_eq!(preflight(&mut cors, "https://a.example", "DELETE", None, false), "");
        let any = preflight(&mut Cors::new(&Origins::Any), "https://b.example", "POST", Some("content-type"), false);
        assert!(
            any.starts_with("Access-Control-Allow-Origin: *\r\nTiming-Allow-Origin: *\r\nVary: Origin\r\n"),
            "{any}"
        );
        assert!(!any.contains("Credentials"), "{any}");
    }
}
