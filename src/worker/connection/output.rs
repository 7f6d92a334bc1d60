//! A connection's answers on their way out, and the committed boundary the durability order rests on: answers
//! are encoded at once, but only `buf[..committed]` may leave, and only the group commit moves `committed`
//! (`commit`), so an answer whose events are not in the spool yet cannot reach the socket by any path. Both event
//! loops take committed output through `drain_into` (the epoll loop into the socket, the io_uring loop into the
//! buffer of its next send); a TLS connection's answers are encrypted there, on their way out.

use std::io::{self, Write};
use std::time::Instant;

use rustls::ServerConnection;

use crate::route::Route;

/// Buffers larger than this are released when they empty, so idle connections stay small.
pub(super) const KEEP_CAPACITY: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct Output {
    /// Encoded answers not yet taken out; `buf[..sent]` already were.
    buf: Vec<u8>,
    sent: usize,
    /// `buf[..committed]` may leave: the group commit covering their events returned.
    committed: usize,
    /// Where the first answer of this iteration that acknowledges events starts, and its request's route.
    ingest_mark: Option<(usize, Route)>,
    /// Bytes the event loop handed to the kernel and has not seen sent yet (io_uring's send in flight).
    pub in_flight: usize,
}

/// How far `drain_into` got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every answer is out.
    All,
    /// The writer takes no more now (a full socket), or a TLS session cannot encrypt yet (its handshake has not
    /// ended): the rest when it can.
    Blocked,
    /// Everything committed is out; the rest waits for the next group commit (or the end of a TLS handshake).
    WaitsForCommit,
}

impl Output {
    /// Where answers are encoded.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// What was encoded and has not left (with what is in flight).
    pub fn unsent(&self) -> usize {
        self.buf.len() - self.sent + self.in_flight
    }

    /// Notes that the answer about to be encoded, to a request of `route`, acknowledges events of this
    /// iteration's batch.
    pub fn mark_ingest(&mut self, route: Route) {
        self.ingest_mark.get_or_insert((self.buf.len(), route));
    }

    /// The group commit covering every event answered so far returned: all encoded output may go out.
    pub fn commit(&mut self) {
        self.committed = self.buf.len();
        self.ingest_mark = None;
    }

    /// The group commit failed: drops the answers from the first one that acknowledged events of the lost
    /// batch on. Returns the route of that first request, if there was one.
    pub fn take_back_ingest(&mut self) -> Option<Route> {
        let (mark, route) = self.ingest_mark.take()?;
        debug_assert!(mark >= self.committed);
        self.buf.truncate(mark);
        Some(route)
    }

    /// Output encoded since the last group commit (none between the commit and the flush of an iteration).
    pub fn uncommitted(&self) -> usize {
        self.buf.len() - self.committed
    }

    /// Nothing waits to leave and nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.in_flight == 0
    }

    /// Forgets everything encoded (benchmarks and cost examples, which answer into the void).
    pub fn clear(&mut self) {
        *self = Output::default();
    }

    /// Writes committed output to `to` — through `tls` (encrypted now, with the session's own records:
    /// handshake, tickets) when the connection has one — until all of it went or `to` takes no more.
    /// `last_active` is set when bytes left.
    pub fn drain_into(
        &mut self,
        tls: Option<&mut ServerConnection>,
        to: &mut dyn Write,
        last_active: &mut Instant,
        now: Instant,
    ) -> io::Result<Drained> {
        let committed = &self.buf[..self.committed];
        let written = match tls {
            None => write_plain(to, committed, &mut self.sent, last_active, now)?,
            Some(tls) => write_tls(tls, to, committed, &mut self.sent, last_active, now)?,
        };
        if !written {
            return Ok(Drained::Blocked);
        }
        // Everything committed left: what was sent goes, the uncommitted rest (if any) moves to the front.
        let sent = std::mem::take(&mut self.sent);
        self.committed -= sent;
        if let Some((mark, _)) = self.ingest_mark.as_mut() {
            *mark -= sent;
        }
        if sent == self.buf.len() {
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::new();
            }
            return Ok(Drained::All);
        }
        self.buf.drain(..sent);
        Ok(Drained::WaitsForCommit)
    }

    /// Moves all committed output into `into` (empty: the io_uring loop's send buffer), trading buffers when
    /// everything encoded is committed and nothing of it left yet, so the common answer is never copied.
    pub fn move_committed(
        &mut self,
        tls: Option<&mut ServerConnection>,
        into: &mut Vec<u8>,
        last_active: &mut Instant,
        now: Instant,
    ) -> io::Result<Drained> {
        debug_assert!(into.is_empty());
        if tls.is_none() && self.sent == 0 && self.committed == self.buf.len() && self.ingest_mark.is_none() {
            std::mem::swap(&mut self.buf, into);
            self.committed = 0;
            return Ok(Drained::All);
        }
        self.drain_into(tls, into, last_active, now)
    }
}

