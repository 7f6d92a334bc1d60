//! The Kafka sink's part of the configuration: brokers, topic, key, compression, the producer settings an
//! operator tunes, SASL and TLS, and the `KAFKA_PRODUCER_*` passthrough to librdkafka — without the properties
//! plutos owns, because its delivery promise rests on them.

use std::path::PathBuf;

use super::args::Args;
use super::edge::Secret;
use super::{ConfigError, invalid};

/// librdkafka properties plutos sets itself and refuses from `KAFKA_PRODUCER_*`: the idempotent, acks=all
/// producer with a finite timeout is what lets a chunk leave the spool only once every event is acknowledged.
pub const OWNED_PROPERTIES: [&str; 10] = [
    "bootstrap.servers",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "max.in.flight.requests.per.connection",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "compression.type",
    "compression.codec",
    "message.max.bytes",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KafkaCompression {
    None,
    Gzip,
    Lz4,
    Zstd,
}

impl KafkaCompression {
    pub fn name(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

/// Each message's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaKey {
    None,
    /// The record's `event_id`.
    EventId,
    /// A member of `raw_data`, by its path (`user.id`: `raw_data.user.id`); a message without it has no key.
    Field(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    pub brokers: String,
    pub topic: String,
    /// Where the bad stream's rows go.
    pub bad_topic: String,
    pub key: KafkaKey,
    pub compression: KafkaCompression,
    pub linger_ms: u64,
    pub message_max_bytes: u64,
    /// Messages of one chunk produced and not acknowledged yet, at most; also what a chunk's progress mark
    /// moves by at least, so it bounds the repeats after a crash.
    pub max_in_flight: u64,
    /// `security.protocol`, `sasl.*` and `ssl.*` properties from the SASL and TLS settings.
    pub security: Vec<(String, Secret)>,
    /// `KAFKA_PRODUCER_*`: other librdkafka properties, as given.
    pub passthrough: Vec<(String, String)>,
}

pub(super) fn kafka(args: &Args) -> Result<KafkaConfig, ConfigError> {
    let required = |value: &Option<String>, setting: &'static str| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .ok_or_else(|| invalid(setting, "required with DRIVER=kafka"))
    };
    let brokers = required(&args.kafka_brokers, "KAFKA_BROKERS (--kafka-brokers)")?;
    let topic = required(&args.kafka_topic, "KAFKA_TOPIC (--kafka-topic)")?;
    let bad_topic = match args.kafka_bad_topic.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(bad) => bad.to_string(),
        None => format!("{topic}-bad"),
    };
    let topic_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    for (setting, topic) in
        [("KAFKA_TOPIC (--kafka-topic)", &topic), ("KAFKA_BAD_TOPIC (--kafka-bad-topic)", &bad_topic)]
    {
        if topic.len() > 249 || !topic.chars().all(topic_char) {
            return Err(invalid(setting, format!("{topic:?} is not a Kafka topic name")));
        }
    }
    if bad_topic == topic {
        return Err(invalid("KAFKA_BAD_TOPIC (--kafka-bad-topic)", "must differ from KAFKA_TOPIC"));
    }
    let key = match args.kafka_key.trim() {
        "" | "none" => KafkaKey::None,
        "event_id" => KafkaKey::EventId,
        path if path.split('.').all(|part| !part.is_empty()) => {
            KafkaKey::Field(path.split('.').map(String::from).collect())
        }
        path => return Err(invalid("KAFKA_KEY (--kafka-key)", format!("{path:?}: none, event_id or a field path"))),
    };
    if args.kafka_message_max_bytes < 1024 || args.kafka_message_max_bytes > 1_000_000_000 {
        return Err(invalid("KAFKA_MESSAGE_MAX_BYTES (--kafka-message-max-bytes)", "between 1KiB and 1000000000"));
    }
    Ok(KafkaConfig {
        brokers,
        topic,
        bad_topic,
        key,
        compression: args.kafka_compression,
        linger_ms: args.kafka_linger_ms,
        message_max_bytes: args.kafka_message_max_bytes,
        max_in_flight: args.kafka_max_in_flight,
        security: security(args)?,
        passthrough: passthrough(&args.kafka_producer, &args.kafka_producer_env)?,
    })
}

/// `security.protocol` and its `sasl.*` / `ssl.*` properties (also what `plutos verify kafka://` connects with).
pub fn security(args: &Args) -> Result<Vec<(String, Secret)>, ConfigError> {
    let mut properties = Vec::new();
    let mut set = |name: &str, value: &str| properties.push((name.to_string(), Secret(value.to_string())));
    let sasl = match args.kafka_sasl_mechanism.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        None => false,
        Some(mechanism @ ("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512")) => {
            let (Some(user), Some(password)) = (&args.kafka_sasl_username, &args.kafka_sasl_password) else {
                return Err(invalid(
                    "KAFKA_SASL_MECHANISM (--kafka-sasl-mechanism)",
                    "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
                ));
            };
            set("sasl.mechanism", mechanism);
            set("sasl.username", user);
            set("sasl.password", password);
            true
        }
        Some(other) => {
            return Err(invalid(
                "KAFKA_SASL_MECHANISM (--kafka-sasl-mechanism)",
                format!("{other:?}: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
            ));
        }
    };
    let tls = args.kafka_tls || args.kafka_tls_ca.is_some() || args.kafka_tls_cert.is_some();
    let protocol = match (sasl, tls) {
        (false, false) => "plaintext",
        (false, true) => "ssl",
        (true, false) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    set("security.protocol", protocol);
    let path = |p: &PathBuf| p.display().to_string();
    if let Some(ca) = &args.kafka_tls_ca {
        set("ssl.ca.location", &path(ca));
    }
    match (&args.kafka_tls_cert, &args.kafka_tls_key) {
        (Some(cert), Some(key)) => {
            set("ssl.certificate.location", &path(cert));
            set("ssl.key.location", &path(key));
        }
        (None, None) => {}
        _ => return Err(invalid("KAFKA_TLS_CERT (--kafka-tls-cert)", "KAFKA_TLS_CERT and KAFKA_TLS_KEY go together")),
    }
    Ok(properties)
}

/// The librdkafka properties given by flag (`--kafka-producer batch.num.messages=10000`) and by variable
/// (`KAFKA_PRODUCER_BATCH_NUM_MESSAGES=10000` → `batch.num.messages=10000`; a flag wins); the owned properties
/// and the security ones (they have their own settings) are refused.
fn passthrough(flags: &[String], vars: &[(String, String)]) -> Result<Vec<(String, String)>, ConfigError> {
    let mut properties: Vec<(String, String, String)> = Vec::new();
    for given in flags {
        let Some((property, value)) = given.split_once('=') else {
            return Err(invalid("--kafka-producer", format!("{given:?}: PROPERTY=VALUE")));
        };
        properties.push((property.trim().to_string(), value.to_string(), format!("--kafka-producer {given}")));
    }
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("KAFKA_PRODUCER_") else { continue };
        let property = rest.to_ascii_lowercase().replace('_', ".");
        if !properties.iter().any(|(given, _, _)| *given == property) {
            properties.push((property, value.clone(), name.clone()));
        }
    }
    let mut checked = Vec::new();
    for (property, value, source) in properties {
        let security = ["security.", "sasl.", "ssl."].iter().any(|p| property.starts_with(p));
        if OWNED_PROPERTIES.contains(&property.as_str()) || security {
            return Err(invalid(
                "KAFKA_PRODUCER_*",
                format!("{source} sets {property}, which plutos owns (README \"Kafka\")"),
            ));
        }
        checked.push((property, value));
    }
    checked.sort();
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_names_map_to_properties_and_owned_ones_are_refused() {
        let vars =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let given = vars(&[("KAFKA_PRODUCER_BATCH_NUM_MESSAGES", "5000"), ("KAFKA_PRODUCER_LINGER_MS", "7")]);
        let flags = ["linger.ms=9".to_string()];
        assert_eq!(
            passthrough(&flags, &given).unwrap(),
            [("batch.num.messages".to_string(), "5000".to_string()), ("linger.ms".to_string(), "9".to_string())],
            "a flag wins over its variable"
        );
        for owned in ["KAFKA_PRODUCER_ACKS", "KAFKA_PRODUCER_ENABLE_IDEMPOTENCE", "KAFKA_PRODUCER_SASL_PASSWORD"] {
            let error = passthrough(&[], &vars(&[(owned, "x")])).unwrap_err().to_string();
            assert!(error.contains(owned) && error.contains("owns"), "{error}");
        }
        let error = passthrough(&["acks=1".to_string()], &[]).unwrap_err().to_string();
        assert!(error.contains("--kafka-producer acks=1") && error.contains("owns"), "{error}");
        assert!(passthrough(&["no-equals".to_string()], &[]).is_err());
    }

    #[test]
    fn the_environment_reaches_the_kafka_settings_only_through_args() {
        use clap::Parser;
        let argv = ["plutos", "--driver", "kafka", "--kafka-brokers", "b:9092", "--kafka-topic", "t"];
        let env = [("KAFKA_PRODUCER_BATCH_SIZE".to_string(), "100".to_string()), ("HOME".into(), "/root".into())];
        let args = Args::try_parse_from(argv).unwrap().with_environment(env.into_iter());
        assert_eq!(kafka(&args).unwrap().passthrough, [("batch.size".to_string(), "100".to_string())]);
        let args = Args::try_parse_from(argv).unwrap();
        assert!(kafka(&args).unwrap().passthrough.is_empty(), "nothing read behind the caller's back");
    }
}
