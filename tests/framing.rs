//! Request framing against the real server: shapes a front-end could read differently from plutos (request
//! smuggling and hiding) are refused with a 400 (or their status) and the connection closes, and no request
//! hidden inside them is ever executed; the request-target forms, versions and HTTP/1.0 keep-alive of RFC 9112.

mod common;

use common::*;
use serde_json::{Value, json};

/// A request hidden where a lenient parser would see a second request.
const INNER: &str = "GET /e?smuggled=yes HTTP/1.1\r\nHost: t\r\n\r\n";

fn chunked_post(extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n{extra_headers}\r\n{body}"
    )
    .into_bytes()
}

#[test]
fn smuggling_shapes_are_refused_and_nothing_inside_them_runs() {
    let server = TestServer::start(&[]);
    let table: Vec<(&str, Vec<u8>, u16)> = vec![
        ("bare LF in a chunk extension", chunked_post("", &format!("2;x\n{INNER}\r\n{{}}\r\n0\r\n\r\n")), 400),
        ("bare LF ending the trailers", chunked_post("", &format!("2\r\n{{}}\r\n0\r\n\n{INNER}")), 400),
        ("bare LF after the size", chunked_post("", &format!("2\n{{}}\r\n0\r\n\r\n{INNER}")), 400),
        ("space after the size", chunked_post("", &format!("2 \r\n{{}}\r\n0\r\n\r\n{INNER}")), 400),
        ("form feed after the size", chunked_post("", &format!("2\x0c\r\n{{}}\r\n0\r\n\r\n{INNER}")), 400),
        ("signed size", chunked_post("", &format!("+2\r\n{{}}\r\n0\r\n\r\n{INNER}")), 400),
        ("size with 0x", chunked_post("", &format!("0x2\r\n{{}}\r\n0\r\n\r\n{INNER}")), 400),
        ("data longer than its size", chunked_post("", &format!("1\r\n{{}}\r\n0\r\n\r\n{INNER}")), 400),
        ("obs-fold in a trailer", chunked_post("", &format!("2\r\n{{}}\r\n0\r\nT: a\r\n b\r\n\r\n{INNER}")), 400),
        (
            "CL.TE: Content-Length beside chunked",
            chunked_post(&format!("Content-Length: {}\r\n", 5 + INNER.len()), &format!("0\r\n\r\n{INNER}")),
            400,
        ),
        ("TE.TE: chunked then identity", chunked_post("Transfer-Encoding: identity\r\n", "0\r\n\r\n"), 400),
        ("TE.TE: chunked twice", chunked_post("Transfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400),
        (
            "TE.TE: chunked, identity in one line",
            format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{INNER}").into_bytes(),
            400,
        ),
        (
            "TE.TE: xchunked",
            format!("POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{INNER}").into_bytes(),
            400,
        ),
        (
            "TE.TE: space before the colon",
            format!("POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{INNER}").into_bytes(),
            400,
        ),
        (
            "TE.TE: vertical tab in the value",
            format!("POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n{INNER}").into_bytes(),
            400,
        ),
        (
            "TE.TE: obs-fold",
            format!("POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n{INNER}").into_bytes(),
            400,
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            format!("POST /e HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n{INNER}").into_bytes(),
            400,
        ),
        (
            "two different Content-Lengths",
            format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: {}\r\n\r\n{{}}{INNER}", 2 + INNER.len())
                .into_bytes(),
            400,
        ),
        ("no Host in HTTP/1.1", format!("GET /e?smuggled=nohost HTTP/1.1\r\n\r\n{INNER}").into_bytes(), 400),
        ("two Host lines", format!("GET /e?smuggled=twohosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n{INNER}").into_bytes(), 400),
        ("a fragment in the target", format!("GET /e?smuggled=frag#x HTTP/1.1\r\nHost: t\r\n\r\n{INNER}").into_bytes(), 400),
        ("HTTP/9.9", format!("GET /e?smuggled=v99 HTTP/9.9\r\nHost: t\r\n\r\n{INNER}").into_bytes(), 505),
        ("gzip transfer coding", chunked_post("", "").replace_te("gzip, chunked"), 501),
        // TE and CL obfuscations from published smuggling research (PortSwigger, "HTTP Desync Attacks").
        ("TE.TE: a second line with another coding", chunked_post("Transfer-encoding: cow\r\n", "0\r\n\r\n"), 400),
        ("TE.TE: quoted chunked", chunked_post("", &format!("0\r\n\r\n{INNER}")).replace_te("\"chunked\""), 400),
        (
            "CL: a sign",
            format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: +2\r\n\r\n{{}}{INNER}").into_bytes(),
            400,
        ),
        (
            "CL: a list",
            format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 2, 2\r\n\r\n{{}}{INNER}").into_bytes(),
            400,
        ),
        // RFC 9112 §2–§7 and the desync catalogue (Kettle, "HTTP/1.1 must die", 2025; Weikop, "Funky chunks",
        // 2025), one shape each.
        (
            "CL: past 64 bits",
            format!("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 18446744073709551618\r\n\r\n{{}}{INNER}").into_bytes(),
            400,
        ),
        ("chunk size past 64 bits", chunked_post("", &format!("10000000000000002\r\n{{}}\r\n0\r\n\r\n{INNER}")), 413),
        ("TERM.EXT: bare CR in an extension", chunked_post("", &format!("2;x\r{INNER}\r\n{{}}\r\n0\r\n\r\n")), 400),
        ("EXT.TERM: LF alone ending the data", chunked_post("", &format!("2\r\n{{}}\n0\r\n\r\n{INNER}")), 400),
        ("no CRLF after the last chunk's data", chunked_post("", &format!("2\r\n{{}}0\r\n\r\n{INNER}")), 400),
        (
            "a header line starting with whitespace (obs-fold of the request line)",
            format!("POST /e HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: t\r\n\r\n0\r\n\r\n{INNER}").into_bytes(),
            400,
        ),
        ("HTTP/0.9: no version", format!("GET /e?smuggled=http09\r\n\r\n{INNER}").into_bytes(), 400),
        ("two spaces in the request line", format!("GET  /e?smuggled=spaces HTTP/1.1\r\nHost: t\r\n\r\n{INNER}").into_bytes(), 400),
    ];
    let mut wrong = Vec::new();
    for (what, raw, status) in &table {
        let mut client = server.client();
        client.send(raw);
        let r = client.read_response();
        if r.status != *status || r.header("connection") != Some("close") || !client.is_closed_by_server() {
            wrong.push(format!("{what}: {} {:?}, connection {:?}", r.status, r.text(), r.header("connection")));
        }
    }
    assert!(wrong.is_empty(), "each must get its status and a closed connection:\n{}", wrong.join("\n"));
    assert_eq!(get(server.addr, "/e?after=all").status, 200);
    let dir = server.stop();
    assert_eq!(raw_data(&read_records(&dir.path().join("out"))), vec![json!({"after": "all"})]);
}

trait ReplaceTransferEncoding {
    fn replace_te(self, codings: &str) -> Vec<u8>;
}

impl ReplaceTransferEncoding for Vec<u8> {
    fn replace_te(self, codings: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("Transfer-Encoding: chunked", &format!("Transfer-Encoding: {codings}"))
            .into_bytes()
    }
}

/// Shapes lenient servers read differently from RFC 9112, which plutos follows: a Content-Length on a GET
/// delimits its body (CL.0), zero-padded lengths and chunk sizes are the numbers they spell, and nothing after a
/// `Connection: close` request is a request.
#[test]
fn framing_follows_the_rfc_where_lenient_servers_part_from_it() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.send(
        format!("GET /e?shape=cl0 HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{INNER}", INNER.len()).as_bytes(),
    );
    assert_eq!(client.read_response().status, 200);
    client.send(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 00000000000000000000016\r\n\r\n{\"shape\":\"cl00\"}");
    assert_eq!(client.read_response().text(), r#"{"accepted":1}"#);
    client.send(&chunked_post("", "0000000000000000000000010;x\r\n{\"shape\":\"ch00\"}\r\n0\r\n\r\n"));
    assert_eq!(client.read_response().text(), r#"{"accepted":1}"#);
    // A body that came with its `Expect: 100-continue` head is read as the body, whatever the answer.
    let body_with_head = format!(
        "POST /nowhere HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{INNER}",
        INNER.len()
    );
    client.send(body_with_head.as_bytes());
    let r = client.read_response();
    assert_eq!((r.status, r.header("connection")), (404, None));
    client.send(format!("GET /e?shape=close HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n{INNER}").as_bytes());
    let r = client.read_response();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(client.is_closed_by_server());
    // 0.CL: a request refused before its body was sent (the early answer to `Expect: 100-continue`) ends the
    // connection, so a body sent anyway is never read as a request.
    let mut client = server.client();
    let head =
        format!("POST /nowhere HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n", INNER.len());
    client.send(head.as_bytes());
    let r = client.read_response();
    assert_eq!((r.status, r.header("connection")), (404, Some("close")));
    let _ = client.try_send(INNER.as_bytes());
    assert!(client.is_closed_by_server());
    let dir = server.stop();
    let shapes: Vec<Value> =
        raw_data(&read_records(&dir.path().join("out"))).iter().map(|v| v["shape"].clone()).collect();
    assert_eq!(shapes, ["cl0", "cl00", "ch00", "close"], "each request once, nothing hidden in them run");
}

#[test]
fn target_forms_versions_and_http10_keep_alive() {
    let server = TestServer::start(&[]);
    // Absolute form (RFC 9112 §3.2.2): accepted and routed by its path.
    let r = request(server.addr, b"GET http://collector.example/e?form=absolute HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(r.status, 200);
    let r = request(server.addr, b"GET http://collector.example/health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.text()), (200, "ok\n".to_string()));

    // HTTP/1.0 keep-alive: the answer says the connection stays, and it does.
    let mut client = server.client();
    let r = client.request(b"GET /e?form=http10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!((r.status, r.header("connection")), (200, Some("keep-alive")));
    let r = client.request(b"GET /nowhere HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!((r.status, r.header("connection")), (404, Some("keep-alive")));
    let r = client.request(b"GET /e?form=http10-last HTTP/1.0\r\n\r\n");
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(client.is_closed_by_server());
    // HTTP/1.1 keeps the connection without saying so.
    let r = get(server.addr, "/e?form=http11");
    assert_eq!((r.status, r.header("connection")), (200, None));

    // A head over the limit gets 431 whatever its line endings, before it is complete.
    for eol in ["\r\n", "\n"] {
        let mut client = server.client();
        let head =
            format!("GET /e HTTP/1.1{eol}Host: t{eol}{}", format!("X-Pad: {}{eol}", "p".repeat(100)).repeat(200));
        let _ = client.try_send(head.as_bytes());
        let r = client.read_response();
        assert_eq!(r.status, 431, "{eol:?}");
    }
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    let mut forms: Vec<String> = raw_data(&records).iter().map(|v| v["form"].as_str().unwrap().to_string()).collect();
    forms.sort();
    assert_eq!(forms, ["absolute", "http10", "http10-last", "http11"]);
    assert!(records.iter().all(|r| r["path"] == "/e"));
}

#[test]
fn a_chunked_body_trickled_in_small_pieces_is_accepted_whole() {
    let server = TestServer::start(&["--max-body-bytes", "256KiB"]);
    let events: String = (0..2000).map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(60))).collect();
    let mut body = String::new();
    for piece in events.as_bytes().chunks(100) {
        body.push_str(&format!("{:x};piece=\"a b\"\r\n{}\r\n", piece.len(), std::str::from_utf8(piece).unwrap()));
    }
    body.push_str("0\r\nX-Checksum: none\r\n\r\n");
    let raw = format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
    );
    let mut client = server.client();
    for piece in raw.as_bytes().chunks(200) {
        client.send(piece);
    }
    assert_eq!(client.read_response().text(), r#"{"accepted":2000}"#);
    let dir = server.stop();
    assert_eq!(read_records(&dir.path().join("out")).len(), 2000);
}

/// A request line without an HTTP version (HTTP/0.9's `GET /path`) is refused as soon as the line is complete:
/// such a client never sends the blank line that would end its head, so waiting for it would hold the
/// connection until the header timeout (set to an hour here, so only an answer at once passes).
#[test]
fn a_request_line_without_a_version_is_refused_when_the_line_ends() {
    let server = TestServer::start(&["--header-timeout-seconds", "3600"]);
    for line in ["GET /e?x\r\n", "GET /e?x\n", "\r\nGET /e?http09=yes\r\n", "POST /e\r\n"] {
        let mut client = server.client();
        client.send(line.as_bytes());
        let r = client.read_response();
        assert_eq!((r.status, r.header("connection")), (400, Some("close")), "{line:?}");
        assert!(r.text().contains("without an HTTP version"), "{line:?}: {}", r.text());
        assert!(client.is_closed_by_server(), "{line:?}");
    }
    let mut client = server.client();
    client.send(b"GET /e HTTP/2.0\r\n");
    let r = client.read_response();
    assert_eq!((r.status, r.header("connection")), (505, Some("close")));
    let dir = server.stop();
    assert!(read_records(&dir.path().join("out")).is_empty());
}
