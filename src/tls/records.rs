//! Where a connection's TLS input stands between records. rustls yields plaintext only for whole records, so a
//! client that sends a record a byte at a time shows the request layer nothing; this follows the record
//! layer's framing (a 5-byte header: type, version, 16-bit length) so the worker can time an incomplete record
//! like an incomplete request head.

/// The TLS record framing of one direction of a connection, fed every byte the peer sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordFraming {
    /// Header bytes of the next record seen so far (0 between records).
    header: [u8; 5],
    header_len: u8,
    /// Bytes of the current record's body still to come.
    body_left: usize,
}

impl RecordFraming {
    /// Follows `bytes`, the next ciphertext the peer sent.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let have = usize::from(self.header_len);
            let n = (5 - have).min(bytes.len());
            self.header[have..have + n].copy_from_slice(&bytes[..n]);
            self.header_len += n as u8;
            bytes = &bytes[n..];
            if self.header_len == 5 {
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header_len = 0;
            }
        }
    }

    /// The peer stopped inside a record: part of a header or of a body is still to come.
    pub fn mid_record(&self) -> bool {
        self.header_len > 0 || self.body_left > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two records: application data of 3 bytes, then an empty one.
    const TWO: &[u8] = &[23, 3, 3, 0, 3, b'a', b'b', b'c', 23, 3, 3, 0, 0];

    #[test]
    fn whole_records_leave_it_between_records_however_they_are_split() {
        for split in 0..=TWO.len() {
            let mut framing = RecordFraming::default();
            framing.feed(&TWO[..split]);
            let inside = !matches!(split, 0 | 8 | 13);
            assert_eq!(framing.mid_record(), inside, "after {split} bytes");
            framing.feed(&TWO[split..]);
            assert!(!framing.mid_record(), "after all, split at {split}");
        }
    }

    #[test]
    fn a_record_fed_a_byte_at_a_time_is_incomplete_until_its_last_byte() {
        let mut framing = RecordFraming::default();
        for (i, byte) in TWO[..8].iter().enumerate() {
            framing.feed(std::slice::from_ref(byte));
            assert_eq!(framing.mid_record(), i < 7, "byte {i}");
        }
    }
}
