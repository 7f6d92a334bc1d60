//! The worker's loop on io_uring (`IO_BACKEND=uring`, or `auto` where the probe passed). One ring per worker,
//! set up on its own thread (`uring::ring`: single issuer, deferred task work, the ring fd registered) and
//! entered once per iteration, submitting what the last one queued and waiting for completions:
//! - each listener has a few single-shot accepts, each bringing its peer's address (`ring/accepts.rs`); each
//!   connection one multishot receive, whose data lands in a
//!   provided buffer of the worker's buffer ring (an idle connection holds none), handed back as soon as its
//!   bytes were taken; a receive that ran out of buffers is armed again once the iteration gave them back;
//! - answers leave through one plain send per connection at a time (`ring/sends.rs`, from the buffers of
//!   `ring/buffer.rs`), submitted only by the
//!   flush after the group commit (or when the previous send of committed output completed), so a 2xx still
//!   follows its spool write;
//! - the UDP socket and the wake eventfd are watched by multishot polls, the datagrams read with `recvmmsg`;
//! - a connection closes by cancelling its receive (and its send), then closing its descriptor in the ring.
//!
//! What the ring holds for each connection (its serial, its receive, what arrived while its reading was paused,
//! its send buffer) is kept here by slot, not on the connection. Every completion names its operation, its
//! connection's slot and that connection's serial, so one that arrives after its connection closed (and the
//! slot was reused) is recognised and only its buffer is returned.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::time::{Duration, Instant};

use io_uring::squeue::Entry;
use io_uring::types::{CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode};

use super::connection::Connection;
use super::core::{Io, Listeners, Worker};
use crate::event::record::Transport;
use crate::uring::buffers::BufRing;
use accepts::Accepts;
use buffer::SendBuffer;
use tag::{ACCEPT_HTTP, ACCEPT_HTTPS, OTHER, QUIC, RECEIVE, SEND, UDP, WAKE, cancel, tag, untag};

mod accepts;
mod buffer;
mod receives;
mod sends;
mod tag;

/// Submission queue entries; the completion queue has `CQ_FACTOR` times as many (multishot requests post many).
const ENTRIES: u32 = 1024;
const CQ_FACTOR: u32 = 8;
/// The provided buffers every receive of the worker takes from: `BUFFERS` of `BUFFER_SIZE` bytes (8 MiB). 16 KiB
/// holds a 100-event NDJSON POST in one completion (8 KiB split it: ×0.94 CPU/event with 16 KiB, within this VM's
/// noise; bench/results/2026-12-03-uring-buffers-ab.md).
const GROUP: u16 = 0;
const BUFFERS: u16 = 512;
const BUFFER_SIZE: usize = 16 * 1024;
/// How long the end of the loop waits for sends still in flight after cancelling everything.
const FINAL_REAP: Duration = Duration::from_millis(500);

/// `io_uring_enter` took nothing now, for a reason that passes: a signal, a completion queue to reap first, memory.
fn busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN))
}

/// What the ring holds for one connection slot.
#[derive(Debug, Default)]
struct Slot {
    /// Tells this connection's completions from those of an earlier one in the same slot.
    serial: u32,
    /// Its multishot receive is armed (until the completion that ends it).
    receiving: bool,
    /// Input that arrived after its reading paused (its receive was being cancelled), unread as it would wait
    /// in the socket under epoll; taken when reading resumes. `stashed_eof`: the end of input came after it.
    stash: Vec<u8>,
    stashed_eof: bool,
    /// What its send in flight carries (empty when none is).
    flight: SendBuffer,
}

/// The io_uring loop's state.
pub struct Ring {
    ring: IoUring,
    buffers: BufRing,
    listeners: Listeners,
    /// Entries for the next `io_uring_enter`.
    submissions: Vec<Entry>,
    /// By connection slot.
    slots: Vec<Slot>,
    /// Send buffers of connections that closed while their send was in flight, kept until its completion (or
    /// left to the kernel, never freed, if the loop ends first: `SendBuffer`'s drop).
    orphans: Vec<(u64, SendBuffer)>,
    serial: u32,
    accepts: Accepts,
    udp_armed: bool,
    quic_armed: bool,
    wake_armed: bool,
    sends_in_flight: usize,
    /// Connections whose receive ended for want of buffers: armed again once the completions were handled.
    starved: Vec<usize>,
    /// The completions of the last wait: user data, result, flags.
    completed: Vec<(u64, i32, u32)>,
}

