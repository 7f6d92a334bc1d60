//! The Parquet schema of each stream and the rows of one batch of NDJSON lines, built straight into Arrow arrays
//! (no JSON-to-Arrow inference: the record's fields are fixed, so the schema is too).
//!
//! Good stream: one column per record field, in the record's order, each of one type — times as
//! `TIMESTAMP(µs, UTC)`, `request_id` as a UUID, `retry_count` as an integer, `geo` and `agent` as structs,
//! `headers` as a map, `raw_data` and `validation` as JSON (Parquet's JSON logical type: the text as the record
//! holds it), the rest strings. Bad stream: the bad row's `schema`, its failure's `timestamp`, and the row itself
//! as JSON (`data`). A new record field is a new nullable column; a type never changes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, MapBuilder, MapFieldNames, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow_array::{ArrayRef, RecordBatch, StructArray};
use arrow_schema::extension::{Json, Uuid};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::spool::Stream;

/// The stream's schema (the good one is the table in the README's "Parquet output").
pub fn schema(stream: Stream) -> SchemaRef {
    match stream {
        Stream::Good => GOOD.clone(),
        Stream::Bad => BAD.clone(),
    }
}

fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), nullable)
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn json(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable).with_extension_type(Json::default())
}

const GEO_TEXTS: [&str; 5] = ["country", "region", "city", "tz", "as_org"];
const AGENT_TEXTS: [&str; 7] =
    ["browser", "browser_version", "os", "os_version", "device", "device_brand", "device_model"];

fn geo_fields() -> Fields {
    let mut fields: Vec<Field> = GEO_TEXTS.iter().map(|name| text(name)).collect();
    fields.push(Field::new("lat", DataType::Float64, true));
    fields.push(Field::new("lon", DataType::Float64, true));
    fields.push(Field::new("asn", DataType::UInt32, true));
    fields.into()
}

fn agent_fields() -> Fields {
    AGENT_TEXTS.iter().map(|name| text(name)).collect::<Vec<_>>().into()
}

/// Parquet's own names for a map's parts.
fn map_names() -> MapFieldNames {
    MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() }
}

fn headers_field() -> Field {
    let entries = Field::new(
        "key_value",
        DataType::Struct(vec![Field::new("key", DataType::Utf8, false), text("value")].into()),
        false,
    );
    Field::new("headers", DataType::Map(Arc::new(entries), false), true)
}

static GOOD: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        json("raw_data", false),
        timestamp("written_at", false),
        Field::new("request_id", DataType::FixedSizeBinary(16), false).with_extension_type(Uuid),
        text("ip"),
        text("user_agent"),
        Field::new("geo", DataType::Struct(geo_fields()), true),
        Field::new("agent", DataType::Struct(agent_fields()), true),
        Field::new("bot", DataType::Boolean, true),
        text("bot_match"),
        text("method"),
        text("path"),
        text("transport"),
        headers_field(),
        text("protocol"),
        text("event_id"),
        text("event_type"),
        text("event_name"),
        text("schema"),
        json("validation", true),
        text("user_id"),
        text("anonymous_id"),
        text("client_ts"),
        text("sent_at"),
        timestamp("timestamp", true),
        Field::new("retry_count", DataType::UInt32, true),
        text("visitor_id"),
    ]))
});

static BAD: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("schema", DataType::Utf8, false),
        timestamp("timestamp", true),
        json("data", false),
    ]))
});

/// The columns whose values repeat (dictionary-encoded); every other column is written plain.
pub fn dictionary_columns(stream: Stream) -> Vec<Vec<String>> {
    let mut columns: Vec<Vec<String>> = match stream {
        Stream::Good => [
            "ip",
            "user_agent",
            "bot_match",
            "method",
            "path",
            "transport",
            "protocol",
            "event_type",
            "event_name",
            "schema",
            "user_id",
            "anonymous_id",
            "visitor_id",
        ]
        .iter()
        .map(|c| vec![c.to_string()])
        .collect(),
        Stream::Bad => vec![vec!["schema".into()]],
    };
    if stream == Stream::Good {
        columns.extend(GEO_TEXTS.iter().chain(["lat", "lon", "asn"].iter()).map(|c| vec!["geo".into(), c.to_string()]));
        columns.extend(AGENT_TEXTS.iter().map(|c| vec!["agent".into(), c.to_string()]));
        columns.push(vec!["headers".into(), "key_value".into(), "key".into()]);
        columns.push(vec!["headers".into(), "key_value".into(), "value".into()]);
    }
    columns
}

