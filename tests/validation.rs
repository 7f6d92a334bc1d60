//! Schema validation's registry (`SCHEMAS_DIR`): an Iglu static registry copied from Iglu Central
//! (tests/data/iglu, Apache-2.0), compiled at start and by `--check-config`, refused in one line when a schema
//! does not compile, and reloaded when a file is added or replaced and on SIGHUP — a broken file keeps the set in
//! service — while a keep-alive client's requests all succeed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::collector::Collector;
use common::{KeepAliveLoad, metric, wait_until};

/// A writable copy of the test registry.
fn registry_copy(into: &Path) -> PathBuf {
    common::registry_copy(into, &[])
}

/// Writes `com.acme/{name}/jsonschema/{version}`, a schema requiring `required`.
fn acme_schema(registry: &Path, name: &str, version: &str, required: &str) -> PathBuf {
    let dir = registry.join("schemas/com.acme").join(name).join("jsonschema");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(version);
    let schema = format!(
        r#"{{"$schema":"http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
        "self":{{"vendor":"com.acme","name":"{name}","format":"jsonschema","version":"{version}"}},
        "type":"object","required":["{required}"]}}"#
    );
    std::fs::write(&path, schema).unwrap();
    path
}

fn plutos(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let spool = dir.join("spool");
    let output = Command::new(env!("CARGO_BIN_EXE_plutos"))
        .env_clear()
        .env("PORT", "127.0.0.1:0")
        .env("SPOOL_DIR", &spool)
        .env("OUT_DIR", dir.join("out"))
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (output.status.code(), text(output.stderr), text(output.stdout))
}

#[test]
fn a_schema_that_does_not_compile_fails_the_check_and_the_start_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_copy(dir.path());
    let schemas_dir = registry.to_str().unwrap();
    let (code, stderr, stdout) = plutos(dir.path(), &["--check-config"], &[("SCHEMAS_DIR", schemas_dir)]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("configuration ok"), "{stdout}");

    // `type` misspelt as a value draft 4 does not know.
    let broken = acme_schema(&registry, "order", "1-0-0", "sku");
    let text = std::fs::read_to_string(&broken).unwrap().replace(r#""type":"object""#, r#""type":"objekt""#);
    std::fs::write(&broken, text).unwrap();
    let (code, stderr, _) = plutos(dir.path(), &["--check-config"], &[("SCHEMAS_DIR", schemas_dir)]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.trim().lines().count() == 1 && stderr.contains("SCHEMAS_DIR") && stderr.contains("com.acme/order"));
    let (code, stderr, _) = plutos(dir.path(), &[], &[("SCHEMAS_DIR", schemas_dir)]);
    assert_eq!(code, Some(1), "a start refuses it too: {stderr}");
    assert!(stderr.lines().any(|l| l.contains("does not compile") && l.contains("com.acme/order")), "{stderr}");

    let missing = dir.path().join("no-registry");
    let (code, stderr, _) = plutos(dir.path(), &["--check-config"], &[("SCHEMAS_DIR", missing.to_str().unwrap())]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no-registry/schemas"), "{stderr}");

    // A tracking plan naming a schema the registry lacks, and one without a registry at all.
    std::fs::remove_file(&broken).unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, r#"{"events":{"Order Completed":"iglu:com.acme/order/jsonschema/1-0-0"}}"#).unwrap();
    let with_plan = [("SCHEMAS_DIR", schemas_dir), ("TRACKING_PLAN", plan.to_str().unwrap())];
    let (code, stderr, _) = plutos(dir.path(), &["--check-config"], &with_plan);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.trim().lines().count() == 1 && stderr.contains("plan.json") && stderr.contains("is not in SCHEMAS_DIR")
    );
    let (code, stderr, _) = plutos(dir.path(), &["--check-config"], &with_plan[1..]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("TRACKING_PLAN") && stderr.contains("needs SCHEMAS_DIR"), "{stderr}");
    acme_schema(&registry, "order", "1-0-0", "sku");
    let (code, stderr, _) = plutos(dir.path(), &["--check-config"], &with_plan);
    assert_eq!(code, Some(0), "the plan's schema now there: {stderr}");
}