impl Ring {
    /// Sets up the ring (on the worker's own thread: it is the ring's single issuer) and arms the accepts and
    /// the polls of the UDP socket and the wake.
    pub fn new(listeners: Listeners, worker: &Worker) -> io::Result<Ring> {
        let ring = crate::uring::ring(ENTRIES, CQ_FACTOR)?;
        ring.submitter().register_ring_fd()?;
        let buffers = BufRing::new(&ring.submitter(), GROUP, BUFFERS, BUFFER_SIZE)?;
        let mut this = Ring {
            ring,
            buffers,
            listeners,
            submissions: Vec::with_capacity(ENTRIES as usize),
            slots: Vec::new(),
            orphans: Vec::new(),
            serial: 0,
            accepts: Accepts::default(),
            udp_armed: false,
            quic_armed: false,
            wake_armed: false,
            sends_in_flight: 0,
            starved: Vec::new(),
            completed: Vec::with_capacity((ENTRIES * CQ_FACTOR) as usize),
        };
        this.arm_accept(Transport::Http);
        this.arm_accept(Transport::Https);
        this.arm_polls(worker);
        Ok(this)
    }

    fn slot(&mut self, i: usize) -> &mut Slot {
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, Slot::default);
        }
        &mut self.slots[i]
    }

    /// Submits what was queued and waits for at least one completion, at most `timeout`. When the kernel takes
    /// no more for now (its completion queue overflowed, or it is short of memory), the rest stays queued for the
    /// next iteration, which then does not wait.
    fn enter(&mut self, timeout: Duration) -> io::Result<()> {
        let (submitter, mut sq, _) = self.ring.split();
        let mut pushed = 0;
        for entry in &self.submissions {
            // SAFETY: the only memory an entry points to is a connection's send buffer (`submit_send`), a
            // `SendBuffer` that nothing writes or frees until the send's completion: a connection that closes
            // first hands it to `orphans`, and one dropped before its completion (the loop ended or failed)
            // leaks its bytes instead of freeing them.
            if unsafe { sq.push(entry) }.is_err() {
                sq.sync();
                match submitter.submit() {
                    Ok(_) => {}
                    Err(e) if busy(&e) => break,
                    Err(e) => return Err(e),
                }
                sq.sync();
                // SAFETY: as above.
                if unsafe { sq.push(entry) }.is_err() {
                    break;
                }
            }
            pushed += 1;
        }
        sq.sync();
        drop(sq);
        self.submissions.drain(..pushed);
        let timeout = if self.submissions.is_empty() { timeout } else { Duration::ZERO };
        let timespec = Timespec::from(timeout);
        match submitter.submit_with_args(1, &SubmitArgs::new().timespec(&timespec)) {
            Ok(_) => Ok(()),
            // The timeout, or the kernel busy: the completions are reaped and the rest is submitted next time.
            Err(e) if e.raw_os_error() == Some(libc::ETIME) || busy(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The multishot polls of the wake eventfd and of the UDP socket, armed again if they ended.
    fn arm_polls(&mut self, worker: &Worker) {
        if !self.wake_armed {
            self.wake_armed = true;
            let poll = opcode::PollAdd::new(Fd(worker.wake.as_raw_fd()), libc::POLLIN as u32).multi(true);
            self.submissions.push(poll.build().user_data(tag(WAKE, 0, 0)));
        }
        if let Some(udp) = worker.udp.as_ref().filter(|_| !self.udp_armed) {
            self.udp_armed = true;
            let poll = opcode::PollAdd::new(Fd(udp.socket.as_raw_fd()), libc::POLLIN as u32).multi(true);
            self.submissions.push(poll.build().user_data(tag(UDP, 0, 0)));
        }
        if let Some(quic) = worker.quic.as_ref().filter(|_| !self.quic_armed) {
            self.quic_armed = true;
            let poll = opcode::PollAdd::new(Fd(quic.datagrams.socket.as_raw_fd()), libc::POLLIN as u32).multi(true);
            self.submissions.push(poll.build().user_data(tag(QUIC, 0, 0)));
        }
    }

    /// Arms the accepts of the listener of `transport` that are not armed.
    fn arm_accept(&mut self, transport: Transport) {
        if let Some(listener) = self.listeners.get(transport) {
            self.accepts.arm(transport, listener.as_raw_fd(), &mut self.submissions);
        }
    }

    /// Handles every completion waiting.
    fn complete_all(&mut self, worker: &mut Worker, now: Instant) {
        // Copied out of the completion queue first (its entries borrow the ring, the handlers need all of it),
        // into a buffer kept for the next iteration.
        let mut done = std::mem::take(&mut self.completed);
        let mut completions = self.ring.completion();
        completions.sync();
        done.extend(completions.map(|c| (c.user_data(), c.result(), c.flags())));
        for &(data, result, flags) in &done {
            let (op, slot, serial) = untag(data);
            match op {
                ACCEPT_HTTP => self.accepted(worker, Transport::Http, slot, result, now),
                ACCEPT_HTTPS => self.accepted(worker, Transport::Https, slot, result, now),
                RECEIVE => self.received(worker, slot, serial, result, flags, now),
                SEND => self.sent(worker, slot, serial, result, now),
                WAKE => {
                    worker.wake.reset();
                    self.wake_armed &= cqueue::more(flags);
                }
                UDP => {
                    self.udp_armed &= cqueue::more(flags);
                    if result >= 0 {
                        worker.receive_datagrams();
                    }
                }
                QUIC => {
                    self.quic_armed &= cqueue::more(flags);
                    if result >= 0 {
                        worker.receive_quic(now);
                    }
                }
                _ => {}
            }
        }
        done.clear();
        self.completed = done;
        for i in std::mem::take(&mut self.starved) {
            self.arm_receive(worker, i);
        }
        self.arm_polls(worker);
    }
}

impl Io for Ring {
    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.enter(timeout)
    }

    fn dispatch(&mut self, worker: &mut Worker, now: Instant) {
        self.complete_all(worker, now);
    }

    fn accept(&mut self, _: &mut Worker, transport: Transport, _: Instant) {
        self.arm_accept(transport);
    }

    fn resume(&mut self, worker: &mut Worker, i: usize, now: Instant) {
        self.resume_reading(worker, i, now);
    }

    fn flush(&mut self, worker: &mut Worker, i: usize, now: Instant) {
        self.send(worker, i, now);
    }

    /// Its receive and its send are cancelled (a send's buffer is kept until its completion), and its
    /// descriptor is closed by the ring after them.
    fn close(&mut self, i: usize, conn: Connection) {
        let slot = std::mem::take(self.slot(i));
        if slot.receiving {
            self.submissions.push(cancel(tag(RECEIVE, i, slot.serial)));
        }
        if slot.flight.in_flight() {
            self.submissions.push(cancel(tag(SEND, i, slot.serial)));
            self.orphans.push((tag(SEND, i, slot.serial), slot.flight));
        }
        let Connection { stream, .. } = conn;
        self.submissions.push(opcode::Close::new(Fd(stream.into_raw_fd())).build().user_data(tag(OTHER, 0, 0)));
    }

    fn stop_listening(&mut self, _: &mut Worker) {
        self.accepts.cancel_all(&mut self.submissions);
        self.submissions.push(cancel(tag(UDP, 0, 0)));
        self.listeners = Listeners::default();
    }

    /// Closes what is left and cancels everything; the closes are submitted however little is in flight (an
    /// idle client gets its FIN now, not when the process exits), and sends in flight get until a deadline to
    /// complete. Their buffers, if one does not, are left to the kernel (`SendBuffer`).
    fn end(&mut self, worker: &mut Worker) -> io::Result<()> {
        let open: Vec<usize> = worker.conns.iter().map(|(i, _)| i).collect();
        for i in open {
            worker.close(self, i);
        }
        let cancel_all = opcode::AsyncCancel2::new(CancelBuilder::any());
        self.submissions.push(cancel_all.build().user_data(tag(OTHER, 0, 0)));
        let deadline = Instant::now() + FINAL_REAP;
        loop {
            let now = Instant::now();
            let wait = match self.sends_in_flight {
                0 => Duration::ZERO,
                _ => deadline.saturating_duration_since(now),
            };
            self.enter(wait)?;
            self.complete_all(worker, now);
            if (self.sends_in_flight == 0 && self.submissions.is_empty()) || now >= deadline {
                break;
            }
        }
        if self.sends_in_flight > 0 {
            tracing::warn!(
                worker = worker.index,
                sends = self.sends_in_flight,
                "sends still in flight at the loop's end"
            );
        }
        Ok(())
    }
}

impl Drop for Ring {
    /// The buffer ring is unregistered before its memory is freed (with this struct), on every path: the kernel
    /// picks no buffer of a ring it no longer has.
    fn drop(&mut self) {
        if let Err(e) = self.buffers.unregister(&self.ring.submitter()) {
            tracing::warn!(error = %e, "cannot unregister the buffer ring");
        }
    }
}
