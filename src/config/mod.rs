//! One validated configuration, from CLI flags and environment variables (a flag wins), in parts: each part
//! goes only to the code that needs it — `http` to request handling, `spool` to the chunk writers, `upload` and
//! `sink` to the uploader, `shutdown` to the control thread. The names are part of the contract with users
//! (README "Configuration"): Plutos's env vars are honoured so a deployment can switch binaries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod args;
mod edge;
mod kafka;
mod sink;
mod sqs;
mod values;

pub use args::{Args, Command, Driver, IoBackend, QuicRetry};
pub use edge::{EdgeConfig, Secret};
pub use kafka::{KafkaCompression, KafkaConfig, KafkaKey, OWNED_PROPERTIES, security as kafka_security};
pub use sink::{MIN_PART_BYTES, S3Checksum, S3Config, SinkConfig, UploadConfig, s3_bucket};
pub use sqs::{FifoGroup, NotifyConfig, SQS_ATTRIBUTES_ALLOWANCE, SqsConfig};
pub use values::parse_cidrs;

use crate::http::response::ResponseKind;
use crate::schema::Validation;
use crate::spool::{ChunkConfig, Codec, Compression, SpoolConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The HTTP listener (`PORT`; none with `PORT=off`).
    pub listen: Option<SocketAddr>,
    /// The HTTPS listener and its certificate.
    pub tls: Option<TlsListen>,
    /// The UDP listener.
    pub udp: Option<UdpListen>,
    /// HTTP/3's UDP listener (with the certificate of `tls`).
    pub quic: Option<QuicListen>,
    pub workers: usize,
    /// The workers' event loop as configured (`auto` is resolved at start, `server.rs`).
    pub io_backend: IoBackend,
    /// CPU ids to pin to; worker i gets `cpus[i % len]`. Empty: no pinning.
    pub cpus: Vec<usize>,
    pub http: HttpConfig,
    pub edge: EdgeConfig,
    pub validation: ValidationConfig,
    pub spool: SpoolConfig,
    pub upload: UploadConfig,
    pub sink: SinkConfig,
    pub shutdown: ShutdownConfig,
    pub log_level: tracing::Level,
    pub log_format: LogFormat,
}

/// What events are validated against, and what a failure does (`SCHEMAS_DIR`, `VALIDATION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationConfig {
    /// The Iglu registry on disk, compiled at start and reloaded; `None`: nothing is validated.
    pub schemas_dir: Option<PathBuf>,
    /// `TRACKING_PLAN`: event names to the schemas of their properties (with `schemas_dir`).
    pub tracking_plan: Option<PathBuf>,
    pub mode: Validation,
}

/// `TLS_PORT` with the files of its certificate and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `UDP_PORT` and its socket settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpListen {
    pub listen: SocketAddr,
    /// SO_RCVBUF to ask for; the kernel's default when `None`.
    pub rcvbuf: Option<usize>,
    /// The receive buffer of one datagram: a larger one is truncated, and dropped.
    pub max_datagram: usize,
}

/// `QUIC_PORT` and what its connections may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuicListen {
    pub listen: SocketAddr,
    /// Request streams open at once per connection (`QUIC_MAX_STREAMS`).
    pub max_streams: u32,
    pub retry: QuicRetry,
    /// SO_RCVBUF to ask for (`QUIC_RCVBUF`); the kernel's default when `None`.
    pub rcvbuf: Option<usize>,
}

/// What request handling needs: limits, timeouts, the answer to an accepted GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    /// Across all workers.
    pub max_connections: usize,
    /// Time to receive one request once its first byte arrived (→ 408).
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub response: ResponseKind,
    /// `/ready` answers 503 when chunks wait to ship and no upload succeeded for this long.
    pub ready_sink_window: Duration,
    /// The largest record line the sink takes (`KAFKA_MESSAGE_MAX_BYTES` with `DRIVER=kafka`,
    /// `SQS_MAX_MESSAGE_BYTES` less the attributes' allowance with `DRIVER=sqs`): a request with a larger event
    /// is refused (413), so nothing accepted has to be set aside.
    pub max_event_bytes: Option<EventLimit>,
    /// `HTTP2=on`: the streams a client may open at once on a connection (`HTTP2_MAX_STREAMS`); `None`: off.
    pub http2_max_streams: Option<u32>,
    /// `QUIC_PORT`'s port, advertised to HTTPS clients (`Alt-Svc: h3=":port"`; the bound port replaces 0 at start).
    pub alt_svc: Option<u16>,
}

