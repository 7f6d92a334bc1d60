//! Chunk compression, owned by one thread: an enum, not a trait object, with no lock. Compressed bytes collect
//! in an in-memory `Vec` that the owner drains (`output`) and writes where it wants; `flush` makes everything
//! written so far decodable (gzip `Z_SYNC_FLUSH`, zstd end of block) without ending the stream.

use std::io::{self, Write};

/// `COMPRESSION_TYPE`: the stream format of chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zstd,
    None,
}

impl Codec {
    /// File name / key extension.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => "ndjson.gz",
            Codec::Zstd => "ndjson.zst",
            Codec::None => "ndjson",
        }
    }

    pub fn from_file_name(name: &str) -> Option<Codec> {
        [Codec::Gzip, Codec::Zstd, Codec::None].into_iter().find(|c| name.ends_with(&format!(".{}", c.extension())))
    }

    /// HTTP Content-Encoding of a chunk of this codec.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Codec::Gzip => Some("gzip"),
            Codec::Zstd => Some("zstd"),
            Codec::None => None,
        }
    }
}

/// A codec and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    pub codec: Codec,
    pub level: u32,
}

pub enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    None(Vec<u8>),
}

impl Encoder {
    pub fn new(compression: Compression) -> io::Result<Encoder> {
        Ok(match compression.codec {
            Codec::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::with_capacity(64 * 1024),
                flate2::Compression::new(compression.level),
            )),
            Codec::Zstd => {
                let mut encoder =
                    zstd::stream::write::Encoder::new(Vec::with_capacity(64 * 1024), compression.level as i32)?;
                encoder.include_checksum(true)?;
                Encoder::Zstd(encoder)
            }
            Codec::None => Encoder::None(Vec::with_capacity(64 * 1024)),
        })
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
            Encoder::None(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Makes everything written so far decodable from `output` (plus what was drained before).
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::None(_) => Ok(()),
        }
    }

    /// Compressed bytes produced and not yet drained.
    pub fn output(&mut self) -> &mut Vec<u8> {
        match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
            Encoder::None(v) => v,
        }
    }

    pub fn output_len(&self) -> usize {
        match self {
            Encoder::Gzip(e) => e.get_ref().len(),
            Encoder::Zstd(e) => e.get_ref().len(),
            Encoder::None(v) => v.len(),
        }
    }

    /// Ends the stream; returns the bytes not yet drained, trailer included.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::None(v) => Ok(v),
        }
    }
}

/// Decodes a whole chunk stream into `out`. A stream cut short or corrupt gives an error, with everything
/// decoded before the fault left in `out` (crash repair relies on that).
pub fn decode(codec: Codec, compressed: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    use std::io::Read;
    match codec {
        Codec::None => {
            out.extend_from_slice(compressed);
            Ok(())
        }
        _ => decoder(codec, compressed)?.read_to_end(out).map(drop),
    }
}

/// A chunk stream's records as they are read from `compressed` (a file, an object's body), without holding the
/// chunk decoded in memory.
pub fn decoder<'a>(codec: Codec, compressed: impl io::Read + 'a) -> io::Result<Box<dyn io::Read + 'a>> {
    Ok(match codec {
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(compressed)),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(compressed)?),
        Codec::None => Box::new(compressed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_output_plus_finish_is_one_valid_stream() {
        for codec in [Codec::Gzip, Codec::Zstd, Codec::None] {
            let mut encoder = Encoder::new(Compression { codec, level: 1 }).unwrap();
            let mut stream = Vec::new();
            let mut want = Vec::new();
            for i in 0..100 {
                let line = format!("{{\"i\":{i}}}\n");
                encoder.write(line.as_bytes()).unwrap();
                want.extend_from_slice(line.as_bytes());
                if i % 10 == 0 {
                    encoder.flush().unwrap();
                    stream.append(encoder.output());
                    // What was drained so far decodes to every line written so far.
                    let mut partial = Vec::new();
                    let _ = decode(codec, &stream, &mut partial);
                    assert_eq!(partial, want, "{codec:?} after line {i}");
                }
            }
            stream.extend(encoder.finish().unwrap());
            let mut all = Vec::new();
            decode(codec, &stream, &mut all).expect("complete stream");
            assert_eq!(all, want, "{codec:?}");
        }
    }
}
