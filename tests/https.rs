//! HTTPS terminated in the workers: events over TLS 1.3 and 1.2 stored like plain ones (rustls, curl and
//! Python's ssl as clients), sessions resumed on any worker, and the connections that must end cleanly with
//! nothing stored: plain HTTP on the TLS port, a truncated or stalled handshake, garbage after close_notify.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::collector::pass_io_backend;
use common::pki::Pki;
use common::*;
use rustls::version::{TLS12, TLS13};

/// A server with an HTTPS listener next to its HTTP one, and the CA its certificate chains to.
fn https_server(flags: &[&str]) -> (TestServer, Pki, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path(), "https");
    let mut all = vec!["--tls-port", "127.0.0.1:0", "--tls-cert", pki.cert.to_str().unwrap()];
    all.extend(["--tls-key", pki.key.to_str().unwrap()]);
    all.extend_from_slice(flags);
    let server = TestServer::start(&all);
    (server, pki, certs)
}

fn tags(records: &[serde_json::Value]) -> Vec<String> {
    let mut tags: Vec<String> =
        records.iter().filter_map(|r| r["raw_data"]["tag"].as_str().map(String::from)).collect();
    tags.sort();
    tags
}

#[test]
fn events_over_tls_1_3_and_1_2_are_stored_like_plain_ones() {
    let (server, pki, _certs) = https_server(&[]);
    let tls_addr = server.tls_addr.unwrap();
    for (version, name) in [(&TLS13, "tls13"), (&TLS12, "tls12")] {
        let mut client = Client::connect_tls(tls_addr, &pki.client(&[version], &[b"http/1.1"]));
        for i in 0..3 {
            let get = format!("GET /e?tag={name}-get-{i} HTTP/1.1\r\nHost: t\r\n\r\n");
            assert_eq!(client.request(get.as_bytes()).status, 200);
        }
        assert_eq!(client.tls().alpn_protocol(), Some(&b"http/1.1"[..]), "a client that offers only http/1.1");
        assert_eq!(client.tls().protocol_version(), Some(version.version));
        let body = format!("{{\"tag\":\"{name}-post-1\"}}\n{{\"tag\":\"{name}-post-2\"}}\n");
        let post = format!(
            "POST /e HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(client.request(post.as_bytes()).text(), "{\"accepted\":2}");
    }
    // The plain listener still serves.
    assert_eq!(get(server.addr, "/e?tag=plain").status, 200);
    let dir = server.stop();
    let expected: Vec<String> = {
        let mut t: Vec<String> = ["tls13", "tls12"]
            .iter()
            .flat_map(|v| {
                (0..3).map(move |i| format!("{v}-get-{i}")).chain((1..=2).map(move |i| format!("{v}-post-{i}")))
            })
            .chain(["plain".to_string()])
            .collect();
        t.sort();
        t
    };
    assert_eq!(tags(&read_records(&dir.path().join("out"))), expected);
}

#[test]
fn curl_and_pythons_ssl_send_events_over_https() {
    let (server, pki, _certs) = https_server(&[]);
    let port = server.tls_addr.unwrap().port();
    let url = format!("https://localhost:{port}/e?tag=curl");
    let curl = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--cacert", pki.ca.to_str().unwrap()])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1"), "--output", "/dev/null"])
        .args(["--write-out", "%{http_code} %{ssl_verify_result}", &url])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200 0", "{}", String::from_utf8_lossy(&curl.stderr));
    let python = Command::new("python3")
        .arg("-c")
        .arg(
            "import ssl, sys, urllib.request\n\
             context = ssl.create_default_context(cafile=sys.argv[1])\n\
             request = urllib.request.Request(sys.argv[2], data=b'{\"tag\":\"python\"}', \
             headers={'Content-Type': 'application/json'})\n\
             response = urllib.request.urlopen(request, context=context)\n\
             print(response.status, response.read().decode())",
        )
        .arg(&pki.ca)
        .arg(format!("https://localhost:{port}/e"))
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&python.stdout);
    assert_eq!(said.trim(), "200 {\"accepted\":1}", "{}", String::from_utf8_lossy(&python.stderr));
    let dir = server.stop();
    assert_eq!(tags(&read_records(&dir.path().join("out"))), ["curl", "python"]);
}

