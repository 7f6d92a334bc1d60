//! The SDK protocols against the real server, in raw HTTP: every payload shape each protocol's clients send,
//! the answers they expect (exactly 200, their bodies, Snowplow's cookie and GIF), keys where each protocol
//! carries them, CORS as the SDKs' own servers answer it, Snowplow's bad rows instead of 413, and hostile input
//! refused whole. Every test reads the shipped chunks back and checks the records.

mod common;

use std::io::Write;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

const KEY: &str = "wk-sdk";

fn post(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let head = format!("POST {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\n\r\n", body.len());
    [head.as_bytes(), body].concat()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn basic(key: &str) -> String {
    format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
}

/// The records of one protocol, by `event_id`.
fn by_event_id<'a>(records: &'a [Value], protocol: &str) -> std::collections::BTreeMap<String, &'a Value> {
    records
        .iter()
        .filter(|r| r["protocol"] == protocol)
        .map(|r| (r["event_id"].as_str().unwrap().to_string(), r))
        .collect()
}

/// Every record has every stable field, each of its one type.
fn assert_stable_fields(records: &[Value]) {
    for r in records {
        let object = r.as_object().unwrap();
        assert_eq!(object.len(), 21, "{r}");
        for field in
            ["written_at", "request_id", "ip", "user_agent", "method", "path", "transport", "protocol", "event_id"]
        {
            assert!(r[field].is_string(), "{field} in {r}");
        }
        for field in
            ["event_type", "event_name", "schema", "user_id", "anonymous_id", "client_ts", "sent_at", "visitor_id"]
        {
            assert!(r[field].is_string() || r[field].is_null(), "{field} in {r}");
        }
        assert!(r["validation"].is_array() || r["validation"].is_null(), "{r}");
        assert!(r["timestamp"].as_str().unwrap().ends_with('Z'), "{r}");
        assert!(r["retry_count"].is_u64() || r["retry_count"].is_null(), "{r}");
    }
}

