//! What the kernel says of a collector's UDP sockets: their receive queue and drop count (/proc/net/udp), and the
//! receive buffer a socket of another process was given (its descriptor borrowed with pidfd_getfd).

use std::os::fd::{FromRawFd, OwnedFd};

/// One IPv4 UDP socket bound to 127.0.0.1 as /proc/net/udp lists it.
struct Row {
    /// Bytes waiting in its receive queue.
    queue: u64,
    /// Datagrams the kernel dropped on it.
    drops: u64,
    inode: u64,
}

fn rows(port: u16) -> Vec<Row> {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<&str>>())
        .filter(|columns| columns.get(1) == Some(&local.as_str()))
        .map(|columns| Row {
            queue: u64::from_str_radix(columns[4].split(':').nth(1).unwrap(), 16).unwrap(),
            drops: columns[12].parse().unwrap(),
            inode: columns[9].parse().unwrap(),
        })
        .collect()
}

/// The receive queue (bytes) and the drop count of the UDP sockets on 127.0.0.1:`port`, summed over the
/// SO_REUSEPORT sockets of that port.
pub fn udp_queue(port: u16) -> (u64, u64) {
    rows(port).iter().fold((0, 0), |(queue, drops), row| (queue + row.queue, drops + row.drops))
}

/// SO_RCVBUF of each UDP socket process `pid` has on 127.0.0.1:`port`, as the kernel set it (twice what it
/// grants for data).
pub fn udp_receive_buffers(pid: u32, port: u16) -> Vec<i32> {
    let inodes: Vec<String> = rows(port).iter().map(|row| format!("socket:[{}]", row.inode)).collect();
    // SAFETY: pidfd_open(2) on our own child; the descriptor it returns is ours.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(pidfd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: a descriptor we were just given and own alone.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let mut buffers = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        if !inodes.iter().any(|inode| target.as_os_str() == inode.as_str()) {
            continue;
        }
        let theirs: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
        // SAFETY: pidfd_getfd(2) duplicates the child's descriptor into this process; the copy is ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, std::os::fd::AsRawFd::as_raw_fd(&pidfd), theirs, 0) };
        assert!(fd >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
        // SAFETY: as above.
        let socket = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        buffers.push(socket2::SockRef::from(&socket).recv_buffer_size().unwrap() as i32);
    }
    buffers
}
