//! OTLP's JSON mapping of an export (OTLP/HTTP with `application/json`), read into the same Protobuf types the
//! binary form decodes to. It is Protobuf's JSON mapping with OTLP's differences: `traceId` and `spanId` are hex,
//! not base64; enums are integers; field names are lowerCamelCase (the original snake_case names are taken
//! too, as receivers should); 64-bit integers may be strings or numbers; unknown fields are ignored.

use base64::Engine;
use serde_json::{Map, Value};

use crate::grpc::proto::otlp::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList, LogRecord, Resource,
    ResourceLogs, ScopeLogs, any_value,
};
use crate::http::HttpError;

const INVALID: HttpError = HttpError::BadRequest("not an OTLP ExportLogsServiceRequest in JSON");

pub fn request(body: &[u8]) -> Result<ExportLogsServiceRequest, HttpError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| HttpError::BadRequest("invalid JSON"))?;
    let object = value.as_object().ok_or(INVALID)?;
    Ok(ExportLogsServiceRequest { resource_logs: list(object, "resourceLogs", "resource_logs", resource_logs)? })
}

/// The member `camel` (or `snake`) of `object`; absent or null is `None`.
fn member<'a>(object: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    object.get(camel).or_else(|| object.get(snake)).filter(|v| !v.is_null())
}

fn list<T>(
    object: &Map<String, Value>,
    camel: &str,
    snake: &str,
    each: impl Fn(&Map<String, Value>) -> Result<T, HttpError>,
) -> Result<Vec<T>, HttpError> {
    match member(object, camel, snake) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|item| each(item.as_object().ok_or(INVALID)?)).collect(),
        Some(_) => Err(INVALID),
    }
}

fn text(object: &Map<String, Value>, camel: &str, snake: &str) -> Result<String, HttpError> {
    match member(object, camel, snake) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(INVALID),
    }
}

/// A 64-bit (or narrower) unsigned integer: a number or a decimal string.
fn unsigned(object: &Map<String, Value>, camel: &str, snake: &str) -> Result<u64, HttpError> {
    match member(object, camel, snake) {
        None => Ok(0),
        Some(Value::Number(n)) => n.as_u64().ok_or(INVALID),
        Some(Value::String(s)) => s.parse().map_err(|_| INVALID),
        Some(_) => Err(INVALID),
    }
}

fn signed(value: &Value) -> Result<i64, HttpError> {
    match value {
        Value::Number(n) => n.as_i64().ok_or(INVALID),
        Value::String(s) => s.parse().map_err(|_| INVALID),
        _ => Err(INVALID),
    }
}

/// Hex (`traceId`, `spanId`): an even number of hex digits, empty allowed.
fn hex(object: &Map<String, Value>, camel: &str, snake: &str) -> Result<Vec<u8>, HttpError> {
    let text = text(object, camel, snake)?;
    if text.len() % 2 != 0 {
        return Err(INVALID);
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or(INVALID)?, 16).map_err(|_| INVALID))
        .collect()
}

fn resource_logs(object: &Map<String, Value>) -> Result<ResourceLogs, HttpError> {
    let resource = match member(object, "resource", "resource") {
        Some(Value::Object(resource)) => Some(Resource {
            attributes: list(resource, "attributes", "attributes", key_value)?,
            dropped_attributes_count: unsigned(resource, "droppedAttributesCount", "dropped_attributes_count")? as u32,
            ..Resource::default()
        }),
        Some(_) => return Err(INVALID),
        None => None,
    };
    Ok(ResourceLogs {
        resource,
        scope_logs: list(object, "scopeLogs", "scope_logs", scope_logs)?,
        schema_url: text(object, "schemaUrl", "schema_url")?,
    })
}

