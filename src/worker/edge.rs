//! A worker's edge policies, built from `EdgeConfig`: may this request send (CORS origin, write key), and what do
//! its records say about who sent it (the client's address under `IP_MODE`, the captured headers).

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::EdgeConfig;
use crate::enrich::{Enricher, Enrichment};
use crate::event::client::ClientIp;
use crate::event::json::escape_lossy_into;
use crate::event::record::Transport;
use crate::http::cors::{Cors, Grant, Preflight, Verdict};
use crate::http::write_key::{KeyGate, WriteKeys};
use crate::http::{HttpError, RequestHead, field, fields};
use crate::worker::connection::Peer;

pub struct Edge {
    pub cors: Cors,
    keys: WriteKeys,
    client: ClientIp,
    /// Lower-case names of the headers copied into records.
    capture: Vec<String>,
    /// The `ip` text of a request a trusted proxy forwarded.
    forwarded_ip: String,
    /// `,"headers":{…}` of the current request, or empty when no header is captured.
    headers: Vec<u8>,
    pub enricher: Enricher,
}

/// What the records of one request say about who sent it.
pub struct Identity<'a> {
    /// The `ip` text.
    pub ip: &'a str,
    /// The `headers` fragment.
    pub headers: &'a [u8],
    /// The enrichment fragment (`geo`, `agent`, `bot`).
    pub enrichment: &'a [u8],
    /// From a bot under `BOTS=drop`: answered, not stored.
    pub drop: bool,
}

impl Edge {
    pub fn new(config: &EdgeConfig, enrichment: Option<Arc<Enrichment>>) -> Edge {
        let keys: Vec<String> = config.write_keys.iter().map(|k| k.0.clone()).collect();
        let hash_key = config.ip_hash_key.as_ref().map(|k| k.0.as_bytes());
        Edge {
            cors: Cors::new(&config.cors_origins),
            keys: WriteKeys::new(&keys),
            client: ClientIp::new(config.trusted_proxies.clone(), config.ip_mode, hash_key),
            capture: config.capture_headers.clone(),
            forwarded_ip: String::new(),
            headers: Vec::new(),
            enricher: Enricher::new(enrichment),
        }
    }

    /// Keys are required: the query's `write_key` must be left out of records.
    pub fn hides_write_key(&self) -> bool {
        self.keys.required()
    }

    /// A new connection's peer, with its records' `ip` rendered once.
    pub fn peer(&self, addr: IpAddr, transport: Transport) -> Peer {
        let mut ip = String::new();
        self.client.render(addr, &mut ip);
        Peer { addr, ip: ip.into_boxed_str(), proxy: self.client.trusts(addr), transport }
    }

    /// Whether `head` may send events: its origin (→ 403, no CORS headers), then its write key (→ 401, with the
    /// CORS headers of an allowed origin, so the page can read why). The grant is for every answer to it. `sdk`:
    /// an SDK's route, which echoes origins and may find its key in the body (`Admission::BodyKeys`).
    #[inline]
    pub fn admit(&mut self, head: &RequestHead<'_>, sdk: bool) -> (Option<Grant>, Result<Admission, HttpError>) {
        let origin = if self.cors.ignores_origin(sdk) { None } else { field(head.raw, b"origin") };
        let grant = match self.cors.verdict(origin, sdk) {
            Verdict::Plain => None,
            Verdict::Allowed(grant) => Some(grant),
            Verdict::Refused => return (None, Err(HttpError::Forbidden)),
        };
        let admission = match self.keys.gate(head) {
            Ok(KeyGate::Open) => Ok(Admission::Admitted),
            Ok(KeyGate::BodyKeys(_)) if sdk => Ok(Admission::BodyKeys),
            Ok(KeyGate::BodyKeys(_)) | Err(_) => Err(HttpError::Unauthorized),
        };
        (grant, admission)
    }

