//! The S3 sink against a real S3 API server (s3s-fs, SigV4 checked), on the real binary: objects with their keys,
//! headers and metadata; multipart; an outage under traffic; a chunk failing for good; wrong credentials; a
//! crash between an upload and its delete; sealed chunks left in the spool; the start-up check; `plutos verify`
//! on the bucket.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::collector::*;
use common::s3::*;
use common::*;

/// A collector shipping to `endpoint` (s3s-fs, or a proxy in front of it), with `extra` settings on top.
fn spawn(dir: &Path, server: &S3Server, endpoint: &str, extra: &[(&str, &str)]) -> Collector {
    let base = server.collector_env(endpoint);
    let mut env: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    Collector::spawn(dir, &env)
}

fn get_ok(client: &mut Client, id: &str) -> bool {
    client
        .try_request(format!("GET /e?id={id} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .is_some_and(|r| r.status == 200)
}

#[test]
fn get_and_post_events_become_objects_with_their_keys_headers_and_metadata() {
    let server = S3Server::start();
    let mut acked = Vec::new();
    for codec in ["gzip", "zstd"] {
        let dir = tempfile::tempdir().unwrap();
        let collector =
            spawn(dir.path(), &server, &server.endpoint(), &[("COMPRESSION_TYPE", codec), ("S3_PREFIX", "/raw/web/")]);
        let mut client = Client::connect(collector.addr);
        for i in 0..20 {
            let id = format!("{codec}-get-{i}");
            assert!(get_ok(&mut client, &id));
            acked.push(id);
        }
        for i in 0..5 {
            let ids: Vec<String> = (0..3).map(|k| format!("{codec}-post-{i}-{k}")).collect();
            let body =
                format!("[{}]", ids.iter().map(|id| format!("{{\"id\":\"{id}\"}}")).collect::<Vec<_>>().join(","));
            let r = client.request(
                format!(
                    "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            assert_eq!(r.text(), r#"{"accepted":3}"#);
            acked.extend(ids);
        }
        collector.signal(libc::SIGTERM);
        assert!(collector.wait().success());
        let left = std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count();
        assert_eq!(left, 0, "{codec}: every chunk shipped and deleted from the spool");
    }
    let client = server.client();
    let host = plutos::event::ids::host_name();
    for key in client.keys() {
        // {prefix}/created_date=YYYY-MM-DD/hour=HH/{host}-{boot}-w{worker}-{chunk:08}.ndjson{.gz|.zst}
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(&parts[..2], ["raw", "web"], "{key}");
        assert!(parts[2].starts_with("created_date=") && parts[2].len() == "created_date=2026-11-26".len(), "{key}");
        assert!(parts[3].starts_with("hour=") && parts[3].len() == "hour=02".len(), "{key}");
        assert!(parts[4].starts_with(&format!("{host}-")), "{key}");
        assert!(key.ends_with(".ndjson.gz") || key.ends_with(".ndjson.zst"), "{key}");
    }
    let counts = shipped_id_counts(&client);
    let want: HashSet<&String> = acked.iter().collect();
    assert_eq!(counts.len(), acked.len(), "exactly the accepted events");
    assert!(counts.iter().all(|(id, n)| *n == 1 && want.contains(id)), "each once: {counts:?}");

    // `plutos verify` reads the bucket back through the sink's client and settings...
    let (code, report) = verify_s3(&server, "s3://events/raw/web/");
    assert_eq!(code, 0, "{report}");
    let summary = format!("{} events from 2 writers; 0 gaps (0 events missing), 0 duplicated ranges", acked.len());
    assert!(report.lines().last().unwrap().contains(&summary), "{summary:?} in\n{report}");
    // ... and an object replaced by bytes without metadata is reported.
    let victim = client.keys().into_iter().next().unwrap();
    client.put(&victim, b"not a chunk".to_vec());
    let (code, report) = verify_s3(&server, "s3://events/raw/web");
    assert_eq!(code, 1, "{report}");
    let line = format!("object {victim}: no events metadata");
    assert!(report.lines().any(|l| l == line), "{line:?} in\n{report}");
}

/// A bad row (here a Snowplow payload over the body limit: no registry needed) is an object of its own under
/// `bad/` beside the partitions, with `stream=bad` in its metadata, and `plutos verify` tiles it as a writer of
/// its own.
#[test]
fn bad_rows_land_under_bad_with_their_stream_in_the_metadata() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let collector = spawn(dir.path(), &server, &server.endpoint(), &[("S3_PREFIX", "raw"), ("MAX_BODY_BYTES", "4096")]);
    let mut client = Client::connect(collector.addr);
    assert!(get_ok(&mut client, "good-1"));
    let big = format!(
        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{{"e":"pv","p":"{}"}}]}}"#,
        "x".repeat(6000)
    );
    let post = format!(
        "POST /com.snowplowanalytics.snowplow/tp2 HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    assert_eq!(Client::connect(collector.addr).request(post.as_bytes()).status, 200);
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let s3 = server.client();
    let keys = s3.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let bad: Vec<&String> = keys.iter().filter(|k| k.starts_with("raw/bad/created_date=")).collect();
    assert_eq!(bad.len(), 1, "{keys:?}");
    let object = s3.get(bad[0]);
    assert_eq!(object.metadata.get("stream").map(String::as_str), Some("bad"), "{:?}", object.metadata);
    let good = keys.iter().find(|k| k.starts_with("raw/created_date=")).expect("the good stream's object");
    assert_eq!(s3.get(good).metadata.get("stream").map(String::as_str), Some("good"));
    let (code, report) = verify_s3(&server, "s3://events/raw");
    assert_eq!(code, 0, "{report}");
    assert!(report.lines().last().unwrap().contains("2 events from 2 writers; 0 gaps"), "{report}");
}

/// `plutos verify URL` with the collector's S3 settings; the exit code and stdout.
fn verify_s3(server: &S3Server, url: &str) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_plutos"))
        .args(["verify", url])
        .env_clear()
        .envs(server.collector_env(&server.endpoint()))
        .env("S3_BUCKET", "not-this-one")
        .output()
        .unwrap();
    (output.status.code().expect("exited"), String::from_utf8(output.stdout).unwrap())
}

