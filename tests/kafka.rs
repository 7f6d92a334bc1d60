//! The Kafka sink against a real Kafka-protocol broker (tansu, started per test on a free loopback port):
//! every acknowledged event read back from the topic once, as its record line, with its headers and key.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::kafka::Broker;
use common::*;
use serde_json::Value;

/// The in-process server producing to the topic `events` on `brokers`, with `flags` added.
fn shipping_to(brokers: &str, flags: &[&str]) -> TestServer {
    let mut all = vec!["--driver", "kafka", "--kafka-brokers", brokers, "--kafka-topic", "events"];
    all.extend_from_slice(flags);
    TestServer::start(&all)
}

/// `plutos verify kafka://{brokers}/events` with `env`: it must pass; its report.
fn verify_topic(brokers: &str, env: &[(&str, &str)]) -> String {
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_plutos"))
        .arg("verify")
        .arg(format!("kafka://{brokers}/events"))
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(verify.status.success(), "{report}");
    report
}

/// Each message's `raw_data.tag`, in the order read.
fn tags(messages: &[common::kafka::Read]) -> Vec<String> {
    let tag = |m: &common::kafka::Read| serde_json::from_slice::<Value>(&m.payload).unwrap()["raw_data"]["tag"].clone();
    messages.iter().map(|m| tag(m).as_str().unwrap().to_string()).collect()
}

