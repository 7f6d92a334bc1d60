//! A UDP datagram is one request without an answer: one JSON value (an object, or an array of them), an NDJSON
//! batch, or a query string (`k=v&…`), stored whole or not at all like an HTTP request's events, with the
//! sender's address and `"transport":"udp"`. With `WRITE_KEYS` its first line is a key.

use std::net::SocketAddr;

use super::Requests;
use crate::event::body::{self, BodyKind};
use crate::event::json;
use crate::event::record::{Protocol, RequestMeta, Transport};
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
        // pretty-printed value or an NDJSON batch.
        let kind = match payload[0] {
            b'{' if memchr::memchr(b'\n', payload).is_none() => BodyKind::Ndjson,
            b'{' | b'[' if json::validate(payload) => BodyKind::Json,
            b'{' => BodyKind::Ndjson,
            _ => BodyKind::Form,
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
        let appended = body::append_body_events(
            kind,
            payload,
            batch.lines_mut(),
            &self.records,
            &mut self.ids,
            &mut self.body.minified,
            &mut self.query,
        );
        match appended {
            Ok(events) if events > 0 => {
                batch.add_events(events);
                Ok(events)
            }
            // An empty array has nothing to store; an error left nothing.
            _ => {
                batch.rollback(mark);
                Err(Dropped::Malformed)
            }
        }
    }
}
