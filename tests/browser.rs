//! A real browser against the real server: headless Chromium (Debian's `chromium`, installed by scripts/test.sh)
//! loads a page from a second origin that sends (a) an `<img>` pixel, (b) `navigator.sendBeacon` with JSON,
//! (c) a preflighted `fetch` POST of application/json and (d) a `fetch` with `X-Write-Key`; a page from an origin
//! that CORS_ORIGINS does not list tries the same fetch. The shipped output must hold the four events with the
//! right fields, and nothing of the other page. Then a page that runs the browser SDKs — posthog-js and
//! Snowplow's browser tracker, from their npm packages' built files — sends their events to plutos, and the
//! Snowplow cookie plutos sets comes back with the tracker's later requests. And a page on an `https://` origin
//! sends the same events to plutos's HTTPS listener (both certificates from a test CA that Chromium trusts), over
//! HTTP/2: the page reads `nextHopProtocol` of its fetches (plutos allows their timing), the records say `h2`.
//! Over HTTP/3: Chromium forced onto QUIC for the collector's origin sends the same events (`h3` on the page and
//! in the records), and a page that first talked HTTPS switches to HTTP/3 by the `Alt-Svc` of plutos's answers.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use crossbeam_channel::{Receiver, Sender};
use serde_json::{Value, json};

const KEY: &str = "wk-browser";

fn answer(stream: impl Read + Write, page: &str, files: &[(String, Vec<u8>)], reports: &Sender<String>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let file = files.iter().find(|(path, _)| request_line.starts_with(&format!("GET {path} ")));
    let (status, content_type, text) = if request_line.starts_with("POST /report") {
        let _ = reports.send(String::from_utf8_lossy(&body).into_owned());
        ("204 No Content", "text/plain", &b""[..])
    } else if request_line.starts_with("GET / ") {
        ("200 OK", "text/html; charset=utf-8", page.as_bytes())
    } else if let Some((_, content)) = file {
        ("200 OK", "text/javascript", &content[..])
    } else {
        ("404 Not Found", "text/plain", &b""[..])
    };
    let stream = reader.get_mut();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    );
    let _ = stream.write_all(&[head.as_bytes(), text].concat());
    let _ = stream.flush();
}

/// The page: each way a browser sends an event, the outcome of each written to `/report` on its own origin.
fn page(collector: &str, only_fetch: bool) -> String {
    let all = !only_fetch;
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>plutos browser test</title><script>
const E = "{collector}/e";
const results = {{}};
async function attempt(name, f) {{
  try {{ results[name] = await f(); }} catch (e) {{ results[name] = "error: " + e; }}
}}
async function run() {{
  if ({all}) {{
    await attempt("img", () => new Promise(done => {{
      const img = new Image();
      img.onload = () => done("load " + img.naturalWidth + "x" + img.naturalHeight);
      img.onerror = () => done("error");
      img.src = E + "?kind=img&write_key={KEY}";
    }}));
    await attempt("beacon", async () => navigator.sendBeacon(E + "?write_key={KEY}", JSON.stringify({{kind: "beacon"}})));
    await attempt("fetch_json", async () => {{
      const r = await fetch(E + "?write_key={KEY}", {{method: "POST", headers: {{"Content-Type": "application/json"}},
        body: JSON.stringify({{kind: "fetch-json", nested: {{n: 1}}}})}});
      return r.status + " " + await r.text();
    }});
  }}
  await attempt("fetch_key", async () => {{
    const r = await fetch(E, {{method: "POST", headers: {{"Content-Type": "application/json", "X-Write-Key": "{KEY}"}},
      body: JSON.stringify({{kind: {kind}}})}});
    return r.status + " " + await r.text();
  }});
  // The protocol the fetches to the collector went over (their answers allow the page their timing; a pixel's
  // and a beacon's entries stay blank without CORS).
  results.protocols = performance.getEntriesByType("resource")
    .filter(e => e.name.startsWith(E) && e.initiatorType === "fetch").map(e => e.nextHopProtocol);
  await fetch("/report", {{method: "POST", body: JSON.stringify(results)}});
}}
run();
</script>"#,
        kind = if only_fetch { "\"other-origin\"" } else { "\"fetch-key\"" },
    )
}

