//! One validated configuration, from CLI flags and environment variables (a flag wins). The names are part of
//! the contract (DESIGN.md "Configuration"): Plutos's env vars are honoured so a deployment can switch binaries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

mod sink;
mod values;

pub use sink::{S3Checksum, S3Config, UploadConfig};
use sink::{parse_sink, parse_upload};
pub use values::{parse_bytes, parse_cpu_list};
use values::{parse_fsync, parse_listen, parse_number, seconds};

/// Raw settings as given. `Config::from_args` validates them.
#[derive(Parser, Debug, Clone)]
#[command(name = "plutos", version, about = "HTTP events collector", args_override_self = true)]
pub struct Args {
    /// Listen address: `:8080`, `127.0.0.1:8080`, `[::1]:8080` or a bare port.
    #[arg(long, env = "PORT", default_value = ":8080")]
    pub port: String,
    /// Sink: file, stdout, discard (benchmarks only). s3 and kafka are not built yet.
    #[arg(long, env = "DRIVER", default_value = "file")]
    pub driver: String,
    /// Worker threads; default one per CPU of the process's affinity mask (or of CPUS).
    #[arg(long, env = "WORKERS")]
    pub workers: Option<String>,
    /// CPUs to pin workers to, e.g. `0-3,6`; default the process's affinity mask.
    #[arg(long, env = "CPUS")]
    pub cpus: Option<String>,
    /// Root directory of the file sink.
    #[arg(long, env = "OUT_DIR", default_value = "./data/out")]
    pub out_dir: PathBuf,
    /// Spool directory: the durability boundary.
    #[arg(long, env = "SPOOL_DIR", default_value = "./data/spool")]
    pub spool_dir: PathBuf,
    /// Spool size above which ingest answers 503 (bytes, or with KiB/MiB/GiB).
    #[arg(long, env = "MAX_SPOOL_BYTES", default_value = "4GiB")]
    pub max_spool_bytes: String,
    /// never | always | an interval in milliseconds.
    #[arg(long, env = "FSYNC", default_value = "never")]
    pub fsync: String,
    /// spool (default: acked ⇒ written to the spool) | memory (Plutos semantics: open chunk in RAM).
    #[arg(long, env = "DURABILITY", default_value = "spool")]
    pub durability: String,
    #[arg(long, env = "MAX_BODY_BYTES", default_value = "1MiB")]
    pub max_body_bytes: String,
    #[arg(long, env = "MAX_DECOMPRESSED_BYTES", default_value = "10MiB")]
    pub max_decompressed_bytes: String,
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "100000")]
    pub max_connections: String,
    /// Seal a chunk once its compressed size reaches this.
    #[arg(long, env = "MAX_CHUNK_BYTES", default_value = "64MiB")]
    pub max_chunk_bytes: String,
    /// Seal a chunk once it holds this many events (optional).
    #[arg(long, env = "MAX_CHUNK_EVENTS")]
    pub max_chunk_events: Option<String>,
    /// Seal a chunk once its first event is this old (Plutos's name; default 60).
    #[arg(long, env = "MAX_BUFFER_TIME_SECONDS")]
    pub max_buffer_time_seconds: Option<String>,
    /// The same in milliseconds; wins over the seconds form.
    #[arg(long, env = "MAX_BUFFER_TIME_MILLISECONDS")]
    pub max_buffer_time_milliseconds: Option<String>,
    /// gzip | zstd | none; wins over ENABLE_GZIP.
    #[arg(long, env = "COMPRESSION_TYPE")]
    pub compression_type: Option<String>,
    /// Compression level: gzip 1–9 (default 6), zstd 1–19 (default 3).
    #[arg(long, env = "COMPRESSION_LEVEL")]
    pub compression_level: Option<String>,
    /// Plutos: `true` selects gzip at GZIP_LVL.
    #[arg(long, env = "ENABLE_GZIP")]
    pub enable_gzip: Option<String>,
    /// Plutos: gzip level.
    #[arg(long, env = "GZIP_LVL")]
    pub gzip_lvl: Option<String>,
    /// Seconds /health answers 503 while ingest goes on, after SIGTERM.
    #[arg(long, env = "DRAIN_SECONDS", default_value = "5")]
    pub drain_seconds: String,
    /// Seconds the uploader keeps shipping after the drain before leaving the rest in the spool.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value = "30")]
    pub shutdown_timeout_seconds: String,
    /// Success answer of GET /e: empty (200, Plutos) | pixel (1×1 GIF) | no-content (204).
    #[arg(long, env = "RESPONSE", default_value = "empty")]
    pub response: String,
    /// Seconds allowed to receive one request (head and body) once its first byte arrived → 408.
    #[arg(long, env = "HEADER_TIMEOUT_SECONDS", default_value = "10")]
    pub header_timeout_seconds: String,
    /// Seconds an idle keep-alive connection is kept.
    #[arg(long, env = "IDLE_TIMEOUT_SECONDS", default_value = "60")]
    pub idle_timeout_seconds: String,
    /// Upper bound of the uploader's retry backoff after a retryable failure, in milliseconds.
    #[arg(long, env = "UPLOAD_BACKOFF_MAX_MS", default_value = "30000")]
    pub upload_backoff_max_ms: String,
    /// Chunks uploaded at the same time.
    #[arg(long, env = "UPLOAD_CONCURRENCY", default_value = "4")]
    pub upload_concurrency: String,
    /// Milliseconds between attempts after a permanent failure (credentials, bucket, policy).
    #[arg(long, env = "UPLOAD_PERMANENT_RETRY_MS", default_value = "60000")]
    pub upload_permanent_retry_ms: String,
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
    #[arg(long, env = "S3_CHECKSUM", default_value = "sha256")]
    pub s3_checksum: String,
    /// Chunks larger than this are uploaded in parts of this size (at least 5 MiB, S3's smallest part).
    #[arg(long, env = "S3_MULTIPART_BYTES", default_value = "16MiB")]
    pub s3_multipart_bytes: String,
    /// error | warn | info | debug | trace
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Validate the configuration, print it, and exit (for systemd ExecStartPre).
    #[arg(long)]
    pub check_config: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zstd,
    None,
}

