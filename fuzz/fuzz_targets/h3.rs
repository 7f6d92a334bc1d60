//! (h) HTTP/3's own layer (`plutos::h3`), what a QUIC client's request streams and control stream carry: any bytes
//! as a QPACK field section, a frame header, a SETTINGS payload — nothing panics, a section that decodes stays
//! within the size it was allowed (names, values and 32 bytes a field) — and any status and fields plutos
//! encodes decode back to themselves.

#![no_main]

use libfuzzer_sys::fuzz_target;
use plutos::h3::{frame, qpack};

const MAX: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut fields = qpack::Fields::default();
    if qpack::decode(data, MAX, &mut fields).is_ok() {
        let size: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert!(size <= MAX, "a section of {size} bytes passed the limit");
    }
    if let Some(header) = frame::header(data) {
        assert!(header.header_len <= 16 && header.header_len <= data.len());
    }
    let _ = frame::check_settings(data);

    // The input as a response: its first two bytes a status, then fields split at NUL bytes (name, value, ...).
    let Some((status, rest)) = data.split_first_chunk::<2>() else { return };
    let status = 100 + u16::from_be_bytes(*status) % 900;
    let parts: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    let pairs: Vec<(&[u8], &[u8])> = parts.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let mut block = Vec::new();
    qpack::encode(status, pairs.iter().copied(), &mut block);
    let mut decoded = qpack::Fields::default();
    qpack::decode(&block, usize::MAX, &mut decoded).expect("plutos's own section decodes");
    let mut expected = vec![(&b":status"[..], status.to_string().into_bytes())];
    expected.extend(pairs.iter().map(|(n, v)| (*n, v.to_vec())));
    let got: Vec<(&[u8], Vec<u8>)> = decoded.iter().map(|(n, v)| (n, v.to_vec())).collect();
    assert_eq!(got, expected);
});
