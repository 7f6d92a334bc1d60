//! A UDP relay between a QUIC client and plutos, on loopback, that misbehaves as a network does: it drops and
//! reorders a share of the datagrams (a seeded generator, so a run is repeatable), and it can move the client to
//! a new source port every few datagrams (NAT rebinding: plutos sees the client's address change, and the
//! kernel's SO_REUSEPORT hash may take its datagrams to another worker).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

#[derive(Debug, Clone, Copy, Default)]
pub struct Misbehaviour {
    /// Datagrams dropped, per thousand, each way.
    pub drop_per_mille: u32,
    /// Datagrams held back and sent after the next one, per thousand, each way.
    pub reorder_per_mille: u32,
    /// A new upstream socket (source port) after this many datagrams from the client.
    pub rebind_every: Option<u64>,
    pub seed: u64,
}

pub struct Relay {
    /// Where the client sends.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    rebinds: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn start(server: SocketAddr, misbehaviour: Misbehaviour) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let rebinds = Arc::new(AtomicU64::new(0));
        let (stop_, rebinds_) = (stop.clone(), rebinds.clone());
        let handle = std::thread::spawn(move || run(front, server, misbehaviour, &stop_, &rebinds_));
        Relay { addr, stop, rebinds, handle: Some(handle) }
    }

    /// Times the client's source port changed.
    pub fn rebinds(&self) -> u64 {
        self.rebinds.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// xorshift64*: enough to pick which datagrams misbehave, repeatably.
struct Dice(u64);

impl Dice {
    fn per_mille(&mut self, share: u32) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % 1000 < u64::from(share)
    }
}

/// One direction's held-back datagram.
type Held = Option<(Vec<u8>, SocketAddr)>;

fn run(front: UdpSocket, server: SocketAddr, m: Misbehaviour, stop: &AtomicBool, rebinds: &AtomicU64) {
    let mut upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut client: Option<SocketAddr> = None;
    let mut dice = Dice(m.seed | 1);
    let (mut held_up, mut held_down): (Held, Held) = (None, None);
    let mut from_client = 0u64;
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [
            libc::pollfd { fd: front.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: upstream.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: poll reads and writes the two pollfds of the live array, no more.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, 20) };
        if ready <= 0 {
            continue;
        }
        if fds[0].revents & libc::POLLIN != 0
            && let Ok((n, from)) = front.recv_from(&mut buf)
        {
            client = Some(from);
            from_client += 1;
            if m.rebind_every.is_some_and(|every| from_client.is_multiple_of(every)) {
                upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
                rebinds.fetch_add(1, Ordering::Relaxed);
            }
            pass(&upstream, &buf[..n], server, &m, &mut dice, &mut held_up);
        }
        if fds[1].revents & libc::POLLIN != 0
            && let Ok((n, _)) = upstream.recv_from(&mut buf)
            && let Some(client) = client
        {
            pass(&front, &buf[..n], client, &m, &mut dice, &mut held_down);
        }
    }
}

/// Sends `datagram` to `to` — or drops it, or holds it back until the next one of its direction.
fn pass(socket: &UdpSocket, datagram: &[u8], to: SocketAddr, m: &Misbehaviour, dice: &mut Dice, held: &mut Held) {
    if dice.per_mille(m.drop_per_mille) {
        return;
    }
    if held.is_none() && dice.per_mille(m.reorder_per_mille) {
        *held = Some((datagram.to_vec(), to));
        return;
    }
    let _ = socket.send_to(datagram, to);
    if let Some((late, to)) = held.take() {
        let _ = socket.send_to(&late, to);
    }
}
