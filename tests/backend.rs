//! IO_BACKEND: which event loop runs, how `auto` falls back (with the line that says why) when io_uring is
//! forbidden — by a seccomp filter here, as a container runtime's default profile does — and how `uring` refuses
//! to start instead. The rest of the suite runs on both loops (scripts/test.sh).

mod common;

use std::process::Command;

use common::collector::*;
use common::*;

fn backend_metric(collector: &Collector, backend: &str) -> u64 {
    let text = String::from_utf8(get(collector.addr, "/metrics").body).unwrap();
    let line = format!("plutos_io_backend{{backend=\"{backend}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&line)).map_or(0, |v| v.parse().unwrap())
}

/// One event in, a 200 out, and the record shipped after a graceful stop.
fn serves_an_event(collector: Collector, dir: &std::path::Path) -> String {
    assert_eq!(get(collector.addr, "/e?backend=test").status, 200);
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success(), "{stderr}");
    let records = read_records(&dir.join("out"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["raw_data"]["backend"], "test");
    stderr
}

/// The loop asked for runs, says so at start and in /metrics, and serves.
fn runs_when_asked_for(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::spawn(dir.path(), &[("IO_BACKEND", backend)]);
    assert_eq!(backend_metric(&collector, backend), 1);
    let stderr = serves_an_event(collector, dir.path());
    assert!(stderr.contains(&format!("io backend: {backend}")), "{stderr}");
}

#[test]
fn epoll_runs_when_asked_for() {
    runs_when_asked_for("epoll");
}

#[test]
fn uring_runs_when_asked_for_where_the_kernel_allows_it() {
    match plutos::uring::probe() {
        Ok(()) => runs_when_asked_for("uring"),
        Err(why) => prerequisite_missing(&format!("io_uring is not available to this test process: {why}")),
    }
}

#[test]
fn auto_falls_back_to_epoll_with_one_line_when_io_uring_is_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let confine = Confine { forbid_io_uring: true, ..Confine::default() };
    let collector = Collector::spawn_with(dir.path(), &[("IO_BACKEND", "auto")], confine);
    assert_eq!(backend_metric(&collector, "epoll"), 1);
    let stderr = serves_an_event(collector, dir.path());
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("io_uring is not available")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("EPERM"), "the line names why: {}", lines[0]);
    assert!(stderr.contains("io backend: epoll"), "{stderr}");
}

#[test]
fn uring_refuses_to_start_when_io_uring_is_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let confine = Confine { forbid_io_uring: true, ..Confine::default() };
    let collector = Collector::spawn_with(dir.path(), &[("IO_BACKEND", "uring")], confine);
    let (status, stderr) = collector.wait_with_stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("IO_BACKEND=uring: io_uring_setup: EPERM"), "{stderr}");

    // --check-config says the same before a deployment replaces a running collector.
    let mut command = Command::new(env!("CARGO_BIN_EXE_plutos"));
    command.arg("--check-config").env_clear().env("IO_BACKEND", "uring");
    confine.apply(&mut command);
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("IO_BACKEND=uring: io_uring_setup: EPERM"), "{stderr}");
}

/// Clients that send `Connection: close` and hang up as soon as their answer is complete — before the server's
/// own FIN — while new connections keep arriving (browsers and wrk do this). The server half-closes each
/// connection after its answer; a half-close that landed on the wrong socket (a closed connection's descriptor
/// number already reused by the next one) would cut a newer connection's answer off. Every request must get its
/// 200, and every answered event must be stored once.
#[test]
fn clients_that_hang_up_after_their_answer_never_cost_another_its_answer() {
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 400;
    let server = TestServer::start(&["--max-buffer-time-milliseconds", "100"]);
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut failed = Vec::new();
                for r in 0..REQUESTS {
                    let mut client = Client::connect(addr);
                    let request = format!("GET /e?hangup={c}-{r} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                    match client.try_request(request.as_bytes()) {
                        Some(response) if response.status == 200 => {}
                        other => failed.push((r, other.map(|r| r.status))),
                    }
                    // Dropped here: closed at once, before the server's FIN arrives.
                }
                failed
            })
        })
        .collect();
    let failed: Vec<_> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests lost their answer: {:?}",
        failed.len(),
        CLIENTS * REQUESTS,
        &failed[..failed.len().min(5)]
    );
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_eq!(records.len(), CLIENTS * REQUESTS, "every answered event stored once");
}
