//! The worker's loop on io_uring (`IO_BACKEND=uring`, or `auto` where the probe passed). One ring per worker,
//! set up on its own thread (`uring::ring`: single issuer, deferred task work, the ring fd registered) and
//! entered once per iteration, submitting what the last one queued and waiting for completions:
//! - each listener has one multishot accept; each connection one multishot receive, whose data lands in a
//!   provided buffer of the worker's buffer ring (an idle connection holds none), handed back as soon as its
//!   bytes were taken; a receive that ran out of buffers is armed again once the iteration gave them back;
//! - answers leave through one plain send per connection at a time, submitted only by the flush after the group
//!   commit (or when the previous send of committed output completed), so a 2xx still follows its spool write;
//! - the UDP socket and the wake eventfd are watched by multishot polls, the datagrams read with `recvmmsg`;
//! - a connection closes by cancelling its receive (and its send), then closing its descriptor in the ring.
//!
//! Every completion names its operation, its connection's slot and that connection's serial, so one that
//! arrives after its connection closed (and the slot was reused) is recognised and only its buffer is returned.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::time::{Duration, Instant};

use io_uring::squeue::Entry;
use io_uring::types::{CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{CompletionQueue, SubmissionQueue, Submitter, cqueue, opcode};
use mio::net::TcpStream;

use super::Worker;
use super::connection::{Connection, SendBuffer};
use crate::metrics::add;
use crate::uring::buffers::BufRing;
use tag::{ACCEPT_HTTP, ACCEPT_HTTPS, OTHER, RECEIVE, SEND, UDP, WAKE, cancel, tag, untag};

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
/// Input is taken at most this much at a time, as the epoll loop reads it, so reading pauses at the same point.
const READ_STEP: usize = super::READ_BUFFER;
/// How long the end of the loop waits for sends still in flight after cancelling everything.
const FINAL_REAP: Duration = Duration::from_millis(500);

/// `io_uring_enter` took nothing now, for a reason that passes: a signal, a completion queue to reap first, memory.
fn busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN))
}

/// The io_uring loop's state next to the worker's.
pub struct RingIo {
    buffers: BufRing,
    /// Entries for the next `io_uring_enter`.
    submissions: Vec<Entry>,
    /// Send buffers of connections that closed while their send was in flight, kept until its completion (or
    /// left to the kernel, never freed, if the loop ends first: `SendBuffer`'s drop).
    orphans: Vec<(u64, SendBuffer)>,
    serial: u32,
    accept_armed: [bool; 2],
    udp_armed: bool,
    wake_armed: bool,
    sends_in_flight: usize,
    /// Connections whose receive ended for want of buffers: armed again once the completions were handled.
    starved: Vec<usize>,
}

impl RingIo {
    /// A closed connection leaves the ring: its receive and its send are cancelled (a send's buffer is kept
    /// until its completion), and its descriptor is closed by the ring after them.
    pub(super) fn close(&mut self, i: usize, mut conn: Connection) {
        let serial = conn.ring.serial;
        if conn.ring.receiving {
            self.submissions.push(cancel(tag(RECEIVE, i, serial)));
        }
        if conn.sending() {
            self.submissions.push(cancel(tag(SEND, i, serial)));
            self.orphans.push((tag(SEND, i, serial), conn.take_flight()));
        }
        let Connection { stream, .. } = conn;
        self.submissions.push(opcode::Close::new(Fd(stream.into_raw_fd())).build().user_data(tag(OTHER, 0, 0)));
    }
}

impl Worker {
    fn ring(&mut self) -> &mut RingIo {
        self.ring.as_mut().expect("the io_uring loop set up its ring")
    }

    pub(super) fn run_uring(mut self) -> io::Result<()> {
        let mut ring = crate::uring::ring(ENTRIES, CQ_FACTOR)?;
        let (mut submitter, mut sq, mut cq) = ring.split();
        submitter.register_ring_fd()?;
        let buffers = BufRing::new(&submitter, GROUP, BUFFERS, BUFFER_SIZE)?;
        self.ring = Some(RingIo {
            buffers,
            submissions: Vec::with_capacity(ENTRIES as usize),
            orphans: Vec::new(),
            serial: 0,
            accept_armed: [false; 2],
            udp_armed: false,
            wake_armed: false,
            sends_in_flight: 0,
            starved: Vec::new(),
        });
        let served = self.serve_ring(&submitter, &mut sq, &mut cq);
        let in_flight = self.ring().sends_in_flight;
        if in_flight > 0 {
            // Their buffers (in `orphans`, or on connections if the ring failed) are never freed: see SendBuffer.
            tracing::warn!(worker = self.index, sends = in_flight, "sends still in flight at the loop's end");
        }
        // Whatever ended the loop, the kernel picks no buffer of the ring once it is unregistered, so freeing
        // them after it (with the worker) is safe.
        if let Err(e) = submitter.unregister_buf_ring(GROUP) {
            tracing::warn!(worker = self.index, error = %e, "cannot unregister the buffer ring");
        }
        drop((submitter, sq, cq));
        drop(ring);
        served?;
        self.finish();
        Ok(())
    }

