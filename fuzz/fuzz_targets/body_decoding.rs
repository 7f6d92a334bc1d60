//! (d) Content-Encoding decoding (gzip, deflate in both wrappings, zstd) under the decompressed-size cap: any
//! bytes give an error or at most the cap, never a panic or an unbounded output.

#![no_main]

use libfuzzer_sys::fuzz_target;
use plutos::event::body::decode_content;

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    let encoding: &[u8] = match which % 4 {
        0 => b"gzip",
        1 => b"deflate",
        2 => b"zstd",
        _ => b"x-gzip",
    };
    let mut scratch = Vec::new();
    if let Ok(decoded) = decode_content(Some(encoding), body, MAX, &mut scratch) {
        assert!(decoded.len() <= MAX, "{} bytes over the cap", decoded.len());
    }
});
