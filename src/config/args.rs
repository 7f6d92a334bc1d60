//! The settings as given, from flags and environment variables (a flag wins), each parsed by clap into its type.
//! The names are part of plutos's contract with its users (README "Configuration"): scripts, the systemd unit and
//! deployments that switched from the Go Plutos depend on them. `Config::from_args` checks how they combine.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use clap::builder::RangedU64ValueParser;

use super::values;
use super::{FifoGroup, KafkaCompression, LogFormat, S3Checksum};
use crate::enrich::{BotPolicy, GeoPrecision};
use crate::event::client::IpMode;
use crate::http::cors::{self, Origins};
use crate::http::response::ResponseKind;
use crate::schema::Validation;
use crate::spool::{Codec, Durability, Fsync};

/// `--io-backend` / `IO_BACKEND`: what a worker's loop waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IoBackend {
    /// io_uring when this kernel and process allow it (a probe at start), else epoll with a line saying why.
    Auto,
    /// io_uring, or no start.
    Uring,
    Epoll,
}

/// `--quic-retry` / `QUIC_RETRY`: when a new QUIC connection must first prove its address (a Retry round trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuicRetry {
    /// Once a worker has many handshakes under way (a flood of Initials from spoofed addresses).
    Auto,
    /// Every new connection: one more round trip each.
    Always,
}

/// `--driver` / `DRIVER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    S3,
    File,
    Stdout,
    /// Benchmarks only: accepts and forgets.
    Discard,
    /// One Kafka message per event (the KAFKA_* settings).
    Kafka,
    /// One SQS message per event (the SQS_* settings).
    Sqs,
}

/// `--output-format` / `OUTPUT_FORMAT`: what the file and S3 sinks store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One object per sealed chunk, as the spool holds it (compressed NDJSON).
    Ndjson,
    /// Sealed chunks of every worker merged into Parquet objects with typed columns.
    Parquet,
}

fn range(min: u64, max: u64) -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::new().range(min..=max)
}

