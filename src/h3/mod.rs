//! HTTP/3 (RFC 9114) without I/O: the framing and QPACK that the worker's QUIC front end
//! (`worker/quic.rs`, `worker/request/http3.rs`) speaks over the streams of quinn-proto's connections.
//! No mature sans-IO HTTP/3 layer exists for quinn-proto (the `h3` crate wants async quinn), and what plutos
//! needs is small: request streams of HEADERS and DATA, a control stream with SETTINGS and GOAWAY, and QPACK
//! with its dynamic table switched off.

pub mod frame;
pub mod qpack;
