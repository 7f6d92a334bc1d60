//! The head parser's rules and limits, each at and over its edge.

use super::*;

type Summary = (Method, Vec<u8>, Vec<u8>, bool, Framing, usize);

#[test]
fn content_lengths_are_decimal_digits_with_any_leading_zeros_and_never_overflow() {
    let table: &[(&[u8], Option<u64>)] = &[
        (b"0", Some(0)),
        (b"12", Some(12)),
        (b"000000000000000000000000000016", Some(16)),
        (b"0000", Some(0)),
        (b"9999999999999999999", Some(9_999_999_999_999_999_999)),
        (b"09999999999999999999", Some(9_999_999_999_999_999_999)),
        (b"10000000000000000000", None),
        (b"18446744073709551615", None),
        (b"99999999999999999999999", None),
        (b"", None),
        (b"+1", None),
        (b"-1", None),
        (b"1 ", None),
        (b"0x10", None),
        (b"1e3", None),
    ];
    for &(text, expected) in table {
        assert_eq!(parse_decimal(text), expected, "{:?}", String::from_utf8_lossy(text));
    }
}

fn head(raw: &[u8]) -> Result<Option<Summary>, HttpError> {
    Ok(match parse_head(raw)? {
        Parse::Complete(h) => Some((h.method, h.path.to_vec(), h.query.to_vec(), h.keep_alive, h.framing, h.len)),
        Parse::Partial => None,
    })
}

fn show(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(60)]).into_owned()
}

#[test]
fn reads_the_edge_headers_and_lists_every_field() {
    let raw = b"\r\nOPTIONS /e HTTP/1.1\r\nHost: h\r\nORIGIN: https://a.example\r\nX-Write-Key:  k1 \r\n\
                Authorization: Basic eA==\r\nAccess-Control-Request-Method: POST\r\n\
                Access-Control-Request-Headers: content-type\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n";
    let Ok(Parse::Complete(h)) = parse_head(raw) else { panic!() };
    assert_eq!(field(h.raw, b"origin"), Some(&b"https://a.example"[..]));
    assert_eq!(field(h.raw, b"x-write-key"), Some(&b"k1"[..]));
    assert_eq!(field(h.raw, b"authorization"), Some(&b"Basic eA=="[..]));
    assert_eq!(field(h.raw, b"access-control-request-method"), Some(&b"POST"[..]));
    assert_eq!(field(h.raw, b"access-control-request-headers"), Some(&b"content-type"[..]));
    assert_eq!(field(h.raw, b"cookie"), None);
    assert!(h.forwarded);
    assert!(h.raw.starts_with(b"OPTIONS"), "leading empty lines are not part of the head");
    let names: Vec<&[u8]> = fields(h.raw).map(|(n, _)| n).collect();
    assert_eq!(names.len(), 7);
    assert_eq!(fields(h.raw).nth(2), Some((&b"X-Write-Key"[..], &b"k1"[..])));
    let Ok(Parse::Complete(plain)) = parse_head(b"GET /e HTTP/1.1\nHost: h\n\n") else { panic!() };
    assert!(!plain.forwarded && field(plain.raw, b"origin").is_none());
    assert_eq!(fields(plain.raw).collect::<Vec<_>>(), vec![(&b"Host"[..], &b"h"[..])]);
}