    /// The key check of an admitted request's events.
    pub fn gate(&self, admission: Admission) -> KeyGate<'_> {
        match admission {
            Admission::Admitted => KeyGate::Open,
            Admission::BodyKeys => KeyGate::BodyKeys(&self.keys),
        }
    }

    /// The CORS lines of a preflight's answer, appended to `out`.
    pub fn preflight(&mut self, head: &RequestHead<'_>, allow: &str, sdk: bool, out: &mut Vec<u8>) {
        let request = Preflight {
            origin: field(head.raw, b"origin"),
            method: field(head.raw, b"access-control-request-method"),
            headers: field(head.raw, b"access-control-request-headers"),
        };
        self.cors.preflight(request, allow, sdk, out);
    }

    /// What the records of this request say about who sent it. `anonymous`: the client asked not to be
    /// tracked (Snowplow's `SP-Anonymous`), so no address is kept and none is located.
    #[inline]
    pub fn identify<'a>(&'a mut self, peer: &'a Peer, head: &RequestHead<'_>, anonymous: bool) -> Identity<'a> {
        let (ip, client) = if anonymous {
            ("", None)
        } else if peer.proxy && head.forwarded {
            let client = self.client.forwarded_client(peer.addr, head.raw);
            self.client.render(client, &mut self.forwarded_ip);
            (&*self.forwarded_ip, Some(client))
        } else {
            (&*peer.ip, Some(peer.addr))
        };
        if !self.capture.is_empty() {
            render_headers(&self.capture, head.raw, &mut self.headers);
        }
        let enriched = self.enricher.enrich(client, head.user_agent);
        Identity { ip, headers: &self.headers, enrichment: enriched.fragment, drop: enriched.drop }
    }
}

impl Edge {
    /// A datagram's key line (with `WRITE_KEYS`, a datagram starts with `KEY\n`): the payload after it, or
    /// `None` when the key is missing or unknown. Without `WRITE_KEYS` the whole datagram is the payload.
    pub fn datagram_payload<'d>(&self, datagram: &'d [u8]) -> Option<&'d [u8]> {
        if !self.keys.required() {
            return Some(datagram);
        }
        let end = memchr::memchr(b'\n', datagram)?;
        let key = datagram[..end].strip_suffix(b"\r").unwrap_or(&datagram[..end]);
        self.keys.is_known(key).then_some(&datagram[end + 1..])
    }

    /// What a datagram's records say about its sender: its address (`IP_MODE` applied, located with
    /// `GEOIP_DB`), no user agent, and empty captured headers (so the records keep the configuration's fields).
    pub fn identify_datagram<'a>(&'a mut self, peer: &'a Peer) -> Identity<'a> {
        if !self.capture.is_empty() {
            render_headers(&self.capture, b"", &mut self.headers);
        }
        let enriched = self.enricher.enrich(Some(peer.addr), b"");
        Identity { ip: &peer.ip, headers: &self.headers, enrichment: enriched.fragment, drop: false }
    }
}

/// How a request's key stands once its head was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No key is needed, or the head presented a known one.
    Admitted,
    /// The head presented none: each event must carry a known one in the body (SDK routes only).
    BodyKeys,
}

/// `,"headers":{"name":"value",…}` for the captured names present in the head (several lines of one name
/// joined with `, `, as RFC 9110 §5.3 allows), in the order of `names`.
fn render_headers(names: &[String], head: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b",\"headers\":{");
    for name in names {
        let mut values = fields(head).filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v);
        let Some(first) = values.next() else {
            continue;
        };
        if out.last() != Some(&b'{') {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":\"");
        escape_lossy_into(out, first);
        for value in values {
            out.extend_from_slice(b", ");
            escape_lossy_into(out, value);
        }
        out.push(b'"');
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_headers_render_in_the_order_named() {
        let head = b"GET /e HTTP/1.1\r\nHost: h\r\nAccept-Language: de\r\nReferer: https://x/\"q\"\r\n\
                     accept-language: en\r\nCookie: c=1\r\n\r\n";
        let mut out = Vec::new();
        let names = ["referer".to_string(), "accept-language".into(), "dnt".into()];
        render_headers(&names, head, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#","headers":{"referer":"https://x/\"q\"","accept-language":"de, en"}"#
        );
        render_headers(&["dnt".to_string()], head, &mut out);
        assert_eq!(out, br#","headers":{}"#);
    }
}