#[test]
fn the_registry_reloads_when_a_file_is_added_or_replaced_and_on_sighup_and_a_broken_one_keeps_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_copy(dir.path());
    let collector = Collector::spawn(dir.path(), &[("SCHEMAS_DIR", registry.to_str().unwrap())]);
    let addr = collector.addr;
    let load = KeepAliveLoad::start(addr, b"GET /e?tag=load HTTP/1.1\r\nHost: t\r\n\r\n");
    let schemas = || metric(addr, "plutos_schemas");
    let reloads = |result: &str| metric(addr, &format!("plutos_schema_reloads_total{{result=\"{result}\"}}"));
    assert_eq!(schemas(), 14);
    wait_until("the load to run", || load.sent() >= 100);

    // The reload thread looks once a second and may catch a file half written (a failed reload, then a good
    // one): what each step waits for is the set it must end with.
    // 1. A schema of a new vendor: its directories are new too. Events of it are unknown before, validated
    // after (the workers take the new set at their next loop iteration, before the next request).
    let order = br#"{"schema":"iglu:com.acme/order/jsonschema/1-0-0","data":{}}"#;
    assert_eq!(common::post(addr, "application/json", order).status, 200);
    assert_eq!(metric(addr, "plutos_validations_total{schema=\"unknown\",result=\"unknown\"}"), 1);
    acme_schema(&registry, "order", "1-0-0", "sku");
    wait_until("the added schema to load", || schemas() == 15);
    assert_eq!(common::post(addr, "application/json", order).status, 200);
    let invalid = "plutos_validations_total{schema=\"iglu:com.acme/order/jsonschema/1-0-0\",result=\"invalid\"}";
    assert_eq!(metric(addr, invalid), 1, "validated against the new schema: sku is required");

    // 2. A new version written aside (a hidden name is not read) and renamed into place.
    let staged = acme_schema(&registry, "order", "1-0-1", "sku");
    let temporary = staged.with_file_name(".1-0-1.tmp");
    std::fs::rename(&staged, &temporary).unwrap();
    wait_until("the rename aside to load", || schemas() == 15);
    std::fs::rename(&temporary, &staged).unwrap();
    wait_until("the renamed schema to load", || schemas() == 16);

    // 3. Replaced in place by one that does not compile: the set in service stays.
    let ok = reloads("ok");
    std::fs::write(&staged, "{\"self\":").unwrap();
    wait_until("the broken schema to be refused", || reloads("failed") >= 1);
    assert_eq!((schemas(), reloads("ok")), (16, ok));

    // 4. SIGHUP compiles again: still broken, still refused; mended, loaded.
    let failed_before = reloads("failed");
    collector.signal(libc::SIGHUP);
    wait_until("SIGHUP's reload", || reloads("failed") > failed_before);
    acme_schema(&registry, "order", "1-0-1", "id");
    wait_until("the mended schema to load", || reloads("ok") > ok);
    assert_eq!(schemas(), 16);
    assert_eq!(metric(addr, invalid), 1, "a reload carries the counts over");

    let sent = load.sent();
    wait_until("more load after the reloads", || load.sent() >= sent + 100);
    let (_, failed) = load.stop();
    assert_eq!(failed, 0, "requests failed during the reloads");
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success(), "{stderr}");
    assert!(stderr.matches("schemas not reloaded").count() >= 2, "a line per refused reload: {stderr}");
    assert!(stderr.contains("com.acme/order/jsonschema/1-0-1"), "the line names the file: {stderr}");
}

const WEB_PAGE: &str = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0";
const UUID: &str = "0d3d4a4a-3b3c-4e5f-9a6b-1c2d3e4f5a6b";

fn test_registry() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/iglu").display().to_string()
}

fn validations(addr: std::net::SocketAddr, schema: &str, result: &str) -> u64 {
    metric(addr, &format!("plutos_validations_total{{schema=\"{schema}\",result=\"{result}\"}}"))
}

