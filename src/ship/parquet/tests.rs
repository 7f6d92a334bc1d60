use std::fs;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType, UInt32Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::spool::Compression;
use crate::spool::encoder::Encoder;

const FULL: &str = r#"{"raw_data":{"a":[1,2],"b":"x"},"written_at":"2026-12-06T18:00:00.123456Z","request_id":"01936f4e-8a3b-7c1d-9e2f-0a1b2c3d4e5f","ip":"81.2.69.160","user_agent":"Mozilla/5.0","geo":{"country":"GB","region":"ENG","city":"London","tz":"Europe/London","as_org":"Andrews & Arnold","lat":51.5142,"lon":-0.0931,"asn":20712},"agent":{"browser":"Chrome","browser_version":"120.0.6099","os":"Windows","os_version":"10"},"bot":false,"bot_match":null,"method":"POST","path":"/v1/batch","transport":"https","headers":{"x-team":"a\"b"},"protocol":"segment","event_id":"m-1","event_type":"track","event_name":"Order Completed","schema":null,"validation":null,"user_id":"42","anonymous_id":"anon","client_ts":"2026-12-06T17:59:59Z","sent_at":"2026-12-06T18:00:00Z","timestamp":"2026-12-06T17:59:59.123456Z","retry_count":2,"visitor_id":"v-1"}"#;
const BARE: &str = r#"{"raw_data":{"test":"me"},"written_at":"2026-12-06T18:00:01.000001Z","request_id":"01936f4e-8a3b-7c1d-9e2f-0a1b2c3d4e60","ip":"127.0.0.1","user_agent":"curl/8.5.0","method":"GET","path":"/e","transport":"http","protocol":"plutos","event_id":"01936f4e-8a3b-7c1d-9e2f-0a1b2c3d4e60","event_type":null,"event_name":null,"schema":"iglu:com.acme/x/jsonschema/1-0-0","validation":[{"error":"ValidationError"}],"user_id":null,"anonymous_id":null,"client_ts":null,"sent_at":null,"timestamp":"2026-12-06T18:00:01.000001Z","retry_count":null,"visitor_id":null}"#;
const BAD_ROW: &str = r#"{"schema":"iglu:com.snowplowanalytics.snowplow.badrows/size_violation/jsonschema/1-0-0","data":{"processor":{"artifact":"plutos","version":"0.1.0"},"failure":{"timestamp":"2026-12-06T18:00:02.5Z","maximumAllowedSizeBytes":1,"actualSizeBytes":2,"expectation":"x"},"payload":"p"}}"#;

fn config() -> ParquetConfig {
    ParquetConfig { target_bytes: 1 << 20, row_group_bytes: 1 << 20, zstd_level: 3 }
}

fn gzip(lines: &[&str]) -> Vec<u8> {
    let mut encoder = Encoder::new(Compression { codec: Codec::Gzip, level: 1 }).unwrap();
    for line in lines {
        encoder.write(format!("{line}\n").as_bytes()).unwrap();
    }
    encoder.finish().unwrap()
}

fn manifest(stream: Stream, events: u64) -> Manifest {
    Manifest { key: "k.parquet".into(), host: "h".into(), stream, events, chunks: Vec::new() }
}

/// Writes `chunks` (each a list of lines) into one object; returns its bytes.
fn object(stream: Stream, chunks: &[&[&str]]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.parquet");
    let mut writer = ObjectWriter::create(&path, stream, &config()).unwrap();
    for lines in chunks {
        let appended = writer.append(gzip(lines).as_slice(), Codec::Gzip).unwrap();
        assert_eq!(appended.lines, lines.len() as u64);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(appended.bytes, text.len() as u64);
        assert_eq!(appended.sha256, crate::ship::object::sha256_of(text.as_bytes()).unwrap().1);
    }
    let events = writer.events;
    writer.finish(&manifest(stream, events)).unwrap();
    fs::read(path).unwrap()
}

fn batches(bytes: Vec<u8>) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow_select_concat(&batches)
}

/// The rows of a test object fit one batch.
fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    assert_eq!(batches.len(), 1, "one batch");
    batches[0].clone()
}

