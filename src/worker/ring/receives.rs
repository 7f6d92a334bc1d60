//! The io_uring loop's input: connections its accepts bring, the data its multishot receives
//! deliver into provided buffers (taken at once, the buffer handed back; what a paused connection was sent is
//! stashed until it reads again), and the end of a connection's input.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Instant;

use io_uring::types::Fd;
use io_uring::{cqueue, opcode};
use mio::net::TcpStream;

use super::tag::{RECEIVE, cancel, tag};
use super::{GROUP, Ring, Slot};
use crate::event::record::Transport;
use crate::worker::core::Worker;

impl Ring {
    /// Accept `k` of the listener of `transport` completed: the connection becomes the worker's, its receive
    /// armed, and the accept armed again.
    pub(super) fn accepted(&mut self, worker: &mut Worker, transport: Transport, k: usize, result: i32, now: Instant) {
        let peer = self.accepts.completed(k, result >= 0);
        if result < 0 {
            if result != -libc::ECANCELED {
                // EMFILE and friends: the connection waits in the backlog; housekeeping arms the accept again
                // (at once, it would fail again at once).
                let error = io::Error::from_raw_os_error(-result);
                tracing::warn!(worker = worker.index, error = %error, "accept failed");
            }
            return;
        }
        self.arm_accept(transport);
        // SAFETY: an accept's result is a new descriptor that nothing else owns.
        let stream = unsafe { TcpStream::from_raw_fd(result) };
        // Accepted while the drain ended: dropping it closes it.
        let (Some(peer), true) = (peer, self.listeners.get(transport).is_some()) else {
            return;
        };
        if let Some(i) = worker.admit(stream, peer.ip(), transport, now) {
            self.serial = self.serial.wrapping_add(1);
            let serial = self.serial;
            *self.slot(i) = Slot { serial, ..Slot::default() };
            self.arm_receive(worker, i);
        }
    }

    /// Arms a connection's multishot receive, unless it is armed or its input is not wanted now.
    pub(super) fn arm_receive(&mut self, worker: &Worker, i: usize) {
        let Some(conn) = worker.conns.get(i) else {
            return;
        };
        let slot = self.slot(i);
        if slot.receiving || !conn.life.wants_input() {
            return;
        }
        slot.receiving = true;
        let receive = opcode::RecvMulti::new(Fd(conn.stream.as_raw_fd()), GROUP);
        let entry = receive.build().user_data(tag(RECEIVE, i, slot.serial));
        self.submissions.push(entry);
    }

    /// Whether a completion of `serial` is of the connection now in slot `i`.
    pub(super) fn current(&self, worker: &Worker, i: usize, serial: u32) -> bool {
        worker.conns.contains(i) && self.slots.get(i).is_some_and(|slot| slot.serial == serial)
    }

    pub(super) fn received(
        &mut self,
        worker: &mut Worker,
        i: usize,
        serial: u32,
        result: i32,
        flags: u32,
        now: Instant,
    ) {
        let buffer = cqueue::buffer_select(flags);
        if !self.current(worker, i, serial) {
            // Of a connection that closed: only its buffer matters.
            if let Some(bid) = buffer {
                self.buffers.give_back(bid);
            }
            return;
        }
        self.slots[i].receiving &= cqueue::more(flags);
        match (result, buffer) {
            (1.., Some(bid)) => {
                let taken = {
                    let data = self.buffers.filled(bid, result as usize);
                    let taken = worker.take_input(i, data, now);
                    if let Ok(n) = taken {
                        self.slots[i].stash.extend_from_slice(&data[n..]);
                    }
                    taken
                };
                self.buffers.give_back(bid);
                match taken {
                    Ok(_) => self.after_received(worker, i),
                    Err(e) => worker.input_failed(self, i, &e),
                }
            }
            (0, _) => {
                let slot = &mut self.slots[i];
                let conn = &mut worker.conns[i];
                if conn.life.reading_paused() || !slot.stash.is_empty() {
                    slot.stashed_eof = true;
                } else {
                    conn.life.peer_closed();
                }
                worker.after_input(i, false);
            }
            (e, _) if e == -libc::ENOBUFS => self.starved.push(i),
            // Cancelled when reading paused: armed again only if it was resumed meanwhile.
            (e, _) if e == -libc::ECANCELED => self.arm_receive(worker, i),
            (e, _) => {
                if let Some(bid) = buffer {
                    self.buffers.give_back(bid);
                }
                worker.input_failed(self, i, &io::Error::from_raw_os_error(-e.min(-1)));
            }
        }
    }

    /// After a connection's input was taken: a pause cancels its receive (its client does not take its
    /// answers: no more input until they went out); else it is armed again if it ended.
    fn after_received(&mut self, worker: &Worker, i: usize) {
        let Some(conn) = worker.conns.get(i) else {
            return;
        };
        let slot = &self.slots[i];
        if conn.life.reading_paused() && slot.receiving {
            self.submissions.push(cancel(tag(RECEIVE, i, slot.serial)));
        }
        self.arm_receive(worker, i);
    }

    /// Reading resumed (its client caught up): what was stashed meanwhile is taken as if read now (the rest
    /// stashed again, should reading pause once more), then the end of input if it came after it, and the
    /// receive is armed again.
    pub(super) fn resume_reading(&mut self, worker: &mut Worker, i: usize, now: Instant) {
        if !worker.conns.contains(i) {
            return;
        }
        let slot = self.slot(i);
        let (stash, eof) = (std::mem::take(&mut slot.stash), std::mem::take(&mut slot.stashed_eof));
        match worker.take_input(i, &stash, now) {
            Ok(n) => {
                let slot = &mut self.slots[i];
                slot.stash.extend_from_slice(&stash[n..]);
                slot.stashed_eof = eof;
                if eof && slot.stash.is_empty() && !worker.conns[i].life.reading_paused() {
                    slot.stashed_eof = false;
                    worker.conns[i].life.peer_closed();
                    worker.after_input(i, false);
                }
                self.after_received(worker, i);
            }
            Err(e) => worker.input_failed(self, i, &e),
        }
    }
}