#[derive(Parser, Debug, Clone)]
#[command(name = "plutos", version, about = "HTTP events collector", args_override_self = true)]
pub struct Args {
    /// Listen address: `:8080`, `127.0.0.1:8080`, `[::1]:8080` or a bare port; `off` with TLS_PORT: HTTPS only.
    #[arg(long, env = "PORT", default_value = ":8080", value_parser = values::listen_or_off)]
    pub port: values::Listen,
    /// HTTPS listen address (like PORT), next to PORT or instead of it; needs TLS_CERT and TLS_KEY.
    #[arg(long, env = "TLS_PORT", value_parser = values::listen)]
    pub tls_port: Option<SocketAddr>,
    /// PEM certificate chain for TLS_PORT (server certificate first); reloaded on SIGHUP and when replaced.
    #[arg(long, env = "TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of TLS_CERT (PKCS#8, PKCS#1 or SEC1; ECDSA or RSA).
    #[arg(long, env = "TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// UDP listen address (like PORT): each datagram is an event or a batch, without an answer.
    #[arg(long, env = "UDP_PORT", value_parser = values::listen)]
    pub udp_port: Option<SocketAddr>,
    /// HTTP/3 over QUIC: UDP listen address (like PORT), with the certificate of TLS_CERT/TLS_KEY; HTTPS answers
    /// advertise it (Alt-Svc). Needs TLS_PORT.
    #[arg(long, env = "QUIC_PORT", value_parser = values::listen)]
    pub quic_port: Option<SocketAddr>,
    /// HTTP/3: request streams a client may have open at once on one connection.
    #[arg(long, env = "QUIC_MAX_STREAMS", default_value = "100", value_parser = range(1, 10_000))]
    pub quic_max_streams: u64,
    /// QUIC address validation by Retry: auto (under a flood of handshakes) | always.
    #[arg(long, env = "QUIC_RETRY", default_value = "auto", value_enum)]
    pub quic_retry: QuicRetry,
    /// SO_RCVBUF of each worker's QUIC socket (bytes, or with KiB/MiB); capped by net.core.rmem_max.
    #[arg(long, env = "QUIC_RCVBUF", value_parser = values::bytes)]
    pub quic_rcvbuf: Option<u64>,
    /// SO_RCVBUF of each worker's UDP socket (bytes, or with KiB/MiB); capped by net.core.rmem_max.
    #[arg(long, env = "UDP_RCVBUF", value_parser = values::bytes)]
    pub udp_rcvbuf: Option<u64>,
    /// Datagrams larger than this are dropped as truncated (bytes, 512 to 65536).
    #[arg(long, env = "UDP_MAX_DATAGRAM_BYTES", default_value = "16KiB", value_parser = values::bytes)]
    pub udp_max_datagram_bytes: u64,
    /// epoll | uring | auto: the workers' event loop (auto: io_uring when the kernel allows it, else epoll).
    #[arg(long, env = "IO_BACKEND", value_enum, default_value = "epoll")]
    pub io_backend: IoBackend,
    /// Where sealed chunks go.
    #[arg(long, env = "DRIVER", value_enum, default_value = "file")]
    pub driver: Driver,
    /// Worker threads; default one per CPU of the process's affinity mask (or of CPUS).
    #[arg(long, env = "WORKERS", value_parser = range(1, 1024))]
    pub workers: Option<u64>,
    /// CPUs to pin workers to, e.g. `0-3,6`; default the process's affinity mask.
    #[arg(long, env = "CPUS", value_parser = values::cpu_list)]
    pub cpus: Option<values::CpuList>,
    /// Root directory of the file sink.
    #[arg(long, env = "OUT_DIR", default_value = "./data/out")]
    pub out_dir: PathBuf,
    /// Spool directory: the durability boundary.
    #[arg(long, env = "SPOOL_DIR", default_value = "./data/spool")]
    pub spool_dir: PathBuf,
    /// Spool size above which ingest answers 503 (bytes, or with KiB/MiB/GiB).
    #[arg(long, env = "MAX_SPOOL_BYTES", default_value = "4GiB", value_parser = values::bytes)]
    pub max_spool_bytes: u64,
    /// never | always | an interval in milliseconds.
    #[arg(long, env = "FSYNC", default_value = "never", value_parser = values::fsync)]
    pub fsync: Fsync,
    /// spool (acked ⇒ written to the spool) | memory (Plutos semantics: the open chunk in RAM).
    #[arg(long, env = "DURABILITY", value_enum, default_value = "spool")]
    pub durability: Durability,
    /// Largest request body accepted (→ 413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value = "1MiB", value_parser = values::bytes)]
    pub max_body_bytes: u64,
    /// Largest body after undoing its Content-Encoding (→ 413).
    #[arg(long, env = "MAX_DECOMPRESSED_BYTES", default_value = "10MiB", value_parser = values::bytes)]
    pub max_decompressed_bytes: u64,
    /// Connections across all workers; over it a connection's first request gets 503 + Retry-After.
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "100000", value_parser = range(1, 10_000_000))]
    pub max_connections: u64,
    /// Seal a chunk once its compressed size reaches this.
    #[arg(long, env = "MAX_CHUNK_BYTES", default_value = "64MiB", value_parser = values::bytes)]
    pub max_chunk_bytes: u64,
    /// Seal a chunk once it holds this many events (optional).
    #[arg(long, env = "MAX_CHUNK_EVENTS", value_parser = range(1, u64::MAX))]
    pub max_chunk_events: Option<u64>,
    /// Seal a chunk once its first event is this old (Plutos's name; default 60).
    #[arg(long, env = "MAX_BUFFER_TIME_SECONDS", value_parser = range(1, 86_400))]
    pub max_buffer_time_seconds: Option<u64>,
    /// The same in milliseconds; wins over the seconds form.
    #[arg(long, env = "MAX_BUFFER_TIME_MILLISECONDS", value_parser = range(1, 86_400_000))]
    pub max_buffer_time_milliseconds: Option<u64>,
    /// gzip | zstd | none; wins over ENABLE_GZIP.
    #[arg(long, env = "COMPRESSION_TYPE", value_enum)]
    pub compression_type: Option<Codec>,
    /// Compression level: gzip 1–9 (default 6), zstd 1–19 (default 3).
    #[arg(long, env = "COMPRESSION_LEVEL", value_parser = range(1, 19))]
    pub compression_level: Option<u64>,
    /// Plutos: `true` selects gzip at GZIP_LVL, `false` no compression.
    #[arg(long, env = "ENABLE_GZIP", value_parser = values::flag)]
    pub enable_gzip: Option<bool>,
    /// Plutos: gzip level.
    #[arg(long, env = "GZIP_LVL", value_parser = range(1, 9))]
    pub gzip_lvl: Option<u64>,
    /// Seconds /health answers 503 while ingest goes on, after SIGTERM.
    #[arg(long, env = "DRAIN_SECONDS", default_value = "5", value_parser = range(0, 86_400))]
    pub drain_seconds: u64,
    /// Seconds the uploader keeps shipping after the drain before leaving the rest in the spool.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value = "30", value_parser = range(0, 86_400))]
    pub shutdown_timeout_seconds: u64,
    /// Success answer of GET /e: empty (200, Plutos) | pixel (1×1 GIF) | no-content (204).
    #[arg(long, env = "RESPONSE", value_enum, default_value = "empty")]
    pub response: ResponseKind,
    /// Seconds allowed to receive one request (head and body) once its first byte arrived → 408.
    #[arg(long, env = "HEADER_TIMEOUT_SECONDS", default_value = "10", value_parser = range(1, 86_400))]
    pub header_timeout_seconds: u64,
    /// HTTP/2 on the same listeners: ALPN h2 on TLS_PORT, prior-knowledge h2c on PORT (on | off).
    #[arg(long = "http2", env = "HTTP2", default_value = "on", value_parser = values::switch, action = clap::ArgAction::Set)]
    pub http2: bool,
    /// HTTP/2: streams a client may have open at once on one connection.
    #[arg(long, env = "HTTP2_MAX_STREAMS", default_value = "100", value_parser = range(1, 10_000))]
    pub http2_max_streams: u64,
    /// Seconds an idle keep-alive connection is kept.
    #[arg(long, env = "IDLE_TIMEOUT_SECONDS", default_value = "60", value_parser = range(1, 86_400))]
    pub idle_timeout_seconds: u64,
    /// Upper bound of the uploader's retry backoff after a retryable failure, in milliseconds.
    #[arg(long, env = "UPLOAD_BACKOFF_MAX_MS", default_value = "30000", value_parser = range(1, 3_600_000))]
    pub upload_backoff_max_ms: u64,
    /// Chunks uploaded at the same time.
    #[arg(long, env = "UPLOAD_CONCURRENCY", default_value = "4", value_parser = range(1, 256))]
    pub upload_concurrency: u64,
    /// Milliseconds between attempts after a permanent failure (credentials, bucket, policy).
    #[arg(long, env = "UPLOAD_PERMANENT_RETRY_MS", default_value = "60000", value_parser = range(1, 3_600_000))]
    pub upload_permanent_retry_ms: u64,
    /// What the file and S3 sinks store: ndjson (one object per chunk) | parquet (chunks merged, typed columns).
    #[arg(long, env = "OUTPUT_FORMAT", value_enum, default_value = "ndjson")]
    pub output_format: OutputFormat,
    /// OUTPUT_FORMAT=parquet: an object is closed once the NDJSON it holds reaches this size (or its first chunk
    /// is MAX_BUFFER_TIME_SECONDS old).
    #[arg(long, env = "PARQUET_TARGET_BYTES", default_value = "128MiB", value_parser = values::bytes)]
    pub parquet_target_bytes: u64,
    /// OUTPUT_FORMAT=parquet: a row group is closed once its encoded size reaches this (the memory an object
    /// being built holds).
    #[arg(long, env = "PARQUET_ROW_GROUP_BYTES", default_value = "32MiB", value_parser = values::bytes)]
    pub parquet_row_group_bytes: u64,
    /// OUTPUT_FORMAT=parquet: zstd level of the pages, 1–22.
    #[arg(long, env = "PARQUET_ZSTD_LEVEL", default_value = "3", value_parser = range(1, 22))]
    pub parquet_zstd_level: u64,
    /// Prefix of every object key (Plutos's name; applies to every sink).
    #[arg(long, env = "S3_PREFIX", default_value = "")]
    pub s3_prefix: String,
    /// Region of the bucket (else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long, env = "S3_REGION")]
    pub s3_region: Option<String>,
    /// Required with DRIVER=s3.
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// Endpoint URL of an S3-compatible server (path-style requests; http:// allowed).
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// sha256 (an x-amz-checksum-sha256 on every request) | none (for servers that reject checksum headers).
    #[arg(long, env = "S3_CHECKSUM", value_enum, default_value = "sha256")]
    pub s3_checksum: S3Checksum,
    /// Chunks larger than this are uploaded in parts of this size (at least 5 MiB, S3's smallest part).
    #[arg(long, env = "S3_MULTIPART_BYTES", default_value = "16MiB", value_parser = values::bytes)]
    pub s3_multipart_bytes: u64,
    /// Kafka bootstrap brokers, `host:port` comma-separated; required with DRIVER=kafka.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// The topic every event is produced to; required with DRIVER=kafka.
    #[arg(long, env = "KAFKA_TOPIC")]
    pub kafka_topic: Option<String>,
    /// The topic bad rows are produced to (events refused for their content); default `{KAFKA_TOPIC}-bad`.
    #[arg(long, env = "KAFKA_BAD_TOPIC")]
    pub kafka_bad_topic: Option<String>,
    /// Each message's key: none | event_id | a raw_data field path such as `user_id` or `user.id`.
    #[arg(long, env = "KAFKA_KEY", default_value = "none")]
    pub kafka_key: String,
    /// Compression of the producer's batches: none | gzip | lz4 | zstd.
    #[arg(long, env = "KAFKA_COMPRESSION", value_enum, default_value = "zstd")]
    pub kafka_compression: KafkaCompression,
    /// Milliseconds the producer waits to fill a batch.
    #[arg(long, env = "KAFKA_LINGER_MS", default_value = "5", value_parser = range(0, 900_000))]
    pub kafka_linger_ms: u64,
    /// The largest message the producer sends (the broker's message.max.bytes or the topic's max.message.bytes
    /// must allow it); a request with an event over it is refused (413).
    #[arg(long, env = "KAFKA_MESSAGE_MAX_BYTES", default_value = "1MiB", value_parser = values::bytes)]
    pub kafka_message_max_bytes: u64,
    /// Messages of one chunk produced and not yet acknowledged, at most. After a kill, a chunk that was being
    /// produced is produced again from its progress mark, so at most twice this many of its messages twice.
    #[arg(long, env = "KAFKA_MAX_IN_FLIGHT", default_value = "50000", value_parser = range(1, 1_000_000))]
    pub kafka_max_in_flight: u64,
    /// Any other librdkafka producer property, `PROPERTY=VALUE` (repeatable): `batch.num.messages=10000`. As
    /// environment variables: `KAFKA_PRODUCER_BATCH_NUM_MESSAGES=10000` (a flag wins).
    #[arg(long = "kafka-producer", value_name = "PROPERTY=VALUE")]
    pub kafka_producer: Vec<String>,
    /// The `KAFKA_PRODUCER_*` variables of the environment (`with_environment`): no flag names them one by one.
    #[arg(skip)]
    pub kafka_producer_env: Vec<(String, String)>,
    /// SASL mechanism: PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (with KAFKA_SASL_USERNAME and _PASSWORD).
    #[arg(long, env = "KAFKA_SASL_MECHANISM")]
    pub kafka_sasl_mechanism: Option<String>,
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// on: TLS to the brokers (with the system's CAs, or KAFKA_TLS_CA).
    #[arg(long, env = "KAFKA_TLS", default_value = "off", value_parser = values::switch, action = clap::ArgAction::Set)]
    pub kafka_tls: bool,
    /// A PEM file of the CAs that sign the brokers' certificates.
    #[arg(long, env = "KAFKA_TLS_CA")]
    pub kafka_tls_ca: Option<PathBuf>,
    /// A PEM client certificate and its key, for brokers that require one.
    #[arg(long, env = "KAFKA_TLS_CERT")]
    pub kafka_tls_cert: Option<PathBuf>,
    #[arg(long, env = "KAFKA_TLS_KEY")]
    pub kafka_tls_key: Option<PathBuf>,
    /// The queue every event is sent to; required with DRIVER=sqs. A `.fifo` queue gets group and deduplication ids.
    #[arg(long, env = "SQS_QUEUE_URL")]
    pub sqs_queue_url: Option<String>,
    /// The queue bad rows are sent to; default the queue's name with `-bad` (before `.fifo`).
    #[arg(long, env = "SQS_BAD_QUEUE_URL")]
    pub sqs_bad_queue_url: Option<String>,
    /// Endpoint URL of an SQS-compatible server (default: the queue URL's host); also for NOTIFY_SQS_QUEUE_URL.
    #[arg(long, env = "SQS_ENDPOINT")]
    pub sqs_endpoint: Option<String>,
    /// The largest message (body and attributes, as SQS counts them) and batch; the queue's MaximumMessageSize
    /// must allow it. A request with an event over it less 512 bytes for the attributes is refused (413).
    #[arg(long, env = "SQS_MAX_MESSAGE_BYTES", default_value = "256KiB", value_parser = values::bytes)]
    pub sqs_max_message_bytes: u64,
    /// Batches (of up to 10 messages) of one chunk sent and not answered yet, at most.
    #[arg(long, env = "SQS_MAX_IN_FLIGHT", default_value = "8", value_parser = range(1, 1024))]
    pub sqs_max_in_flight: u64,
    /// A FIFO queue's MessageGroupId: writer (host, boot, worker) | user (the record's user_id, else the writer).
    #[arg(long, env = "SQS_FIFO_GROUP", value_enum, default_value = "writer")]
    pub sqs_fifo_group: FifoGroup,
    /// With DRIVER=file or s3: after each object is durable, an S3 ObjectCreated event notification (with
    /// plutos's manifest) to this SQS queue.
    #[arg(long, env = "NOTIFY_SQS_QUEUE_URL")]
    pub notify_sqs_queue_url: Option<String>,
    /// Seconds /ready waits for a successful upload while chunks wait to ship, before it answers 503.
    #[arg(long, env = "READY_SINK_WINDOW_SECONDS", default_value = "120", value_parser = range(1, 86_400))]
    pub ready_sink_window_seconds: u64,
    /// Origins whose pages may call /e: `*`, or a list like `https://shop.example,http://localhost:3000`.
    #[arg(long, env = "CORS_ORIGINS", default_value = "", value_parser = cors::parse_origins)]
    pub cors_origins: Origins,
    /// Keys an ingest request must present (X-Write-Key, Basic user or write_key=); empty: no key needed.
    #[arg(long, env = "WRITE_KEYS", default_value = "", hide_env_values = true, value_parser = values::words)]
    pub write_keys: values::Words,
    /// Proxies (CIDR blocks) whose X-Forwarded-For / Forwarded headers name the client.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", value_parser = values::parse_cidrs)]
    pub trusted_proxies: values::CidrList,
    /// What the record's ip keeps: full | truncate (IPv4 /24, IPv6 /48) | hash (with IP_HASH_KEY) | drop.
    #[arg(long, env = "IP_MODE", value_enum, default_value = "full")]
    pub ip_mode: IpMode,
    /// The secret of IP_MODE=hash (at least 16 bytes; keep it to keep hashes stable across restarts).
    #[arg(long, env = "IP_HASH_KEY", hide_env_values = true)]
    pub ip_hash_key: Option<String>,
    /// Request headers copied into each record's "headers" object, e.g. `referer,accept-language`.
    #[arg(long, env = "CAPTURE_HEADERS", default_value = "", value_parser = values::header_names)]
    pub capture_headers: values::Words,
    /// Name of the cookie that keeps Snowplow's network user id (`visitor_id`); empty: no cookie.
    #[arg(long, env = "SNOWPLOW_COOKIE", default_value = "sp")]
    pub snowplow_cookie: String,
    /// Domain= of that cookie, e.g. `.example.com` so every subdomain shares it; default: this host only.
    #[arg(long, env = "SNOWPLOW_COOKIE_DOMAIN")]
    pub snowplow_cookie_domain: Option<String>,
    /// A first-party cookie that names each visitor (`visitor_id`) on /e and the Segment and PostHog routes; empty:
    /// none.
    #[arg(long, env = "VISITOR_COOKIE", default_value = "")]
    pub visitor_cookie: String,
    /// Domain= of that cookie, e.g. `.example.com`; default: this host only.
    #[arg(long, env = "VISITOR_COOKIE_DOMAIN")]
    pub visitor_cookie_domain: Option<String>,
    /// Max-Age= of that cookie, in seconds.
    #[arg(long, env = "VISITOR_COOKIE_MAX_AGE_SECONDS", default_value = "31536000", value_parser = range(1, 1 << 31))]
    pub visitor_cookie_max_age_seconds: u64,
    /// on: a request with `DNT: 1` or `Sec-GPC: 1` gets no visitor id and no cookie (either cookie).
    #[arg(long, env = "HONOR_GPC", default_value = "off", value_parser = values::switch, action = clap::ArgAction::Set)]
    pub honor_gpc: bool,
    /// MaxMind-format databases (City, Country, ASN: any, comma-separated) that give each record its "geo".
    #[arg(long, env = "GEOIP_DB", default_value = "", value_parser = values::words)]
    pub geoip_db: values::Words,
    /// How fine "geo" is: auto (city with IP_MODE=full, else region) | country | region | city.
    #[arg(long, env = "GEO_PRECISION", value_enum, default_value = "auto")]
    pub geo_precision: GeoPrecision,
    /// on: each record's "agent" (browser, OS, device from the user agent).
    #[arg(long, env = "UA_PARSE", default_value = "off", value_parser = values::switch, action = clap::ArgAction::Set)]
    pub ua_parse: bool,
    /// Events from bots: keep (not looked for) | flag ("bot":true) | drop (answered, counted, not stored).
    #[arg(long, env = "BOTS", value_enum, default_value = "keep")]
    pub bots: BotPolicy,
    /// An Iglu static registry (`schemas/{vendor}/{name}/jsonschema/{version}`): every schema compiled at start,
    /// the whole set again on SIGHUP and when its files change.
    #[arg(long, env = "SCHEMAS_DIR")]
    pub schemas_dir: Option<PathBuf>,
    /// off | flag | reject: a self-describing event is validated against SCHEMAS_DIR; one that fails is kept
    /// with what failed in its record's "validation" (flag) or becomes a bad row in the bad stream (reject);
    /// default reject with SCHEMAS_DIR, else off.
    #[arg(long, env = "VALIDATION", value_enum)]
    pub validation: Option<Validation>,
    /// A tracking plan, `{"events":{"Order Completed":"iglu:…"},"unplanned":"allow|flag|reject"}`: the schema in
    /// SCHEMAS_DIR that validates the properties of each Segment `track` event and PostHog event of that name.
    #[arg(long, env = "TRACKING_PLAN")]
    pub tracking_plan: Option<PathBuf>,
    /// error | warn | info | debug | trace
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: tracing::Level,
    /// text | json (one JSON object per line, for journald or Loki).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Validate the configuration, print it, and exit (for systemd ExecStartPre).
    #[arg(long)]
    pub check_config: bool,
    /// Print an environment file with every setting commented out at its default, and exit.
    #[arg(long)]
    pub print_env_file: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Args {
    /// Takes the settings the environment holds beyond clap's one variable per flag: the `KAFKA_PRODUCER_*`
    /// variables, each a librdkafka property. The binary calls this once with the process's environment; a
    /// library caller passes what it wants (tests: nothing), so no setting is read from the environment
    /// anywhere else.
    pub fn with_environment(mut self, vars: impl Iterator<Item = (String, String)>) -> Args {
        self.kafka_producer_env = vars.filter(|(name, _)| name.starts_with("KAFKA_PRODUCER_")).collect();
        self
    }
}

