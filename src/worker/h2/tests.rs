//! The session driven with frames built by hand (HPACK literals without Huffman), its output read back frame by
//! frame: what it gathers, what it holds back, what it ends.

use super::*;

const SETTINGS: u8 = 4;
const HEADERS: u8 = 1;
const DATA: u8 = 0;
const RST_STREAM: u8 = 3;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A request's header block: `:method` and `:path` as literals with an indexed name, `:scheme: http`
/// indexed, `:authority` a literal.
fn block(method: &str, path: &str) -> Vec<u8> {
    let literal = |index: u8, value: &str| {
        let mut field = vec![index, value.len() as u8];
        field.extend_from_slice(value.as_bytes());
        field
    };
    [literal(2, method), vec![0x86], literal(4, path), literal(1, "collector.test")].concat()
}

/// The frames in `out`: (type, flags, stream, payload).
fn frames(out: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut found = Vec::new();
    let mut at = 0;
    while at + 9 <= out.len() {
        let len = u32::from_be_bytes([0, out[at], out[at + 1], out[at + 2]]) as usize;
        let stream = u32::from_be_bytes(out[at + 5..at + 9].try_into().unwrap()) & 0x7fff_ffff;
        found.push((out[at + 3], out[at + 4], stream, out[at + 9..at + 9 + len].to_vec()));
        at += 9 + len;
    }
    assert_eq!(at, out.len(), "whole frames");
    found
}

fn open(max_body: usize) -> Session {
    let limits = Limits { max_streams: 100, max_body };
    let mut session = Session::new(&limits.builder(), limits);
    session.feed(PREFACE);
    session.feed(&frame(SETTINGS, 0, 0, &[]));
    session
}

fn output(session: &mut Session) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    session.take_output(&mut out);
    frames(&out)
}

#[test]
fn a_request_is_gathered_and_its_answer_leaves_only_when_sent() {
    let mut session = open(1024);
    session.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block("GET", "/e?a=1")));
    let (mut complete, now) = (Vec::new(), Instant::now());
    assert_eq!(session.poll(&mut complete, true, now), Polled::Pending);
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].head.uri.path_and_query().unwrap().as_str(), "/e?a=1");
    assert_eq!(complete[0].head.uri.authority().unwrap().as_str(), "collector.test");
    let first = output(&mut session);
    assert_eq!(first[0].0, SETTINGS, "the server's preface");
    assert!(first.iter().all(|f| f.2 == 0), "nothing on the stream before its answer is sent: {first:?}");

    // Held (as the front end holds an acknowledgement until the group commit): polling writes nothing of it.
    let request = complete.pop().unwrap();
    assert_eq!(session.poll(&mut complete, true, now), Polled::Pending);
    assert!(output(&mut session).iter().all(|f| f.2 == 0));

    let mut response = Response::new(());
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    Session::send(request.respond, Outgoing { head: response, body: Bytes::new(), trailers: None });
    assert_eq!(session.poll(&mut complete, false, now), Polled::Pending);
    let answered = output(&mut session);
    assert!(answered.iter().any(|f| f.0 == HEADERS && f.2 == 1 && f.1 & END_STREAM != 0), "{answered:?}");
}

#[test]
fn a_body_is_gathered_across_data_frames_and_one_over_the_limit_is_cut() {
    let mut session = open(16);
    session.feed(&frame(HEADERS, END_HEADERS, 1, &block("POST", "/e")));
    session.feed(&frame(DATA, 0, 1, b"{\"a\":"));
    let (mut complete, now) = (Vec::new(), Instant::now());
    session.poll(&mut complete, true, now);
    assert!(complete.is_empty(), "the body has not ended");
    session.feed(&frame(DATA, END_STREAM, 1, b"1}"));
    session.poll(&mut complete, true, now);
    assert_eq!((complete[0].body.as_slice(), complete[0].oversized), (&b"{\"a\":1}"[..], false));

    session.feed(&frame(HEADERS, END_HEADERS, 3, &block("POST", "/e")));
    session.feed(&frame(DATA, 0, 3, &[b'x'; 20]));
    session.poll(&mut complete, true, now);
    assert_eq!(complete.len(), 2, "answered without waiting for the rest");
    assert_eq!((complete[1].body.len(), complete[1].oversized), (16, true));
    assert_eq!(session.streams_in_flight(), 0);
}

