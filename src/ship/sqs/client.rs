//! A small client for SQS's JSON protocol (`POST /` with `X-Amz-Target: AmazonSQS.{Action}` and an
//! `application/x-amz-json-1.0` body) on plutos's reqwest, each request signed with SigV4 by `object_store`'s
//! `AwsAuthorizer` (service `sqs`) with credentials from the standard AWS chain (environment, web identity, ECS
//! task role, instance metadata) that the S3 sink uses. Only the four actions plutos needs: `SendMessageBatch`,
//! `SendMessage`, `ReceiveMessage` (`plutos verify --peek`) and `GetQueueAttributes` (the start-up check).
//!
//! Errors are sorted as the uploader needs them: a refused request (credentials, signature, a queue that does not
//! exist, a parameter SQS rejects) is permanent; no connection, timeouts, 5xx, throttling are retryable.

use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{HttpRequest, HttpRequestBody};
use serde::Deserialize;
use serde_json::Value;

use crate::ship::object::SinkError;

/// How long one request may take (SendMessageBatch answers in tens of milliseconds; a long poll of
/// ReceiveMessage waits up to 20 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct SqsClient {
    http: reqwest::Client,
    /// `https://sqs.{region}.amazonaws.com/` or `SQS_ENDPOINT`: where every action is posted.
    endpoint: String,
    region: String,
    credentials: AwsCredentialProvider,
}

/// Why a request failed: its error kind (a `plutos_sqs_errors_total` label) and what the uploader does next.
#[derive(Debug, Clone)]
pub struct SqsError {
    pub kind: &'static str,
    pub error: SinkError,
}