#[test]
fn parses_request_heads() {
    let get = b"GET /e?test=me HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(
        head(get).unwrap(),
        Some((Method::Get, b"/e".to_vec(), b"test=me".to_vec(), true, Framing::None, get.len()))
    );
    let post = b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n";
    assert_eq!(head(post).unwrap().unwrap().4, Framing::Length(12));
    let chunked = b"POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(head(chunked).unwrap().unwrap().4, Framing::Chunked);
    let chunked = b"POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \tChunked \r\n\r\n";
    assert_eq!(head(chunked).unwrap().unwrap().4, Framing::Chunked);
    let http10 = b"GET /e HTTP/1.0\r\n\r\n";
    assert!(!head(http10).unwrap().unwrap().3, "HTTP/1.0 closes by default; Host is optional");
    let http10_ka = b"GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert!(head(http10_ka).unwrap().unwrap().3);
    let close = b"GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert!(!head(close).unwrap().unwrap().3);
    let bare_lf = b"GET /e?lf=1 HTTP/1.1\nHost: x\n\n";
    assert_eq!(head(bare_lf).unwrap().unwrap().2, b"lf=1");
    let after_empty_lines = b"\r\n\r\nGET /e?n=2 HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(head(after_empty_lines).unwrap().unwrap().2, b"n=2");
    assert!(head(b"GET /e HTTP/1.1\r\nHost:").unwrap().is_none(), "partial");
    assert!(head(b"GE").unwrap().is_none(), "partial");
}