impl Codec {
    /// File name / key extension.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => "ndjson.gz",
            Codec::Zstd => "ndjson.zst",
            Codec::None => "ndjson",
        }
    }

    pub fn from_file_name(name: &str) -> Option<Codec> {
        [Codec::Gzip, Codec::Zstd, Codec::None].into_iter().find(|c| name.ends_with(&format!(".{}", c.extension())))
    }

    /// HTTP Content-Encoding of a chunk of this codec.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Codec::Gzip => Some("gzip"),
            Codec::Zstd => Some("zstd"),
            Codec::None => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    pub codec: Codec,
    pub level: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Never,
    Always,
    Every(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Spool,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    Empty,
    Pixel,
    NoContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    File { root: PathBuf },
    Stdout,
    S3(S3Config),
    Discard,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub workers: usize,
    /// CPU ids to pin to; worker i gets `cpus[i % len]`. Empty: no pinning.
    pub cpus: Vec<usize>,
    pub sink: SinkConfig,
    pub key_prefix: String,
    pub spool_dir: PathBuf,
    pub max_spool_bytes: u64,
    pub fsync: Fsync,
    pub durability: Durability,
    pub compression: Compression,
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub max_connections: usize,
    pub max_chunk_bytes: u64,
    pub max_chunk_events: Option<u64>,
    pub max_buffer_time: Duration,
    pub drain: Duration,
    pub shutdown_timeout: Duration,
    pub response: ResponseKind,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub upload: UploadConfig,
    pub log_level: tracing::Level,
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
    /// Validates `args`; `available_cpus` is the process's affinity mask.
    pub fn from_args(args: &Args, available_cpus: &[usize]) -> Result<Config, ConfigError> {
        let cpus = match &args.cpus {
            Some(list) => {
                let cpus = parse_cpu_list(list)
                    .ok_or_else(|| invalid("CPUS (--cpus)", format!("{list:?}: expected a list like 0-3,6")))?;
                if let Some(c) = cpus.iter().find(|c| !available_cpus.contains(c)) {
                    return Err(invalid(
                        "CPUS (--cpus)",
                        format!("cpu {c} is not in the process's affinity mask {available_cpus:?}"),
                    ));
                }
                cpus
            }
            None => available_cpus.to_vec(),
        };
        let workers = match &args.workers {
            Some(w) => parse_number("WORKERS (--workers)", w, 1, 1024)? as usize,
            None => cpus.len().max(1),
        };
        let sink = parse_sink(args)?;
        let max_buffer_time = match (&args.max_buffer_time_milliseconds, &args.max_buffer_time_seconds) {
            (Some(ms), _) => Duration::from_millis(parse_number(
                "MAX_BUFFER_TIME_MILLISECONDS (--max-buffer-time-milliseconds)",
                ms,
                1,
                86_400_000,
            )?),
            (None, Some(s)) => {
                Duration::from_secs(parse_number("MAX_BUFFER_TIME_SECONDS (--max-buffer-time-seconds)", s, 1, 86_400)?)
            }
            (None, None) => Duration::from_secs(60),
        };
        let config = Config {
            listen: parse_listen(&args.port)?,
            workers,
            cpus,
            sink,
            key_prefix: args.s3_prefix.trim_matches('/').to_string(),
            spool_dir: args.spool_dir.clone(),
            max_spool_bytes: parse_bytes("MAX_SPOOL_BYTES (--max-spool-bytes)", &args.max_spool_bytes)?,
            fsync: parse_fsync(&args.fsync)?,
            durability: match args.durability.as_str() {
                "spool" => Durability::Spool,
                "memory" => Durability::Memory,
                other => {
                    return Err(invalid("DURABILITY (--durability)", format!("{other:?}: expected spool or memory")));
                }
            },
            compression: parse_compression(args)?,
            max_body_bytes: parse_bytes("MAX_BODY_BYTES (--max-body-bytes)", &args.max_body_bytes)? as usize,
            max_decompressed_bytes: parse_bytes(
                "MAX_DECOMPRESSED_BYTES (--max-decompressed-bytes)",
                &args.max_decompressed_bytes,
            )? as usize,
            max_connections: parse_number("MAX_CONNECTIONS (--max-connections)", &args.max_connections, 1, 10_000_000)?
                as usize,
            max_chunk_bytes: parse_bytes("MAX_CHUNK_BYTES (--max-chunk-bytes)", &args.max_chunk_bytes)?,
            max_chunk_events: match &args.max_chunk_events {
                Some(n) => Some(parse_number("MAX_CHUNK_EVENTS (--max-chunk-events)", n, 1, u64::MAX)?),
                None => None,
            },
            max_buffer_time,
            drain: seconds("DRAIN_SECONDS (--drain-seconds)", &args.drain_seconds, 0)?,
            shutdown_timeout: seconds(
                "SHUTDOWN_TIMEOUT_SECONDS (--shutdown-timeout-seconds)",
                &args.shutdown_timeout_seconds,
                0,
            )?,
            response: match args.response.as_str() {
                "empty" => ResponseKind::Empty,
                "pixel" => ResponseKind::Pixel,
                "no-content" => ResponseKind::NoContent,
                other => {
                    return Err(invalid(
                        "RESPONSE (--response)",
                        format!("{other:?}: expected empty, pixel or no-content"),
                    ));
                }
            },
            header_timeout: seconds(
                "HEADER_TIMEOUT_SECONDS (--header-timeout-seconds)",
                &args.header_timeout_seconds,
                1,
            )?,
            idle_timeout: seconds("IDLE_TIMEOUT_SECONDS (--idle-timeout-seconds)", &args.idle_timeout_seconds, 1)?,
            upload: parse_upload(args)?,
            log_level: args
                .log_level
                .parse()
                .map_err(|_| invalid("LOG_LEVEL (--log-level)", format!("{:?}", args.log_level)))?,
        };
        if config.max_body_bytes == 0 {
            return Err(invalid("MAX_BODY_BYTES (--max-body-bytes)", "must be at least 1"));
        }
        if config.max_chunk_bytes < 1024 {
            return Err(invalid("MAX_CHUNK_BYTES (--max-chunk-bytes)", "must be at least 1KiB"));
        }
        Ok(config)
    }
}