    /// The loop, until the worker is done; then what is left is closed, and the sends still in flight complete
    /// (or are cancelled) before their buffers can be freed.
    fn serve_ring(
        &mut self,
        submitter: &Submitter<'_>,
        sq: &mut SubmissionQueue<'_>,
        cq: &mut CompletionQueue<'_>,
    ) -> io::Result<()> {
        self.arm_accept(false);
        self.arm_accept(true);
        self.arm_polls();
        loop {
            let timeout = self.poll_timeout(Instant::now());
            self.enter(submitter, sq, timeout)?;
            let now = Instant::now();
            self.begin_iteration(now);
            self.complete_all(cq, now);
            if self.end_iteration(now) {
                break;
            }
        }
        let open: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for i in open {
            self.close(i);
        }
        let cancel_all = opcode::AsyncCancel2::new(CancelBuilder::any());
        self.ring().submissions.push(cancel_all.build().user_data(tag(OTHER, 0, 0)));
        // The closes and cancellations are only queued: they are submitted here, however little is in flight
        // (an idle client gets its FIN now, not when the process exits), and sends in flight get until the
        // deadline to complete.
        let deadline = Instant::now() + FINAL_REAP;
        loop {
            let now = Instant::now();
            let wait = match self.ring().sends_in_flight {
                0 => Duration::ZERO,
                _ => deadline.saturating_duration_since(now),
            };
            self.enter(submitter, sq, wait)?;
            self.complete_all(cq, now);
            let ring = self.ring();
            if (ring.sends_in_flight == 0 && ring.submissions.is_empty()) || now >= deadline {
                return Ok(());
            }
        }
    }

