//! QPACK (RFC 9204) as plutos speaks it: with `SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0` a client's encoder
//! cannot insert into a dynamic table, so a field section is the static table's entries, literals and
//! Huffman-coded strings, and decoding never blocks a stream. A reference to the dynamic table (a Required
//! Insert Count other than 0, a dynamic or post-base index) is a decompression failure.
//!
//! Responses are encoded with the static table where an entry matches and literals (not Huffman-coded:
//! optional, and the answers are short) otherwise; plutos opens no encoder or decoder stream.

mod huffman;
mod table;

use std::ops::Range;

/// The section did not decode (QPACK_DECOMPRESSION_FAILED), or its size exceeds what plutos announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QpackError {
    DecompressionFailed(&'static str),
    /// Over `SETTINGS_MAX_FIELD_SECTION_SIZE` (names, values and 32 bytes per field, RFC 9114 §4.2.2).
    TooLarge,
}

/// A decoded field section: its names and values, in order, as ranges of one buffer.
#[derive(Debug, Default)]
pub struct Fields {
    bytes: Vec<u8>,
    fields: Vec<(Range<usize>, Range<usize>)>,
}

impl Fields {
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.iter().map(|(name, value)| (&self.bytes[name.clone()], &self.bytes[value.clone()]))
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.fields.clear();
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Appends a field (`name` as given).
    fn push(&mut self, name: Range<usize>, value: Range<usize>) {
        self.fields.push((name, value));
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }
}

/// Decodes the field section `block` (a HEADERS frame's payload) into `into`, refusing one whose size exceeds
/// `max_size`.
pub fn decode(block: &[u8], max_size: usize, into: &mut Fields) -> Result<(), QpackError> {
    into.clear();
    let mut input = Input { bytes: block, at: 0 };
    // The prefix: Required Insert Count (8-bit prefix), then the sign and Delta Base (7-bit prefix).
    if input.integer(8)? != 0 {
        return Err(QpackError::DecompressionFailed("a reference to the dynamic table"));
    }
    input.integer(7)?;
    let mut size = 0usize;
    while let Some(&first) = input.peek() {
        let (name, value) = if first & 0x80 != 0 {
            // Indexed field line: 1 T index(6).
            if first & 0x40 == 0 {
                return Err(QpackError::DecompressionFailed("a dynamic table index"));
            }
            let (name, value) = entry(input.integer(6)?)?;
            (into.append(name.as_bytes()), into.append(value.as_bytes()))
        } else if first & 0x40 != 0 {
            // Literal field line with name reference: 0 1 N T index(4), then the value.
            if first & 0x10 == 0 {
                return Err(QpackError::DecompressionFailed("a dynamic table name reference"));
            }
            let (name, _) = entry(input.integer(4)?)?;
            let name = into.append(name.as_bytes());
            (name, input.string(7, &mut into.bytes)?)
        } else if first & 0x20 != 0 {
            // Literal field line with literal name: 0 0 1 N H length(3), the name, then the value.
            let name = input.string(3, &mut into.bytes)?;
            (name, input.string(7, &mut into.bytes)?)
        } else {
            return Err(QpackError::DecompressionFailed("a post-base reference to the dynamic table"));
        };
        size += name.len() + value.len() + 32;
        if size > max_size {
            return Err(QpackError::TooLarge);
        }
        into.push(name, value);
    }
    Ok(())
}

fn entry(index: u64) -> Result<(&'static str, &'static str), QpackError> {
    table::STATIC.get(index as usize).copied().ok_or(QpackError::DecompressionFailed("no such static table entry"))
}

/// The bytes of a field section being decoded.
struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn peek(&self) -> Option<&u8> {
        self.bytes.get(self.at)
    }

    fn next(&mut self) -> Result<u8, QpackError> {
        let b = *self.bytes.get(self.at).ok_or(QpackError::DecompressionFailed("the section ends early"))?;
        self.at += 1;
        Ok(b)
    }

    /// An integer with an `n`-bit prefix (RFC 7541 §5.1), the bits above the prefix in the first byte ignored.
    fn integer(&mut self, n: u32) -> Result<u64, QpackError> {
        let mask = ((1u16 << n) - 1) as u8;
        let mut value = u64::from(self.next()? & mask);
        if value < u64::from(mask) {
            return Ok(value);
        }
        let mut shift = 0;
        loop {
            let b = self.next()?;
            if shift > 56 {
                return Err(QpackError::DecompressionFailed("an integer too large"));
            }
            value += u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
    }

    /// A string literal whose length has an `n`-bit prefix, preceded by its Huffman flag; appended to `out`.
    fn string(&mut self, n: u32, out: &mut Vec<u8>) -> Result<Range<usize>, QpackError> {
        let huffman = self.peek().is_some_and(|b| b & (1 << n) != 0);
        let len = self.integer(n)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.at.checked_add(len))
            .filter(|&end| end <= self.bytes.len())
            .ok_or(QpackError::DecompressionFailed("a string longer than the section"))?;
        let raw = &self.bytes[self.at..end];
        self.at = end;
        let start = out.len();
        match huffman {
            true => huffman::decode(raw, out).map_err(|_| QpackError::DecompressionFailed("invalid Huffman code"))?,
            false => out.extend_from_slice(raw),
        }
        Ok(start..out.len())
    }
}