#[test]
fn every_acknowledged_event_is_one_message_with_its_headers_and_key() {
    let broker = Broker::start();
    broker.create_topic("events", 3);
    let brokers = broker.addr.to_string();
    let server = shipping_to(&brokers, &["--kafka-key", "event_id"]);
    let mut client = server.client();
    for i in 0..50 {
        assert_eq!(client.request(format!("GET /e?tag=get-{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status, 200);
    }
    let body: String = (0..50).map(|i| format!("{{\"tag\":\"post-{i}\"}}\n")).collect();
    let post = format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(client.request(post.as_bytes()).text(), "{\"accepted\":50}");
    let segment = br#"{"batch":[{"type":"track","event":"Bought","messageId":"seg-1","anonymousId":"a","properties":{"tag":"segment"}}]}"#;
    let sdk = format!(
        "POST /v1/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        segment.len()
    );
    assert_eq!(client.request(&[sdk.as_bytes(), segment].concat()).status, 200);
    drop(server.stop());

    let messages = broker.read_all("events");
    assert_eq!(messages.len(), 101, "every acknowledged event once");
    let mut tags = HashMap::new();
    let mut seqs: BTreeMap<(String, String, String), Vec<u64>> = BTreeMap::new();
    for message in &messages {
        let record: Value = serde_json::from_slice(&message.payload).expect("a message is a record line");
        let tag = record["raw_data"]["tag"].as_str().or(record["raw_data"]["properties"]["tag"].as_str()).unwrap();
        *tags.entry(tag.to_string()).or_insert(0) += 1;
        assert_eq!(message.key.as_deref(), record["event_id"].as_str().map(str::as_bytes), "key = event_id");
        assert_eq!(message.header("protocol"), record["protocol"].as_str());
        let writer = (
            message.header("host").unwrap().to_string(),
            message.header("boot").unwrap().to_string(),
            message.header("worker").unwrap().to_string(),
        );
        seqs.entry(writer).or_default().push(message.header("seq").unwrap().parse().unwrap());
    }
    assert_eq!(tags.len(), 101);
    assert!(tags.values().all(|&n| n == 1));
    assert_eq!(tags.get("segment"), Some(&1));
    for (writer, mut seq) in seqs {
        seq.sort();
        assert_eq!(seq, (0..seq.len() as u64).collect::<Vec<_>>(), "{writer:?}: sequence numbers tile from 0");
    }
    // The same audit as for S3 and directories.
    let report = verify_topic(&brokers, &[]);
    assert!(report.contains("plutos verify: 101 messages, 101 events from "), "{report}");
    assert!(report.contains("0 gaps (0 events missing), 0 duplicated ranges, 0 bad messages"), "{report}");
}

/// An event larger than `KAFKA_MESSAGE_MAX_BYTES` is refused where it arrives (413, nothing of its request
/// stored), so the spool never holds what the sink cannot take: a small spool under a flood of them stays
/// empty and keeps answering (these 600 requests once filled `dead-letter/` with 3.9 MB and got 200s). On
/// Snowplow's routes such an event is a bad row instead, as its trackers resend a refused payload forever.
#[test]
fn an_event_over_the_message_limit_is_refused_at_ingest_and_leaves_nothing_in_the_spool() {
    let broker = Broker::start();
    broker.create_topic("events", 1);
    broker.create_topic("events-bad", 1);
    let brokers = broker.addr.to_string();
    let server = shipping_to(&brokers, &["--kafka-message-max-bytes", "4KiB", "--max-spool-bytes", "1MiB"]);
    let mut client = server.client();
    let big = "x".repeat(6000);
    for i in 0..600 {
        let body = format!("{{\"tag\":\"big-{i}\",\"pad\":\"{big}\"}}");
        let post = format!(
            "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = client.request(post.as_bytes());
        assert_eq!(answer.status, 413, "{}", answer.text());
        assert!(answer.text().contains("KAFKA_MESSAGE_MAX_BYTES"), "{}", answer.text());
    }
    let body = format!("{{\"tag\":\"small-1\"}}\n{{\"tag\":\"big\",\"pad\":\"{big}\"}}\n");
    let post = format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(client.request(post.as_bytes()).status, 413, "a request is stored whole or not at all");
    let tp2 = format!(
        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{{"e":"pv","tv":"js-3","p":"web","url":"https://a.example/{big}"}}]}}"#
    );
    let post = format!(
        "POST /com.snowplowanalytics.snowplow/tp2 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{tp2}",
        tp2.len()
    );
    assert_eq!(client.request(post.as_bytes()).status, 200, "Snowplow: a bad row, never a 413");
    assert_eq!(client.request(b"GET /e?tag=small-2 HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    let spool = server.spool_dir();
    let _dir = server.stop();
    let messages = broker.read_all("events");
    let records: Vec<Value> = messages.iter().map(|m| serde_json::from_slice(&m.payload).unwrap()).collect();
    assert_eq!(records.len(), 1, "small-2");
    assert_eq!(records[0]["raw_data"]["tag"], "small-2");
    let bad = broker.read_all("events-bad");
    assert_eq!(bad.len(), 1, "the bad row, in KAFKA_TOPIC's bad topic");
    let row: Value = serde_json::from_slice(&bad[0].payload).unwrap();
    assert_eq!(row["data"]["failure"]["maximumAllowedSizeBytes"], 4096, "{row}");
    assert!(!spool.join("dead-letter").exists(), "nothing was dead-lettered");
}

/// A chunk spooled before `KAFKA_MESSAGE_MAX_BYTES` was lowered may hold a larger event: it goes to the
/// dead-letter file (one line per event, one write each), counts against the spool's budget as set aside,
/// and the rest of its chunk ships.
#[test]
fn an_event_spooled_under_a_larger_limit_goes_to_the_dead_letter_file_within_the_spool_budget() {
    let broker = Broker::start();
    broker.create_topic("events", 1);
    let brokers = broker.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let record =
        |tag: &str, pad: usize| format!("{{\"raw_data\":{{\"tag\":\"{tag}\",\"pad\":\"{}\"}}}}", "x".repeat(pad));
    let lines = vec![record("small-1", 10), record("big", 6000), record("small-2", 10)];
    sealed_chunks_of(&dir.path().join("spool"), "01boot0000000000000d", std::slice::from_ref(&lines));
    let flags = ["--driver", "kafka", "--kafka-brokers", &brokers, "--kafka-topic", "events"];
    let server = TestServer::start_in(dir, &[&flags[..], &["--kafka-message-max-bytes", "4KiB"]].concat());
    wait_until("the chunk shipped", || server.metric("plutos_chunks_shipped_total") == 1);
    assert_eq!(server.metric("plutos_spool_aside_bytes"), lines[1].len() as u64 + 1, "the dead letter, counted");
    let spool = server.spool_dir();
    let _dir = server.stop();
    assert_eq!(tags(&broker.read_all("events")), ["small-1", "small-2"]);
    let dead: Vec<_> = std::fs::read_dir(spool.join("dead-letter")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dead.len(), 1);
    let text = std::fs::read_to_string(&dead[0]).unwrap();
    assert_eq!(text, format!("{}\n", lines[1]), "the event's line, whole, once");
}

/// A chunk whose progress mark says its first messages were acknowledged (by a run that was killed) is
/// produced from the mark on: those messages are not sent twice, and the mark goes with the chunk.
#[test]
fn a_chunk_produced_again_resumes_after_its_progress_mark() {
    let broker = Broker::start();
    broker.create_topic("events", 2);
    let brokers = broker.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let chunks = sealed_chunks(&spool, "01boot0000000000000r", 2, 10);
    std::fs::create_dir_all(spool.join("progress")).unwrap();
    let mark = spool.join("progress").join(chunks[0].0.path.file_name().unwrap());
    std::fs::write(&mark, "6\n").unwrap();
    // A mark whose chunk is gone is removed at start.
    std::fs::write(spool.join("progress/01boot0000000000000r-w0-00000099-f990-t1-n1.ndjson.gz"), "1\n").unwrap();
    let flags = ["--driver", "kafka", "--kafka-brokers", &brokers, "--kafka-topic", "events"];
    let server = TestServer::start_in(dir, &flags);
    wait_until("both chunks shipped", || server.metric("plutos_chunks_shipped_total") == 2);
    assert_eq!(server.metric("plutos_kafka_resumed_messages_total"), 6);
    let _dir = server.stop();
    let mut ids: Vec<String> = broker
        .read_all("events")
        .iter()
        .map(|m| serde_json::from_slice::<Value>(&m.payload).unwrap()["raw_data"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut want: Vec<String> = chunks[0].1[6..].iter().chain(&chunks[1].1).cloned().collect();
    want.sort();
    assert_eq!(ids, want, "the first chunk from its seventh message on, the second whole");
    assert_eq!(std::fs::read_dir(spool.join("progress")).unwrap().count(), 0, "no mark outlives its chunk");
}

/// A sealed chunk that does not decode is set aside before any of it is produced, not produced again and
/// again from its first line at every backoff; the chunks after it ship.
#[test]
fn a_chunk_that_does_not_decode_is_set_aside_not_produced_again_and_again() {
    let broker = Broker::start();
    broker.create_topic("events", 1);
    let brokers = broker.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let chunks = sealed_chunks(&dir.path().join("spool"), "01boot0000000000000k", 3, 5);
    let bad = &chunks[0].0.path;
    let bytes = std::fs::read(bad).unwrap();
    std::fs::write(bad, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let flags = ["--driver", "kafka", "--kafka-brokers", &brokers, "--kafka-topic", "events"];
    let server = TestServer::start_in(dir, &[&flags[..], &["--upload-backoff-max-ms", "100"]].concat());
    wait_until("two shipped and one set aside", || {
        server.metric("plutos_chunks_shipped_total") == 2 && server.metric("plutos_chunks_corrupt_total") == 1
    });
    let _dir = server.stop();
    let mut ids: Vec<String> = broker
        .read_all("events")
        .iter()
        .map(|m| serde_json::from_slice::<Value>(&m.payload).unwrap()["raw_data"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut want: Vec<String> = [&chunks[1].1, &chunks[2].1].into_iter().flatten().cloned().collect();
    want.sort();
    assert_eq!(ids, want, "nothing of the corrupt chunk, every event of the others once");
}

#[test]
fn a_missing_topic_keeps_every_chunk_in_the_spool_and_says_so_in_one_line() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let brokers = broker.addr.to_string();
    let collector = common::collector::Collector::spawn(
        dir.path(),
        &[
            ("DRIVER", "kafka"),
            ("KAFKA_BROKERS", &brokers),
            ("KAFKA_TOPIC", "absent"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "1"),
        ],
    );
    assert_eq!(get(collector.addr, "/e?tag=kept").status, 200);
    wait_until("the chunk to be sealed and tried", || {
        metric(collector.addr, "plutos_upload_failures_total{kind=\"permanent\"}") > 0
    });
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("kafka topic absent does not exist"), "{stderr}");
    let sealed = std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count();
    assert!(sealed >= 1, "the chunk stays in the spool");
}

#[test]
fn a_broker_that_is_down_fills_the_spool_to_503_and_every_ack_ships_once_it_is_up() {
    let port = Broker::free_port();
    let brokers = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let collector = common::collector::Collector::spawn(
        dir.path(),
        &[
            ("DRIVER", "kafka"),
            ("KAFKA_BROKERS", &brokers),
            ("KAFKA_TOPIC", "events"),
            ("COMPRESSION_TYPE", "none"),
            ("MAX_SPOOL_BYTES", "256KiB"),
            ("MAX_BUFFER_TIME_MILLISECONDS", "100"),
            // Between the broker's start and the topic's creation an attempt finds no topic: a permanent
            // failure, tried again at this cadence (60 s by default).
            ("UPLOAD_PERMANENT_RETRY_MS", "200"),
        ],
    );
    let mut client = Client::connect(collector.addr);
    let mut acked = Vec::new();
    let mut refused = 0;
    // The broker is down from the start: 2xx until the spool is at its cap, then 503.
    for i in 0..20_000 {
        let head = format!("GET /e?id=down-{i}&pad={} HTTP/1.1\r\nHost: t\r\n\r\n", "p".repeat(100));
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
    wait_until("the outage to be counted", || {
        metric(collector.addr, "plutos_kafka_errors_total{kind=\"unreachable\"}") > 0
    });
    let broker = Broker::start_on(port);
    broker.create_topic("events", 2);
    wait_until("the spool to drain", || metric(collector.addr, "plutos_chunks_queued") == 0);
    assert_eq!(metric(collector.addr, "plutos_kafka_messages_in_flight"), 0);
    assert_eq!(metric(collector.addr, "plutos_kafka_messages_acknowledged_total"), acked.len() as u64);
    wait_until("ingest to resume", || {
        let head = format!("GET /e?id=up-{} HTTP/1.1\r\nHost: t\r\n\r\n", acked.len());
        let ok = client.try_request(head.as_bytes()).expect("an answer").status == 200;
        if ok {
            acked.push(format!("up-{}", acked.len()));
        }
        ok
    });
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let mut counts: HashMap<String, usize> = HashMap::new();
    for message in broker.read_all("events") {
        let record: Value = serde_json::from_slice(&message.payload).unwrap();
        *counts.entry(record["raw_data"]["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    let missing = acked.iter().filter(|id| !counts.contains_key(*id)).count();
    assert_eq!(missing, 0, "of {} acked events", acked.len());
    assert!(counts.values().all(|&n| n == 1), "every event once");
    assert_eq!(counts.len(), acked.len(), "nothing refused was produced");
    verify_topic(&brokers, &[]);
    println!("broker down from the start: {} acked, then 503; after it came up every ack produced once", acked.len());
}

#[test]
fn tls_to_the_broker_through_a_private_ca_ships_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(dir.path(), "kafka");
    let broker = Broker::start_tls(&pki, false);
    broker.create_topic("events", 2);
    let front = broker.tls_addr.unwrap().to_string();
    let server = shipping_to(&front, &["--kafka-tls-ca", pki.ca.to_str().unwrap()]);
    let mut client = server.client();
    for i in 0..20 {
        assert_eq!(client.request(format!("GET /e?tag=tls-{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status, 200);
    }
    drop(server.stop());
    let mut tags = tags(&broker.read_all("events"));
    tags.sort();
    let mut sent: Vec<String> = (0..20).map(|i| format!("tls-{i}")).collect();
    sent.sort();
    assert_eq!(tags, sent);
    let report = verify_topic(&front, &[("KAFKA_TLS_CA", pki.ca.to_str().unwrap())]);
    assert!(report.contains("plutos verify: 20 messages, 20 events from "), "{report}");
}

/// A broker behind a TLS front that refuses the collector's connection (with `broker_auth`, it requires SASL and
/// knows no user); the collector's stderr and `plutos_kafka_errors_total{kind}` for `kind`. The chunk stays.
fn refused(broker_auth: bool, env: &[(&str, &str)], kind: &str) -> (String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(dir.path(), "kafka");
    let broker = Broker::start_tls(&pki, broker_auth);
    let front = broker.tls_addr.unwrap().to_string();
    let ca = pki.ca.to_str().unwrap();
    let mut all = vec![("DRIVER", "kafka"), ("KAFKA_BROKERS", front.as_str()), ("KAFKA_TOPIC", "events")];
    all.push(("SHUTDOWN_TIMEOUT_SECONDS", "1"));
    all.extend(env.iter().map(|&(k, v)| (k, if v == "{ca}" { ca } else { v })));
    let collector = common::collector::Collector::spawn(dir.path(), &all);
    assert_eq!(get(collector.addr, "/e?tag=kept").status, 200);
    let failures = |kind: &str| metric(collector.addr, &format!("plutos_upload_failures_total{{kind=\"{kind}\"}}"));
    wait_until("the chunk to be sealed and tried", || failures("retryable") + failures("permanent") > 0);
    let errors = metric(collector.addr, &format!("plutos_kafka_errors_total{{kind=\"{kind}\"}}"));
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success(), "{stderr}");
    let sealed = std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count();
    assert!(sealed >= 1, "the chunk stays in the spool");
    (stderr, errors)
}

/// The lines of `stderr` that contain `text`.
fn lines_with<'a>(stderr: &'a str, text: &str) -> Vec<&'a str> {
    stderr.lines().filter(|line| line.contains(text)).collect()
}

#[test]
fn a_broker_certificate_from_an_unknown_ca_is_refused_and_named() {
    // KAFKA_TLS=on without KAFKA_TLS_CA: the system's CAs, which do not know the test CA.
    let (stderr, tls_errors) = refused(false, &[("KAFKA_TLS", "on")], "tls");
    let said = lines_with(&stderr, "certificate verify failed");
    assert!(said[0].contains("the sink cannot take objects: kafka 127.0.0.1:"), "{stderr}");
    // The start-up check's line, then the first failed upload's; repeats are not logged again.
    assert!(said.len() <= 2, "{stderr}");
    assert!(tls_errors > 0);
}

#[test]
fn wrong_sasl_credentials_are_refused_as_permanent_and_named() {
    let sasl = [
        ("KAFKA_TLS_CA", "{ca}"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKA_SASL_USERNAME", "alice"),
        ("KAFKA_SASL_PASSWORD", "wrong"),
    ];
    let (stderr, auth_errors) = refused(true, &sasl, "authorization");
    let said = lines_with(&stderr, "SASL authentication error");
    assert!(said[0].contains("the sink cannot take objects: kafka 127.0.0.1:"), "{stderr}");
    assert!(said.len() <= 2, "{stderr}");
    assert!(said.iter().skip(1).all(|line| line.contains("upload refused; retrying slowly")), "{stderr}");
    assert!(auth_errors > 0);
}