/// Writes `out[*sent..]`; false when the writer takes no more.
fn write_plain(
    to: &mut dyn Write,
    out: &[u8],
    sent: &mut usize,
    last_active: &mut Instant,
    now: Instant,
) -> io::Result<bool> {
    while *sent < out.len() {
        match to.write(&out[*sent..]) {
            Ok(n) => {
                *sent += n;
                *last_active = now;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Encrypts `out[*sent..]` and writes every record the session holds (the handshake's and tickets' too), until
/// nothing is left; false when the writer takes no more or nothing can be encrypted yet.
fn write_tls(
    tls: &mut ServerConnection,
    to: &mut dyn Write,
    out: &[u8],
    sent: &mut usize,
    last_active: &mut Instant,
    now: Instant,
) -> io::Result<bool> {
    loop {
        let mut took = 0;
        if *sent < out.len() {
            // rustls takes what fits under its buffer limit; the rest once records went out.
            took = tls.writer().write(&out[*sent..])?;
            *sent += took;
        }
        if !tls.wants_write() {
            if *sent == out.len() {
                return Ok(true);
            }
            if took == 0 {
                return Ok(false); // nothing can be encrypted before the handshake ends
            }
            continue;
        }
        match tls.write_tls(to) {
            Ok(_) => *last_active = now,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn route() -> Route {
        crate::route::route(b"/e", Method::Get).unwrap()
    }

    #[test]
    fn only_committed_output_leaves_and_what_follows_it_waits() {
        let mut output = Output::default();
        output.buf().extend_from_slice(b"first;");
        output.commit();
        output.mark_ingest(route());
        output.buf().extend_from_slice(b"second;");
        let (mut to, now) = (Vec::new(), Instant::now());
        let mut at = now;
        assert_eq!(output.drain_into(None, &mut to, &mut at, now).unwrap(), Drained::WaitsForCommit);
        assert_eq!(to, b"first;");
        assert_eq!(output.unsent(), 7);
        output.commit();
        assert_eq!(output.drain_into(None, &mut to, &mut at, now).unwrap(), Drained::All);
        assert_eq!(to, b"first;second;");
        assert!(output.is_empty());
    }

    #[test]
    fn a_failed_commit_takes_back_the_answers_from_the_first_acknowledgement_on() {
        let mut output = Output::default();
        output.buf().extend_from_slice(b"committed;");
        output.commit();
        output.buf().extend_from_slice(b"error;");
        output.mark_ingest(route());
        output.buf().extend_from_slice(b"ack;ack;");
        // The committed answer leaves first; the mark moves with what is left.
        let (mut to, now) = (Vec::new(), Instant::now());
        let mut at = now;
        output.drain_into(None, &mut to, &mut at, now).unwrap();
        assert_eq!(output.take_back_ingest(), Some(route()));
        output.commit();
        output.drain_into(None, &mut to, &mut at, now).unwrap();
        assert_eq!(to, b"committed;error;");
    }

    #[test]
    fn moving_everything_committed_trades_buffers_instead_of_copying() {
        let mut output = Output::default();
        output.buf().extend_from_slice(b"answer");
        output.commit();
        let pointer = output.buf().as_ptr();
        let (mut into, now) = (Vec::new(), Instant::now());
        let mut at = now;
        assert_eq!(output.move_committed(None, &mut into, &mut at, now).unwrap(), Drained::All);
        assert_eq!((into.as_ptr(), &into[..]), (pointer, &b"answer"[..]));
        // With an uncommitted tail it copies the committed part only.
        output.buf().extend_from_slice(b"one;");
        output.commit();
        output.buf().extend_from_slice(b"two;");
        let mut into = Vec::new();
        assert_eq!(output.move_committed(None, &mut into, &mut at, now).unwrap(), Drained::WaitsForCommit);
        assert_eq!((&into[..], output.unsent()), (&b"one;"[..], 4));
    }
}