#[test]
fn a_session_resumes_on_whichever_worker_the_reconnect_reaches() {
    // Four workers: reconnections from new source ports spread over them.
    let (server, pki, _certs) = https_server(&["--workers", "4"]);
    let tls_addr = server.tls_addr.unwrap();
    for version in [&TLS13, &TLS12] {
        // One client configuration: its session store carries the tickets from one connection to the next.
        let config = pki.client(&[version], &[]);
        let mut kinds = Vec::new();
        for i in 0..12 {
            let mut client = Client::connect_tls(tls_addr, &config);
            assert_eq!(client.request(format!("GET /e?tag=r{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).status, 200);
            kinds.push(client.tls().handshake_kind().unwrap());
        }
        assert_eq!(kinds[0], rustls::HandshakeKind::Full);
        assert!(
            kinds[1..].iter().all(|k| *k == rustls::HandshakeKind::Resumed),
            "{version:?}: every reconnection resumes: {kinds:?}"
        );
    }
    assert_eq!(server.metric("plutos_tls_handshakes_total{kind=\"full\"}"), 2);
    assert_eq!(server.metric("plutos_tls_handshakes_total{kind=\"resumed\"}"), 22);
    drop(server.stop());
}

#[test]
fn plain_http_on_the_tls_port_gets_an_alert_and_a_close_and_stores_nothing() {
    let (server, _pki, _certs) = https_server(&[]);
    let mut stream = TcpStream::connect(server.tls_addr.unwrap()).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(b"GET /e?tag=plain-on-tls HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert_eq!(answer.first(), Some(&0x15), "a TLS alert record, not HTTP: {answer:?}");
    assert!(server.metric("plutos_tls_failures_total") >= 1);
    let dir = server.stop();
    assert!(read_records(&dir.path().join("out")).is_empty());
}

#[test]
fn a_truncated_or_stalled_handshake_is_closed_and_stores_nothing() {
    let (server, pki, _certs) = https_server(&["--header-timeout-seconds", "1"]);
    let tls_addr = server.tls_addr.unwrap();
    // The first bytes of a real ClientHello, from a rustls client that never gets to send the rest.
    let mut hello = Vec::new();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(pki.client(&[&TLS13], &[]), name).unwrap();
    client.write_tls(&mut hello).unwrap();
    // Truncated: the client goes away mid-record.
    let mut truncated = TcpStream::connect(tls_addr).unwrap();
    truncated.write_all(&hello[..hello.len() / 2]).unwrap();
    drop(truncated);
    // Stalled: the client holds the half hello (a slowloris on the handshake) until the server closes.
    let mut stalled = TcpStream::connect(tls_addr).unwrap();
    stalled.set_read_timeout(Some(DEADLINE)).unwrap();
    stalled.write_all(&hello[..hello.len() / 2]).unwrap();
    let mut rest = Vec::new();
    assert!(stalled.read_to_end(&mut rest).is_ok(), "closed by the server within the header timeout");
    wait_until("the stalled handshake to be counted", || server.metric("plutos_tls_failures_total") >= 1);
    // Only the connection asking for /metrics is open.
    wait_until("both to be closed", || server.metric("plutos_connections_open") == 1);
    let dir = server.stop();
    assert!(read_records(&dir.path().join("out")).is_empty());
}

/// A slowloris inside TLS: after the handshake (and a request), the next request's record is sent a byte at a
/// time and never completed. rustls yields no plaintext for a record that is not whole, so the header clock
/// must start on the record's first byte, as on plain HTTP: the answer is a 408 at the header timeout, not the
/// idle timeout that each byte would renew.
#[test]
fn a_request_record_trickled_a_byte_at_a_time_gets_408_at_the_header_timeout() {
    let (server, pki, _certs) = https_server(&["--header-timeout-seconds", "1", "--idle-timeout-seconds", "60"]);
    let mut client = Client::connect_tls(server.tls_addr.unwrap(), &pki.client(&[&TLS13], &[]));
    assert_eq!(client.request(b"GET /e?tag=before-trickle HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    let Stream::Tls(stream) = client.stream() else { unreachable!() };
    stream.conn.writer().write_all(b"GET /e?tag=trickled HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut record = Vec::new();
    stream.conn.write_tls(&mut record).unwrap();
    // The slowloris's own rhythm: a byte every 200 ms, all but the record's last byte, until the server closes.
    let mut trickle = stream.sock.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        for &byte in &record[..record.len() - 1] {
            if trickle.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    stream.sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = Vec::new();
    let _ = stream.sock.read_to_end(&mut answer);
    trickler.join().unwrap();
    stream.conn.read_tls(&mut &answer[..]).unwrap();
    stream.conn.process_new_packets().unwrap();
    let mut plain = Vec::new();
    let _ = stream.conn.reader().read_to_end(&mut plain);
    let plain = String::from_utf8_lossy(&plain);
    assert!(plain.starts_with("HTTP/1.1 408 "), "the trickled request is answered 408: {plain:?}");
    let dir = server.stop();
    assert_eq!(tags(&read_records(&dir.path().join("out"))), ["before-trickle"]);
}

#[test]
fn garbage_after_close_notify_closes_the_connection_and_only_the_request_before_it_is_stored() {
    let (server, pki, _certs) = https_server(&[]);
    let mut client = Client::connect_tls(server.tls_addr.unwrap(), &pki.client(&[&TLS13], &[]));
    assert_eq!(client.request(b"GET /e?tag=before-close HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    client.tls().send_close_notify();
    client.stream().flush().unwrap(); // writes the close_notify record
    // Then bytes that are not TLS, on the raw socket.
    let Stream::Tls(stream) = client.stream() else { unreachable!() };
    stream.sock.write_all(b"GET /e?tag=after-close HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = stream.sock.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("HTTP/1.1"), "no answer to what followed: {rest:?}");
    let dir = server.stop();
    assert_eq!(tags(&read_records(&dir.path().join("out"))), ["before-close"]);
}

#[test]
fn the_certificate_reloads_under_keep_alive_load_and_a_broken_file_keeps_the_pair_in_service() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    // One file for both settings: a rename replaces the certificate and its key at once.
    let served = dir.path().join("served.pem");
    a.combined(&served);
    let served_str = served.to_str().unwrap();
    let env = [("TLS_PORT", "127.0.0.1:0"), ("TLS_CERT", served_str), ("TLS_KEY", served_str)];
    let collector = common::collector::Collector::spawn(dir.path(), &env);
    let tls_addr = collector.tls_addr();
    let both = common::pki::client_trusting(&[&a, &b], &[&TLS13, &TLS12], &[]);
    // A fresh client each time: a resumed session would not show the certificate in service.
    let presented = || {
        let fresh = common::pki::client_trusting(&[&a, &b], &[&TLS13], &[]);
        let mut client = Client::connect_tls(tls_addr, &fresh);
        assert_eq!(client.request(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
        client.tls().peer_certificates().unwrap()[0].to_vec()
    };
    let reloads = |result: &str| metric(collector.addr, &format!("plutos_tls_reloads_total{{result=\"{result}\"}}"));
    let load = common::collector::Load::start_tls(tls_addr, both.clone(), 2, "reload");
    load.wait_for(200);
    assert_eq!(presented(), a.cert_der());

    // Renamed over: new connections get b; the keep-alive ones go on.
    b.combined(&dir.path().join("next.pem"));
    std::fs::rename(dir.path().join("next.pem"), &served).unwrap();
    wait_until("the renamed pair to load", || reloads("ok") == 1);
    assert_eq!(presented(), b.cert_der());
    let before = load.count.load(std::sync::atomic::Ordering::Relaxed);
    load.wait_for(before + 200);

    // Overwritten in place with a broken file: refused, b stays.
    std::fs::write(&served, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
    wait_until("the broken file to be refused", || reloads("failed") == 1);
    assert_eq!(presented(), b.cert_der());

    // Rewritten in place whole, then SIGHUP (which reloads even an unchanged pair).
    a.combined(&served);
    wait_until("the rewritten pair to load", || reloads("ok") == 2);
    assert_eq!(presented(), a.cert_der());
    collector.signal(libc::SIGHUP);
    wait_until("SIGHUP to reload", || reloads("ok") == 3);
    let before = load.count.load(std::sync::atomic::Ordering::Relaxed);
    load.wait_for(before + 200);
    assert!(metric(collector.addr, "plutos_tls_cert_not_after_seconds") > 0);
    assert_eq!(metric(collector.addr, "plutos_tls_failures_total"), 0, "no connection failed");

    let acked = load.finish();
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success(), "{stderr}");
    assert_eq!(stderr.matches("TLS certificate not reloaded").count(), 1, "{stderr}");
    common::collector::assert_all_shipped(&acked, &dir.path().join("out"));
    println!("TLS reload under load: {} keep-alive events acknowledged over 3 reloads and 1 refused load", acked.len());
}

#[test]
fn a_pair_that_does_not_load_or_match_is_one_line_at_check_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    let plutos = |env: &[(&str, &std::path::Path)], args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_plutos"))
            .args(args)
            .env_clear()
            .env("PORT", "127.0.0.1:0")
            .env("TLS_PORT", "127.0.0.1:0")
            .env("SPOOL_DIR", dir.path().join("spool"))
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    // A's certificate with B's key.
    let mismatched = [("TLS_CERT", a.cert.as_path()), ("TLS_KEY", b.key.as_path())];
    let (code, stderr) = plutos(&mismatched, &["--check-config"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("TLS_CERT") && stderr.contains("a-cert.pem"), "{stderr}");
    let (code, stderr) = plutos(&mismatched, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.lines().last().unwrap().contains("TLS_CERT"), "{stderr}");
    let (code, stderr) = plutos(&[("TLS_CERT", a.cert.as_path())], &["--check-config"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("TLS_PORT (--tls-port): needs TLS_CERT and TLS_KEY"), "{stderr}");
    // No HTTP listener at all would leave no /health, /ready or /metrics.
    let off = Command::new(env!("CARGO_BIN_EXE_plutos")).arg("--check-config").env_clear().env("PORT", "off").output();
    let off = off.unwrap();
    assert_eq!(off.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&off.stderr).contains("PORT (--port): off needs TLS_PORT"));
}

#[test]
fn an_rsa_certificate_serves_https_alone_with_port_off() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::rsa(dir.path(), "rsa");
    let mut command = Command::new(env!("CARGO_BIN_EXE_plutos"));
    pass_io_backend(command.env_clear());
    let mut child = command
        .env("PORT", "off")
        .env("TLS_PORT", "127.0.0.1:0")
        .env("TLS_CERT", &pki.cert)
        .env("TLS_KEY", &pki.key)
        .env("SPOOL_DIR", dir.path().join("spool"))
        .env("OUT_DIR", dir.path().join("out"))
        .env("DRAIN_SECONDS", "0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let tls_addr: std::net::SocketAddr = loop {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "plutos said no HTTPS address");
        assert!(!line.contains("listening on "), "PORT=off: no HTTP listener: {line}");
        if let Some(rest) = line.split("listening for HTTPS on ").nth(1) {
            break rest.trim().parse().unwrap();
        }
    };
    let mut client = Client::connect_tls(tls_addr, &pki.client(&[&TLS13, &TLS12], &[]));
    assert_eq!(client.request(b"GET /e?tag=rsa HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    let scheme = client.tls().negotiated_cipher_suite().unwrap();
    let mut tls12 = Client::connect_tls(tls_addr, &pki.client(&[&TLS12], &[]));
    assert_eq!(tls12.request(b"GET /e?tag=rsa-tls12 HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    assert!(child.wait().unwrap().success());
    let records = read_records(&dir.path().join("out"));
    assert_eq!(tags(&records), ["rsa", "rsa-tls12"], "over {scheme:?}");
    assert!(records.iter().all(|r| r["transport"] == "https"));
}

#[test]
fn a_certificate_that_expires_within_14_days_is_warned_of_and_its_expiry_is_a_metric() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::expiring(dir.path(), "soon", 5);
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let env = [("TLS_PORT", "127.0.0.1:0"), ("TLS_CERT", cert), ("TLS_KEY", key)];
    let collector = common::collector::Collector::spawn(dir.path(), &env);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let not_after = metric(collector.addr, "plutos_tls_cert_not_after_seconds");
    assert!(not_after.abs_diff(now + 5 * 86_400) < 120, "{not_after} vs now {now}");
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success(), "{stderr}");
    let warned: Vec<&str> = stderr.lines().filter(|l| l.contains("the TLS certificate expires in")).collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(warned[0].contains("WARN") && warned[0].contains("expires in 5.0 days"), "{stderr}");
}