/// A message sink's limit on one record line, and the setting that says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimit {
    pub bytes: usize,
    pub setting: &'static str,
    /// The 413's reason.
    pub refusal: &'static str,
}

/// The phases after SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// `/health` answers 503 while ingest goes on.
    pub drain: Duration,
    /// After the drain, the uploader ships this long, then leaves the rest in the spool.
    pub timeout: Duration,
}

/// An environment file listing every setting, commented out, with its help line and default: what
/// `scripts/install.sh` puts in `/etc/plutos/plutos.env` (`plutos --print-env-file`). Made from the flags
/// themselves, so it cannot miss one.
pub fn env_file() -> String {
    use clap::CommandFactory;
    let mut out = String::from(
        "# plutos settings: uncomment and change what you need (a flag on the command line wins).\n\
         # Secrets (WRITE_KEYS, IP_HASH_KEY, AWS_*) belong here with mode 0600, not in the unit.\n",
    );
    for arg in Args::command().get_arguments() {
        let Some(env) = arg.get_env() else {
            continue;
        };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let default = arg.get_default_values().first().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
        out.push_str(&format!("\n# {help}\n#{}={default}\n", env.to_string_lossy()));
    }
    out
}

/// A setting that failed validation: `{setting}: {message}`, one line.
#[derive(Debug, thiserror::Error)]
#[error("invalid {setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { setting, message: message.into() }
}

impl Config {
    /// Checks how the settings combine; `available_cpus` is the process's affinity mask.
    pub fn from_args(args: &Args, available_cpus: &[usize]) -> Result<Config, ConfigError> {
        let cpus = match &args.cpus {
            Some(values::CpuList(cpus)) => {
                if let Some(c) = cpus.iter().find(|c| !available_cpus.contains(c)) {
                    return Err(invalid(
                        "CPUS (--cpus)",
                        format!("cpu {c} is not in the process's affinity mask {available_cpus:?}"),
                    ));
                }
                cpus.clone()
            }
            None => available_cpus.to_vec(),
        };
        let sink = sink::sink(args)?;
        let mut http = http(args)?;
        http.max_event_bytes = match &sink {
            SinkConfig::Kafka(kafka) => Some(EventLimit {
                bytes: kafka.message_max_bytes as usize,
                setting: "KAFKA_MESSAGE_MAX_BYTES",
                refusal: "an event is larger than the sink takes (KAFKA_MESSAGE_MAX_BYTES)",
            }),
            SinkConfig::Sqs(sqs) => Some(EventLimit {
                bytes: (sqs.max_message_bytes - SQS_ATTRIBUTES_ALLOWANCE) as usize,
                setting: "SQS_MAX_MESSAGE_BYTES",
                refusal: "an event is larger than the sink takes (SQS_MAX_MESSAGE_BYTES)",
            }),
            _ => None,
        };
        let chunk = chunk(args)?;
        Ok(Config {
            listen: args.port.0,
            tls: tls(args)?,
            udp: udp(args)?,
            quic: quic(args)?,
            workers: args.workers.map_or(cpus.len().max(1), |w| w as usize),
            io_backend: args.io_backend,
            cpus,
            http,
            edge: edge::edge(args)?,
            validation: validation(args)?,
            upload: sink::upload(args, chunk.max_age)?,
            spool: SpoolConfig { dir: args.spool_dir.clone(), max_bytes: args.max_spool_bytes, chunk },
            sink,
            shutdown: ShutdownConfig {
                drain: Duration::from_secs(args.drain_seconds),
                timeout: Duration::from_secs(args.shutdown_timeout_seconds),
            },
            log_level: args.log_level,
            log_format: args.log_format,
        })
    }
}

