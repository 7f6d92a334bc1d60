//! The analytics SDKs teams already run, pointed at plutos with their own endpoint setting: Python
//! segment-analytics-python, rudder-sdk-python, posthog and snowplow-tracker; Node @segment/analytics-node,
//! posthog-node and @snowplow/node-tracker (installed, pinned, by scripts/sdks.sh; scripts in tests/sdk/). Each
//! sends its kinds of events, flushes and must see success; the shipped output must hold every event exactly
//! once, with its id and fields. Then DuckDB's `read_json_auto` over everything shipped (SDK events and plutos's
//! own `/e` records) must infer one schema.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::sdks::sdks;
use common::*;
use serde_json::{Value, json};

const SEGMENT_KEY: &str = "wk-segment";
const POSTHOG_KEY: &str = "phc_plutos_test";
/// Snowplow carries no key: a tracker's app id is its key.
const SNOWPLOW_APP: &str = "wk-snowplow";

/// Runs one SDK script against the collector and returns the events it says it sent.
fn run(script: &str, url: &str, key: &str) -> Vec<Value> {
    let (python, node_modules) = sdks();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk").join(script);
    let mut command = if script.ends_with(".py") { Command::new(python) } else { Command::new("node") };
    let output = command
        .arg(&path)
        .args([url, key])
        .env("NODE_PATH", node_modules)
        .stdin(Stdio::null())
        .output()
        .expect("the SDK script starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{script}: {e}: {stderr}"))
}

