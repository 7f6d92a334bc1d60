//! UDP ingest: each format a datagram may hold, stored with the sender's address and `"transport":"udp"`; what
//! cannot be stored counted by why (malformed, truncated, unauthorized) with nothing of it stored; a burst
//! into a full socket queue where every datagram is either stored or counted by the kernel as dropped; and
//! SIGKILL, after which everything the group commit covered is recovered.

mod common;

use std::net::UdpSocket;

use common::collector::Collector;
use common::sockets::{udp_queue, udp_receive_buffers};
use common::*;

fn sender() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

fn udp_metric(addr: std::net::SocketAddr, result: &str) -> u64 {
    metric(addr, &format!("plutos_udp_datagrams_total{{result=\"{result}\"}}"))
}

#[test]
fn every_datagram_format_is_stored_with_its_sender_and_transport_udp() {
    let server = TestServer::start(&["--udp-port", "127.0.0.1:0"]);
    let udp = server.udp_addr.unwrap();
    let socket = sender();
    let datagrams: [&[u8]; 4] = [
        br#"{"tag":"object","n":1}"#,
        b"{\"tag\":\"line-1\"}\n{\"tag\":\"line-2\"}\n",
        b"tag=query&page=%2Fhome",
        br#"[{"tag":"array-1"},{"tag":"array-2"}]"#,
    ];
    for datagram in datagrams {
        socket.send_to(datagram, udp).unwrap();
    }
    wait_until("the four datagrams", || udp_metric(server.addr, "stored") == 4);
    wait_until("their events committed", || server.metric("plutos_events_accepted_total") == 6);
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    let mut tags: Vec<&str> = records.iter().map(|r| r["raw_data"]["tag"].as_str().unwrap()).collect();
    tags.sort();
    assert_eq!(tags, ["array-1", "array-2", "line-1", "line-2", "object", "query"]);
    for record in &records {
        assert_eq!(record["transport"], "udp", "{record}");
        assert_eq!(record["method"], "UDP");
        assert_eq!((record["path"].as_str(), record["user_agent"].as_str()), (Some(""), Some("")));
        assert_eq!(record["ip"], "127.0.0.1");
        assert_eq!(record.as_object().unwrap().len(), 21);
    }
    let query = records.iter().find(|r| r["raw_data"]["tag"] == "query").unwrap();
    assert_eq!(query["raw_data"]["page"], "/home");
}

#[test]
fn malformed_truncated_and_unauthorized_datagrams_are_counted_and_nothing_of_them_stored() {
    let server = TestServer::start(&[
        "--udp-port",
        "127.0.0.1:0",
        "--udp-max-datagram-bytes",
        "1024",
        "--write-keys",
        "k-udp,k-other",
    ]);
    let udp = server.udp_addr.unwrap();
    let socket = sender();
    let big = format!("k-udp\n{{\"tag\":\"big\",\"pad\":\"{}\"}}", "x".repeat(2000));
    let datagrams: Vec<Vec<u8>> = vec![
        b"k-udp\n{\"tag\":\"keyed\"}".to_vec(),
        b"k-other\r\ntag=keyed-crlf".to_vec(),
        b"{\"tag\":\"no-key\"}".to_vec(),
        b"k-wrong\n{\"tag\":\"wrong-key\"}".to_vec(),
        b"k-udp\n{\"tag\":\"broken\"".to_vec(),
        b"k-udp\n{\"tag\":\"half\"}\n{not json}\n".to_vec(),
        b"k-udp\n".to_vec(),
        big.into_bytes(),
    ];
    for datagram in &datagrams {
        socket.send_to(datagram, udp).unwrap();
    }
    let total =
        || ["stored", "malformed", "truncated", "unauthorized"].iter().map(|r| udp_metric(server.addr, r)).sum::<u64>();
    wait_until("every datagram counted", || total() == datagrams.len() as u64);
    assert_eq!(udp_metric(server.addr, "stored"), 2);
    assert_eq!(udp_metric(server.addr, "unauthorized"), 2);
    assert_eq!(udp_metric(server.addr, "malformed"), 3);
    assert_eq!(udp_metric(server.addr, "truncated"), 1);
    wait_until("the stored events committed", || server.metric("plutos_events_accepted_total") == 2);
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    let mut tags: Vec<&str> = records.iter().map(|r| r["raw_data"]["tag"].as_str().unwrap()).collect();
    tags.sort();
    assert_eq!(tags, ["keyed", "keyed-crlf"], "nothing of a refused datagram, not half of one");
    assert!(!serde_json::to_string(&records).unwrap().contains("k-udp"), "the key is in no record");
}

