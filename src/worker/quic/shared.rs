//! What every worker's QUIC endpoint shares (`QuicShared`): the keys of stateless resets and of Retry tokens, the
//! transport limits, and each worker's inbox of datagrams handed to it by the others; and the connection ids
//! plutos issues, whose first byte names the worker that holds the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use crossbeam_channel::Sender;
use quinn_proto::crypto::rustls::QuicServerConfig;
use quinn_proto::{
    ConnectionId, ConnectionIdGenerator, EndpointConfig, IdleTimeout, ServerConfig, TransportConfig, VarInt,
};

use super::session::Limits;
use crate::config::QuicRetry;
use crate::worker::wake::Wake;

/// Bytes of the connection ids plutos issues: one for the worker, eight random. Not 8, the length most clients
/// pick for their first Initial, so a client's id is not mistaken for one of plutos's.
pub(super) const CID_LEN: usize = 9;
/// The largest UDP payload plutos takes (and announces as `max_udp_payload_size`).
pub(super) const MAX_UDP_PAYLOAD: u16 = 1472;

/// A datagram one worker received for a connection of another.
pub struct Handoff {
    pub(super) from: SocketAddr,
    pub(super) payload: BytesMut,
}

/// Datagrams one worker may have waiting for another before more are dropped.
pub const HANDOFF_QUEUE: usize = 4096;

/// What every worker's endpoint shares: the keys of stateless resets and of Retry tokens (a token one worker
/// issued validates on another), the transport limits, and where each worker takes datagrams handed to it.
pub struct QuicShared {
    pub(super) endpoint: Arc<EndpointConfig>,
    transport: Arc<TransportConfig>,
    token_key: Arc<dyn quinn_proto::crypto::HandshakeTokenKey>,
    pub limits: Limits,
    pub retry: QuicRetry,
    pub workers: usize,
    pub(super) inboxes: Vec<(Sender<Handoff>, Arc<Wake>)>,
}

impl QuicShared {
    /// `inboxes`: each worker's channel of hand-offs and its wake, by index.
    pub fn new(
        max_streams: u32,
        retry: QuicRetry,
        limits: Limits,
        idle: Duration,
        inboxes: Vec<(Sender<Handoff>, Arc<Wake>)>,
    ) -> QuicShared {
        let rng = ring::rand::SystemRandom::new();
        let mut reset = [0u8; 64];
        let mut token = [0u8; 64];
        let _ = ring::rand::SecureRandom::fill(&rng, &mut reset);
        let _ = ring::rand::SecureRandom::fill(&rng, &mut token);
        let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &reset);
        let mut endpoint = EndpointConfig::new(Arc::new(reset_key));
        let _ = endpoint.max_udp_payload_size(MAX_UDP_PAYLOAD);
        let mut transport = TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(max_streams))
            // The client's control stream and QPACK's two, and room for a grease stream.
            .max_concurrent_uni_streams(VarInt::from_u32(4))
            .stream_receive_window(VarInt::from_u32(256 * 1024))
            .receive_window(VarInt::from_u32(1024 * 1024))
            .send_window(1024 * 1024)
            .max_idle_timeout(IdleTimeout::try_from(idle).ok())
            .datagram_receive_buffer_size(None);
        let token_key = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(&token);
        QuicShared {
            endpoint: Arc::new(endpoint),
            transport: Arc::new(transport),
            token_key: Arc::new(token_key),
            limits,
            retry,
            workers: inboxes.len(),
            inboxes,
        }
    }

    pub(super) fn server_config(&self, crypto: Arc<QuicServerConfig>) -> Arc<ServerConfig> {
        let mut config = ServerConfig::new(crypto, self.token_key.clone());
        config.transport_config(self.transport.clone());
        Arc::new(config)
    }
}

/// Connection ids whose first byte names the worker that issued them.
pub(super) struct WorkerIds {
    pub(super) worker: usize,
    pub(super) workers: usize,
    pub(super) rng: ring::rand::SystemRandom,
}

impl ConnectionIdGenerator for WorkerIds {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut bytes = [0u8; CID_LEN];
        let _ = ring::rand::SecureRandom::fill(&self.rng, &mut bytes);
        // A random multiple of `workers` plus the index: the byte varies, its remainder does not.
        let span = (256 / self.workers).max(1);
        bytes[0] = ((usize::from(bytes[0]) % span) * self.workers + self.worker) as u8;
        ConnectionId::new(&bytes)
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}
