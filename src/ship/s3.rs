//! The S3 sink (object_store's `AmazonS3`, on the uploader's runtime): one object per chunk under its key, with
//! `Content-Type: application/x-ndjson`, the codec's `Content-Encoding`, and the chunk's metadata as
//! `x-amz-meta-*`.
//!
//! - A chunk up to `S3_MULTIPART_BYTES` is one PUT with `If-None-Match: *`; above it, a multipart upload in parts
//!   of that size, read from the spool file one part at a time (a 64 MiB chunk is never held whole), aborted on
//!   any failure or at the shutdown deadline.
//! - Shipping a chunk again (it was uploaded, then the process died before deleting it) finds the object there;
//!   when its `sha256` metadata matches, that counts as done, so one key never becomes two objects.
//! - Errors are sorted for the uploader: refused requests (403, 401, 404 no such bucket, 400) are permanent,
//!   the rest (no connection, timeouts, 5xx, 429, SlowDown) retryable. object_store's own retries are kept to a
//!   couple within seconds; the uploader's per-chunk backoff does the rest.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, MultipartUpload, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig,
};

use super::object::{Cancel, ChunkFile, ObjectMeta, SinkError, blocking};
use super::parquet::MergedMeta;
use crate::config::{S3Checksum, S3Config};

/// How long aborting a failed or cancelled multipart upload may take (also past the shutdown deadline).
const ABORT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct S3Sink {
    store: Arc<AmazonS3>,
    bucket: String,
    /// `bucket b at http://…`, for messages.
    target: String,
    part_bytes: u64,
    /// Where the start-up check lists and writes (a bucket policy may allow no more than that prefix).
    key_prefix: String,
    check_key: String,
}