#[test]
fn a_multipart_chunk_arrives_whole_and_a_failed_upload_leaves_no_object() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(server.addr);
    proxy.fail_second_parts.store(true, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        ("WORKERS", "1"),
        ("COMPRESSION_TYPE", "none"),
        ("S3_MULTIPART_BYTES", "5MiB"),
        ("MAX_BUFFER_TIME_MILLISECONDS", "3600000"),
        ("UPLOAD_BACKOFF_MAX_MS", "200"),
    ];
    let collector = spawn(dir.path(), &server, &proxy.endpoint(), &settings);
    // About 13 MB of records in one chunk: two parts of 5 MiB and a last one.
    let mut client = Client::connect(collector.addr);
    let mut acked = Vec::new();
    for request in 0..14 {
        let ids: Vec<String> = (0..2400).map(|i| format!("mp-{request}-{i}")).collect();
        let body: String =
            ids.iter().map(|id| format!("{{\"id\":\"{id}\",\"pad\":\"{}\"}}\n", "p".repeat(200))).collect();
        let head = format!(
            "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        assert_eq!(client.request(format!("{head}{body}").as_bytes()).text(), r#"{"accepted":2400}"#);
        acked.extend(ids);
    }
    collector.signal(libc::SIGTERM); // seals the one chunk; the uploader has SHUTDOWN_TIMEOUT_SECONDS (30) to ship it
    let broken = || proxy.broken.load(std::sync::atomic::Ordering::SeqCst);
    wait_until("two attempts to fail at their second part", || broken() >= 2);
    let s3 = server.client();
    assert!(s3.keys().is_empty(), "a failed multipart upload leaves no object");
    proxy.fail_second_parts.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(collector.wait().success());

    let objects = shipped_objects(&s3);
    assert_eq!(objects.len(), 1);
    assert!(objects[0].0.bytes.len() > 2 * (5 << 20), "{} bytes: three parts or more", objects[0].0.bytes.len());
    let ids: Vec<&str> = objects[0].1.iter().map(|r| r["raw_data"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, acked.iter().map(String::as_str).collect::<Vec<_>>(), "whole, in order");
    assert_eq!(server.open_multipart_uploads(), 0, "every failed upload was aborted");
}

#[test]
fn the_shutdown_deadline_aborts_a_multipart_upload_in_flight_and_keeps_the_chunk() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(server.addr);
    proxy.stall_second_parts.store(true, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        ("WORKERS", "1"),
        ("COMPRESSION_TYPE", "none"),
        ("S3_MULTIPART_BYTES", "5MiB"),
        ("MAX_BUFFER_TIME_MILLISECONDS", "3600000"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "2"),
    ];
    let collector = spawn(dir.path(), &server, &proxy.endpoint(), &settings);
    let mut client = Client::connect(collector.addr);
    let body: String =
        (0..30_000).map(|i| format!("{{\"id\":\"deadline-{i}\",\"pad\":\"{}\"}}\n", "p".repeat(200))).collect();
    let lines: Vec<&str> = body.lines().collect();
    for batch in lines.chunks(3000) {
        let body = batch.join("\n") + "\n";
        let head = format!(
            "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        assert_eq!(client.request(format!("{head}{body}").as_bytes()).text(), r#"{"accepted":3000}"#);
    }
    collector.signal(libc::SIGTERM);
    wait_until("a multipart upload to hang at its second part", || server.open_multipart_uploads() == 1);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("shutdown timeout: unshipped chunks stay in the spool"), "{stderr}");
    assert_eq!(server.open_multipart_uploads(), 0, "the upload in flight was aborted");
    assert!(server.client().keys().is_empty());
    assert_eq!(std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count(), 1, "the chunk stays");

    let restarted = spawn(dir.path(), &server, &server.endpoint(), &[("WORKERS", "1")]);
    restarted.signal(libc::SIGTERM);
    assert!(restarted.wait().success());
    assert_eq!(shipped_id_counts(&server.client()).len(), 30_000);
}

