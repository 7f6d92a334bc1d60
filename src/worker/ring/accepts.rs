//! The io_uring loop's accepts: a few single-shot accepts armed per listener, each with an address slot the
//! kernel fills with the peer's address, so a connection's address comes with its completion (a multishot accept
//! cannot return one: it cost a `getpeername` per connection). A slot is armed again as soon as its completion
//! was handled, in the same `io_uring_enter` as the rest of the iteration.

use std::mem::ManuallyDrop;
use std::net::SocketAddr;

use io_uring::opcode;
use io_uring::squeue::Entry;
use io_uring::types::Fd;

use super::tag::{ACCEPT_HTTP, ACCEPT_HTTPS, cancel, tag};
use crate::event::record::Transport;
use crate::worker::udp::address;

/// Accepts armed per listener at a time.
pub const PER_LISTENER: usize = 8;

/// Where the kernel writes one accept's peer address.
#[derive(Clone, Copy)]
struct Slot {
    addr: libc::sockaddr_storage,
    len: libc::socklen_t,
    armed: bool,
}

/// The address slots of both listeners' accepts (HTTP first, then HTTPS), boxed so they never move while the
/// kernel may write into them.
pub struct Accepts {
    slots: ManuallyDrop<Box<[Slot; 2 * PER_LISTENER]>>,
}

impl Default for Accepts {
    fn default() -> Accepts {
        // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid (unspecified) address.
        let addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        Accepts { slots: ManuallyDrop::new(Box::new([Slot { addr, len: 0, armed: false }; 2 * PER_LISTENER])) }
    }
}

fn first_slot(transport: Transport) -> usize {
    if transport == Transport::Https { PER_LISTENER } else { 0 }
}

fn op(transport: Transport) -> u8 {
    if transport == Transport::Https { ACCEPT_HTTPS } else { ACCEPT_HTTP }
}

impl Accepts {
    /// The accepts of `transport`'s listener (`fd`) that are not armed, armed: their entries go to `into`.
    pub fn arm(&mut self, transport: Transport, fd: i32, into: &mut Vec<Entry>) {
        let first = first_slot(transport);
        for k in first..first + PER_LISTENER {
            let slot = &mut self.slots[k];
            if slot.armed {
                continue;
            }
            slot.armed = true;
            slot.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let addr = (&mut slot.addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
            let accept =
                opcode::Accept::new(Fd(fd), addr, &mut slot.len).flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
            into.push(accept.build().user_data(tag(op(transport), k, 0)));
        }
    }

    /// Accept `k` completed: the peer's address it brought (none for a failed one). It is not armed any more.
    pub fn completed(&mut self, k: usize, succeeded: bool) -> Option<SocketAddr> {
        let slot = self.slots.get_mut(k)?;
        slot.armed = false;
        succeeded.then(|| address(&slot.addr)).flatten()
    }

    /// Cancellations of every accept armed (the drain ended).
    pub fn cancel_all(&self, into: &mut Vec<Entry>) {
        for (k, _) in self.slots.iter().enumerate().filter(|(_, slot)| slot.armed) {
            let transport = if k >= PER_LISTENER { Transport::Https } else { Transport::Http };
            into.push(cancel(tag(op(transport), k, 0)));
        }
    }

    /// Whether an accept is armed (its slot may still be written by the kernel).
    pub fn any_armed(&self) -> bool {
        self.slots.iter().any(|slot| slot.armed)
    }
}

impl Drop for Accepts {
    /// Slots the kernel may still write into (the loop ended before their accepts completed) are left to it,
    /// never freed, as a send's buffer is.
    fn drop(&mut self) {
        if !self.any_armed() {
            // SAFETY: dropped once, here, and `slots` is not used after.
            unsafe { ManuallyDrop::drop(&mut self.slots) };
        }
    }
}
