//! What both floors (`examples/floor.rs` on epoll, `examples/floor_uring.rs` on io_uring) do with a connection's
//! bytes: count the request ends (`\r\n\r\n`) and append one fixed 200 the size of plutos's per request; a
//! request carrying `Connection: close` gets it back and ends the connection. Nothing else is parsed.

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 02:26:54 GMT\r\nContent-Length: 0\r\n\r\n";
const OK_CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 02:26:54 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const CLOSE: &[u8] = b"\r\nConnection: close\r\n";

/// One connection's answers.
#[derive(Default)]
pub struct Answers {
    /// The bytes of the request head read so far (only to find its end and a `Connection: close`).
    head: Vec<u8>,
    /// Answers not yet written.
    pub out: Vec<u8>,
    /// A request asked to close: the connection ends once `out` is written.
    pub close: bool,
}

impl Answers {
    /// Appends one answer per request end in `data`.
    pub fn take(&mut self, data: &[u8]) {
        self.head.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = memchr::memmem::find(&self.head[start..], b"\r\n\r\n") {
            let head = &self.head[start..start + end + 2];
            if memchr::memmem::find(head, CLOSE).is_some() {
                self.out.extend_from_slice(OK_CLOSE);
                self.close = true;
            } else {
                self.out.extend_from_slice(OK);
            }
            start += end + 4;
        }
        self.head.drain(..start);
    }
}
