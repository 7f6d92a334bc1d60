//! A real browser against the real server: headless Chromium (Debian's `chromium`, installed by scripts/test.sh)
//! loads a page from a second origin that sends (a) an `<img>` pixel, (b) `navigator.sendBeacon` with JSON,
//! (c) a preflighted `fetch` POST of application/json and (d) a `fetch` with `X-Write-Key`; a page from an origin
//! that CORS_ORIGINS does not list tries the same fetch. The shipped output must hold the four events with the
//! right fields, and nothing of the other page.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use crossbeam_channel::{Receiver, Sender};
use serde_json::{Value, json};

const KEY: &str = "wk-browser";

fn answer(stream: TcpStream, page: &str, reports: &Sender<String>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
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
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (status, content_type, text) = if request_line.starts_with("POST /report") {
        let _ = reports.send(String::from_utf8_lossy(&body).into_owned());
        ("204 No Content", "text/plain", String::new())
    } else if request_line.starts_with("GET / ") {
        ("200 OK", "text/html; charset=utf-8", page.to_string())
    } else {
        ("404 Not Found", "text/plain", String::new())
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
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
  await fetch("/report", {{method: "POST", body: JSON.stringify(results)}});
}}
run();
</script>"#,
        kind = if only_fetch { "\"other-origin\"" } else { "\"fetch-key\"" },
    )
}

/// Headless Chromium on `url`, with the flags this machine's closed network needs.
fn chromium(url: &str, profile: &std::path::Path) -> Child {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
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
    let profile = tempfile::tempdir().unwrap();
    let mut browser = chromium(url, profile.path());
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
    let (allowed_port, allowed_reports) = serve_page(allowed_rx);
    let (other_port, other_reports) = serve_page(other_rx);
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

/// A page server on its own port (its own origin): serves the page at `/` and hands each `POST /report` body to
/// the channel it returns. The page names the collector, which starts only once the page's port (its origin)
/// is known, so the page text arrives later, on `page`.
fn serve_page(page: Receiver<String>) -> (u16, Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (reports, received) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        let page = page.recv_timeout(DEADLINE + Duration::from_secs(30)).unwrap_or_default();
        for stream in listener.incoming().map_while(Result::ok) {
            let (page, reports) = (page.clone(), reports.clone());
            std::thread::spawn(move || answer(stream, &page, &reports));
        }
    });
    (port, received)
}
