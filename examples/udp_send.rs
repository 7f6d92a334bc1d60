//! The UDP benchmark's sender (bench/udp.py): 200-byte JSON datagrams to ADDR at RATE per second (0: as fast
//! as it can) for SECONDS, 32 per `sendmmsg`, paced per batch. Prints `SENT n SECONDS s`.
//!
//! `cargo run --release --example udp_send -- 127.0.0.1:8125 200000 10`

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const BATCH: usize = 32;
const SIZE: usize = 200;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = args.get(1).and_then(|a| a.parse().ok()).expect("usage: udp_send ADDR RATE SECONDS");
    let rate: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(addr).unwrap();
    let mut datagrams = vec![[0u8; SIZE]; BATCH];
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut sent = 0u64;
    while Instant::now() < until {
        for (i, datagram) in datagrams.iter_mut().enumerate() {
            fill(datagram, sent + i as u64);
        }
        let mut iovecs: Vec<libc::iovec> =
            datagrams.iter_mut().map(|d| libc::iovec { iov_base: d.as_mut_ptr().cast(), iov_len: SIZE }).collect();
        let mut headers: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .map(|iov| {
                // SAFETY: an all-zero mmsghdr is valid; it then points at one iovec of `iovecs`.
                let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                header.msg_hdr.msg_iov = iov;
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        // SAFETY: the headers and the buffers they point to live until the call returns; the socket is connected.
        let n = unsafe { libc::sendmmsg(socket.as_raw_fd(), headers.as_mut_ptr(), BATCH as libc::c_uint, 0) };
        if n > 0 {
            sent += n as u64;
        }
        if rate > 0 {
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }
    println!("SENT {sent} SECONDS {:.3}", start.elapsed().as_secs_f64());
}

/// A JSON event of exactly `SIZE` bytes: `{"id":N,"kind":"bench","pad":"xxx…"}`.
fn fill(datagram: &mut [u8; SIZE], n: u64) {
    let head = format!("{{\"id\":{n},\"kind\":\"bench\",\"pad\":\"");
    datagram[..head.len()].copy_from_slice(head.as_bytes());
    datagram[head.len()..SIZE - 2].fill(b'x');
    datagram[SIZE - 2..].copy_from_slice(b"\"}");
}
