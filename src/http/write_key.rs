//! Write keys (`WRITE_KEYS`): when set, an ingest request must present one of them — in `X-Write-Key`, as the
//! user of HTTP Basic credentials (what Segment-style SDKs send), or as the `write_key` query parameter — or it
//! gets 401 and nothing is stored. The SDK protocols carry their key in the body too (Segment's `writeKey`,
//! PostHog's `api_key` / `token`, a Snowplow event's `aid`): a request whose head presents no key is admitted
//! event by event through its `KeyGate`, and a head that presents an unknown key is refused whatever its body says.
//!
//! Only SHA-256 digests of the keys are kept. A presented key is hashed and compared with every digest in
//! constant time, all of them every time, so neither the answer's timing nor the keys' lengths tell a client
//! how close a guess came. A key is never logged, and the `write_key` parameter is left out of `raw_data`.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{HttpError, RequestHead, field, percent};

/// The query parameter that can carry a write key.
pub const PARAM: &[u8] = b"write_key";

#[derive(Clone, Default)]
pub struct WriteKeys {
    digests: Vec<[u8; 32]>,
    /// Decoded Basic credentials or query parameter.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for WriteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriteKeys({} keys)", self.digests.len())
    }
}

impl WriteKeys {
    pub fn new(keys: &[String]) -> WriteKeys {
        WriteKeys { digests: keys.iter().map(|k| digest(k.as_bytes())).collect(), scratch: Vec::new() }
    }

    /// Whether requests must present a key.
    pub fn required(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Ok when no key is required or the request presents a known one; 401 otherwise.
    #[inline]
    pub fn check(&mut self, head: &RequestHead<'_>) -> Result<(), HttpError> {
        match self.gate(head)? {
            KeyGate::Open => Ok(()),
            KeyGate::BodyKeys(_) => Err(HttpError::Unauthorized),
        }
    }

    /// What the head says: no key needed or a known one presented (`Open`), none presented (each event must
    /// bring a known key in its body), or an unknown one (401).
    #[inline]
    pub fn gate(&mut self, head: &RequestHead<'_>) -> Result<KeyGate<'_>, HttpError> {
        if !self.required() {
            return Ok(KeyGate::Open);
        }
        match self.presented(head) {
            Some(true) => Ok(KeyGate::Open),
            Some(false) => Err(HttpError::Unauthorized),
            None => Ok(KeyGate::BodyKeys(self)),
        }
    }

    /// Whether `key` is one of the keys.
    pub fn is_known(&self, key: &[u8]) -> bool {
        known(&self.digests, key)
    }

    /// Whether the head's key is known; `None` when it presents none.
    fn presented(&mut self, head: &RequestHead<'_>) -> Option<bool> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let presented = if let Some(key) = field(head.raw, b"x-write-key") {
            Some(key)
        } else if let Some(user) = field(head.raw, b"authorization").and_then(|a| basic_user(a, &mut scratch)) {
            Some(user)
        } else {
            percent::find_param(head.query, PARAM).map(|raw| {
                let range = percent::decode_into(&mut scratch, raw);
                &scratch[range]
            })
        };
        let verdict = presented.map(|key| known(&self.digests, key));
        self.scratch = scratch;
        verdict
    }
}

/// A request's standing with `WRITE_KEYS` after its head: admitted, or admitted only for events whose body
/// carries a known key.
#[derive(Debug, Clone, Copy)]
pub enum KeyGate<'k> {
    Open,
    BodyKeys(&'k WriteKeys),
}

impl KeyGate<'_> {
    /// Admits an event that carries `key` (the first key found in its envelope or itself), or refuses it: 401.
    pub fn admit(&self, key: Option<&str>) -> Result<(), HttpError> {
        match self {
            KeyGate::Open => Ok(()),
            KeyGate::BodyKeys(keys) if key.is_some_and(|key| keys.is_known(key.as_bytes())) => Ok(()),
            KeyGate::BodyKeys(_) => Err(HttpError::Unauthorized),
        }
    }
}

