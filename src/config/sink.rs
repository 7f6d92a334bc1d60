//! The sink and uploader parts of the configuration: where chunks go and how they are shipped.

use std::path::PathBuf;
use std::time::Duration;

use super::args::{Args, Driver, OutputFormat};
use super::kafka::{KafkaConfig, kafka};
use super::sqs::{NotifyConfig, SqsConfig, notify, sqs};
use super::{ConfigError, invalid};
use crate::ship::parquet::ParquetConfig;

/// S3's smallest part (all but the last part of a multipart upload).
pub const MIN_PART_BYTES: u64 = 5 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    File { root: PathBuf },
    Stdout,
    S3(S3Config),
    Kafka(KafkaConfig),
    Sqs(SqsConfig),
    Discard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub region: Option<String>,
    /// An S3-compatible server's URL; requests are path-style.
    pub endpoint: Option<String>,
    pub checksum: S3Checksum,
    /// Chunks above this go multipart, in parts of this size.
    pub multipart_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum S3Checksum {
    Sha256,
    None,
}

/// How the uploader ships: under which key prefix, how many chunks at once, how it waits between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConfig {
    /// `S3_PREFIX`, without leading or trailing `/` (every sink uses it).
    pub key_prefix: String,
    pub concurrency: usize,
    /// Cap of the exponential backoff after retryable failures.
    pub backoff_max: Duration,
    /// The fixed wait after a permanent failure.
    pub permanent_retry: Duration,
    /// `OUTPUT_FORMAT=parquet` (file and S3 sinks): how objects are written.
    pub parquet: Option<ParquetConfig>,
    /// The upload window (`MAX_BUFFER_TIME_SECONDS`): the longest a Parquet object waits for more chunks.
    pub window: Duration,
    /// `NOTIFY_SQS_QUEUE_URL` (file and S3 sinks): where object-ready notifications go.
    pub notify: Option<NotifyConfig>,
}

pub(super) fn sink(args: &Args) -> Result<SinkConfig, ConfigError> {
    Ok(match args.driver {
        Driver::File => SinkConfig::File { root: args.out_dir.clone() },
        Driver::Stdout => SinkConfig::Stdout,
        Driver::Discard => SinkConfig::Discard,
        Driver::S3 => SinkConfig::S3(s3(args)?),
        Driver::Kafka => SinkConfig::Kafka(kafka(args)?),
        Driver::Sqs => SinkConfig::Sqs(sqs(args)?),
    })
}

fn s3(args: &Args) -> Result<S3Config, ConfigError> {
    match args.s3_bucket.as_deref().map(str::trim) {
        Some(bucket) if !bucket.is_empty() => s3_bucket(args, bucket),
        _ => Err(invalid("S3_BUCKET (--s3-bucket)", "required with DRIVER=s3")),
    }
}

/// The S3 settings with the bucket given (`plutos verify s3://…` names its own).
pub fn s3_bucket(args: &Args, bucket: &str) -> Result<S3Config, ConfigError> {
    let bucket = bucket.to_string();
    let endpoint = match args.s3_endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) if e.starts_with("http://") || e.starts_with("https://") => Some(e.trim_end_matches('/').to_string()),
        Some(e) => {
            return Err(invalid(
                "S3_ENDPOINT (--s3-endpoint)",
                format!("{e:?}: expected a URL like http://127.0.0.1:9000"),
            ));
        }
        None => None,
    };
    if args.s3_multipart_bytes < MIN_PART_BYTES {
        return Err(invalid("S3_MULTIPART_BYTES (--s3-multipart-bytes)", "must be at least 5MiB, S3's smallest part"));
    }
    let region = args.s3_region.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(String::from);
    Ok(S3Config { bucket, region, endpoint, checksum: args.s3_checksum, multipart_bytes: args.s3_multipart_bytes })
}

pub(super) fn upload(args: &Args, window: Duration) -> Result<UploadConfig, ConfigError> {
    let parquet = match args.output_format {
        OutputFormat::Ndjson => None,
        OutputFormat::Parquet => {
            if !matches!(args.driver, Driver::File | Driver::S3 | Driver::Discard) {
                return Err(invalid("OUTPUT_FORMAT (--output-format)", "parquet needs DRIVER=file or s3"));
            }
            if args.parquet_target_bytes == 0 || args.parquet_row_group_bytes == 0 {
                return Err(invalid("PARQUET_TARGET_BYTES, PARQUET_ROW_GROUP_BYTES", "must be above 0"));
            }
            Some(ParquetConfig {
                target_bytes: args.parquet_target_bytes,
                row_group_bytes: usize::try_from(args.parquet_row_group_bytes).unwrap_or(usize::MAX),
                zstd_level: args.parquet_zstd_level as i32,
            })
        }
    };
    Ok(UploadConfig {
        key_prefix: args.s3_prefix.trim_matches('/').to_string(),
        concurrency: args.upload_concurrency as usize,
        backoff_max: Duration::from_millis(args.upload_backoff_max_ms),
        permanent_retry: Duration::from_millis(args.upload_permanent_retry_ms),
        parquet,
        window,
        notify: notify(args)?,
    })
}