#[test]
fn an_outage_under_traffic_keeps_acking_then_503_at_the_cap_and_every_ack_arrives_once() {
    let mut server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        ("COMPRESSION_TYPE", "none"),
        ("MAX_SPOOL_BYTES", "64KiB"),
        ("MAX_BUFFER_TIME_MILLISECONDS", "100"),
        ("UPLOAD_BACKOFF_MAX_MS", "200"),
    ];
    let collector = spawn(dir.path(), &server, &server.endpoint(), &settings);
    let mut client = Client::connect(collector.addr);
    let mut outcomes = Outcomes::default();
    let mut send = |outcomes: &mut Outcomes, id: String| outcomes.send(&mut client, id);
    for i in 0..20 {
        assert_eq!(send(&mut outcomes, format!("before-{i}")), 200);
    }
    server.stop();
    // While the spool has room: 200s. Once it is over its cap: 503 + Retry-After.
    let mut i = 0;
    while outcomes.refused.len() < 5 {
        assert!(i < 5000, "no 503 after {i} requests");
        send(&mut outcomes, format!("during-{i}"));
        i += 1;
    }
    let during = outcomes.acked.iter().filter(|id| id.starts_with("during-")).count();
    assert!(during > 20, "{during} events acked during the outage before the cap");
    wait_until("retryable failures", || {
        metric(collector.addr, "plutos_upload_failures_total{kind=\"retryable\"}") >= 2
    });
    assert!(metric(collector.addr, "plutos_oldest_unshipped_chunk_age_seconds") < 3600);

    server.start_again();
    wait_until("the spool to drain", || metric(collector.addr, "plutos_chunks_queued") == 0);
    // The spool's size shrank with every shipped chunk: ingest works again.
    wait_until("ingest to resume", || {
        let id = format!("after-{}", outcomes.acked.len());
        send(&mut outcomes, id) == 200
    });
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let Outcomes { acked, refused } = outcomes;
    let counts = shipped_id_counts(&server.client());
    let missing: Vec<&String> = acked.iter().filter(|id| !counts.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} acked events missing: {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert!(counts.values().all(|&n| n == 1), "every event exactly once");
    assert!(refused.iter().all(|id| !counts.contains_key(id)), "nothing refused was stored");
}