/// Whether `key` is one of `digests`: every digest compared, each in constant time.
fn known(digests: &[[u8; 32]], key: &[u8]) -> bool {
    let presented = digest(key);
    let any = digests.iter().fold(subtle::Choice::from(0), |any, d| any | d.ct_eq(&presented));
    any.into()
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// The user part of `Basic base64(user:password)` credentials, decoded into `scratch`.
fn basic_user<'s>(authorization: &[u8], scratch: &'s mut Vec<u8>) -> Option<&'s [u8]> {
    let (scheme, token) = authorization.split_at(authorization.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode_vec(token.trim_ascii(), scratch).ok()?;
    let user_end = scratch.iter().position(|&b| b == b':').unwrap_or(scratch.len());
    Some(&scratch[..user_end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Parse, parse_head};

    fn check(keys: &mut WriteKeys, raw: &str) -> Result<(), HttpError> {
        let Ok(Parse::Complete(head)) = parse_head(raw.as_bytes()) else { panic!("{raw}") };
        keys.check(&head)
    }

    #[test]
    fn a_key_is_taken_from_the_header_basic_credentials_or_the_query() {
        let mut keys = WriteKeys::new(&["k-one".into(), "k+two".into()]);
        let accepted = [
            "GET /e HTTP/1.1\r\nHost: h\r\nX-Write-Key: k-one\r\n\r\n",
            // base64("k+two:") and base64("k-one:anything")
            "GET /e HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ayt0d286\r\n\r\n",
            "GET /e HTTP/1.1\r\nHost: h\r\nAuthorization: basic ay1vbmU6YW55dGhpbmc=\r\n\r\n",
            "GET /e?a=1&write_key=k%2Btwo HTTP/1.1\r\nHost: h\r\n\r\n",
        ];
        for raw in accepted {
            assert_eq!(check(&mut keys, raw), Ok(()), "{raw}");
        }
        let refused = [
            "GET /e HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /e HTTP/1.1\r\nHost: h\r\nX-Write-Key: k-on\r\n\r\n",
            "GET /e HTTP/1.1\r\nHost: h\r\nX-Write-Key: k-one \r\nX-Write-Key: wrong\r\n\r\n",
            "GET /e HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer k-one\r\n\r\n",
            "GET /e HTTP/1.1\r\nHost: h\r\nAuthorization: Basic !!!\r\n\r\n",
            "GET /e?write_key=k+two HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /e?write_key= HTTP/1.1\r\nHost: h\r\n\r\n",
        ];
        for raw in refused {
            assert_eq!(check(&mut keys, raw), Err(HttpError::Unauthorized), "{raw}");
        }
        let mut open = WriteKeys::new(&[]);
        assert_eq!(check(&mut open, "GET /e HTTP/1.1\r\nHost: h\r\n\r\n"), Ok(()));
    }

    #[test]
    fn a_head_without_a_key_leaves_it_to_each_event_and_a_wrong_head_key_decides() {
        let mut keys = WriteKeys::new(&["k-one".into()]);
        let gate = |keys: &mut WriteKeys, raw: &str, body_key: Option<&str>| {
            let Ok(Parse::Complete(head)) = parse_head(raw.as_bytes()) else { panic!("{raw}") };
            keys.gate(&head).and_then(|gate| gate.admit(body_key))
        };
        let bare = "POST /v1/batch HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(gate(&mut keys, bare, Some("k-one")), Ok(()));
        assert_eq!(gate(&mut keys, bare, Some("k-two")), Err(HttpError::Unauthorized));
        assert_eq!(gate(&mut keys, bare, None), Err(HttpError::Unauthorized));
        let known = "POST /v1/batch HTTP/1.1\r\nHost: h\r\nX-Write-Key: k-one\r\n\r\n";
        assert_eq!(gate(&mut keys, known, None), Ok(()), "the head's key covers every event");
        assert_eq!(gate(&mut keys, known, Some("anything")), Ok(()));
        let wrong = "POST /v1/batch HTTP/1.1\r\nHost: h\r\nX-Write-Key: k-two\r\n\r\n";
        assert_eq!(gate(&mut keys, wrong, Some("k-one")), Err(HttpError::Unauthorized), "a wrong head key decides");
        assert_eq!(gate(&mut WriteKeys::new(&[]), bare, None), Ok(()));
    }

    #[test]
    fn debug_output_shows_no_key() {
        let keys = WriteKeys::new(&["secret-key".into()]);
        assert_eq!(format!("{keys:?}"), "WriteKeys(1 keys)");
    }
}
