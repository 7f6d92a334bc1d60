//! Crash trials on the real binary (also `scripts/crash-test.sh [TRIALS]`): keep-alive clients and pipelining
//! clients deep into a slow-reading socket record every event answered 2xx; the collector is killed with
//! SIGKILL at a random moment, restarted on the same spool and stopped gracefully; then every acknowledged event
//! must have been shipped and `plutos verify` must find no gap and no bad object. The file sink, S3 with
//! small chunks so the kill lands during uploads, and Kafka (tansu) the same way, read back from every partition;
//! and the file sink with the clients over HTTPS (answers encrypted only after the spool write); and the file
//! sink with bad rows in every batch (each acknowledged event once, in the good stream or the bad one); and
//! OUTPUT_FORMAT=parquet on the file and S3 sinks (the kill during conversion or upload of merged objects); and
//! SQS (moto), a standard queue and a FIFO one (whose deduplication ids keep a re-sent event from being
//! delivered twice), and the file sink with object-ready notifications (every object notified at least once).
//! Each trial prints acked / lost / duplicates, then a total;
//! `PLUTOS_CRASH_TRIALS` sets the number of trials per sink (default 3).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::collector::*;
use common::h2::H2Load;
use common::kafka::Broker;
use common::s3::*;
use common::sqs::Moto;
use common::*;

fn trials() -> usize {
    std::env::var("PLUTOS_CRASH_TRIALS").map_or(3, |n| n.parse().expect("PLUTOS_CRASH_TRIALS is a number"))
}

/// What one trial found.
#[derive(Default)]
struct Outcome {
    acked: u64,
    lost: u64,
    duplicates: u64,
    verified: bool,
}

/// Kills a collector under load at a random moment, restarts it on the same spool, stops it; returns every
/// acknowledged event id. With `tls`, the clients send over HTTPS (the env must set TLS_PORT and the pair); the
/// kill comes once the clients have a number of events in `kill_after` acknowledged. Besides 4 keep-alive
/// clients, `pipelining` clients write far ahead of their answers.
fn kill_and_restart(dir: &Path, env: &[(&str, &str)], tag: &str) -> Vec<String> {
    kill_and_restart_over(dir, env, None, tag, 500..20_000, 2)
}

fn kill_and_restart_over(
    dir: &Path,
    env: &[(&str, &str)],
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    tag: &str,
    kill_after: std::ops::Range<u64>,
    pipelining: usize,
) -> Vec<String> {
    let collector = Collector::spawn(dir, env);
    let load = match tls {
        Some(config) => Load::start_tls(collector.tls_addr(), config, 4, tag),
        None => Load::start_with(collector.addr, 4, pipelining, tag),
    };
    load.wait_for(random_in(kill_after));
    collector.signal(libc::SIGKILL);
    assert!(!collector.wait().success());
    let acked = load.finish();
    restart_and_stop(dir, env, tag);
    acked
}

