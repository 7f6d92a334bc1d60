//! A connection's side of the io_uring loop (`worker/ring.rs`). Its input arrives through a multishot receive the
//! worker arms and cancels; its answers leave through one send at a time, whose buffer (`InFlight::flight`)
//! nothing touches until the send's completion. Committed output moves there (encrypted, for TLS) only after
//! the group commit that covers it, so the durability order is the epoll loop's.

use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::{Connection, KEEP_CAPACITY, write_tls};

/// What the io_uring loop has submitted for a connection.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Tells this connection's completions from those of an earlier one in the same slot.
    pub serial: u32,
    /// Its multishot receive is armed (until the completion that ends it).
    pub receiving: bool,
    /// Input that arrived after reading paused (its receive was being cancelled), unread as it would wait in the
    /// socket under epoll; taken when reading resumes. `stashed_eof`: the client's end of input came after it.
    stash: Vec<u8>,
    stashed_eof: bool,
    /// What the send in flight carries; empty when none is. The kernel reads it until the completion, so it is
    /// neither written nor moved before then, and a connection closed meanwhile hands it over (`take_flight`).
    pub(super) flight: SendBuffer,
}

/// The buffer of a connection's send. From the submission of a send of it until that send's completion the
/// kernel may read it, so meanwhile it is not written, reallocated or freed — and if it is dropped first (the
/// loop ended before the completion came, or its ring failed), its memory is leaked instead of freed.
#[derive(Debug, Default)]
pub struct SendBuffer {
    bytes: Vec<u8>,
    submitted: bool,
}

impl SendBuffer {
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes of a send about to be submitted: the kernel's until `completed`.
    pub fn submit(&mut self) -> &[u8] {
        debug_assert!(!self.submitted, "one send at a time");
        self.submitted = true;
        &self.bytes
    }

    /// The send of it completed (whatever its result): it is ours again.
    pub fn completed(&mut self) {
        self.submitted = false;
    }

    /// The buffer to fill before the next send.
    fn refill(&mut self) -> &mut Vec<u8> {
        assert!(!self.submitted, "a buffer the kernel may read is not written");
        &mut self.bytes
    }
}

/// Send buffers dropped while their send was in flight, whose memory was therefore never freed.
pub static LEFT_TO_THE_KERNEL: AtomicUsize = AtomicUsize::new(0);

impl Drop for SendBuffer {
    fn drop(&mut self) {
        if self.submitted {
            // The kernel may still read these bytes (`enter`'s SAFETY rests on this): never freed.
            std::mem::forget(std::mem::take(&mut self.bytes));
            LEFT_TO_THE_KERNEL.fetch_add(1, Relaxed);
        }
    }
}

impl Connection {
    /// Takes `data` a receive brought through `take_input`, at most `step` bytes at a time as a read would, and
    /// stops taking once reading pauses (too much output waits): the rest is stashed until it resumes.
    /// `Ok(true)` when reading paused now.
    pub fn take_received(
        &mut self,
        mut data: &[u8],
        step: usize,
        plain: &mut Vec<u8>,
        now: Instant,
        handle: &mut impl FnMut(&mut Connection, &[u8]) -> usize,
    ) -> io::Result<bool> {
        let mut paused_now = false;
        while !data.is_empty() {
            if self.life.reading_paused() {
                self.ring.stash.extend_from_slice(data);
                break;
            }
            let (now_part, rest) = data.split_at(data.len().min(step));
            self.take_input(now_part, plain, now, handle)?;
            data = rest;
            if self.over_high_water() {
                paused_now |= self.life.pause_reading();
            }
        }
        self.note_request_start(now);
        Ok(paused_now)
    }

    /// The client ended its input (a receive returned 0): at once, or after the stashed input.
    pub fn received_eof(&mut self) {
        if self.life.reading_paused() || !self.ring.stash.is_empty() {
            self.ring.stashed_eof = true;
        } else {
            self.life.peer_closed();
        }
    }

    /// Reading resumed: the input stashed while it was paused, and whether the client's end of input followed
    /// it (the caller takes the input first, then the end).
    pub fn take_stash(&mut self) -> (Vec<u8>, bool) {
        (std::mem::take(&mut self.ring.stash), std::mem::take(&mut self.ring.stashed_eof))
    }

