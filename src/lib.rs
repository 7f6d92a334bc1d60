//! plutos: an HTTP events collector. Thread per core; every acknowledged event is in the local spool before
//! its 2xx leaves; a separate uploader ships sealed chunks to a sink.
//!
//! Modules in the order a request meets them:
//! - `config`: the one validated configuration (flags + env, Plutos's names).
//! - `listener`: one SO_REUSEPORT listening socket per worker.
//! - `worker`: the pinned per-core event loop: accept, read, group commit, flush, seal, timeouts.
//! - `connection`: one client connection's buffers and flags.
//! - `http`: request heads (httparse), chunked bodies, how far the request at the start of a connection's input
//!   got across reads, and the error kinds; `response`: encoding answers.
//! - `request`: routing one framed request; ingest appends its events to the worker's batch.
//! - `query`, `body`, `json`: query/form decoding, POST bodies (encodings, JSON, NDJSON), JSON text.
//! - `record`: the JSON line of one event; `clock` and `ids`: its time and UUIDv7.
//! - `encoder`: gzip / zstd / none streams; `chunk`: the per-worker chunk writer.
//! - `spool`: the durable directory of open and sealed chunks, names, crash repair.
//! - `upload`: the uploader thread with retries; `sink`: where chunks go (file, stdout, discard).
//! - `state` and `metrics`: the few atomics everything shares.

pub mod body;
pub mod chunk;
pub mod clock;
pub mod config;
pub mod connection;
pub mod encoder;
pub mod http;
pub mod ids;
pub mod json;
pub mod listener;
pub mod metrics;
pub mod query;
pub mod record;
pub mod request;
pub mod response;
pub mod sink;
pub mod spool;
pub mod state;
pub mod upload;
pub mod worker;

mod server;

pub use config::{Args, Config};
pub use listener::{Listeners, available_cpus, bind, raise_fd_limit};
pub use server::{RunError, run};
