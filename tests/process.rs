//! The real binary under load (SIGKILL trials: tests/crash.rs): SIGTERM drains and exits
//! 0 with nothing acknowledged missing, and a sink outage delays shipping without losing or refusing events.

mod common;

use std::io::Read;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Instant;

use common::collector::*;
use common::*;

#[test]
fn sigterm_under_load_drains_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::spawn(dir.path(), &[("DRAIN_SECONDS", "3")]);
    let addr = collector.addr;
    let load = Load::start(addr, 4, "drain");
    load.wait_for(500);
    collector.signal(libc::SIGTERM);
    // /health turns 503 while ingest goes on.
    wait_until("/health to answer 503", || get(addr, "/health").status == 503);
    let during_drain = load.count.load(Ordering::Relaxed);
    wait_until("ingest during the drain", || load.count.load(Ordering::Relaxed) > during_drain + 50);
    assert!(collector.wait().success(), "exit 0");
    let acked = load.finish();
    assert_all_shipped(&acked, &dir.path().join("out"));
}

#[test]
fn sink_outage_keeps_acking_and_ships_once_the_sink_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // The sink root is a plain file: every upload fails until it is replaced by a directory.
    let out = dir.path().join("out");
    std::fs::write(&out, b"not a directory").unwrap();
    let server = TestServer::start_in(dir, &["--max-buffer-time-milliseconds", "50", "--upload-backoff-max-ms", "200"]);
    let mut client = server.client();
    for i in 0..30 {
        assert_eq!(client.request(format!("GET /e?id=outage-{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status, 200);
    }
    wait_until("failed uploads", || server.metric("plutos_upload_failures_total{kind=\"retryable\"}") >= 2);
    assert_eq!(server.metric("plutos_events_shipped_total"), 0);
    assert!(std::fs::read_dir(server.spool_dir().join("sealed")).unwrap().count() > 0, "chunks wait in the spool");
    std::fs::remove_file(&out).unwrap();
    wait_until("shipping after the outage", || server.metric("plutos_events_shipped_total") == 30);
    let dir = server.stop();
    let ids = shipped_ids(&dir.path().join("out"));
    assert_eq!(ids, (0..30).map(|i| format!("outage-{i}")).collect());
}

#[test]
fn failed_spool_write_answers_503_and_stores_nothing_of_that_request() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("WORKERS", "1"), ("COMPRESSION_TYPE", "none"), ("MAX_BUFFER_TIME_SECONDS", "3600")];
    let collector =
        Collector::spawn_with(dir.path(), &env, Confine { max_file_bytes: Some(32 * 1024), ..Confine::default() });
    let mut client = Client::connect(collector.addr);
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for i in 0.. {
        assert!(start.elapsed() < DEADLINE, "no 503 then 200 within the deadline");
        let id = format!("full-{i}");
        let raw = format!("GET /e?id={id} HTTP/1.1\r\nHost: t\r\n\r\n");
        match client.try_request(raw.as_bytes()) {
            Some(r) if r.status == 200 => {
                acked.push(id);
                if !refused.is_empty() {
                    break; // ingest works again after the failed write
                }
            }
            Some(r) => {
                assert_eq!(r.status, 503, "{}", r.text());
                assert_eq!(r.header("retry-after"), Some("1"));
                refused.push(id);
            }
            None => client = Client::connect(collector.addr),
        }
    }
    assert!(acked.len() > 50 && !refused.is_empty());
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let shipped = shipped_ids(&dir.path().join("out"));
    assert_all_shipped(&acked, &dir.path().join("out"));
    let stored: Vec<&String> = refused.iter().filter(|id| shipped.contains(*id)).collect();
    assert!(stored.is_empty(), "503'd events were stored: {stored:?}");
}

