//! `plutos verify <dir | s3://bucket/prefix | kafka://brokers/topic | --peek sqs://queue>` (Kafka: `kafka.rs`,
//! SQS: `sqs.rs`): reads what a sink
//! holds and says whether it is every event the writers numbered, once. Each NDJSON object is checked against its
//! metadata (the file sink's `.meta.json`, S3's `x-amz-meta-*`): sha256 of the bytes, a stream that decodes to
//! the end, one JSON object per line, as many lines as `events`, `last-seq - first-seq + 1 = events`, the
//! object's own key, and a key naming the same host, boot and worker (and, for the bad-row stream, lying under
//! `bad/`). A Parquet object (`OUTPUT_FORMAT=parquet`) is read whole — its sha256, every page decoded, its rows
//! counted against its footer's manifest and its metadata — and the chunks the manifest lists count as objects
//! of their own below. Then, per writer (host / boot / worker / stream: the bad rows are a writer of their own),
//! the `[first-seq, last-seq]` ranges must tile `0..` with no hole and no overlap. `source` lists the objects;
//! this file checks them and writes the report.
//!
//! Report (stdout), one finding per line, then a summary line:
//! ```text
//! object KEY: PROBLEM
//! gap HOST/BOOT/wN[/bad]: events A..=B missing (before KEY)
//! gap HOST/BOOT/wN[/bad]: events A..=B missing (KEY cannot be read)      a Parquet object its sidecar lists
//! duplicate HOST/BOOT/wN: events A..=B in KEY and KEY
//! other KEY: not a plutos object name (ignored)
//! plutos verify: N objects, E events from W writers; G gaps (M events missing), D duplicated ranges, B bad objects
//! ```
//! Exit code 1 when there is a gap or a bad object, 0 otherwise (duplicates are listed, not failed: shipping is
//! at-least-once). Events after a writer's last shipped object cannot be told from events not shipped yet.

pub mod kafka;
mod parquet;
pub mod source;
pub mod sqs;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::config::{Args, s3_bucket};
use crate::ship::object::{ObjectMeta, sha256_of};
use crate::ship::parquet::MergedMeta;
use crate::spool::encoder::decoder;
use crate::spool::{Codec, Stream};

/// A line longer than this is reported, not read on (a record is at most a request body plus its fields).
const MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;
/// Bad lines reported per object before the rest are only counted.
const LINES_SHOWN: usize = 3;

/// One object as `source` found it: its key, its metadata (or why there is none) and where its bytes are.
pub struct Found {
    pub key: String,
    pub metadata: Result<Meta, String>,
    pub data: Data,
}

/// What an object's sidecar or S3 metadata says: one chunk (NDJSON), or a Parquet object of many.
pub enum Meta {
    Chunk(ObjectMeta),
    /// From S3 without the list of chunks (S3's metadata is too small for it; the footer has it).
    Merged(MergedMeta),
}

/// An object's bytes: a file of the file sink, or an S3 object's body (at most a chunk, 64 MiB by default).
pub enum Data {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Data {
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Data::File(path) => Box::new(File::open(path)?),
            Data::Bytes(bytes) => Box::new(bytes.as_slice()),
        })
    }
}

/// The writer of an object and where its events sit in that writer's sequence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Writer {
    host: String,
    boot: String,
    worker: u16,
    stream: Stream,
}

impl std::fmt::Display for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/w{}", self.host, self.boot, self.worker)?;
        if self.stream == Stream::Bad { f.write_str("/bad") } else { Ok(()) }
    }
}

/// What `verify` found; `Display` is the report.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per finding, in the order of the format above.
    pub findings: Vec<String>,
    pub objects: u64,
    pub events: u64,
    pub writers: u64,
    pub gaps: u64,
    pub missing_events: u64,
    pub duplicates: u64,
    pub bad_objects: u64,
    /// What `objects` counts: objects (file, S3) or messages (Kafka).
    pub unit: &'static str,
}

impl Report {
    fn unit_name(&self) -> &'static str {
        if self.unit.is_empty() { "objects" } else { self.unit }
    }

    /// Exit code 1 on a gap or a bad object.
    pub fn failed(&self) -> bool {
        self.gaps > 0 || self.bad_objects > 0
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.findings {
            writeln!(f, "{line}")?;
        }
        write!(
            f,
            "plutos verify: {} {}, {} events from {} writers; {} gaps ({} events missing), {} duplicated ranges, {} \
             bad {}",
            self.objects,
            self.unit_name(),
            self.events,
            self.writers,
            self.gaps,
            self.missing_events,
            self.duplicates,
            self.bad_objects,
            self.unit_name()
        )
    }
}

