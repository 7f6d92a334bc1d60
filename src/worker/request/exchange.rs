//! The request exchange: a request in — its head, its body, the facts of the connection it came on — an
//! `Answer` out, and its events in the worker's batch. It knows nothing of the framing that carried the request
//! or will carry the answer: HTTP/1.1 (`http1.rs`) is its first user; HTTP/2 and HTTP/3 streams are meant to
//! be the next, each turning its frames into a `Request` and the `Answer` into its own frames.
//!
//! The one rule every front end keeps: an answer that `commits` acknowledges events of this iteration's batch,
//! so it is released only after the group commit that made them durable (HTTP/1.1: it is encoded behind the
//! connection's committed boundary, which only the group commit moves); if that write fails, the front end
//! answers 503 instead.

use crate::http::cors::Grant;
use crate::http::response::ResponseKind;
use crate::http::{HttpError, Method, RequestHead};
use crate::protocol::{Accepted, Ingest, otlp};
use crate::route::{self, Endpoint, Route};
use crate::spool::batch::Batch;
use crate::state::Phase;
use crate::worker::connection::Peer;

use super::Requests;

/// The body of a request, as the exchange gets it.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The whole body (a framing's own encoding, such as chunked, undone).
    Whole(&'a [u8]),
    /// Over the body limit on a route that keeps such a payload as a bad row: its declared length (none when
    /// unknown) and its first bytes.
    Oversized { declared: Option<u64>, first: &'a [u8] },
}

/// A request, whichever framing carried it.
pub struct Request<'a, 'h> {
    pub head: &'a RequestHead<'h>,
    pub body: Payload<'a>,
    /// Who sent it: the connection's peer (address, trusted proxy, transport).
    pub peer: &'a Peer,
    /// It was in flight when the drain ended: it is served normally (a later one gets 503).
    pub in_flight_at_drain_end: bool,
}

/// What an answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// Events accepted, answered as the route's protocol does.
    Accepted(Accepted),
    /// An OPTIONS answer: 204 with `Allow` and, for an allowed origin, the CORS preflight lines (in the
    /// exchange's header scratch).
    Preflight,
    /// `/health`, `/ready`, `/metrics`: a status and a text (in the exchange's text scratch); `no_store`: not to
    /// be cached (a state that changes).
    Text { status: (u16, &'static str), content_type: &'static str, no_store: bool },
    /// A refusal, with its status and one-line reason.
    Error(HttpError),
}

/// The answer to a request, before any framing says how it is sent.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// The route it was for (`None`: refused before one was known); its row in the response counters.
    pub route: Option<Route>,
    pub kind: AnswerKind,
    /// The CORS grant of the request's origin.
    pub grant: Option<Grant>,
    /// The connection (or stream's session) ends after it.
    pub close: bool,
    /// It acknowledges events of this iteration's batch: released only after the group commit.
    pub commits: bool,
    /// Without its body (a HEAD request's).
    pub head_only: bool,
    /// A refusal of an OTLP/HTTP request: its body is a `google.rpc.Status` in the request's format.
    pub otlp: Option<crate::protocol::otlp::Format>,
}

impl Answer {
    /// A refusal of a request of `method` (`route`: if it was known).
    pub fn error(error: HttpError, route: Option<Route>, method: Method) -> Answer {
        Answer {
            route,
            kind: AnswerKind::Error(error),
            grant: None,
            close: false,
            commits: false,
            head_only: method == Method::Head,
            otlp: None,
        }
    }

    /// The status it is sent with (`response`: what an accepted GET on `/e` answers).
    pub fn status(&self, response: ResponseKind) -> u16 {
        match self.kind {
            AnswerKind::Accepted(Accepted::Event) if response == ResponseKind::NoContent => 204,
            AnswerKind::Accepted(_) => 200,
            AnswerKind::Preflight => 204,
            AnswerKind::Text { status, .. } => status.0,
            AnswerKind::Error(e) => e.status().0,
        }
    }
}

