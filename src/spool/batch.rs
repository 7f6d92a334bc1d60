//! The batch: the lines a worker accepted in one event-loop iteration, one buffer per stream (records of good
//! events, bad rows), which the group commit writes to the spool — one `write(2)` per stream that has lines —
//! before any of their answers leaves.
//!
//! A request appends its lines after taking a `Mark` (of both streams); if any of them fails, `rollback` cuts
//! the batch back to the mark, so a request is stored whole or not at all.

use crate::spool::Stream;

/// Where a request's lines begin in each stream of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    len: [usize; 2],
    events: [u64; 2],
}

#[derive(Debug, Default)]
pub struct Batch {
    lines: [Vec<u8>; 2],
    events: [u64; 2],
}

impl Batch {
    pub fn with_capacity(bytes: usize) -> Batch {
        // Bad rows are the exception: their buffer grows when one comes.
        Batch { lines: [Vec::with_capacity(bytes), Vec::new()], events: [0; 2] }
    }

    pub fn mark(&self) -> Mark {
        Mark { len: self.lines.each_ref().map(Vec::len), events: self.events }
    }

    /// Forgets everything appended since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        for (lines, len) in self.lines.iter_mut().zip(mark.len) {
            lines.truncate(len);
        }
        self.events = mark.events;
    }

    /// The buffer good records are appended to; `add_events` counts them.
    pub fn lines_mut(&mut self) -> &mut Vec<u8> {
        &mut self.lines[Stream::Good as usize]
    }

    /// Both buffers: (good records, bad rows).
    pub fn streams_mut(&mut self) -> (&mut Vec<u8>, &mut Vec<u8>) {
        let [good, bad] = &mut self.lines;
        (good, bad)
    }

    pub fn add_events(&mut self, stream: Stream, events: u64) {
        self.events[stream as usize] += events;
    }

    pub fn lines(&self, stream: Stream) -> &[u8] {
        &self.lines[stream as usize]
    }

    /// The length of the longest line of either stream appended since `mark` (without its newline).
    pub fn longest_line_since(&self, mark: Mark) -> usize {
        let mut longest = 0;
        for (lines, from) in self.lines.iter().zip(mark.len) {
            let mut start = from;
            for end in memchr::memchr_iter(b'\n', &lines[from..]) {
                longest = longest.max(from + end - start);
                start = from + end + 1;
            }
            longest = longest.max(lines.len() - start);
        }
        longest
    }

    pub fn events(&self, stream: Stream) -> u64 {
        self.events[stream as usize]
    }

    /// Lines of both streams.
    pub fn total_events(&self) -> u64 {
        self.events[0] + self.events[1]
    }

    /// Empties the batch after the group commit (keeping its buffers).
    pub fn clear(&mut self) {
        for lines in &mut self.lines {
            lines.clear();
        }
        self.events = [0; 2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_returns_both_streams_to_the_mark() {
        let mut batch = Batch::with_capacity(64);
        batch.lines_mut().extend_from_slice(b"{\"a\":1}\n");
        batch.add_events(Stream::Good, 1);
        let mark = batch.mark();
        batch.lines_mut().extend_from_slice(b"{\"b\":2}\n{\"ccc\":3}\n");
        batch.add_events(Stream::Good, 2);
        assert_eq!(batch.longest_line_since(mark), 9, "the lines after the mark only");
        batch.streams_mut().1.extend_from_slice(b"{\"bad\":\"row.......\"}\n");
        batch.add_events(Stream::Bad, 1);
        assert_eq!(batch.longest_line_since(mark), 20, "the bad stream's lines count too");
        assert_eq!((batch.events(Stream::Good), batch.events(Stream::Bad), batch.total_events()), (3, 1, 4));
        batch.rollback(mark);
        assert_eq!(batch.longest_line_since(mark), 0);
        assert_eq!((batch.lines(Stream::Good), batch.events(Stream::Good)), (&b"{\"a\":1}\n"[..], 1));
        assert_eq!((batch.lines(Stream::Bad), batch.events(Stream::Bad)), (&b""[..], 0));
        batch.clear();
        assert_eq!((batch.lines(Stream::Good), batch.total_events()), (&b""[..], 0));
    }
}
