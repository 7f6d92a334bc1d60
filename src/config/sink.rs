//! The sink and uploader parts of the configuration: where chunks go and how they are shipped.

use std::time::Duration;

use super::values::parse_number;
use super::{Args, ConfigError, SinkConfig, invalid};

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
        "s3" | "kafka" => {
            return Err(invalid(
                "DRIVER (--driver)",
                format!("{:?} is not available in this build yet; use file or stdout", args.driver),
            ));
        }
        other => {
            return Err(invalid("DRIVER (--driver)", format!("{other:?}: expected s3, file, stdout or discard")));
        }
    })
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
