//! The chunked transfer coding of request bodies (RFC 9112 §7.1), strictly: a front-end and plutos must never
//! disagree about where a body ends, so anything the grammar does not allow is a 400 and the connection closes.
//!
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-ext    = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
//! ```
//!
//! Every line ends in CRLF (a bare LF or CR is refused); the size is hex digits only (no sign, no `0x`, no
//! whitespace unless an extension follows); trailer lines are checked like header lines and counted against
//! the head limits. `ChunkedScanner` keeps its position between reads, so a body trickled in small pieces is
//! scanned once: the cost is linear in its size.

use super::{HttpError, Parse, is_field_value, is_token};

/// Framing bytes (size lines, extensions, CRLFs) a body may carry beyond its largest allowed data: the body on the
/// wire is at most `max_body + MAX_FRAMING_BYTES` (→ 413), which bounds what a connection buffers.
pub const MAX_FRAMING_BYTES: usize = 64 * 1024;
/// The longest chunk-size line, extensions included → 400.
const MAX_SIZE_LINE: usize = 4 * 1024;

/// Where a complete chunked body ends and how much data it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedBody {
    /// Bytes on the wire, from the first chunk-size line to the final CRLF.
    pub wire_len: usize,
    /// Bytes of data once decoded.
    pub body_len: usize,
}

/// The limits of one body: its decoded size, and what the head left of the head limits for its trailers.
#[derive(Debug, Clone, Copy)]
pub struct ChunkedLimits {
    pub max_body: usize,
    pub max_trailer_bytes: usize,
    pub max_trailer_lines: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A chunk-size line starts at `start`; bytes before the scanner's position hold no LF.
    SizeLine { start: usize },
    /// `left` bytes of chunk data to go.
    Data { left: usize },
    /// The CRLF after chunk data; `cr` once its CR was seen.
    DataEnd { cr: bool },
    /// A trailer line (or the final empty line) starts at `start`.
    TrailerLine { start: usize },
}

/// A chunked body scanned as it arrives: `scan` is called with the body's bytes so far (always from its first
/// byte) and looks only at bytes it has not seen.
#[derive(Debug, Clone)]
pub struct ChunkedScanner {
    limits: ChunkedLimits,
    state: State,
    /// The next byte to look at.
    pos: usize,
    body_len: usize,
    /// Bytes of size lines and of the CRLFs after chunk data so far.
    framing: usize,
    /// Where the trailer section starts, once the last chunk was seen.
    trailers_start: usize,
    trailer_lines: usize,
}

impl ChunkedScanner {
    pub fn new(limits: ChunkedLimits) -> ChunkedScanner {
        ChunkedScanner {
            limits,
            state: State::SizeLine { start: 0 },
            pos: 0,
            body_len: 0,
            framing: 0,
            trailers_start: 0,
            trailer_lines: 0,
        }
    }

    /// Continues over `buf` (the body so far, a longer prefix of the same bytes each call).
    pub fn scan(&mut self, buf: &[u8]) -> Result<Parse<ChunkedBody>, HttpError> {
        self.advance(buf, |_| {})
    }