/// Headless Chromium on `url`, with the flags this machine's closed network needs and `extra` (QUIC stays off
/// unless `extra` has `--enable-quic`).
fn chromium(url: &str, profile: &std::path::Path, extra: &[String], home: Option<&std::path::Path>) -> Child {
    let quic = if extra.iter().any(|f| f == "--enable-quic") { "--enable-quic" } else { "--disable-quic" };
    let mut command = Command::new("chromium");
    if let Some(home) = home {
        command.env("HOME", home);
    }
    command
        .args(extra)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            quic,
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (scripts/test.sh installs Debian's chromium package when it is missing)")
}

fn report_of(url: &str, reports: &Receiver<String>) -> Value {
    report_with(url, reports, &[])
}

fn report_with(url: &str, reports: &Receiver<String>, flags: &[String]) -> Value {
    report_in(url, reports, flags, None)
}

/// The same with `HOME` at `home` (where Chromium finds its NSS certificate database).
fn report_in(url: &str, reports: &Receiver<String>, flags: &[String], home: Option<&std::path::Path>) -> Value {
    let profile = tempfile::tempdir().unwrap();
    let mut browser = chromium(url, profile.path(), flags, home);
    let report = reports.recv_timeout(DEADLINE);
    let _ = browser.kill();
    let _ = browser.wait();
    serde_json::from_str(&report.expect("the page's report")).unwrap()
}

#[test]
fn a_page_on_another_origin_sends_events_four_ways_and_a_foreign_page_cannot() {
    // The pages are served first: the collector's CORS_ORIGINS names the allowed page's origin.
    let (allowed_tx, allowed_rx) = crossbeam_channel::bounded::<String>(1);
    let (other_tx, other_rx) = crossbeam_channel::bounded::<String>(1);
    let (allowed_port, allowed_reports) = serve_page(allowed_rx, Vec::new());
    let (other_port, other_reports) = serve_page(other_rx, Vec::new());
    let origin = format!("http://127.0.0.1:{allowed_port}");
    let server = TestServer::start(&["--cors-origins", &origin, "--write-keys", KEY, "--response", "pixel"]);
    let collector = format!("http://127.0.0.1:{}", server.addr.port());
    allowed_tx.send(page(&collector, false)).unwrap();
    other_tx.send(page(&collector, true)).unwrap();

    let allowed = report_of(&format!("{origin}/"), &allowed_reports);
    assert_eq!(allowed["img"], "load 1x1", "{allowed}");
    assert_eq!(allowed["beacon"], true, "{allowed}");
    assert_eq!(allowed["fetch_json"], r#"200 {"accepted":1}"#, "{allowed}");
    assert_eq!(allowed["fetch_key"], r#"200 {"accepted":1}"#, "{allowed}");
    assert_eq!(allowed["protocols"], json!(["http/1.1", "http/1.1"]), "{allowed}");
    let other = report_of(&format!("http://127.0.0.1:{other_port}/"), &other_reports);
    assert!(other["fetch_key"].as_str().unwrap().starts_with("error"), "{other}");

    // The beacon is sent in the background: wait until the collector has all four.
    wait_until("the four events", || server.metric("plutos_events_accepted_total") >= 4);
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    let mut by_kind: Vec<(String, &Value)> =
        records.iter().map(|r| (r["raw_data"]["kind"].as_str().unwrap_or("?").to_string(), r)).collect();
    by_kind.sort_by(|a, b| a.0.cmp(&b.0));
    let kinds: Vec<&str> = by_kind.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["beacon", "fetch-json", "fetch-key", "img"], "nothing of the other origin");
    for (kind, record) in &by_kind {
        let method = if kind == "img" { "GET" } else { "POST" };
        assert_eq!(record["method"], method, "{record}");
        assert_eq!(record["path"], "/e");
        assert_eq!(record["ip"], "127.0.0.1");
        assert!(record["user_agent"].as_str().unwrap().contains("Chrome"), "{record}");
    }
    assert_eq!(by_kind[1].1["raw_data"], json!({"kind": "fetch-json", "nested": {"n": 1}}));
    assert!(!serde_json::to_string(&records).unwrap().contains(KEY), "the key is in no record");
}

#[test]
fn a_page_on_an_https_origin_sends_pixel_beacon_and_fetch_to_plutos_over_https() {
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(certs.path(), "browser");
    let (page_tx, page_rx) = crossbeam_channel::bounded::<String>(1);
    let (page_port, reports) = serve_page_over(page_rx, Vec::new(), Some(pki.server()));
    let origin = format!("https://127.0.0.1:{page_port}");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let server = TestServer::start(&[
        "--cors-origins",
        &origin,
        "--write-keys",
        KEY,
        "--response",
        "pixel",
        "--tls-port",
        "127.0.0.1:0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ]);
    let collector = format!("https://127.0.0.1:{}", server.tls_addr.unwrap().port());
    page_tx.send(page(&collector, false)).unwrap();
    // Chromium trusts chains through the test CA (its key's hash), nothing else.
    let trust = format!("--ignore-certificate-errors-spki-list={}", pki.ca_spki_sha256);
    let report = report_with(&format!("{origin}/"), &reports, &[trust]);
    assert_eq!(report["img"], "load 1x1", "{report}");
    assert_eq!(report["beacon"], true, "{report}");
    assert_eq!(report["fetch_json"], r#"200 {"accepted":1}"#, "{report}");
    assert_eq!(report["fetch_key"], r#"200 {"accepted":1}"#, "{report}");
    // Chromium spoke HTTP/2 to plutos (ALPN h2): the page sees it for its fetches, the records for every event.
    assert_eq!(report["protocols"], json!(["h2", "h2"]), "{report}");
    wait_until("the four events", || server.metric("plutos_events_accepted_total") >= 4);
    assert_eq!(server.metric("plutos_tls_failures_total"), 0);
    let dir = server.stop();
    let mut kinds: Vec<String> = read_records(&dir.path().join("out"))
        .iter()
        .map(|r| r["raw_data"]["kind"].as_str().unwrap_or("?").to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["beacon", "fetch-json", "fetch-key", "img"]);
    let records = read_records(&dir.path().join("out"));
    assert!(records.iter().all(|r| r["transport"] == "h2"), "{records:?}");
}

/// A page server on its own port (its own origin): serves the page at `/` and hands each `POST /report` body to
/// the channel it returns. The page names the collector, which starts only once the page's port (its origin)
/// is known, so the page text arrives later, on `page`.
fn serve_page(page: Receiver<String>, files: Vec<(String, Vec<u8>)>) -> (u16, Receiver<String>) {
    serve_page_over(page, files, None)
}

/// The same, over HTTPS with `tls` (an `https://` origin).
fn serve_page_over(
    page: Receiver<String>,
    files: Vec<(String, Vec<u8>)>,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> (u16, Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (reports, received) = crossbeam_channel::unbounded();
    let files = std::sync::Arc::new(files);
    std::thread::spawn(move || {
        let page = page.recv_timeout(DEADLINE + Duration::from_secs(30)).unwrap_or_default();
        for stream in listener.incoming().map_while(Result::ok) {
            let (page, files, reports, tls) = (page.clone(), files.clone(), reports.clone(), tls.clone());
            std::thread::spawn(move || match tls {
                None => answer(stream, &page, &files, &reports),
                Some(config) => {
                    let Ok(session) = rustls::ServerConnection::new(config) else { return };
                    answer(rustls::StreamOwned::new(session, stream), &page, &files, &reports);
                }
            });
        }
    });
    (port, received)
}

/// The page of the SDK test: posthog-js and Snowplow's browser tracker, as a site embeds them, pointed at the
/// collector. It reports what each tracker's callbacks said.
fn sdk_page(collector: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>plutos SDK page</title>
<script src="/posthog.js"></script><script src="/sp.js"></script><script>
const results = {{snowplow_ok: 0, snowplow_failed: []}};
// The headless browser's user agent is one posthog-js would drop as a bot. Its feature-flag and remote-config
// calls are left on: plutos answers them as PostHog does for a project without flags.
posthog.init("{POSTHOG_KEY}", {{api_host: "{collector}", request_batching: false, persistence: "memory",
  opt_out_useragent_filter: true, disable_session_recording: true, autocapture: false, capture_pageleave: false}});
posthog.capture("clicked", {{button: "buy"}});
posthog.identify("user-browser", {{plan: "pro"}});
const sp = snowplowBrowserTracking;
// Each event waits for the answer to the one before, so the cookie the first answer sets is in the browser when
// the next request leaves.
let answered = () => {{}};
const callbacks = {{
  onRequestSuccess: () => {{ results.snowplow_ok += 1; answered(); }},
  onRequestFailure: (failure) => {{ results.snowplow_failed.push(String(failure.status)); answered(); }},
}};
const send = (track) => new Promise(done => {{ answered = done; track(); }});
sp.newTracker("post", "{collector}", {{appId: "{SNOWPLOW_APP}", eventMethod: "post", bufferSize: 1,
  stateStorageStrategy: "none", ...callbacks}});
sp.newTracker("get", "{collector}", {{appId: "{SNOWPLOW_APP}", eventMethod: "get", stateStorageStrategy: "none",
  ...callbacks}});
async function run() {{
  await send(() => sp.trackPageView({{}}, ["post"]));
  await send(() => sp.trackStructEvent({{category: "shop", action: "add-to-basket"}}, ["post"]));
  await send(() => sp.trackSelfDescribingEvent({{event: {{
    schema: "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1", data: {{targetUrl: "/x"}}}}}}, ["post"]));
  await send(() => sp.trackSelfDescribingEvent({{event: {{schema: "iglu:com.acme/link_click/jsonschema/1-0-0",
    data: {{target: "/x"}}}}}}, ["post"]));
  await send(() => sp.trackPageView({{title: "by GET"}}, ["get"]));
  await fetch("/report", {{method: "POST", body: JSON.stringify(results)}});
}}
run();
</script>"#
    )
}

const POSTHOG_KEY: &str = "phc_browser_test";
const SNOWPLOW_APP: &str = "web-shop";

#[test]
fn posthog_js_and_the_snowplow_browser_tracker_send_their_events_and_the_cookie_comes_back() {
    let (_, node_modules) = common::sdks::sdks();
    let file = |path: &str| std::fs::read(node_modules.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let files = vec![
        ("/posthog.js".to_string(), file("posthog-js/dist/array.full.js")),
        ("/sp.js".to_string(), file("@snowplow/browser-tracker/dist/index.umd.min.js")),
    ];
    let (page_tx, page_rx) = crossbeam_channel::bounded::<String>(1);
    let (port, reports) = serve_page(page_rx, files);
    // No CORS_ORIGINS: the SDK routes answer any origin as PostHog's and Snowplow's servers do. The real Iglu
    // schemas, rejecting: the tracker's own events (with its web_page context) must pass them.
    let registry = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iglu");
    let server = TestServer::start(&["--schemas-dir", registry]);
    let collector = format!("http://127.0.0.1:{}", server.addr.port());
    page_tx.send(sdk_page(&collector)).unwrap();
    let report = report_of(&format!("http://127.0.0.1:{port}/"), &reports);
    assert_eq!(report["snowplow_failed"], json!([]), "a bad row is a success for the tracker: {report}");
    assert_eq!(report["snowplow_ok"], 5, "{report}");
    // An event that breaks its schema, as a tracker would POST it.
    let link = json!({"schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        "data": {"schema": "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1", "data": {"targetUrl": 7}}});
    let tp2 = json!({"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [{"e": "ue", "eid": "raw-breaks-schema", "aid": SNOWPLOW_APP, "p": "web", "tv": "raw", "ue_pr": link.to_string()}]});
    let posted = common::post_to(
        server.addr,
        "/com.snowplowanalytics.snowplow/tp2",
        "application/json",
        tp2.to_string().as_bytes(),
    );
    assert_eq!(posted.status, 200);
    // posthog-js sends in the background: wait until the collector has its three events.
    wait_until("the SDK events", || server.metric("plutos_events_accepted_total") >= 9);
    let metrics = String::from_utf8(get(server.addr, "/metrics").body).unwrap();
    let answers: Vec<&str> = metrics.lines().filter(|l| l.starts_with("plutos_responses_total{")).collect();
    assert!(
        answers.iter().any(|l| l.starts_with("plutos_responses_total{route=\"/flags/\",status=\"200\"}")),
        "{answers:#?}"
    );
    assert!(
        answers.iter().all(|l| l.contains("status=\"200\"") || l.contains("status=\"204\"")),
        "nothing refused: {answers:#?}"
    );
    let dir = server.stop();
    let (records, rows) = read_streams(&dir.path().join("out"));
    // The unknown schema's event and the one that breaks its schema are bad rows; the tracker's others pass.
    common::sdks::assert_bad_rows_valid(&rows);
    let mut failed: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            let enriched = &r["data"]["payload"]["enriched"];
            (enriched["event_name"].as_str().unwrap(), enriched["event_vendor"].as_str().unwrap())
        })
        .collect();
    failed.sort_unstable();
    assert_eq!(failed, [("link_click", "com.acme"), ("link_click", "com.snowplowanalytics.snowplow")], "{rows:?}");
    let errors: Vec<&Value> = rows.iter().map(|r| &r["data"]["failure"]["messages"][0]["error"]).collect();
    assert!(errors.iter().any(|e| e["error"] == "ResolutionError"), "{errors:?}");
    assert!(errors.iter().any(|e| e["error"] == "ValidationError"), "{errors:?}");
    let posthog: Vec<&Value> = records.iter().filter(|r| r["protocol"] == "posthog").collect();
    let mut names: Vec<&str> = posthog.iter().map(|r| r["event_name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["$identify", "$pageview", "clicked"], "{posthog:?}");
    for r in &posthog {
        assert_eq!(r["path"], "/e/", "posthog-js's path");
        assert!(r["anonymous_id"].is_string(), "posthog-js's $device_id: {r}");
        assert!(r["user_agent"].as_str().unwrap().contains("Chrome"));
    }
    let identify = posthog.iter().find(|r| r["event_name"] == "$identify").unwrap();
    assert_eq!(identify["user_id"], "user-browser");
    let snowplow: Vec<&Value> = records.iter().filter(|r| r["protocol"] == "snowplow").collect();
    let mut names: Vec<&str> = snowplow.iter().map(|r| r["event_name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add-to-basket", "link_click", "page_view", "page_view"], "{snowplow:?}");
    // The first request had no cookie and was given a new id; four requests later all carry the same one:
    // the browser stored the cookie and sent it back.
    let visitor = &snowplow[0]["visitor_id"];
    assert!(visitor.is_string(), "{visitor}");
    assert!(snowplow.iter().all(|r| r["visitor_id"] == *visitor), "{snowplow:?}");
    let link = snowplow.iter().find(|r| r["event_name"] == "link_click").unwrap();
    assert_eq!(link["raw_data"]["ue_pr"]["data"]["data"], json!({"targetUrl": "/x"}), "{link}");
    let page_view = snowplow.iter().find(|r| r["event_name"] == "page_view" && r["method"] == "POST").unwrap();
    let context = &page_view["raw_data"]["co"]["data"][0];
    assert_eq!(context["schema"], "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0", "{page_view}");
    assert!(snowplow.iter().all(|r| r["validation"].is_null()), "nothing flagged under reject");
    assert!(snowplow.iter().any(|r| r["method"] == "GET" && r["path"] == "/i"), "the GET tracker's pixel");
}

/// A page that sends six events to `collector`, half a second apart, and reports the protocol of each.
fn alt_svc_page(collector: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>plutos Alt-Svc test</title><script>
async function run() {{
  const protocols = [];
  for (let i = 0; i < 6; i++) {{
    const url = "{collector}/e?write_key={KEY}&n=" + i;
    const r = await fetch(url, {{method: "POST", headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{kind: "alt-svc", n: i}})}});
    await r.text();
    const entry = performance.getEntriesByName(url)[0];
    protocols.push(entry ? entry.nextHopProtocol : "?");
    await new Promise(done => setTimeout(done, 500));
  }}
  await fetch("/report", {{method: "POST", body: JSON.stringify({{protocols}})}});
}}
run();
</script>"#
    )
}

/// A page server on an https origin (certificate from `pki`) and a collector with HTTPS and QUIC that allows it,
/// with the test CA's certificate; connections idle for a second are closed. The page's text goes to the sender
/// returned, its report comes on the receiver.
fn https_page_and_quic_collector(pki: &common::pki::Pki) -> (String, Sender<String>, Receiver<String>, TestServer) {
    let (page_tx, page_rx) = crossbeam_channel::bounded::<String>(1);
    let (page_port, reports) = serve_page_over(page_rx, Vec::new(), Some(pki.server()));
    let origin = format!("https://127.0.0.1:{page_port}");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let server = TestServer::start(&[
        "--idle-timeout-seconds",
        "1",
        "--cors-origins",
        &origin,
        "--write-keys",
        KEY,
        "--response",
        "pixel",
        "--tls-port",
        "127.0.0.1:0",
        "--quic-port",
        "127.0.0.1:0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ]);
    (origin, page_tx, reports, server)
}

#[test]
fn chromium_forced_onto_quic_sends_pixel_beacon_and_fetch_over_http3() {
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(certs.path(), "browser-h3");
    let (origin, page_tx, reports, server) = https_page_and_quic_collector(&pki);
    let quic = server.quic_addr.unwrap();
    // The collector's origin is its QUIC port: Chromium goes there over QUIC only, without asking TCP first.
    page_tx.send(page(&format!("https://{quic}"), false)).unwrap();
    let flags = [
        format!("--ignore-certificate-errors-spki-list={}", pki.ca_spki_sha256),
        "--enable-quic".to_string(),
        format!("--origin-to-force-quic-on={quic}"),
    ];
    let report = report_with(&format!("{origin}/"), &reports, &flags);
    assert_eq!(report["img"], "load 1x1", "{report}");
    assert_eq!(report["beacon"], true, "{report}");
    assert_eq!(report["fetch_json"], r#"200 {"accepted":1}"#, "{report}");
    assert_eq!(report["fetch_key"], r#"200 {"accepted":1}"#, "{report}");
    assert_eq!(report["protocols"], json!(["h3", "h3"]), "{report}");
    wait_until("the four events", || server.metric("plutos_events_accepted_total") >= 4);
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    let mut kinds: Vec<&str> = records.iter().map(|r| r["raw_data"]["kind"].as_str().unwrap_or("?")).collect();
    kinds.sort();
    assert_eq!(kinds, ["beacon", "fetch-json", "fetch-key", "img"]);
    assert!(records.iter().all(|r| r["transport"] == "h3"), "{records:?}");
}

/// A page on an https origin talks to plutos's HTTPS port; the `Alt-Svc` of the answers sends Chromium to the
/// QUIC port by itself (no flag names it): a QUIC handshake reaches plutos. Chromium then refuses the
/// certificate over QUIC — it takes QUIC only with a certificate of a public root (`ERR_QUIC_CERT_ROOT_NOT_KNOWN`,
/// seen in its net log), and the test CA, trusted as a local root in the browser's own database, is not one — so
/// its requests stay on HTTP/2, each stored once. (With a public certificate the handshake completes: the test
/// above shows the rest of the path with the root check lifted for the origin.)
#[test]
fn a_page_that_talked_https_is_sent_to_the_quic_port_by_alt_svc() {
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(certs.path(), "browser-alt-svc");
    let (origin, page_tx, reports, server) = https_page_and_quic_collector(&pki);
    page_tx.send(alt_svc_page(&format!("https://127.0.0.1:{}", server.tls_addr.unwrap().port()))).unwrap();
    // Chromium takes no Alt-Svc from a connection with a certificate error, even an ignored one: the test CA is
    // made a trusted root in the browser's own certificate database instead.
    let home = tempfile::tempdir().unwrap();
    let nssdb = home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    let certutil = |args: &[&str]| {
        let status = Command::new("certutil").args(args).status().expect("certutil (scripts/test.sh installs it)");
        assert!(status.success(), "certutil {args:?}");
    };
    certutil(&["-N", "-d", &db, "--empty-password"]);
    certutil(&["-A", "-d", &db, "-t", "C,,", "-n", "plutos-test-ca", "-i", pki.ca.to_str().unwrap()]);
    let report = report_in(&format!("{origin}/"), &reports, &["--enable-quic".to_string()], Some(home.path()));
    let protocols: Vec<&str> = report["protocols"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(protocols.len(), 6, "{report}");
    assert_eq!(protocols[0], "h2", "the first fetch over HTTPS: {protocols:?}");
    assert!(server.metric("plutos_quic_handshakes_total") >= 1, "Alt-Svc brought Chromium to the QUIC port");
    wait_until("every event", || server.metric("plutos_events_accepted_total") >= 6);
    let dir = server.stop();
    let mut seen: Vec<u64> = read_records(&dir.path().join("out"))
        .iter()
        .filter(|r| r["raw_data"]["kind"] == "alt-svc")
        .map(|r| r["raw_data"]["n"].as_u64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3, 4, 5], "each event once");
}