fn parse_compression(args: &Args) -> Result<Compression, ConfigError> {
    let gzip_enabled = match args.enable_gzip.as_deref() {
        None => None,
        Some("true" | "1" | "yes") => Some(true),
        Some("false" | "0" | "no") => Some(false),
        Some(other) => {
            return Err(invalid("ENABLE_GZIP (--enable-gzip)", format!("{other:?}: expected true or false")));
        }
    };
    let codec = match args.compression_type.as_deref() {
        Some("gzip") => Codec::Gzip,
        Some("zstd") => Codec::Zstd,
        Some("none") => Codec::None,
        Some(other) => {
            return Err(invalid(
                "COMPRESSION_TYPE (--compression-type)",
                format!("{other:?}: expected gzip, zstd or none"),
            ));
        }
        None if gzip_enabled == Some(false) => Codec::None,
        None => Codec::Gzip,
    };
    let level = match codec {
        Codec::Gzip => match (&args.compression_level, &args.gzip_lvl) {
            (Some(l), _) => parse_number("COMPRESSION_LEVEL (--compression-level)", l, 1, 9)?,
            (None, Some(l)) => parse_number("GZIP_LVL (--gzip-lvl)", l, 1, 9)?,
            (None, None) => 6,
        },
        Codec::Zstd => match &args.compression_level {
            Some(l) => parse_number("COMPRESSION_LEVEL (--compression-level)", l, 1, 19)?,
            None => 3,
        },
        Codec::None => 0,
    } as u32;
    Ok(Compression { codec, level })
}