    /// Scans `buf` and calls `data` with each piece of chunk data in order.
    fn advance(&mut self, buf: &[u8], mut data: impl FnMut(&[u8])) -> Result<Parse<ChunkedBody>, HttpError> {
        loop {
            match self.state {
                State::SizeLine { start } => {
                    let Some(line) = self.next_line(buf, start) else {
                        if self.pos - start > MAX_SIZE_LINE {
                            return Err(HttpError::BadRequest("chunk size line too long"));
                        }
                        return Ok(Parse::Partial);
                    };
                    if line.len() > MAX_SIZE_LINE {
                        return Err(HttpError::BadRequest("chunk size line too long"));
                    }
                    let size = parse_size_line(line)?;
                    self.framing += line.len() + 1;
                    if self.body_len + self.framing > self.limits.max_body + MAX_FRAMING_BYTES {
                        return Err(HttpError::PayloadTooLarge("chunked body too large on the wire"));
                    }
                    if size == 0 {
                        self.trailers_start = self.pos;
                        self.state = State::TrailerLine { start: self.pos };
                        continue;
                    }
                    if size > self.limits.max_body - self.body_len {
                        return Err(HttpError::PayloadTooLarge("request body too large"));
                    }
                    self.body_len += size;
                    self.state = State::Data { left: size };
                }
                State::Data { left } => {
                    let available = (buf.len() - self.pos).min(left);
                    crate::cost::examined(available);
                    data(&buf[self.pos..self.pos + available]);
                    self.pos += available;
                    if available < left {
                        self.state = State::Data { left: left - available };
                        return Ok(Parse::Partial);
                    }
                    self.state = State::DataEnd { cr: false };
                }
                State::DataEnd { cr } => {
                    let Some(&b) = buf.get(self.pos) else {
                        return Ok(Parse::Partial);
                    };
                    self.pos += 1;
                    self.framing += 1;
                    self.state = match (cr, b) {
                        (false, b'\r') => State::DataEnd { cr: true },
                        (true, b'\n') => State::SizeLine { start: self.pos },
                        _ => return Err(HttpError::BadRequest("chunk data not followed by CRLF")),
                    };
                }
                State::TrailerLine { start } => {
                    let Some(line) = self.next_line(buf, start) else {
                        if self.pos - self.trailers_start > self.limits.max_trailer_bytes {
                            return Err(HttpError::HeadersTooLarge);
                        }
                        return Ok(Parse::Partial);
                    };
                    let line = line.strip_suffix(b"\r").ok_or(BARE_LF)?;
                    if line.is_empty() {
                        return Ok(Parse::Complete(ChunkedBody { wire_len: self.pos, body_len: self.body_len }));
                    }
                    validate_field_line(line)?;
                    self.trailer_lines += 1;
                    let bytes = self.pos - self.trailers_start;
                    if self.trailer_lines > self.limits.max_trailer_lines || bytes > self.limits.max_trailer_bytes {
                        return Err(HttpError::HeadersTooLarge);
                    }
                    self.state = State::TrailerLine { start: self.pos };
                }
            }
        }
    }

    /// The line (without its LF) from `start` if its LF has arrived; moves the position past it, or to the end
    /// of `buf` when the line is still incomplete (those bytes are never searched again).
    fn next_line<'b>(&mut self, buf: &'b [u8], start: usize) -> Option<&'b [u8]> {
        let found = memchr::memchr(b'\n', &buf[self.pos..]);
        // Searched once, then parsed once.
        crate::cost::examined(2 * found.map_or(buf.len() - self.pos, |i| i + 1));
        match found {
            Some(i) => {
                let end = self.pos + i;
                self.pos = end + 1;
                Some(&buf[start..end])
            }
            None => {
                self.pos = buf.len();
                None
            }
        }
    }
}

const BARE_LF: HttpError = HttpError::BadRequest("bare LF in chunked framing");

/// `chunk-size [ chunk-ext ] CR` (the LF already stripped) → the size.
fn parse_size_line(line: &[u8]) -> Result<usize, HttpError> {
    const MALFORMED: HttpError = HttpError::BadRequest("malformed chunk size line");
    let line = line.strip_suffix(b"\r").ok_or(BARE_LF)?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(MALFORMED);
    }
    let mut size = 0usize;
    for &d in &line[..digits] {
        let value = (d as char).to_digit(16).expect("a hex digit") as usize;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(value))
            .ok_or(HttpError::PayloadTooLarge("chunk size too large"))?;
    }
    validate_extensions(&line[digits..]).ok_or(MALFORMED)?;
    Ok(size)
}

/// `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`, and nothing else.
fn validate_extensions(mut rest: &[u8]) -> Option<()> {
    let skip_ws = |s: &[u8]| -> usize { s.iter().take_while(|&&b| b == b' ' || b == b'\t').count() };
    while !rest.is_empty() {
        rest = &rest[skip_ws(rest)..];
        rest = rest.strip_prefix(b";")?; // whitespace must lead to an extension
        rest = &rest[skip_ws(rest)..];
        let name = rest.iter().take_while(|&&b| is_token(b)).count();
        if name == 0 {
            return None;
        }
        rest = &rest[name..];
        let after_ws = &rest[skip_ws(rest)..];
        if let Some(value) = after_ws.strip_prefix(b"=") {
            let value = &value[skip_ws(value)..];
            let len = match value.first() {
                Some(b'"') => quoted_string_len(value)?,
                _ => value.iter().take_while(|&&b| is_token(b)).count(),
            };
            if len == 0 {
                return None;
            }
            rest = &value[len..];
        }
    }
    Some(())
}