fn scope_logs(object: &Map<String, Value>) -> Result<ScopeLogs, HttpError> {
    let scope = match member(object, "scope", "scope") {
        Some(Value::Object(scope)) => Some(InstrumentationScope {
            name: text(scope, "name", "name")?,
            version: text(scope, "version", "version")?,
            attributes: list(scope, "attributes", "attributes", key_value)?,
            dropped_attributes_count: unsigned(scope, "droppedAttributesCount", "dropped_attributes_count")? as u32,
        }),
        Some(_) => return Err(INVALID),
        None => None,
    };
    Ok(ScopeLogs {
        scope,
        log_records: list(object, "logRecords", "log_records", log_record)?,
        schema_url: text(object, "schemaUrl", "schema_url")?,
    })
}

fn log_record(object: &Map<String, Value>) -> Result<LogRecord, HttpError> {
    let body = match member(object, "body", "body") {
        Some(Value::Object(body)) => Some(any_value(body)?),
        Some(_) => return Err(INVALID),
        None => None,
    };
    Ok(LogRecord {
        time_unix_nano: unsigned(object, "timeUnixNano", "time_unix_nano")?,
        observed_time_unix_nano: unsigned(object, "observedTimeUnixNano", "observed_time_unix_nano")?,
        severity_number: i32::try_from(unsigned(object, "severityNumber", "severity_number")?).map_err(|_| INVALID)?,
        severity_text: text(object, "severityText", "severity_text")?,
        body,
        attributes: list(object, "attributes", "attributes", key_value)?,
        dropped_attributes_count: unsigned(object, "droppedAttributesCount", "dropped_attributes_count")? as u32,
        flags: u32::try_from(unsigned(object, "flags", "flags")?).map_err(|_| INVALID)?,
        trace_id: hex(object, "traceId", "trace_id")?,
        span_id: hex(object, "spanId", "span_id")?,
        event_name: text(object, "eventName", "event_name")?,
    })
}

fn key_value(object: &Map<String, Value>) -> Result<KeyValue, HttpError> {
    let value = match member(object, "value", "value") {
        Some(Value::Object(value)) => Some(any_value(value)?),
        Some(_) => return Err(INVALID),
        None => None,
    };
    Ok(KeyValue { key: text(object, "key", "key")?, value })
}

fn any_value(object: &Map<String, Value>) -> Result<AnyValue, HttpError> {
    let one = |camel, snake| member(object, camel, snake);
    let value = if let Some(v) = one("stringValue", "string_value") {
        any_value::Value::StringValue(v.as_str().ok_or(INVALID)?.to_string())
    } else if let Some(v) = one("boolValue", "bool_value") {
        any_value::Value::BoolValue(v.as_bool().ok_or(INVALID)?)
    } else if let Some(v) = one("intValue", "int_value") {
        any_value::Value::IntValue(signed(v)?)
    } else if let Some(v) = one("doubleValue", "double_value") {
        any_value::Value::DoubleValue(match v {
            Value::Number(n) => n.as_f64().ok_or(INVALID)?,
            Value::String(s) => s.parse().map_err(|_| INVALID)?,
            _ => return Err(INVALID),
        })
    } else if let Some(v) = one("arrayValue", "array_value") {
        let array = v.as_object().ok_or(INVALID)?;
        let values = match member(array, "values", "values") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                items.iter().map(|item| any_value(item.as_object().ok_or(INVALID)?)).collect::<Result<_, _>>()?
            }
            Some(_) => return Err(INVALID),
        };
        any_value::Value::ArrayValue(ArrayValue { values })
    } else if let Some(v) = one("kvlistValue", "kvlist_value") {
        let values = list(v.as_object().ok_or(INVALID)?, "values", "values", key_value)?;
        any_value::Value::KvlistValue(KeyValueList { values })
    } else if let Some(v) = one("bytesValue", "bytes_value") {
        let text = v.as_str().ok_or(INVALID)?;
        any_value::Value::BytesValue(base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| INVALID)?)
    } else {
        return Ok(AnyValue { value: None });
    };
    Ok(AnyValue { value: Some(value) })
}