/// What to do instead of collecting.
#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Check what a sink holds: every object against its metadata, every writer's events without gap or
    /// duplicate. Exit 1 on a gap or a bad object. S3 uses the S3_* settings (the URL's bucket wins).
    Verify {
        /// A file sink's directory (OUT_DIR), `s3://bucket/prefix`, `kafka://brokers/topic`, or (with --peek)
        /// `sqs://host/account/queue` (`sqs+http://` for plain HTTP).
        target: String,
        /// For a queue: receive its messages without deleting them (each hidden for a minute) and check them.
        #[arg(long)]
        peek: bool,
    },
    /// Turn NDJSON objects a file or S3 sink holds into the Parquet objects OUTPUT_FORMAT=parquet writes (the
    /// PARQUET_* settings; S3 uses the S3_* settings, each URL's bucket wins). Exit 1 if a source object was
    /// left out (it does not match its metadata).
    Convert {
        /// A file sink's directory or `s3://bucket/prefix` holding NDJSON objects.
        source: String,
        /// Where the Parquet objects go: a directory or `s3://bucket/prefix`.
        dest: String,
    },
    /// A live view of collectors read from their /metrics (rates from two scrapes a second apart): events and
    /// requests per second, each worker's busy share, answers by route and status, refusals, the spool and the
    /// uploads. `q` quits.
    Top {
        /// Print one view as plain text (two scrapes a second apart) and exit.
        #[arg(long)]
        once: bool,
        /// Collectors' `host:port` (their PORT), or `http://host:port`.
        #[arg(required = true)]
        collectors: Vec<String>,
    },
}
