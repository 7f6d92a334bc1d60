//! The record's `ip`: who sent the event, and how much of that address is kept.
//!
//! The client is the connection's peer, unless the peer is a trusted proxy (`TRUSTED_PROXIES`): then it is the
//! right-most `X-Forwarded-For` address that is not itself a trusted proxy (each proxy appends the address it
//! received the request from, so everything left of the first untrusted hop is what a client could forge), or
//! the same walk over `Forwarded: for=` (RFC 7239) when there is no `X-Forwarded-For`. Decided per request: one
//! proxy connection carries many clients. An untrusted peer's forwarding headers are ignored.
//!
//! `IP_MODE` then decides what is written: the address (`full`), its network (`truncate`: IPv4 /24, IPv6 /48),
//! a keyed hash (`hash`: HMAC-SHA-256 with `IP_HASH_KEY`, the same across restarts so sessions can still be
//! joined, not reversible without the key), or nothing (`drop`: an empty string, so the schema stays).

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::http::fields;

/// The hashed form keeps this many bytes of the HMAC (as hex): 128 bits, collision-free for any real traffic.
const HASH_BYTES: usize = 16;

/// `IP_MODE`: what the record's `ip` keeps of the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpMode {
    #[default]
    Full,
    /// IPv4 /24, IPv6 /48.
    Truncate,
    /// HMAC-SHA-256 with `IP_HASH_KEY`.
    Hash,
    /// An empty string.
    Drop,
}

#[derive(Clone)]
pub struct ClientIp {
    trusted: Vec<IpNet>,
    mode: IpMode,
    hash_key: Option<ring::hmac::Key>,
}

impl std::fmt::Debug for ClientIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIp").field("trusted", &self.trusted).field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl ClientIp {
    /// `hash_key` is required with `IpMode::Hash` (the configuration checks it).
    pub fn new(trusted: Vec<IpNet>, mode: IpMode, hash_key: Option<&[u8]>) -> ClientIp {
        let hash_key = hash_key.map(|k| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k));
        ClientIp { trusted, mode, hash_key }
    }

    /// Whether the forwarding headers of requests from `peer` are believed.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted.iter().any(|net| net.contains(&peer))
    }

    /// The client of a request that a trusted proxy `peer` forwarded, from the header lines of its head.
    pub fn forwarded_client(&self, peer: IpAddr, head: &[u8]) -> IpAddr {
        let mut xff: [&[u8]; crate::http::MAX_HEADERS] = [b""; crate::http::MAX_HEADERS];
        let mut forwarded = xff;
        let (mut n_xff, mut n_fwd) = (0, 0);
        for (name, value) in fields(head) {
            if name.eq_ignore_ascii_case(b"x-forwarded-for") {
                xff[n_xff] = value;
                n_xff += 1;
            } else if name.eq_ignore_ascii_case(b"forwarded") {
                forwarded[n_fwd] = value;
                n_fwd += 1;
            }
        }
        let peer = peer.to_canonical();
        if n_xff > 0 {
            let hops = xff[..n_xff].iter().rev().flat_map(|line| line.rsplit(|&b| b == b','));
            self.walk(peer, hops.map(parse_hop))
        } else {
            let elements = forwarded[..n_fwd].iter().rev().flat_map(|line| line.rsplit(|&b| b == b','));
            self.walk(peer, elements.map(forwarded_for))
        }
    }

    /// From the nearest hop outwards: the first address that is not a trusted proxy. A hop that is not an
    /// address ends the walk at the last trusted one; if every hop is trusted, the farthest is the client.
    fn walk(&self, peer: IpAddr, hops: impl Iterator<Item = Option<IpAddr>>) -> IpAddr {
        let mut client = peer;
        for hop in hops {
            match hop {
                Some(addr) if self.trusts(addr) => client = addr,
                Some(addr) => return addr,
                None => return client,
            }
        }
        client
    }

    /// The `ip` field's text for `addr`, as `IP_MODE` says.
    pub fn render(&self, addr: IpAddr, out: &mut String) {
        out.clear();
        let addr = addr.to_canonical();
        match (self.mode, addr) {
            (IpMode::Full, _) => {
                let _ = write!(out, "{addr}");
            }
            (IpMode::Truncate, IpAddr::V4(v4)) => {
                let _ = write!(out, "{}", Ipv4Addr::from(v4.to_bits() & 0xffff_ff00));
            }
            (IpMode::Truncate, IpAddr::V6(v6)) => {
                let _ = write!(out, "{}", Ipv6Addr::from(v6.to_bits() & (u128::MAX << 80)));
            }
            (IpMode::Hash, _) => {
                let Some(key) = &self.hash_key else {
                    return;
                };
                let tag = match addr {
                    IpAddr::V4(v4) => ring::hmac::sign(key, &v4.octets()),
                    IpAddr::V6(v6) => ring::hmac::sign(key, &v6.octets()),
                };
                for b in &tag.as_ref()[..HASH_BYTES] {
                    let _ = write!(out, "{b:02x}");
                }
            }
            (IpMode::Drop, _) => {}
        }
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`203.0.113.7:5123`, `[2001:db8::1]:443`).
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry.trim_ascii()).ok()?;
    let entry = entry.strip_prefix('"').and_then(|e| e.strip_suffix('"')).unwrap_or(entry);
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(addr.to_canonical());
    }
    if let Some(bracketed) = entry.strip_prefix('[') {
        let (v6, _port) = bracketed.split_once(']')?;
        return v6.parse::<Ipv6Addr>().ok().map(|a| IpAddr::V6(a).to_canonical());
    }
    let (v4, port) = entry.split_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The `for=` address of one `Forwarded` element (`for=192.0.2.60;proto=http`, `for="[2001:db8::17]:4711"`).
