//! A worker's UDP socket (`UDP_PORT`, SO_REUSEPORT like its listeners): datagrams are taken `SLOTS` at a time
//! with one `recvmmsg`, each with its sender's address, whether it was truncated, and the kernel's count of the
//! datagrams it dropped on this socket so far (SO_RXQ_OVFL), which is how plutos sees the loss it cannot
//! answer for. `worker/datagrams.rs` takes them into the iteration's batch, on either event loop.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use mio::net::UdpSocket;

/// Datagrams per `recvmmsg`.
pub const SLOTS: usize = 32;
/// Room for one control message holding a u32 (`CMSG_SPACE(4)` is 24 on 64-bit Linux), 8-byte aligned.
type Control = [u64; 4];

/// One datagram as received.
pub struct Datagram<'a> {
    pub from: SocketAddr,
    /// `None`: larger than `UDP_MAX_DATAGRAM_BYTES`, cut by the kernel.
    pub payload: Option<&'a [u8]>,
}

pub struct Datagrams {
    pub socket: UdpSocket,
    max: usize,
    /// `SLOTS` buffers of `max` bytes, one per datagram of a batch.
    buffers: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    controls: Vec<Control>,
    /// The kernel's drop count for this socket, as the last datagram carried it.
    pub kernel_drops: u32,
    /// Datagrams cut by the kernel (larger than a buffer) since `take_truncated`.
    truncated: u64,
}

impl Datagrams {
    pub fn new(socket: UdpSocket, max: usize) -> Datagrams {
        Datagrams {
            socket,
            max,
            buffers: vec![0; SLOTS * max],
            // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid (unspecified) address.
            names: vec![unsafe { zeroed() }; SLOTS],
            controls: vec![[0; 4]; SLOTS],
            kernel_drops: 0,
            truncated: 0,
        }
    }

    /// One `recvmmsg`: hands each datagram to `each` and returns how many there were (0: none waiting).
    pub fn receive(&mut self, mut each: impl FnMut(Datagram<'_>)) -> io::Result<usize> {
        // The headers point into this struct's buffers; they are built for each call (so the struct holds no
        // raw pointer and can move to the worker's thread) and live only during it.
        // SAFETY: iovec and mmsghdr are plain old data; zeroes are valid before the fields are set below.
        let mut iovecs: [libc::iovec; SLOTS] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; SLOTS] = unsafe { zeroed() };
        let base = self.buffers.as_mut_ptr();
        for i in 0..SLOTS {
            // SAFETY: `i * max` is within `buffers`, which holds SLOTS * max bytes.
            iovecs[i] = libc::iovec { iov_base: unsafe { base.add(i * self.max) }.cast(), iov_len: self.max };
            let header = &mut headers[i].msg_hdr;
            header.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &mut iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = self.controls[i].as_mut_ptr().cast();
            header.msg_controllen = size_of::<Control>();
        }
        // SAFETY: every pointer in `headers` is to a buffer of this struct or to `iovecs`, all alive and not
        // otherwise borrowed until the call returns; the kernel writes at most the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                headers.as_mut_ptr(),
                SLOTS as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (i, header) in headers.iter().enumerate().take(n) {
            if let Some(drops) = dropped_so_far(&header.msg_hdr) {
                self.kernel_drops = drops;
            }
            let Some(from) = address(&self.names[i]) else { continue };
            let truncated = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.truncated += u64::from(truncated);
            let len = (header.msg_len as usize).min(self.max);
            let payload = (!truncated).then(|| &self.buffers[i * self.max..i * self.max + len]);
            each(Datagram { from, payload });
        }
        Ok(n)
    }
}

impl Datagrams {
    /// Datagrams received truncated since the last call.
    pub fn take_truncated(&mut self) -> u64 {
        std::mem::take(&mut self.truncated)
    }
}

/// The SO_RXQ_OVFL count a received datagram carries.
fn dropped_so_far(header: &libc::msghdr) -> Option<u32> {
    // SAFETY: the kernel filled `msg_control` up to `msg_controllen`; CMSG_FIRSTHDR/NXTHDR stay within it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>()));
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// The address a `sockaddr_storage` the kernel filled holds (of a datagram's sender, of an accepted peer).
pub(crate) fn address(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large and aligned enough for.
            let v4 = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(v4.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(v6.sin6_port), 0, v6.sin6_scope_id)))
        }
        _ => None,
    }
}
