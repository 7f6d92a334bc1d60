//! One listening socket per worker, all bound to the same address with SO_REUSEPORT: the kernel spreads
//! incoming connections over them, so workers never share an accept queue or a lock. Bound before any
//! worker starts, so bind errors are reported at once and tests can bind port 0 and learn the port.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;

/// The bound sockets: one per worker for HTTP (`PORT`), for HTTPS (`TLS_PORT`), for UDP (`UDP_PORT`) and for
/// QUIC (`QUIC_PORT`), each kind possibly absent.
pub struct Listeners {
    pub(crate) http: Vec<TcpListener>,
    pub(crate) https: Vec<TcpListener>,
    pub(crate) udp: Vec<UdpSocket>,
    pub(crate) quic: Vec<UdpSocket>,
    workers: usize,
}

/// One worker's sockets.
pub(crate) struct WorkerSockets {
    pub http: Option<TcpListener>,
    pub https: Option<TcpListener>,
    pub udp: Option<UdpSocket>,
    pub quic: Option<UdpSocket>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: io::Error,
}

impl Listeners {
    /// The HTTP listeners' address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.http.first().ok_or_else(|| io::Error::other("no HTTP listener (PORT=off)"))?.local_addr()
    }

    /// The HTTPS listeners' address.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.https.first().and_then(|l| l.local_addr().ok())
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The UDP sockets' address.
    pub fn udp_local_addr(&self) -> Option<SocketAddr> {
        self.udp.first().and_then(|s| s.local_addr().ok())
    }

    /// The QUIC sockets' address.
    pub fn quic_local_addr(&self) -> Option<SocketAddr> {
        self.quic.first().and_then(|s| s.local_addr().ok())
    }

    /// SO_RCVBUF of the UDP sockets as the kernel set it (twice what it grants for data; capped by
    /// net.core.rmem_max).
    pub fn udp_receive_buffer(&self) -> Option<usize> {
        self.udp.first().and_then(|s| socket2::SockRef::from(s).recv_buffer_size().ok())
    }

    /// The same of the QUIC sockets.
    pub fn quic_receive_buffer(&self) -> Option<usize> {
        self.quic.first().and_then(|s| socket2::SockRef::from(s).recv_buffer_size().ok())
    }

    /// Each worker's sockets.
    pub(crate) fn into_workers(self) -> impl Iterator<Item = WorkerSockets> {
        let (mut http, mut https) = (self.http.into_iter(), self.https.into_iter());
        let (mut udp, mut quic) = (self.udp.into_iter(), self.quic.into_iter());
        (0..self.workers).map(move |_| WorkerSockets {
            http: http.next(),
            https: https.next(),
            udp: udp.next(),
            quic: quic.next(),
        })
    }
}

/// Binds `config.workers` SO_REUSEPORT sockets on each address configured (`PORT`, `TLS_PORT`, `UDP_PORT`,
/// `QUIC_PORT`).
/// Port 0 picks one port, shared by all of a kind.
pub fn bind(config: &Config) -> Result<Listeners, BindError> {
    let workers = config.workers;
    fn group<S>(
        addr: Option<SocketAddr>,
        workers: usize,
        bind_one: impl Fn(SocketAddr) -> io::Result<S>,
        local: impl Fn(&S) -> io::Result<SocketAddr>,
    ) -> Result<Vec<S>, BindError> {
        let Some(addr) = addr else { return Ok(Vec::new()) };
        let error = |source| BindError { addr, source };
        let first = bind_one(addr).map_err(error)?;
        let addr = local(&first).map_err(error)?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(bind_one(addr).map_err(error)?);
        }
        Ok(sockets)
    }
    let tcp_local = |l: &TcpListener| l.local_addr();
    let https = config.tls.as_ref().map(|tls| tls.listen);
    let udp = config.udp.map(|udp| udp.listen);
    let udp_one = |addr| bind_udp(addr, config.udp.and_then(|u| u.rcvbuf));
    Ok(Listeners {
        http: group(config.listen, workers, bind_one, tcp_local)?,
        https: group(https, workers, bind_one, tcp_local)?,
        udp: group(udp, workers, udp_one, |s: &UdpSocket| s.local_addr())?,
        quic: group(
            config.quic.map(|q| q.listen),
            workers,
            |addr| bind_udp(addr, config.quic.and_then(|q| q.rcvbuf)),
            |s: &UdpSocket| s.local_addr(),
        )?,
        workers,
    })
}

/// A UDP socket with SO_REUSEPORT, the receive buffer asked for, and SO_RXQ_OVFL: each datagram then carries
/// the count of datagrams the kernel dropped on this socket so far (its queue was full).
fn bind_udp(addr: SocketAddr, rcvbuf: Option<usize>) -> io::Result<UdpSocket> {
    use std::os::fd::AsRawFd;
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    if let Some(bytes) = rcvbuf {
        socket.set_recv_buffer_size(bytes)?;
    }
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int from `on`, which lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A TCP listener with SO_REUSEPORT and TCP_NODELAY: on Linux an accepted socket inherits the listener's
/// TCP_NODELAY, so neither event loop sets it per connection (a `setsockopt` saved on every accept) and both
/// send small answers at once instead of holding them for Nagle's algorithm.
fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// CPU ids of the process's affinity mask (taskset, systemd CPUAffinity).
pub fn available_cpus() -> Vec<usize> {
    core_affinity::get_core_ids().map(|ids| ids.into_iter().map(|c| c.id).collect()).unwrap_or_default()
}

/// Raises the soft descriptor limit to the hard one (as Go does at start), so the default 1024 does not cap
/// connections long before MAX_CONNECTIONS. Returns the soft limit in force.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_connections_have_tcp_nodelay_from_the_listener() {
        let listener = bind_one("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // connect(2) on loopback returns once the handshake is done: the connection waits in the accept queue.
        let (accepted, _) = listener.accept().expect("a connection in the accept queue");
        assert!(accepted.nodelay().unwrap(), "inherited from the listener, as both event loops rely on");
    }
}