#[test]
fn a_second_signal_exits_at_once_and_the_next_start_ships_what_was_acked() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::spawn(dir.path(), &[("DRAIN_SECONDS", "300")]);
    let mut client = Client::connect(collector.addr);
    for i in 0..20 {
        assert_eq!(client.request(format!("GET /e?id=twice-{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status, 200);
    }
    collector.signal(libc::SIGTERM);
    wait_until("/health to answer 503", || get(collector.addr, "/health").status == 503);
    collector.signal(libc::SIGTERM);
    let status = collector.wait(); // well before the 300 s drain
    assert_eq!(status.code(), Some(1));
    let restarted = Collector::spawn(dir.path(), &[]);
    restarted.signal(libc::SIGTERM);
    assert!(restarted.wait().success());
    let acked: Vec<String> = (0..20).map(|i| format!("twice-{i}")).collect();
    assert_all_shipped(&acked, &dir.path().join("out"));
}

/// At the end of the drain an idle keep-alive connection is closed at once (its client sees the FIN and
/// retries elsewhere), also while a sink that cannot take chunks keeps the uploader, and so the process, busy
/// until the shutdown timeout. On both event loops: the io_uring loop must submit its last closes.
#[test]
fn idle_keep_alive_connections_get_their_fin_at_the_drain_end_while_the_sink_is_down() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("out"), b"not a directory").unwrap(); // the file sink cannot ship
    let mut collector = Collector::spawn(dir.path(), &[("SHUTDOWN_TIMEOUT_SECONDS", "300")]);
    let mut idle = Client::connect(collector.addr);
    assert_eq!(idle.request(b"GET /e?id=before-fin HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    collector.signal(libc::SIGTERM);
    let mut rest = Vec::new();
    let read = idle.stream().read_to_end(&mut rest);
    assert!(matches!(read, Ok(0)), "the server closed the idle connection: {read:?}");
    assert!(collector.child_running(), "the FIN came while the uploader still tried the sink");
    collector.signal(libc::SIGTERM); // a second signal: exit now, the event stays in the spool
    assert_eq!(collector.wait().code(), Some(1));
    std::fs::remove_file(dir.path().join("out")).unwrap();
    let restarted = Collector::spawn(dir.path(), &[]);
    restarted.signal(libc::SIGTERM);
    assert!(restarted.wait().success());
    assert_all_shipped(&["before-fin".to_string()], &dir.path().join("out"));
}

#[test]
fn configuration_and_listen_errors_are_one_clear_line() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let output = Command::new(env!("CARGO_BIN_EXE_plutos"))
            .env_clear()
            .envs(env.iter().copied())
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, stderr, _) = run(&[], &[("WORKERS", "zero")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("WORKERS") && stderr.trim().lines().count() == 1, "{stderr}");
    let (code, stderr, _) = run(&["--fsync", "sometimes"], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("FSYNC") && stderr.trim().lines().count() == 1, "{stderr}");
    let (code, stderr, _) = run(&["--no-such-flag"], &[]);
    assert_eq!((code, stderr.trim().lines().count()), (Some(2), 1), "{stderr}");
    let (code, _, stdout) = run(&["--check-config"], &[("PORT", ":9999"), ("COMPRESSION_TYPE", "zstd")]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("configuration ok"), "{stdout}");
    // The KAFKA_PRODUCER_* variables reach the configuration too: one that sets an owned property is refused.
    let kafka = [("DRIVER", "kafka"), ("KAFKA_BROKERS", "127.0.0.1:9"), ("KAFKA_TOPIC", "t")];
    let (code, stderr, _) = run(&["--check-config"], &[&kafka[..], &[("KAFKA_PRODUCER_ACKS", "1")]].concat());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("KAFKA_PRODUCER_ACKS sets acks") && stderr.trim().lines().count() == 1, "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (code, stderr, _) = run(&[], &[("PORT", port.as_str()), ("SPOOL_DIR", spool.to_str().unwrap())]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot listen on") && stderr.contains(&port), "{stderr}");
}

#[test]
fn systemd_notify_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let notify_socket = socket_path.to_str().unwrap();
    let collector = Collector::spawn(dir.path(), &[("NOTIFY_SOCKET", notify_socket), ("WATCHDOG_USEC", "1000000")]);
    let receive = || {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).trim().to_string()
    };
    assert_eq!(receive(), "READY=1");
    assert_eq!(receive(), "WATCHDOG=1", "pinged while workers and uploader live");
    collector.signal(libc::SIGTERM);
    let mut message = receive();
    while message == "WATCHDOG=1" {
        message = receive();
    }
    assert_eq!(message, "STOPPING=1");
    assert!(collector.wait().success());
}

#[test]
fn a_second_collector_on_the_same_spool_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Collector::spawn(dir.path(), &[]);
    let output = Command::new(env!("CARGO_BIN_EXE_plutos"))
        .env_clear()
        .env("PORT", "127.0.0.1:0")
        .env("SPOOL_DIR", dir.path().join("spool"))
        .env("OUT_DIR", dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("in use by another plutos process"), "{stderr}");
    first.signal(libc::SIGTERM);
    assert!(first.wait().success());
}

#[test]
fn a_worker_panic_aborts_the_process_and_the_next_start_ships_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::spawn(dir.path(), &[("PLUTOS_DEBUG_FAULTS", "1")]);
    let mut client = Client::connect(collector.addr);
    let acked: Vec<String> = (0..30).map(|i| format!("panic-{i}")).collect();
    for id in &acked {
        assert_eq!(client.request(format!("GET /e?id={id} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status, 200);
    }
    let mut doomed = Client::connect(collector.addr);
    let _ = doomed.try_send(b"GET /debug/panic HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(doomed.try_read_response().is_none(), "no answer from a worker that panicked");
    let (status, stderr) = collector.wait_with_stderr();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "the whole process ends: {status:?}\n{stderr}");
    assert!(stderr.contains("fault injected by /debug/panic") && stderr.contains("aborting"), "{stderr}");

    let restarted = Collector::spawn(dir.path(), &[]);
    restarted.signal(libc::SIGTERM);
    assert!(restarted.wait().success());
    assert_all_shipped(&acked, &dir.path().join("out"));
}

#[test]
fn json_logs_one_object_per_line_and_a_start_up_line_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LOG_FORMAT", "json"),
        ("WRITE_KEYS", "wk-never-logged"),
        ("IP_MODE", "hash"),
        ("IP_HASH_KEY", "hash-key-never-logged-0123456789"),
    ];
    let collector = Collector::spawn(dir.path(), &env);
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success());
    let lines: Vec<serde_json::Value> =
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let start = lines.iter().find(|l| l["message"] == "starting").expect("a start-up line");
    let config = start["config"].as_str().unwrap();
    assert!(config.contains("ip_mode: Hash") && config.contains("write_keys: [***]"), "{config}");
    assert!(!stderr.contains("never-logged"), "{stderr}");
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()));
}
