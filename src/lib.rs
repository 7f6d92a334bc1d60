//! plutos: an HTTP events collector. Thread per core; every acknowledged event is in the local spool before
//! its 2xx leaves; a separate uploader ships sealed chunks to a sink.
//!
//! Modules in the order a request meets them:
//! - `config`: the one validated configuration (flags + env, Plutos's names), in parts.
//! - `listener`: one SO_REUSEPORT listening socket per worker (and one more for HTTPS).
//! - `tls`: the certificate pair HTTPS connections are served with, reloaded without a restart.
//! - `uring`: the io_uring a worker drives under `IO_BACKEND=uring` (setup, probe, provided buffers).
//! - `worker`: the pinned per-core event loop (accept, read, group commit, flush, seal, timeouts), its
//!   connections' state, and the handling of the requests in their bytes.
//! - `http`: request heads, chunked bodies, framing across reads, error kinds, response encoding.
//! - `route`: the route table (paths, methods, what each is for; an ingest route names its protocol).
//! - `protocol`: the wire formats events arrive in (plutos's `/e` and its gRPC `Send`, Segment, PostHog,
//!   Snowplow, OTLP logs), one module each.
//! - `grpc`: a unary gRPC call's message and status (carried by the HTTP/2 front end), and the prost types of
//!   `proto/`.
//! - `event`: queries, forms and bodies into JSON events, and the record line of each.
//! - `enrich`: what a record adds about its client (GeoIP, user agent, bots).
//! - `schema`: the Iglu registry events are validated against (`SCHEMAS_DIR`), compiled and reloaded.
//! - `reload`: files served from (GeoIP databases, the TLS certificate, the schemas) read again on SIGHUP or
//!   when replaced.
//! - `spool`: the per-worker chunk writer, its gzip/zstd streams, and the durable directory of chunks.
//! - `ship`: the uploader thread and the sinks it ships to (S3, file, stdout).
//! - `state` and `metrics`: the few atomics everything shares.
//! - `verify`: `plutos verify`, which reads a sink back and checks it holds every event once.
//! - `cost`: counters only fuzzing and unit-test builds keep: the work input causes, the spool's syncs.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod config;
pub mod convert;
pub mod cost;
pub mod enrich;
pub mod event;
pub mod grpc;
pub mod h3;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod protocol;
pub mod reload;
pub mod route;
pub mod schema;
pub mod ship;
pub mod spool;
pub mod state;
pub mod tls;
pub mod top;
pub mod uring;
pub mod verify;
pub mod worker;

mod server;

pub use config::{Args, Config};
pub use listener::{Listeners, available_cpus, bind, raise_fd_limit};
pub use server::{Prepared, RunError, prepare, run};
