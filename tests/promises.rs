//! Promises of the README that no other test pins down: `RESPONSE=no-content`, sealing by size, spool
//! accounting that shrinks when chunks ship (else a spool that was once full would answer 503 for ever), the
//! shutdown timeout leaving chunks for the next start, and a flag winning over its environment variable.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

#[test]
fn response_no_content_answers_204_without_a_body_and_stores_the_event() {
    let server = TestServer::start(&["--response", "no-content"]);
    let mut client = server.client();
    for i in 0..2 {
        let r = client.request(format!("GET /e?nc={i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-length"), None, "a 204 has no Content-Length");
    }
    let dir = server.stop();
    let got = raw_data(&read_records(&dir.path().join("out")));
    assert_eq!(sorted(got), [json!({"nc": "0"}), json!({"nc": "1"})]);
}

#[test]
fn a_chunk_is_sealed_by_the_event_that_takes_it_to_max_chunk_bytes() {
    const CAP: u64 = 2048;
    let flags = ["--compression-type", "none", "--max-chunk-bytes", "2KiB", "--workers", "1"];
    let server = TestServer::start(&flags);
    let mut client = server.client();
    for i in 0..100 {
        // Every record has the same length: fixed-width values, one client address.
        let r = client.request(format!("GET /e?size={i:03} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_eq!(r.status, 200);
    }
    let dir = server.stop();
    let out = dir.path().join("out");
    let mut shipped = read_shipped(&out);
    shipped.sort_by_key(|s| s.first_seq);
    assert!(shipped.len() >= 5, "{} chunks", shipped.len());
    let (last, sealed_by_size) = shipped.split_last().unwrap();
    for chunk in sealed_by_size {
        let bytes = std::fs::metadata(out.join(&chunk.key)).unwrap().len();
        let line = bytes / chunk.records.len() as u64;
        assert_eq!(bytes % line, 0, "{}: equal lines", chunk.key);
        assert!(bytes >= CAP && bytes - line < CAP, "{}: {bytes} bytes, lines of {line}", chunk.key);
    }
    assert!(std::fs::metadata(out.join(&last.key)).unwrap().len() < CAP + 1024, "the last one, sealed at the stop");
}

#[test]
fn a_full_spool_accepts_again_once_its_chunks_shipped() {
    let dir = tempfile::tempdir().unwrap();
    // The sink root is a plain file: every upload fails until it is replaced by a directory.
    let out = dir.path().join("out");
    std::fs::write(&out, b"not a directory").unwrap();
    let flags = ["--max-spool-bytes", "1", "--max-buffer-time-milliseconds", "50", "--upload-backoff-max-ms", "200"];
    let server = TestServer::start_in(dir, &flags);
    assert_eq!(get(server.addr, "/e?first=1").status, 200);
    wait_until("failed uploads", || server.metric("plutos_upload_failures_total{kind=\"retryable\"}") >= 1);
    assert_eq!(get(server.addr, "/e?refused=1").status, 503);
    std::fs::remove_file(&out).unwrap();
    wait_until("the chunk shipped", || server.metric("plutos_events_shipped_total") == 1);
    wait_until("the spool's size back to 0", || server.metric("plutos_spool_bytes") == 0);
    assert_eq!(get(server.addr, "/e?again=1").status, 200, "below the cap again");
    let dir = server.stop();
    let got = raw_data(&read_records(&dir.path().join("out")));
    assert_eq!(sorted(got), [json!({"again": "1"}), json!({"first": "1"})]);
}

#[test]
fn the_shutdown_timeout_leaves_unshipped_chunks_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::write(&out, b"not a directory").unwrap();
    let server = TestServer::start_in(dir, &["--shutdown-timeout-seconds", "0"]);
    for i in 0..10 {
        assert_eq!(get(server.addr, &format!("/e?left={i}")).status, 200);
    }
    let dir = server.stop();
    let sealed = std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count();
    assert!(sealed > 0, "the chunks stay in the spool");
    std::fs::remove_file(&out).unwrap();
    let dir = TestServer::start_in(dir, &[]).stop();
    assert_eq!(std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count(), 0, "shipped by the next start");
    let got = raw_data(&read_records(&out));
    assert_eq!(sorted(got), sorted((0..10).map(|i| json!({ "left": i.to_string() })).collect()));
}

#[test]
fn a_flag_wins_over_its_environment_variable() {
    let config = |flag: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plutos"));
        command.arg("--check-config").env_clear().env("MAX_BODY_BYTES", "1000");
        if let Some(flag) = flag {
            command.args(["--max-body-bytes", flag]);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(config(None).contains("max_body_bytes: 1000,"), "{}", config(None));
    assert!(config(Some("2000")).contains("max_body_bytes: 2000,"), "{}", config(Some("2000")));
}