fn validation(args: &Args) -> Result<ValidationConfig, ConfigError> {
    let mode = args.validation.unwrap_or(match args.schemas_dir {
        Some(_) => Validation::Reject,
        None => Validation::Off,
    });
    if mode != Validation::Off && args.schemas_dir.is_none() {
        return Err(invalid("VALIDATION (--validation)", "flag and reject need SCHEMAS_DIR"));
    }
    if args.tracking_plan.is_some() && (args.schemas_dir.is_none() || mode == Validation::Off) {
        return Err(invalid("TRACKING_PLAN (--tracking-plan)", "needs SCHEMAS_DIR and VALIDATION flag or reject"));
    }
    Ok(ValidationConfig { schemas_dir: args.schemas_dir.clone(), tracking_plan: args.tracking_plan.clone(), mode })
}

fn tls(args: &Args) -> Result<Option<TlsListen>, ConfigError> {
    let files = (args.tls_cert.clone(), args.tls_key.clone());
    match (args.tls_port, files) {
        (Some(listen), (Some(cert), Some(key))) => Ok(Some(TlsListen { listen, cert, key })),
        (Some(_), _) => Err(invalid("TLS_PORT (--tls-port)", "needs TLS_CERT and TLS_KEY")),
        // /health, /ready and /metrics need an HTTP listener of some kind.
        (None, (None, None)) if args.port.0.is_none() => Err(invalid("PORT (--port)", "off needs TLS_PORT")),
        (None, (None, None)) => Ok(None),
        (None, _) => Err(invalid("TLS_CERT (--tls-cert)", "TLS_CERT and TLS_KEY need TLS_PORT")),
    }
}

fn udp(args: &Args) -> Result<Option<UdpListen>, ConfigError> {
    let Some(listen) = args.udp_port else {
        return Ok(None);
    };
    if !(512..=65_536).contains(&args.udp_max_datagram_bytes) {
        return Err(invalid("UDP_MAX_DATAGRAM_BYTES (--udp-max-datagram-bytes)", "between 512 and 65536"));
    }
    Ok(Some(UdpListen {
        listen,
        rcvbuf: socket_buffer(args.udp_rcvbuf),
        max_datagram: args.udp_max_datagram_bytes as usize,
    }))
}

/// A socket buffer size as `setsockopt` takes it (an `int`).
fn socket_buffer(bytes: Option<u64>) -> Option<usize> {
    bytes.map(|b| b.min(i32::MAX as u64) as usize)
}

fn quic(args: &Args) -> Result<Option<QuicListen>, ConfigError> {
    let Some(listen) = args.quic_port else {
        return Ok(None);
    };
    if args.tls_port.is_none() {
        return Err(invalid("QUIC_PORT (--quic-port)", "needs TLS_PORT, TLS_CERT and TLS_KEY"));
    }
    Ok(Some(QuicListen {
        listen,
        max_streams: args.quic_max_streams as u32,
        retry: args.quic_retry,
        rcvbuf: socket_buffer(args.quic_rcvbuf),
    }))
}

fn http(args: &Args) -> Result<HttpConfig, ConfigError> {
    if args.max_body_bytes == 0 {
        return Err(invalid("MAX_BODY_BYTES (--max-body-bytes)", "must be at least 1"));
    }
    Ok(HttpConfig {
        max_body_bytes: args.max_body_bytes as usize,
        max_decompressed_bytes: args.max_decompressed_bytes as usize,
        max_connections: args.max_connections as usize,
        header_timeout: Duration::from_secs(args.header_timeout_seconds),
        idle_timeout: Duration::from_secs(args.idle_timeout_seconds),
        response: args.response,
        ready_sink_window: Duration::from_secs(args.ready_sink_window_seconds),
        max_event_bytes: None,
        http2_max_streams: args.http2.then_some(args.http2_max_streams as u32),
        alt_svc: args.quic_port.map(|quic| quic.port()),
    })
}

