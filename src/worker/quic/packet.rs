//! What plutos reads of a QUIC datagram before quinn-proto does: whether it carries a 0-RTT packet (refused
//! unread). Only the long headers' invariant fields and lengths (RFC 9000 §17.2) are walked; nothing is
//! decrypted.

/// Whether a datagram holds a 0-RTT packet: its long-header packets are walked (an Initial and a 0-RTT one are
/// usually coalesced).
pub(super) fn is_zero_rtt(datagram: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&first) = datagram.get(at) {
        // A short header ends the long ones; version 0 is version negotiation.
        if first & 0x80 == 0 || datagram.get(at + 1..at + 5).is_none_or(|v| v == [0, 0, 0, 0]) {
            return false;
        }
        let kind = (first >> 4) & 0x03;
        if kind == 1 {
            return true;
        }
        at += 5;
        for _ in 0..2 {
            // The destination, then the source connection id.
            let Some(&len) = datagram.get(at) else { return false };
            at += 1 + usize::from(len);
        }
        if kind == 0 {
            let Some(token) = varint_at(datagram, &mut at) else { return false };
            at += token;
        }
        let Some(length) = varint_at(datagram, &mut at) else { return false };
        at += length;
    }
    false
}

/// The variable-length integer at `at`, which moves past it.
fn varint_at(datagram: &[u8], at: &mut usize) -> Option<usize> {
    let (value, len) = datagram.get(*at..).and_then(crate::h3::frame::varint)?;
    *at += len;
    usize::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::is_zero_rtt;

    /// A long-header packet of `kind` (0 Initial, 1 0-RTT, 2 Handshake), version 1, an 8-byte destination id,
    /// no source id, a token length (Initial only) and `payload` bytes.
    fn long(kind: u8, payload: usize) -> Vec<u8> {
        let mut packet = vec![0xc0 | (kind << 4), 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0];
        if kind == 0 {
            packet.push(0);
        }
        // A two-byte varint length (0b01 prefix).
        packet.extend([0x40 | (payload >> 8) as u8, payload as u8]);
        packet.resize(packet.len() + payload, 0xaa);
        packet
    }

    #[test]
    fn a_zero_rtt_packet_is_found_alone_or_after_an_initial() {
        assert!(is_zero_rtt(&long(1, 100)));
        assert!(is_zero_rtt(&[long(0, 300), long(1, 100)].concat()));
        assert!(is_zero_rtt(&[long(0, 300), long(2, 40), long(1, 100)].concat()));
    }

    #[test]
    fn other_packets_and_broken_headers_are_not() {
        assert!(!is_zero_rtt(&long(0, 300)));
        assert!(!is_zero_rtt(&[long(0, 300), long(2, 40)].concat()));
        // A short header (1-RTT), then anything: what follows is its payload.
        assert!(!is_zero_rtt(&[&[0x40u8, 9, 9][..], &long(1, 10)].concat()));
        // Version negotiation (version 0) looks like a long header of any kind.
        let mut negotiation = long(1, 10);
        negotiation[1..5].copy_from_slice(&[0, 0, 0, 0]);
        assert!(!is_zero_rtt(&negotiation));
        // Cut inside the first header's lengths: no packet to walk to.
        assert!(!is_zero_rtt(&long(0, 300)[..15]));
        assert!(!is_zero_rtt(&[]));
        // An Initial whose length runs past the datagram's end hides nothing behind it.
        assert!(!is_zero_rtt(&[long(0, 300), long(1, 10)].concat()[..200]));
    }
}
