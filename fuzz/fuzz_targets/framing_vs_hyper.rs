//! Differential framing: the same byte stream read by plutos's framing (`Progress`, `decode_chunked`) and by
//! hyper's HTTP/1.1 server, an independent implementation (its own Content-Length / Transfer-Encoding rules and
//! chunked decoder; only the tokenising of the head is httparse in both). The property is the one request
//! smuggling breaks: every request both read is the same request — same method, same target, same body —
//! so a front-end like hyper and plutos never disagree on where one request ends and the next begins. plutos
//! may refuse what hyper accepts (it is stricter on purpose); hyper may refuse what plutos accepts (hyper's
//! target and header-value rules differ), and the comparison stops at the first refusal of either.

#![no_main]

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use hyper::body::{Body, Incoming};
use hyper::rt::{Read, ReadBufCursor, Write};
use libfuzzer_sys::fuzz_target;
use plutos::http::chunked::decode_chunked;
use plutos::http::framing::{self, BodyLimit, Framed, Progress};
use plutos::http::{Framing, Method, RequestHead};

const MAX_BODY: usize = 1 << 20;

/// One request as read: method, request-target, body.
#[derive(PartialEq, Eq)]
struct Read1 {
    method: String,
    target: Vec<u8>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Read1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (target, body) = (String::from_utf8_lossy(&self.target), String::from_utf8_lossy(&self.body));
        write!(f, "{} {target:?} body {body:?}", self.method)
    }
}

/// plutos: every request framed complete, in order, up to the first that is not (or that ends the connection).
fn plutos_reads(stream: &[u8]) -> Vec<Read1> {
    let mut reads = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let buf = &stream[pos..];
        let mut head = RequestHead::default();
        let Ok(Framed::Complete { end }) = Progress::default().advance(buf, BodyLimit::strict(MAX_BODY), &mut head)
        else {
            break;
        };
        let body = match head.framing {
            Framing::Chunked => {
                let mut body = Vec::new();
                decode_chunked(&buf[head.len..end], framing::chunked_limits(&head, MAX_BODY), &mut body)
                    .expect("a body the scanner found complete decodes");
                body
            }
            _ => buf[head.len..end].to_vec(),
        };
        let method = match head.method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Options => "OPTIONS",
            // Which other token it was does not matter to the framing; hyper's name is compared to nothing.
            // (`Udp` names a datagram's records; the head parser never yields it.)
            Method::Other | Method::Udp => "",
        };
        let target = request_target(buf).to_vec();
        reads.push(Read1 { method: method.to_string(), target, body });
        pos += end;
        if !head.keep_alive {
            break;
        }
    }
    reads
}

/// The request-target as sent (the framing is what is compared, not how plutos splits a target).
fn request_target(buf: &[u8]) -> &[u8] {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(0);
    let line = buf[start..].split(|&b| b == b'\n').next().unwrap_or(b"");
    line.split(|&b| b == b' ').nth(1).unwrap_or(b"")
}

/// The stream as a connection hyper reads from; what it writes is dropped.
struct Wire {
    stream: Vec<u8>,
    pos: usize,
}

impl Read for Wire {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, mut buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        let n = buf.remaining().min(self.stream.len() - self.pos);
        buf.put_slice(&self.stream[self.pos..self.pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl Write for Wire {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The whole body, or `None` when hyper refused it.
async fn read_body(mut body: Incoming) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.ok()?.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Some(out)
}

/// hyper: every request whose head and body it read without error, in order.
fn hyper_reads(stream: &[u8]) -> Vec<Read1> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap());
    let reads = Arc::new(Mutex::new(Vec::new()));
    let seen = reads.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let seen = seen.clone();
        async move {
            let method = request.method().as_str().to_string();
            let target = request.uri().to_string().into_bytes();
            if let Some(body) = read_body(request.into_body()).await {
                seen.lock().unwrap().push(Some(Read1 { method, target, body }));
            } else {
                seen.lock().unwrap().push(None);
            }
            Ok::<_, Infallible>(hyper::Response::new(String::new()))
        }
    });
    let wire = Wire { stream: stream.to_vec(), pos: 0 };
    let _ =
        runtime.block_on(hyper::server::conn::http1::Builder::new().half_close(true).serve_connection(wire, service));
    let reads = std::mem::take(&mut *reads.lock().unwrap());
    reads.into_iter().map_while(|read| read).collect()
}

fuzz_target!(|stream: &[u8]| {
    let ours = plutos_reads(stream);
    if ours.is_empty() {
        return;
    }
    let theirs = hyper_reads(stream);
    // For triage: `PLUTOS_FUZZ_SHOW=1 cargo +nightly fuzz run framing_vs_hyper FILE` prints both readings.
    if std::env::var_os("PLUTOS_FUZZ_SHOW").is_some() {
        eprintln!("plutos {ours:?}\nhyper  {theirs:?}");
    }
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let same_method = a.method.is_empty() || a.method == b.method;
        // hyper renders an absolute-form target whole; plutos routes by its path.
        let same_target = !a.target.starts_with(b"/") || !b.target.starts_with(b"/") || a.target == b.target;
        assert!(
            same_method && same_target && a.body == b.body,
            "request {i} read differently:\nplutos {a:?}\nhyper  {b:?}\nstream {:?}",
            String::from_utf8_lossy(stream)
        );
    }
});