/// The length of the quoted-string at the start of `s` (which starts with `"`).
fn quoted_string_len(s: &[u8]) -> Option<usize> {
    let is_qdtext = |b: u8| matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF);
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' => match s.get(i + 1) {
                Some(&b) if b == b'\t' || b == b' ' || (0x21..=0x7E).contains(&b) || b >= 0x80 => i += 2,
                _ => return None,
            },
            b if is_qdtext(b) => i += 1,
            _ => return None,
        }
    }
    None
}

/// `field-name ":" OWS field-value OWS`, as header lines are (no obs-fold).
fn validate_field_line(line: &[u8]) -> Result<(), HttpError> {
    const MALFORMED: HttpError = HttpError::BadRequest("malformed trailer field");
    let name = line.iter().take_while(|&&b| is_token(b)).count();
    match line.get(name) {
        Some(b':') if name > 0 && is_field_value(&line[name + 1..]) => Ok(()),
        _ => Err(MALFORMED),
    }
}

/// Appends the data of a chunked body that `ChunkedScanner` found complete in `buf` to `out`.
pub fn decode_chunked(buf: &[u8], limits: ChunkedLimits, out: &mut Vec<u8>) -> Result<ChunkedBody, HttpError> {
    match ChunkedScanner::new(limits).advance(buf, |data| out.extend_from_slice(data))? {
        Parse::Complete(body) => Ok(body),
        Parse::Partial => Err(HttpError::BadRequest("incomplete chunked body")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ChunkedLimits = ChunkedLimits { max_body: 100, max_trailer_bytes: 200, max_trailer_lines: 4 };

    fn scan(body: &[u8]) -> Result<Option<ChunkedBody>, HttpError> {
        Ok(match ChunkedScanner::new(LIMITS).scan(body)? {
            Parse::Complete(c) => Some(c),
            Parse::Partial => None,
        })
    }

    fn decode(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decode_chunked(body, LIMITS, &mut out).unwrap();
        out
    }

    #[test]
    fn scans_and_decodes_valid_bodies() {
        let table: &[(&[u8], &[u8])] = &[
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"0\r\n\r\n", b""),
            (b"000\r\n\r\n", b""),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"5;ext\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5;a=b;c=\"q \\\" \\\\ d\"\r\nhello\r\n0;last\r\n\r\n", b"hello"),
            (b"5 ;a = b\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n0\r\nTrailer: x\r\nOther:\tv w \r\n\r\n", b"hello"),
            (b"5\r\nhe\r\nl\r\n0\r\n\r\n", b"he\r\nl"),
        ];
        for (body, data) in table {
            let found = scan(body).unwrap().unwrap_or_else(|| panic!("complete: {}", String::from_utf8_lossy(body)));
            assert_eq!(found, ChunkedBody { wire_len: body.len(), body_len: data.len() });
            assert_eq!(decode(body), *data);
            // Whatever follows the body is not part of it.
            let mut more = body.to_vec();
            more.extend_from_slice(b"GET /e HTTP/1.1\r\n\r\n");
            assert_eq!(scan(&more).unwrap().unwrap().wire_len, body.len());
        }
    }

    #[test]
    fn the_same_body_split_anywhere_gives_the_same_answer() {
        let body = b"5;x=\"y\"\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\n";
        for cut in 0..body.len() {
            for second in cut..body.len() {
                let mut scanner = ChunkedScanner::new(LIMITS);
                assert!(matches!(scanner.scan(&body[..cut]), Ok(Parse::Partial)), "cut at {cut}");
                assert!(matches!(scanner.scan(&body[..second]), Ok(Parse::Partial)), "cut at {cut}, {second}");
                match scanner.scan(body) {
                    Ok(Parse::Complete(c)) => assert_eq!(c, ChunkedBody { wire_len: body.len(), body_len: 11 }),
                    _ => panic!("complete after cuts at {cut}, {second}"),
                }
            }
        }
    }

    #[test]
    fn refuses_what_a_front_end_could_read_differently() {
        let table: &[(&[u8], u16)] = &[
            // Size lines: bare LF, whitespace tricks, signs, prefixes, no digits.
            (b"5\nhello\r\n0\r\n\r\n", 400),
            (b"5 \r\nhello\r\n0\r\n\r\n", 400),
            (b" 5\r\nhello\r\n0\r\n\r\n", 400),
            (b"5\t\r\nhello\r\n0\r\n\r\n", 400),
            (b"5\x0c\r\nhello\r\n0\r\n\r\n", 400),
            (b"5\x0b\r\nhello\r\n0\r\n\r\n", 400),
            (b"+5\r\nhello\r\n0\r\n\r\n", 400),
            (b"-5\r\nhello\r\n0\r\n\r\n", 400),
            (b"0x5\r\nhello\r\n0\r\n\r\n", 400),
            (b"5_0\r\nhello\r\n0\r\n\r\n", 400),
            (b"\r\nhello\r\n0\r\n\r\n", 400),
            (b"5\r\r\nhello\r\n0\r\n\r\n", 400),
            (b"5\rX\nhello\r\n0\r\n\r\n", 400),
            // Extensions: a bare LF inside one smuggles a request past a front-end that splits at CRLF only.
            (b"5;a\nGET /e?smuggled=1 HTTP/1.1\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;=b\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;a=\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;a=\"open\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;a=b c\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;a\x00\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", 400),
            (b"5 x\r\nhello\r\n0\r\n\r\n", 400),
            // Data not followed by exactly CRLF.
            (b"5\r\nhelloXX0\r\n\r\n", 400),
            (b"5\r\nhello\n0\r\n\r\n", 400),
            (b"5\r\nhello\r0\r\n\r\n", 400),
            // Trailers: bare LF, obs-fold, no colon, bad name, control bytes; a bare LF ending the section.
            (b"0\r\n\nGET /e?swallowed=1 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"0\r\nT: v\n\r\n", 400),
            (b"0\r\nT: v\r\n folded\r\n\r\n", 400),
            (b"0\r\nno colon\r\n\r\n", 400),
            (b"0\r\nBad Name: v\r\n\r\n", 400),
            (b"0\r\n: v\r\n\r\n", 400),
            (b"0\r\nT: a\x00b\r\n\r\n", 400),
            (b"0\r\nT: a\rb\r\n\r\n", 400),
            // An escape in a quoted extension value must escape a visible byte, not a control one.
            (b"1;x=\"\\\x01\"\r\nx\r\n0\r\n\r\n", 400),
            // Limits: data, size digits, trailer lines and bytes.
            (b"65\r\n", 413),
            (b"ffffffffffffffffff\r\n", 413),
            (b"32\r\n01234567890123456789012345678901234567890123456789\r\n33\r\n", 413),
            (b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 431),
        ];
        for (body, status) in table {
            let err = scan(body).err().unwrap_or_else(|| panic!("accepted: {}", String::from_utf8_lossy(body)));
            assert_eq!(err.status().0, *status, "{}: {}", String::from_utf8_lossy(body), err.reason());
        }
        let long_trailer = [b"0\r\nT: ".as_slice(), &[b'v'; 300], b"\r\n\r\n"].concat();
        assert_eq!(scan(&long_trailer).unwrap_err().status().0, 431);
        assert_eq!(scan(&long_trailer[..250]).unwrap_err().status().0, 431, "also while incomplete");
    }

    #[test]
    fn limits_at_and_over_the_limit() {
        let data = [b'x'; 100];
        let exact = [b"64\r\n".as_slice(), &data, b"\r\n0\r\n\r\n"].concat();
        assert_eq!(scan(&exact).unwrap().unwrap().body_len, 100, "max_body is allowed");
        let over = [b"64\r\n".as_slice(), &data, b"\r\n1\r\n"].concat();
        assert_eq!(scan(&over).unwrap_err().status().0, 413, "one byte more is not");
        let four = b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        assert!(scan(four).unwrap().is_some(), "max_trailer_lines is allowed");

        let line = |len: usize| [b"1;".as_slice(), &vec![b'e'; len - 2 - 2], b"\r\n"].concat();
        let mut at_limit = line(MAX_SIZE_LINE + 1); // the line without its LF is MAX_SIZE_LINE bytes
        at_limit.extend_from_slice(b"x\r\n0\r\n\r\n");
        let limits = ChunkedLimits { max_body: 10, ..LIMITS };
        assert!(matches!(ChunkedScanner::new(limits).scan(&at_limit), Ok(Parse::Complete(_))));
        let over = line(MAX_SIZE_LINE + 2);
        assert_eq!(ChunkedScanner::new(limits).scan(&over).unwrap_err().status().0, 400);
        assert_eq!(ChunkedScanner::new(limits).scan(&over[..MAX_SIZE_LINE + 1]).unwrap_err().status().0, 400);

        // Framing: chunks of 1 byte with 1000-byte extensions stay under max_body; the wire budget ends them.
        let bloated = format!("1;{}\r\nx\r\n", "e".repeat(1000)).repeat(MAX_FRAMING_BYTES / 1000 + 2);
        let err = ChunkedScanner::new(LIMITS).scan(bloated.as_bytes()).unwrap_err();
        assert_eq!((err.status().0, err.reason()), (413, "chunked body too large on the wire"));
        let fits = format!("1;{}\r\nx\r\n", "e".repeat(1000)).repeat(MAX_FRAMING_BYTES / 1000 - 2);
        assert!(matches!(ChunkedScanner::new(LIMITS).scan(fits.as_bytes()), Ok(Parse::Partial)));
    }

    /// The limits as documented numbers, not as the constants (a changed constant must fail here), each at and
    /// one past its edge. Written after cargo-mutants found these edges untested.
    #[test]
    fn documented_limits_to_the_byte() {
        let limits = ChunkedLimits { max_body: 10, ..LIMITS };
        // A size line of 4096 bytes before its LF is allowed, also while its LF has not arrived yet.
        let line = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(4096 - 3));
        assert!(matches!(ChunkedScanner::new(limits).scan(line.as_bytes()), Ok(Parse::Complete(_))));
        assert!(matches!(ChunkedScanner::new(limits).scan(&line.as_bytes()[..4096]), Ok(Parse::Partial)));
        let long = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(4096 - 2));
        assert_eq!(ChunkedScanner::new(limits).scan(long.as_bytes()).unwrap_err().status().0, 400);
        // The wire budget, max_body + 64 KiB of framing, counted as every size line with its CR and LF plus each
        // data CRLF: 16 chunks of one byte with 4000-byte size lines (4003 each with the data's CRLF) and a last
        // size line of 1572 bytes with its LF take 16 + 64048 + 1572 = 100 + 65536 exactly.
        let body = |last: usize| {
            let chunks = format!("1;{}\r\nx\r\n", "e".repeat(3997)).repeat(16);
            format!("{chunks}0;{}\r\n\r\n", "e".repeat(last))
        };
        assert!(matches!(ChunkedScanner::new(LIMITS).scan(body(1568).as_bytes()), Ok(Parse::Complete(_))));
        let err = ChunkedScanner::new(LIMITS).scan(body(1569).as_bytes()).unwrap_err();
        assert_eq!((err.status().0, err.reason()), (413, "chunked body too large on the wire"));
        // An escape in a quoted extension value may escape a tab, a space, any visible byte or obs-text.
        assert!(scan(b"1;x=\"\\\t\\ \\\x80\\\"\"\r\nx\r\n0\r\n\r\n").unwrap().is_some());
        // Trailers: 200 bytes (LIMITS) counted from after the last-chunk line, each line with its CRLF.
        let trailer = |value: usize| format!("0\r\nT: {}\r\n\r\n", "v".repeat(value));
        assert!(scan(trailer(195).as_bytes()).unwrap().is_some(), "200 trailer bytes");
        assert_eq!(scan(trailer(196).as_bytes()).unwrap_err().status().0, 431, "201 trailer bytes");
        // ... and while a trailer line has not ended: 200 bytes so far wait, 201 are refused.
        let partial = |value: usize| format!("0\r\nT: {}", "v".repeat(value));
        assert!(scan(partial(197).as_bytes()).unwrap().is_none(), "200 bytes of an unfinished trailer line");
        assert_eq!(scan(partial(198).as_bytes()).unwrap_err().status().0, 431);
    }
}