/// Appends the field section of a response: `:status`, then `fields` (names in lowercase).
pub fn encode<'f>(status: u16, fields: impl Iterator<Item = (&'f [u8], &'f [u8])>, out: &mut Vec<u8>) {
    // Required Insert Count 0, Delta Base 0.
    out.extend_from_slice(&[0, 0]);
    let status = if (100..=999).contains(&status) { status } else { 500 };
    let digits = [b'0' + (status / 100) as u8, b'0' + (status / 10 % 10) as u8, b'0' + (status % 10) as u8];
    field(b":status", &digits, out);
    for (name, value) in fields {
        field(name, value, out);
    }
}

fn field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    match table::find(name, value) {
        // Indexed field line, static: 1 1 index(6).
        Some((index, true)) => integer(index as u64, 6, 0xc0, out),
        // Literal field line with a static name reference: 0 1 N=0 T=1 index(4).
        Some((index, false)) => {
            integer(index as u64, 4, 0x50, out);
            integer(value.len() as u64, 7, 0, out);
            out.extend_from_slice(value);
        }
        // Literal field line with literal name: 0 0 1 N=0 H=0 length(3).
        None => {
            integer(name.len() as u64, 3, 0x20, out);
            out.extend_from_slice(name);
            integer(value.len() as u64, 7, 0, out);
            out.extend_from_slice(value);
        }
    }
}

/// An integer with an `n`-bit prefix, the bits above it in the first byte set to `high`.
fn integer(mut value: u64, n: u32, high: u8, out: &mut Vec<u8>) {
    let mask = (1u64 << n) - 1;
    if value < mask {
        out.push(high | value as u8);
        return;
    }
    out.push(high | mask as u8);
    value -= mask;
    while value >= 0x80 {
        out.push(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(block: &[u8]) -> Result<Vec<(String, String)>, QpackError> {
        let mut fields = Fields::default();
        decode(block, 16 * 1024, &mut fields)?;
        Ok(fields
            .iter()
            .map(|(n, v)| (String::from_utf8(n.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap()))
            .collect())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_request_of_static_entries_literals_and_huffman_decodes() {
        // RFC 9204 Appendix B.1's section (":path" = "/index.html" with a static name reference), then GET
        // (indexed, 17), then a literal name with a Huffman-coded value ("no-cache", RFC 7541 C.4.2).
        let mut block = vec![0x00, 0x00, 0x51, 0x0b];
        block.extend_from_slice(b"/index.html");
        block.push(0xc0 | 17);
        block.extend_from_slice(&[0x23, b'a', b'b', b'c', 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]);
        assert_eq!(
            decoded(&block).unwrap(),
            pairs(&[(":path", "/index.html"), (":method", "GET"), ("abc", "no-cache")])
        );
    }

    #[test]
    fn the_dynamic_table_is_refused() {
        let refused = QpackError::DecompressionFailed;
        assert_eq!(decoded(&[0x02, 0x00, 0x80]), Err(refused("a reference to the dynamic table")));
        assert_eq!(decoded(&[0x00, 0x00, 0x80]), Err(refused("a dynamic table index")));
        assert_eq!(decoded(&[0x00, 0x00, 0x40, 0x00]), Err(refused("a dynamic table name reference")));
        assert_eq!(decoded(&[0x00, 0x00, 0x10]), Err(refused("a post-base reference to the dynamic table")));
        assert_eq!(decoded(&[0x00, 0x00, 0xc0 | 63, 99]), Err(refused("no such static table entry")));
    }

    #[test]
    fn truncated_and_oversized_sections_are_refused() {
        assert!(decoded(&[0x00]).is_err());
        assert!(decoded(&[0x00, 0x00, 0x51, 0x0b, b'/']).is_err(), "a value cut short");
        assert!(
            decoded(&[0x00, 0x00, 0x51, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err()
        );
        let mut block = vec![0x00, 0x00];
        for _ in 0..200 {
            block.extend_from_slice(&[0x5f, 0x50, 0x7f, 0x00]); // user-agent, 127 bytes
            block.extend_from_slice(&[b'x'; 127]);
        }
        let mut fields = Fields::default();
        assert_eq!(decode(&block, 16 * 1024, &mut fields), Err(QpackError::TooLarge));
    }

    #[test]
    fn a_response_encodes_with_the_static_table_and_decodes_back() {
        let fields: [(&[u8], &[u8]); 4] = [
            (b"content-type", b"application/json"),
            (b"content-length", b"2"),
            (b"access-control-allow-origin", b"https://a.example"),
            (b"x-plutos", b"ok"),
        ];
        let mut block = Vec::new();
        encode(200, fields.iter().copied(), &mut block);
        assert_eq!(&block[..4], &[0, 0, 0xc0 | 25, 0xc0 | 46], ":status 200 and the JSON type are indexed");
        let expected = pairs(&[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-length", "2"),
            ("access-control-allow-origin", "https://a.example"),
            ("x-plutos", "ok"),
        ]);
        assert_eq!(decoded(&block).unwrap(), expected);
        let mut other = Vec::new();
        encode(413, std::iter::empty(), &mut other);
        assert_eq!(decoded(&other).unwrap(), pairs(&[(":status", "413")]));
    }
}
