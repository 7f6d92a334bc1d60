//! The Huffman code of HPACK, which QPACK uses unchanged (RFC 7541 Appendix B; RFC 9204 §4.1.2). The code is
//! canonical — within a length, codes run in the order of their symbols, and each length starts where the
//! shorter one ended, shifted — so the symbols of each length are all it takes to know every code.
//!
//! Decoding compares the next 32 bits, left-aligned, against the first code of each length above it: the
//! shortest length whose limit lies above them is the symbol's. Text is mostly 5–7-bit symbols, so a symbol
//! costs a few comparisons; no table is built.

/// The symbols of each code length, in code order (RFC 7541 Appendix B). 256 is EOS.
const SYMBOLS: [(u32, &[u16]); 20] = [
    (5, &[48, 49, 50, 97, 99, 101, 105, 111, 115, 116]),
    (
        6,
        &[
            32, 37, 45, 46, 47, 51, 52, 53, 54, 55, 56, 57, 61, 65, 95, 98, 100, 102, 103, 104, 108, 109, 110, 112,
            114, 117,
        ],
    ),
    (
        7,
        &[
            58, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 89, 106, 107,
            113, 118, 119, 120, 121, 122,
        ],
    ),
    (8, &[38, 42, 44, 59, 88, 90]),
    (10, &[33, 34, 40, 41, 63]),
    (11, &[39, 43, 124]),
    (12, &[35, 62]),
    (13, &[0, 36, 64, 91, 93, 126]),
    (14, &[94, 125]),
    (15, &[60, 96, 123]),
    (19, &[92, 195, 208]),
    (20, &[128, 130, 131, 162, 184, 194, 224, 226]),
    (21, &[153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230]),
    (
        22,
        &[
            129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187, 189, 190,
            196, 198, 228, 232, 233,
        ],
    ),
    (
        23,
        &[
            1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174, 175, 180,
            182, 183, 188, 191, 197, 231, 239,
        ],
    ),
    (24, &[9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237]),
    (25, &[199, 207, 234, 235]),
    (26, &[192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255]),
    (27, &[203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254]),
    (
        28,
        &[
            2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127, 220,
            249,
        ],
    ),
];
/// The last length, 30 bits: LF, CR, 22 and EOS.
const LONGEST: (u32, &[u16]) = (30, &[10, 13, 22, 256]);

/// One code length: its first code and, left-aligned in 32 bits, the first code after its last.
struct Length {
    bits: u32,
    first: u32,
    limit: u64,
    symbols: &'static [u16],
}

/// The lengths with their first codes, computed at compile time from `SYMBOLS`.
const LENGTHS: [Length; 21] = {
    let mut lengths = [const { Length { bits: 0, first: 0, limit: 0, symbols: &[] } }; 21];
    let mut code: u32 = 0;
    let mut previous = 5;
    let mut i = 0;
    while i < 21 {
        let (bits, symbols) = if i < 20 { SYMBOLS[i] } else { LONGEST };
        code <<= bits - previous;
        previous = bits;
        let end = code + symbols.len() as u32;
        lengths[i] = Length { bits, first: code, limit: (end as u64) << (32 - bits), symbols };
        code = end;
        i += 1;
    }
    lengths
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHuffman;

/// Appends the decoding of `encoded` to `out`. Refused: a code for EOS, padding longer than 7 bits or not all
/// ones (RFC 7541 §5.2).
pub fn decode(encoded: &[u8], out: &mut Vec<u8>) -> Result<(), InvalidHuffman> {
    // Bits not yet decoded, left-aligned in a 64-bit window; `held` of them are valid.
    let mut window: u64 = 0;
    let mut held: u32 = 0;
    let mut bytes = encoded.iter();
    loop {
        while held <= 56 {
            match bytes.next() {
                Some(&b) => {
                    window |= u64::from(b) << (56 - held);
                    held += 8;
                }
                None => break,
            }
        }
        if held == 0 {
            return Ok(());
        }
        let top = window >> 32;
        let Some(length) = LENGTHS.iter().find(|l| top < l.limit) else {
            return Err(InvalidHuffman);
        };
        if length.bits > held {
            // What is left is shorter than the code it starts: padding, which must be a prefix of EOS (all
            // ones) and shorter than a byte.
            let padding = (1u64 << held) - 1;
            return match held < 8 && top >> (32 - held) == padding {
                true => Ok(()),
                false => Err(InvalidHuffman),
            };
        }
        let code = (top >> (32 - length.bits)) as u32;
        let symbol = length.symbols[(code - length.first) as usize];
        if symbol == 256 {
            return Err(InvalidHuffman);
        }
        out.push(symbol as u8);
        window <<= length.bits;
        held -= length.bits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(hex: &str) -> Result<String, InvalidHuffman> {
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let mut out = Vec::new();
        decode(&bytes, &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_examples_of_rfc_7541_decode() {
        // Appendix C.4 and C.6.
        assert_eq!(decoded("f1e3c2e5f23a6ba0ab90f4ff").unwrap(), "www.example.com");
        assert_eq!(decoded("a8eb10649cbf").unwrap(), "no-cache");
        assert_eq!(decoded("25a849e95ba97d7f").unwrap(), "custom-key");
        assert_eq!(decoded("25a849e95bb8e8b4bf").unwrap(), "custom-value");
        assert_eq!(decoded("6402").unwrap(), "302");
        assert_eq!(decoded("aec3771a4b").unwrap(), "private");
        assert_eq!(decoded("d07abe941054d444a8200595040b8166e082a62d1bff").unwrap(), "Mon, 21 Oct 2013 20:13:21 GMT");
        assert_eq!(decoded("9d29ad171863c78f0b97c8e9ae82ae43d3").unwrap(), "https://www.example.com");
        assert_eq!(decoded("").unwrap(), "");
    }

    #[test]
    fn every_code_length_is_a_canonical_run() {
        assert_eq!(LENGTHS.iter().map(|l| l.symbols.len()).sum::<usize>(), 257);
        let kraft: f64 = LENGTHS.iter().map(|l| l.symbols.len() as f64 / 2f64.powi(l.bits as i32)).sum();
        assert_eq!(kraft, 1.0, "a complete prefix code");
        assert_eq!(LENGTHS[20].first + 3, (1 << 30) - 1, "EOS is thirty ones");
    }

    #[test]
    fn padding_must_be_short_ones_and_eos_is_refused() {
        // '0' is 00000 (5 bits); 00000111 pads with three ones.
        assert_eq!(decoded("07").unwrap(), "0");
        assert_eq!(decoded("06"), Err(InvalidHuffman), "padding not all ones");
        assert_eq!(decoded("ff"), Err(InvalidHuffman), "eight bits of padding");
        assert_eq!(decoded("fffffffc"), Err(InvalidHuffman), "EOS itself");
    }
}
