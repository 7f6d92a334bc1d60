//! The transfer codings of a request (every Transfer-Encoding line, in order) and what they mean for framing.

use super::{HttpError, trim_ows};

/// The transfer codings of every Transfer-Encoding line, in order.
#[derive(Default)]
pub(super) struct Codings {
    seen: bool,
    chunked: usize,
    last_is_chunked: bool,
    other: bool,
    empty: bool,
}

impl Codings {
    pub(super) fn add(&mut self, value: &[u8]) {
        self.seen = true;
        for coding in value.split(|&b| b == b',').map(trim_ows) {
            if coding.is_empty() {
                self.empty = true;
                continue;
            }
            self.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if self.last_is_chunked {
                self.chunked += 1;
            } else {
                self.other = true;
            }
        }
    }

    /// Whether the body is chunked; an error for every shape RFC 9112 §6.1 and §6.3 call faulty.
    pub(super) fn framing(&self, http10: bool) -> Result<bool, HttpError> {
        if !self.seen {
            return Ok(false);
        }
        if http10 {
            return Err(HttpError::BadRequest("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if self.empty || !self.last_is_chunked || self.chunked > 1 {
            return Err(HttpError::BadRequest("Transfer-Encoding must end in chunked, once"));
        }
        if self.other {
            return Err(HttpError::NotImplemented("transfer codings other than chunked are not supported"));
        }
        Ok(true)
    }
}