#[test]
fn a_stream_that_does_not_finish_in_time_is_taken_out_for_its_408() {
    let mut session = open(1024);
    session.feed(&frame(HEADERS, END_HEADERS, 1, &block("POST", "/e")));
    let (mut complete, now) = (Vec::new(), Instant::now());
    session.poll(&mut complete, true, now);
    assert_eq!(session.streams_in_flight(), 1);
    let timeout = Duration::from_secs(10);
    assert!(session.expired(now + Duration::from_secs(9), timeout).is_empty());
    assert_eq!(session.expired(now + timeout, timeout).len(), 1);
    assert_eq!(session.streams_in_flight(), 0);
}

#[test]
fn a_client_that_resets_every_stream_it_opens_is_sent_goaway() {
    let mut session = open(1024);
    let (mut complete, now) = (Vec::new(), Instant::now());
    let cancel = 8u32.to_be_bytes();
    let mut ended_after = None;
    for k in 0..=MAX_CLIENT_RESETS + 1 {
        let stream = 2 * k + 1;
        session.feed(&frame(HEADERS, END_HEADERS, stream, &block("POST", "/e")));
        session.poll(&mut complete, true, now);
        session.feed(&frame(RST_STREAM, 0, stream, &cancel));
        if session.poll(&mut complete, true, now) == Polled::Ended {
            ended_after = Some(k + 1);
            break;
        }
        output(&mut session);
    }
    assert!(complete.is_empty(), "a reset stream is never answered");
    assert_eq!(ended_after, Some(MAX_CLIENT_RESETS + 1));
    assert_eq!(session.failure, Some(Reason::ENHANCE_YOUR_CALM));
    let goaway = output(&mut session).into_iter().find(|f| f.0 == GOAWAY).expect("GOAWAY");
    assert_eq!(u32::from_be_bytes(goaway.3[4..8].try_into().unwrap()), 11, "ENHANCE_YOUR_CALM");
}

#[test]
fn goaway_names_the_last_stream_taken_and_the_session_ends_after_its_answer() {
    const PING: u8 = 6;
    let mut session = open(1024);
    session.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block("GET", "/e")));
    let (mut complete, now) = (Vec::new(), Instant::now());
    session.poll(&mut complete, true, now);
    output(&mut session);
    session.go_away();
    assert_eq!(session.poll(&mut complete, true, now), Polled::Pending, "stream 1 is still owed its answer");
    let sent = output(&mut session);
    let goaway = sent.iter().find(|f| f.0 == GOAWAY).expect("GOAWAY");
    assert_eq!(u32::from_be_bytes(goaway.3[..4].try_into().unwrap()), 0x7fff_ffff, "first: streams in flight may come");
    // The client's PING ack says it saw that: the second GOAWAY names the last stream taken.
    let ping = sent.iter().find(|f| f.0 == PING).expect("PING");
    session.feed(&frame(PING, 0x1, 0, &ping.3));
    assert_eq!(session.poll(&mut complete, true, now), Polled::Pending);
    let last = output(&mut session).into_iter().find(|f| f.0 == GOAWAY).expect("the final GOAWAY");
    assert_eq!(u32::from_be_bytes(last.3[..4].try_into().unwrap()), 1);
    let request = complete.pop().unwrap();
    Session::send(request.respond, Outgoing { head: Response::new(()), body: Bytes::new(), trailers: None });
    assert_eq!(session.poll(&mut complete, true, now), Polled::Ended, "its last stream answered");
    assert!(output(&mut session).iter().any(|f| f.0 == HEADERS && f.2 == 1));
}