/// `0-3,6` → `[0, 1, 2, 3, 6]`.
#[cfg(test)]
mod tests {
    use super::*;

    fn config(flags: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["plutos"];
        argv.extend_from_slice(flags);
        Config::from_args(&Args::try_parse_from(argv).unwrap(), &[0, 1])
    }

    #[test]
    fn plutos_compression_names() {
        let c = config(&["--enable-gzip", "true", "--gzip-lvl", "1"]).unwrap();
        assert_eq!(c.compression, Compression { codec: Codec::Gzip, level: 1 });
        let c = config(&["--enable-gzip", "true", "--compression-type", "zstd"]).unwrap();
        assert_eq!(c.compression, Compression { codec: Codec::Zstd, level: 3 });
        let c = config(&["--enable-gzip", "false"]).unwrap();
        assert_eq!(c.compression.codec, Codec::None);
        let c = config(&["--port", "127.0.0.1:0"]).unwrap();
        assert_eq!(c.compression, Compression { codec: Codec::Gzip, level: 6 });
    }

    #[test]
    fn buffer_time_milliseconds_win() {
        let c = config(&["--max-buffer-time-seconds", "5", "--max-buffer-time-milliseconds", "250"]).unwrap();
        assert_eq!(c.max_buffer_time, Duration::from_millis(250));
        let c = config(&["--max-buffer-time-seconds", "5"]).unwrap();
        assert_eq!(c.max_buffer_time, Duration::from_secs(5));
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
            (&["--upload-concurrency", "0"], "UPLOAD_CONCURRENCY"),
            (&["--fsync", "sometimes"], "FSYNC"),
            (&["--durability", "ram"], "DURABILITY"),
            (&["--compression-type", "lz4"], "COMPRESSION_TYPE"),
            (&["--gzip-lvl", "12"], "GZIP_LVL"),
            (&["--max-spool-bytes", "lots"], "MAX_SPOOL_BYTES"),
            (&["--cpus", "7"], "CPUS"),
            (&["--port", "nope:x"], "PORT"),
            (&["--response", "gif"], "RESPONSE"),
        ];
        for (flags, setting) in table {
            let err = config(flags).unwrap_err().to_string();
            assert!(err.contains(setting), "{flags:?} → {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
