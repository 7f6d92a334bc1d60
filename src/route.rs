//! The route table: which paths exist, what each is for and which methods it takes. Everything that depends on a
//! route — the handler a request goes to (an ingest route names its protocol), the `Allow` of a 405 and of an
//! OPTIONS answer, the early refusal of an `Expect: 100-continue` request, whether a body over the limit is
//! kept as a bad row, and the `route` label of `plutos_responses_total` (the path itself) — is read from this
//! one table, so a new route is one line in it.

use crate::http::{HttpError, Method, RequestHead};
use crate::protocol::Ingest;

/// What a path is for: the handler its requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Events in, through the protocol the route speaks.
    Ingest(Ingest),
    /// `/health`: liveness and the drain signal.
    Health,
    /// `/ready`: whether this collector should get traffic (spool, sink).
    Ready,
    /// `/metrics`: Prometheus text.
    Metrics,
    /// PostHog's feature flags (`/flags`, `/decide`), which posthog-js asks for by default: none, answered as
    /// PostHog's server answers a project without flags, so its console stays clean.
    PostHogFlags,
    /// PostHog's remote config (`/array/{token}/config` and `config.js`), asked for by posthog-js: empty.
    PostHogConfig,
}

impl Endpoint {
    /// The protocol of an ingest route: its requests are refused while ingest is not accepting (spool full,
    /// failed write).
    pub fn ingest(self) -> Option<Ingest> {
        match self {
            Endpoint::Ingest(ingest) => Some(ingest),
            Endpoint::Health | Endpoint::Ready | Endpoint::Metrics => None,
            Endpoint::PostHogFlags | Endpoint::PostHogConfig => None,
        }
    }

    /// Speaks an SDK's protocol: answers as that SDK's own server does, CORS included (any origin echoed).
    pub fn is_sdk(self) -> bool {
        matches!(self, Endpoint::PostHogFlags | Endpoint::PostHogConfig) || self.ingest().is_some_and(Ingest::is_sdk)
    }
}

/// The methods of a route, and the same as an `Allow` header value (a test checks they agree).
#[derive(Debug)]
pub struct Methods {
    list: &'static [Method],
    allow: &'static str,
}

const GET_HEAD: Methods = Methods { list: &[Method::Get, Method::Head], allow: "GET, HEAD" };
const EVENTS: Methods =
    Methods { list: &[Method::Get, Method::Head, Method::Post, Method::Options], allow: "GET, HEAD, POST, OPTIONS" };
const POST: Methods = Methods { list: &[Method::Post, Method::Options], allow: "POST, OPTIONS" };
const GET_POST: Methods = Methods { list: &[Method::Get, Method::Post, Method::Options], allow: "GET, POST, OPTIONS" };

struct Entry {
    path: &'static str,
    endpoint: Endpoint,
    methods: Methods,
}

