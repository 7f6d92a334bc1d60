//! `plutos verify kafka://BROKERS/TOPIC`: reads every partition of the topic directly (no consumer group: each
//! partition assigned from its start, read to librdkafka's end-of-partition) and checks each message: a payload
//! that is one JSON object, and the `host`, `boot`, `worker` and `seq` headers that name its event. Then, per
//! writer, the sequence numbers must tile `0..` without a hole; repeats (a chunk produced again after a failure)
//! are listed as duplicated ranges, not failed.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{Report, Writer, tile};
use crate::spool::Stream;

/// How long the whole read may take before the topic is reported unreadable.
const READ_DEADLINE: Duration = Duration::from_secs(600);

/// `kafka://BROKERS/TOPIC` → (brokers, topic).
pub fn parse_url(url: &str) -> Option<(&str, &str)> {
    let (brokers, topic) = url.strip_prefix("kafka://")?.split_once('/')?;
    let topic = topic.trim_matches('/');
    (!brokers.is_empty() && !topic.is_empty()).then_some((brokers, topic))
}

/// Reads the topic and checks it; `security`: the `security.protocol` / `sasl.*` / `ssl.*` properties.
pub fn verify(brokers: &str, topic: &str, security: &[(String, String)]) -> Result<Report, String> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", "plutos-verify")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    for (name, value) in security {
        config.set(name, value);
    }
    let consumer: BaseConsumer = config.create().map_err(|e| format!("kafka {brokers}: {e}"))?;
    let metadata =
        consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(|e| format!("kafka {brokers}: {e}"))?;
    let partitions: Vec<i32> = match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => t.partitions().iter().map(|p| p.id()).collect(),
        _ => return Err(format!("kafka topic {topic} does not exist on {brokers}")),
    };
    let mut list = TopicPartitionList::new();
    for &partition in &partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning).map_err(|e| e.to_string())?;
    }
    consumer.assign(&list).map_err(|e| e.to_string())?;

    let mut messages = Messages::default();
    let mut ended = HashSet::new();
    let start = Instant::now();
    while ended.len() < partitions.len() {
        if start.elapsed() > READ_DEADLINE {
            return Err(format!(
                "{topic}: {} of {} partitions read to their end in time",
                ended.len(),
                partitions.len()
            ));
        }
        let message = match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Ok(message)) => message,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ended.insert(partition);
                continue;
            }
            Some(Err(e)) => return Err(format!("reading {topic}: {e}")),
        };
        messages.add(format!("{}@{}", message.partition(), message.offset()), check(&message));
    }
    Ok(messages.report())
}

/// The messages of a topic or a queue as they are read: each writer's sequence numbers, and the bad messages.
#[derive(Default)]
pub(super) struct Messages {
    report: Report,
    seqs: BTreeMap<Writer, Vec<(u64, String)>>,
}

impl Messages {
    /// One message at `place`: its writer and sequence number, or what is wrong with it.
    pub(super) fn add(&mut self, place: String, checked: Result<(Writer, u64), String>) {
        self.report.objects += 1;
        match checked {
            Ok((writer, seq)) => {
                self.report.events += 1;
                self.seqs.entry(writer).or_default().push((seq, place));
            }
            Err(problem) => {
                self.report.bad_objects += 1;
                self.report.findings.push(format!("message {place}: {problem}"));
            }
        }
    }

    /// Each writer's sequence tiled.
    pub(super) fn report(self) -> Report {
        let mut report = self.report;
        let ranges = writer_ranges(self.seqs, &mut report);
        report.writers = ranges.len() as u64;
        tile(ranges, &mut report);
        report.unit = "messages";
        report
    }
}

/// Whether a message's payload is one JSON object on one line.
pub(super) fn one_json_object(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok()
        && !payload.contains(&b'\n')
}

/// Each writer's distinct sequence numbers as contiguous ranges (named by their first message), with the
/// repeats reported as duplicated ranges.
pub(super) fn writer_ranges(
    seqs: BTreeMap<Writer, Vec<(u64, String)>>,
    report: &mut Report,
) -> BTreeMap<Writer, Vec<(u64, u64, String)>> {
    let mut ranges = BTreeMap::new();
    for (writer, mut numbers) in seqs {
        numbers.sort();
        let mut runs: Vec<(u64, u64, String)> = Vec::new();
        let mut repeated: Option<(u64, u64)> = None;
        for (seq, place) in numbers {
            match runs.last_mut() {
                Some((_, last, _)) if seq == *last => {
                    repeated = match repeated {
                        Some((first, end)) if end + 1 == seq => Some((first, seq)),
                        other => {
                            flush_repeat(report, &writer, other);
                            Some((seq, seq))
                        }
                    };
                }
                Some((_, last, _)) if seq == *last + 1 => *last = seq,
                _ => runs.push((seq, seq, place)),
            }
        }
        flush_repeat(report, &writer, repeated);
        ranges.insert(writer, runs);
    }
    ranges
}

fn flush_repeat(report: &mut Report, writer: &Writer, repeated: Option<(u64, u64)>) {
    if let Some((first, last)) = repeated {
        report.duplicates += 1;
        report.findings.push(format!("duplicate {writer}: events {first}..={last} produced more than once"));
    }
}

/// A message's writer and sequence number, or what is wrong with it.
fn check(message: &BorrowedMessage<'_>) -> Result<(Writer, u64), String> {
    let header = |name: &str| -> Result<String, String> {
        let headers = message.headers().ok_or("no headers")?;
        let value = headers.iter().find(|h| h.key == name).and_then(|h| h.value).ok_or(format!("no {name} header"))?;
        String::from_utf8(value.to_vec()).map_err(|_| format!("{name} header is not UTF-8"))
    };
    let worker = header("worker")?.parse().map_err(|_| "worker header is not a number")?;
    let seq = header("seq")?.parse().map_err(|_| "seq header is not a number")?;
    // A topic holds one stream: its writers are told apart by host, boot and worker.
    let writer = Writer { host: header("host")?, boot: header("boot")?, worker, stream: Stream::Good };
    let payload = message.payload().ok_or("no payload")?;
    if !one_json_object(payload) {
        return Err("payload is not one JSON object".into());
    }
    Ok((writer, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_duplicated_ranges_and_holes_are_gaps() {
        let writer = Writer { host: "h".into(), boot: "b".into(), worker: 0, stream: Stream::Good };
        let numbers = [0, 1, 1, 2, 2, 3, 5, 6, 6].iter().enumerate().map(|(i, &s)| (s, format!("0@{i}"))).collect();
        let mut report = Report::default();
        let ranges = writer_ranges(BTreeMap::from([(writer.clone(), numbers)]), &mut report);
        assert_eq!(ranges[&writer], [(0, 3, "0@0".to_string()), (5, 6, "0@6".to_string())]);
        tile(ranges, &mut report);
        assert_eq!(
            report.findings,
            [
                "duplicate h/b/w0: events 1..=2 produced more than once",
                "duplicate h/b/w0: events 6..=6 produced more than once",
                "gap h/b/w0: events 4..=4 missing (before 0@6)",
            ]
        );
        assert_eq!((report.gaps, report.missing_events, report.duplicates), (1, 1, 2));
        assert_eq!(parse_url("kafka://a:9092,b:9092/events"), Some(("a:9092,b:9092", "events")));
        assert_eq!(parse_url("kafka://a:9092/"), None);
    }
}