#[test]
fn a_burst_into_a_full_queue_is_stored_or_counted_as_dropped_by_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    // One worker with a small receive queue, stopped while four senders burst into it.
    let env = [("WORKERS", "1"), ("UDP_PORT", "127.0.0.1:0"), ("UDP_RCVBUF", "16KiB")];
    let collector = Collector::spawn(dir.path(), &env);
    let udp = collector.udp_addr();
    assert_eq!(udp_receive_buffers(collector.child.id(), udp.port()), [2 * 16 * 1024], "the kernel doubles it");
    let senders: Vec<UdpSocket> = (0..4).map(|_| sender()).collect();
    collector.signal(libc::SIGSTOP);
    let mut sent = 0u64;
    for round in 0..500 {
        for (s, socket) in senders.iter().enumerate() {
            let datagram = format!("{{\"id\":\"burst-{s}-{round}\",\"pad\":\"{}\"}}", "p".repeat(150));
            socket.send_to(datagram.as_bytes(), udp).unwrap();
            sent += 1;
        }
    }
    collector.signal(libc::SIGCONT);
    wait_until("the queue to be read empty", || udp_queue(udp.port()).0 == 0);
    // The kernel's count reaches plutos with the next datagram read: one more, into the empty queue.
    let before = udp_metric(collector.addr, "stored");
    senders[0].send_to(b"{\"id\":\"marker\"}", udp).unwrap();
    sent += 1;
    wait_until("the marker", || udp_metric(collector.addr, "stored") == before + 1);
    let stored = udp_metric(collector.addr, "stored");
    let dropped = metric(collector.addr, "plutos_udp_kernel_drops_total");
    assert!(dropped > 0, "a 16 KiB queue cannot hold 2,000 datagrams");
    assert_eq!(stored + dropped, sent, "every datagram stored or counted as dropped");
    assert_eq!(udp_queue(udp.port()).1, dropped, "the kernel's own count (/proc/net/udp) agrees");
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    let ids: Vec<String> = raw_data(&read_records(&dir.path().join("out")))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len() as u64, stored, "every stored datagram shipped once");
    println!("UDP burst: {sent} sent, {stored} stored, {dropped} dropped by the kernel");
}

#[test]
fn sigkill_keeps_every_datagram_the_group_commit_covered() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("UDP_PORT", "127.0.0.1:0"), ("MAX_CHUNK_EVENTS", "300")];
    let collector = Collector::spawn(dir.path(), &env);
    let udp = collector.udp_addr();
    let socket = sender();
    let ids: Vec<String> = (0..1000).map(|i| format!("kill-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        socket.send_to(format!("{{\"id\":\"{id}\"}}").as_bytes(), udp).unwrap();
        if i % 100 == 99 {
            // Paced, so that no datagram meets a full queue.
            wait_until("the batch", || metric(collector.addr, "plutos_events_accepted_total") == i as u64 + 1);
        }
    }
    collector.signal(libc::SIGKILL);
    assert!(!collector.wait().success());
    let restarted = Collector::spawn(dir.path(), &[]);
    restarted.signal(libc::SIGTERM);
    assert!(restarted.wait().success());
    let shipped = common::collector::shipped_ids(&dir.path().join("out"));
    let lost: Vec<&String> = ids.iter().filter(|id| !shipped.contains(*id)).collect();
    assert!(lost.is_empty(), "{} committed datagrams lost: {:?}", lost.len(), &lost[..lost.len().min(5)]);
}

#[test]
fn datagrams_to_a_full_spool_are_counted_as_refused_and_not_stored() {
    let server = TestServer::start(&["--udp-port", "127.0.0.1:0", "--max-spool-bytes", "1"]);
    let udp = server.udp_addr.unwrap();
    let socket = sender();
    socket.send_to(br#"{"tag":"first"}"#, udp).unwrap();
    // The first fills the spool past its cap of one byte; from then on datagrams are refused.
    wait_until("the first stored", || udp_metric(server.addr, "stored") == 1);
    for i in 0..5 {
        socket.send_to(format!("{{\"tag\":\"late-{i}\"}}").as_bytes(), udp).unwrap();
    }
    wait_until("the rest refused", || udp_metric(server.addr, "refused") == 5);
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["raw_data"]["tag"], "first");
}

/// Only JSON, NDJSON and query strings are formats: a truncated array, StatsD's text, a log line, an empty
/// array or a query with a bare word are counted malformed, never stored as a one-key event. A pretty-printed
/// object (several lines, one value) is one event. Records name their own sender, also when datagrams from two
/// addresses alternate on one worker.
#[test]
fn text_of_no_format_is_malformed_a_pretty_object_is_one_event_and_each_sender_keeps_its_address() {
    let server = TestServer::start(&["--udp-port", "127.0.0.1:0", "--workers", "1"]);
    let udp = server.udp_addr.unwrap();
    let first = sender();
    let second = UdpSocket::bind("127.0.0.2:0").unwrap();
    let malformed: [&[u8]; 8] =
        [b"[{\"a\":1}", b"foo:1|c", b"[]", b"[ ]", b"GET /e HTTP/1.1", b"a=1 b=2", b"tag=x&bare", b"=nokey"];
    for datagram in malformed {
        first.send_to(datagram, udp).unwrap();
    }
    wait_until("the malformed ones counted", || udp_metric(server.addr, "malformed") == malformed.len() as u64);
    first.send_to(b"{\n  \"tag\": \"pretty\",\n  \"n\": [1,\n 2]\n}\n", udp).unwrap();
    wait_until("the pretty one", || udp_metric(server.addr, "stored") == 1);
    second.send_to(br#"{"tag":"second"}"#, udp).unwrap();
    wait_until("the second sender's", || udp_metric(server.addr, "stored") == 2);
    first.send_to(b"tag=first-again", udp).unwrap();
    wait_until("the first sender's again", || udp_metric(server.addr, "stored") == 3);
    assert_eq!(udp_metric(server.addr, "malformed"), malformed.len() as u64);
    let dir = server.stop();
    let records = read_records(&dir.path().join("out"));
    let mut senders: Vec<(String, String)> = records
        .iter()
        .map(|r| (r["raw_data"]["tag"].as_str().unwrap().to_string(), r["ip"].as_str().unwrap().to_string()))
        .collect();
    senders.sort();
    let expected = [("first-again", "127.0.0.1"), ("pretty", "127.0.0.1"), ("second", "127.0.0.2")];
    assert_eq!(senders, expected.map(|(t, ip)| (t.to_string(), ip.to_string())), "nothing of a malformed one");
    let pretty = records.iter().find(|r| r["raw_data"]["tag"] == "pretty").unwrap();
    assert_eq!(pretty["raw_data"]["n"], serde_json::json!([1, 2]));
}
