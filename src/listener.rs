//! One listening socket per worker, all bound to the same address with SO_REUSEPORT: the kernel spreads
//! incoming connections over them, so workers never share an accept queue or a lock. Bound before any
//! worker starts, so bind errors are reported at once and tests can bind port 0 and learn the port.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// The bound listeners: one per worker for HTTP (`PORT`) and one per worker for HTTPS (`TLS_PORT`), either
/// of them possibly absent.
pub struct Listeners {
    pub(crate) http: Vec<TcpListener>,
    pub(crate) https: Vec<TcpListener>,
    workers: usize,
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

    /// Each worker's HTTP and HTTPS listener.
    pub(crate) fn into_workers(self) -> impl Iterator<Item = (Option<TcpListener>, Option<TcpListener>)> {
        let (mut http, mut https) = (self.http.into_iter(), self.https.into_iter());
        (0..self.workers).map(move |_| (http.next(), https.next()))
    }
}

/// Binds `workers` SO_REUSEPORT listeners on each address given. Port 0 picks one port, shared by all of them.
pub fn bind(http: Option<SocketAddr>, https: Option<SocketAddr>, workers: usize) -> Result<Listeners, BindError> {
    let group = |addr: Option<SocketAddr>| -> Result<Vec<TcpListener>, BindError> {
        let Some(addr) = addr else { return Ok(Vec::new()) };
        let error = |source| BindError { addr, source };
        let first = bind_one(addr).map_err(error)?;
        let addr = first.local_addr().map_err(error)?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(bind_one(addr).map_err(error)?);
        }
        Ok(sockets)
    };
    Ok(Listeners { http: group(http)?, https: group(https)?, workers })
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
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
