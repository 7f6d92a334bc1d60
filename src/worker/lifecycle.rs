//! Where one connection is in its life, and the verbs that move it on. The worker's files ask it questions
//! (does it take requests, must it be flushed, what comes after its answers went out) instead of reading and
//! writing flags of their own.
//!
//! ```text
//! Open ──(an answer with Connection: close, or an error that ends it)──▶ Ending ──(answers written)──▶ Lingering
//!   │                                                                       │  (input was left unread)      │
//!   │                                                        (nothing left unread: closed at once)          │
//!   └───────────────────(the peer closed and every answer was written)──▶ closed ◀──(EOF or deadline)───┘
//! ```
//!
//! Lingering (a half-close, then input read and dropped until the client's FIN) keeps the kernel from answering
//! unread input with a RST that could destroy the last answer on its way. When nothing was left unread — the
//! client asked to close after a request it sent whole — the connection closes at once, as nginx does: a
//! `shutdown`, a wake-up and a read less per connection.
//!
//! Beside that path: reading pauses while the client does not take its answers (and resumes once they went
//! out), and a connection is queued for the flush at most once per iteration.

use std::time::Instant;

/// What a connection does once all its output was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterWrite {
    /// Nothing changes: it waits for its next request.
    Keep,
    /// Close it now: the client is gone.
    Close,
    /// Half-close it and drain its input for a while: its last answer is out.
    Linger,
    /// Read it again in the next iteration: its reading was paused and its client caught up.
    ReadAgain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Requests are read and answered.
    Open,
    /// The last answer is decided; input after it is dropped, and once it is written the connection closes —
    /// lingering first if input was (or may have been) left unread.
    AfterAnswers { unread: bool },
    /// Half-closed after its last answer: input is read and dropped until EOF or this instant.
    Lingering(Instant),
}

#[derive(Debug)]
pub struct Lifecycle {
    ending: Ending,
    /// Accepted over MAX_CONNECTIONS only to answer its first request with 503 and close.
    over_limit: bool,
    /// The client closed its side (a read returned 0).
    peer_closed: bool,
    /// Reading stopped because the client does not read its answers.
    read_paused: bool,
    /// On the worker's flush list of this iteration.
    queued_for_flush: bool,
    /// Had a request in flight when the drain ended: that request is still served normally.
    inflight_at_close: bool,
}

impl Lifecycle {
    pub fn new(over_limit: bool) -> Lifecycle {
        Lifecycle {
            ending: Ending::Open,
            over_limit,
            peer_closed: false,
            read_paused: false,
            queued_for_flush: false,
            inflight_at_close: false,
        }
    }

    pub fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// No request after the one being answered: the connection ends once its answers are out. `unread`: input
    /// may be left behind it (a body not read, a refused request's rest).
    pub fn end_after_answer(&mut self, unread: bool) {
        match &mut self.ending {
            Ending::Open => self.ending = Ending::AfterAnswers { unread },
            Ending::AfterAnswers { unread: left } => *left |= unread,
            Ending::Lingering(_) => {}
        }
    }

    /// Input arrived after the last answer was decided and was dropped: the connection lingers before it closes.
    pub fn input_left(&mut self) {
        if let Ending::AfterAnswers { unread } = &mut self.ending {
            *unread = true;
        }
    }

    /// Whether requests are still read from its input (else input is dropped).
    pub fn takes_requests(&self) -> bool {
        self.ending == Ending::Open
    }

    /// A read returned end of file.
    pub fn peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// Stops reading until its answers went out; true if reading was going on until now.
    pub fn pause_reading(&mut self) -> bool {
        !std::mem::replace(&mut self.read_paused, true)
    }

    /// Reading stopped until its answers go out.
    pub fn reading_paused(&self) -> bool {
        self.read_paused
    }

    /// Whether its input is wanted now (io_uring: whether its receive should be armed): not while reading is
    /// paused or after the client closed its side.
    pub fn wants_input(&self) -> bool {
        !self.read_paused && !self.peer_closed
    }

    /// Whether it must go through the flush even with nothing to write: it ends, or its client went away.
    pub fn must_flush(&self) -> bool {
        self.ending != Ending::Open || self.peer_closed
    }

    /// Puts it on the flush list; false if it is there already.
    pub fn queue_flush(&mut self) -> bool {
        !std::mem::replace(&mut self.queued_for_flush, true)
    }

    /// Taken off the flush list.
    pub fn unqueue_flush(&mut self) {
        self.queued_for_flush = false;
    }