fn chunk(args: &Args) -> Result<ChunkConfig, ConfigError> {
    if args.max_chunk_bytes < 1024 {
        return Err(invalid("MAX_CHUNK_BYTES (--max-chunk-bytes)", "must be at least 1KiB"));
    }
    let max_age = match (args.max_buffer_time_milliseconds, args.max_buffer_time_seconds) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, Some(s)) => Duration::from_secs(s),
        (None, None) => Duration::from_secs(60),
    };
    Ok(ChunkConfig {
        compression: compression(args)?,
        durability: args.durability,
        fsync: args.fsync,
        max_bytes: args.max_chunk_bytes,
        max_events: args.max_chunk_events,
        max_age,
    })
}

/// COMPRESSION_TYPE wins over Plutos's ENABLE_GZIP; COMPRESSION_LEVEL over Plutos's GZIP_LVL.
fn compression(args: &Args) -> Result<Compression, ConfigError> {
    let codec = match (args.compression_type, args.enable_gzip) {
        (Some(codec), _) => codec,
        (None, Some(false)) => Codec::None,
        (None, _) => Codec::Gzip,
    };
    let level = match codec {
        Codec::Gzip => match (args.compression_level, args.gzip_lvl) {
            (Some(l), _) if l > 9 => {
                return Err(invalid("COMPRESSION_LEVEL (--compression-level)", format!("{l}: gzip takes 1 to 9")));
            }
            (Some(l), _) | (None, Some(l)) => l,
            (None, None) => 6,
        },
        Codec::Zstd => args.compression_level.unwrap_or(3),
        Codec::None => 0,
    };
    Ok(Compression { codec, level: level as u32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::Parser;

    use crate::http::cors::Origins;

    /// The configuration of `flags`, or the one line an operator would see.
    fn config(flags: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["plutos"];
        argv.extend_from_slice(flags);
        let args = Args::try_parse_from(argv).map_err(|e| e.to_string().lines().next().unwrap_or("").to_string())?;
        Config::from_args(&args, &[0, 1]).map_err(|e| e.to_string())
    }

    #[test]
    fn plutos_compression_names() {
        let c = config(&["--enable-gzip", "true", "--gzip-lvl", "1"]).unwrap();
        assert_eq!(c.spool.chunk.compression, Compression { codec: Codec::Gzip, level: 1 });
        let c = config(&["--enable-gzip", "true", "--compression-type", "zstd"]).unwrap();
        assert_eq!(c.spool.chunk.compression, Compression { codec: Codec::Zstd, level: 3 });
        let c = config(&["--enable-gzip", "false"]).unwrap();
        assert_eq!(c.spool.chunk.compression.codec, Codec::None);
        let c = config(&["--port", "127.0.0.1:0"]).unwrap();
        assert_eq!(c.spool.chunk.compression, Compression { codec: Codec::Gzip, level: 6 });
    }

    #[test]
    fn parquet_is_for_the_file_and_s3_sinks_and_its_window_is_the_chunks_age() {
        let c = config(&["--output-format", "parquet", "--max-buffer-time-seconds", "7"]).unwrap();
        let parquet = c.upload.parquet.unwrap();
        assert_eq!((parquet.target_bytes, parquet.row_group_bytes, parquet.zstd_level), (128 << 20, 32 << 20, 3));
        assert_eq!(c.upload.window, Duration::from_secs(7));
        assert_eq!(config(&["--port", "127.0.0.1:0"]).unwrap().upload.parquet, None, "ndjson by default");
        for driver in ["stdout", "kafka"] {
            let e = config(&[
                "--output-format",
                "parquet",
                "--driver",
                driver,
                "--kafka-brokers",
                "b:9092",
                "--kafka-topic",
                "t",
            ]);
            assert!(e.unwrap_err().contains("parquet needs DRIVER=file or s3"), "{driver}");
        }
        assert!(config(&["--output-format", "parquet", "--parquet-zstd-level", "23"]).is_err());
    }

    #[test]
    fn buffer_time_milliseconds_win() {
        let c = config(&["--max-buffer-time-seconds", "5", "--max-buffer-time-milliseconds", "250"]).unwrap();
        assert_eq!(c.spool.chunk.max_age, Duration::from_millis(250));
        let c = config(&["--max-buffer-time-seconds", "5"]).unwrap();
        assert_eq!(c.spool.chunk.max_age, Duration::from_secs(5));
    }

    #[test]
    fn edge_settings() {
        let c = config(&[
            "--cors-origins",
            "https://a.example,http://localhost:3000",
            "--write-keys",
            "wk-alpha, wk-beta",
            "--trusted-proxies",
            "10.0.0.0/8",
            "--ip-mode",
            "hash",
            "--ip-hash-key",
            "0123456789abcdef",
            "--capture-headers",
            "Referer,Cookie",
        ])
        .unwrap();
        let e = &c.edge;
        assert_eq!(e.cors_origins, Origins::List(vec!["https://a.example".into(), "http://localhost:3000".into()]));
        assert_eq!(e.write_keys, vec![Secret("wk-alpha".into()), Secret("wk-beta".into())]);
        assert_eq!(e.trusted_proxies.len(), 1);
        assert_eq!(e.ip_mode, crate::event::client::IpMode::Hash);
        assert_eq!(e.capture_headers, vec!["referer".to_string(), "cookie".to_string()]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("wk-alpha") && !shown.contains("0123456789abcdef"), "secrets masked: {shown}");
        let defaults = config(&[]).unwrap().edge;
        assert_eq!(defaults.snowplow_cookie.as_ref().map(|c| c.name.as_str()), Some("sp"));
        assert_eq!(defaults.snowplow_cookie.as_ref().and_then(|c| c.domain.as_deref()), None);
        assert_eq!(EdgeConfig { snowplow_cookie: None, ..defaults }, EdgeConfig::default());
        let c = config(&["--snowplow-cookie", "", "--snowplow-cookie-domain", ".Example.com"]).unwrap();
        assert_eq!(c.edge.snowplow_cookie, None, "empty: no cookie");
        let c = config(&["--snowplow-cookie-domain", ".Example.com"]).unwrap();
        assert_eq!(c.edge.snowplow_cookie.unwrap().domain.as_deref(), Some(".example.com"));
    }

    #[test]
    fn an_sqs_queue_gets_a_bad_rows_queue_fifo_ids_and_an_event_limit_below_its_message_limit() {
        let c =
            config(&["--driver", "sqs", "--sqs-queue-url", "https://sqs.eu-west-1.amazonaws.com/1/events"]).unwrap();
        let SinkConfig::Sqs(sqs) = &c.sink else { panic!("{:?}", c.sink) };
        assert_eq!(sqs.bad_queue_url, "https://sqs.eu-west-1.amazonaws.com/1/events-bad");
        assert_eq!((sqs.max_message_bytes, sqs.max_in_flight, sqs.fifo), (256 << 10, 8, None));
        assert_eq!(
            c.http.max_event_bytes.map(|l| (l.bytes, l.setting)),
            Some(((256 << 10) - 512, "SQS_MAX_MESSAGE_BYTES"))
        );
        let c =
            config(&["--driver", "sqs", "--sqs-queue-url", "http://h/1/e.fifo", "--sqs-fifo-group", "user"]).unwrap();
        let SinkConfig::Sqs(sqs) = &c.sink else { panic!("{:?}", c.sink) };
        assert_eq!((sqs.bad_queue_url.as_str(), sqs.fifo), ("http://h/1/e-bad.fifo", Some(FifoGroup::User)));
        let c = config(&["--driver", "s3", "--s3-bucket", "b", "--notify-sqs-queue-url", "http://h/1/n"]).unwrap();
        assert_eq!(c.upload.notify.map(|n| n.queue_url), Some("http://h/1/n".into()));
        assert_eq!(config(&[]).unwrap().http.max_event_bytes, None, "the file sink takes any event");
    }

    #[test]
    fn bad_values_name_their_setting() {
        let table: &[(&[&str], &str)] = &[
            (&["--workers", "zero"], "WORKERS"),
            (&["--workers", "0"], "WORKERS"),
            (&["--driver", "ftp"], "DRIVER"),
            (&["--driver", "s3"], "S3_BUCKET"),
            (&["--driver", "s3", "--s3-bucket", "b", "--s3-endpoint", "localhost:9000"], "S3_ENDPOINT"),
            (&["--driver", "s3", "--s3-bucket", "b", "--s3-checksum", "md5"], "S3_CHECKSUM"),
            (&["--driver", "s3", "--s3-bucket", "b", "--s3-multipart-bytes", "1MiB"], "S3_MULTIPART_BYTES"),
            (&["--driver", "kafka"], "DRIVER"),
            (&["--driver", "sqs"], "SQS_QUEUE_URL"),
            (&["--driver", "sqs", "--sqs-queue-url", "events"], "SQS_QUEUE_URL"),
            (
                &["--driver", "sqs", "--sqs-queue-url", "http://h/1/q", "--sqs-max-message-bytes", "2MiB"],
                "SQS_MAX_MESSAGE_BYTES",
            ),
            (
                &["--driver", "sqs", "--sqs-queue-url", "http://h/1/q", "--sqs-bad-queue-url", "http://h/1/q"],
                "SQS_BAD_QUEUE_URL",
            ),
            (
                &["--driver", "sqs", "--sqs-queue-url", "http://h/1/q.fifo", "--sqs-bad-queue-url", "http://h/1/b"],
                "SQS_BAD_QUEUE_URL",
            ),
            (&["--driver", "sqs", "--sqs-queue-url", "http://h/1/q", "--sqs-endpoint", "h:1"], "SQS_ENDPOINT"),
            (&["--driver", "sqs", "--sqs-queue-url", "http://h/1/q", "--sqs-fifo-group", "team"], "SQS_FIFO_GROUP"),
            (&["--notify-sqs-queue-url", "http://h/1/n.fifo"], "NOTIFY_SQS_QUEUE_URL"),
            (&["--driver", "stdout", "--notify-sqs-queue-url", "http://h/1/n"], "NOTIFY_SQS_QUEUE_URL"),
            (&["--upload-concurrency", "0"], "UPLOAD_CONCURRENCY"),
            (&["--fsync", "sometimes"], "FSYNC"),
            (&["--durability", "ram"], "DURABILITY"),
            (&["--compression-type", "lz4"], "COMPRESSION_TYPE"),
            (&["--gzip-lvl", "12"], "GZIP_LVL"),
            (&["--max-spool-bytes", "lots"], "MAX_SPOOL_BYTES"),
            (&["--cpus", "7"], "CPUS"),
            (&["--port", "nope:x"], "PORT"),
            (&["--response", "gif"], "RESPONSE"),
            (&["--compression-level", "12"], "COMPRESSION_LEVEL"),
            (&["--max-body-bytes", "0"], "MAX_BODY_BYTES"),
            (&["--enable-gzip", "maybe"], "ENABLE_GZIP"),
            (&["--cors-origins", "shop.example"], "CORS_ORIGINS"),
            (&["--trusted-proxies", "10.0.0.0/99"], "TRUSTED_PROXIES"),
            (&["--ip-mode", "mask"], "IP_MODE"),
            (&["--ip-mode", "hash"], "IP_HASH_KEY"),
            (&["--ip-mode", "hash", "--ip-hash-key", "short"], "IP_HASH_KEY"),
            (&["--capture-headers", "referer,x-write-key"], "CAPTURE_HEADERS"),
            (&["--capture-headers", "Authorization", "--write-keys", "k"], "CAPTURE_HEADERS"),
            (&["--capture-headers", "a:b"], "CAPTURE_HEADERS"),
            (&["--log-format", "xml"], "LOG_FORMAT"),
            (&["--snowplow-cookie", "s p"], "SNOWPLOW_COOKIE"),
            (&["--snowplow-cookie-domain", "a b.com"], "SNOWPLOW_COOKIE_DOMAIN"),
            (&["--snowplow-cookie-domain", "..."], "SNOWPLOW_COOKIE_DOMAIN"),
        ];
        for (flags, setting) in table {
            let err = config(flags).unwrap_err().to_string();
            assert!(err.contains(setting), "{flags:?} → {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
