//! One listening socket per worker, all bound to the same address with SO_REUSEPORT: the kernel spreads
//! incoming connections over them, so workers never share an accept queue or a lock. Bound before any
//! worker starts, so bind errors are reported at once and tests can bind port 0 and learn the port.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// The bound listeners, one per worker.
pub struct Listeners {
    pub(crate) sockets: Vec<TcpListener>,
}

impl Listeners {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sockets[0].local_addr()
    }
}

/// Binds `count` SO_REUSEPORT listeners on `addr`. Port 0 picks one port, shared by all of them.
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Listeners> {
    let first = bind_one(addr)?;
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_one(addr)?);
    }
    Ok(Listeners { sockets })
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