/// Starts a collector on the spool a killed one left, stops it gracefully (it recovers and ships first) and
/// checks that it exited cleanly.
fn restart_and_stop(dir: &Path, env: &[(&str, &str)], tag: &str) {
    let mut restarted = Collector::spawn(dir, env);
    restarted.signal(libc::SIGTERM);
    let stopping = std::time::Instant::now();
    while restarted.child_running() && stopping.elapsed() < DEADLINE {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if restarted.child_running() {
        restarted.signal(libc::SIGKILL);
        let (_, stderr) = restarted.wait_with_stderr();
        panic!("{tag}: no exit after recovery: {stderr}");
    }
    let (status, stderr) = restarted.wait_with_stderr();
    assert!(status.success(), "{tag}: clean exit after recovery: {stderr}");
}

/// Compares the acknowledged ids with the shipped ones (counted) and runs `plutos verify` on the target.
fn outcome(acked: &[String], shipped: &HashMap<String, usize>, verify: &mut Command, tag: &str) -> Outcome {
    let lost = acked.iter().filter(|id| !shipped.contains_key(*id)).count() as u64;
    let duplicates = shipped.values().map(|n| *n as u64 - 1).sum();
    let output = verify.output().unwrap();
    let report = String::from_utf8(output.stdout).unwrap();
    let summary = report.lines().last().unwrap_or_default().to_string();
    println!("{tag}: acked {}, lost {lost}, duplicates {duplicates}; {summary}", acked.len());
    if !output.status.success() {
        println!("{report}");
    }
    Outcome { acked: acked.len() as u64, lost, duplicates, verified: output.status.success() }
}

/// Prints the total and fails if any trial lost an event, did not verify, or repeated more events than
/// `max_duplicates` (the sink's bound for one kill).
fn conclude(sink: &str, outcomes: &[Outcome], max_duplicates: u64) {
    let sum = |f: fn(&Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let failed = outcomes.iter().filter(|o| !o.verified).count();
    println!(
        "{sink}: {} trials: acked {}, lost {}, duplicates {}, verify failed in {failed}",
        outcomes.len(),
        sum(|o| o.acked),
        sum(|o| o.lost),
        sum(|o| o.duplicates)
    );
    assert_eq!(sum(|o| o.lost), 0, "{sink}: acknowledged events lost");
    assert_eq!(failed, 0, "{sink}: plutos verify found a gap or a bad object");
    let most = outcomes.iter().map(|o| o.duplicates).max().unwrap_or(0);
    assert!(most <= max_duplicates, "{sink}: a kill repeated {most} events, over its bound of {max_duplicates}");
}

#[test]
fn file_sink_sigkill_at_random_moments_loses_no_acknowledged_event() {
    file_sink_trials(None, "file sink", "file");
}

/// With a registry and `VALIDATION=reject`, one event of every batch is a bad row: after the kill every
/// acknowledged event is in the good stream or the bad one, exactly once, and `plutos verify` tiles both.
#[test]
fn bad_rows_in_flight_sigkill_at_random_moments_every_acknowledged_event_once_in_one_stream() {
    let registry = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iglu");
    let env = [("MAX_CHUNK_EVENTS", "2000"), ("SCHEMAS_DIR", registry)];
    let mut outcomes = Vec::new();
    for trial in 0..trials() {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("bad rows trial {trial}");
        let collector = Collector::spawn(dir.path(), &env);
        let load = Load::start_with_bad_rows(collector.addr, 4, &format!("b{trial}"));
        load.wait_for(random_in(500..20_000));
        collector.signal(libc::SIGKILL);
        assert!(!collector.wait().success());
        let acked = load.finish();
        let restarted = Collector::spawn(dir.path(), &env);
        restarted.signal(libc::SIGTERM);
        assert!(restarted.wait().success(), "{tag}: clean exit after recovery");
        let out = dir.path().join("out");
        let (records, rows) = read_streams(&out);
        let mut shipped = HashMap::new();
        let good = records.iter().map(|r| r["raw_data"]["id"].as_str().unwrap().to_string());
        let bad = rows.iter().map(|row| {
            let unstruct = row["data"]["payload"]["enriched"]["unstruct_event"].as_str().unwrap();
            let event: serde_json::Value = serde_json::from_str(unstruct).unwrap();
            assert_eq!(event["schema"], UNKNOWN_SCHEMA, "{tag}: only the unknown schema's events are bad rows");
            event["data"]["id"].as_str().unwrap().to_string()
        });
        for id in good.chain(bad) {
            *shipped.entry(id).or_insert(0) += 1;
        }
        assert!(!rows.is_empty(), "{tag}: bad rows were in flight");
        let mut verify = Command::new(env!("CARGO_BIN_EXE_plutos"));
        verify.arg("verify").arg(&out).env_clear();
        outcomes.push(outcome(&acked, &shipped, &mut verify, &tag));
    }
    conclude("file sink with bad rows", &outcomes, 0);
}

#[test]
fn https_clients_sigkill_at_random_moments_lose_no_acknowledged_event() {
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(certs.path(), "crash");
    file_sink_trials(Some(&pki), "file sink over HTTPS", "https");
}

/// The file sink's trials; with `pki`, the clients send over HTTPS to a listener with its certificate.
fn file_sink_trials(pki: Option<&common::pki::Pki>, sink: &str, name: &str) {
    let mut env = vec![("MAX_CHUNK_EVENTS", "2000")];
    if let Some(pki) = pki {
        let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
        env.extend([("TLS_PORT", "127.0.0.1:0"), ("TLS_CERT", cert), ("TLS_KEY", key)]);
    }
    let mut outcomes = Vec::new();
    for trial in 0..trials() {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("{name} trial {trial}");
        let client = pki.map(|pki| pki.client(&[&rustls::version::TLS13], &[]));
        let acked = kill_and_restart_over(dir.path(), &env, client, &format!("{}{trial}", &name[..1]), 500..20_000, 2);
        outcomes.push(file_sink_outcome(dir.path(), &acked, &tag));
    }
    // A chunk shipped again after the kill lands on its own key, where an object with its sha256 counts as done.
    conclude(sink, &outcomes, 0);
}

/// What a file-sink trial in `dir` shipped against what was `acked`, `plutos verify` on it, and an empty spool.
fn file_sink_outcome(dir: &Path, acked: &[String], tag: &str) -> Outcome {
    let out = dir.join("out");
    let mut shipped = HashMap::new();
    for record in read_shipped(&out).into_iter().flat_map(|s| s.records) {
        *shipped.entry(record["raw_data"]["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    let mut verify = Command::new(env!("CARGO_BIN_EXE_plutos"));
    verify.arg("verify").arg(&out).env_clear();
    let outcome = outcome(acked, &shipped, &mut verify, tag);
    let left = std::fs::read_dir(dir.join("spool/sealed")).unwrap().count()
        + std::fs::read_dir(dir.join("spool/open")).unwrap().count();
    assert_eq!(left, 0, "{tag}: everything shipped, spool empty");
    outcome
}

/// HTTP/2 clients (hyper-h2, `tests/h2_load.py`) — h2 over TLS and h2c side by side, 64 streams in flight on each
/// connection, GETs and NDJSON POSTs — killed with the collector at a random moment: every event a stream got
/// its 200 for is shipped after the restart, once.
#[test]
fn http2_clients_sigkill_at_random_moments_lose_no_acknowledged_event() {
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(certs.path(), "crash-h2");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let env = [("MAX_CHUNK_EVENTS", "2000"), ("TLS_PORT", "127.0.0.1:0"), ("TLS_CERT", cert), ("TLS_KEY", key)];
    let mut outcomes = Vec::new();
    for trial in 0..trials() {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("http2 trial {trial}");
        let collector = Collector::spawn(dir.path(), &env);
        let over_tls = H2Load::start(collector.tls_addr(), Some(&pki.ca), 2, 64, &format!("t{trial}"));
        let cleartext = H2Load::start(collector.addr, None, 2, 64, &format!("c{trial}"));
        let kill_after = random_in(500..20_000);
        wait_until("HTTP/2 clients to get acknowledgements", || over_tls.acked() + cleartext.acked() >= kill_after);
        collector.signal(libc::SIGKILL);
        assert!(!collector.wait().success());
        let mut acked = over_tls.finish();
        acked.extend(cleartext.finish());
        restart_and_stop(dir.path(), &env, &tag);
        outcomes.push(file_sink_outcome(dir.path(), &acked, &tag));
    }
    conclude("file sink over HTTP/2", &outcomes, 0);
}

/// HTTP/3 clients (aioquic, `tests/h3_load.py`), 64 streams in flight on each of two connections, GETs and
/// NDJSON POSTs, killed with the collector at a random moment: every event a stream got its 200 for is shipped
/// after the restart, once.
#[test]
fn http3_clients_sigkill_at_random_moments_lose_no_acknowledged_event() {
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(certs.path(), "crash-h3");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let env = [
        ("MAX_CHUNK_EVENTS", "2000"),
        ("TLS_PORT", "127.0.0.1:0"),
        ("QUIC_PORT", "127.0.0.1:0"),
        ("TLS_CERT", cert),
        ("TLS_KEY", key),
    ];
    let mut outcomes = Vec::new();
    for trial in 0..trials() {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("http3 trial {trial}");
        let collector = Collector::spawn(dir.path(), &env);
        let load = H2Load::start_h3(collector.quic_addr(), &pki.ca, 2, 64, &format!("t{trial}"));
        let kill_after = random_in(500..10_000);
        wait_until("HTTP/3 clients to get acknowledgements", || load.acked() >= kill_after);
        collector.signal(libc::SIGKILL);
        assert!(!collector.wait().success());
        let acked = load.finish();
        restart_and_stop(dir.path(), &env, &tag);
        outcomes.push(file_sink_outcome(dir.path(), &acked, &tag));
    }
    conclude("file sink over HTTP/3", &outcomes, 0);
}

#[test]
fn s3_sigkill_during_uploads_loses_no_acknowledged_event() {
    let mut outcomes = Vec::new();
    for trial in 0..trials() {
        let server = S3Server::start();
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("s3 trial {trial}");
        let base = server.collector_env(&server.endpoint());
        let mut env: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Many small chunks, shipped four at a time: the kill lands while uploads are in flight.
        env.extend([("MAX_CHUNK_EVENTS", "500"), ("UPLOAD_CONCURRENCY", "4")]);
        let acked = kill_and_restart(dir.path(), &env, &format!("s{trial}"));
        let shipped = shipped_id_counts(&server.client());
        let mut verify = Command::new(env!("CARGO_BIN_EXE_plutos"));
        verify.args(["verify", "s3://events"]).env_clear().envs(base.iter().map(|(k, v)| (*k, v.as_str())));
        outcomes.push(outcome(&acked, &shipped, &mut verify, &tag));
    }
    // As for the file sink: the same key, the same sha256 (a conditional PUT that finds it is done).
    conclude("S3 sink", &outcomes, 0);
}

/// `OUTPUT_FORMAT=parquet`, file sink: the kill lands while chunks are converted into objects or objects
/// shipped (small objects, closed often); the next start builds the listed objects again to the same bytes.
#[test]
fn parquet_file_sink_sigkill_during_conversion_and_upload_loses_no_acknowledged_event() {
    let env = [("OUTPUT_FORMAT", "parquet"), ("MAX_CHUNK_EVENTS", "500"), ("PARQUET_TARGET_BYTES", "256KiB")];
    let mut outcomes = Vec::new();
    for trial in 0..trials() {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("parquet file trial {trial}");
        let acked = kill_and_restart(dir.path(), &env, &format!("q{trial}"));
        let out = dir.path().join("out");
        let mut shipped = HashMap::new();
        for row in common::parquet::read_parquet_streams(&out).0 {
            *shipped.entry(row["raw_data"]["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
        let mut verify = Command::new(env!("CARGO_BIN_EXE_plutos"));
        verify.arg("verify").arg(&out).env_clear();
        outcomes.push(outcome(&acked, &shipped, &mut verify, &tag));
        let left: usize = ["sealed", "open", "merge"]
            .iter()
            .map(|d| std::fs::read_dir(dir.path().join("spool").join(d)).map_or(0, |e| e.count()))
            .sum();
        assert_eq!(left, 0, "{tag}: everything shipped, spool empty");
    }
    conclude("Parquet file sink", &outcomes, 0);
}

#[test]
fn parquet_s3_sigkill_during_conversion_and_upload_loses_no_acknowledged_event() {
    let mut outcomes = Vec::new();
    for trial in 0..trials() {
        let server = S3Server::start();
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("parquet s3 trial {trial}");
        let base = server.collector_env(&server.endpoint());
        let mut env: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend([("OUTPUT_FORMAT", "parquet"), ("MAX_CHUNK_EVENTS", "500"), ("PARQUET_TARGET_BYTES", "256KiB")]);
        let acked = kill_and_restart(dir.path(), &env, &format!("r{trial}"));
        let client = server.client();
        let mut shipped = HashMap::new();
        for key in client.keys() {
            let object = client.get(&key);
            assert_eq!(object.content_type.as_deref(), Some("application/vnd.apache.parquet"), "{key}");
            for row in common::parquet::rows_of(object.bytes) {
                *shipped.entry(row["raw_data"]["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
            }
        }
        let mut verify = Command::new(env!("CARGO_BIN_EXE_plutos"));
        verify.args(["verify", "s3://events"]).env_clear().envs(base.iter().map(|(k, v)| (*k, v.as_str())));
        outcomes.push(outcome(&acked, &shipped, &mut verify, &tag));
    }
    // An object shipped before the kill is built again to the same bytes and found there (same sha256).
    conclude("Parquet S3 sink", &outcomes, 0);
}

#[test]
fn kafka_sigkill_during_production_loses_no_acknowledged_event() {
    let mut outcomes = Vec::new();
    for trial in 0..trials() {
        let broker = Broker::start();
        broker.create_topic("events", 3);
        let brokers = broker.addr.to_string();
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("kafka trial {trial}");
        let env = [
            ("DRIVER", "kafka"),
            ("KAFKA_BROKERS", brokers.as_str()),
            ("KAFKA_TOPIC", "events"),
            // Chunks of up to 5,000 events (sealed every 150 ms), produced four at a time with at most 50
            // messages each past their acknowledged prefix: the kill lands while messages are in flight, and a
            // chunk produced again after it resumes from its progress mark instead of from its start.
            ("MAX_CHUNK_EVENTS", "5000"),
            ("UPLOAD_CONCURRENCY", "4"),
            ("KAFKA_MAX_IN_FLIGHT", "50"),
            ("KAFKA_LINGER_MS", "1"),
        ];
        let acked = kill_and_restart(dir.path(), &env, &format!("k{trial}"));
        let mut shipped = HashMap::new();
        for message in broker.read_all("events") {
            let record: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
            *shipped.entry(record["raw_data"]["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
        let mut verify = Command::new(env!("CARGO_BIN_EXE_plutos"));
        verify.arg("verify").arg(format!("kafka://{brokers}/events")).env_clear();
        outcomes.push(outcome(&acked, &shipped, &mut verify, &tag));
        let left = std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count();
        assert_eq!(left, 0, "{tag}: everything produced, spool empty");
    }
    // Per chunk being produced at the kill (at most UPLOAD_CONCURRENCY), at most KAFKA_MAX_IN_FLIGHT messages
    // past its acknowledged prefix and fewer than that acknowledged since its last progress mark.
    conclude("Kafka sink", &outcomes, 4 * 2 * 50);
}

/// SQS, a standard queue and a FIFO one: the kill lands while batches are in flight; the next start sends each
/// chunk again from its progress mark. Read back with boto3; each writer's `seq` attributes must tile `0..` (what
/// `plutos verify --peek` checks — it cannot run here too, since a received message is hidden from the next
/// reader; tests/sqs.rs runs it).
#[test]
fn sqs_sigkill_during_sending_loses_no_acknowledged_event() {
    for name in ["events", "events.fifo"] {
        let mut outcomes = Vec::new();
        for trial in 0..trials() {
            let moto = Moto::start();
            let queue = moto.create_queue(name);
            let dir = tempfile::tempdir().unwrap();
            let tag = format!("sqs {name} trial {trial}");
            let mut env = Moto::collector_env(&queue);
            env.extend([("MAX_CHUNK_EVENTS", "2000".to_string()), ("UPLOAD_CONCURRENCY", "4".to_string())]);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            // A few hundred events from keep-alive clients (no pipelining ones, which write thousands ahead of
            // their answers): moto walks its whole queue for every receive of 10 messages, so reading tens of
            // thousands back would take minutes.
            let acked = kill_and_restart_over(dir.path(), &env, None, &format!("q{trial}"), 200..1_000, 0);
            let left = std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count();
            assert_eq!(left, 0, "{tag}: everything sent, spool empty");
            let mut shipped = HashMap::new();
            let mut seqs: HashMap<(String, String, String), Vec<u64>> = HashMap::new();
            for m in moto.receive_all(&queue) {
                *shipped.entry(m.record()["raw_data"]["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
                let writer =
                    (m.attributes["host"].clone(), m.attributes["boot"].clone(), m.attributes["worker"].clone());
                seqs.entry(writer).or_default().push(m.attributes["seq"].parse().unwrap());
            }
            let tiled = seqs.into_values().all(|mut seq| {
                seq.sort();
                seq.dedup();
                seq.last().is_some_and(|&last| last + 1 == seq.len() as u64)
            });
            let lost = acked.iter().filter(|id| !shipped.contains_key(*id)).count() as u64;
            let duplicates = shipped.values().map(|n| *n as u64 - 1).sum();
            println!("{tag}: acked {}, lost {lost}, duplicates {duplicates}; every writer tiled: {tiled}", acked.len());
            outcomes.push(Outcome { acked: acked.len() as u64, lost, duplicates, verified: tiled });
        }
        if name.ends_with(".fifo") {
            // Every event sent again carries the deduplication id it had: none is delivered twice.
            conclude("SQS FIFO queue", &outcomes, 0);
        } else {
            // Per chunk being sent at the kill (UPLOAD_CONCURRENCY of them): its batches in flight (8 of 10
            // entries) and the entries accepted since its last progress mark (at most 1,000, or 200 ms' worth).
            conclude("SQS standard queue", &outcomes, 4 * (8 * 10 + 1000));
        }
    }
}

/// The file sink with object-ready notifications: after a kill and a restart, every object in the sink was
/// notified at least once (a kill between a notification and the spool's delete sends it again).
#[test]
fn notifications_sigkill_every_object_notified_at_least_once() {
    let mut outcomes = Vec::new();
    for trial in 0..trials() {
        let moto = Moto::start();
        let queue = moto.create_queue("objects");
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("notify trial {trial}");
        let mut env = Moto::collector_env(&queue);
        env.retain(|(k, _)| !matches!(*k, "DRIVER" | "SQS_QUEUE_URL"));
        env.push(("NOTIFY_SQS_QUEUE_URL", queue.clone()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let acked = kill_and_restart(dir.path(), &env, &format!("n{trial}"));
        let out = dir.path().join("out");
        let notified: std::collections::HashSet<String> =
            moto.notifications(&queue).iter().map(|n| n["key"].as_str().unwrap().to_string()).collect();
        let objects: Vec<String> = walk(&out)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "gz"))
            .map(|p| p.strip_prefix(&out).unwrap().display().to_string())
            .collect();
        let unnotified = objects.iter().filter(|key| !notified.contains(*key)).count();
        assert_eq!(unnotified, 0, "{tag}: of {} objects", objects.len());
        let mut shipped = HashMap::new();
        for record in read_shipped(&out).into_iter().flat_map(|s| s.records) {
            *shipped.entry(record["raw_data"]["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
        let mut verify = Command::new(env!("CARGO_BIN_EXE_plutos"));
        verify.arg("verify").arg(&out).env_clear();
        outcomes.push(outcome(&acked, &shipped, &mut verify, &tag));
    }
    conclude("file sink with notifications", &outcomes, 0);
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}