/// Every GET's answer: acknowledged or refused with 503 + Retry-After.
#[derive(Default)]
struct Outcomes {
    acked: Vec<String>,
    refused: Vec<String>,
}

impl Outcomes {
    fn send(&mut self, client: &mut Client, id: String) -> u16 {
        client.send(format!("GET /e?id={id}&pad={} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(300)).as_bytes());
        let r = client.read_response();
        match r.status {
            200 => self.acked.push(id),
            503 => {
                assert_eq!(r.header("retry-after"), Some("1"));
                self.refused.push(id);
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
        r.status
    }
}

#[test]
fn a_chunk_failing_for_good_holds_no_other_back_and_is_never_dropped() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let chunks = sealed_chunks(&dir.path().join("spool"), "01deadbeef0000000001", 5, 4);
    // Another object already holds the first chunk's key: a permanent failure for that chunk alone.
    let s3 = server.client();
    let taken = chunks[0].0.id.object_key("", &plutos::event::ids::host_name());
    s3.put(&taken, b"someone else's object".to_vec());

    let settings = [("UPLOAD_PERMANENT_RETRY_MS", "100"), ("SHUTDOWN_TIMEOUT_SECONDS", "1")];
    let collector = spawn(dir.path(), &server, &server.endpoint(), &settings);
    wait_until("the other four chunks to ship", || metric(collector.addr, "plutos_chunks_shipped_total") == 4);
    wait_until("the first to be refused again and again", || {
        metric(collector.addr, "plutos_upload_failures_total{kind=\"permanent\"}") >= 3
    });
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success());
    let refusals = stderr.lines().filter(|l| l.contains("upload refused")).count();
    assert_eq!(refusals, 1, "logged once, not once per attempt:\n{stderr}");
    assert!(stderr.contains("sha256 differs"), "{stderr}");
    assert!(chunks[0].0.path.exists(), "the refused chunk stays in the spool");
    assert_eq!(s3.get(&taken).bytes, b"someone else's object", "the other object is left alone");
    let counts = shipped_id_counts_except(&s3, &taken);
    let want: HashSet<String> = chunks[1..].iter().flat_map(|(_, ids)| ids.clone()).collect();
    assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), want);
}

/// Like `shipped_id_counts`, skipping one key that holds something other than a chunk.
fn shipped_id_counts_except(client: &S3Client, skip: &str) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for key in client.keys().into_iter().filter(|k| k != skip) {
        let object = client.get(&key);
        let mut text = Vec::new();
        let codec = plutos::spool::Codec::from_file_name(&key).unwrap();
        plutos::spool::encoder::decode(codec, &object.bytes, &mut text).unwrap();
        for line in String::from_utf8(text).unwrap().lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            *counts.entry(record["raw_data"]["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn a_wrong_secret_is_logged_once_and_the_data_waits_for_the_right_one() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let wrong = [
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ("UPLOAD_PERMANENT_RETRY_MS", "100"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "1"),
    ];
    let collector = spawn(dir.path(), &server, &server.endpoint(), &wrong);
    let mut client = Client::connect(collector.addr);
    let acked: Vec<String> = (0..10).map(|i| format!("secret-{i}")).collect();
    for id in &acked {
        assert!(get_ok(&mut client, id), "ingest goes on while the sink refuses");
    }
    wait_until("refusals", || metric(collector.addr, "plutos_upload_failures_total{kind=\"permanent\"}") >= 3);
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success());
    let start_line = stderr.lines().filter(|l| l.contains("the sink cannot take objects")).count();
    let refusals = stderr.lines().filter(|l| l.contains("upload refused")).count();
    assert_eq!((start_line, refusals), (1, 1), "one line at start, one for the uploads:\n{stderr}");
    assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
    assert!(server.client().keys().is_empty());

    let fixed = spawn(dir.path(), &server, &server.endpoint(), &[]);
    fixed.signal(libc::SIGTERM);
    assert!(fixed.wait().success());
    let counts = shipped_id_counts(&server.client());
    assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), acked.into_iter().collect::<HashSet<_>>());
}