/// Reads the target (a directory, or `s3://bucket/prefix` with the S3 settings in `args`) and checks it. An
/// error means the target could not be listed at all.
pub fn run(args: &Args, target: &str, peek: bool) -> Result<Report, String> {
    if let Some(queue) = sqs::parse_url(target) {
        if !peek {
            return Err("a queue is consumed, not listed: `--peek` receives its messages without deleting them \
                        (each hidden for a minute) and checks them"
                .into());
        }
        let endpoint = args.sqs_endpoint.as_deref().filter(|e| !e.is_empty());
        return sqs::verify(&queue, endpoint, args.s3_region.as_deref().filter(|r| !r.is_empty()));
    }
    if let Some((brokers, topic)) = kafka::parse_url(target) {
        let security = crate::config::kafka_security(args).map_err(|e| e.to_string())?;
        let security: Vec<(String, String)> = security.into_iter().map(|(name, value)| (name, value.0)).collect();
        return kafka::verify(brokers, topic, &security);
    }
    match source::parse_s3_url(target) {
        Some((bucket, prefix)) => {
            let config = s3_bucket(args, bucket).map_err(|e| e.to_string())?;
            Ok(verify(source::s3(&config, prefix)?))
        }
        None => {
            let objects = source::directory(Path::new(target)).map_err(|e| format!("{target}: {e}"))?;
            Ok(verify(objects))
        }
    }
}

/// Checks every object, then every writer's sequence.
pub fn verify(found: impl IntoIterator<Item = Found>) -> Report {
    let mut report = Report::default();
    let mut ranges: BTreeMap<Writer, Vec<(u64, u64, String)>> = BTreeMap::new();
    let mut others = Vec::new();
    for object in found {
        if object.key.ends_with(".parquet") {
            report.objects += 1;
            let (problems, chunks, unreadable) = parquet::check(&object);
            if !problems.is_empty() {
                report.bad_objects += 1;
                report.findings.extend(problems.iter().map(|p| format!("object {}: {p}", object.key)));
            }
            for (writer, first, last, events) in chunks {
                report.events += events;
                ranges.entry(writer).or_default().push((first, last, object.key.clone()));
            }
            // The chunks its sidecar lists and its bytes no longer hold: missing events, named.
            for (writer, first, last, events) in unreadable {
                report.gaps += 1;
                report.missing_events += events;
                report
                    .findings
                    .push(format!("gap {writer}: events {first}..={last} missing ({} cannot be read)", object.key));
                ranges.entry(writer).or_default();
            }
            continue;
        }
        let Some(codec) = Codec::from_file_name(&object.key) else {
            others.push(format!("other {}: not a plutos object name (ignored)", object.key));
            continue;
        };
        report.objects += 1;
        let problems = check_object(codec, &object);
        if !problems.is_empty() {
            report.bad_objects += 1;
            report.findings.extend(problems.iter().map(|p| format!("object {}: {p}", object.key)));
        }
        if let Ok(Meta::Chunk(m)) = object.metadata {
            report.events += m.events;
            let writer = Writer { host: m.host, boot: m.boot, worker: m.worker, stream: m.stream };
            ranges.entry(writer).or_default().push((m.first_seq, m.last_seq, object.key));
        }
    }
    report.writers = ranges.len() as u64;
    tile(ranges, &mut report);
    report.findings.extend(others);
    report
}

/// Per writer, the `[first, last]` ranges (each with the name of where it is) must tile `0..`: a hole is a gap,
/// an overlap a duplicated range.
fn tile(ranges: BTreeMap<Writer, Vec<(u64, u64, String)>>, report: &mut Report) {
    for (writer, mut objects) in ranges {
        objects.sort();
        let mut next = 0u64; // the first sequence number not covered yet
        let mut last_key: Option<&str> = None;
        for (first, last, key) in &objects {
            if *first > next {
                report.gaps += 1;
                report.missing_events += first - next;
                report.findings.push(format!("gap {writer}: events {next}..={} missing (before {key})", first - 1));
            } else if *first < next {
                report.duplicates += 1;
                let previous = last_key.unwrap_or_default();
                let end = (*last).min(next - 1);
                report.findings.push(format!("duplicate {writer}: events {first}..={end} in {previous} and {key}"));
            }
            if last.saturating_add(1) > next {
                next = last.saturating_add(1);
                last_key = Some(key);
            }
        }
    }
}