/// Every route. The index of an entry is its row in the response counters.
const ROUTES: &[Entry] = &[
    Entry { path: "/e", endpoint: Endpoint::Ingest(Ingest::Plutos), methods: EVENTS },
    Entry { path: "/health", endpoint: Endpoint::Health, methods: GET_HEAD },
    Entry { path: "/ready", endpoint: Endpoint::Ready, methods: GET_HEAD },
    Entry { path: "/metrics", endpoint: Endpoint::Metrics, methods: GET_HEAD },
    Entry { path: "/v1/batch", endpoint: Endpoint::Ingest(Ingest::Segment(None)), methods: POST },
    Entry { path: "/v1/import", endpoint: Endpoint::Ingest(Ingest::Segment(None)), methods: POST },
    Entry { path: "/v1/b", endpoint: Endpoint::Ingest(Ingest::Segment(None)), methods: POST },
    Entry { path: "/v1/track", endpoint: Endpoint::Ingest(Ingest::Segment(Some("track"))), methods: POST },
    Entry { path: "/v1/identify", endpoint: Endpoint::Ingest(Ingest::Segment(Some("identify"))), methods: POST },
    Entry { path: "/v1/page", endpoint: Endpoint::Ingest(Ingest::Segment(Some("page"))), methods: POST },
    Entry { path: "/v1/screen", endpoint: Endpoint::Ingest(Ingest::Segment(Some("screen"))), methods: POST },
    Entry { path: "/v1/group", endpoint: Endpoint::Ingest(Ingest::Segment(Some("group"))), methods: POST },
    Entry { path: "/v1/alias", endpoint: Endpoint::Ingest(Ingest::Segment(Some("alias"))), methods: POST },
    Entry { path: "/v1/t", endpoint: Endpoint::Ingest(Ingest::Segment(Some("track"))), methods: POST },
    Entry { path: "/v1/i", endpoint: Endpoint::Ingest(Ingest::Segment(Some("identify"))), methods: POST },
    Entry { path: "/v1/p", endpoint: Endpoint::Ingest(Ingest::Segment(Some("page"))), methods: POST },
    Entry { path: "/v1/s", endpoint: Endpoint::Ingest(Ingest::Segment(Some("screen"))), methods: POST },
    Entry { path: "/v1/g", endpoint: Endpoint::Ingest(Ingest::Segment(Some("group"))), methods: POST },
    Entry { path: "/v1/a", endpoint: Endpoint::Ingest(Ingest::Segment(Some("alias"))), methods: POST },
    Entry { path: "/batch", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry { path: "/batch/", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry { path: "/capture", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry { path: "/capture/", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry { path: "/i/v0/e", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry { path: "/i/v0/e/", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry { path: "/track", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry { path: "/track/", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry { path: "/engage", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry { path: "/engage/", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    // `/e` without the slash is plutos's own.
    Entry { path: "/e/", endpoint: Endpoint::Ingest(Ingest::PostHog), methods: GET_POST },
    Entry {
        path: "/com.snowplowanalytics.snowplow/tp2",
        endpoint: Endpoint::Ingest(Ingest::SnowplowPost),
        methods: POST,
    },
    Entry { path: "/i", endpoint: Endpoint::Ingest(Ingest::SnowplowPixel), methods: GET_HEAD },
    Entry { path: "/ice.png", endpoint: Endpoint::Ingest(Ingest::SnowplowPixel), methods: GET_HEAD },
    Entry { path: "/plutos.v1.Collector/Send", endpoint: Endpoint::Ingest(Ingest::Send), methods: POST },
    Entry {
        path: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        endpoint: Endpoint::Ingest(Ingest::OtlpGrpc),
        methods: POST,
    },
    Entry { path: "/v1/logs", endpoint: Endpoint::Ingest(Ingest::OtlpHttp), methods: POST },
    Entry { path: "/flags", endpoint: Endpoint::PostHogFlags, methods: GET_POST },
    Entry { path: "/flags/", endpoint: Endpoint::PostHogFlags, methods: GET_POST },
    Entry { path: "/decide", endpoint: Endpoint::PostHogFlags, methods: GET_POST },
    Entry { path: "/decide/", endpoint: Endpoint::PostHogFlags, methods: GET_POST },
    // Matched by `remote_config_token`, not by this path, which is its label.
    Entry { path: CONFIG_PATH, endpoint: Endpoint::PostHogConfig, methods: GET_HEAD_OPTIONS },
];

/// The label of PostHog's remote-config route, whose paths carry the project token.
const CONFIG_PATH: &str = "/array/{token}/config";
const GET_HEAD_OPTIONS: Methods =
    Methods { list: &[Method::Get, Method::Head, Method::Options], allow: "GET, HEAD, OPTIONS" };

/// The project token of a PostHog remote-config path (`/array/{token}/config` or `/array/{token}/config.js`), and
/// whether it asks for the script. A token is letters, digits, `_` and `-`, as PostHog's are.
pub fn remote_config_token(path: &[u8]) -> Option<(&str, bool)> {
    let rest = path.strip_prefix(b"/array/")?;
    let (token, script) = match rest.strip_suffix(b"/config.js") {
        Some(token) => (token, true),
        None => (rest.strip_suffix(b"/config")?, false),
    };
    let valid = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-';
    if token.is_empty() || token.len() > 128 || !token.iter().all(valid) {
        return None;
    }
    Some((std::str::from_utf8(token).ok()?, script))
}

/// How many routes there are (the rows of the response counters, besides the one of unrouted requests).
pub const COUNT: usize = ROUTES.len();

/// One route of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route(u8);

impl Route {
    fn entry(self) -> &'static Entry {
        &ROUTES[usize::from(self.0)]
    }

    pub fn endpoint(self) -> Endpoint {
        self.entry().endpoint
    }

    /// The path, which is also the route's label in the metrics.
    pub fn path(self) -> &'static str {
        self.entry().path
    }

    /// Its row in the response counters.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The methods it takes, as an `Allow` header value.
    pub fn allow(self) -> &'static str {
        self.entry().methods.allow
    }

    /// Every route, in the order of the table.
    pub fn all() -> impl Iterator<Item = Route> {
        (0..COUNT).map(|i| Route(i as u8))
    }
}

/// Whether the request's route keeps a payload over the body limit as a bad row (`http::framing` asks, and only
/// when a body is over it).
pub fn keeps_oversized(head: &RequestHead<'_>) -> bool {
    route(head.path, head.method).is_ok_and(|route| route.endpoint().ingest().is_some_and(Ingest::keeps_oversized))
}

/// Whether the request line at the start of `buf` (a head, perhaps partial) names a route that keeps an oversized
/// payload as a bad row — Snowplow's pixel, whose query is its payload —, so a target over the limit is read to
/// the end of its head instead of refused with 414. Read from the raw bytes, before the head is parsed: a method,
/// one space, an origin-form path.
pub fn keeps_long_target(buf: &[u8]) -> bool {
    let line = &buf[buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count()..];
    let Some(space) = line.iter().take(8).position(|&b| b == b' ') else {
        return false;
    };
    let method = match &line[..space] {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => return false,
    };
    let target = &line[space + 1..];
    // The longest path of the table is short: a path that has not ended within it is no route's.
    let end = target.iter().take(64).position(|&b| b == b'?' || b == b' ');
    end.is_some_and(|end| {
        route(&target[..end], method).is_ok_and(|r| r.endpoint().ingest().is_some_and(Ingest::keeps_oversized))
    })
}

/// The route of a request, or the error it gets whatever its body: 404 for an unknown path, 405 (with the
/// route's `Allow`) for a method the route does not take.
pub fn route(path: &[u8], method: Method) -> Result<Route, HttpError> {
    let exact = ROUTES.iter().position(|e| e.path.as_bytes() == path && e.path != CONFIG_PATH);
    let config = || remote_config_token(path).and_then(|_| ROUTES.iter().position(|e| e.path == CONFIG_PATH));
    let i = exact.or_else(config).ok_or(HttpError::NotFound)?;
    let entry = &ROUTES[i];
    if entry.methods.list.contains(&method) {
        Ok(Route(i as u8))
    } else {
        Err(HttpError::MethodNotAllowed(entry.methods.allow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_exactly_the_methods_of_each_route() {
        assert!(COUNT <= usize::from(u8::MAX));
        for route in Route::all() {
            let methods = &route.entry().methods;
            let listed: Vec<&str> = methods.list.iter().map(|m| m.as_str()).collect();
            assert_eq!(route.allow(), listed.join(", "), "{}", route.path());
        }
    }

    #[test]
    fn posthog_remote_config_paths_carry_a_token() {
        assert_eq!(remote_config_token(b"/array/phc_abc-1/config"), Some(("phc_abc-1", false)));
        assert_eq!(remote_config_token(b"/array/phc_abc/config.js"), Some(("phc_abc", true)));
        for path in [&b"/array//config"[..], b"/array/a/b/config", b"/array/a\"/config.js", b"/array/a/config.json"] {
            assert_eq!(remote_config_token(path), None, "{}", String::from_utf8_lossy(path));
        }
        let route = route(b"/array/phc_abc/config.js", Method::Get).unwrap();
        assert_eq!((route.endpoint(), route.path()), (Endpoint::PostHogConfig, "/array/{token}/config"));
        assert_eq!(super::route(CONFIG_PATH.as_bytes(), Method::Get), Err(HttpError::NotFound), "the label is no path");
        assert_eq!(super::route(b"/flags/", Method::Post).map(Route::endpoint), Ok(Endpoint::PostHogFlags));
    }

    #[test]
    fn paths_are_distinct_and_absolute() {
        let mut paths: Vec<&str> = Route::all().map(Route::path).collect();
        assert!(paths.iter().all(|p| p.starts_with('/')));
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), COUNT);
    }

    #[test]
    fn routes_paths_and_methods() {
        let endpoint = |path: &[u8], method| route(path, method).map(Route::endpoint);
        assert_eq!(endpoint(b"/e", Method::Post), Ok(Endpoint::Ingest(Ingest::Plutos)));
        assert_eq!(endpoint(b"/health", Method::Head), Ok(Endpoint::Health));
        assert_eq!(endpoint(b"/metrics", Method::Get), Ok(Endpoint::Metrics));
        assert_eq!(endpoint(b"/ready", Method::Get), Ok(Endpoint::Ready));
        assert_eq!(endpoint(b"/e", Method::Other), Err(HttpError::MethodNotAllowed("GET, HEAD, POST, OPTIONS")));
        assert_eq!(endpoint(b"/health", Method::Post), Err(HttpError::MethodNotAllowed("GET, HEAD")));
        assert_eq!(endpoint(b"/e/", Method::Post), Ok(Endpoint::Ingest(Ingest::PostHog)), "PostHog's, with its slash");
        assert_eq!(endpoint(b"/e//", Method::Get), Err(HttpError::NotFound));
        assert_eq!(endpoint(b"*", Method::Options), Err(HttpError::NotFound));
        assert_eq!(endpoint(b"/v1/t", Method::Post), Ok(Endpoint::Ingest(Ingest::Segment(Some("track")))));
        assert_eq!(endpoint(b"/v1/batch", Method::Get), Err(HttpError::MethodNotAllowed("POST, OPTIONS")));
        assert_eq!(endpoint(b"/i", Method::Head), Ok(Endpoint::Ingest(Ingest::SnowplowPixel)));
        assert_eq!(endpoint(b"/batch/", Method::Get), Ok(Endpoint::Ingest(Ingest::PostHog)));
        assert_eq!(route(b"/ready", Method::Get).map(Route::path), Ok("/ready"));
    }

    #[test]
    fn only_snowplows_routes_keep_an_oversized_body() {
        let keeps = |path: &[u8], method| keeps_oversized(&RequestHead { path, method, ..RequestHead::default() });
        assert!(keeps(b"/com.snowplowanalytics.snowplow/tp2", Method::Post));
        assert!(keeps(b"/i", Method::Get));
        assert!(!keeps(b"/e", Method::Post) && !keeps(b"/v1/batch", Method::Post) && !keeps(b"/capture", Method::Post));
        assert!(!keeps(b"/i", Method::Post), "a method the route does not take is a 405, not a bad row");
        assert!(!keeps(b"/unknown", Method::Post));
    }
}