/// Why a line cannot become a row.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("line {line}: {why}")]
    Line { line: u64, why: String },
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// One record line as the record builder writes it (`src/event/record.rs`). Unknown fields are refused: a field
/// the converter does not know would otherwise be dropped silently.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record<'a> {
    #[serde(borrow)]
    raw_data: &'a RawValue,
    #[serde(borrow)]
    written_at: Cow<'a, str>,
    #[serde(borrow)]
    request_id: Cow<'a, str>,
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    geo: Option<Geo<'a>>,
    #[serde(borrow, default)]
    agent: Option<Agent<'a>>,
    #[serde(default)]
    bot: Option<bool>,
    #[serde(borrow, default)]
    bot_match: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    transport: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    headers: Option<BTreeMap<Cow<'a, str>, Option<Cow<'a, str>>>>,
    #[serde(borrow, default)]
    protocol: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    schema: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    validation: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    anonymous_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    client_ts: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sent_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default)]
    retry_count: Option<u32>,
    #[serde(borrow, default)]
    visitor_id: Option<Cow<'a, str>>,
}

/// A bad row: `{"schema":"iglu:…","data":{…,"failure":{"timestamp":"…",…},…}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BadRow<'a> {
    #[serde(borrow)]
    schema: Cow<'a, str>,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct BadRowData<'a> {
    #[serde(borrow)]
    failure: Option<Failure<'a>>,
}

#[derive(Deserialize)]
struct Failure<'a> {
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
}

/// Rows being gathered for one record batch of a stream.
pub enum Rows {
    Good(Box<GoodRows>),
    Bad(Box<BadRows>),
}

impl Rows {
    pub fn new(stream: Stream) -> Rows {
        match stream {
            Stream::Good => Rows::Good(Box::default()),
            Stream::Bad => Rows::Bad(Box::default()),
        }
    }

    /// Adds one line (without its `\n`); `line` numbers it in messages.
    pub fn push(&mut self, bytes: &[u8], line: u64) -> Result<(), RowError> {
        let refused = |why: String| RowError::Line { line, why };
        match self {
            Rows::Good(rows) => rows.push(bytes).map_err(refused),
            Rows::Bad(rows) => rows.push(bytes).map_err(refused),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        match self {
            Rows::Good(rows) => rows.len,
            Rows::Bad(rows) => rows.len,
        }
    }

    /// The rows gathered so far as one batch; the builders start empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, RowError> {
        Ok(match self {
            Rows::Good(rows) => rows.finish()?,
            Rows::Bad(rows) => rows.finish()?,
        })
    }
}

