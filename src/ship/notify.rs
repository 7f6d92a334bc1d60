//! Object-ready notifications (`NOTIFY_SQS_QUEUE_URL`, with the file or S3 sink): after an object is durable in
//! the sink, one SQS message in the shape of an S3 `ObjectCreated:Put` event notification — so a consumer of S3's
//! own notifications (Vector's `aws_s3` source, Snowpipe, a Lambda) reads it unchanged — with plutos's manifest of
//! the object under `Records[0].plutos`: its format, events, sha256, and each writer's sequence range.
//!
//! The uploader sends it after the object's `put` and before the spool file is deleted; a notification SQS does
//! not accept fails the upload, which is tried again (putting an object that is already there counts as done),
//! so a notification is sent at least once: a crash between the notification and the delete, or a failure
//! after SQS took it, sends it again.
//!
//! For the file sink, `eventSource` is `plutos:file` and the "bucket" is the sink's root directory.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::object::SinkError;
use super::parquet::MergedMeta;
use super::sqs::client::SqsClient;
use crate::config::NotifyConfig;
use crate::event::clock::Civil;

pub struct Notifier {
    client: SqsClient,
    queue_url: String,
    region: String,
    /// `aws:s3` or `plutos:file`.
    source: &'static str,
    /// The bucket, or the file sink's root.
    bucket: String,
}

impl Notifier {
    /// `region`: the S3 sink's, for `awsRegion` (the client's own comes from the same settings).
    pub fn new(config: &NotifyConfig, source: &'static str, bucket: String) -> Result<Notifier, String> {
        let client = SqsClient::new(&config.queue_url, config.endpoint.as_deref(), config.region.as_deref())?;
        Ok(Notifier {
            region: client.region().to_string(),
            client,
            queue_url: config.queue_url.clone(),
            source,
            bucket,
        })
    }

    /// At start: the notifications' queue exists.
    pub async fn check(&self) -> Result<String, SinkError> {
        self.client.queue_attributes(&self.queue_url).await.map_err(|e| e.error)?;
        Ok(format!("object-ready notifications to SQS queue {}", self.queue_url))
    }

    /// Says that the object `meta` describes (`size` bytes) is in the sink.
    pub async fn ready(&self, meta: &MergedMeta, size: u64) -> Result<(), SinkError> {
        let message = self.message(meta, size, SystemTime::now());
        self.client.send(&self.queue_url, &message).await.map_err(|e| e.error)
    }

    fn message(&self, meta: &MergedMeta, size: u64, now: SystemTime) -> String {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let t = Civil::from_unix(since.as_secs() as i64);
        let time = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            since.subsec_millis()
        );
        let arn = if self.source == "aws:s3" { format!("arn:aws:s3:::{}", self.bucket) } else { String::new() };
        json!({ "Records": [{
            "eventVersion": "2.1",
            "eventSource": self.source,
            "awsRegion": self.region,
            "eventTime": time,
            "eventName": "ObjectCreated:Put",
            "userIdentity": { "principalId": "plutos" },
            "requestParameters": { "sourceIPAddress": "127.0.0.1" },
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "plutos",
                "bucket": { "name": self.bucket, "ownerIdentity": { "principalId": "plutos" }, "arn": arn },
                "object": {
                    "key": url_encode(&meta.manifest.key),
                    "size": size,
                    "sequencer": format!("{:016X}", since.as_nanos() as u64),
                },
            },
            "plutos": meta,
        }]})
        .to_string()
    }
}

/// An object key as S3's notifications carry it: form-URL-encoded (a space is `+`), `/` kept.
fn url_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::parquet::{ChunkEntry, Manifest};
    use crate::spool::Stream;

    #[test]
    fn keys_are_encoded_as_s3_notifications_encode_them() {
        assert_eq!(
            url_encode("p/created_date=2026-12-06/hour=05/a b.ndjson.gz"),
            "p/created_date%3D2026-12-06/hour%3D05/a+b.ndjson.gz"
        );
    }

    #[test]
    fn a_notification_has_the_shape_of_an_s3_object_created_event_with_the_manifest() {
        let config = NotifyConfig {
            queue_url: "http://127.0.0.1:1/1/n".into(),
            endpoint: None,
            region: Some("eu-west-1".into()),
        };
        let notifier = Notifier::new(&config, "aws:s3", "bucket".into()).unwrap();
        let chunk = ChunkEntry {
            host: "h".into(),
            boot: "b".into(),
            worker: 1,
            first_seq: 10,
            last_seq: 12,
            events: 3,
            sha256: "c".into(),
        };
        let manifest =
            Manifest { key: "k=1/o".into(), host: "h".into(), stream: Stream::Good, events: 3, chunks: vec![chunk] };
        let meta = MergedMeta { format: "ndjson".into(), sha256: "s".into(), manifest };
        let message = notifier.message(&meta, 99, UNIX_EPOCH + std::time::Duration::from_millis(1_765_000_000_123));
        let record = &serde_json::from_str::<serde_json::Value>(&message).unwrap()["Records"][0];
        assert_eq!(record["eventName"], "ObjectCreated:Put");
        assert_eq!(record["eventTime"], "2025-12-06T05:46:40.123Z");
        assert_eq!(record["awsRegion"], "eu-west-1");
        assert_eq!(record["s3"]["bucket"]["name"], "bucket");
        assert_eq!(record["s3"]["bucket"]["arn"], "arn:aws:s3:::bucket");
        assert_eq!(record["s3"]["object"]["key"], "k%3D1/o");
        assert_eq!(record["s3"]["object"]["size"], 99);
        assert_eq!(record["plutos"]["chunks"][0]["first-seq"], 10);
        assert_eq!(record["plutos"]["events"], 3);
    }
}
