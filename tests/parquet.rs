//! `OUTPUT_FORMAT=parquet` against the real server: the same traffic (every protocol, enrichment on, a bad row)
//! to an NDJSON collector and a Parquet one lands the same values; `plutos convert` of the NDJSON output gives
//! rows equal to its records field by field; DuckDB and pyarrow read the objects with exactly the README's
//! schema and answer a GROUP BY as over the NDJSON; many small chunks of two workers merge into few objects
//! that `plutos verify` tiles, and a deleted or cut object fails it naming the ranges; a crash between shipping
//! an object and deleting its chunks ships the same object again (same key, same bytes); a corrupt sealed
//! chunk is set aside.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mmdb::MmdbWriter;
use common::parquet::{read_parquet_streams, without_absent};
use common::*;
use serde_json::{Value, json};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn city_db() -> Vec<u8> {
    let london = json!({
        "country": {"iso_code": "GB"},
        "subdivisions": [{"iso_code": "ENG"}],
        "city": {"names": {"en": "London"}},
        "location": {"latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London"},
    });
    MmdbWriter::new("GeoIP2-City", 1_700_000_000).insert("81.2.69.0/24", &london).to_bytes()
}

/// Enrichment on, a registry that refuses an unknown schema, headers captured. Each format has its own copy of the
/// database: a server already running may be loading its file while the next one's flags are written.
fn flags(dir: &Path, format: &str) -> Vec<String> {
    let db = write(dir, &format!("city-{format}.mmdb"), &city_db());
    let registry = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iglu");
    [
        "--output-format",
        format,
        "--geoip-db",
        db.to_str().unwrap(),
        "--geo-precision",
        "city",
        "--ua-parse",
        "on",
        "--bots",
        "flag",
        "--trusted-proxies",
        "127.0.0.1/32",
        "--capture-headers",
        "x-team",
        "--schemas-dir",
        registry,
        "--max-chunk-events",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36";

fn request_with(method: &str, path: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: {CHROME}\r\nX-Forwarded-For: 81.2.69.160\r\nX-Team: a\"b\r\n\
         X-Retry-Count: 1\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The same requests to whichever collector: `/e` GET and POST, a self-describing event of an unknown schema (a
/// bad row), Segment, PostHog and Snowplow, a bot.
fn send_traffic(addr: std::net::SocketAddr) {
    let json = "Content-Type: application/json\r\n";
    let mut client = Client::connect(addr);
    for i in 0..5 {
        assert_eq!(client.request(&request_with("GET", &format!("/e?tag=g{i}&n={i}"), "", "")).status, 200);
    }
    let posted = r#"[{"tag":"p1","nested":{"a":[1,2.5,"x\u00e9"]}},{"tag":"p2","user":"u-1"}]"#;
    assert_eq!(client.request(&request_with("POST", "/e", json, posted)).status, 200);
    let unknown = r#"{"schema":"iglu:com.acme/nope/jsonschema/1-0-0","data":{"tag":"bad-1"}}"#;
    let r = client.request(&request_with("POST", "/e", json, unknown));
    assert_eq!((r.status, r.text()), (200, r#"{"accepted":0,"invalid":1}"#.to_string()));
    let segment = json!({"batch": [
        {"type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "m-1",
         "properties": {"total": 12.5}, "timestamp": "2026-12-02T10:00:00Z"},
        {"type": "page", "name": "Home", "anonymousId": "a-1", "messageId": "m-2"}
    ], "sentAt": "2026-12-02T10:00:02Z"});
    assert_eq!(client.request(&request_with("POST", "/v1/batch", json, &segment.to_string())).status, 200);
    let posthog = json!({"api_key": "k", "batch": [
        {"event": "$pageview", "distinct_id": "d-1", "uuid": "01936f4e-8a3b-7c1d-9e2f-0a1b2c3d4e5f",
         "properties": {"$device_id": "dev-1", "$current_url": "https://x/"}},
        {"event": "signed_up", "distinct_id": "d-2", "properties": {"plan": "pro"}}
    ]});
    assert_eq!(client.request(&request_with("POST", "/batch", json, &posthog.to_string())).status, 200);
    let snowplow = json!({
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [{"e": "pv", "eid": "s-1", "aid": "shop", "url": "https://x/", "dtm": "1796222225372",
                  "stm": "1796222225400", "duid": "d-1", "uid": "u-1"},
                 {"e": "se", "eid": "s-2", "aid": "shop", "se_ca": "shop", "se_ac": "add"}]
    });
    let tp2 = "/com.snowplowanalytics.snowplow/tp2";
    assert_eq!(client.request(&request_with("POST", tp2, json, &snowplow.to_string())).status, 200);
    let bot =
        "GET /e?tag=bot HTTP/1.1\r\nHost: t\r\nUser-Agent: Googlebot/2.1 (+http://www.google.com/bot.html)\r\n\r\n";
    assert_eq!(client.request(bot.as_bytes()).status, 200);
}

/// 5 GETs, 2 posted, 2 Segment, 2 PostHog, 2 Snowplow, the bot.
const GOOD_EVENTS: usize = 14;

/// The value that names an event across collectors: its raw data.
fn by_raw_data(records: &[Value]) -> BTreeMap<String, Value> {
    let map: BTreeMap<String, Value> = records.iter().map(|r| (r["raw_data"].to_string(), r.clone())).collect();
    assert_eq!(map.len(), records.len(), "raw data tells every event apart");
    map
}

fn plutos(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plutos")).args(args).env_clear().output().unwrap()
}

fn verify(out: &Path) -> (bool, String) {
    let output = plutos(&["verify", out.to_str().unwrap()]);
    (output.status.success(), String::from_utf8(output.stdout).unwrap())
}

#[test]
fn the_same_traffic_lands_the_same_values_in_ndjson_and_parquet_and_convert_gives_equal_rows() {
    let dir = tempfile::tempdir().unwrap();
    let ndjson_flags = flags(dir.path(), "ndjson");
    let ndjson = TestServer::start(&ndjson_flags.iter().map(String::as_str).collect::<Vec<_>>());
    let parquet_flags = flags(dir.path(), "parquet");
    let parquet = TestServer::start(&parquet_flags.iter().map(String::as_str).collect::<Vec<_>>());
    send_traffic(ndjson.addr);
    send_traffic(parquet.addr);
    let ndjson_dir = ndjson.stop();
    let parquet_dir = parquet.stop();
    let (records, bad_rows) = read_streams(&ndjson_dir.path().join("out"));
    assert_eq!((records.len(), bad_rows.len()), (GOOD_EVENTS, 1));
    let parquet_out = parquet_dir.path().join("out");
    let (rows, bad) = read_parquet_streams(&parquet_out);
    assert_eq!((rows.len(), bad.len()), (GOOD_EVENTS, 1));
    let (ok, report) = verify(&parquet_out);
    assert!(ok, "{report}");

    // Across collectors: every value but the ones each collector makes itself (its clock and its ids).
    let per_collector = ["written_at", "request_id", "timestamp", "visitor_id"];
    let rows = by_raw_data(&rows);
    for (raw, record) in by_raw_data(&records) {
        let row = rows.get(&raw).unwrap_or_else(|| panic!("no row for {raw}"));
        for (name, value) in record.as_object().unwrap() {
            let own_id = name == "event_id" && record["event_id"] == record["request_id"];
            if per_collector.contains(&name.as_str()) || own_id {
                continue;
            }
            assert_eq!(&row[name], value, "{name} of {raw}");
        }
    }
    assert!(rows.values().any(|r| r["geo"]["city"] == "London"), "geo in its struct");
    assert!(rows.values().any(|r| r["agent"]["browser"] == "Chrome"), "agent in its struct");
    assert!(rows.values().any(|r| r["bot"] == true && r["bot_match"].is_string()), "the bot verdict");
    assert!(rows.values().all(|r| r["headers"]["x-team"] == "a\"b" || r["raw_data"]["tag"] == "bot"));
    for protocol in ["plutos", "segment", "posthog", "snowplow"] {
        assert!(rows.values().any(|r| r["protocol"] == protocol), "{protocol}");
    }

    // convert: the NDJSON output as Parquet, row for record, every field equal.
    let converted = dir.path().join("converted");
    let output = plutos(&["convert", ndjson_dir.path().join("out").to_str().unwrap(), converted.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains(&format!("{} events into", GOOD_EVENTS + 1)), "{said}");
    let (ok, report) = verify(&converted);
    assert!(ok, "{report}");
    let (rows, bad) = read_parquet_streams(&converted);
    let rows = by_raw_data(&rows);
    for (raw, record) in by_raw_data(&records) {
        assert_eq!(without_absent(rows[&raw].clone()), without_absent(record), "{raw}");
    }
    let mut bad_row = bad[0].clone();
    let time = bad_row.as_object_mut().unwrap().remove("timestamp").unwrap();
    assert_eq!(bad_row, bad_rows[0]);
    assert_eq!(time, bad_rows[0]["data"]["failure"]["timestamp"]);
    // Each chunk's sha256 in the manifest is its decoded lines': the NDJSON chunk's, decompressed.
    let manifests = sidecars(&converted);
    let listed: Vec<&Value> = manifests.iter().flat_map(|m| m["chunks"].as_array().unwrap()).collect();
    let ndjson_out = ndjson_dir.path().join("out");
    for shipped in read_shipped(&ndjson_out) {
        let (mut text, codec) = (Vec::new(), plutos::spool::Codec::from_file_name(&shipped.key).unwrap());
        plutos::spool::encoder::decode(codec, &std::fs::read(ndjson_out.join(&shipped.key)).unwrap(), &mut text)
            .unwrap();
        let (_, sha256) = plutos::ship::object::sha256_of(text.as_slice()).unwrap();
        let entry = listed.iter().find(|c| c["first-seq"] == shipped.first_seq && c["sha256"] == sha256.as_str());
        assert!(entry.is_some(), "{}: its sha256 in a manifest", shipped.key);
    }
    assert_eq!(listed.len(), read_shipped(&ndjson_dir.path().join("out")).len(), "every chunk in one object");
}

/// Every `.parquet.meta.json` under `root`.
fn sidecars(root: &Path) -> Vec<Value> {
    let mut files = Vec::new();
    collect_files(root, &mut files);
    files.sort();
    files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".parquet.meta.json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

fn parquet_objects(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect_files(root, &mut files);
    files.retain(|p| p.to_string_lossy().ends_with(".parquet"));
    files.sort();
    files
}

#[test]
fn many_small_chunks_of_two_workers_merge_into_few_objects_that_verify_tiles() {
    // Objects of about 40 chunks' NDJSON.
    let server = TestServer::start(&[
        "--output-format",
        "parquet",
        "--max-chunk-events",
        "5",
        "--parquet-target-bytes",
        "64KiB",
    ]);
    // A connection per request: the kernel spreads them over both workers.
    for i in 0..400 {
        assert_eq!(get(server.addr, &format!("/e?i={i}")).status, 200);
    }
    let dir = server.stop();
    let out = dir.path().join("out");
    let objects = parquet_objects(&out);
    let manifests = sidecars(&out);
    let chunks: usize = manifests.iter().map(|m| m["chunks"].as_array().unwrap().len()).sum();
    assert!(chunks >= 80, "{chunks} chunks of at most 5 events");
    assert!(objects.len() >= 2 && objects.len() <= chunks / 10, "{} objects for {chunks} chunks", objects.len());
    let workers: std::collections::HashSet<String> =
        manifests.iter().flat_map(|m| m["chunks"].as_array().unwrap()).map(|c| c["worker"].to_string()).collect();
    assert_eq!(workers.len(), 2, "chunks of both workers");
    let (rows, _) = read_parquet_streams(&out);
    assert_eq!(rows.len(), 400);
    let (ok, report) = verify(&out);
    assert!(ok && report.contains("400 events from 2 writers; 0 gaps"), "{report}");
    let left: usize = ["sealed", "open", "merge"]
        .iter()
        .map(|d| std::fs::read_dir(dir.path().join("spool").join(d)).map_or(0, |e| e.count()))
        .sum();
    assert_eq!(left, 0, "the spool is empty once every object is shipped");

    // A cut object: its footer is gone; the chunks its sidecar lists are named as missing.
    let object = &objects[0];
    let bytes = std::fs::read(object).unwrap();
    std::fs::write(object, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, report) = verify(&out);
    assert!(!ok, "{report}");
    assert!(report.contains("not a Parquet file") || report.contains("undecodable"), "{report}");
    assert!(report.contains(" 1 bad objects"), "{report}");
    assert!(report.lines().any(|l| l.starts_with("gap ") && l.contains("cannot be read")), "{report}");
    // A deleted object (the first: each writer's next range starts after it): its ranges are gaps.
    std::fs::remove_file(object).unwrap();
    std::fs::remove_file(format!("{}.meta.json", object.display())).unwrap();
    let (ok, report) = verify(&out);
    let gaps: Vec<&str> = report.lines().filter(|l| l.starts_with("gap ") && l.contains(": events 0..=")).collect();
    assert!(!ok && gaps.len() == 2, "both writers' first events: {report}");
}

/// A crash after an object was shipped and before its chunks were deleted: the start after it builds the same
/// object again from the same chunks (its list was durable before it shipped) and ships it under the same key
/// with the same bytes — no duplicated range.
#[test]
fn an_object_shipped_before_a_crash_is_shipped_again_identically_under_its_key() {
    let dir = tempfile::tempdir().unwrap();
    // The sink cannot take anything (OUT_DIR is a file): objects close and wait in the spool with their lists.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"").unwrap();
    // Chunks of 10 events, sealed by count only; each closes an object of its own (over 2 KiB of NDJSON).
    let blocked_env = [
        ("OUTPUT_FORMAT", "parquet"),
        ("OUT_DIR", blocked.to_str().unwrap()),
        ("MAX_CHUNK_EVENTS", "10"),
        ("MAX_BUFFER_TIME_MILLISECONDS", "3600000"),
        ("PARQUET_TARGET_BYTES", "2KiB"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "0"),
    ];
    let collector = collector::Collector::spawn(dir.path(), &blocked_env);
    let mut client = Client::connect(collector.addr);
    // 5 full chunks, and 5 events in an open chunk that the kill leaves to be repaired.
    for i in 0..55 {
        assert_eq!(client.request(format!("GET /e?i={i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status, 200);
    }
    let merge = dir.path().join("spool/merge");
    let lists = || -> Vec<PathBuf> {
        let mut files = Vec::new();
        collect_files(&merge, &mut files);
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files
    };
    wait_until("five objects closed with their lists", || lists().len() == 5);
    // Every sealed chunk not shipped counts as queued, whether in a closed object or in one being built.
    let sealed = || std::fs::read_dir(dir.path().join("spool/sealed")).unwrap().count() as u64;
    wait_until("plutos_chunks_queued counts the sealed chunks", || {
        metric(collector.addr, "plutos_chunks_queued") == sealed()
    });
    collector.signal(libc::SIGKILL);
    assert!(!collector.wait().success());
    // What a sink that took the object before the crash holds: the object under its key.
    let list: Value = serde_json::from_slice(&std::fs::read(&lists()[0]).unwrap()).unwrap();
    let key = list["key"].as_str().unwrap();
    let object = lists()[0].with_extension("parquet");
    let shipped = std::fs::read(&object).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join(key).parent().unwrap()).unwrap();
    std::fs::write(out.join(key), &shipped).unwrap();
    // A start that finds the five lists and the repaired chunk counts each chunk once (the sink still blocked).
    let again = collector::Collector::spawn(dir.path(), &blocked_env);
    wait_until("the recovered chunks counted once", || {
        sealed() == 6 && metric(again.addr, "plutos_chunks_queued") == 6
    });
    again.signal(libc::SIGKILL);
    assert!(!again.wait().success());

    let restarted = collector::Collector::spawn(dir.path(), &[("OUTPUT_FORMAT", "parquet")]);
    restarted.signal(libc::SIGTERM);
    assert!(restarted.wait().success());
    assert_eq!(std::fs::read(out.join(key)).unwrap(), shipped, "the same key, the same bytes");
    let (ok, report) = verify(&out);
    assert!(ok && report.contains(" 0 duplicated ranges"), "{report}");
    let (rows, _) = read_parquet_streams(&out);
    assert_eq!(rows.len(), 55, "every acknowledged event once");
}

#[test]
fn a_corrupt_sealed_chunk_is_set_aside_and_the_rest_ship() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = dir.path().join("spool/sealed");
    std::fs::create_dir_all(&sealed).unwrap();
    std::fs::create_dir_all(dir.path().join("spool/open")).unwrap();
    // A chunk whose name counts 3 events and whose bytes are not gzip.
    std::fs::write(sealed.join("0123-w0-00000000-f0-t1796580000-n3.ndjson.gz"), b"not gzip at all").unwrap();
    let server = TestServer::start_in(dir, &["--output-format", "parquet"]);
    for i in 0..10 {
        assert_eq!(get(server.addr, &format!("/e?i={i}")).status, 200);
    }
    let dir = server.stop();
    let (rows, _) = read_parquet_streams(&dir.path().join("out"));
    assert_eq!(rows.len(), 10);
    let aside: Vec<_> = std::fs::read_dir(dir.path().join("spool/corrupt")).unwrap().collect();
    assert_eq!(aside.len(), 1, "set aside, not retried forever");
}

/// DuckDB and pyarrow (from PyPI) read the objects typed, with exactly the schema the README documents, and
/// a GROUP BY event_name answers as over the NDJSON.
#[test]
fn duckdb_and_pyarrow_read_the_documented_schema_and_answer_as_over_ndjson() {
    let python = &common::sdks::sdks().0;
    let dir = tempfile::tempdir().unwrap();
    let ndjson_flags = flags(dir.path(), "ndjson");
    let ndjson = TestServer::start(&ndjson_flags.iter().map(String::as_str).collect::<Vec<_>>());
    send_traffic(ndjson.addr);
    let ndjson_dir = ndjson.stop();
    let converted = dir.path().join("converted");
    let output = plutos(&["convert", ndjson_dir.path().join("out").to_str().unwrap(), converted.to_str().unwrap()]);
    assert!(output.status.success());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parquet_read.py");
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let output = Command::new(python)
        .arg(script)
        .arg(&converted)
        .arg(ndjson_dir.path().join("out"))
        .arg(readme)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains(&format!("rows {GOOD_EVENTS}")), "{said}");
}