/// A time the record wrote (RFC 3339, µs, `Z`) as Unix microseconds.
fn micros(text: &str, field: &str) -> Result<i64, String> {
    crate::event::timestamp::parse(text.as_bytes()).ok_or_else(|| format!("{field} {text:?} is not a time"))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` as 16 bytes.
fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = bytes.iter().filter(|&&b| b != b'-').map(|&b| (b as char).to_digit(16));
    for byte in &mut out {
        *byte = (digits.next()?? as u8) << 4 | digits.next()?? as u8;
    }
    Some(out)
}

struct Texts(Vec<StringBuilder>);

impl Texts {
    fn new(n: usize) -> Texts {
        Texts((0..n).map(|_| StringBuilder::new()).collect())
    }
}

pub struct GoodRows {
    len: usize,
    raw_data: StringBuilder,
    written_at: TimestampMicrosecondBuilder,
    request_id: FixedSizeBinaryBuilder,
    ip: StringBuilder,
    user_agent: StringBuilder,
    geo_texts: Texts,
    geo_lat: Float64Builder,
    geo_lon: Float64Builder,
    geo_asn: UInt32Builder,
    geo_valid: Vec<bool>,
    agent_texts: Texts,
    agent_valid: Vec<bool>,
    bot: BooleanBuilder,
    bot_match: StringBuilder,
    method: StringBuilder,
    path: StringBuilder,
    transport: StringBuilder,
    headers: MapBuilder<StringBuilder, StringBuilder>,
    protocol: StringBuilder,
    event_id: StringBuilder,
    event_type: StringBuilder,
    event_name: StringBuilder,
    schema: StringBuilder,
    validation: StringBuilder,
    user_id: StringBuilder,
    anonymous_id: StringBuilder,
    client_ts: StringBuilder,
    sent_at: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    retry_count: UInt32Builder,
    visitor_id: StringBuilder,
}

impl Default for GoodRows {
    fn default() -> GoodRows {
        GoodRows {
            len: 0,
            raw_data: StringBuilder::new(),
            written_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            request_id: FixedSizeBinaryBuilder::new(16),
            ip: StringBuilder::new(),
            user_agent: StringBuilder::new(),
            geo_texts: Texts::new(GEO_TEXTS.len()),
            geo_lat: Float64Builder::new(),
            geo_lon: Float64Builder::new(),
            geo_asn: UInt32Builder::new(),
            geo_valid: Vec::new(),
            agent_texts: Texts::new(AGENT_TEXTS.len()),
            agent_valid: Vec::new(),
            bot: BooleanBuilder::new(),
            bot_match: StringBuilder::new(),
            method: StringBuilder::new(),
            path: StringBuilder::new(),
            transport: StringBuilder::new(),
            headers: MapBuilder::new(Some(map_names()), StringBuilder::new(), StringBuilder::new()),
            protocol: StringBuilder::new(),
            event_id: StringBuilder::new(),
            event_type: StringBuilder::new(),
            event_name: StringBuilder::new(),
            schema: StringBuilder::new(),
            validation: StringBuilder::new(),
            user_id: StringBuilder::new(),
            anonymous_id: StringBuilder::new(),
            client_ts: StringBuilder::new(),
            sent_at: StringBuilder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            retry_count: UInt32Builder::new(),
            visitor_id: StringBuilder::new(),
        }
    }
}

impl GoodRows {
    fn push(&mut self, line: &[u8]) -> Result<(), String> {
        let r: Record = serde_json::from_slice(line).map_err(|e| format!("not a record: {e}"))?;
        let written_at = micros(&r.written_at, "written_at")?;
        let request_id =
            uuid_bytes(&r.request_id).ok_or_else(|| format!("request_id {:?} is not a UUID", r.request_id))?;
        // Checked before anything is appended, so a refused line leaves every column as long as the others.
        let timestamp = r.timestamp.as_deref().map(|t| micros(t, "timestamp")).transpose()?;
        self.raw_data.append_value(r.raw_data.get());
        self.written_at.append_value(written_at);
        self.request_id.append_value(request_id).expect("16 bytes");
        self.ip.append_option(r.ip.as_deref());
        self.user_agent.append_option(r.user_agent.as_deref());
        self.geo_valid.push(r.geo.is_some());
        let geo = r.geo.unwrap_or_default();
        for (builder, value) in self.geo_texts.0.iter_mut().zip(geo.texts()) {
            builder.append_option(value);
        }
        self.geo_lat.append_option(geo.lat);
        self.geo_lon.append_option(geo.lon);
        self.geo_asn.append_option(geo.asn);
        self.agent_valid.push(r.agent.is_some());
        let agent = r.agent.unwrap_or_default();
        for (builder, value) in self.agent_texts.0.iter_mut().zip(agent.texts()) {
            builder.append_option(value);
        }
        self.bot.append_option(r.bot);
        self.bot_match.append_option(r.bot_match.as_deref());
        self.method.append_option(r.method.as_deref());
        self.path.append_option(r.path.as_deref());
        self.transport.append_option(r.transport.as_deref());
        match &r.headers {
            Some(headers) => {
                for (name, value) in headers {
                    self.headers.keys().append_value(name);
                    self.headers.values().append_option(value.as_deref());
                }
                self.headers.append(true).map_err(|e| e.to_string())?;
            }
            None => self.headers.append(false).map_err(|e| e.to_string())?,
        }
        self.protocol.append_option(r.protocol.as_deref());
        self.event_id.append_option(r.event_id.as_deref());
        self.event_type.append_option(r.event_type.as_deref());
        self.event_name.append_option(r.event_name.as_deref());
        self.schema.append_option(r.schema.as_deref());
        self.validation.append_option(r.validation.map(RawValue::get));
        self.user_id.append_option(r.user_id.as_deref());
        self.anonymous_id.append_option(r.anonymous_id.as_deref());
        self.client_ts.append_option(r.client_ts.as_deref());
        self.sent_at.append_option(r.sent_at.as_deref());
        self.timestamp.append_option(timestamp);
        self.retry_count.append_option(r.retry_count);
        self.visitor_id.append_option(r.visitor_id.as_deref());
        self.len += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let strings = |b: &mut StringBuilder| -> ArrayRef { Arc::new(b.finish()) };
        let geo = {
            let mut arrays: Vec<ArrayRef> = self.geo_texts.0.iter_mut().map(strings).collect();
            arrays.push(Arc::new(self.geo_lat.finish()));
            arrays.push(Arc::new(self.geo_lon.finish()));
            arrays.push(Arc::new(self.geo_asn.finish()));
            let valid = std::mem::take(&mut self.geo_valid);
            StructArray::try_new(geo_fields(), arrays, Some(valid.into()))?
        };
        let agent = {
            let arrays: Vec<ArrayRef> = self.agent_texts.0.iter_mut().map(strings).collect();
            let valid = std::mem::take(&mut self.agent_valid);
            StructArray::try_new(agent_fields(), arrays, Some(valid.into()))?
        };
        let columns: Vec<ArrayRef> = vec![
            strings(&mut self.raw_data),
            Arc::new(self.written_at.finish()),
            Arc::new(self.request_id.finish()),
            strings(&mut self.ip),
            strings(&mut self.user_agent),
            Arc::new(geo),
            Arc::new(agent),
            Arc::new(self.bot.finish()),
            strings(&mut self.bot_match),
            strings(&mut self.method),
            strings(&mut self.path),
            strings(&mut self.transport),
            Arc::new(self.headers.finish()),
            strings(&mut self.protocol),
            strings(&mut self.event_id),
            strings(&mut self.event_type),
            strings(&mut self.event_name),
            strings(&mut self.schema),
            strings(&mut self.validation),
            strings(&mut self.user_id),
            strings(&mut self.anonymous_id),
            strings(&mut self.client_ts),
            strings(&mut self.sent_at),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.retry_count.finish()),
            strings(&mut self.visitor_id),
        ];
        self.len = 0;
        RecordBatch::try_new(GOOD.clone(), columns)
    }
}

/// A record's `geo` object (`src/enrich/geo.rs`): the members the databases held.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Geo<'a> {
    #[serde(borrow, default)]
    country: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    region: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    city: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tz: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    as_org: Option<Cow<'a, str>>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    asn: Option<u32>,
}

impl Geo<'_> {
    /// In the order of `GEO_TEXTS`.
    fn texts(&self) -> [Option<&str>; GEO_TEXTS.len()] {
        [&self.country, &self.region, &self.city, &self.tz, &self.as_org].map(|t| t.as_deref())
    }
}

/// A record's `agent` object (`src/enrich/agent.rs`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Agent<'a> {
    #[serde(borrow, default)]
    browser: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    browser_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    os: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    os_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    device: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    device_brand: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    device_model: Option<Cow<'a, str>>,
}

impl Agent<'_> {
    /// In the order of `AGENT_TEXTS`.
    fn texts(&self) -> [Option<&str>; AGENT_TEXTS.len()] {
        [
            &self.browser,
            &self.browser_version,
            &self.os,
            &self.os_version,
            &self.device,
            &self.device_brand,
            &self.device_model,
        ]
        .map(|t| t.as_deref())
    }
}

pub struct BadRows {
    len: usize,
    schema: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    data: StringBuilder,
}

impl Default for BadRows {
    fn default() -> BadRows {
        BadRows {
            len: 0,
            schema: StringBuilder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            data: StringBuilder::new(),
        }
    }
}

impl BadRows {
    fn push(&mut self, line: &[u8]) -> Result<(), String> {
        let row: BadRow = serde_json::from_slice(line).map_err(|e| format!("not a bad row: {e}"))?;
        let data: BadRowData = serde_json::from_str(row.data.get()).map_err(|e| format!("bad row data: {e}"))?;
        let timestamp = match data.failure.and_then(|f| f.timestamp) {
            Some(t) => Some(micros(&t, "failure.timestamp")?),
            None => None,
        };
        self.schema.append_value(&row.schema);
        self.timestamp.append_option(timestamp);
        self.data.append_value(row.data.get());
        self.len += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        self.len = 0;
        RecordBatch::try_new(
            BAD.clone(),
            vec![Arc::new(self.schema.finish()), Arc::new(self.timestamp.finish()), Arc::new(self.data.finish())],
        )
    }
}
