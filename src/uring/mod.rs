//! io_uring as plutos uses it, shared by the worker's `IO_BACKEND=uring` loop and `examples/floor_uring.rs`:
//! the ring one pinned thread drives alone (`SINGLE_ISSUER | DEFER_TASKRUN`, `NO_SQARRAY` where the kernel has
//! it, its fd registered), the probe `IO_BACKEND=auto` runs before choosing it, and the provided-buffer ring
//! multishot receives take their input buffers from (`buffers`).

pub mod buffers;

use std::io;

use io_uring::{IoUring, Probe, opcode};

/// Builds a ring of `entries` submissions for the calling thread, which must be the only one to submit to it
/// (completions then run only when it enters the kernel, in its own time). The completion queue is `cq_factor`
/// times larger: multishot requests post many completions each.
pub fn ring(entries: u32, cq_factor: u32) -> io::Result<IoUring> {
    let build = |no_sqarray: bool| {
        let mut builder = IoUring::builder();
        builder.setup_single_issuer().setup_defer_taskrun().setup_cqsize(entries * cq_factor).setup_submit_all();
        if no_sqarray {
            builder.setup_no_sqarray();
        }
        builder.build(entries)
    };
    // NO_SQARRAY (6.6) saves an indirection per submission; an older kernel refuses it with EINVAL.
    let ring = match build(true) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => build(false)?,
        other => other?,
    };
    Ok(ring)
}

/// The opcodes the worker's loop submits, by name, for the probe's message.
const NEEDED: [(u8, &str); 6] = [
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::RecvMulti::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Close::CODE, "CLOSE"),
];

/// Whether this process can run the uring loop here; the error names why not (for `IO_BACKEND=auto`'s line).
/// Sets up a ring like a worker's, checks each opcode it submits, and registers a buffer ring.
pub fn probe() -> Result<(), String> {
    let ring = ring(8, 4).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSYS) => "io_uring_setup: ENOSYS (the kernel has no io_uring)".to_string(),
        Some(libc::EPERM) => {
            "io_uring_setup: EPERM (kernel.io_uring_disabled, or a seccomp filter forbids it)".to_string()
        }
        _ => format!("io_uring_setup with SINGLE_ISSUER|DEFER_TASKRUN: {e}"),
    })?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| format!("IORING_REGISTER_PROBE: {e}"))?;
    if let Some((_, name)) = NEEDED.iter().find(|(code, _)| !probe.is_supported(*code)) {
        return Err(format!("the kernel lacks the io_uring opcode {name}"));
    }
    let submitter = ring.submitter();
    let buffers = buffers::BufRing::new(&submitter, 0, 8, 64).map_err(|e| format!("buffer ring registration: {e}"))?;
    buffers.unregister(&submitter).map_err(|e| format!("buffer ring unregistration: {e}"))?;
    Ok(())
}