    /// All its output was written: what it does next.
    pub fn written(&mut self) -> AfterWrite {
        match self.ending {
            _ if self.peer_closed => AfterWrite::Close,
            Ending::AfterAnswers { unread: true } => AfterWrite::Linger,
            Ending::AfterAnswers { unread: false } => AfterWrite::Close,
            _ if std::mem::take(&mut self.read_paused) => AfterWrite::ReadAgain,
            _ => AfterWrite::Keep,
        }
    }

    /// Its last answer is out: it lingers until `until` (the caller half-closes the socket).
    pub fn linger(&mut self, until: Instant) {
        self.ending = Ending::Lingering(until);
    }

    pub fn lingering_until(&self) -> Option<Instant> {
        match self.ending {
            Ending::Lingering(until) => Some(until),
            _ => None,
        }
    }

    /// The drain ended: a connection with a request in flight finishes that request. Returns whether it can
    /// be closed at once instead (nothing in flight, nothing to write, not lingering).
    pub fn drain_ended(&mut self, request_in_flight: bool, unsent: usize) -> bool {
        self.inflight_at_close = request_in_flight;
        !request_in_flight && unsent == 0 && self.lingering_until().is_none()
    }

    /// After the drain: whether the request being answered is the one that was in flight when it ended (served
    /// normally, once; any later one gets 503).
    pub fn serves_request_after_drain(&mut self) -> bool {
        std::mem::take(&mut self.inflight_at_close)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_ending_connection_takes_no_requests_then_lingers_once_written() {
        let mut life = Lifecycle::new(false);
        assert!(life.takes_requests() && !life.must_flush());
        assert_eq!(life.written(), AfterWrite::Keep);
        life.end_after_answer(true);
        assert!(!life.takes_requests() && life.must_flush());
        assert_eq!(life.written(), AfterWrite::Linger);
        let until = Instant::now() + Duration::from_secs(2);
        life.linger(until);
        assert_eq!(life.lingering_until(), Some(until));
        life.end_after_answer(false);
        assert_eq!(life.lingering_until(), Some(until), "ending again does not undo lingering");
        assert_eq!(life.written(), AfterWrite::Keep, "already lingering");
        life.peer_closed();
        assert_eq!(life.written(), AfterWrite::Close);
    }

    #[test]
    fn a_connection_with_nothing_left_unread_closes_at_once_and_one_with_input_left_lingers() {
        let mut clean = Lifecycle::new(false);
        clean.end_after_answer(false);
        assert_eq!(clean.written(), AfterWrite::Close, "the client asked to close after a whole request");
        let mut left = Lifecycle::new(false);
        left.end_after_answer(false);
        left.input_left();
        assert_eq!(left.written(), AfterWrite::Linger, "input arrived after the last answer and was dropped");
        let mut refused = Lifecycle::new(false);
        refused.end_after_answer(true);
        refused.end_after_answer(false);
        assert_eq!(refused.written(), AfterWrite::Linger, "once unread, still unread");
        let mut open = Lifecycle::new(false);
        open.input_left();
        assert_eq!(open.written(), AfterWrite::Keep, "only an ending connection drops input");
    }

    #[test]
    fn a_paused_connection_is_read_again_once_after_its_output_went_out() {
        let mut life = Lifecycle::new(false);
        assert!(life.pause_reading());
        assert!(!life.pause_reading(), "counted once");
        assert_eq!(life.written(), AfterWrite::ReadAgain);
        assert_eq!(life.written(), AfterWrite::Keep);
        life.pause_reading();
        life.peer_closed();
        assert!(life.must_flush());
        assert_eq!(life.written(), AfterWrite::Close, "a gone client is not read again");
    }

    #[test]
    fn the_flush_list_holds_a_connection_once() {
        let mut life = Lifecycle::new(true);
        assert!(life.over_limit());
        assert!(life.queue_flush());
        assert!(!life.queue_flush());
        life.unqueue_flush();
        assert!(life.queue_flush());
    }

    #[test]
    fn after_the_drain_only_the_request_in_flight_is_served() {
        let mut life = Lifecycle::new(false);
        assert!(!life.drain_ended(true, 0), "a request in flight keeps it open");
        assert!(life.serves_request_after_drain());
        assert!(!life.serves_request_after_drain(), "only that one");
        assert!(!life.drain_ended(false, 10), "unsent answers keep it open");
        assert!(life.drain_ended(false, 0));
        life.linger(Instant::now());
        assert!(!life.drain_ended(false, 0), "a lingering connection finishes lingering");
    }
}
