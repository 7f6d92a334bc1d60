//! Write keys (`WRITE_KEYS`): when set, an ingest request must present one of them — in `X-Write-Key`, as the
//! user of HTTP Basic credentials (what Segment-style SDKs send), or as the `write_key` query parameter — or it
//! gets 401 and nothing is stored.
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
        if self.required() { self.check_presented(head) } else { Ok(()) }
    }

    fn check_presented(&mut self, head: &RequestHead<'_>) -> Result<(), HttpError> {
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
        let known = presented.is_some_and(|key| known(&self.digests, key));
        self.scratch = scratch;
        if known { Ok(()) } else { Err(HttpError::Unauthorized) }
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
    fn debug_output_shows_no_key() {
        let keys = WriteKeys::new(&["secret-key".into()]);
        assert_eq!(format!("{keys:?}"), "WriteKeys(1 keys)");
    }
}