/// `unknown` and obfuscated identifiers are not addresses.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    element.split(|&b| b == b';').find_map(|pair| {
        let (name, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
        name.trim_ascii().eq_ignore_ascii_case(b"for").then(|| parse_hop(&value[1..])).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_cidrs;

    fn client(trusted: &str, peer: &str, headers: &str) -> String {
        let policy = ClientIp::new(parse_cidrs(trusted).unwrap().0, IpMode::Full, None);
        let head = format!("GET /e HTTP/1.1\r\nHost: h\r\n{headers}\r\n");
        let peer: IpAddr = peer.parse().unwrap();
        let addr = if policy.trusts(peer) { policy.forwarded_client(peer, head.as_bytes()) } else { peer };
        addr.to_string()
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let table = [
            // (trusted, peer, headers, client)
            ("10.0.0.0/8", "10.0.0.1", "X-Forwarded-For: 203.0.113.7\r\n", "203.0.113.7"),
            ("10.0.0.0/8", "10.0.0.1", "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.0.0.2\r\n", "203.0.113.7"),
            // Two lines are one list, in order.
            ("10.0.0.0/8", "10.0.0.1", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\n", "203.0.113.7"),
            // An untrusted peer's headers are ignored.
            ("10.0.0.0/8", "198.51.100.1", "X-Forwarded-For: 203.0.113.7\r\n", "198.51.100.1"),
            ("", "10.0.0.1", "X-Forwarded-For: 203.0.113.7\r\n", "10.0.0.1"),
            // Every hop trusted: the farthest.
            ("10.0.0.0/8", "10.0.0.1", "X-Forwarded-For: 10.1.1.1, 10.2.2.2\r\n", "10.1.1.1"),
            // Garbage where the client could write: the last trusted hop.
            ("10.0.0.0/8", "10.0.0.1", "X-Forwarded-For: 203.0.113.7, nonsense, 10.0.0.9\r\n", "10.0.0.9"),
            ("10.0.0.0/8", "10.0.0.1", "X-Forwarded-For: 203.0.113.7:5123\r\n", "203.0.113.7"),
            ("10.0.0.0/8", "10.0.0.1", "X-Forwarded-For: [2001:db8::1]:443\r\n", "2001:db8::1"),
            ("10.0.0.0/8", "::ffff:10.0.0.1", "X-Forwarded-For: ::ffff:203.0.113.7\r\n", "203.0.113.7"),
            ("10.0.0.1", "10.0.0.1", "Forwarded: for=203.0.113.7;proto=https\r\n", "203.0.113.7"),
            (
                "10.0.0.1",
                "10.0.0.1",
                "Forwarded: for=6.6.6.6, For=\"[2001:db8:cafe::17]:4711\"\r\n",
                "2001:db8:cafe::17",
            ),
            ("10.0.0.1", "10.0.0.1", "Forwarded: for=unknown\r\n", "10.0.0.1"),
            // X-Forwarded-For wins over Forwarded.
            ("10.0.0.1", "10.0.0.1", "Forwarded: for=6.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\n", "203.0.113.7"),
        ];
        for (trusted, peer, headers, want) in table {
            assert_eq!(client(trusted, peer, headers), want, "{trusted} {peer} {headers:?}");
        }
    }

    #[test]
    fn ip_modes() {
        let render = |mode, key: Option<&[u8]>, addr: &str| {
            let mut out = String::new();
            ClientIp::new(Vec::new(), mode, key).render(addr.parse().unwrap(), &mut out);
            out
        };
        assert_eq!(render(IpMode::Full, None, "::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(render(IpMode::Truncate, None, "203.0.113.7"), "203.0.113.0");
        assert_eq!(render(IpMode::Truncate, None, "2001:db8:1:2:3::4"), "2001:db8:1::");
        assert_eq!(render(IpMode::Drop, None, "203.0.113.7"), "");
        let hashed = render(IpMode::Hash, Some(b"0123456789abcdef"), "203.0.113.7");
        assert_eq!(hashed.len(), 32);
        assert!(hashed.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hashed, render(IpMode::Hash, Some(b"0123456789abcdef"), "203.0.113.7"), "stable");
        assert_ne!(hashed, render(IpMode::Hash, Some(b"0123456789abcdeF"), "203.0.113.7"), "keyed");
        assert_ne!(hashed, render(IpMode::Hash, Some(b"0123456789abcdef"), "203.0.113.8"));
    }
}
