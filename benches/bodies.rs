//! The request bodies of the POST scenarios, shared by the criterion benches and examples/ingest_cost.rs (each
//! includes this file): the same events as bench/wrk/post_ndjson.lua and post_segment_batch.lua send.

/// An NDJSON body of 100 events (the `post_ndjson` scenario's).
pub fn ndjson_100() -> String {
    (1..=100)
        .map(|i| {
            format!(
                "{{\"event\":\"impression\",\"ad_id\":\"ad-{i:05}\",\"user_id\":\"u-8f14e45fceea167a5a36\",\"slot\":\"top-{}\",\"ts\":{}}}\n",
                i % 4,
                1_764_124_014_084u64 + i
            )
        })
        .collect()
}

/// A Segment batch of 100 track calls as segment-analytics-python sends them (the `post_segment_batch` scenario's).
pub fn segment_batch_100() -> String {
    let messages: Vec<String> = (1..=100)
        .map(|i| {
            format!(
                r#"{{"integrations": {{}}, "anonymousId": null, "properties": {{"total": {i}.5, "currency": "EUR", "sku": "sku-{i:05}"}}, "timestamp": "2026-12-02T14:37:{:02}.{i:03}+00:00", "context": {{"ip": "203.0.113.{}", "library": {{"name": "analytics-python", "version": "2.4.0"}}}}, "userId": "user-{}", "type": "track", "event": "Order Completed", "messageId": "5756802d-b09a-4dbc-ba08-{i:012}"}}"#,
                i % 60,
                i % 250,
                i % 17
            )
        })
        .collect();
    format!(
        r#"{{"batch": [{}], "sentAt": "2026-12-02T14:37:05.671623+00:00", "writeKey": "bench-key"}}"#,
        messages.join(", ")
    )
}

/// A whole POST request of `body` to `path`.
pub fn post(path: &str, content_type: &str, body: &str) -> Vec<u8> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body.as_bytes()].concat()
}

/// The 100 messages of `segment_batch_100`, one per line: the same events through plutos's own `/e`.
pub fn segment_messages_as_ndjson() -> String {
    let batch = segment_batch_100();
    let inner = &batch[batch.find('[').unwrap() + 1..batch.rfind(']').unwrap()];
    inner.split(r#"}, {"integrations""#).collect::<Vec<_>>().join("}\n{\"integrations\"") + "\n"
}