#[test]
fn rejects_bad_heads() {
    let long_uri = [b"GET /e?".as_slice(), &vec![b'a'; MAX_URI_BYTES + 10], b" HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
    let long_partial_uri = [b"GET /e?".as_slice(), &vec![b'a'; MAX_URI_BYTES + 70]].concat();
    let big_header = [b"GET /e HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD_BYTES]].concat();
    let big_lf_header = [b"GET /e HTTP/1.1\nHost: x\nX: ".as_slice(), &vec![b'a'; MAX_HEAD_BYTES]].concat();
    let many_lf_lines = [b"GET /e HTTP/1.1\n".as_slice(), &b"X-Long-Header-Name: value\n".repeat(700)].concat();
    let many_headers = [b"GET /e HTTP/1.1\r\n".as_slice(), &b"A: b\r\n".repeat(100), b"\r\n"].concat();
    let h = "Host: x\r\n";
    let table: Vec<(Vec<u8>, u16)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"\r\n\r\n\nGET /e HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        (b"\n\n\n\n\n".to_vec(), 400),
        (format!("GET /e HTTP/1.1\r\n{h}Content-Length: abc\r\n\r\n").into_bytes(), 400),
        (format!("GET /e HTTP/1.1\r\n{h}Content-Length: +5\r\n\r\n").into_bytes(), 400),
        (format!("GET /e HTTP/1.1\r\n{h}Content-Length: 1\r\nContent-Length: 2\r\n\r\n").into_bytes(), 400),
        (format!("POST /e HTTP/1.1\r\n{h}Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes(), 400),
        (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: chunked, identity\r\n\r\n").into_bytes(), 400),
        (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: gzip\r\n\r\n").into_bytes(), 400),
        (
            format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n")
                .into_bytes(),
            400,
        ),
        (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: chunked\x0c\r\n\r\n").into_bytes(), 400),
        (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: xchunked\r\n\r\n").into_bytes(), 400),
        (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: chunked,\r\n\r\n").into_bytes(), 400),
        (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding:\r\n\r\n").into_bytes(), 400),
        (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding : chunked\r\n\r\n").into_bytes(), 400),
        (format!("POST /e HTTP/1.1\r\n{h}Transfer-Encoding: gzip, chunked\r\n\r\n").into_bytes(), 501),
        (b"POST /e HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400),
        (b"POST /e HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n".to_vec(), 400),
        (format!("GET /e HTTP/1.1\r\n{h}X: a\r\n folded\r\n\r\n").into_bytes(), 400),
        (format!("GET /e HTTP/1.1\r\n{h}X: a\x00b\r\n\r\n").into_bytes(), 400),
        (format!("GET /e HTTP/1.1\r\n{h}X: a\rb\r\n\r\n").into_bytes(), 400),
        (format!("GET /e HTTP/1.1\r\n{h}Expect: magic\r\n\r\n").into_bytes(), 400),
        (b"GET /e HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET /e HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n".to_vec(), 400),
        (b"GET /e HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        (b"GET /e HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(), 400),
        (b"GET /e HTTP/1.1\r\nHost: a/b\r\n\r\n".to_vec(), 400),
        (format!("GET /e?a=1#frag HTTP/1.1\r\n{h}\r\n").into_bytes(), 400),
        (format!("GET e?a=1 HTTP/1.1\r\n{h}\r\n").into_bytes(), 400),
        (format!("GET ftp://h/e HTTP/1.1\r\n{h}\r\n").into_bytes(), 400),
        (format!("GET http:///e HTTP/1.1\r\n{h}\r\n").into_bytes(), 400),
        (format!("GET /e HTTP/9.9\r\n{h}\r\n").into_bytes(), 505),
        (format!("GET /e HTTP/2.0\r\n{h}\r\n").into_bytes(), 505),
        (format!("GET /e HTTP/1.2\r\n{h}\r\n").into_bytes(), 505),
        (format!("GET /e HTTP/1\r\n{h}\r\n").into_bytes(), 400),
        (format!("GET /e FOO/1.1\r\n{h}\r\n").into_bytes(), 400),
        (long_uri.clone(), 414),
        (long_partial_uri.clone(), 414),
        (big_header.clone(), 431),
        (big_lf_header.clone(), 431),
        (many_lf_lines.clone(), 431),
        (many_headers.clone(), 431),
    ];
    for (raw, status) in table {
        let err = head(&raw).err().unwrap_or_else(|| panic!("{} accepted", show(&raw)));
        assert_eq!(err.status().0, status, "{}: {}", show(&raw), err.reason());
    }
}

#[test]
fn the_documented_limits() {
    assert_eq!((MAX_URI_BYTES, MAX_HEAD_BYTES, MAX_HEADERS), (8192, 16384, 64), "README's numbers");
    // An unfinished head: 414 once its request line is longer than a target plus room for the method and
    // version, 431 once it is longer than a head; one byte less is still waited for.
    let head = |len: usize, prefix: &[u8]| [prefix, &vec![b'a'; len - prefix.len()][..]].concat();
    let e = |len| head(len, b"GET /e?");
    assert_eq!(partial_head_error(&e(8256), None), None, "the bound of a finished line");
    assert_eq!(partial_head_error(&e(8257), None), Some(HttpError::UriTooLong));
    assert_eq!(partial_head_error(&e(9000), Some(8256)), None);
    assert_eq!(partial_head_error(&e(9000), Some(8257)), Some(HttpError::UriTooLong));
    assert_eq!(partial_head_error(&e(16384), Some(20)), None);
    assert_eq!(partial_head_error(&e(16385), Some(20)), Some(HttpError::HeadersTooLarge));
    // Snowplow's pixel keeps a long target as a bad row: its line may run to the head's limit, then 431.
    for pixel in [&b"GET /i?e=pv&"[..], b"HEAD /ice.png?", b"\r\nGET /i?"] {
        assert_eq!(partial_head_error(&head(9000, pixel), None), None);
        assert_eq!(partial_head_error(&head(16384, pixel), Some(16300)), None);
        assert_eq!(partial_head_error(&head(16385, pixel), None), Some(HttpError::HeadersTooLarge));
    }
    assert_eq!(partial_head_error(&head(9000, b"POST /i?"), None), Some(HttpError::UriTooLong), "no POST route");
    assert_eq!(partial_head_error(&head(9000, b"GET /if?"), None), Some(HttpError::UriTooLong));
    assert_eq!(first_line_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 3), Some(15));
    assert_eq!(first_line_end(b"GET / HTTP/1.1", 0), None);
}

#[test]
fn head_limits_at_and_over_the_limit() {
    // A target of exactly MAX_URI_BYTES is accepted, one more byte is 414.
    for (extra, ok) in [(0, true), (1, false)] {
        let target = format!("/e?{}", "a".repeat(MAX_URI_BYTES - 3 + extra));
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(head(raw.as_bytes()).is_ok(), ok, "target of {} bytes", target.len());
    }
    // A head of exactly MAX_HEAD_BYTES is accepted, one more byte is 431.
    for (extra, ok) in [(0, true), (1, false)] {
        let prefix = "GET /e HTTP/1.1\r\nHost: x\r\nX: ";
        let value = "v".repeat(MAX_HEAD_BYTES - prefix.len() - 4 + extra);
        let raw = format!("{prefix}{value}\r\n\r\n");
        assert_eq!(head(raw.as_bytes()).is_ok(), ok, "head of {} bytes", raw.len());
    }
    // MAX_HEADERS header lines are accepted, one more is 431.
    for (extra, ok) in [(0, true), (1, false)] {
        let raw = format!("GET /e HTTP/1.1\r\nHost: x\r\n{}\r\n", "A: b\r\n".repeat(MAX_HEADERS - 1 + extra));
        assert_eq!(head(raw.as_bytes()).is_ok(), ok, "{} headers", MAX_HEADERS + extra);
    }
}

#[test]
fn finds_the_end_of_a_head_from_where_it_stopped() {
    let raw = b"GET /e HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
    let end = raw.len() - 4;
    for scanned in 0..=end {
        assert_eq!(find_head_end(raw, scanned), Some(end), "from {scanned}");
    }
    for cut in 0..end {
        assert_eq!(find_head_end(&raw[..cut], 0), None, "cut at {cut}");
    }
    assert_eq!(find_head_end(b"GET /e HTTP/1.1\nHost: x\n\nNEXT", 0), Some(25));
}

#[test]
fn the_fields_plutos_reads_and_the_lines_of_the_same_lengths_it_ignores() {
    let raw = b"POST /e?q=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua/1\r\nContent-Type: application/json\r\n\
        X-Request-Id: 7\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\
        X-Forwarded-For: 1.2.3.4\r\nConnection: keep-alive, Upgrade\r\n\r\n";
    let Parse::Complete(h) = parse_head(raw).unwrap() else { panic!("complete") };
    assert_eq!((h.method, h.user_agent, h.content_type), (Method::Post, &b"ua/1"[..], Some(&b"application/json"[..])));
    assert_eq!((h.content_encoding, h.framing), (Some(&b"gzip"[..]), Framing::Length(3)));
    assert!(h.expect_continue && h.forwarded && h.keep_alive);
    assert_eq!((h.raw, h.len, h.headers), (&raw[..], raw.len(), 9));

    // Header names of the same lengths as the ones read (4, 9, 10, 12, 14, 15, 16, 17 bytes) change nothing.
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nDate: x\r\nX-Api-Key: k\r\nX-Custom-A: close\r\nX-Request-Id: 1\r\n\
        Accept-Charset: utf-8\r\nAccept-Language: de\r\nContent-Language: de\r\nX-Forwarded-Proto: https\r\n\r\n";
    let Parse::Complete(h) = parse_head(raw).unwrap() else { panic!("complete") };
    assert_eq!((h.user_agent, h.content_type, h.content_encoding), (&b""[..], None, None));
    assert_eq!((h.framing, h.expect_continue, h.forwarded, h.keep_alive), (Framing::None, false, false, true));

    let forwarded = b"GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=1.2.3.4\r\n\r\n";
    assert!(matches!(parse_head(forwarded), Ok(Parse::Complete(h)) if h.forwarded));
    let other_expectation = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n";
    assert_eq!(parse_head(other_expectation).err(), Some(HttpError::BadRequest("unsupported Expect")));
    // HTTP/1.0 stays open only when asked to.
    for (connection, keep_alive) in [("keep-alive", true), ("foo", false), ("Keep-Alive, close", false)] {
        let raw = format!("GET / HTTP/1.0\r\nConnection: {connection}\r\n\r\n");
        assert!(matches!(parse_head(raw.as_bytes()), Ok(Parse::Complete(h)) if h.keep_alive == keep_alive), "{raw}");
    }
    for (method, expected) in [
        ("GET", Method::Get),
        ("HEAD", Method::Head),
        ("POST", Method::Post),
        ("OPTIONS", Method::Options),
        ("PUT", Method::Other),
    ] {
        let raw = format!("{method} /e HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(matches!(parse_head(raw.as_bytes()), Ok(Parse::Complete(h)) if h.method == expected), "{method}");
    }
}
