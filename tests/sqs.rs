//! The SQS sink and object-ready notifications against a real SQS API server (moto, started per test on a free
//! loopback port), read back with boto3: every acknowledged event one message with its attributes, batches
//! split at 10 entries and at the byte limit, failed entries sent again alone, FIFO group and deduplication ids,
//! an outage from the start, and notifications in the shape of S3's.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::collector::Collector;
use common::sqs::{EntryFailingProxy, Moto};
use common::*;
use serde_json::Value;

/// A collector sending to `queue_url` (through `endpoint` when given) with `extra` settings.
fn collector(dir: &Path, queue_url: &str, endpoint: Option<&str>, extra: &[(&str, &str)]) -> Collector {
    let mut env = Moto::collector_env(queue_url);
    if let Some(endpoint) = endpoint {
        env.push(("SQS_ENDPOINT", endpoint.to_string()));
    }
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    Collector::spawn(dir, &env)
}

/// Waits until `condition` holds for the collector; on a timeout, fails with what the collector logged.
fn wait_for(collector: Collector, what: &str, mut condition: impl FnMut(&Collector) -> bool) -> Collector {
    let start = std::time::Instant::now();
    while !condition(&collector) {
        if start.elapsed() > DEADLINE {
            collector.signal(libc::SIGKILL);
            let (_, stderr) = collector.wait_with_stderr();
            panic!("timed out waiting for {what}; the collector said:\n{stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    collector
}

/// `raw_data.tag` of each message, sorted.
fn tags(messages: &[common::sqs::Message]) -> Vec<String> {
    let tag = |record: Value| {
        let raw = &record["raw_data"];
        let tag = raw["tag"].as_str().or_else(|| raw["properties"]["tag"].as_str());
        tag.unwrap_or_else(|| panic!("{record}")).to_string()
    };
    let mut tags: Vec<String> = messages.iter().map(|m| tag(m.record())).collect();
    tags.sort();
    tags
}

fn post(addr: std::net::SocketAddr, lines: &str) -> u16 {
    let head = format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        lines.len()
    );
    request(addr, &[head.as_bytes(), lines.as_bytes()].concat()).status
}

#[test]
fn every_acknowledged_event_is_one_message_with_its_attributes_in_batches_of_at_most_ten() {
    let moto = Moto::start();
    let queue = moto.create_queue("events");
    let proxy = EntryFailingProxy::start(moto.addr, "never-in-a-body");
    let dir = tempfile::tempdir().unwrap();
    let collector = collector(dir.path(), &queue, Some(&proxy.endpoint()), &[]);
    let body: String = (0..35).map(|i| format!("{{\"tag\":\"post-{i:02}\"}}\n")).collect();
    assert_eq!(post(collector.addr, &body), 200);
    let segment = br#"{"batch":[{"type":"track","event":"Bought","messageId":"seg-1","anonymousId":"a","properties":{"tag":"segment"}}]}"#;
    let head = format!(
        "POST /v1/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        segment.len()
    );
    assert_eq!(request(collector.addr, &[head.as_bytes(), segment].concat()).status, 200);
    let collector = wait_for(collector, "36 messages accepted", |collector| {
        metric(collector.addr, "plutos_sqs_messages_acknowledged_total") == 36
    });
    assert_eq!(metric(collector.addr, "plutos_sqs_messages_in_flight"), 0);
    let batches = metric(collector.addr, "plutos_sqs_batches_total");
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    assert_eq!(batches as usize, proxy.batch_sizes.lock().unwrap().len(), "every SendMessageBatch counted");

    let messages = moto.receive_all(&queue);
    let mut expected: Vec<String> = (0..35).map(|i| format!("post-{i:02}")).collect();
    expected.push("segment".into());
    assert_eq!(tags(&messages), expected, "every event once");
    let host = plutos::event::ids::host_name();
    let mut seqs: HashMap<(String, String), Vec<u64>> = HashMap::new();
    for m in &messages {
        let record = m.record();
        assert_eq!(m.attributes["host"], host);
        assert_eq!(m.attributes["protocol"], record["protocol"].as_str().unwrap(), "{m:?}");
        let key = (m.attributes["boot"].clone(), m.attributes["worker"].clone());
        seqs.entry(key).or_default().push(m.attributes["seq"].parse().unwrap());
        assert_eq!(m.group, None, "a standard queue has no groups");
    }
    for (writer, mut seq) in seqs {
        seq.sort();
        assert_eq!(seq, (0..seq.len() as u64).collect::<Vec<_>>(), "{writer:?}: every seq of the writer once");
    }
    let sizes = proxy.batch_sizes.lock().unwrap().clone();
    assert!(sizes.iter().all(|&n| (1..=10).contains(&n)), "{sizes:?}");
    assert!(sizes.contains(&10), "the 35-event chunk went in batches of 10: {sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 36, "no entry sent twice: {sizes:?}");
}

/// A message's size as SQS counts it: the body, and each attribute's name, type and value (host, boot, worker,
/// seq; these lines carry no `protocol`).
fn message_size(line: &str, host: &str, boot: &str, worker: u16, seq: u64) -> usize {
    let attribute = |name: &str, data_type: &str, value: &str| name.len() + data_type.len() + value.len();
    line.len()
        + attribute("host", "String", host)
        + attribute("boot", "String", boot)
        + attribute("worker", "Number", &worker.to_string())
        + attribute("seq", "Number", &seq.to_string())
}

/// With `SQS_MAX_MESSAGE_BYTES=2KiB`: a message of exactly 2,048 bytes is sent (alone: a batch holds at most that
/// much), one of 2,049 goes to the dead-letter file, the small ones around them are batched by bytes.
#[test]
fn batches_split_at_the_byte_limit_and_a_message_one_byte_over_it_is_dead_lettered() {
    let moto = Moto::start();
    let queue = moto.create_queue("events");
    let proxy = EntryFailingProxy::start(moto.addr, "never-in-a-body");
    let dir = tempfile::tempdir().unwrap();
    let (host, boot) = (plutos::event::ids::host_name(), "01boot000000000000sq".to_string());
    let line =
        |tag: &str, pad: usize| format!("{{\"raw_data\":{{\"tag\":\"{tag}\",\"pad\":\"{}\"}}}}", "x".repeat(pad));
    let sized = |tag: &str, seq: u64, size: usize| {
        let bare = line(tag, 0);
        line(tag, size - message_size(&bare, &host, &boot, 0, seq))
    };
    let lines = vec![
        line("small-1", 10),
        sized("exact", 1, 2048),
        sized("over", 2, 2049),
        line("small-2", 10),
        line("small-3", 10),
    ];
    assert_eq!(message_size(&lines[1], &host, &boot, 0, 1), 2048);
    assert_eq!(message_size(&lines[2], &host, &boot, 0, 2), 2049);
    sealed_chunks_of(&dir.path().join("spool"), &boot, std::slice::from_ref(&lines));
    let collector = collector(dir.path(), &queue, Some(&proxy.endpoint()), &[("SQS_MAX_MESSAGE_BYTES", "2KiB")]);
    let collector = wait_for(collector, "the chunk shipped", |collector| {
        metric(collector.addr, "plutos_chunks_shipped_total") == 1
    });
    assert_eq!(metric(collector.addr, "plutos_sqs_dead_letter_events_total"), 1);
    assert_eq!(metric(collector.addr, "plutos_spool_aside_bytes"), lines[2].len() as u64 + 1, "counted in the spool");
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    assert_eq!(tags(&moto.receive_all(&queue)), ["exact", "small-1", "small-2", "small-3"]);
    // Batches are in flight together, so they reach the proxy in any order.
    let mut sizes = proxy.batch_sizes.lock().unwrap().clone();
    sizes.sort();
    assert_eq!(sizes, [1, 1, 2], "split where the next message would pass 2,048 bytes");
    let dead: Vec<_> =
        std::fs::read_dir(dir.path().join("spool/dead-letter")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(std::fs::read_to_string(&dead[0]).unwrap(), format!("{}\n", lines[2]), "the event's line, whole, once");
}

/// SQS fails some entries of a batch (it says which in `Failed`): only those are sent again, and every event
/// arrives once.
#[test]
fn entries_sqs_failed_are_sent_again_alone() {
    let moto = Moto::start();
    let queue = moto.create_queue("events");
    let proxy = EntryFailingProxy::start(moto.addr, "fail-me");
    let dir = tempfile::tempdir().unwrap();
    let collector = collector(dir.path(), &queue, Some(&proxy.endpoint()), &[]);
    let body: String = (0..30)
        .map(|i| {
            if i % 6 == 0 {
                format!("{{\"tag\":\"fail-me-{i:02}\"}}\n")
            } else {
                format!("{{\"tag\":\"ok-{i:02}\"}}\n")
            }
        })
        .collect();
    assert_eq!(post(collector.addr, &body), 200);
    let collector = wait_for(collector, "30 messages accepted", |collector| {
        metric(collector.addr, "plutos_sqs_messages_acknowledged_total") == 30
    });
    assert_eq!(metric(collector.addr, "plutos_sqs_errors_total{kind=\"entry\"}"), 5);
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    assert_eq!(tags(&moto.receive_all(&queue)).len(), 30);
    let sent = proxy.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 30);
    for (body, times) in sent {
        let expected = if body.contains("fail-me") { 2 } else { 1 };
        assert_eq!(times, expected, "{body}");
    }
}

/// An event SQS cannot carry (U+FFFF is outside XML's characters) goes to the dead-letter file; its chunk ships.
#[test]
fn an_event_sqs_cannot_carry_goes_to_the_dead_letter_file() {
    let moto = Moto::start();
    let queue = moto.create_queue("events");
    let dir = tempfile::tempdir().unwrap();
    let lines = vec![
        "{\"raw_data\":{\"tag\":\"before\"}}".to_string(),
        "{\"raw_data\":{\"tag\":\"odd\",\"text\":\"\u{FFFF}\"}}".to_string(),
        "{\"raw_data\":{\"tag\":\"after\"}}".to_string(),
    ];
    sealed_chunks_of(&dir.path().join("spool"), "01boot000000000000ff", std::slice::from_ref(&lines));
    let collector = collector(dir.path(), &queue, None, &[]);
    let collector = wait_for(collector, "the chunk shipped", |collector| {
        metric(collector.addr, "plutos_chunks_shipped_total") == 1
    });
    assert_eq!(metric(collector.addr, "plutos_sqs_dead_letter_events_total"), 1);
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success(), "{stderr}");
    assert_eq!(tags(&moto.receive_all(&queue)), ["after", "before"]);
}

/// A FIFO queue: each writer is a message group, each event's deduplication id is host:boot:worker:seq, so the
/// same chunk shipped again (by a second collector whose spool holds it: a re-ship after a crash) is not
/// delivered twice — moto drops the copy while the original is in the queue, SQS for 5 minutes.
#[test]
fn a_fifo_queue_gets_writer_groups_and_drops_a_chunk_shipped_again() {
    let moto = Moto::start();
    let queue = moto.create_queue("events.fifo");
    let boot = "01boot00000000000ff0";
    let lines: Vec<String> = (0..25).map(|i| format!("{{\"raw_data\":{{\"tag\":\"e-{i:02}\"}}}}")).collect();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        sealed_chunks_of(&dir.path().join("spool"), boot, std::slice::from_ref(&lines));
        let collector = collector(dir.path(), &queue, None, &[]);
        let collector = wait_for(collector, "the chunk shipped", |collector| {
            metric(collector.addr, "plutos_chunks_shipped_total") == 1
        });
        collector.signal(libc::SIGTERM);
        assert!(collector.wait().success());
    }
    let messages = moto.receive_all(&queue);
    let expected: Vec<String> = (0..25).map(|i| format!("e-{i:02}")).collect();
    assert_eq!(tags(&messages), expected, "each event once, though sent twice");
    let host = plutos::event::ids::host_name();
    for m in &messages {
        assert_eq!(m.group.as_deref(), Some(format!("{host}-{boot}-0").as_str()));
        assert_eq!(m.dedup.as_deref(), Some(format!("{host}:{boot}:0:{}", m.attributes["seq"]).as_str()));
    }
}

#[test]
fn a_queue_that_is_down_fills_the_spool_to_503_and_every_ack_is_sent_once_it_is_up() {
    let mut moto = Moto::start();
    let port = moto.addr.port();
    moto.stop();
    let queue = format!("http://127.0.0.1:{port}/123456789012/events");
    let dir = tempfile::tempdir().unwrap();
    let collector = collector(
        dir.path(),
        &queue,
        None,
        &[("COMPRESSION_TYPE", "none"), ("MAX_SPOOL_BYTES", "256KiB"), ("UPLOAD_PERMANENT_RETRY_MS", "200")],
    );
    let mut client = Client::connect(collector.addr);
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..20_000 {
        let head = format!("GET /e?tag=down-{i}&pad={} HTTP/1.1\r\nHost: t\r\n\r\n", "p".repeat(100));
        match client.try_request(head.as_bytes()).expect("an answer").status {
            200 => acked.push(format!("down-{i}")),
            503 => {
                refused += 1;
                break;
            }
            other => panic!("answered {other}"),
        }
    }
    assert_eq!(refused, 1, "the spool reached its cap within 20,000 events");
    let collector = wait_for(collector, "the outage to be counted", |collector| {
        metric(collector.addr, "plutos_sqs_errors_total{kind=\"unreachable\"}") > 0
    });
    let moto = Moto::start_on(port);
    assert_eq!(moto.create_queue("events"), queue);
    let collector =
        wait_for(collector, "the spool to drain", |collector| metric(collector.addr, "plutos_chunks_queued") == 0);
    assert_eq!(metric(collector.addr, "plutos_sqs_messages_in_flight"), 0);
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let mut counts: HashMap<String, usize> = HashMap::new();
    for m in moto.receive_all(&queue) {
        *counts.entry(m.record()["raw_data"]["tag"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    let missing = acked.iter().filter(|id| !counts.contains_key(*id)).count();
    assert_eq!(missing, 0, "of {} acked events", acked.len());
    assert!(counts.values().all(|&n| n == 1), "every event once");
    assert_eq!(counts.len(), acked.len(), "nothing refused was sent");
    println!("queue down from the start: {} acked, then 503; after it came up every ack sent once", acked.len());
}

/// The notifications of a collector, read by boto3 as S3 event notifications; each names an object that
/// `exists(key, size, sha256)` confirms; their manifests' events add up to `events`.
fn check_notifications(
    moto: &Moto,
    queue: &str,
    events: usize,
    exists: impl Fn(&str, u64, &str) -> bool,
) -> Vec<Value> {
    let notes = moto.notifications(queue);
    let mut total = 0;
    for note in &notes {
        assert_eq!(note["event"], "ObjectCreated:Put");
        let key = note["key"].as_str().unwrap();
        let manifest = &note["plutos"];
        assert_eq!(manifest["key"], key, "{note}");
        assert!(exists(key, note["size"].as_u64().unwrap(), manifest["sha256"].as_str().unwrap()), "{note}");
        let chunks = manifest["chunks"].as_array().unwrap();
        let chunk_events: u64 = chunks.iter().map(|c| c["events"].as_u64().unwrap()).sum();
        assert_eq!(manifest["events"].as_u64().unwrap(), chunk_events, "{note}");
        for c in chunks {
            assert_eq!(
                c["last-seq"].as_u64().unwrap() - c["first-seq"].as_u64().unwrap() + 1,
                c["events"].as_u64().unwrap()
            );
        }
        total += chunk_events as usize;
    }
    assert_eq!(total, events, "the notified objects hold every event");
    notes
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn each_object_of_the_file_sink_is_notified_once_it_is_durable_in_the_shape_of_an_s3_event() {
    let moto = Moto::start();
    let notes_queue = moto.create_queue("objects");
    for format in ["ndjson", "parquet"] {
        let dir = tempfile::tempdir().unwrap();
        let mut env = Moto::collector_env(&notes_queue);
        env.retain(|(k, _)| !matches!(*k, "DRIVER" | "SQS_QUEUE_URL"));
        env.extend([("NOTIFY_SQS_QUEUE_URL", notes_queue.clone()), ("OUTPUT_FORMAT", format.to_string())]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let collector = Collector::spawn(dir.path(), &env);
        for i in 0..40 {
            assert_eq!(
                request(collector.addr, format!("GET /e?tag={format}-{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
                    .status,
                200
            );
        }
        collector.signal(libc::SIGTERM);
        assert!(collector.wait().success());
        assert_eq!(std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count(), 0, "everything shipped");
        let out = dir.path().join("out");
        let notes = check_notifications(&moto, &notes_queue, 40, |key, size, sha256| {
            let bytes = std::fs::read(out.join(key)).unwrap();
            bytes.len() as u64 == size && sha256_hex(&bytes) == sha256
        });
        for note in notes {
            assert_eq!(note["source"], "plutos:file");
            assert_eq!(note["bucket"], std::path::absolute(&out).unwrap().display().to_string());
            assert_eq!(note["plutos"]["format"], format);
        }
    }
}

#[test]
fn each_object_of_the_s3_sink_is_notified_once_it_is_in_the_bucket() {
    let moto = Moto::start();
    let notes_queue = moto.create_queue("objects");
    let s3 = common::s3::S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut env = s3.collector_env(&s3.endpoint());
    env.push(("NOTIFY_SQS_QUEUE_URL", notes_queue.clone()));
    env.push(("SQS_ENDPOINT", moto.endpoint()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let collector = Collector::spawn(dir.path(), &env);
    for i in 0..30 {
        assert_eq!(
            request(collector.addr, format!("GET /e?tag=s3-{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status,
            200
        );
    }
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let client = s3.client();
    let notes = check_notifications(&moto, &notes_queue, 30, |key, size, sha256| {
        let object = client.get(key);
        object.bytes.len() as u64 == size && object.metadata.get("sha256").map(String::as_str) == Some(sha256)
    });
    assert!(notes.iter().all(|n| n["source"] == "aws:s3" && n["bucket"] == common::s3::BUCKET));
}

/// `plutos verify --peek` receives a queue's messages without deleting them and tiles each writer's sequence;
/// without `--peek` it says why a queue cannot be listed.
#[test]
fn verify_peek_tiles_every_writer_of_a_queue() {
    let moto = Moto::start();
    let queue = moto.create_queue("events");
    let dir = tempfile::tempdir().unwrap();
    let collector = collector(dir.path(), &queue, None, &[]);
    for i in 0..45 {
        assert_eq!(
            request(collector.addr, format!("GET /e?tag=v-{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status,
            200
        );
    }
    let collector = wait_for(collector, "45 messages accepted", |collector| {
        metric(collector.addr, "plutos_sqs_messages_acknowledged_total") == 45
    });
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let target = queue.replace("http://", "sqs+http://");
    let verify = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_plutos"))
            .arg("verify")
            .args(args)
            .env_clear()
            .envs(common::sqs::AWS_ENV)
            .output()
            .unwrap()
    };
    let refused = verify(&[&target]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--peek"));
    let peeked = verify(&["--peek", &target]);
    let report = String::from_utf8_lossy(&peeked.stdout);
    assert!(peeked.status.success(), "{report}");
    assert!(report.contains("45 messages, 45 events from ") && report.contains("0 gaps"), "{report}");
}

/// A server that checks signatures (moto with IAM on): plutos's SigV4 signing (object_store's `AwsAuthorizer`,
/// service `sqs`) is accepted with the user's keys, and a wrong secret is refused for good — named in the log,
/// counted as `authorization`, the events kept in the spool.
#[test]
fn signed_requests_are_accepted_and_a_wrong_secret_is_refused_as_permanent() {
    // Let through: the user, its policy, its key, and the queue (each one request).
    let moto = Moto::start_checking_signatures(4);
    let (key_id, secret) = moto.create_user("plutos");
    let queue = moto.create_queue("events");
    for (secret, accepted) in [(secret.as_str(), true), ("not-the-secret", false)] {
        let dir = tempfile::tempdir().unwrap();
        // Refused, the chunks cannot ship: the shutdown leaves them in the spool after a second.
        let keys = [
            ("AWS_ACCESS_KEY_ID", key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("SHUTDOWN_TIMEOUT_SECONDS", "1"),
        ];
        let collector = collector(dir.path(), &queue, None, &keys);
        for i in 0..5 {
            assert_eq!(
                request(collector.addr, format!("GET /e?tag=s-{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status,
                200
            );
        }
        let collector = if accepted {
            wait_for(collector, "5 messages accepted", |c| {
                metric(c.addr, "plutos_sqs_messages_acknowledged_total") == 5
            })
        } else {
            wait_for(collector, "the refusal counted", |c| {
                metric(c.addr, "plutos_sqs_errors_total{kind=\"authorization\"}") > 0
                    && metric(c.addr, "plutos_upload_failures_total{kind=\"permanent\"}") > 0
            })
        };
        collector.signal(libc::SIGTERM);
        let (status, stderr) = collector.wait_with_stderr();
        assert!(status.success(), "{stderr}");
        if !accepted {
            assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
            let kept = std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count();
            assert!(kept >= 1, "the events stay in the spool");
        }
    }
}
