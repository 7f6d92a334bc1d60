//! The io_uring loop's output: one plain send per connection at a time, from its `SendBuffer`, of committed
//! output only (moved there after the group commit), and what its completion says — all sent, a short send to
//! finish, or a peer that is gone.

use std::os::fd::AsRawFd;
use std::time::Instant;

use io_uring::opcode;
use io_uring::types::Fd;

use super::Ring;
use super::tag::{SEND, tag};
use crate::worker::connection::Drained;
use crate::worker::core::Worker;

impl Ring {
    /// Submits committed output of a connection with no send in flight, or, with nothing left to send, moves it
    /// on (it waits, closes, lingers or is read again).
    pub(super) fn send(&mut self, worker: &mut Worker, i: usize, now: Instant) {
        let Some(conn) = worker.conns.get_mut(i) else {
            return;
        };
        let slot = self.slot(i);
        if slot.flight.in_flight() {
            return; // its completion sends the rest
        }
        match conn.move_out(slot.flight.refill(), now) {
            Err(_) => worker.close(self, i),
            Ok(_) if !self.slots[i].flight.is_empty() => self.submit_send(worker, i),
            Ok(Drained::All) => worker.written(self, i, now),
            Ok(_) => {} // the rest waits for the next group commit (or the end of the TLS handshake)
        }
    }

    /// Queues the send of the connection's send buffer.
    fn submit_send(&mut self, worker: &mut Worker, i: usize) {
        let Some(conn) = worker.conns.get_mut(i) else {
            return;
        };
        let fd = conn.stream.as_raw_fd();
        let slot = &mut self.slots[i];
        let serial = slot.serial;
        let flight = slot.flight.submit();
        conn.output.in_flight = flight.len();
        self.sends_in_flight += 1;
        // The buffer stays as it is until the completion (see `enter`'s SAFETY); MSG_NOSIGNAL: a peer that is
        // gone is an EPIPE result, not a signal.
        let send = opcode::Send::new(Fd(fd), flight.as_ptr(), flight.len() as u32).flags(libc::MSG_NOSIGNAL);
        self.submissions.push(send.build().user_data(tag(SEND, i, serial)));
    }

    pub(super) fn sent(&mut self, worker: &mut Worker, i: usize, serial: u32, result: i32, now: Instant) {
        self.sends_in_flight -= 1;
        if !self.current(worker, i, serial) {
            let data = tag(SEND, i, serial);
            if let Some(at) = self.orphans.iter().position(|(of, _)| *of == data) {
                let (_, mut buffer) = self.orphans.swap_remove(at);
                buffer.completed(); // freed now: the kernel is done with it
            }
            return;
        }
        let flight = &mut self.slots[i].flight;
        flight.completed();
        let conn = &mut worker.conns[i];
        conn.output.in_flight = 0;
        if result < 0 {
            return worker.close(self, i); // the peer is gone
        }
        conn.last_active = now;
        let bytes = flight.refill();
        let n = (result as usize).min(bytes.len());
        bytes.drain(..n);
        if bytes.is_empty() {
            if bytes.capacity() > 16 * 1024 {
                *bytes = Vec::new();
            }
            self.send(worker, i, now); // what was committed since, or what comes after the last answer
        } else {
            self.submit_send(worker, i); // the rest of a short send
        }
    }
}
