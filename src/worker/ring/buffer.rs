//! The buffers the io_uring loop sends from. A send's buffer is the kernel's from the submission until the
//! completion: meanwhile nothing writes, reallocates or frees it, and one dropped before its completion (the
//! loop ended first, or its ring failed) is leaked instead of freed — the `SAFETY` of every submission rests on
//! this type (as tokio-uring keeps the buffer of an operation still in flight when its owner goes away).

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

/// Send buffers dropped while their send was in flight, whose memory was therefore never freed.
pub static LEFT_TO_THE_KERNEL: AtomicUsize = AtomicUsize::new(0);

/// The buffer of one connection's sends, one at a time.
#[derive(Debug, Default)]
pub struct SendBuffer {
    bytes: Vec<u8>,
    submitted: bool,
}

impl SendBuffer {
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// A send of it is in flight.
    pub fn in_flight(&self) -> bool {
        self.submitted
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

    /// The buffer to fill (or trim) before the next send.
    pub fn refill(&mut self) -> &mut Vec<u8> {
        assert!(!self.submitted, "a buffer the kernel may read is not written");
        &mut self.bytes
    }
}

impl Drop for SendBuffer {
    fn drop(&mut self) {
        if self.submitted {
            // The kernel may still read these bytes: never freed.
            std::mem::forget(std::mem::take(&mut self.bytes));
            LEFT_TO_THE_KERNEL.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_buffer_dropped_while_its_send_is_in_flight_is_left_to_the_kernel() {
        let before = LEFT_TO_THE_KERNEL.load(Relaxed);
        let mut idle = SendBuffer::default();
        idle.refill().extend_from_slice(b"answer");
        drop(idle);
        let mut done = SendBuffer::default();
        done.refill().extend_from_slice(b"answer");
        assert_eq!(done.submit(), b"answer");
        assert!(done.in_flight());
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