#[test]
fn segment_batches_and_single_messages_become_one_record_each() {
    let server = TestServer::start(&["--write-keys", KEY]);
    let mut client = server.client();
    let batch = json!({
        "batch": [
            {"type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "m-1",
             "properties": {"total": 12.5}, "timestamp": "2026-12-02T10:00:00Z", "context": {"ip": "own"}},
            {"type": "identify", "anonymousId": "a-1", "messageId": "m-2", "traits": {"plan": "pro"}}
        ],
        "context": {"ip": "batch", "library": {"name": "test"}},
        "sentAt": "2026-12-02T10:00:02Z"
    });
    let headers = format!("Content-Type: application/json\r\n{}X-Retry-Count: 2\r\n", basic(KEY));
    let r = client.request(&post("/v1/batch", &headers, batch.to_string().as_bytes()));
    assert_eq!((r.status, r.text()), (200, r#"{"success":true}"#.to_string()));
    // analytics.js: text/plain, the key in the body, the type in the path.
    let message = json!({"event": "Clicked", "writeKey": KEY, "messageId": "m-3", "anonymousId": "a-2"});
    let r = client.request(&post("/v1/t", "Content-Type: text/plain\r\n", message.to_string().as_bytes()));
    assert_eq!(r.status, 200, "{}", r.text());
    // RudderStack's Python SDK: gzip, Basic key, /v1/import.
    let import = json!({"batch": [{"type": "page", "name": "Docs", "messageId": "m-4", "userId": 7}]});
    let gz = gzip(import.to_string().as_bytes());
    let r = client.request(&post("/v1/import", &format!("Content-Encoding: gzip\r\n{}", basic(KEY)), &gz));
    assert_eq!(r.status, 200, "{}", r.text());
    // No key anywhere, or a wrong one in the head: 401 and nothing stored.
    let r = client.request(&post("/v1/track", "", br#"{"event":"nope","messageId":"m-5"}"#));
    assert_eq!(r.status, 401);
    let r = client.request(&post("/v1/track", &basic("wrong"), br#"{"event":"nope","writeKey":"wk-sdk"}"#));
    assert_eq!(r.status, 401, "a wrong key in the head decides");

    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_stable_fields(&records);
    let segment = by_event_id(&records, "segment");
    assert_eq!(segment.keys().collect::<Vec<_>>(), ["m-1", "m-2", "m-3", "m-4"]);
    let track = segment["m-1"];
    assert_eq!(track["path"], "/v1/batch");
    assert_eq!((&track["event_type"], &track["event_name"]), (&json!("track"), &json!("Order Completed")));
    assert_eq!(track["raw_data"]["context"], json!({"ip": "own", "library": {"name": "test"}}));
    assert_eq!(track["retry_count"], 2);
    let written = plutos::event::timestamp::parse(track["written_at"].as_str().unwrap().as_bytes()).unwrap();
    let corrected = plutos::event::timestamp::parse(track["timestamp"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(written - corrected, 2_000_000, "received − (sentAt − timestamp)");
    assert_eq!(segment["m-2"]["raw_data"]["context"], json!({"ip": "batch", "library": {"name": "test"}}));
    assert_eq!(segment["m-2"]["anonymous_id"], "a-1");
    assert_eq!((&segment["m-3"]["event_type"], &segment["m-3"]["event_name"]), (&json!("track"), &json!("Clicked")));
    assert_eq!((&segment["m-4"]["event_type"], &segment["m-4"]["user_id"]), (&json!("page"), &json!("7")));
    assert!(!serde_json::to_string(&records).unwrap().contains(KEY), "no key in any record");
}

#[test]
fn posthog_events_in_every_wrapping_its_clients_use() {
    let server = TestServer::start(&["--write-keys", KEY]);
    let mut client = server.client();
    let event = |uuid: &str, extra: Value| {
        let mut e = json!({"event": "clicked", "uuid": uuid, "distinct_id": "d-1", "properties": {"token": KEY}});
        e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        e
    };
    let accepted = |r: Response| assert_eq!((r.status, r.text()), (200, r#"{"status":1}"#.to_string()));
    // A single event, its key in properties.token.
    accepted(client.request(&post("/capture/", "", event("p-1", json!({})).to_string().as_bytes())));
    // An array, gzip told by nothing but its magic bytes (posthog-js).
    let array = json!([event("p-2", json!({})), event("p-3", json!({"event": "$pageview"}))]);
    accepted(client.request(&post("/e/", "Content-Type: text/plain\r\n", &gzip(array.to_string().as_bytes()))));
    // The envelope with its api_key and sent_at, gzip by Content-Encoding (posthog-node).
    let envelope = json!({"api_key": KEY, "sent_at": "2026-12-02T10:00:05Z",
        "batch": [{"event": "$identify", "uuid": "p-4", "distinct_id": "d-2", "timestamp": "2026-12-02T10:00:00Z",
                   "properties": {"$device_id": "dev-1", "$set": {"email": "x@y"}}}]});
    let gz = gzip(envelope.to_string().as_bytes());
    accepted(client.request(&post("/batch", "Content-Encoding: gzip\r\n", &gz)));
    // gzip named by ?compression=gzip-js, and the same with its Content-Encoding saying so too.
    let gz = gzip(event("p-5", json!({})).to_string().as_bytes());
    accepted(client.request(&post("/i/v0/e/?compression=gzip-js", "", &gz)));
    let gz = gzip(event("p-5b", json!({})).to_string().as_bytes());
    accepted(client.request(&post("/i/v0/e/?compression=gzip-js", "Content-Encoding: gzip\r\n", &gz)));
    // A form's data=, base64 (an old posthog-js), and the same in a GET's query.
    let b64 = base64::engine::general_purpose::STANDARD.encode(event("p-6", json!({})).to_string());
    let form = format!("data={}&compression=base64", b64.replace('+', "%2B").replace('=', "%3D"));
    let ct = "Content-Type: application/x-www-form-urlencoded\r\n";
    accepted(client.request(&post("/track", ct, form.as_bytes())));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(event("p-7", json!({})).to_string());
    let r = client.request(format!("GET /engage/?data={b64} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    accepted(r);
    // Refused whole: lz64, a nameless event, keys in the wrong place or absent.
    let status =
        |client: &mut Client, path: &str, body: String| client.request(&post(path, "", body.as_bytes())).status;
    assert_eq!(status(&mut client, "/e/?compression=lz64", "x".into()), 415);
    assert_eq!(status(&mut client, "/batch/", json!([event("p-8", json!({})), {"uuid": "p-9"}]).to_string()), 400);
    let misplaced = json!({"event": "e", "uuid": "p-10", "properties": {"$set": {"token": KEY}}});
    assert_eq!(status(&mut client, "/capture", misplaced.to_string()), 401);
    let wrong = json!({"api_key": "nope", "batch": [event("p-11", json!({}))]});
    assert_eq!(status(&mut client, "/batch", wrong.to_string()), 401, "the envelope's key is the batch's key");

    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_stable_fields(&records);
    let posthog = by_event_id(&records, "posthog");
    assert_eq!(posthog.keys().collect::<Vec<_>>(), ["p-1", "p-2", "p-3", "p-4", "p-5", "p-5b", "p-6", "p-7"]);
    assert_eq!((&posthog["p-3"]["event_type"], &posthog["p-3"]["event_name"]), (&json!("page"), &json!("$pageview")));
    let identify = posthog["p-4"];
    assert_eq!(identify["event_type"], "identify");
    assert_eq!((&identify["user_id"], &identify["anonymous_id"]), (&json!("d-2"), &json!("dev-1")));
    assert_eq!(identify["sent_at"], "2026-12-02T10:00:05Z");
    assert_eq!(
        identify["raw_data"],
        json!({"event": "$identify", "uuid": "p-4", "distinct_id": "d-2",
        "timestamp": "2026-12-02T10:00:00Z", "properties": {"$device_id": "dev-1", "$set": {"email": "x@y"}}})
    );
    assert_eq!(posthog["p-1"]["raw_data"]["properties"], json!({}), "properties.token left out");
    assert_eq!(posthog["p-7"]["method"], "GET");
    assert!(!serde_json::to_string(&records).unwrap().contains(KEY), "no key in any record");
}

/// base64url without padding, as the JavaScript trackers send `ue_px` and `cx`.
fn b64url(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn snowplow_posts_pixels_json_parameters_and_the_network_user_id_cookie() {
    let server = TestServer::start(&["--snowplow-cookie-domain", ".example.com"]);
    let ue = json!({"schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        "data": {"schema": "iglu:com.acme/link_click/jsonschema/1-0-0", "data": {"target": "/x"}}});
    let co = json!({"schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [{"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"tier": 2}}]});
    let padded = base64::engine::general_purpose::URL_SAFE.encode(co.to_string());
    let payload = json!({
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [
            {"e": "pv", "eid": "s-1", "aid": "shop", "url": "https://x/", "dtm": "1796222225372", "stm": "1796222225400",
             "duid": "d-1", "uid": "u-1", "cx": padded},
            {"e": "ue", "eid": "s-2", "aid": "shop", "ue_px": b64url(&ue), "co": co.to_string()},
            {"e": "se", "eid": "s-3", "aid": "shop", "se_ca": "shop", "se_ac": "add", "ue_pr": ue.to_string()}
        ]
    });
    let mut client = server.client();
    let tp2 = "/com.snowplowanalytics.snowplow/tp2";
    let r =
        client.request(&post(tp2, "Content-Type: application/json; charset=utf-8\r\n", payload.to_string().as_bytes()));
    assert_eq!((r.status, r.text()), (200, "ok".to_string()));
    let cookie = r.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.ends_with("; Max-Age=31536000; Domain=.example.com; Path=/; SameSite=None; Secure; HttpOnly"),
        "{cookie}"
    );
    let visitor = cookie.strip_prefix("sp=").unwrap().split(';').next().unwrap().to_string();
    // The cookie comes back: the same visitor; a pixel answers a GIF.
    let pixel = format!(
        "GET /i?e=pv&eid=s-4&aid=shop&ue_px={} HTTP/1.1\r\nHost: t\r\nCookie: other=1; sp={visitor}\r\n\r\n",
        b64url(&ue)
    );
    let r = client.request(pixel.as_bytes());
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/gif")));
    assert_eq!(r.body, plutos::http::response::PIXEL_GIF);
    assert_eq!(r.header("set-cookie").unwrap(), cookie, "the cookie's year starts over");
    // ?nuid= names the visitor; SP-Anonymous keeps no id, no cookie and no address.
    let r = client.request(b"GET /ice.png?e=pp&eid=s-5&nuid=tracker-nuid HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(r.header("set-cookie").unwrap().starts_with("sp=tracker-nuid;"));
    let r = client.request(b"GET /i?e=pv&eid=s-6 HTTP/1.1\r\nHost: t\r\nSP-Anonymous: *\r\nCookie: sp=abc\r\n\r\n");
    assert_eq!((r.status, r.header("set-cookie")), (200, None));
    client.send(b"HEAD /i?e=pv&eid=s-7 HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.read_head_only();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Content-Length: 43\r\n"), "{head}");
    // Refused whole: not an envelope, not base64, not JSON.
    for body in [
        json!({"data": [{"e": "pv"}]}),
        json!({"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": [{"e": "pv"}]}),
        json!({"schema": payload["schema"], "data": [{"e": "pv", "eid": "s-8"}, {"e": "ue", "ue_px": "%%%"}]}),
        json!({"schema": payload["schema"], "data": [{"e": "ue", "ue_px": "bm90IGpzb24"}]}),
        json!({"schema": payload["schema"], "data": [{"e": "ue", "ue_pr": "{not json"}]}),
        json!({"schema": payload["schema"], "data": ["pv"]}),
    ] {
        let r = client.request(&post(tp2, "", body.to_string().as_bytes()));
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }

    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_stable_fields(&records);
    let snowplow = by_event_id(&records, "snowplow");
    assert_eq!(snowplow.keys().collect::<Vec<_>>(), ["s-1", "s-2", "s-3", "s-4", "s-5", "s-6", "s-7"]);
    let pv = snowplow["s-1"];
    assert_eq!((&pv["event_type"], &pv["event_name"]), (&json!("page"), &json!("page_view")));
    assert_eq!(
        (&pv["user_id"], &pv["anonymous_id"], &pv["visitor_id"]),
        (&json!("u-1"), &json!("d-1"), &json!(visitor))
    );
    assert_eq!(pv["raw_data"]["co"], co, "cx decoded into co");
    assert!(pv["raw_data"].get("cx").is_none());
    let written = plutos::event::timestamp::parse(pv["written_at"].as_str().unwrap().as_bytes()).unwrap();
    let corrected = plutos::event::timestamp::parse(pv["timestamp"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(written - corrected, 28_000, "received − (stm − dtm)");
    for id in ["s-2", "s-3", "s-4"] {
        assert_eq!(snowplow[id]["raw_data"]["ue_pr"], ue, "{id}: the self-describing event as JSON");
        assert!(snowplow[id]["raw_data"].get("ue_px").is_none());
    }
    assert_eq!(
        (&snowplow["s-2"]["event_type"], &snowplow["s-2"]["event_name"]),
        (&json!("track"), &json!("link_click"))
    );
    assert_eq!(snowplow["s-2"]["raw_data"]["co"], co, "co parsed from its string");
    assert_eq!((&snowplow["s-3"]["event_type"], &snowplow["s-3"]["event_name"]), (&json!("track"), &json!("add")));
    assert_eq!(snowplow["s-4"]["visitor_id"], json!(visitor));
    assert_eq!(snowplow["s-5"]["visitor_id"], "tracker-nuid");
    assert_eq!((&snowplow["s-6"]["visitor_id"], &snowplow["s-6"]["ip"]), (&Value::Null, &json!("")));
    assert_eq!(snowplow["s-7"]["method"], "HEAD");
}

#[test]
fn snowplow_never_answers_413_an_oversized_payload_is_a_bad_row() {
    let server = TestServer::start(&["--max-body-bytes", "4096", "--max-decompressed-bytes", "8192"]);
    let tp2 = "/com.snowplowanalytics.snowplow/tp2";
    let big = format!(
        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{{"e":"pv","p":"{}"}}]}}"#,
        "x".repeat(6000)
    );
    let mut answers = Vec::new();
    // By Content-Length (the rest of the body is never read), chunked, and inflating past the cap.
    let mut client = server.client();
    answers.push(client.request(&post(tp2, "", big.as_bytes())));
    assert!(client.is_closed_by_server(), "the connection ends: its body was not read");
    let chunked = format!(
        "POST {tp2} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    answers.push(server.client().request(chunked.as_bytes()));
    let bomb = gzip(format!("{big}{}", " ".repeat(10_000)).as_bytes());
    answers.push(server.client().request(&post(tp2, "Content-Encoding: gzip\r\n", &bomb)));
    answers.push(server.client().request(
        format!("GET /i?e=pv HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n{}", "z".repeat(5000)).as_bytes(),
    ));
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The same on a route that does not keep them: 413.
    assert_eq!(server.client().request(&post("/e", "", big.as_bytes())).status, 413);
    let dir = server.stop();
    let (records, mut rows) = read_streams(&dir.path().join("out"));
    assert!(records.is_empty(), "nothing in the good stream: {records:?}");
    assert_eq!(rows.len(), 4, "one bad row per payload: {rows:?}");
    common::sdks::assert_bad_rows_valid(&rows);
    let size = |r: &Value| r["data"]["failure"]["actualSizeBytes"].as_u64().unwrap();
    rows.sort_by_key(size);
    for r in &rows {
        assert_eq!(r["schema"], "iglu:com.snowplowanalytics.snowplow.badrows/size_violation/jsonschema/1-0-0");
        assert_eq!(r["data"]["processor"]["artifact"], "plutos");
    }
    let limits: Vec<(u64, &Value)> =
        rows.iter().map(|r| (size(r), &r["data"]["failure"]["maximumAllowedSizeBytes"])).collect();
    // Chunked and inflated: one byte over the limit (all that is known); the others as declared.
    let (body, inflated) = (json!(4096), json!(8192));
    assert_eq!(limits, [(4097, &body), (5000, &body), (big.len() as u64, &body), (8193, &inflated)]);
    let by_length = rows.iter().find(|r| size(r) == big.len() as u64).unwrap();
    let head = by_length["data"]["payload"].as_str().unwrap();
    assert_eq!(head, &big[..1024], "the first 1 KiB of the payload");
}

#[test]
fn sdk_routes_answer_cors_as_their_own_servers_do() {
    let server = TestServer::start(&[]);
    let origin = "http://127.0.0.1:5173";
    let preflight = format!(
        "OPTIONS /com.snowplowanalytics.snowplow/tp2 HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\
         Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, sp-anonymous\r\n\r\n"
    );
    let r = server.client().request(preflight.as_bytes());
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(origin), "the exact origin, not *");
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-allow-headers"), Some("content-type, sp-anonymous"));
    let r = server.client().request(format!("GET /i?e=pv HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\r\n").as_bytes());
    assert_eq!((r.header("access-control-allow-origin"), r.header("vary")), (Some(origin), Some("Origin")));
    // plutos's own /e keeps its own rule: no CORS_ORIGINS, no CORS headers.
    let r = server.client().request(format!("GET /e?a=1 HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\r\n").as_bytes());
    assert_eq!(r.header("access-control-allow-origin"), None);
    server.stop();
    // A list holds on every route.
    let listed = TestServer::start(&["--cors-origins", "https://shop.example"]);
    let r = listed.client().request(&post("/batch", &format!("Origin: {origin}\r\n"), br#"{"event":"e"}"#));
    assert_eq!(r.status, 403);
    let r = listed.client().request(&post("/batch", "Origin: https://shop.example\r\n", br#"{"event":"e"}"#));
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, Some("https://shop.example")));
    listed.stop();
}

#[test]
fn hostile_input_per_protocol_gets_a_clear_answer_and_nothing_half_stored() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    // Many tiny events in one request are fine, each one record.
    let tiny_segment = format!(r#"{{"batch":[{}]}}"#, vec![r#"{"event":"t"}"#; 10_000].join(","));
    assert_eq!(client.request(&post("/v1/batch", "", tiny_segment.as_bytes())).status, 200);
    let tiny_posthog = format!("[{}]", vec![r#"{"event":"t"}"#; 10_000].join(","));
    assert_eq!(client.request(&post("/batch", "", tiny_posthog.as_bytes())).status, 200);
    let tiny_snowplow = format!(
        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{}]}}"#,
        vec![r#"{"e":"pv"}"#; 10_000].join(",")
    );
    assert_eq!(client.request(&post("/com.snowplowanalytics.snowplow/tp2", "", tiny_snowplow.as_bytes())).status, 200);
    let stored = 30_000;
    // A 500 KB batch plus one byte; a message over 32 KB; one broken event among good ones: refused whole.
    let (open, close) = (r#"{"batch":[{"event":"t"}],"pad":""#, r#""}"#);
    let over = format!("{open}{}{close}", "p".repeat(500 * 1024 + 1 - open.len() - close.len()));
    assert_eq!(over.len(), 500 * 1024 + 1);
    let refused: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/v1/batch", over.into_bytes(), 413),
        ("/v1/track", format!(r#"{{"p":"{}"}}"#, "q".repeat(32 * 1024)).into_bytes(), 413),
        ("/v1/batch", br#"{"batch":[{"event":"ok"},{"event":"\ud800"}]}"#.to_vec(), 400),
        ("/v1/batch", br#"{"batch":[{"event":"ok"}],"#.to_vec(), 400),
        ("/batch", br#"{"batch":[{"event":"ok"},{"event":"ok"}],"api_key":"k"}extra"#.to_vec(), 400),
        ("/batch", br#"{"batch":{"event":"not an array"}}"#.to_vec(), 400),
        ("/capture", b"\x1f\x8bnot gzip at all".to_vec(), 400),
        ("/e/?compression=base64", b"!!!".to_vec(), 400),
        ("/com.snowplowanalytics.snowplow/tp2", format!(r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{{"e":"pv"}},{{"e":"ue","cx":"{}"}}]}}"#, "@".repeat(10)).into_bytes(), 400),
    ];
    for (path, body, status) in &refused {
        let r = server.client().request(&post(path, "", body));
        assert_eq!(r.status, *status, "{path}: {}", r.text());
    }
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_eq!(records.len(), stored, "exactly the accepted events");
    assert_stable_fields(&records[..10]);
}

/// posthog-js asks for feature flags and remote config by default: plutos answers as PostHog does for a project
/// without either, with the SDK routes' CORS, so the page's console stays clean; nothing is stored.
#[test]
fn posthog_flags_and_remote_config_are_answered_empty() {
    let server = TestServer::start(&[]);
    let origin = "Origin: http://shop.example\r\n";
    let flags = server.client().request(
        format!("POST /flags/?v=2&config=true HTTP/1.1\r\nHost: t\r\n{origin}Content-Length: 2\r\n\r\n{{}}").as_bytes(),
    );
    assert_eq!((flags.status, flags.header("content-type")), (200, Some("application/json")));
    assert_eq!(flags.header("access-control-allow-origin"), Some("http://shop.example"));
    let body: Value = serde_json::from_slice(&flags.body).unwrap();
    assert_eq!((&body["flags"], &body["errorsWhileComputingFlags"]), (&json!({}), &json!(false)));
    assert_eq!(get(server.addr, "/decide/").status, 200);
    let config = get(server.addr, "/array/phc_test-1/config");
    assert_eq!((config.status, config.text()), (200, "{}".to_string()));
    let script = get(server.addr, "/array/phc_test-1/config.js");
    assert_eq!(script.header("content-type"), Some("application/javascript"));
    assert!(script.text().contains("window._POSTHOG_REMOTE_CONFIG") && script.text().contains("\"phc_test-1\""));
    for path in ["/array/a%22b/config.js", "/array//config", "/array/a/b/config"] {
        assert_eq!(get(server.addr, path).status, 404, "{path}");
    }
    assert_eq!(server.metric("plutos_events_accepted_total"), 0, "nothing stored");
}

/// A Snowplow pixel GET whose target is over 8 KiB is a size-violation bad row answered with the GIF (its
/// trackers would send it again forever if refused), whole or trickled; a target past the head's limit is 431,
/// and any other route's long target is still 414.
#[test]
fn a_snowplow_pixel_target_over_8_kib_is_a_bad_row_answered_200() {
    let server = TestServer::start(&[]);
    let long = format!("/i?e=pv&aid=shop&url={}", "u".repeat(9_000));
    let request = format!("GET {long} HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut client = server.client();
    let answer = client.request(request.as_bytes());
    assert_eq!((answer.status, answer.header("content-type")), (200, Some("image/gif")));
    // Trickled in 1 KiB pieces on the same connection: the same.
    for piece in request.as_bytes().chunks(1024) {
        client.send(piece);
    }
    assert_eq!(client.read_response().status, 200);
    assert_eq!(client.request(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n").status, 200, "the connection goes on");
    let too_long = format!("GET /i?p={} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(17_000));
    assert_eq!(server.client().request(too_long.as_bytes()).status, 431);
    let elsewhere = format!("GET /e?p={} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(9_000));
    assert_eq!(server.client().request(elsewhere.as_bytes()).status, 414);
    let dir = server.stop();
    let (records, rows) = read_streams(&dir.path().join("out"));
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(rows.len(), 2);
    common::sdks::assert_bad_rows_valid(&rows);
    for row in &rows {
        let failure = &row["data"]["failure"];
        assert_eq!(
            (&failure["maximumAllowedSizeBytes"], &failure["actualSizeBytes"]),
            (&json!(8192), &json!(long.len()))
        );
        assert_eq!(failure["expectation"], "at most 8 KiB (a request target)");
        assert_eq!(row["data"]["payload"].as_str().unwrap(), &long[..1024], "the target's first 1 KiB");
    }
}