#[test]
fn flagged_events_keep_their_schema_and_what_failed_on_every_way_in_and_every_answer_is_200() {
    let registry = test_registry();
    let server =
        common::TestServer::start(&["--schemas-dir", &registry, "--validation", "flag", "--udp-port", "127.0.0.1:0"]);
    let events = serde_json::json!([
        {"schema": WEB_PAGE, "data": {"id": UUID}},
        {"data": {"id": "not a uuid"}, "schema": WEB_PAGE},
        {"schema": "iglu:com.acme/unknown/jsonschema/1-0-0", "data": {}},
        {"schema": "iglu:com.acme/../jsonschema/1-0-0", "data": {}},
        {"schema": WEB_PAGE, "data": {"id": UUID}, "tag": "not self-describing"},
        {"tag": "plain"},
    ]);
    let response = common::post(server.addr, "application/json", events.to_string().as_bytes());
    assert_eq!(response.status, 200);
    assert_eq!(common::get(server.addr, "/e?schema=iglu:x&data=y").status, 200);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = format!(r#"{{"schema":"{WEB_PAGE}","data":{{"id":"udp"}}}}"#);
    udp.send_to(datagram.as_bytes(), server.udp_addr.unwrap()).unwrap();
    wait_until("every event committed", || server.metric("plutos_events_accepted_total") == 8);

    // 10,000 distinct unknown schemas in one NDJSON batch: one label, nothing kept per URI.
    let ndjson: String = (0..10_000)
        .map(|i| format!("{{\"schema\":\"iglu:com.acme/unknown_{i}/jsonschema/1-0-0\",\"data\":{{}}}}\n"))
        .collect();
    assert_eq!(common::post(server.addr, "application/x-ndjson", ndjson.as_bytes()).status, 200);
    wait_until("the batch committed", || server.metric("plutos_events_accepted_total") == 10_008);
    assert_eq!(validations(server.addr, WEB_PAGE, "valid"), 1);
    assert_eq!(validations(server.addr, WEB_PAGE, "invalid"), 2, "the POST's and the datagram's");
    assert_eq!(validations(server.addr, "unknown", "unknown"), 10_002);
    let metrics = String::from_utf8(common::get(server.addr, "/metrics").body).unwrap();
    let labels = metrics.lines().filter(|l| l.starts_with("plutos_validations_total{")).count();
    assert_eq!(labels, 3, "web_page's two results and unknown: {metrics}");

    let dir = server.stop();
    let records = common::read_records(&dir.path().join("out"));
    let find = |f: &dyn Fn(&serde_json::Value) -> bool| records.iter().find(|r| f(r)).cloned().unwrap();
    let valid = find(&|r| r["raw_data"]["data"]["id"] == UUID && r["raw_data"].get("tag").is_none());
    assert_eq!((&valid["schema"], &valid["validation"]), (&serde_json::json!(WEB_PAGE), &serde_json::Value::Null));
    let invalid = find(&|r| r["raw_data"]["data"]["id"] == "not a uuid");
    assert_eq!(invalid["schema"], WEB_PAGE);
    let report = &invalid["validation"][0]["error"]["dataReports"][0];
    assert_eq!((&report["path"], &report["keyword"]), (&"$.id".into(), &"pattern".into()));
    let unknown = find(&|r| r["raw_data"]["schema"] == "iglu:com.acme/unknown/jsonschema/1-0-0");
    assert_eq!(unknown["validation"][0]["error"]["error"], "ResolutionError");
    let path = find(&|r| r["raw_data"]["schema"] == "iglu:com.acme/../jsonschema/1-0-0");
    assert_eq!(path["validation"][0]["error"], "INVALID_IGLUURI");
    for not in [find(&|r| r["raw_data"]["tag"] == "not self-describing"), find(&|r| r["raw_data"]["tag"] == "plain")] {
        assert_eq!((&not["schema"], &not["validation"]), (&serde_json::Value::Null, &serde_json::Value::Null));
    }
    let query = find(&|r| r["method"] == "GET");
    assert_eq!(query["schema"], serde_json::Value::Null, "a query is not self-describing");
    let datagram = find(&|r| r["transport"] == "udp");
    assert_eq!(
        (&datagram["schema"], &datagram["validation"][0]["error"]["dataReports"][0]["path"]),
        (&serde_json::json!(WEB_PAGE), &"$.id".into())
    );
    for record in &records {
        let fields = record.as_object().unwrap();
        assert!(fields.contains_key("schema") && fields.contains_key("validation"), "{record}");
    }
}

#[test]
fn with_validation_off_the_schema_is_kept_and_nothing_is_validated() {
    let registry = test_registry();
    let server = common::TestServer::start(&["--schemas-dir", &registry, "--validation", "off"]);
    let event = format!(r#"{{"schema":"{WEB_PAGE}","data":{{"id":"not a uuid"}}}}"#);
    assert_eq!(common::post(server.addr, "application/json", event.as_bytes()).status, 200);
    wait_until("the event committed", || server.metric("plutos_events_accepted_total") == 1);
    let metrics = String::from_utf8(common::get(server.addr, "/metrics").body).unwrap();
    assert!(!metrics.contains(&format!("schema=\"{WEB_PAGE}\"")), "nothing validated: {metrics}");
    let dir = server.stop();
    let records = common::read_records(&dir.path().join("out"));
    assert_eq!(
        (&records[0]["schema"], &records[0]["validation"]),
        (&serde_json::json!(WEB_PAGE), &serde_json::Value::Null)
    );
}

/// A Snowplow tp2 POST of `events` (each a map of the tracker's parameters).
fn tp2(addr: std::net::SocketAddr, events: &[serde_json::Value]) -> u16 {
    let payload = serde_json::json!({
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": events,
    });
    common::post_to(addr, "/com.snowplowanalytics.snowplow/tp2", "application/json", payload.to_string().as_bytes())
        .status
}

fn self_describing(schema: &str, data: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"schema": schema, "data": data})
}