impl Requests {
    /// Answers `request`; its events, if it brings any that are kept, go to `batch`.
    pub fn exchange(&mut self, request: &Request<'_, '_>, batch: &mut Batch) -> Answer {
        self.answered += 1;
        let head = request.head;
        let mut answer = Answer::error(HttpError::ShuttingDown, None, head.method);
        if self.shared.phase() == Phase::Closing && !request.in_flight_at_drain_end {
            answer.close = true;
            return answer;
        }
        #[cfg(debug_assertions)]
        if self.debug_faults && head.path == b"/debug/panic" {
            panic!("fault injected by /debug/panic");
        }
        let route = match route::route(head.path, head.method) {
            Ok(route) => route,
            Err(e) => return Answer { kind: AnswerKind::Error(e), ..answer },
        };
        answer.route = Some(route);
        if head.method == Method::Options {
            self.preflight(head, route);
            return Answer { kind: AnswerKind::Preflight, head_only: false, ..answer };
        }
        match route.endpoint() {
            Endpoint::Ingest(ingest) => {
                let (grant, admitted) = self.edge.admit(head, ingest.is_sdk());
                answer.grant = grant;
                if ingest == Ingest::OtlpHttp {
                    answer.otlp = Some(otlp::Format::of(head.content_type).unwrap_or(otlp::Format::Protobuf));
                }
                let taken = admitted.and_then(|admission| self.ingest(request, ingest, admission, batch));
                match taken {
                    Ok(taken) => Answer {
                        kind: AnswerKind::Accepted(ingest.accepted(
                            head,
                            taken.events,
                            self.checker.rejects().then_some(taken.invalid),
                        )),
                        commits: taken.stored > 0,
                        ..answer
                    },
                    Err(e) => Answer { kind: AnswerKind::Error(e), ..answer },
                }
            }
            Endpoint::Health => {
                let (status, text): ((u16, &str), &[u8]) = match self.shared.phase() {
                    Phase::Running => ((200, "OK"), b"ok\n"),
                    _ => ((503, "Service Unavailable"), b"draining\n"),
                };
                self.text(status, text, answer)
            }
            Endpoint::Ready => {
                let (status, text) = match self.shared.not_ready(self.config.ready_sink_window) {
                    None => match self.shared.ready_notes() {
                        None => ((200, "OK"), "ready\n".to_string()),
                        Some(notes) => ((200, "OK"), format!("ready; {notes}\n")),
                    },
                    Some(reason) => ((503, "Service Unavailable"), format!("{reason}\n")),
                };
                self.text(status, text.as_bytes(), answer)
            }
            Endpoint::PostHogFlags | Endpoint::PostHogConfig => {
                let (grant, _) = self.edge.admit(head, true);
                answer.grant = grant;
                let (content_type, body) = posthog_answer(route.endpoint(), head.path);
                self.text.clear();
                self.text.extend_from_slice(body.as_bytes());
                Answer { kind: AnswerKind::Text { status: (200, "OK"), content_type, no_store: true }, ..answer }
            }
            Endpoint::Metrics => {
                self.text = self.shared.metrics_text().into_bytes();
                let content_type = "text/plain; version=0.0.4; charset=utf-8";
                Answer { kind: AnswerKind::Text { status: (200, "OK"), content_type, no_store: true }, ..answer }
            }
        }
    }

    /// For `Expect: 100-continue`: the error the request will get whatever its body, if it gets one — so a
    /// client is told before it sends the body.
    pub fn precheck(&mut self, head: &RequestHead<'_>) -> Option<Answer> {
        let mut answer = Answer::error(HttpError::ShuttingDown, None, head.method);
        let route = match route::route(head.path, head.method) {
            Ok(route) => route,
            Err(e) => return Some(Answer { kind: AnswerKind::Error(e), ..answer }),
        };
        answer.route = Some(route);
        let ingest = route.endpoint().ingest().filter(|_| head.method == Method::Post)?;
        let (grant, admitted) = self.edge.admit(head, ingest.is_sdk());
        answer.grant = grant;
        match admitted.and(self.accepting) {
            Ok(()) => None,
            Err(e) => Some(Answer { kind: AnswerKind::Error(e), ..answer }),
        }
    }

    /// `OPTIONS`: the route's `Allow`, and for an allowed origin the CORS preflight lines, into the header scratch.
    fn preflight(&mut self, head: &RequestHead<'_>, route: Route) {
        let allow = route.allow();
        let extra = &mut self.extra;
        extra.clear();
        extra.extend_from_slice(b"Allow: ");
        extra.extend_from_slice(allow.as_bytes());
        extra.extend_from_slice(b"\r\n");
        self.edge.preflight(head, allow, route.endpoint().is_sdk(), extra);
    }

    /// A state in plain text, not to be cached (`/health`, `/ready`).
    fn text(&mut self, status: (u16, &'static str), text: &[u8], answer: Answer) -> Answer {
        self.text.clear();
        self.text.extend_from_slice(text);
        let kind = AnswerKind::Text { status, content_type: "text/plain; charset=utf-8", no_store: true };
        Answer { kind, ..answer }
    }
}

/// PostHog's answers for a project with no feature flags and no remote config: `/flags` (the v2 shape, and the
/// v1 fields older posthog-js versions read), the remote config as JSON, or as the script that registers it.
fn posthog_answer(endpoint: Endpoint, path: &[u8]) -> (&'static str, String) {
    const NO_FLAGS: &str = r#"{"flags":{},"featureFlags":{},"featureFlagPayloads":{},"errorsWhileComputingFlags":false,"quotaLimited":[]}"#;
    match (endpoint, route::remote_config_token(path)) {
        (Endpoint::PostHogConfig, Some((token, true))) => (
            "application/javascript",
            format!(
                "(window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{{}})[\"{token}\"]=\
                 {{config:{{\"token\":\"{token}\"}},siteApps:[]}};\n"
            ),
        ),
        (Endpoint::PostHogConfig, _) => ("application/json", "{}".to_string()),
        _ => ("application/json", NO_FLAGS.to_string()),
    }
}

/// What an ingest request brought: its events, and how many of them were stored (none of a bot's under
/// `BOTS=drop`).
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    pub events: u64,
    /// Records and bad rows in the batch: the answer waits for their group commit.
    pub stored: u64,
    /// Events stored as bad rows.
    pub invalid: u64,
}

