//! The sink and uploader parts of the configuration: where chunks go and how they are shipped.

use std::time::Duration;

use super::values::{parse_bytes, parse_number};
use super::{Args, ConfigError, SinkConfig, invalid};

/// S3's smallest part (all but the last part of a multipart upload).
pub const MIN_PART_BYTES: u64 = 5 << 20;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Checksum {
    Sha256,
    None,
}

/// How the uploader ships: how many chunks at once, and how it waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadConfig {
    pub concurrency: usize,
    /// Cap of the exponential backoff after retryable failures.
    pub backoff_max: Duration,
    /// The fixed wait after a permanent failure.
    pub permanent_retry: Duration,
}

pub(super) fn parse_sink(args: &Args) -> Result<SinkConfig, ConfigError> {
    Ok(match args.driver.as_str() {
        "file" => SinkConfig::File { root: args.out_dir.clone() },
        "stdout" => SinkConfig::Stdout,
        "discard" => SinkConfig::Discard,
        "s3" => SinkConfig::S3(parse_s3(args)?),
        "kafka" => {
            return Err(invalid(
                "DRIVER (--driver)",
                "\"kafka\" is not available in this build yet; use s3, file or stdout",
            ));
        }
        other => {
            return Err(invalid("DRIVER (--driver)", format!("{other:?}: expected s3, file, stdout or discard")));
        }
    })
}

fn parse_s3(args: &Args) -> Result<S3Config, ConfigError> {
    let bucket = match args.s3_bucket.as_deref().map(str::trim) {
        Some(bucket) if !bucket.is_empty() => bucket.to_string(),
        _ => return Err(invalid("S3_BUCKET (--s3-bucket)", "required with DRIVER=s3")),
    };
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
    let checksum = match args.s3_checksum.as_str() {
        "sha256" => S3Checksum::Sha256,
        "none" => S3Checksum::None,
        other => return Err(invalid("S3_CHECKSUM (--s3-checksum)", format!("{other:?}: expected sha256 or none"))),
    };
    let multipart_bytes = parse_bytes("S3_MULTIPART_BYTES (--s3-multipart-bytes)", &args.s3_multipart_bytes)?;
    if multipart_bytes < MIN_PART_BYTES {
        return Err(invalid("S3_MULTIPART_BYTES (--s3-multipart-bytes)", "must be at least 5MiB, S3's smallest part"));
    }
    let region = args.s3_region.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(String::from);
    Ok(S3Config { bucket, region, endpoint, checksum, multipart_bytes })
}

pub(super) fn parse_upload(args: &Args) -> Result<UploadConfig, ConfigError> {
    let millis = |setting, value: &str| parse_number(setting, value, 1, 3_600_000).map(Duration::from_millis);
    Ok(UploadConfig {
        concurrency: parse_number("UPLOAD_CONCURRENCY (--upload-concurrency)", &args.upload_concurrency, 1, 256)?
            as usize,
        backoff_max: millis("UPLOAD_BACKOFF_MAX_MS (--upload-backoff-max-ms)", &args.upload_backoff_max_ms)?,
        permanent_retry: millis(
            "UPLOAD_PERMANENT_RETRY_MS (--upload-permanent-retry-ms)",
            &args.upload_permanent_retry_ms,
        )?,
    })
}
