//! The datagrams a worker's QUIC connections send, gathered and sent with one `sendmmsg` per batch; a transmit
//! of several equal datagrams (quinn-proto's segmentation offload) goes as one message with `UDP_SEGMENT`, so
//! the kernel cuts it (GSO). A send the kernel refuses (its buffer is full) is a lost datagram, which QUIC's loss
//! recovery resends: the loop never waits for room to write.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::SockAddr;

/// Messages per `sendmmsg`.
pub const BATCH: usize = 32;
/// Datagrams quinn-proto may put in one transmit when the kernel offloads segmentation.
pub const GSO_SEGMENTS: usize = 10;
/// `CMSG_SPACE(sizeof(u16))` on 64-bit Linux, 8-byte aligned.
type Control = [u64; 3];

struct Queued {
    to: SockAddr,
    segment: Option<u16>,
}

pub struct Sends {
    /// One buffer per message of a batch, reused.
    buffers: Vec<Vec<u8>>,
    queued: Vec<Queued>,
    /// UDP_SEGMENT works on this socket (cleared after the kernel refused it once).
    gso: bool,
    /// Datagrams sent, and those the kernel refused.
    pub sent: u64,
    pub dropped: u64,
}

impl Sends {
    pub fn new() -> Sends {
        Sends { buffers: vec![Vec::new(); BATCH], queued: Vec::with_capacity(BATCH), gso: true, sent: 0, dropped: 0 }
    }

    /// Datagrams one transmit may hold.
    pub fn segments(&self) -> usize {
        if self.gso { GSO_SEGMENTS } else { 1 }
    }

    /// The buffer the next transmit is written into (empty).
    pub fn next_buffer(&mut self) -> &mut Vec<u8> {
        let buffer = &mut self.buffers[self.queued.len()];
        buffer.clear();
        buffer
    }

    /// The transmit written into `next_buffer` is queued; a full batch is sent.
    pub fn queue(&mut self, fd: RawFd, to: SocketAddr, size: usize, segment: Option<usize>) {
        let at = self.queued.len();
        self.buffers[at].truncate(size);
        let segment = segment.filter(|&s| s < size).and_then(|s| u16::try_from(s).ok());
        self.queued.push(Queued { to: SockAddr::from(to), segment });
        if self.queued.len() == BATCH {
            self.flush(fd);
        }
    }

    /// Sends what is queued.
    pub fn flush(&mut self, fd: RawFd) {
        let mut from = 0;
        while from < self.queued.len() {
            match self.send(fd, from) {
                Ok(n) => from += n,
                Err(e) => {
                    // The first message failed: dropped (a full buffer, an unreachable peer), or GSO refused.
                    let message = &self.queued[from];
                    if message.segment.is_some() && e.raw_os_error() == Some(libc::EIO) && self.gso {
                        tracing::warn!(error = %e, "UDP segmentation offload refused; sending datagrams one by one");
                        self.gso = false;
                    }
                    self.dropped += self.datagrams(from);
                    from += 1;
                }
            }
        }
        self.queued.clear();
    }

    fn datagrams(&self, i: usize) -> u64 {
        match self.queued[i].segment {
            Some(segment) => self.buffers[i].len().div_ceil(usize::from(segment)) as u64,
            None => 1,
        }
    }

    /// One `sendmmsg` of the messages from `from` on; returns how many went.
    fn send(&mut self, fd: RawFd, from: usize) -> io::Result<usize> {
        let count = self.queued.len() - from;
        // SAFETY: iovec, mmsghdr and the control buffers are plain old data; zeroes are valid before the fields
        // are set below.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let mut controls: [Control; BATCH] = [[0; 3]; BATCH];
        for k in 0..count {
            let message = &self.queued[from + k];
            let buffer = &mut self.buffers[from + k];
            iovecs[k] = libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: buffer.len() };
            let header = &mut headers[k].msg_hdr;
            header.msg_name = message.to.as_ptr() as *mut libc::c_void;
            header.msg_namelen = message.to.len();
            header.msg_iov = &mut iovecs[k];
            header.msg_iovlen = 1;
            if let Some(segment) = message.segment {
                header.msg_control = controls[k].as_mut_ptr().cast();
                header.msg_controllen = size_of::<Control>();
                // SAFETY: the control buffer holds CMSG_SPACE(2) bytes; CMSG_FIRSTHDR points into it.
                unsafe {
                    let cmsg = libc::CMSG_FIRSTHDR(header);
                    (*cmsg).cmsg_level = libc::SOL_UDP;
                    (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
                    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
                    header.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as u32) as usize;
                }
            }
        }
        // SAFETY: every pointer in `headers` is to this struct's buffers and addresses or to the arrays above,
        // all alive and not otherwise borrowed until the call returns.
        let n = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), count as libc::c_uint, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        for k in 0..n {
            self.sent += self.datagrams(from + k);
        }
        Ok(n)
    }
}
