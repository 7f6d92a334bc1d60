//! HTTP/3 framing (RFC 9114 §7): QUIC variable-length integers, frame headers, and the frames plutos
//! writes (SETTINGS, HEADERS, DATA, GOAWAY).

/// Frame types (RFC 9114 §7.2).
pub const DATA: u64 = 0x00;
pub const HEADERS: u64 = 0x01;
pub const CANCEL_PUSH: u64 = 0x03;
pub const SETTINGS: u64 = 0x04;
pub const PUSH_PROMISE: u64 = 0x05;
pub const GOAWAY: u64 = 0x07;
pub const MAX_PUSH_ID: u64 = 0x0d;

/// Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2).
pub const CONTROL_STREAM: u64 = 0x00;
pub const PUSH_STREAM: u64 = 0x01;
pub const ENCODER_STREAM: u64 = 0x02;
pub const DECODER_STREAM: u64 = 0x03;

/// Settings (RFC 9114 §7.2.4.1, RFC 9204 §5).
pub const QPACK_MAX_TABLE_CAPACITY: u64 = 0x01;
pub const MAX_FIELD_SECTION_SIZE: u64 = 0x06;
pub const QPACK_BLOCKED_STREAMS: u64 = 0x07;

/// Error codes (RFC 9114 §8.1, RFC 9204 §6).
pub const H3_NO_ERROR: u64 = 0x100;
pub const H3_GENERAL_PROTOCOL_ERROR: u64 = 0x101;
pub const H3_INTERNAL_ERROR: u64 = 0x102;
pub const H3_STREAM_CREATION_ERROR: u64 = 0x103;
pub const H3_CLOSED_CRITICAL_STREAM: u64 = 0x104;
pub const H3_FRAME_UNEXPECTED: u64 = 0x105;
pub const H3_FRAME_ERROR: u64 = 0x106;
pub const H3_EXCESSIVE_LOAD: u64 = 0x107;
pub const H3_ID_ERROR: u64 = 0x108;
pub const H3_SETTINGS_ERROR: u64 = 0x109;
pub const H3_MISSING_SETTINGS: u64 = 0x10a;
pub const H3_REQUEST_REJECTED: u64 = 0x10b;
pub const H3_REQUEST_CANCELLED: u64 = 0x10c;
pub const H3_REQUEST_INCOMPLETE: u64 = 0x10d;
pub const H3_MESSAGE_ERROR: u64 = 0x10e;
pub const QPACK_DECOMPRESSION_FAILED: u64 = 0x200;

/// A QUIC variable-length integer at the start of `bytes` (RFC 9000 §16): its value and length, or `None`
/// when `bytes` ends first.
pub fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let len = 1usize << (first >> 6);
    let raw = bytes.get(..len)?;
    let mut value = u64::from(first & 0x3f);
    for &b in &raw[1..] {
        value = (value << 8) | u64::from(b);
    }
    Some((value, len))
}

/// Appends `value` (below 2^62) as a variable-length integer, in the fewest bytes.
pub fn put_varint(value: u64, out: &mut Vec<u8>) {
    match value {
        0..=0x3f => out.push(value as u8),
        0x40..=0x3fff => out.extend_from_slice(&(value as u16 | 0x4000).to_be_bytes()),
        0x4000..=0x3fff_ffff => out.extend_from_slice(&(value as u32 | 0x8000_0000).to_be_bytes()),
        _ => out.extend_from_slice(&(value | 0xc000_0000_0000_0000).to_be_bytes()),
    }
}

/// A frame's header: its type, the length of its payload, and the header's own length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u64,
    pub len: u64,
    pub header_len: usize,
}

/// The frame header at the start of `bytes`, or `None` when it is not all there yet.
pub fn header(bytes: &[u8]) -> Option<Header> {
    let (kind, a) = varint(bytes)?;
    let (len, b) = varint(&bytes[a..])?;
    Some(Header { kind, len, header_len: a + b })
}

