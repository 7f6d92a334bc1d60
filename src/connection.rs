//! One client connection's state inside a worker. Buffers are reused across requests; an idle connection
//! holds no input buffer (reads land in the worker's shared read buffer and only an incomplete request is
//! copied here).

use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

pub struct Connection {
    pub stream: TcpStream,
    /// The peer address as it goes into records, rendered once.
    pub ip: Box<str>,
    /// Bytes of an incomplete request.
    pub pending: Vec<u8>,
    /// Encoded responses not yet written; `out[..out_sent]` already went out.
    pub out: Vec<u8>,
    pub out_sent: usize,
    /// `out.len()` before the first response of this iteration that waits for the spool write.
    pub commit_mark: Option<usize>,
    pub continue_sent: bool,
    /// No more requests: close once `out` is written.
    pub close_after_flush: bool,
    pub peer_closed: bool,
    /// Reading stopped because the client does not read its responses.
    pub read_paused: bool,
    /// When the first byte of the current incomplete request arrived (for 408).
    pub request_started: Option<Instant>,
    /// Last read, or last write progress.
    pub last_active: Instant,
    pub queued_for_flush: bool,
    /// Had a request in flight when the drain ended: that request is still served normally.
    pub inflight_at_close: bool,
    /// Half-closed after its last response: input is read and dropped until EOF or this instant, so the
    /// kernel does not answer unread input with a RST that could destroy the response in flight.
    pub lingering_until: Option<Instant>,
}

impl Connection {
    pub fn new(stream: TcpStream, peer: SocketAddr, now: Instant) -> Connection {
        Connection {
            stream,
            ip: peer.ip().to_canonical().to_string().into_boxed_str(),
            pending: Vec::new(),
            out: Vec::new(),
            out_sent: 0,
            commit_mark: None,
            continue_sent: false,
            close_after_flush: false,
            peer_closed: false,
            read_paused: false,
            request_started: None,
            last_active: now,
            queued_for_flush: false,
            inflight_at_close: false,
            lingering_until: None,
        }
    }

    pub fn unsent(&self) -> usize {
        self.out.len() - self.out_sent
    }

    /// Has bytes of a request that is not complete yet.
    pub fn has_partial_request(&self) -> bool {
        !self.pending.is_empty()
    }
}
