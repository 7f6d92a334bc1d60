//! Parquet objects read back with the `parquet` crate's own reader, each row turned into the JSON record (or bad
//! row) it was made from: times in the record's RFC 3339 form, the UUID hyphenated, JSON columns parsed, and a
//! null member of a struct left out (the record writes only the members it has), so a row compares equal to its
//! NDJSON line.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType, UInt32Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};

use super::collect_files;

/// The rows of every `.parquet` object under `root`, with each object's relative key: (good, bad).
pub fn read_parquet_streams(root: &Path) -> (Vec<Value>, Vec<Value>) {
    let mut files = Vec::new();
    collect_files(root, &mut files);
    files.sort();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for path in files.iter().filter(|p| p.to_string_lossy().ends_with(".parquet")) {
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let rows = read_rows(path);
        if rel.starts_with("bad/") || rel.contains("/bad/") { bad.extend(rows) } else { good.extend(rows) }
    }
    (good, bad)
}

/// Every row of one object.
pub fn read_rows(path: &Path) -> Vec<Value> {
    rows_of(std::fs::read(path).unwrap())
}

/// Every row of one object's bytes.
pub fn rows_of(bytes: Vec<u8>) -> Vec<Value> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap().build().unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        rows.extend(batch_rows(&batch.unwrap()));
    }
    rows
}

fn batch_rows(batch: &RecordBatch) -> Vec<Value> {
    (0..batch.num_rows())
        .map(|row| {
            let mut object = Map::new();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                object.insert(field.name().clone(), value(field, column, row));
            }
            Value::Object(object)
        })
        .collect()
}

fn is_json(field: &Field) -> bool {
    field.metadata().get("ARROW:extension:name").is_some_and(|n| n == "arrow.json")
}

fn value(field: &Field, column: &ArrayRef, row: usize) -> Value {
    if column.is_null(row) {
        return Value::Null;
    }
    match column.data_type() {
        DataType::Utf8 if is_json(field) => serde_json::from_str(column.as_string::<i32>().value(row)).unwrap(),
        DataType::Utf8 => Value::String(column.as_string::<i32>().value(row).to_string()),
        DataType::Boolean => Value::Bool(column.as_boolean().value(row)),
        DataType::UInt32 => Value::from(column.as_primitive::<UInt32Type>().value(row)),
        DataType::Float64 => Value::from(column.as_primitive::<Float64Type>().value(row)),
        DataType::Timestamp(_, _) => {
            Value::String(rfc3339(column.as_primitive::<TimestampMicrosecondType>().value(row)))
        }
        DataType::FixedSizeBinary(16) => Value::String(uuid(column.as_fixed_size_binary().value(row))),
        DataType::Struct(fields) => {
            let array = column.as_struct();
            let mut object = Map::new();
            for (field, child) in fields.iter().zip(array.columns()) {
                let member = value(field, child, row);
                if !member.is_null() {
                    object.insert(field.name().clone(), member);
                }
            }
            Value::Object(object)
        }
        DataType::Map(_, _) => {
            let entries = column.as_map().value(row);
            let (keys, values) = (entries.column(0).as_string::<i32>(), entries.column(1).as_string::<i32>());
            let mut object = Map::new();
            for i in 0..entries.len() {
                let value = if values.is_null(i) { Value::Null } else { Value::String(values.value(i).to_string()) };
                object.insert(keys.value(i).to_string(), value);
            }
            Value::Object(object)
        }
        other => panic!("{}: a column type the schema does not have: {other}", field.name()),
    }
}

/// Unix microseconds as the record writes them: `2026-12-06T18:00:00.123456Z`.
fn rfc3339(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let civil = plutos::event::clock::Civil::from_unix(secs);
    let partition = civil.partition(); // created_date=YYYY-MM-DD/hour=HH
    let date = &partition["created_date=".len().."created_date=".len() + 10];
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{date}T{:02}:{:02}:{:02}.{:06}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        micros.rem_euclid(1_000_000)
    )
}

fn uuid(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A record with the fields only some configurations write (`geo`, `agent`, `bot`, `bot_match`, `headers`)
/// left out when null: a Parquet row has their columns always.
pub fn without_absent(mut record: Value) -> Value {
    if let Some(object) = record.as_object_mut() {
        for name in ["geo", "agent", "bot", "bot_match", "headers"] {
            if object.get(name).is_some_and(Value::is_null) {
                object.remove(name);
            }
        }
    }
    record
}
