//! `plutos verify --peek sqs://HOST/ACCOUNT/QUEUE` (`sqs+http://` for a plain-HTTP server; `SQS_ENDPOINT`,
//! `S3_REGION` and the AWS credentials as for the sink): a queue is consumed, not listed, so it can only be
//! checked by receiving its messages — without deleting them: each is hidden for `PEEK_VISIBILITY` and then
//! served again to the queue's real consumers. Every message must be one JSON object with the `host`, `boot`,
//! `worker` and `seq` attributes that name its event; per writer the sequence numbers must tile `0..` (repeats:
//! duplicated ranges). For tests and checks of a queue nothing else reads: a consumer that takes messages
//! meanwhile makes gaps, and SQS's sampled receives may need the empty answers to be long-polled to see every
//! message.

use super::kafka::{Messages, one_json_object};
use super::{Report, Writer};
use crate::ship::sqs::client::{Received, SqsClient};
use crate::spool::Stream;

/// How long each received message stays hidden from other consumers.
const PEEK_VISIBILITY: u32 = 60;
/// Consecutive empty long polls (of 1 s) that end the read.
const EMPTY_POLLS: u32 = 3;

/// `sqs://…` or `sqs+http://…` → the queue URL.
pub fn parse_url(url: &str) -> Option<String> {
    let (scheme, rest) = match url.split_once("://")? {
        ("sqs", rest) => ("https", rest),
        ("sqs+http", rest) => ("http", rest),
        _ => return None,
    };
    let (host, path) = rest.split_once('/')?;
    (!host.is_empty() && !path.trim_matches('/').is_empty())
        .then(|| format!("{scheme}://{host}/{}", path.trim_matches('/')))
}

/// Receives every message of the queue (without deleting it) and checks it.
pub fn verify(queue_url: &str, endpoint: Option<&str>, region: Option<&str>) -> Result<Report, String> {
    let client = SqsClient::new(queue_url, endpoint, region)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the SQS client's runtime: {e}"))?;
    let mut read = Messages::default();
    let mut empty = 0;
    let mut count = 0u64;
    while empty < EMPTY_POLLS {
        let messages = runtime
            .block_on(client.receive(queue_url, PEEK_VISIBILITY, 1))
            .map_err(|e| format!("receiving from {queue_url}: {}", e.error))?;
        empty = if messages.is_empty() { empty + 1 } else { 0 };
        for message in messages {
            count += 1;
            read.add(format!("#{count}"), check(&message));
        }
    }
    Ok(read.report())
}

/// A message's writer and sequence number, or what is wrong with it.
fn check(message: &Received) -> Result<(Writer, u64), String> {
    let attribute = |name: &str| -> Result<String, String> {
        let value = message.message_attributes.get(name).and_then(|a| a.string_value.clone());
        value.ok_or(format!("no {name} attribute"))
    };
    let worker = attribute("worker")?.parse().map_err(|_| "worker attribute is not a number")?;
    let seq = attribute("seq")?.parse().map_err(|_| "seq attribute is not a number")?;
    // A queue holds one stream: its writers are told apart by host, boot and worker.
    let writer = Writer { host: attribute("host")?, boot: attribute("boot")?, worker, stream: Stream::Good };
    if !one_json_object(message.body.as_bytes()) {
        return Err("body is not one JSON object".into());
    }
    Ok((writer, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_urls_name_the_queue() {
        let aws = parse_url("sqs://sqs.us-east-1.amazonaws.com/123456789012/events");
        assert_eq!(aws.as_deref(), Some("https://sqs.us-east-1.amazonaws.com/123456789012/events"));
        assert_eq!(parse_url("sqs+http://127.0.0.1:4566/1/q/").as_deref(), Some("http://127.0.0.1:4566/1/q"));
        assert_eq!(parse_url("sqs://host/"), None);
        assert_eq!(parse_url("s3://b/p"), None);
    }
}
