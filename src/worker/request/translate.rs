//! What the HTTP/2 and HTTP/3 front ends share: a request's head, received as fields, rendered as the
//! HTTP/1.1 head the parser reads (so every route reads the same fields with the same checks), and an answer,
//! encoded as HTTP/1.1 by the one encoder, taken apart into a status, fields and a body.

/// Response header lines HTTP/2 and HTTP/3 do not carry (RFC 9113 §8.2.2, RFC 9114 §4.2).
const CONNECTION_SPECIFIC: &[&[u8]] =
    &[b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"];

/// A request's head as HTTP/1.1 would have carried it: the request line, `host` from the authority (or the host
/// field), the `cookie` fields joined into one line (RFC 9113 §8.2.3, RFC 9114 §4.2.1), and the other fields
/// as they came (`fields` gives them, without pseudo-headers, each time it is called). The front end has refused what its protocol forbids
/// (uppercase names, connection-specific fields, values with CR, LF or NUL).
pub fn render_head<'f, I: Iterator<Item = (&'f [u8], &'f [u8])>>(
    method: &[u8],
    target: &[u8],
    authority: Option<&[u8]>,
    fields: impl Fn() -> I,
    raw: &mut Vec<u8>,
) {
    raw.clear();
    raw.extend_from_slice(method);
    raw.push(b' ');
    raw.extend_from_slice(if target.is_empty() { b"/" } else { target });
    raw.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    let host = || fields().find(|(name, _)| *name == b"host").map(|(_, value)| value);
    if let Some(host) = authority.or_else(host) {
        raw.extend_from_slice(host);
    }
    raw.extend_from_slice(b"\r\n");
    let mut cookies = fields().filter(|(name, _)| *name == b"cookie");
    if let Some((_, first)) = cookies.next() {
        raw.extend_from_slice(b"cookie: ");
        raw.extend_from_slice(first);
        for (_, more) in cookies {
            raw.extend_from_slice(b"; ");
            raw.extend_from_slice(more);
        }
        raw.extend_from_slice(b"\r\n");
    }
    for (name, value) in fields() {
        if name == b"host" || name == b"cookie" {
            continue;
        }
        raw.extend_from_slice(name);
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
}

/// An HTTP/1.1 answer (as `encode` writes it) taken apart: `field` gets each header line but the
/// connection-specific ones (names as written); returns the status and where the body starts.
pub fn split_answer<'a>(encoded: &'a [u8], mut field: impl FnMut(&'a str, &'a [u8])) -> (u16, usize) {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut fields);
    let end = match parsed.parse(encoded) {
        Ok(httparse::Status::Complete(end)) => end,
        _ => unreachable!("plutos's own encoder writes a whole head"),
    };
    for line in parsed.headers.iter() {
        if !CONNECTION_SPECIFIC.iter().any(|c| line.name.as_bytes().eq_ignore_ascii_case(c)) {
            field(line.name, line.value);
        }
    }
    (parsed.code.unwrap_or(500), end)
}
