//! A UDP datagram is one request without an answer: one JSON value (an object, or an array of them), an NDJSON
//! batch, or a query string (`k=v&…`), stored whole or not at all like an HTTP request's events, with the
//! sender's address and `"transport":"udp"`. With `WRITE_KEYS` its first line is a key.

use std::net::SocketAddr;

use super::Requests;
use super::ingest::{Keep, Written};
use crate::event::body::{self, BodyKind};
use crate::event::json;
use crate::event::record::{Emitter, Protocol, RequestMeta, Transport};
use crate::http::Method;
use crate::spool::batch::Batch;

/// Why a datagram was not stored (each counted; UDP has no answer to say it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Not JSON, NDJSON or a query string, or empty.
    Malformed,
    /// `WRITE_KEYS` is set and its first line is not a known key.
    Unauthorized,
    /// Ingest is refusing (spool full, a failed spool write): an HTTP request would get 503.
    Refused,
}

impl Requests {
    /// Appends the events of one datagram from `from` to `batch`; returns how many.
    pub fn ingest_datagram(&mut self, from: SocketAddr, datagram: &[u8], batch: &mut Batch) -> Result<u64, Dropped> {
        if self.accepting.is_err() {
            return Err(Dropped::Refused);
        }
        let payload = self.edge.datagram_payload(datagram).ok_or(Dropped::Unauthorized)?.trim_ascii();
        if payload.is_empty() {
            return Err(Dropped::Malformed);
        }
        // One line starting with `{` is one object: the NDJSON path validates it once. Several lines are a
        // pretty-printed value or an NDJSON batch. Anything else must be a query string through and through:
        // text that merely does not start like JSON (StatsD, a log line) is not one event with one odd key.
        let kind = match payload[0] {
            b'{' if memchr::memchr(b'\n', payload).is_none() => BodyKind::Ndjson,
            b'{' | b'[' if json::validate(payload) => BodyKind::Json,
            b'{' => BodyKind::Ndjson,
            _ if is_query(payload) => BodyKind::Form,
            _ => return Err(Dropped::Malformed),
        };
        // The sender's rendering (`IP_MODE`) is kept while datagrams keep coming from it.
        if self.datagram_peer.as_ref().is_none_or(|peer| peer.addr != from.ip()) {
            self.datagram_peer = Some(self.edge.peer(from.ip(), Transport::Udp));
        }
        let peer = self.datagram_peer.as_ref().expect("set above");
        let identity = self.edge.identify_datagram(peer);
        let meta = RequestMeta {
            ip: identity.ip,
            user_agent: b"",
            method: Method::Udp,
            path: b"",
            transport: Transport::Udp,
            headers: identity.headers,
            enrichment: identity.enrichment,
            protocol: Protocol::Plutos,
            retry_count: None,
            visitor_id: None,
        };
        self.records.start_request(&meta, &self.clock);
        let mark = batch.mark();
        let (good, bad) = batch.streams_mut();
        let mut emit = Emitter::new(good, &self.records, &mut self.ids).checked(&mut self.checker, bad);
        let written =
            body::append_body_events(kind, payload, &mut emit, &mut self.protocols.json, &mut self.protocols.query)
                .map(|()| Written::by(&emit));
        match self.finish_request(batch, mark, written, Keep::Yes) {
            Ok(taken) if taken.stored > 0 => Ok(taken.stored),
            // An empty array has nothing to store; an error (an event larger than the sink takes among them)
            // left nothing.
            _ => Err(Dropped::Malformed),
        }
    }
}

/// A datagram that is a query string: `key=value` pairs joined by `&` (at least one), every pair with its `=`
/// and a key, and no byte a URL leaves encoded (spaces, controls). `GET /e`'s lenient reading (a bare key is
/// `""`) is for URLs, which are queries by construction; a datagram has to show it is one.
fn is_query(payload: &[u8]) -> bool {
    let mut pairs = payload.split(|&b| b == b'&').filter(|pair| !pair.is_empty()).peekable();
    pairs.peek().is_some()
        && pairs.all(|pair| matches!(memchr::memchr(b'=', pair), Some(1..)))
        && payload.iter().all(|&b| b > b' ' && b != 0x7f)
}

#[cfg(test)]
mod tests {
    use super::is_query;

    #[test]
    fn a_query_string_is_pairs_with_keys_and_nothing_a_url_encodes() {
        for query in [&b"a=1"[..], b"a=1&b=", b"tag=x&&page=%2Fhome", b"k=v+w", b"a==b"] {
            assert!(is_query(query), "{}", String::from_utf8_lossy(query));
        }
        for text in [&b"foo:1|c"[..], b"a", b"a=1&b", b"=1", b"a=1 b=2", b"a=1\tb=2", b"a=\x7f", b"&&"] {
            assert!(!is_query(text), "{}", String::from_utf8_lossy(text));
        }
    }
}
