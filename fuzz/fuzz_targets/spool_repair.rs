//! (e) Spool repair of cut streams: records are compressed as the chunk writer does (one flush per group
//! commit), the stream is cut at any byte, and what repair keeps (`recoverable_lines`, the core of
//! `repair_open_file`, without its file I/O) must be every record of every commit that was whole before the cut
//! (they were acknowledged), as whole lines, in order, and nothing that was not written.

#![no_main]

use libfuzzer_sys::fuzz_target;
use plutos::spool::encoder::Encoder;
use plutos::spool::recoverable_lines;
use plutos::spool::{Codec, Compression};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let codec = [Codec::Gzip, Codec::Zstd, Codec::None][usize::from(data[0] % 3)];
    let cut_at = u16::from_le_bytes([data[1], data[2]]);
    // Each byte of the rest is a record; a 0 byte ends a group commit.
    let mut encoder = Encoder::new(Compression { codec, level: 1 }).unwrap();
    let mut stream = Vec::new();
    let mut commits: Vec<(usize, usize)> = Vec::new(); // (stream length after the commit, records so far)
    let mut lines = Vec::new();
    for (i, &b) in data[3..].iter().enumerate() {
        let line = format!("{{\"i\":{i},\"b\":{b}}}\n");
        encoder.write(line.as_bytes()).unwrap();
        lines.push(line);
        if b == 0 {
            encoder.flush().unwrap();
            stream.append(encoder.output());
            commits.push((stream.len(), lines.len()));
        }
    }
    encoder.flush().unwrap();
    stream.append(encoder.output());
    commits.push((stream.len(), lines.len()));
    let cut = usize::from(cut_at) % (stream.len() + 1);
    let durable = commits.iter().filter(|(len, _)| *len <= cut).map(|(_, n)| *n).max().unwrap_or(0);

    let (text, keep, events) = recoverable_lines(codec, &stream[..cut]);
    let kept = String::from_utf8(text[..keep].to_vec()).expect("records are UTF-8");
    assert_eq!(events as usize, kept.lines().count());
    assert!(lines.concat().starts_with(&kept), "kept records are a prefix of what was written");
    assert!(events as usize >= durable, "{events} of {durable} durable records kept");
});