#[test]
fn killed_between_an_upload_and_its_delete_the_next_start_ships_again_into_the_same_object() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(server.addr);
    proxy.swallow_put_answers.store(true, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let collector = spawn(dir.path(), &server, &proxy.endpoint(), &[("WORKERS", "1")]);
    let mut client = Client::connect(collector.addr);
    let acked: Vec<String> = (0..25).map(|i| format!("crash-{i}")).collect();
    for id in &acked {
        assert!(get_ok(&mut client, id));
    }
    // The chunk is sealed (MAX_BUFFER_TIME 150 ms) and PUT; S3 stores it, its answer never arrives.
    let s3 = server.client();
    wait_until("the object to be stored", || !s3.keys().is_empty());
    collector.signal(libc::SIGKILL);
    assert!(!collector.wait().success());
    let sealed = std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count();
    assert_eq!(sealed, 1, "uploaded but not deleted");

    let restarted = spawn(dir.path(), &server, &server.endpoint(), &[("WORKERS", "1")]);
    restarted.signal(libc::SIGTERM);
    let (status, stderr) = restarted.wait_with_stderr();
    assert!(status.success());
    assert!(stderr.contains("already shipped (same sha256)"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count(), 0);
    assert_eq!(s3.keys().len(), 1, "one object per key");
    let counts = shipped_id_counts(&s3);
    assert_eq!(counts.len(), acked.len());
    assert!(counts.values().all(|&n| n == 1));
}

#[test]
fn sealed_chunks_left_in_the_spool_are_shipped_at_the_next_start() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let chunks = sealed_chunks(&dir.path().join("spool"), "01c0ffee000000000002", 3, 7);
    let collector = spawn(dir.path(), &server, &server.endpoint(), &[("UPLOAD_CONCURRENCY", "1")]);
    wait_until("all three shipped", || metric(collector.addr, "plutos_chunks_shipped_total") == 3);
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let counts = shipped_id_counts(&server.client());
    let want: HashSet<String> = chunks.into_iter().flat_map(|(_, ids)| ids).collect();
    assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), want);
}

#[test]
fn the_start_up_check_names_the_problem_in_one_line_and_ingest_still_works() {
    let server = S3Server::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // nothing listens
    let endpoint = format!("http://{closed}");
    let cases = [
        ("wrong endpoint", ("S3_ENDPOINT", endpoint.as_str()), "Connection refused"),
        ("no such bucket", ("S3_BUCKET", "no-such-bucket"), "NoSuchBucket"),
        ("bad credentials", ("AWS_ACCESS_KEY_ID", "nobody"), "HTTP 403"),
    ];
    for (what, setting, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let extra = [setting, ("SHUTDOWN_TIMEOUT_SECONDS", "0")];
        let collector = spawn(dir.path(), &server, &server.endpoint(), &extra);
        assert_eq!(get(collector.addr, "/e?still=accepted").status, 200, "{what}");
        collector.signal(libc::SIGTERM);
        let (status, stderr) = collector.wait_with_stderr();
        assert!(status.success(), "{what}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("the sink cannot take objects")).collect();
        assert_eq!(lines.len(), 1, "{what}: one line\n{stderr}");
        assert!(lines[0].contains(reason), "{what}: {}", lines[0]);
    }
}
