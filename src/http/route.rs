//! The route table: which paths exist and which methods each takes. Everything that depends on a route — the
//! answer, the `Allow` of a 405 and of an OPTIONS answer, and the early refusal of an `Expect: 100-continue`
//! request — is derived from this one table.

use super::{HttpError, Method};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/e`: events in (GET/HEAD query, POST body), OPTIONS preflight.
    Ingest,
    /// `/health`: liveness and the drain signal.
    Health,
    /// `/ready`: whether this collector should get traffic (spool, sink).
    Ready,
    /// `/metrics`: Prometheus text.
    Metrics,
}

impl Route {
    /// The `route` label of `plutos_responses_total`.
    pub fn label(self) -> &'static str {
        match self {
            Route::Ingest => "ingest",
            Route::Health => "health",
            Route::Ready => "ready",
            Route::Metrics => "metrics",
        }
    }
}

struct Entry {
    path: &'static [u8],
    route: Route,
    methods: &'static [Method],
    /// `methods` as an `Allow` header value (a test checks they agree).
    allow: &'static str,
}

const ROUTES: &[Entry] = &[
    Entry {
        path: b"/e",
        route: Route::Ingest,
        methods: &[Method::Get, Method::Head, Method::Post, Method::Options],
        allow: "GET, HEAD, POST, OPTIONS",
    },
    Entry { path: b"/health", route: Route::Health, methods: &[Method::Get, Method::Head], allow: "GET, HEAD" },
    Entry { path: b"/ready", route: Route::Ready, methods: &[Method::Get, Method::Head], allow: "GET, HEAD" },
    Entry { path: b"/metrics", route: Route::Metrics, methods: &[Method::Get, Method::Head], allow: "GET, HEAD" },
];

/// The route of a request, or the error it gets whatever its body: 404 for an unknown path, 405 (with the
/// route's `Allow`) for a method the route does not take.
pub fn route(path: &[u8], method: Method) -> Result<Route, HttpError> {
    let entry = ROUTES.iter().find(|e| e.path == path).ok_or(HttpError::NotFound)?;
    if entry.methods.contains(&method) {
        Ok(entry.route)
    } else {
        Err(HttpError::MethodNotAllowed { allow: entry.allow })
    }
}

/// The methods `route` takes, as an `Allow` header value.
pub fn allow(route: Route) -> &'static str {
    ROUTES.iter().find(|e| e.route == route).map_or("", |e| e.allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_is_its_index_in_the_metrics_labels() {
        for route in [Route::Ingest, Route::Health, Route::Ready, Route::Metrics] {
            assert_eq!(crate::metrics::ROUTES[route as usize], route.label());
        }
    }

    #[test]
    fn allow_lists_exactly_the_methods_of_each_route() {
        for entry in ROUTES {
            let listed: Vec<&str> = entry.methods.iter().map(|m| m.as_str()).collect();
            assert_eq!(entry.allow, listed.join(", "));
            assert_eq!(allow(entry.route), entry.allow);
            assert!(crate::metrics::ROUTES.contains(&entry.route.label()));
        }
    }

    #[test]
    fn routes_paths_and_methods() {
        assert_eq!(route(b"/e", Method::Post), Ok(Route::Ingest));
        assert_eq!(route(b"/health", Method::Head), Ok(Route::Health));
        assert_eq!(route(b"/metrics", Method::Get), Ok(Route::Metrics));
        assert_eq!(route(b"/ready", Method::Get), Ok(Route::Ready));
        assert_eq!(route(b"/e", Method::Other), Err(HttpError::MethodNotAllowed { allow: "GET, HEAD, POST, OPTIONS" }));
        assert_eq!(route(b"/health", Method::Post), Err(HttpError::MethodNotAllowed { allow: "GET, HEAD" }));
        assert_eq!(route(b"/e/", Method::Get), Err(HttpError::NotFound));
        assert_eq!(route(b"*", Method::Options), Err(HttpError::NotFound));
    }
}