impl Taken {
    pub const NOTHING: Taken = Taken { events: 0, stored: 0, invalid: 0 };
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use clap::Parser;

    use super::*;
    use crate::event::record::Transport;
    use crate::protocol::Accepted;
    use crate::spool::Stream;
    use crate::state::Shared;

    fn requests(flags: &[&str]) -> Requests {
        let args = crate::Args::try_parse_from([&["plutos"][..], flags].concat()).unwrap();
        let config = crate::Config::from_args(&args, &[0]).unwrap();
        Requests::new(config.http, &config.edge, Arc::new(Shared::new(1, 0, u64::MAX)), 0, 0)
    }

    /// A head as a front end other than HTTP/1.1 would build it: no request line parsed, its header lines
    /// in HTTP/1 syntax for the lookups that read them.
    fn head<'a>(method: Method, path: &'a [u8], query: &'a [u8], raw: &'a [u8]) -> RequestHead<'a> {
        RequestHead { method, path, query, keep_alive: true, user_agent: b"h2-client", raw, ..RequestHead::default() }
    }

    #[test]
    fn any_front_end_gets_an_answer_and_the_events_of_a_request_it_builds() {
        let mut requests = requests(&["--write-keys", "k1"]);
        requests.begin_iteration(std::time::Instant::now(), Ok(()));
        let peer = requests.peer("203.0.113.9".parse().unwrap(), Transport::Https);
        let mut batch = Batch::default();
        let mut exchange = |head: &RequestHead<'_>, body: &[u8], requests: &mut Requests| {
            let request = Request { head, body: Payload::Whole(body), peer: &peer, in_flight_at_drain_end: false };
            requests.exchange(&request, &mut batch)
        };
        // An accepted event commits: its answer waits for the group commit.
        let keyed = head(Method::Get, b"/e", b"tag=h2&write_key=k1", b"GET /e HTTP/2\r\n\r\n");
        let answer = exchange(&keyed, b"", &mut requests);
        assert_eq!((answer.kind, answer.commits), (AnswerKind::Accepted(Accepted::Event), true));
        // A POST's count; an SDK's own answer.
        let raw = b"POST /e HTTP/2\r\nX-Write-Key: k1\r\n\r\n";
        let post = RequestHead { content_type: Some(b"application/x-ndjson"), ..head(Method::Post, b"/e", b"", raw) };
        let answer = exchange(&post, b"{\"a\":1}\n{\"a\":2}\n", &mut requests);
        assert_eq!(
            (answer.kind, answer.commits),
            (AnswerKind::Accepted(Accepted::Count { accepted: 2, invalid: None }), true)
        );
        // Refusals commit nothing: no key, an unknown path.
        let unkeyed = head(Method::Get, b"/e", b"tag=x", b"GET /e HTTP/2\r\n\r\n");
        let answer = exchange(&unkeyed, b"", &mut requests);
        assert_eq!((answer.kind, answer.commits), (AnswerKind::Error(HttpError::Unauthorized), false));
        let answer = exchange(&head(Method::Get, b"/nope", b"", b""), b"", &mut requests);
        assert_eq!((answer.kind, answer.route), (AnswerKind::Error(HttpError::NotFound), None));
        // Health is a text.
        let answer = exchange(&head(Method::Get, b"/health", b"", b""), b"", &mut requests);
        assert!(matches!(answer.kind, AnswerKind::Text { status: (200, _), .. }));
        assert_eq!(requests.text, b"ok\n");

        assert_eq!(batch.events(Stream::Good), 3);
        let lines = String::from_utf8(batch.lines(Stream::Good).to_vec()).unwrap();
        let records: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(records[0]["raw_data"], serde_json::json!({"tag": "h2"}), "the key is left out");
        assert_eq!((records[0]["transport"].as_str(), records[0]["ip"].as_str()), (Some("https"), Some("203.0.113.9")));
        assert_eq!(records[0]["user_agent"], "h2-client");
        assert_eq!(records[2]["raw_data"]["a"], 2);
    }
}