#[test]
fn every_field_lands_in_its_typed_column() {
    let batch = batches(object(Stream::Good, &[&[FULL], &[BARE]]));
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.schema().fields().len(), 26, "21 record fields + geo, agent, bot, bot_match, headers");
    let text = |name: &str, row: usize| {
        let column = batch.column_by_name(name).unwrap().as_string::<i32>();
        column.is_valid(row).then(|| column.value(row).to_string())
    };
    assert_eq!(text("raw_data", 0).as_deref(), Some(r#"{"a":[1,2],"b":"x"}"#));
    assert_eq!(text("event_name", 0).as_deref(), Some("Order Completed"));
    assert_eq!(text("schema", 0), None);
    assert_eq!(text("validation", 1).as_deref(), Some(r#"[{"error":"ValidationError"}]"#));
    let times = batch.column_by_name("written_at").unwrap().as_primitive::<TimestampMicrosecondType>();
    assert_eq!(times.value(0), 1_796_580_000_123_456);
    let timestamp = batch.column_by_name("timestamp").unwrap().as_primitive::<TimestampMicrosecondType>();
    assert_eq!(timestamp.value(0), 1_796_579_999_123_456);
    let ids = batch.column_by_name("request_id").unwrap().as_fixed_size_binary();
    assert_eq!(
        ids.value(0),
        [0x01, 0x93, 0x6f, 0x4e, 0x8a, 0x3b, 0x7c, 0x1d, 0x9e, 0x2f, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]
    );
    let retries = batch.column_by_name("retry_count").unwrap().as_primitive::<UInt32Type>();
    assert_eq!((retries.value(0), retries.is_null(1)), (2, true));
    let geo = batch.column_by_name("geo").unwrap().as_struct();
    assert!(geo.is_valid(0) && geo.is_null(1));
    assert_eq!(geo.column_by_name("city").unwrap().as_string::<i32>().value(0), "London");
    assert_eq!(geo.column_by_name("lat").unwrap().as_primitive::<Float64Type>().value(0), 51.5142);
    assert_eq!(geo.column_by_name("asn").unwrap().as_primitive::<UInt32Type>().value(0), 20712);
    let agent = batch.column_by_name("agent").unwrap().as_struct();
    assert_eq!(agent.column_by_name("os_version").unwrap().as_string::<i32>().value(0), "10");
    assert!(agent.column_by_name("device").unwrap().is_null(0));
    let headers = batch.column_by_name("headers").unwrap().as_map();
    assert!(headers.is_valid(0) && headers.is_null(1));
    let entry = headers.value(0);
    assert_eq!(entry.column(1).as_string::<i32>().value(0), "a\"b", "escapes decoded");
    let bots = batch.column_by_name("bot").unwrap().as_boolean();
    assert!(!bots.value(0) && bots.is_null(1));
}

#[test]
fn bad_rows_keep_their_schema_time_and_whole_row() {
    let batch = batches(object(Stream::Bad, &[&[BAD_ROW]]));
    let schema = batch.column_by_name("schema").unwrap().as_string::<i32>();
    assert!(schema.value(0).contains("size_violation"));
    let time = batch.column_by_name("timestamp").unwrap().as_primitive::<TimestampMicrosecondType>();
    assert_eq!(time.value(0), 1_796_580_002_500_000);
    let data = batch.column_by_name("data").unwrap().as_string::<i32>();
    assert!(data.value(0).starts_with(r#"{"processor":"#));
}

#[test]
fn an_object_is_a_function_of_its_chunks_and_carries_its_manifest() {
    let first = object(Stream::Good, &[&[FULL, BARE], &[BARE]]);
    assert_eq!(first, object(Stream::Good, &[&[FULL, BARE], &[BARE]]), "same chunks, same bytes");
    let back = read_back(bytes::Bytes::from(first)).unwrap();
    assert_eq!(back.rows, 3);
    assert_eq!(back.manifest, manifest(Stream::Good, 3));
    let mut damaged = object(Stream::Good, &[&[FULL; 40]]);
    let middle = damaged.len() / 2;
    damaged[middle..middle + 16].fill(0xff);
    assert!(read_back(bytes::Bytes::from(damaged)).is_err(), "a damaged page is found");
}

#[test]
fn a_line_that_is_not_a_record_makes_the_chunk_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    for lines in [
        vec![BARE, "{\"raw_data\":1}"],
        vec![&BARE.replace("\"visitor_id\":null", "\"visitor_id\":null,\"new_field\":1")],
        vec![&BARE.replace("01936f4e-8a3b-7c1d-9e2f-0a1b2c3d4e60\",\"ip", "not-a-uuid\",\"ip")],
        vec!["not json"],
    ] {
        let mut writer = ObjectWriter::create(&dir.path().join("o.parquet"), Stream::Good, &config()).unwrap();
        let lines: Vec<&str> = lines.iter().map(|l| l.as_ref()).collect();
        let result = writer.append(gzip(&lines).as_slice(), Codec::Gzip);
        assert!(matches!(result, Err(AppendError::Corrupt(_))), "{lines:?}: {result:?}");
    }
    let mut writer = ObjectWriter::create(&dir.path().join("o.parquet"), Stream::Good, &config()).unwrap();
    let mut cut = gzip(&[BARE; 20]);
    cut.truncate(cut.len() / 2);
    assert!(matches!(writer.append(cut.as_slice(), Codec::Gzip), Err(AppendError::Corrupt(_))));
}