/// Every way the object disagrees with its metadata or with the record format; empty when it is sound.
fn check_object(codec: Codec, object: &Found) -> Vec<String> {
    let metadata = match &object.metadata {
        Ok(Meta::Chunk(m)) => m,
        Ok(Meta::Merged(_)) => return vec!["its metadata describes a Parquet object".into()],
        Err(why) => return vec![why.clone()],
    };
    let mut problems = Vec::new();
    if metadata.last_seq.checked_sub(metadata.first_seq).and_then(|d| d.checked_add(1)) != Some(metadata.events) {
        problems.push(format!(
            "metadata disagrees with itself: first-seq {} .. last-seq {} is not {} events",
            metadata.first_seq, metadata.last_seq, metadata.events
        ));
    }
    if metadata.key != object.key {
        problems.push(format!("metadata names the key {}", metadata.key));
    }
    if let Some(named) = writer_in_key(&object.key)
        && named != (metadata.host.as_str(), metadata.boot.as_str(), metadata.worker)
    {
        problems.push(format!(
            "key names {}/{}/w{} but metadata says {}/{}/w{}",
            named.0, named.1, named.2, metadata.host, metadata.boot, metadata.worker
        ));
    }
    if (metadata.stream == Stream::Bad) != in_bad_stream(&object.key) {
        problems.push(format!(
            "metadata says stream {} but the key is {}under bad/",
            metadata.stream.name(),
            if metadata.stream == Stream::Bad { "not " } else { "" }
        ));
    }
    let (sha256, content) = match object.data.open().and_then(sha256_of) {
        Ok((_, sha256)) => (sha256, object.data.open().and_then(|r| read_lines(codec, r))),
        Err(e) => return [problems, vec![format!("cannot be read: {e}")]].concat(),
    };
    if sha256 != metadata.sha256 {
        problems.push(format!("sha256 {sha256} differs from its metadata's {}", metadata.sha256));
    }
    match content {
        Ok(content) => {
            if let Some(e) = &content.undecodable {
                problems.push(format!("undecodable after {} complete lines: {e}", content.lines));
            }
            problems.extend(content.bad_lines.iter().cloned());
            if content.bad_line_count > LINES_SHOWN as u64 {
                problems.push(format!("{} lines in all are not JSON objects", content.bad_line_count));
            }
            if content.lines != metadata.events {
                problems.push(format!("holds {} lines, metadata says {} events", content.lines, metadata.events));
            }
        }
        Err(e) => problems.push(format!("cannot be read: {e}")),
    }
    problems
}

/// Whether the key's partition lies in a `bad/` directory (`…/bad/created_date=…`).
fn in_bad_stream(key: &str) -> bool {
    let mut parts = key.rsplit('/').skip(3);
    parts.next() == Some("bad")
}

/// `(host, boot, worker)` from a key ending in `{host}-{boot}-w{worker}-{seq:08}.ndjson…`.
fn writer_in_key(key: &str) -> Option<(&str, &str, u16)> {
    let name = key.rsplit('/').next()?;
    let stem = name.split(".ndjson").next()?;
    let mut parts = stem.rsplitn(4, '-');
    let _seq = parts.next()?;
    let worker = parts.next()?.strip_prefix('w')?.parse().ok()?;
    let boot = parts.next()?;
    let host = parts.next()?;
    Some((host, boot, worker))
}

/// What decoding an object found.
#[derive(Debug, Default)]
struct Content {
    /// Lines decoded (a last line without its `\n` counts, and is reported).
    lines: u64,
    undecodable: Option<String>,
    /// The first few problems with single lines.
    bad_lines: Vec<String>,
    bad_line_count: u64,
}

impl Content {
    fn bad_line(&mut self, problem: String) {
        self.bad_line_count += 1;
        if self.bad_lines.len() < LINES_SHOWN {
            self.bad_lines.push(problem);
        }
    }
}

