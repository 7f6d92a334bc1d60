//! (a) Head parsing and framing of a byte stream split at random points. The input is a split plan (first
//! byte: how many cuts, then two bytes per cut) and the stream. Properties: whatever the cuts — the plan's, or
//! one byte per read — the answers and the records are those of the whole stream at once (less `Date`,
//! `written_at`, `request_id` and interim 100 answers, which depend on time and on timing); every record line
//! is one JSON object serde_json reads; and the work the input causes (bytes framing examines, key-table
//! probes: `plutos::cost`, counted only in fuzzing and test builds) stays linear in the stream's length and the
//! number of reads, however it is cut.

#![no_main]

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use plutos::config::EdgeConfig;
use plutos::spool::batch::Batch;
use plutos::state::Shared;
use plutos::worker::connection::Connection;
use plutos::worker::request::Requests;

/// A connected socket pair, made once: each run gets a duplicate of the server side for its `Connection`.
fn socket() -> &'static (TcpStream, TcpStream) {
    static PAIR: OnceLock<(TcpStream, TcpStream)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (server, client)
    })
}

/// A fresh request handler with the default settings (parsed once).
fn requests() -> Requests {
    static HTTP: OnceLock<plutos::config::HttpConfig> = OnceLock::new();
    let http = HTTP.get_or_init(|| {
        let args = plutos::Args::try_parse_from(["plutos"]).unwrap();
        plutos::Config::from_args(&args, &[0]).unwrap().http
    });
    Requests::new(http.clone(), &EdgeConfig::default(), Arc::new(Shared::new(1, 0, u64::MAX)), 0, 0)
}

/// Feeds `pieces` as successive reads of one connection; returns its answers and the record lines, after
/// checking that the work counted was at most a fixed number of units per input byte and per read.
fn run<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<u8>, Vec<u8>) {
    plutos::cost::take();
    let (mut len, mut reads) = (0, 0);
    let pieces = pieces.inspect(|piece| {
        len += piece.len() as u64;
        reads += 1;
    });
    let result = read_all(pieces);
    let examined = plutos::cost::take();
    assert!(examined <= 8 * len + 16 * reads, "{examined} units of work for {len} bytes in {reads} reads");
    result
}

fn read_all<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<u8>, Vec<u8>) {
    let mut requests = requests();
    requests.begin_iteration(std::time::Instant::now(), Ok(()));
    let server = socket().0.try_clone().unwrap();
    let peer = requests.peer(server.peer_addr().unwrap().ip(), plutos::event::record::Transport::Http);
    let mut conn = Connection::new(mio::net::TcpStream::from_std(server), peer, false, Instant::now(), None);
    let mut batch = Batch::default();
    for piece in pieces {
        if !conn.life.takes_requests() {
            break;
        }
        let mut input = std::mem::take(&mut conn.pending);
        input.extend_from_slice(piece);
        let used = requests.process(&mut conn, &input, &mut batch);
        conn.pending = input[used..].to_vec();
    }
    (std::mem::take(conn.output.buf()), batch.lines(plutos::spool::Stream::Good).to_vec())
}

/// The answers without their `Date` lines and interim 100s.
fn answers(out: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(out).replace("HTTP/1.1 100 Continue\r\n\r\n", "");
    text.split("\r\n").filter(|l| !l.starts_with("Date: ")).collect::<Vec<_>>().join("\r\n").into_bytes()
}

/// Each line as a JSON object without the fields that depend on time or on the worker's random state: the
/// receive time and what is derived from it (`timestamp`), the request id (and an `event_id` that is the request
/// id, as `/e`'s are), a visitor id minted for a Snowplow request that named none.
fn records(lines: &[u8]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    assert!(lines.is_empty() || lines.ends_with(b"\n"), "records end with a newline");
    lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let value: serde_json::Value = serde_json::from_slice(line).expect("a record serde_json reads");
            let serde_json::Value::Object(mut record) = value else { panic!("a record is an object") };
            record.remove("written_at");
            record.remove("timestamp");
            record.remove("visitor_id");
            let request_id = record.remove("request_id");
            if record.get("event_id") == request_id.as_ref() {
                record.insert("event_id".into(), "the request id".into());
            }
            record
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&cuts, rest)) = data.split_first() else { return };
    let cuts = usize::from(cuts % 8);
    if rest.len() < cuts * 2 {
        return;
    }
    let (plan, stream) = rest.split_at(cuts * 2);
    let mut at: Vec<usize> =
        plan.chunks(2).map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (stream.len() + 1)).collect();
    at.sort_unstable();
    let bounds: Vec<usize> = [0].into_iter().chain(at).chain([stream.len()]).collect();
    let split = run(bounds.windows(2).map(|w| &stream[w[0]..w[1]]));
    let trickled = run(stream.chunks(1));
    let whole = run(std::iter::once(stream));
    let whole_records = records(&whole.1);
    // 100-continue is decided on the head alone: a request refused early ends its connection, one whose body
    // came with it does not; the same input can then legitimately differ after that request.
    let lower = String::from_utf8_lossy(stream).to_ascii_lowercase();
    if !lower.contains("100-continue") {
        for (cut, how) in [(&split, "at the plan's points"), (&trickled, "one byte per read")] {
            assert_eq!(answers(&cut.0), answers(&whole.0), "answers differ when the stream is cut {how}");
            assert_eq!(records(&cut.1), whole_records, "records differ when the stream is cut {how}");
        }
    }
});