#[test]
fn snowplow_events_and_contexts_are_validated_part_by_part() {
    use base64::Engine;
    let registry = test_registry();
    let server = common::TestServer::start(&["--schemas-dir", &registry, "--validation", "flag"]);
    let unstruct = |event: serde_json::Value| {
        self_describing("iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0", event).to_string()
    };
    let contexts = |entities: Vec<serde_json::Value>| {
        self_describing("iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0", entities.into()).to_string()
    };
    let link = "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1";
    let web_page = |id: &str| self_describing(WEB_PAGE, serde_json::json!({"id": id}));
    let b64 = |json: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let events = [
        serde_json::json!({"e": "pv", "eid": "pv-ok", "aid": "web", "co": contexts(vec![web_page(UUID)])}),
        serde_json::json!({"e": "pv", "eid": "pv-bad-context", "aid": "web", "cx": b64(contexts(vec![web_page("x")]))}),
        serde_json::json!({"e": "ue", "eid": "ue-ok", "aid": "web",
            "ue_pr": unstruct(self_describing(link, serde_json::json!({"targetUrl": "/x"})))}),
        serde_json::json!({"e": "ue", "eid": "ue-bad", "aid": "web",
            "ue_px": b64(unstruct(self_describing(link, serde_json::json!({"target": "/x"}))))}),
        serde_json::json!({"e": "ue", "eid": "ue-unknown", "aid": "web",
            "ue_pr": unstruct(self_describing("iglu:com.acme/link_click/jsonschema/1-0-0", serde_json::json!({})))}),
        serde_json::json!({"e": "ue", "eid": "ue-not-self-describing", "aid": "web", "ue_pr": "{\"target\":\"/x\"}"}),
        serde_json::json!({"e": "se", "eid": "se-plain", "aid": "web", "se_ac": "add"}),
    ];
    assert_eq!(tp2(server.addr, &events), 200, "flagged events are answered as stored");
    wait_until("every event committed", || server.metric("plutos_events_accepted_total") == 7);
    assert_eq!(validations(server.addr, link, "valid"), 1);
    assert_eq!(validations(server.addr, link, "invalid"), 1);
    assert_eq!(validations(server.addr, WEB_PAGE, "valid"), 1);
    assert_eq!(validations(server.addr, WEB_PAGE, "invalid"), 1);
    let envelope = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0";
    assert_eq!(validations(server.addr, envelope, "valid"), 3, "every well-formed envelope");
    assert_eq!(validations(server.addr, "unknown", "unknown"), 1);

    let dir = server.stop();
    let records = common::read_records(&dir.path().join("out"));
    let by_id: std::collections::HashMap<&str, &serde_json::Value> =
        records.iter().map(|r| (r["event_id"].as_str().unwrap(), r)).collect();
    let null = serde_json::Value::Null;
    assert_eq!(
        (&by_id["pv-ok"]["schema"], &by_id["pv-ok"]["validation"]),
        (&null, &null),
        "a context is no schema of the event's"
    );
    let failure = &by_id["pv-bad-context"]["validation"][0];
    let path = &failure["error"]["dataReports"][0]["path"];
    assert_eq!((&failure["schemaKey"], path), (&serde_json::json!(WEB_PAGE), &"$.id".into()));
    assert_eq!((&by_id["ue-ok"]["schema"], &by_id["ue-ok"]["validation"]), (&serde_json::json!(link), &null));
    assert_eq!(by_id["ue-bad"]["schema"], link, "ue_px decoded and validated like ue_pr");
    assert_eq!(by_id["ue-bad"]["validation"][0]["schemaKey"], link);
    assert_eq!(by_id["ue-unknown"]["validation"][0]["error"]["error"], "ResolutionError");
    let not = &by_id["ue-not-self-describing"];
    assert_eq!((&not["schema"], &not["validation"][0]["error"]), (&null, &"INVALID_DATA_PAYLOAD".into()));
    assert_eq!((&by_id["se-plain"]["schema"], &by_id["se-plain"]["validation"]), (&null, &null));
}