/// Decodes the stream line by line (a 64 MiB chunk may hold gigabytes of records: never held whole) and checks
/// that each line is one JSON object ending in `\n`.
fn read_lines(codec: Codec, compressed: impl Read) -> io::Result<Content> {
    let mut reader = BufReader::with_capacity(256 * 1024, decoder(codec, compressed)?);
    let mut content = Content::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE_BYTES).read_until(b'\n', &mut line) {
            Ok(0) => return Ok(content),
            Ok(_) => {}
            Err(e) => {
                content.undecodable = Some(e.to_string());
                return Ok(content);
            }
        }
        content.lines += 1;
        let number = content.lines;
        let Some(record) = line.strip_suffix(b"\n") else {
            if line.len() as u64 == MAX_LINE_BYTES {
                content.bad_line(format!("line {number} is longer than {MAX_LINE_BYTES} bytes (not read on)"));
                return Ok(content);
            }
            content.bad_line(format!("line {number} ends without a newline"));
            continue;
        };
        let is_object =
            record.first() == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(record).is_ok();
        if !is_object {
            content.bad_line(format!("line {number} is not a JSON object"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Compression;
    use crate::spool::encoder::Encoder;

    /// A gzip object of worker 0 holding `lines`, with metadata that describes it truly.
    fn object(chunk: u64, first_seq: u64, lines: &[&str]) -> Found {
        let mut encoder = Encoder::new(Compression { codec: Codec::Gzip, level: 1 }).unwrap();
        for line in lines {
            encoder.write(line.as_bytes()).unwrap();
        }
        let bytes = encoder.finish().unwrap();
        let (_, sha256) = sha256_of(bytes.as_slice()).unwrap();
        let events = lines.len() as u64;
        let key = format!("created_date=2026-11-27/hour=01/my-host-b1-w0-{chunk:08}.ndjson.gz");
        let metadata = ObjectMeta {
            key: key.clone(),
            events,
            first_seq,
            last_seq: first_seq + events - 1,
            sha256,
            host: "my-host".into(),
            boot: "b1".into(),
            worker: 0,
            stream: Stream::Good,
            content_encoding: None,
        };
        Found { key, metadata: Ok(Meta::Chunk(metadata)), data: Data::Bytes(bytes) }
    }

    fn events(n: usize) -> Vec<&'static str> {
        vec!["{\"a\":1}\n"; n]
    }

    #[test]
    fn a_sound_sequence_passes_and_counts_everything() {
        let report = verify([object(0, 0, &events(3)), object(1, 3, &events(2)), object(2, 5, &events(1))]);
        assert!(!report.failed(), "{report}");
        assert!(report.findings.is_empty(), "{report}");
        assert_eq!((report.objects, report.events, report.writers), (3, 6, 1));
    }

    #[test]
    fn holes_are_gaps_including_one_at_the_start() {
        let report = verify([object(1, 3, &events(2)), object(3, 9, &events(1))]);
        assert!(report.failed());
        assert_eq!((report.gaps, report.missing_events), (2, 7), "{report}");
        assert!(report.findings[0].starts_with("gap my-host/b1/w0: events 0..=2 missing (before "), "{report}");
        assert!(report.findings[1].starts_with("gap my-host/b1/w0: events 5..=8 missing (before "), "{report}");
    }

    #[test]
    fn overlaps_are_listed_as_duplicates_without_failing() {
        // Object 7 holds events 2 and 3: the end of object 0 and the start of object 1.
        let report = verify([object(0, 0, &events(3)), object(1, 3, &events(2)), object(7, 2, &events(2))]);
        assert!(!report.failed(), "{report}");
        assert_eq!(report.duplicates, 2);
        let key = |chunk: u64| format!("created_date=2026-11-27/hour=01/my-host-b1-w0-{chunk:08}.ndjson.gz");
        assert_eq!(
            report.findings,
            [
                format!("duplicate my-host/b1/w0: events 2..=2 in {} and {}", key(0), key(7)),
                format!("duplicate my-host/b1/w0: events 3..=3 in {} and {}", key(7), key(1)),
            ]
        );
    }

    #[test]
    fn content_that_disagrees_with_its_metadata_is_a_bad_object() {
        let mut truncated = object(0, 0, &events(50));
        if let Data::Bytes(bytes) = &mut truncated.data {
            bytes.truncate(bytes.len() / 2);
        }
        let mut miscounted = object(1, 50, &events(2));
        if let Ok(Meta::Chunk(m)) = &mut miscounted.metadata {
            m.events = 3;
            m.last_seq = 52;
        }
        let mut inconsistent = object(2, 53, &events(1));
        if let Ok(Meta::Chunk(m)) = &mut inconsistent.metadata {
            m.last_seq = 60;
        }
        let mut other_writer = object(3, 54, &events(1));
        if let Ok(Meta::Chunk(m)) = &mut other_writer.metadata {
            m.worker = 1;
        }
        let not_json = object(4, 55, &["{\"a\":1}\n", "[1]\n", "{\"a\":\n", "{}"]);
        let unlabelled = Found { metadata: Err("no .meta.json sidecar".into()), ..object(5, 59, &events(1)) };
        let mut moved = object(6, 60, &events(1));
        if let Ok(Meta::Chunk(m)) = &mut moved.metadata {
            m.key = "elsewhere.ndjson.gz".into();
        }
        let report = verify([truncated, miscounted, inconsistent, other_writer, not_json, unlabelled, moved]);
        assert!(report.failed());
        assert_eq!(report.bad_objects, 7, "{report}");
        let text = report.to_string();
        for expected in [
            "-00000000.ndjson.gz: sha256 ",
            "-00000000.ndjson.gz: undecodable after ",
            "-00000001.ndjson.gz: holds 2 lines, metadata says 3 events",
            "-00000002.ndjson.gz: metadata disagrees with itself: first-seq 53 .. last-seq 60 is not 1 events",
            "-00000003.ndjson.gz: key names my-host/b1/w0 but metadata says my-host/b1/w1",
            "-00000004.ndjson.gz: line 2 is not a JSON object",
            "-00000004.ndjson.gz: line 3 is not a JSON object",
            "-00000004.ndjson.gz: line 4 ends without a newline",
            "-00000005.ndjson.gz: no .meta.json sidecar",
            "-00000006.ndjson.gz: metadata names the key elsewhere.ndjson.gz",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        assert!(!text.contains("-00000004.ndjson.gz: holds"), "4 lines for 4 events\n{text}");
    }

    /// `object` of the bad-row stream: under `bad/` unless `misplaced`.
    fn bad_object(chunk: u64, first_seq: u64, lines: &[&str], misplaced: bool) -> Found {
        let mut found = object(chunk, first_seq, lines);
        if !misplaced {
            found.key = format!("bad/{}", found.key);
        }
        if let Ok(Meta::Chunk(m)) = &mut found.metadata {
            m.key = found.key.clone();
            m.stream = Stream::Bad;
        }
        found
    }

    #[test]
    fn the_bad_stream_is_a_writer_of_its_own_under_bad() {
        // Both streams of worker 0 number from 0: neither is a duplicate of the other.
        let report = verify([
            object(0, 0, &events(3)),
            bad_object(0, 0, &events(2), false),
            bad_object(1, 2, &events(1), false),
        ]);
        assert!(!report.failed() && report.findings.is_empty(), "{report}");
        assert_eq!((report.writers, report.events), (2, 6));
        let report = verify([bad_object(0, 1, &events(1), false)]);
        assert_eq!(
            report.findings,
            [
                "gap my-host/b1/w0/bad: events 0..=0 missing (before bad/created_date=2026-11-27/hour=01/my-host-b1-w0-00000000.ndjson.gz)"
            ]
        );
        let report = verify([bad_object(0, 0, &events(1), true)]);
        assert!(report.failed(), "a bad-row object outside bad/: {report}");
        assert!(report.to_string().contains("metadata says stream bad but the key is not under bad/"), "{report}");
        assert!(in_bad_stream("p/q/bad/created_date=2026-11-27/hour=01/x.ndjson.gz"));
        assert!(
            !in_bad_stream("bad/p/created_date=2026-11-27/hour=01/x.ndjson.gz"),
            "a prefix named bad is not the stream"
        );
    }

    #[test]
    fn keys_that_are_not_objects_are_listed_and_ignored() {
        let stray = Found { key: "prefix/_plutos_write_check".into(), ..object(0, 0, &events(1)) };
        let report = verify([object(0, 0, &events(1)), stray]);
        assert!(!report.failed(), "{report}");
        assert_eq!(report.objects, 1);
        assert_eq!(report.findings, ["other prefix/_plutos_write_check: not a plutos object name (ignored)"]);
    }

    #[test]
    fn writer_and_s3_urls_are_parsed() {
        assert_eq!(writer_in_key("p/x=1/a-b-c-0123-w12-00000007.ndjson.zst"), Some(("a-b-c", "0123", 12)));
        assert_eq!(writer_in_key("nothing.ndjson"), None);
        assert_eq!(source::parse_s3_url("s3://bucket/a/b/"), Some(("bucket", "a/b")));
        assert_eq!(source::parse_s3_url("s3://bucket"), Some(("bucket", "")));
        assert_eq!(source::parse_s3_url("s3:///x"), None);
        assert_eq!(source::parse_s3_url("./data/out"), None);
    }
}