    /// The bytes of the send to submit (after `load_send` returned true, or after a short send: the rest),
    /// from now on the kernel's until the send completes (`sent`).
    pub fn submit_flight(&mut self) -> &[u8] {
        self.ring.flight.submit()
    }

    pub fn sending(&self) -> bool {
        !self.ring.flight.is_empty()
    }

    /// Moves what may leave now into the send buffer: committed output (encrypted, for TLS) and TLS's own
    /// records (handshake, tickets). Only while no send is in flight; true when there is something to send.
    pub fn load_send(&mut self, now: Instant) -> io::Result<bool> {
        debug_assert!(self.ring.flight.is_empty(), "one send at a time");
        let committed = self.out_committed;
        match self.tls.as_deref_mut() {
            None if self.out_sent == 0 && committed == self.out.len() => {
                // Everything is committed: the buffers trade places, nothing is copied.
                std::mem::swap(&mut self.out, self.ring.flight.refill());
            }
            None => {
                self.ring.flight.refill().extend_from_slice(&self.out[self.out_sent..committed]);
                self.out.drain(..committed);
            }
            Some(tls) => {
                let out = &self.out[..committed];
                let flight = self.ring.flight.refill();
                write_tls(tls, flight, out, &mut self.out_sent, &mut self.last_active, now)?;
                self.out.drain(..self.out_sent);
            }
        }
        // What was taken left `out`; the boundaries after it move with the rest.
        let taken = match self.tls {
            None => committed,
            Some(_) => self.out_sent,
        };
        self.out_sent = 0;
        self.out_committed -= taken;
        if let Some((mark, _)) = self.ingest_mark.as_mut() {
            *mark -= taken;
        }
        if self.out.is_empty() && self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        }
        Ok(!self.ring.flight.is_empty())
    }

    /// Its send failed (the peer is gone): the buffer is ours again, to be dropped with the connection.
    pub fn send_failed(&mut self) {
        self.ring.flight.completed();
    }

    /// Its send completed having written `n` bytes; true when the whole buffer went out (else the rest is sent
    /// again).
    pub fn sent(&mut self, n: usize, now: Instant) -> bool {
        self.last_active = now;
        self.ring.flight.completed();
        let flight = self.ring.flight.refill();
        if n < flight.len() {
            flight.drain(..n);
            return false;
        }
        flight.clear();
        if flight.capacity() > KEEP_CAPACITY {
            *flight = Vec::new();
        }
        true
    }

    /// Every answer went out: nothing waits in `out` or in flight.
    pub fn all_sent(&self) -> bool {
        self.out.is_empty() && self.ring.flight.is_empty()
    }

    /// The buffer of the send in flight, for the worker to keep until its completion when the connection closes
    /// first.
    pub fn take_flight(&mut self) -> SendBuffer {
        std::mem::take(&mut self.ring.flight)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::{LEFT_TO_THE_KERNEL, SendBuffer};

    #[test]
    fn a_send_buffer_dropped_while_its_send_is_in_flight_is_left_to_the_kernel() {
        let before = LEFT_TO_THE_KERNEL.load(Relaxed);
        let mut idle = SendBuffer::default();
        idle.refill().extend_from_slice(b"answer");
        drop(idle);
        let mut done = SendBuffer::default();
        done.refill().extend_from_slice(b"answer");
        assert_eq!(done.submit(), b"answer");
        done.completed();
        done.refill().clear(); // ours again: writable
        drop(done);
        assert_eq!(LEFT_TO_THE_KERNEL.load(Relaxed), before, "freed: no send of them was in flight");

        let mut in_flight = SendBuffer::default();
        in_flight.refill().extend_from_slice(b"answer");
        in_flight.submit();
        drop(in_flight);
        assert_eq!(LEFT_TO_THE_KERNEL.load(Relaxed), before + 1, "its send may still read it: not freed");
    }

    #[test]
    #[should_panic(expected = "not written")]
    fn a_buffer_the_kernel_may_read_is_not_written() {
        let mut buffer = SendBuffer::default();
        buffer.refill().push(1);
        buffer.submit();
        buffer.refill().push(2);
    }
}