    /// Submits what was queued and waits for at least one completion, at most `timeout`. When the kernel takes
    /// no more for now (its completion queue overflowed, or it is short of memory), the rest stays queued for the
    /// next iteration, which then does not wait.
    fn enter(&mut self, submitter: &Submitter<'_>, sq: &mut SubmissionQueue<'_>, timeout: Duration) -> io::Result<()> {
        let ring = self.ring.as_mut().expect("set up above");
        let mut pushed = 0;
        for entry in &ring.submissions {
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
        ring.submissions.drain(..pushed);
        sq.sync();
        let timeout = if ring.submissions.is_empty() { timeout } else { Duration::ZERO };
        let timespec = Timespec::from(timeout);
        match submitter.submit_with_args(1, &SubmitArgs::new().timespec(&timespec)) {
            Ok(_) => Ok(()),
            // The timeout, or the kernel busy: the completions are reaped and the rest is submitted next time.
            Err(e) if e.raw_os_error() == Some(libc::ETIME) || busy(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn complete_all(&mut self, cq: &mut CompletionQueue<'_>, now: Instant) {
        cq.sync();
        for cqe in cq {
            let (op, slot, serial) = untag(cqe.user_data());
            let (result, flags) = (cqe.result(), cqe.flags());
            match op {
                ACCEPT_HTTP | ACCEPT_HTTPS => self.accepted(op == ACCEPT_HTTPS, result, flags, now),
                RECEIVE => self.received(slot, serial, result, flags, now),
                SEND => self.sent(slot, serial, result, now),
                WAKE => {
                    self.wake.reset();
                    self.ring().wake_armed &= cqueue::more(flags);
                }
                UDP => {
                    self.ring().udp_armed &= cqueue::more(flags);
                    if result >= 0 {
                        self.receive_datagrams();
                    }
                }
                _ => {}
            }
        }
        for i in std::mem::take(&mut self.ring().starved) {
            self.arm_receive(i);
        }
        self.arm_polls();
    }

    /// The multishot polls of the wake eventfd and of the UDP socket, armed again if they ended.
    fn arm_polls(&mut self) {
        let udp = self.udp.as_ref().map(|udp| udp.socket.as_raw_fd());
        let wake = self.wake.as_raw_fd();
        let ring = self.ring();
        if !ring.wake_armed {
            ring.wake_armed = true;
            let poll = opcode::PollAdd::new(Fd(wake), libc::POLLIN as u32).multi(true);
            ring.submissions.push(poll.build().user_data(tag(WAKE, 0, 0)));
        }
        if let Some(fd) = udp.filter(|_| !ring.udp_armed) {
            ring.udp_armed = true;
            let poll = opcode::PollAdd::new(Fd(fd), libc::POLLIN as u32).multi(true);
            ring.submissions.push(poll.build().user_data(tag(UDP, 0, 0)));
        }
    }

    /// Arms the multishot accept of the HTTP listener or (`https`) the HTTPS one, unless it is armed.
    pub(super) fn arm_accept(&mut self, https: bool) {
        let listener = if https { self.tls_listener.as_ref() } else { self.listener.as_ref() };
        let (Some(listener), Some(ring)) = (listener, self.ring.as_mut()) else {
            return;
        };
        if std::mem::replace(&mut ring.accept_armed[usize::from(https)], true) {
            return;
        }
        let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd())).flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        let op = if https { ACCEPT_HTTPS } else { ACCEPT_HTTP };
        ring.submissions.push(accept.build().user_data(tag(op, 0, 0)));
    }

    fn accepted(&mut self, https: bool, result: i32, flags: u32, now: Instant) {
        let armed = cqueue::more(flags);
        self.ring().accept_armed[usize::from(https)] = armed;
        if result < 0 {
            if result != -libc::ECANCELED {
                // EMFILE and friends: the connection waits in the backlog; housekeeping arms the accept again.
                let error = io::Error::from_raw_os_error(-result);
                tracing::warn!(worker = self.index, error = %error, "accept failed");
            }
            return;
        }
        // SAFETY: an accept's result is a new descriptor that nothing else owns.
        let stream = unsafe { TcpStream::from_raw_fd(result) };
        let listening = if https { self.tls_listener.is_some() } else { self.listener.is_some() };
        // Accepted while the drain ended, or reset before it was seen: dropping it closes it.
        let Ok(peer) = stream.peer_addr().map_err(drop).and_then(|p| listening.then_some(p).ok_or(())) else {
            return;
        };
        if let Some(i) = self.admit(stream, peer.ip(), https, now) {
            let ring = self.ring();
            ring.serial = ring.serial.wrapping_add(1);
            let serial = ring.serial;
            self.conns[i].ring.serial = serial;
            self.arm_receive(i);
        }
        if !armed {
            self.arm_accept(https);
        }
    }

    /// Arms a connection's multishot receive, unless it is armed or its input is not wanted now.
    pub(super) fn arm_receive(&mut self, i: usize) {
        let (Some(conn), Some(ring)) = (self.conns.get_mut(i), self.ring.as_mut()) else {
            return;
        };
        if conn.ring.receiving || !conn.life.wants_input() {
            return;
        }
        conn.ring.receiving = true;
        let receive = opcode::RecvMulti::new(Fd(conn.stream.as_raw_fd()), GROUP);
        ring.submissions.push(receive.build().user_data(tag(RECEIVE, i, conn.ring.serial)));
    }

    fn received(&mut self, i: usize, serial: u32, result: i32, flags: u32, now: Instant) {
        let more = cqueue::more(flags);
        let buffer = cqueue::buffer_select(flags);
        let ring = self.ring.as_mut().expect("set up");
        let conn = match self.conns.get_mut(i) {
            Some(conn) if conn.ring.serial == serial => conn,
            _ => {
                // Of a connection that closed: only its buffer matters.
                if let Some(bid) = buffer {
                    ring.buffers.give_back(bid);
                }
                return;
            }
        };
        conn.ring.receiving &= more;
        match (result, buffer) {
            (1.., Some(bid)) => {
                let (requests, batch) = (&mut self.requests, &mut self.batch);
                let data = ring.buffers.filled(bid, result as usize);
                let taken = conn.take_received(data, READ_STEP, &mut self.plain_buf, now, &mut |conn, data| {
                    requests.process(conn, data, batch)
                });
                ring.buffers.give_back(bid);
                self.after_received(i, taken);
            }
            (0, _) => {
                conn.received_eof();
                self.after_input(i);
            }
            (e, _) if e == -libc::ENOBUFS => ring.starved.push(i),
            // Cancelled when reading paused: armed again only if it was resumed meanwhile.
            (e, _) if e == -libc::ECANCELED => self.arm_receive(i),
            (e, _) => {
                if let Some(bid) = buffer {
                    ring.buffers.give_back(bid);
                }
                self.input_failed(i, &io::Error::from_raw_os_error(-e.min(-1)));
            }
        }
    }

    /// After a connection's input was taken: a pause cancels its receive (its client does not take its
    /// answers: no more input until they went out), an error closes it; else it is armed again if it ended.
    fn after_received(&mut self, i: usize, taken: io::Result<bool>) {
        match taken {
            Err(e) => return self.input_failed(i, &e),
            Ok(true) => {
                add(&self.shared.workers[self.index].read_pauses, 1);
                let (Some(conn), Some(ring)) = (self.conns.get(i), self.ring.as_mut()) else {
                    return;
                };
                if conn.ring.receiving {
                    ring.submissions.push(cancel(tag(RECEIVE, i, conn.ring.serial)));
                }
            }
            Ok(false) => {}
        }
        self.after_input(i);
        self.arm_receive(i);
    }

    /// Reading resumed (its client caught up): what was stashed meanwhile is taken as if read now, then the
    /// receive is armed again.
    pub(super) fn resume_ring(&mut self, i: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        let (stash, eof) = conn.take_stash();
        let (requests, batch) = (&mut self.requests, &mut self.batch);
        let taken = conn.take_received(&stash, READ_STEP, &mut self.plain_buf, now, &mut |conn, data| {
            requests.process(conn, data, batch)
        });
        if eof {
            conn.received_eof();
        }
        self.after_received(i, taken);
    }

    /// Submits committed output of a connection with no send in flight, or, with nothing left to send, moves it
    /// on (it waits, closes, lingers or is read again).
    pub(super) fn send(&mut self, i: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        if conn.sending() {
            return; // its completion sends the rest
        }
        match conn.load_send(now) {
            Err(_) => self.close(i),
            Ok(true) => self.submit_send(i),
            Ok(false) if conn.all_sent() => self.written(i, now),
            Ok(false) => {} // the rest waits for the next group commit (or the end of the TLS handshake)
        }
    }

    /// Queues the send of the connection's send buffer.
    fn submit_send(&mut self, i: usize) {
        let (Some(conn), Some(ring)) = (self.conns.get_mut(i), self.ring.as_mut()) else {
            return;
        };
        let (fd, serial) = (conn.stream.as_raw_fd(), conn.ring.serial);
        let flight = conn.submit_flight();
        ring.sends_in_flight += 1;
        // The buffer stays as it is until the completion (see `enter`'s SAFETY); MSG_NOSIGNAL: a peer that is
        // gone is an EPIPE result, not a signal.
        let send = opcode::Send::new(Fd(fd), flight.as_ptr(), flight.len() as u32).flags(libc::MSG_NOSIGNAL);
        ring.submissions.push(send.build().user_data(tag(SEND, i, serial)));
    }

    fn sent(&mut self, i: usize, serial: u32, result: i32, now: Instant) {
        let ring = self.ring.as_mut().expect("set up");
        ring.sends_in_flight -= 1;
        let conn = match self.conns.get_mut(i) {
            Some(conn) if conn.ring.serial == serial => conn,
            _ => {
                let data = tag(SEND, i, serial);
                if let Some(at) = ring.orphans.iter().position(|(of, _)| *of == data) {
                    let (_, mut buffer) = ring.orphans.swap_remove(at);
                    buffer.completed(); // freed now: the kernel is done with it
                }
                return;
            }
        };
        if result < 0 {
            conn.send_failed();
            return self.close(i); // the peer is gone
        }
        if conn.sent(result as usize, now) {
            self.send(i, now); // what was committed since, or what comes after the last answer
        } else {
            self.submit_send(i); // the rest of a short send
        }
    }

    /// The drain ended: the accepts and the UDP poll are cancelled and the sockets closed.
    pub(super) fn stop_listening_ring(&mut self) {
        let ring = self.ring.as_mut().expect("set up");
        for op in [ACCEPT_HTTP, ACCEPT_HTTPS, UDP] {
            ring.submissions.push(cancel(tag(op, 0, 0)));
        }
        (self.listener, self.tls_listener, self.udp) = (None, None, None);
    }
}