#[test]
fn a_900_kb_value_against_a_pattern_is_flagged_with_a_bounded_message_and_kept_whole() {
    let registry = test_registry();
    let server = common::TestServer::start(&["--schemas-dir", &registry, "--validation", "flag"]);
    // web_page's `id` has a `pattern`: ~900 KB that almost match it, then a character that does not.
    let id = format!("{}!", "a".repeat(900_000));
    let event = format!(r#"{{"schema":"{WEB_PAGE}","data":{{"id":"{id}"}}}}"#);
    assert_eq!(common::post(server.addr, "application/json", event.as_bytes()).status, 200);
    wait_until("the event committed", || server.metric("plutos_events_accepted_total") == 1);
    assert_eq!(validations(server.addr, WEB_PAGE, "invalid"), 1);
    let dir = server.stop();
    let records = common::read_records(&dir.path().join("out"));
    let failure = &records[0]["validation"][0]["error"]["dataReports"][0];
    assert_eq!((&failure["keyword"], &failure["path"]), (&"pattern".into(), &"$.id".into()));
    assert!(failure["message"].as_str().unwrap().len() <= 256, "the message quotes a bounded part of the value");
    assert_eq!(records[0]["raw_data"]["data"]["id"].as_str().map(str::len), Some(900_001), "the event kept whole");
}

/// `VALIDATION=reject` (the default with `SCHEMAS_DIR`): an event that fails — invalid data, an unknown schema,
/// an URI that is no Iglu URI however it tries to name a path — is one bad row in the bad stream (`bad/`), in
/// Snowplow's `schema_violations` format as Python's jsonschema checks it; `/e` POST says how many; every
/// event is in exactly one stream and `plutos verify` tiles both.
#[test]
fn rejected_events_are_snowplow_bad_rows_in_the_bad_stream_and_the_answer_counts_them() {
    let registry = test_registry();
    let server = common::TestServer::start(&["--schemas-dir", &registry, "--udp-port", "127.0.0.1:0"]);
    let nested = |levels| (0..levels).fold(serde_json::json!("leaf"), |inner, _| serde_json::json!([inner]));
    // Deeper than the body's nesting limit (64): a clear 400, nothing stored; within it, a bad row.
    let too_deep = self_describing(WEB_PAGE, serde_json::json!({"id": nested(100)})).to_string();
    let refused = common::post(server.addr, "application/json", too_deep.as_bytes());
    assert_eq!((refused.status, refused.text()), (400, "JSON nested deeper than 64 levels\n".to_string()));
    let deep = nested(58);
    let hostile = [
        "iglu:com.acme/unknown/jsonschema/1-0-0".to_string(),
        "iglu:com.acme/../jsonschema/1-0-0".into(),
        "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/../../../../etc/passwd".into(),
        "iglu:com.snowplowanalytics.snowplow/%2e%2e/jsonschema/1-0-0".into(),
        "iglu:com.snowplowanalytics.snowplow/web_page\u{0}/jsonschema/1-0-0".into(),
        "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema".into(),
        format!("iglu:com.acme/{}/jsonschema/1-0-0", "a".repeat(400)),
    ];
    let mut events = vec![
        self_describing(WEB_PAGE, serde_json::json!({"id": UUID})),
        serde_json::json!({"tag": "plain"}),
        self_describing(WEB_PAGE, serde_json::json!({"id": "not a uuid"})),
        self_describing(WEB_PAGE, serde_json::json!({"id": deep})),
    ];
    events.extend(hostile.iter().map(|uri| self_describing(uri, serde_json::json!({}))));
    let response =
        common::post(server.addr, "application/json", serde_json::Value::from(events).to_string().as_bytes());
    assert_eq!((response.status, response.text()), (200, r#"{"accepted":2,"invalid":9}"#.to_string()));
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = format!(r#"{{"schema":"{WEB_PAGE}","data":{{"id":"udp"}}}}"#);
    udp.send_to(datagram.as_bytes(), server.udp_addr.unwrap()).unwrap();
    wait_until("every event committed", || server.metric("plutos_events_accepted_total") == 12);
    assert_eq!(server.metric("plutos_bad_rows_total{type=\"schema_violations\"}"), 10);
    assert_eq!(server.metric("plutos_bad_rows_total{type=\"size_violation\"}"), 0);

    let dir = server.stop();
    let out = dir.path().join("out");
    let (records, rows) = common::read_streams(&out);
    assert_eq!(records.len(), 2, "the valid event and the plain one: {records:?}");
    assert!(records.iter().all(|r| r["validation"].is_null()), "under reject no record is flagged");
    assert_eq!(rows.len(), 10);
    common::sdks::assert_bad_rows_valid(&rows);
    let ids: std::collections::HashSet<&str> =
        rows.iter().filter_map(|r| r["data"]["payload"]["enriched"]["event_id"].as_str()).collect();
    assert!(ids.len() == 10 && ids.iter().all(|id| id.len() == 36), "each its own request id as event id: {ids:?}");
    let unstruct = |row: &serde_json::Value| -> serde_json::Value {
        serde_json::from_str(row["data"]["payload"]["enriched"]["unstruct_event"].as_str().unwrap()).unwrap()
    };
    let by_schema = |uri: &str| rows.iter().find(|r| unstruct(r)["schema"] == uri).unwrap_or_else(|| panic!("{uri}"));
    let unknown = by_schema("iglu:com.acme/unknown/jsonschema/1-0-0");
    assert_eq!(unknown["data"]["failure"]["messages"][0]["error"]["error"], "ResolutionError");
    for uri in &hostile[1..] {
        assert_eq!(by_schema(uri)["data"]["failure"]["messages"][0]["error"], "INVALID_IGLUURI", "{uri}");
    }
    let deep_row = rows.iter().find(|r| unstruct(r)["data"]["id"].is_array()).unwrap();
    assert_eq!(unstruct(deep_row)["data"]["id"], deep, "the event whole in the bad row");
    let udp_row = rows.iter().find(|r| unstruct(r)["data"]["id"] == "udp").unwrap();
    assert_eq!(udp_row["data"]["payload"]["raw"]["vendor"], "io.plutos");

    let verify = Command::new(env!("CARGO_BIN_EXE_plutos")).args(["verify", out.to_str().unwrap()]).output().unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
    assert!(report.contains(", 12 events from ") && report.contains("; 0 gaps"), "{report}");
}

/// Under reject, a Snowplow tracker's events that fail become bad rows with the tracker's parameters and the
/// self-describing parts whole; the tracker is answered as for stored events.
#[test]
fn rejected_snowplow_events_keep_their_parameters_and_parts_and_the_tracker_gets_ok() {
    let registry = test_registry();
    let server = common::TestServer::start(&["--schemas-dir", &registry]);
    let link = "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1";
    let unstruct = self_describing(
        "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        self_describing(link, serde_json::json!({"target": "/x"})),
    );
    let contexts = self_describing(
        "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        serde_json::json!([self_describing(WEB_PAGE, serde_json::json!({"id": "x"}))]),
    );
    let events = [
        serde_json::json!({"e": "pv", "eid": "pv-ok", "aid": "web", "url": "https://a.example/"}),
        serde_json::json!({"e": "pv", "eid": "pv-bad", "aid": "web", "co": contexts.to_string()}),
        serde_json::json!({"e": "ue", "eid": "ue-bad", "aid": "web", "ue_pr": unstruct.to_string()}),
    ];
    assert_eq!(tp2(server.addr, &events), 200);
    wait_until("every event committed", || server.metric("plutos_events_accepted_total") == 3);
    let dir = server.stop();
    let (records, rows) = common::read_streams(&dir.path().join("out"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["event_id"], "pv-ok");
    assert_eq!(rows.len(), 2);
    common::sdks::assert_bad_rows_valid(&rows);
    let enriched = |id: &str| {
        let row = rows.iter().find(|r| r["data"]["payload"]["enriched"]["event_id"] == id).unwrap();
        row["data"]["payload"].clone()
    };
    let pv = enriched("pv-bad");
    let parsed = |v: &serde_json::Value| serde_json::from_str::<serde_json::Value>(v.as_str().unwrap()).unwrap();
    assert_eq!(parsed(&pv["enriched"]["contexts"]), contexts, "the contexts whole");
    assert_eq!(pv["raw"]["vendor"], "com.snowplowanalytics.snowplow");
    let names: Vec<&str> =
        pv["raw"]["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["aid", "co", "e", "eid"], "the tracker's parameters, in the order sent");
    let ue = enriched("ue-bad");
    assert_eq!(parsed(&ue["enriched"]["unstruct_event"]), unstruct);
    assert_eq!(
        (&ue["enriched"]["event_name"], &ue["enriched"]["event_version"]),
        (&"link_click".into(), &"1-0-1".into())
    );
}

/// The group commit writes only the streams that have lines: a request of good events alone or of bad rows alone
/// costs one spool write, one of both two.
#[test]
fn a_loop_iteration_writes_only_the_streams_that_have_lines() {
    let registry = test_registry();
    let server = common::TestServer::start(&["--schemas-dir", &registry]);
    let good = self_describing(WEB_PAGE, serde_json::json!({"id": UUID}));
    let bad = self_describing(WEB_PAGE, serde_json::json!({"id": "nope"}));
    let mut accepted = 0;
    let mut writes = |events: Vec<&serde_json::Value>| {
        let before = server.metric("plutos_spool_writes_total");
        accepted += events.len() as u64;
        let body = serde_json::to_vec(&events).unwrap();
        assert_eq!(common::post(server.addr, "application/json", &body).status, 200);
        wait_until("the request committed", || server.metric("plutos_events_accepted_total") == accepted);
        server.metric("plutos_spool_writes_total") - before
    };
    assert_eq!(writes(vec![&good, &good]), 1, "records only");
    assert_eq!(writes(vec![&bad, &bad]), 1, "bad rows only");
    assert_eq!(writes(vec![&good, &bad]), 2, "both streams");
}