/// Whether a frame type is one HTTP/2 has and HTTP/3 forbids (RFC 9114 §7.2.8): a connection error.
pub fn is_http2_only(kind: u64) -> bool {
    matches!(kind, 0x02 | 0x06 | 0x08 | 0x09)
}

/// Appends a frame's header.
pub fn put_header(kind: u64, len: usize, out: &mut Vec<u8>) {
    put_varint(kind, out);
    put_varint(len as u64, out);
}

/// The start of plutos's control stream: its type, then SETTINGS — no dynamic table, no blocked streams, and
/// the largest field section it takes.
pub fn control_stream_start(max_field_section: u64, out: &mut Vec<u8>) {
    put_varint(CONTROL_STREAM, out);
    let mut settings = Vec::with_capacity(16);
    for (id, value) in
        [(QPACK_MAX_TABLE_CAPACITY, 0), (QPACK_BLOCKED_STREAMS, 0), (MAX_FIELD_SECTION_SIZE, max_field_section)]
    {
        put_varint(id, &mut settings);
        put_varint(value, &mut settings);
    }
    put_header(SETTINGS, settings.len(), out);
    out.extend_from_slice(&settings);
}

/// Checks a peer's SETTINGS payload (RFC 9114 §7.2.4): each identifier once, none of HTTP/2's. The values
/// plutos could use do not matter to it: it never uses the peer's dynamic table, and its field sections are
/// small.
pub fn check_settings(payload: &[u8]) -> Result<(), u64> {
    let mut seen: Vec<u64> = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let (id, a) = varint(&payload[at..]).ok_or(H3_FRAME_ERROR)?;
        let (_, b) = varint(&payload[at + a..]).ok_or(H3_FRAME_ERROR)?;
        at += a + b;
        if matches!(id, 0x02..=0x05) || seen.contains(&id) {
            return Err(H3_SETTINGS_ERROR);
        }
        if seen.len() < 64 {
            seen.push(id);
        }
    }
    Ok(())
}

/// A GOAWAY frame naming the first request stream that will not be served.
pub fn goaway(stream: u64, out: &mut Vec<u8>) {
    let mut id = Vec::with_capacity(8);
    put_varint(stream, &mut id);
    put_header(GOAWAY, id.len(), out);
    out.extend_from_slice(&id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length_and_wait_for_their_last_byte() {
        for value in
            [0, 37, 63, 64, 15_293, 16_383, 16_384, 494_878_333, (1 << 30) - 1, 1 << 30, 151_288_809_941_952_652]
        {
            let mut out = Vec::new();
            put_varint(value, &mut out);
            assert_eq!(varint(&out), Some((value, out.len())));
            assert_eq!(varint(&out[..out.len() - 1]), None);
        }
        // RFC 9000 Appendix A.1's examples.
        assert_eq!(varint(&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]), Some((151_288_809_941_952_652, 8)));
        assert_eq!(varint(&[0x9d, 0x7f, 0x3e, 0x7d]), Some((494_878_333, 4)));
        assert_eq!(varint(&[0x7b, 0xbd]), Some((15_293, 2)));
        assert_eq!(varint(&[0x40, 0x25]), Some((37, 2)), "not the shortest form, still valid");
    }

    #[test]
    fn settings_with_a_duplicate_or_an_http2_identifier_are_refused() {
        let mut control = Vec::new();
        control_stream_start(16_384, &mut control);
        let settings = header(&control[1..]).unwrap();
        assert_eq!(settings.kind, SETTINGS);
        let payload = &control[1 + settings.header_len..];
        assert_eq!(payload.len() as u64, settings.len);
        assert_eq!(check_settings(payload), Ok(()));
        assert_eq!(check_settings(&[0x06, 0x01, 0x06, 0x02]), Err(H3_SETTINGS_ERROR));
        assert_eq!(check_settings(&[0x04, 0x01]), Err(H3_SETTINGS_ERROR));
        assert_eq!(check_settings(&[0x06]), Err(H3_FRAME_ERROR));
        assert_eq!(check_settings(&[0x21, 0x00]), Ok(()), "a reserved identifier is ignored");
    }
}