impl S3Sink {
    /// Builds the client from the settings and the standard AWS credential chain (environment, web identity,
    /// ECS task role, instance metadata); contacts nothing yet.
    pub fn new(config: &S3Config, key_prefix: &str) -> Result<S3Sink, String> {
        install_tls_provider();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(false)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120)),
            );
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if config.checksum == S3Checksum::Sha256 {
            builder = builder.with_checksum_algorithm(object_store::aws::Checksum::SHA256);
        }
        let store = builder.build().map_err(|e| format!("S3 settings: {e}"))?;
        let endpoint = config.endpoint.clone().unwrap_or_else(|| "AWS".into());
        Ok(S3Sink {
            store: Arc::new(store),
            bucket: config.bucket.clone(),
            target: format!("bucket {} at {endpoint}", config.bucket),
            part_bytes: config.multipart_bytes,
            key_prefix: key_prefix.to_string(),
            check_key: match key_prefix {
                "" => "_plutos_write_check".into(),
                prefix => format!("{prefix}/_plutos_write_check"),
            },
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether the bucket is reachable, exists and is writable: lists the key prefix (ListBucket), then starts a
    /// multipart upload and aborts it (PutObject, AbortMultipartUpload); no object is left behind.
    pub async fn check(&self) -> Result<String, SinkError> {
        let prefix = (!self.key_prefix.is_empty()).then(|| ObjectPath::from(self.key_prefix.as_str()));
        self.store.list_with_delimiter(prefix.as_ref()).await.map_err(|e| self.classify(&e))?;
        let location = ObjectPath::from(self.check_key.as_str());
        let mut upload = self
            .store
            .put_multipart_opts(&location, PutMultipartOptions::default())
            .await
            .map_err(|e| self.classify(&e))?;
        upload.abort().await.map_err(|e| self.classify(&e))?;
        Ok(format!("S3 {} (reachable and writable)", self.target))
    }

    pub async fn put(&self, object: &ObjectMeta, chunk: &ChunkFile, cancel: Cancel) -> Result<(), SinkError> {
        self.store(&object.key, &object.sha256, attributes(object), chunk, cancel).await
    }

    /// A Parquet object (`OUTPUT_FORMAT=parquet`): its manifest's summary as metadata (S3 allows 2 KiB of it, so
    /// the list of chunks is in the object's footer, where `plutos verify` reads it).
    pub async fn put_merged(&self, meta: &MergedMeta, file: &ChunkFile, cancel: Cancel) -> Result<(), SinkError> {
        self.store(&meta.manifest.key, &meta.sha256, merged_attributes(meta), file, cancel).await
    }

    async fn store(
        &self,
        key: &str,
        sha256: &str,
        attributes: Attributes,
        chunk: &ChunkFile,
        mut cancel: Cancel,
    ) -> Result<(), SinkError> {
        let location = ObjectPath::from(key);
        if chunk.len <= self.part_bytes {
            let path = chunk.path.clone();
            let bytes = blocking(move || std::fs::read(path)).await?;
            let options = PutOptions { mode: PutMode::Create, attributes, ..PutOptions::default() };
            let put = self.store.put_opts(&location, PutPayload::from(bytes), options);
            let result = tokio::select! {
                result = put => result,
                _ = cancel.cancelled() => return Err(SinkError::Cancelled),
            };
            return match result {
                Ok(_) => Ok(()),
                Err(object_store::Error::AlreadyExists { .. }) => self.confirm_existing(&location, key, sha256).await,
                Err(e) => Err(self.classify(&e)),
            };
        }
        // CompleteMultipartUpload takes no If-None-Match here: look for an earlier upload first.
        if self.existing_sha256(&location).await?.is_some() {
            return self.confirm_existing(&location, key, sha256).await;
        }
        let options = PutMultipartOptions { attributes, ..PutMultipartOptions::default() };
        let mut upload = self.store.put_multipart_opts(&location, options).await.map_err(|e| self.classify(&e))?;
        let result = tokio::select! {
            result = self.send_parts(upload.as_mut(), chunk) => result,
            _ = cancel.cancelled() => Err(SinkError::Cancelled),
        };
        if result.is_err() {
            // A failed upload leaves no object; an abort that fails or hangs leaves only an invisible upload
            // (a bucket lifecycle rule for incomplete multipart uploads cleans those).
            match tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(key, error = %e, "aborting a multipart upload failed"),
                Err(_) => tracing::debug!(key, "aborting a multipart upload timed out"),
            }
        }
        result
    }

    /// Every key under the key prefix (for `plutos verify`).
    pub async fn list_keys(&self) -> Result<Vec<String>, SinkError> {
        let mut keys = Vec::new();
        let mut pending = vec![(!self.key_prefix.is_empty()).then(|| ObjectPath::from(self.key_prefix.as_str()))];
        while let Some(prefix) = pending.pop() {
            let listing = self.store.list_with_delimiter(prefix.as_ref()).await.map_err(|e| self.classify(&e))?;
            keys.extend(listing.objects.into_iter().map(|o| o.location.to_string()));
            pending.extend(listing.common_prefixes.into_iter().map(Some));
        }
        Ok(keys)
    }

    /// An object's bytes and user metadata (for `plutos verify`).
    pub async fn fetch(&self, key: &str) -> Result<(Vec<u8>, HashMap<String, String>), SinkError> {
        let found =
            self.store.get_opts(&ObjectPath::from(key), GetOptions::default()).await.map_err(|e| self.classify(&e))?;
        let metadata = found
            .attributes
            .iter()
            .filter_map(|(attribute, value)| match attribute {
                Attribute::Metadata(name) => Some((name.to_string(), value.to_string())),
                _ => None,
            })
            .collect();
        let bytes = found.bytes().await.map_err(|e| self.classify(&e))?;
        Ok((bytes.to_vec(), metadata))
    }

    /// Sends the file in parts of `part_bytes`, one read at a time, then completes the upload.
    async fn send_parts(&self, upload: &mut dyn MultipartUpload, chunk: &ChunkFile) -> Result<(), SinkError> {
        let mut offset = 0;
        while offset < chunk.len {
            let len = self.part_bytes.min(chunk.len - offset);
            let path = chunk.path.clone();
            let part = blocking(move || -> std::io::Result<Vec<u8>> {
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(offset))?;
                let mut part = vec![0; len as usize];
                file.read_exact(&mut part)?;
                Ok(part)
            })
            .await?;
            upload.put_part(PutPayload::from(part)).await.map_err(|e| self.classify(&e))?;
            offset += len;
        }
        upload.complete().await.map_err(|e| self.classify(&e))?;
        Ok(())
    }

    /// The `sha256` metadata of the object at `location`, if there is one.
    async fn existing_sha256(&self, location: &ObjectPath) -> Result<Option<String>, SinkError> {
        let options = GetOptions { head: true, ..GetOptions::default() };
        match self.store.get_opts(location, options).await {
            Ok(found) => Ok(Some(
                found.attributes.get(&Attribute::Metadata("sha256".into())).map(|v| v.to_string()).unwrap_or_default(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.classify(&e)),
        }
    }

    /// The key is taken: done if it holds this chunk (shipped before a crash), an error if it holds another.
    async fn confirm_existing(&self, location: &ObjectPath, key: &str, sha256: &str) -> Result<(), SinkError> {
        match self.existing_sha256(location).await? {
            Some(found) if found == sha256 => {
                tracing::info!(key, "already shipped (same sha256): counted as done");
                Ok(())
            }
            Some(_) => Err(SinkError::Permanent(format!(
                "{key} already holds another object with this key in {} (sha256 differs)",
                self.target
            ))),
            // Deleted between the PUT and the look: try again.
            None => Err(SinkError::Retryable(format!("{key} vanished while checking it in {}", self.target))),
        }
    }

    /// Sorts an object_store error and words it the same way for every attempt that fails alike.
    fn classify(&self, e: &object_store::Error) -> SinkError {
        use object_store::Error as E;
        let text = error_chain(e);
        let status = http_status(&text);
        let code = xml_tag(&text, "Code");
        let what = match (status, code) {
            (Some(status), Some(code)) => format!("HTTP {status} {code}"),
            (Some(status), None) => format!("HTTP {status}"),
            (None, _) => root_cause(e),
        };
        let summary = format!("{what} ({})", self.target);
        let permanent = match e {
            E::PermissionDenied { .. }
            | E::Unauthenticated { .. }
            | E::NotFound { .. }
            | E::NotImplemented { .. }
            | E::NotSupported { .. }
            | E::InvalidPath { .. } => true,
            _ => match status {
                Some(400) => !matches!(code, Some("RequestTimeout" | "ExpiredToken" | "TokenRefreshRequired")),
                Some(429) | Some(500..) => false,
                Some(300..) => true,
                _ => false,
            },
        };
        if permanent { SinkError::Permanent(summary) } else { SinkError::Retryable(summary) }
    }
}

/// Content-Type, Content-Encoding and the chunk's metadata as `x-amz-meta-*`.
fn attributes(object: &ObjectMeta) -> Attributes {
    let metadata = [
        ("events", object.events.to_string()),
        ("first-seq", object.first_seq.to_string()),
        ("last-seq", object.last_seq.to_string()),
        ("sha256", object.sha256.clone()),
        ("host", object.host.clone()),
        ("boot", object.boot.clone()),
        ("worker", object.worker.to_string()),
        ("stream", object.stream.name().to_string()),
    ];
    described("application/x-ndjson", object.content_encoding, metadata)
}

/// A Parquet object's Content-Type and summary as `x-amz-meta-*`.
fn merged_attributes(meta: &MergedMeta) -> Attributes {
    let manifest = &meta.manifest;
    let metadata = [
        ("format", meta.format.clone()),
        ("events", manifest.events.to_string()),
        ("chunks", manifest.chunks.len().to_string()),
        ("sha256", meta.sha256.clone()),
        ("host", manifest.host.clone()),
        ("stream", manifest.stream.name().to_string()),
    ];
    described("application/vnd.apache.parquet", None, metadata)
}

fn described<const N: usize>(
    content_type: &'static str,
    encoding: Option<&'static str>,
    metadata: [(&'static str, String); N],
) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, content_type.into());
    if let Some(encoding) = encoding {
        attributes.insert(Attribute::ContentEncoding, encoding.into());
    }
    for (name, value) in metadata {
        attributes.insert(Attribute::Metadata(name.into()), value.into());
    }
    attributes
}

/// Every message of the error's source chain, joined.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The innermost message (the OS error of a refused connection, say): the same for every attempt.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// The status in object_store's "… status code: 403 Forbidden …".
fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// The text of the first `<tag>…</tag>` in an S3 error body.
fn xml_tag<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find("</")?;
    Some(&text[start..start + len])
}

/// rustls needs one process-wide crypto provider; plutos uses ring (no C build, unlike aws-lc).
pub(super) fn install_tls_provider() {
    // An error means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_s3_code_from_error_text() {
        let text = "Generic S3 error: Error performing PUT http://h/b/k in 2ms - Server returned non-2xx status code: \
                    403 Forbidden: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>x</Message>\
                    <RequestId>abc</RequestId></Error>";
        assert_eq!(http_status(text), Some(403));
        assert_eq!(xml_tag(text, "Code"), Some("SignatureDoesNotMatch"));
        assert_eq!(http_status("connection refused"), None);
        assert_eq!(xml_tag("<Code>open", "Code"), None);
    }
}
