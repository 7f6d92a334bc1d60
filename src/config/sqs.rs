//! The SQS parts of the configuration: the `DRIVER=sqs` queue (one message per event) and the object-ready
//! notifications' queue (`NOTIFY_SQS_QUEUE_URL`, with the file or S3 sink). Region and credentials are the S3
//! sink's (`S3_REGION`, the AWS chain); `SQS_ENDPOINT` serves both queues.

use super::args::Args;
use super::{ConfigError, invalid};

/// SQS's largest message and batch: 1 MiB (it was 256 KiB until 2025, still the default here).
pub const SQS_LARGEST_MESSAGE: u64 = 1 << 20;

/// What a message's attributes (host, boot, worker, seq, protocol: names, types and values) may take of
/// `SQS_MAX_MESSAGE_BYTES` at most; ingest refuses (413) a record line longer than the rest, so only a chunk
/// spooled under a larger limit can hold an event the queue cannot take.
pub const SQS_ATTRIBUTES_ALLOWANCE: u64 = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsConfig {
    pub queue_url: String,
    /// Where bad rows go (`SQS_BAD_QUEUE_URL`; default the queue's name with `-bad`, before a `.fifo`).
    pub bad_queue_url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// The largest message — body and attributes, as SQS counts them — and the largest batch.
    pub max_message_bytes: u64,
    /// Batches of one chunk sent and not answered yet, at most.
    pub max_in_flight: usize,
    /// A FIFO queue (its name ends in `.fifo`): what a message's group is.
    pub fifo: Option<FifoGroup>,
}

/// `SQS_FIFO_GROUP`: the `MessageGroupId` of a FIFO queue's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FifoGroup {
    /// One group per writer (host, boot, worker): its events in sequence order as sent.
    Writer,
    /// One group per `user_id` (the writer's group when an event has none).
    User,
}

/// Where object-ready notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub queue_url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

pub(super) fn sqs(args: &Args) -> Result<SqsConfig, ConfigError> {
    let queue_url = parse_queue_url(args.sqs_queue_url.as_deref(), "SQS_QUEUE_URL (--sqs-queue-url)")?
        .ok_or_else(|| invalid("SQS_QUEUE_URL (--sqs-queue-url)", "required with DRIVER=sqs"))?;
    let bad_queue_url =
        match parse_queue_url(args.sqs_bad_queue_url.as_deref(), "SQS_BAD_QUEUE_URL (--sqs-bad-queue-url)")? {
            Some(url) => url,
            None => match queue_url.strip_suffix(".fifo") {
                Some(name) => format!("{name}-bad.fifo"),
                None => format!("{queue_url}-bad"),
            },
        };
    if bad_queue_url == queue_url {
        return Err(invalid("SQS_BAD_QUEUE_URL (--sqs-bad-queue-url)", "must differ from SQS_QUEUE_URL"));
    }
    if bad_queue_url.ends_with(".fifo") != queue_url.ends_with(".fifo") {
        return Err(invalid("SQS_BAD_QUEUE_URL (--sqs-bad-queue-url)", "FIFO (.fifo) when SQS_QUEUE_URL is"));
    }
    if !(2048..=SQS_LARGEST_MESSAGE).contains(&args.sqs_max_message_bytes) {
        return Err(invalid("SQS_MAX_MESSAGE_BYTES (--sqs-max-message-bytes)", "between 2KiB and 1MiB"));
    }
    Ok(SqsConfig {
        fifo: queue_url.ends_with(".fifo").then_some(args.sqs_fifo_group),
        queue_url,
        bad_queue_url,
        endpoint: endpoint(args)?,
        region: args.s3_region.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(String::from),
        max_message_bytes: args.sqs_max_message_bytes,
        max_in_flight: args.sqs_max_in_flight as usize,
    })
}

pub(super) fn notify(args: &Args) -> Result<Option<NotifyConfig>, ConfigError> {
    let setting = "NOTIFY_SQS_QUEUE_URL (--notify-sqs-queue-url)";
    let Some(url) = parse_queue_url(args.notify_sqs_queue_url.as_deref(), setting)? else {
        return Ok(None);
    };
    if !matches!(args.driver, super::args::Driver::File | super::args::Driver::S3) {
        return Err(invalid(setting, "object-ready notifications need DRIVER=file or s3"));
    }
    if url.ends_with(".fifo") {
        return Err(invalid(setting, "a standard queue (notifications are sent at least once, not deduplicated)"));
    }
    Ok(Some(NotifyConfig {
        queue_url: url,
        endpoint: endpoint(args)?,
        region: args.s3_region.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(String::from),
    }))
}

/// A queue URL setting: absent or empty is `None`; anything else must be an http(s) URL with a path.
fn parse_queue_url(value: Option<&str>, setting: &'static str) -> Result<Option<String>, ConfigError> {
    let Some(url) = value.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.path().len() > 1 => {
            Ok(Some(url.trim_end_matches('/').to_string()))
        }
        _ => Err(invalid(
            setting,
            format!("{url:?}: expected a queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/events"),
        )),
    }
}

fn endpoint(args: &Args) -> Result<Option<String>, ConfigError> {
    match args.sqs_endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) if e.starts_with("http://") || e.starts_with("https://") => Ok(Some(e.trim_end_matches('/').into())),
        Some(e) => {
            Err(invalid("SQS_ENDPOINT (--sqs-endpoint)", format!("{e:?}: expected a URL like http://127.0.0.1:4566")))
        }
        None => Ok(None),
    }
}
