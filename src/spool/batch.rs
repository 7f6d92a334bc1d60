//! The batch: the record lines of the events a worker accepted in one event-loop iteration, which the group
//! commit writes to the spool with one `write(2)` before any of their answers leaves.
//!
//! A request appends its events after taking a `Mark`; if any of them fails, `rollback` cuts the batch back to
//! the mark, so a request is stored whole or not at all.

/// Where a request's events begin in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    len: usize,
    events: u64,
}

#[derive(Debug, Default)]
pub struct Batch {
    lines: Vec<u8>,
    events: u64,
}

impl Batch {
    pub fn with_capacity(bytes: usize) -> Batch {
        Batch { lines: Vec::with_capacity(bytes), events: 0 }
    }

    pub fn mark(&self) -> Mark {
        Mark { len: self.lines.len(), events: self.events }
    }

    /// Forgets everything appended since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        self.lines.truncate(mark.len);
        self.events = mark.events;
    }

    /// The buffer record lines are appended to; `add_events` counts them.
    pub fn lines_mut(&mut self) -> &mut Vec<u8> {
        &mut self.lines
    }

    pub fn add_events(&mut self, events: u64) {
        self.events += events;
    }

    pub fn lines(&self) -> &[u8] {
        &self.lines
    }

    /// The length of the longest record line appended since `mark` (without its newline).
    pub fn longest_line_since(&self, mark: Mark) -> usize {
        let mut longest = 0;
        let mut start = mark.len;
        for end in memchr::memchr_iter(b'\n', &self.lines[mark.len..]) {
            longest = longest.max(mark.len + end - start);
            start = mark.len + end + 1;
        }
        longest.max(self.lines.len() - start)
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// Empties the batch after the group commit (keeping its buffer).
    pub fn clear(&mut self) {
        self.lines.clear();
        self.events = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_returns_to_the_mark() {
        let mut batch = Batch::with_capacity(64);
        batch.lines_mut().extend_from_slice(b"{\"a\":1}\n");
        batch.add_events(1);
        let mark = batch.mark();
        batch.lines_mut().extend_from_slice(b"{\"b\":2}\n{\"ccc\":3}\n");
        batch.add_events(2);
        assert_eq!(batch.longest_line_since(mark), 9, "the lines after the mark only");
        batch.rollback(mark);
        assert_eq!(batch.longest_line_since(mark), 0);
        assert_eq!((batch.lines(), batch.events()), (&b"{\"a\":1}\n"[..], 1));
        batch.clear();
        assert_eq!((batch.lines(), batch.events()), (&b""[..], 0));
    }
}