/// A `SendMessageBatch` answer: the ids of the entries SQS took, and of those it did not, with why.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchAnswer {
    #[serde(default)]
    pub successful: Vec<Successful>,
    #[serde(default)]
    pub failed: Vec<Failed>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Successful {
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Failed {
    pub id: String,
    /// The entry itself is wrong (it would fail again as it is), not SQS.
    #[serde(default)]
    pub sender_fault: bool,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// One received message (`ReceiveMessage`), with its message attributes' string values.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Received {
    pub body: String,
    #[serde(default)]
    pub message_attributes: std::collections::BTreeMap<String, AttributeValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeValue {
    #[serde(default)]
    pub string_value: Option<String>,
}

impl SqsClient {
    /// A client for the queue `queue_url`: requests go to `endpoint` when given, else to the queue URL's own
    /// host; the region is `region` when given, else the one in an AWS queue URL's host, else the AWS chain's
    /// (`AWS_REGION`, `AWS_DEFAULT_REGION`, us-east-1). Contacts nothing yet.
    pub fn new(queue_url: &str, endpoint: Option<&str>, region: Option<&str>) -> Result<SqsClient, String> {
        super::super::s3::install_tls_provider();
        let url = reqwest::Url::parse(queue_url).map_err(|e| format!("{queue_url:?}: not a queue URL: {e}"))?;
        let host = url.host_str().ok_or_else(|| format!("{queue_url:?}: a queue URL names a host"))?;
        let endpoint = match endpoint {
            Some(endpoint) => format!("{}/", endpoint.trim_end_matches('/')),
            None => format!("{}://{}/", url.scheme(), url.authority()),
        };
        // sqs.{region}.amazonaws.com (and the legacy {region}.queue.amazonaws.com).
        let from_host = host
            .strip_prefix("sqs.")
            .and_then(|rest| rest.split_once('.'))
            .map(|(region, _)| region.to_string())
            .or_else(|| host.split_once(".queue.amazonaws.com").map(|(region, _)| region.to_string()));
        // The S3 builder reads the same credential chain and region variables the S3 sink does; its bucket is
        // never used.
        let mut builder = AmazonS3Builder::from_env().with_bucket_name("plutos-sqs");
        if let Some(region) = region.map(str::to_string).or(from_host) {
            builder = builder.with_region(region);
        }
        let region = builder.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let store = builder.build().map_err(|e| format!("AWS credentials: {e}"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| format!("SQS client: {e}"))?;
        Ok(SqsClient { http, endpoint, region, credentials: store.credentials().clone() })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Sends a batch (`body`: the request's JSON, with `QueueUrl` and `Entries`).
    pub async fn send_batch(&self, body: Vec<u8>) -> Result<BatchAnswer, SqsError> {
        let answer = self.call("SendMessageBatch", body).await?;
        serde_json::from_value(answer).map_err(|e| retryable("other", format!("a SendMessageBatch answer: {e}")))
    }

    /// Sends one message.
    pub async fn send(&self, queue_url: &str, body: &str) -> Result<(), SqsError> {
        let request = serde_json::json!({ "QueueUrl": queue_url, "MessageBody": body });
        self.call("SendMessage", request.to_string().into_bytes()).await.map(drop)
    }

    /// Up to 10 messages, their visibility hidden for `visibility` seconds (not deleted), waiting up to `wait`
    /// seconds for the first.
    pub async fn receive(&self, queue_url: &str, visibility: u32, wait: u32) -> Result<Vec<Received>, SqsError> {
        let request = serde_json::json!({
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": 10,
            "VisibilityTimeout": visibility,
            "WaitTimeSeconds": wait,
            "MessageAttributeNames": ["All"],
        });
        let answer = self.call("ReceiveMessage", request.to_string().into_bytes()).await?;
        let messages = answer.get("Messages").cloned().unwrap_or(Value::Array(Vec::new()));
        serde_json::from_value(messages).map_err(|e| retryable("other", format!("a ReceiveMessage answer: {e}")))
    }

    /// The queue's attributes (the start-up check: does the queue exist, may plutos use it).
    pub async fn queue_attributes(&self, queue_url: &str) -> Result<Value, SqsError> {
        let request = serde_json::json!({ "QueueUrl": queue_url, "AttributeNames": ["All"] });
        let answer = self.call("GetQueueAttributes", request.to_string().into_bytes()).await?;
        Ok(answer.get("Attributes").cloned().unwrap_or_default())
    }

    /// One signed request; its answer's JSON.
    async fn call(&self, action: &str, body: Vec<u8>) -> Result<Value, SqsError> {
        let credential = self.credentials.get_credential().await.map_err(|e| SqsError {
            kind: "authorization",
            error: SinkError::Retryable(format!("SQS credentials: {e}")),
        })?;
        let mut request = HttpRequest::new(HttpRequestBody::from(body));
        *request.method_mut() = reqwest::Method::POST;
        *request.uri_mut() = self.endpoint.parse().map_err(|e| permanent("other", format!("SQS endpoint: {e}")))?;
        let headers = request.headers_mut();
        headers.insert("x-amz-target", format!("AmazonSQS.{action}").parse().expect("an ASCII header value"));
        headers.insert("content-type", reqwest::header::HeaderValue::from_static("application/x-amz-json-1.0"));
        let host = reqwest::Url::parse(&self.endpoint).ok().map(|u| u.authority().to_string()).unwrap_or_default();
        headers.insert("host", host.parse().map_err(|_| permanent("other", "SQS endpoint host".into()))?);
        AwsAuthorizer::new(&credential, "sqs", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| permanent("authorization", format!("signing an SQS request: {e}")))?;
        let (parts, body) = request.into_parts();
        let body = body.as_bytes().cloned().unwrap_or_default();
        let response = self
            .http
            .post(&self.endpoint)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| retryable("unreachable", format!("SQS {}: {}", self.endpoint, error_chain(&e))))?;
        let status = response.status();
        let text = response
            .bytes()
            .await
            .map_err(|e| retryable("unreachable", format!("SQS {}: {}", self.endpoint, error_chain(&e))))?;
        let json: Value = serde_json::from_slice(&text).unwrap_or_else(|_| query_error(&text));
        if status.is_success() {
            return Ok(json);
        }
        Err(classify(action, status.as_u16(), &json))
    }
}

/// A refused request: its kind and whether trying again can help. SQS names the error in `__type`
/// (`com.amazonaws.sqs#QueueDoesNotExist`, `AWS.SimpleQueueService.NonExistentQueue`, …).
fn classify(action: &str, status: u16, answer: &Value) -> SqsError {
    let code = answer.get("__type").and_then(Value::as_str).unwrap_or("");
    let code = code.rsplit_once('#').map_or(code, |(_, c)| c);
    let message = answer.get("message").or_else(|| answer.get("Message")).and_then(Value::as_str).unwrap_or("");
    let text = format!("SQS {action}: {status} {code}: {message}");
    let kind = if code.contains("NonExistentQueue") || code.contains("QueueDoesNotExist") {
        "queue"
    } else if code.contains("Throttl") || code.contains("RequestThrottled") || status == 429 {
        "throttled"
    } else if status == 401 || status == 403 || code.contains("Signature") || code.contains("AccessDenied") {
        "authorization"
    } else if status >= 500 {
        "server"
    } else {
        "other"
    };
    let retry = matches!(kind, "throttled" | "server") || status == 408;
    SqsError { kind, error: if retry { SinkError::Retryable(text) } else { SinkError::Permanent(text) } }
}

/// An error answered in the query protocol's XML (`<Error><Code>…</Code><Message>…</Message>`, as signature
/// failures are, whatever the request's protocol) in the JSON protocol's shape.
fn query_error(text: &[u8]) -> Value {
    let text = String::from_utf8_lossy(text);
    let field = |name: &str| {
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let start = text.find(&open)? + open.len();
        Some(text[start..].split(&close).next()?.to_string())
    };
    serde_json::json!({ "__type": field("Code").unwrap_or_default(), "message": field("Message").unwrap_or_default() })
}

fn retryable(kind: &'static str, text: String) -> SqsError {
    SqsError { kind, error: SinkError::Retryable(text) }
}

fn permanent(kind: &'static str, text: String) -> SqsError {
    SqsError { kind, error: SinkError::Permanent(text) }
}

/// reqwest's error with its sources ("error sending request: … Connection refused"), without the request's URL
/// changing between attempts.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_sqs_errors_by_kind_and_retry() {
        let answer = |code: &str| serde_json::json!({ "__type": code, "message": "m" });
        let queue = classify("SendMessageBatch", 400, &answer("com.amazonaws.sqs#QueueDoesNotExist"));
        assert_eq!((queue.kind, matches!(queue.error, SinkError::Permanent(_))), ("queue", true));
        let throttled = classify("SendMessageBatch", 400, &answer("com.amazonaws.sqs#RequestThrottled"));
        assert_eq!((throttled.kind, matches!(throttled.error, SinkError::Retryable(_))), ("throttled", true));
        let denied = classify("SendMessageBatch", 403, &answer("com.amazonaws.sqs#AccessDenied"));
        assert_eq!((denied.kind, matches!(denied.error, SinkError::Permanent(_))), ("authorization", true));
        let server = classify("SendMessageBatch", 500, &Value::Null);
        assert_eq!((server.kind, matches!(server.error, SinkError::Retryable(_))), ("server", true));
        assert_eq!(queue.error.to_string(), "SQS SendMessageBatch: 400 QueueDoesNotExist: m");
        let xml =
            b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error></ErrorResponse>";
        let signature = classify("GetQueueAttributes", 403, &query_error(xml));
        assert_eq!(signature.error.to_string(), "SQS GetQueueAttributes: 403 SignatureDoesNotMatch: no");
        assert_eq!(signature.kind, "authorization");
    }

    #[test]
    fn the_region_and_endpoint_come_from_an_aws_queue_url() {
        let client = SqsClient::new("https://sqs.eu-west-3.amazonaws.com/123456789012/events", None, None).unwrap();
        assert_eq!((client.endpoint(), client.region.as_str()), ("https://sqs.eu-west-3.amazonaws.com/", "eu-west-3"));
        let local = SqsClient::new("http://127.0.0.1:4566/1/q", Some("http://127.0.0.1:9/"), Some("r")).unwrap();
        assert_eq!((local.endpoint(), local.region.as_str()), ("http://127.0.0.1:9/", "r"));
    }
}