/// Every event an SDK sent is in `records` exactly once, with its id, kind, name and user.
fn assert_each_once(records: &[Value], protocol: &str, sent: &[Value]) {
    let of_protocol: Vec<&Value> = records.iter().filter(|r| r["protocol"] == protocol).collect();
    for event in sent {
        let matching: Vec<&&Value> = of_protocol
            .iter()
            .filter(|r| match event["event_id"].as_str() {
                Some(id) => r["event_id"] == id,
                None => r["event_name"] == event["event_name"] && r["user_id"] == event["user_id"],
            })
            .collect();
        assert_eq!(matching.len(), 1, "{protocol} {event}: {} records", matching.len());
        let record = matching[0];
        for field in ["event_type", "event_name", "user_id"] {
            assert_eq!(record[field], event[field], "{protocol} {event}: {field} in {record}");
        }
        assert!(record["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_ne!(record["client_ts"], Value::Null, "{record}: every SDK dates its events");
    }
}

fn collector() -> TestServer {
    TestServer::start(&["--write-keys", &[SEGMENT_KEY, POSTHOG_KEY, SNOWPLOW_APP].join(",")])
}

#[test]
fn python_sdks_store_every_event_once() {
    let server = collector();
    let url = format!("http://{}", server.addr);
    let sent: Vec<(&str, Vec<Value>)> = vec![
        ("segment", run("send_segment.py", &url, SEGMENT_KEY)),
        ("segment", run("send_rudder.py", &url, SEGMENT_KEY)),
        ("posthog", run("send_posthog.py", &url, POSTHOG_KEY)),
        ("snowplow", run("send_snowplow.py", &url, SNOWPLOW_APP)),
    ];
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    for (protocol, events) in &sent {
        assert_each_once(&records, protocol, events);
    }
    assert_eq!(records.len(), sent.iter().map(|(_, e)| e.len()).sum::<usize>(), "nothing else");
    let snowplow: Vec<&Value> = records.iter().filter(|r| r["protocol"] == "snowplow").collect();
    assert!(snowplow.iter().all(|r| r["visitor_id"].is_string()), "a network user id for every event");
    let rudder = records.iter().find(|r| r["event_id"] == "rudder-track").unwrap();
    assert_eq!(rudder["raw_data"]["properties"], json!({"button": "buy"}), "gzip'd batches read");
    assert!(!serde_json::to_string(&records).unwrap().contains(POSTHOG_KEY), "no key in any record");
}

#[test]
fn node_sdks_store_every_event_once() {
    let server = collector();
    let url = format!("http://{}", server.addr);
    let sent: Vec<(&str, Vec<Value>)> = vec![
        ("segment", run("send_segment.cjs", &url, SEGMENT_KEY)),
        ("posthog", run("send_posthog.cjs", &url, POSTHOG_KEY)),
        ("snowplow", run("send_snowplow.cjs", &url, SNOWPLOW_APP)),
    ];
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    for (protocol, events) in &sent {
        assert_each_once(&records, protocol, events);
    }
    assert_eq!(records.len(), sent.iter().map(|(_, e)| e.len()).sum::<usize>(), "nothing else");
    let page = records.iter().find(|r| r["event_name"] == "page_view").unwrap();
    let context = &page["raw_data"]["co"]["data"][0];
    assert_eq!(context["data"], json!({"tier": 2}), "the base64 context decoded: {page}");
}

#[test]
fn duckdb_infers_one_schema_over_every_protocol_and_plutos_own_records() {
    // With a registry, flagging, so plutos's self-describing event below gets a `schema` and a `validation` too.
    let registry = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/iglu");
    let keys = [SEGMENT_KEY, POSTHOG_KEY, SNOWPLOW_APP].join(",");
    let server = TestServer::start(&[
        "--write-keys",
        &keys,
        "--schemas-dir",
        registry.to_str().unwrap(),
        "--validation",
        "flag",
    ]);
    let url = format!("http://{}", server.addr);
    run("send_segment.py", &url, SEGMENT_KEY);
    run("send_posthog.cjs", &url, POSTHOG_KEY);
    run("send_snowplow.py", &url, SNOWPLOW_APP);
    let key = format!("write_key={SEGMENT_KEY}");
    assert_eq!(get(server.addr, &format!("/e?page=home&{key}")).status, 200);
    let body = br#"[{"kind":"fetch","n":1},{"schema":"iglu:com.acme/beacon/jsonschema/1-0-0","data":{"n":2}}]"#;
    let mut client = server.client();
    let head = format!("POST /e?{key} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    assert_eq!(client.request(&[head.as_bytes(), body].concat()).status, 200);
    // A retried message with an anonymous id, so those columns hold values too.
    let retried =
        format!(r#"{{"event":"Retried","anonymousId":"a-1","messageId":"m-retried","writeKey":"{SEGMENT_KEY}"}}"#);
    let head =
        format!("POST /v1/track HTTP/1.1\r\nHost: t\r\nX-Retry-Count: 3\r\nContent-Length: {}\r\n\r\n", retried.len());
    assert_eq!(client.request(&[head.as_bytes(), retried.as_bytes()].concat()).status, 200);
    let dir = server.stop();
    let out = dir.path().join("out");
    let records = read_records(&out);
    let (python, _) = sdks();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/duckdb_schema.py");
    let output = Command::new(python).arg(script).arg(&out).output().unwrap();
    assert!(output.status.success(), "DuckDB: {}", String::from_utf8_lossy(&output.stderr));
    let inferred: Value = serde_json::from_slice(&output.stdout).unwrap();
    let columns: HashMap<String, String> = serde_json::from_value(inferred["columns"].clone()).unwrap();
    // One column per record field (and the two of the Hive partition the object keys name), each of one
    // scalar type however many protocols wrote it: text, or what DuckDB reads text as (UUIDs, times).
    let mut names: Vec<&str> = columns.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut want = vec![
        "anonymous_id",
        "client_ts",
        "created_date",
        "event_id",
        "event_name",
        "event_type",
        "hour",
        "ip",
        "method",
        "path",
        "protocol",
        "raw_data",
        "request_id",
        "retry_count",
        "schema",
        "sent_at",
        "timestamp",
        "transport",
        "user_agent",
        "user_id",
        "validation",
        "visitor_id",
        "written_at",
    ];
    want.sort_unstable();
    assert_eq!(names, want, "{inferred}");
    for name in ["written_at", "timestamp"] {
        assert_eq!(columns[name], "TIMESTAMP WITH TIME ZONE", "{name}: {inferred}");
    }
    assert_eq!(columns["retry_count"], "BIGINT", "{inferred}");
    for name in [
        "ip",
        "user_agent",
        "method",
        "path",
        "transport",
        "protocol",
        "event_type",
        "event_name",
        "schema",
        "user_id",
        "anonymous_id",
        "client_ts",
        "sent_at",
    ] {
        assert_eq!(columns[name], "VARCHAR", "{name}: {inferred}");
    }
    let validation = &columns["validation"];
    assert!(validation.starts_with("STRUCT(") && validation.ends_with("[]"), "a list of failures: {inferred}");
    for name in ["request_id", "event_id", "visitor_id"] {
        assert!(matches!(columns[name].as_str(), "VARCHAR" | "UUID"), "{name}: {inferred}");
    }
    assert_eq!(inferred["rows"], records.len());
    let by_protocol = &inferred["protocols"];
    assert_eq!((&by_protocol["plutos"], &by_protocol["segment"]), (&json!(3), &json!(4)), "{inferred}");
    assert_eq!((&by_protocol["posthog"], &by_protocol["snowplow"]), (&json!(3), &json!(4)), "{inferred}");

    // The same records as Parquet (`plutos convert`, the uploader's converter): every field of every SDK's
    // events in its typed column, equal to the record's.
    let converted = dir.path().join("parquet");
    let convert = Command::new(env!("CARGO_BIN_EXE_plutos")).arg("convert").arg(&out).arg(&converted).output().unwrap();
    assert!(convert.status.success(), "{}", String::from_utf8_lossy(&convert.stderr));
    let id = |r: &Value| r["request_id"].as_str().unwrap().to_string();
    let (rows, _) = common::parquet::read_parquet_streams(&converted);
    let rows: HashMap<String, Value> = rows.into_iter().map(|r| (id(&r), common::parquet::without_absent(r))).collect();
    assert_eq!(rows.len(), records.len());
    for record in &records {
        assert_eq!(rows[&id(record)], common::parquet::without_absent(record.clone()), "{record}");
    }
}

/// A tracking plan, with the real SDKs: Segment's and PostHog's "Order Completed" validated against the plan's
/// schema, "Coupon Applied" unplanned, Snowplow's self-describing events against their own. Under reject (and an
/// unplanned rule of reject) the failures are bad rows — Python's jsonschema checks them — and the rest records;
/// under flag everything is a record, the failures flagged. Every SDK reports success either way.
#[test]
fn a_tracking_plan_sorts_the_sdks_events_into_good_and_bad_and_every_sdk_reports_success() {
    let order = r#""type":"object","properties":{"total":{"type":"number"},"currency":{"type":"string"}},
        "required":["total","currency"]"#;
    for (validation, unplanned) in [("reject", "reject"), ("flag", "flag")] {
        let dir = tempfile::tempdir().unwrap();
        let registry = common::registry_copy(dir.path(), &[("com.acme/order_completed/jsonschema/1-0-0", order)]);
        let plan = dir.path().join("plan.json");
        let text = json!({
            "events": {"Order Completed": "iglu:com.acme/order_completed/jsonschema/1-0-0"},
            "unplanned": unplanned,
        });
        std::fs::write(&plan, text.to_string()).unwrap();
        let keys = [SEGMENT_KEY, POSTHOG_KEY, SNOWPLOW_APP].join(",");
        let server = TestServer::start(&[
            "--write-keys",
            &keys,
            "--schemas-dir",
            registry.to_str().unwrap(),
            "--tracking-plan",
            plan.to_str().unwrap(),
            "--validation",
            validation,
        ]);
        let (python, _) = sdks();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/plan_events.py");
        let url = format!("http://{}", server.addr);
        let output =
            Command::new(python).arg(script).args([&url, SEGMENT_KEY, POSTHOG_KEY, SNOWPLOW_APP]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let verdicts: Value = serde_json::from_slice(&output.stdout).unwrap();
        let ids = |verdict: &str| -> Vec<String> {
            let mut ids: Vec<String> =
                verdicts[verdict].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_string()).collect();
            ids.sort();
            ids
        };
        let (good, bad) = (ids("good"), ids("bad"));
        assert_eq!((good.len(), bad.len()), (4, 7), "{verdicts}");
        let dir = server.stop();
        let (records, rows) = read_streams(&dir.path().join("out"));
        let mut record_ids: Vec<String> = records.iter().map(|r| r["event_id"].as_str().unwrap().to_string()).collect();
        record_ids.sort();
        let flagged = |id: &str| !records.iter().find(|r| r["event_id"] == id).unwrap()["validation"].is_null();
        if validation == "reject" {
            assert_eq!(record_ids, good, "the good stream holds the events that passed");
            let mut row_ids: Vec<String> = rows
                .iter()
                .map(|r| r["data"]["payload"]["enriched"]["event_id"].as_str().unwrap().to_string())
                .collect();
            row_ids.sort();
            assert_eq!(row_ids, bad, "a bad row for each event that failed, once");
            common::sdks::assert_bad_rows_valid(&rows);
            let planned = records.iter().find(|r| r["event_id"] == "seg-ok").unwrap();
            assert_eq!(planned["schema"], "iglu:com.acme/order_completed/jsonschema/1-0-0");
            let unplanned = rows.iter().find(|r| r["data"]["payload"]["enriched"]["event_id"] == "seg-unplanned");
            let message = &unplanned.unwrap()["data"]["failure"]["messages"][0];
            assert_eq!(message, &json!({"json": {"event": "Coupon Applied"}, "error": "INVALID_SCHEMA"}));
        } else {
            assert!(rows.is_empty(), "flag keeps everything in the good stream: {rows:?}");
            let mut all = [good.clone(), bad.clone()].concat();
            all.sort();
            assert_eq!(record_ids, all);
            assert!(good.iter().all(|id| !flagged(id)), "nothing flagged on a good event");
            assert!(bad.iter().all(|id| flagged(id)), "every failure flagged");
        }
    }
}
