//! What a record line says as a Kafka message: its `protocol` header and its key, read from the line itself
//! (the record's own fields come after `raw_data`, so the last occurrence is theirs).

use crate::config::KafkaKey;

/// The record's own `protocol` (the last `,"protocol":"` of the line: the fields after it are strings or
/// numbers, in which that text cannot appear unescaped).
pub(in crate::ship) fn record_protocol(line: &[u8]) -> Option<&str> {
    // The searcher is built once: building it per line was a visible share of producing a message.
    static PROTOCOL: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(b",\"protocol\":\""));
    let at = PROTOCOL.rfind(line)? + 13;
    let end = at + memchr::memchr(b'"', &line[at..])?;
    std::str::from_utf8(&line[at..end]).ok()
}

/// The message key of `line` into `key`; false when it has none.
pub(super) fn message_key(spec: &KafkaKey, line: &[u8], key: &mut Vec<u8>) -> bool {
    key.clear();
    match spec {
        KafkaKey::None => false,
        KafkaKey::EventId => {
            // Like `protocol`: the record's own `event_id` is the last one.
            static EVENT_ID: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
                std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(b",\"event_id\":\""));
            let Some(at) = EVENT_ID.rfind(line) else { return false };
            let at = at + 13;
            let Some(len) = memchr::memchr(b'"', &line[at..]) else { return false };
            key.extend_from_slice(&line[at..at + len]);
            true
        }
        KafkaKey::Field(path) => {
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else { return false };
            let value = path.iter().try_fold(&record["raw_data"], |v, part| v.get(part));
            match value {
                Some(serde_json::Value::String(s)) => key.extend_from_slice(s.as_bytes()),
                Some(serde_json::Value::Null) | None => return false,
                Some(other) => key.extend_from_slice(other.to_string().as_bytes()),
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = br#"{"raw_data":{"protocol":"x","user":{"id":7}},"ip":"","path":"/e","protocol":"segment","event_id":"m-1","event_name":"a\"protocol\":\"b","visitor_id":null}"#;

    #[test]
    fn the_records_own_protocol_and_event_id_are_found_after_raw_datas() {
        assert_eq!(record_protocol(LINE), Some("segment"));
        let mut key = Vec::new();
        assert!(message_key(&KafkaKey::EventId, LINE, &mut key));
        assert_eq!(key, b"m-1");
        assert!(message_key(&KafkaKey::Field(vec!["user".into(), "id".into()]), LINE, &mut key));
        assert_eq!(key, b"7");
        assert!(!message_key(&KafkaKey::Field(vec!["missing".into()]), LINE, &mut key));
        assert!(!message_key(&KafkaKey::None, LINE, &mut key));
    }
}
