//! One event → one JSON line, Plutos's fields first, then the fields every route fills the same way:
//!
//! ```text
//! {"raw_data":…,"written_at":"…","request_id":"…","ip":"…","user_agent":"…"[,"geo":…][,"agent":…][,"bot":…,"bot_match":…],
//!  "method":"GET","path":"/e","transport":"http"[,"headers":{…}],
//!  "protocol":"plutos","event_id":"…","event_type":…,"event_name":…,"schema":…,"validation":…,"user_id":…,
//!  "anonymous_id":…,"client_ts":…,"sent_at":…,"timestamp":"…","retry_count":…,"visitor_id":…}
//! ```
//!
//! Every record has every field, each always of one type (a string or `null`; `retry_count` a number or
//! `null`; `validation` an array or `null`), whichever protocol brought the event, so a reader infers one schema over all of them. The parts that
//! are the same for every event of one request (time, ip, user agent, method, path, protocol, retry count,
//! visitor) are rendered once per request into reusable buffers; an event of plutos's own `/e` then costs its
//! raw data, one id and a few copies, and an SDK event also its own fields.

use crate::event::clock::Clock;
use crate::event::ids::RequestIds;
use crate::event::json::{escape_into, escape_lossy_into};
use crate::event::object::{Text, get};
use crate::event::timestamp::{self, ClientTimes};
use crate::http::Method;
use crate::schema::badrow::{self, Received, Unstruct};
use crate::schema::{Checked, Checker};

/// How an event reached plutos: the record's `transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Https,
    /// HTTP/2 over TLS (ALPN `h2`, on `TLS_PORT`).
    H2,
    /// HTTP/2 in cleartext with prior knowledge (on `PORT`).
    H2c,
    /// HTTP/3 over QUIC (on `QUIC_PORT`).
    H3,
    /// A datagram on `UDP_PORT` (its record's method is `UDP`, its path and user agent empty).
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Https => "https",
            Transport::H2 => "h2",
            Transport::H2c => "h2c",
            Transport::H3 => "h3",
            Transport::Udp => "udp",
        }
    }
}

/// Which wire format brought an event: the record's `protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// plutos's own `/e` (and Plutos's before it), and its gRPC `Send`.
    Plutos,
    Segment,
    PostHog,
    Snowplow,
    /// OpenTelemetry's logs (OTLP over gRPC or HTTP).
    Otlp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Plutos => "plutos",
            Protocol::Segment => "segment",
            Protocol::PostHog => "posthog",
            Protocol::Snowplow => "snowplow",
            Protocol::Otlp => "otlp",
        }
    }
}

/// What a record says about the request that carried the event.
pub struct RequestMeta<'a> {
    pub ip: &'a str,
    pub user_agent: &'a [u8],
    pub method: Method,
    pub path: &'a [u8],
    pub transport: Transport,
    /// `,"headers":{…}` (JSON, rendered by the caller) or empty.
    pub headers: &'a [u8],
    /// `,"geo":…,"agent":…,"bot":…,"bot_match":…` (JSON, rendered by the enricher) or empty.
    pub enrichment: &'a [u8],
    pub protocol: Protocol,
    /// How many times the client says it sent this request before (`X-Retry-Count`).
    pub retry_count: Option<u32>,
    /// The visitor's first-party id (a cookie).
    pub visitor_id: Option<&'a str>,
}

/// The fields one event brings besides its raw data. What is `None` is written as `null`; an event without
/// an id of its own gets its request id as `event_id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFields<'a> {
    pub event_id: Option<Text<'a>>,
    pub event_type: Option<Text<'a>>,
    pub event_name: Option<Text<'a>>,
    pub user_id: Option<Text<'a>>,
    pub anonymous_id: Option<Text<'a>>,
    /// The event's own time, as the client wrote it.
    pub client_ts: Option<Text<'a>>,
    /// When the client sent it, as the client wrote it.
    pub sent_at: Option<Text<'a>>,
    /// A self-describing event's Iglu URI (a JSON string literal).
    pub schema: Option<Text<'a>>,
    /// What failed when it was validated (`VALIDATION=flag`): a JSON array.
    pub validation: Option<&'a [u8]>,
}

#[derive(Default)]
pub struct RecordBuilder {
    /// `,"written_at":"…","request_id":"`
    before_id: Vec<u8>,
    /// `","ip":"…","user_agent":"…"[,"geo":…,…],"method":"…","path":"…"[,"headers":{…}],"protocol":"…","event_id":`
    after_id: Vec<u8>,
    /// `,"event_type":null,…,"sent_at":null,"timestamp":"{written_at}"`: the fields of an event that brings none.
    no_fields: Vec<u8>,
    /// `,"retry_count":…,"visitor_id":…}\n`
    tail: Vec<u8>,
    micros: Option<i64>,
    /// `micros` in RFC 3339 (what `written_at` says), for bad rows.
    written_at: Vec<u8>,
    /// What `after_id` and `tail` were rendered from: keep-alive clients repeat it request after request.
    rendered_ip: String,
    rendered_user_agent: Vec<u8>,
    rendered_method: Option<Method>,
    rendered_path: Vec<u8>,
    rendered_headers: Vec<u8>,
    rendered_enrichment: Vec<u8>,
    rendered_protocol: Option<Protocol>,
    rendered_transport: Option<Transport>,
    rendered_retry_count: Option<u32>,
    rendered_visitor_id: Option<Vec<u8>>,
}

impl RecordBuilder {
    /// Renders the per-request parts, reusing what the previous request already rendered. Call once per
    /// request, before its events.
    pub fn start_request(&mut self, meta: &RequestMeta<'_>, clock: &Clock) {
        if self.micros != Some(clock.unix_micros()) {
            self.micros = Some(clock.unix_micros());
            self.before_id.clear();
            self.before_id.extend_from_slice(b",\"written_at\":\"");
            clock.append_rfc3339_micros(&mut self.before_id);
            self.before_id.extend_from_slice(b"\",\"request_id\":\"");
            self.written_at.clear();
            clock.append_rfc3339_micros(&mut self.written_at);
            let n = &mut self.no_fields;
            n.clear();
            n.extend_from_slice(
                b",\"event_type\":null,\"event_name\":null,\"schema\":null,\"validation\":null,\"user_id\":null,\"anonymous_id\":null,\
                  \"client_ts\":null,\"sent_at\":null,\"timestamp\":\"",
            );
            clock.append_rfc3339_micros(n);
            n.push(b'"');
        }
        let visitor = meta.visitor_id.map(str::as_bytes);
        let same_visitor = match (&self.rendered_visitor_id, visitor) {
            (None, None) => true,
            (Some(rendered), Some(visitor)) => same(rendered, visitor),
            _ => false,
        };
        if self.tail.is_empty() || self.rendered_retry_count != meta.retry_count || !same_visitor {
            self.rendered_retry_count = meta.retry_count;
            match (&mut self.rendered_visitor_id, visitor) {
                (Some(rendered), Some(visitor)) => {
                    rendered.clear();
                    rendered.extend_from_slice(visitor);
                }
                (rendered, visitor) => *rendered = visitor.map(<[u8]>::to_vec),
            }
            let t = &mut self.tail;
            t.clear();
            t.extend_from_slice(b",\"retry_count\":");
            match meta.retry_count {
                // Formatting into a Vec cannot fail.
                Some(n) => _ = std::io::Write::write_fmt(t, format_args!("{n}")),
                None => t.extend_from_slice(b"null"),
            }
            t.extend_from_slice(b",\"visitor_id\":");
            match meta.visitor_id {
                Some(id) => {
                    t.push(b'"');
                    escape_into(t, id.as_bytes());
                    t.push(b'"');
                }
                None => t.extend_from_slice(b"null"),
            }
            t.extend_from_slice(b"}\n");
        }
        if self.rendered_method == Some(meta.method)
            && self.rendered_protocol == Some(meta.protocol)
            && self.rendered_transport == Some(meta.transport)
            && same(self.rendered_ip.as_bytes(), meta.ip.as_bytes())
            && same(&self.rendered_user_agent, meta.user_agent)
            && same(&self.rendered_path, meta.path)
            && same(&self.rendered_headers, meta.headers)
            && same(&self.rendered_enrichment, meta.enrichment)
        {
            return;
        }
        self.rendered_method = Some(meta.method);
        self.rendered_protocol = Some(meta.protocol);
        self.rendered_transport = Some(meta.transport);
        self.rendered_ip.clear();
        self.rendered_ip.push_str(meta.ip);
        self.rendered_user_agent.clear();
        self.rendered_user_agent.extend_from_slice(meta.user_agent);
        self.rendered_path.clear();
        self.rendered_path.extend_from_slice(meta.path);
        self.rendered_headers.clear();
        self.rendered_headers.extend_from_slice(meta.headers);
        self.rendered_enrichment.clear();
        self.rendered_enrichment.extend_from_slice(meta.enrichment);
        let t = &mut self.after_id;
        t.clear();
        t.extend_from_slice(b"\",\"ip\":\"");
        escape_into(t, meta.ip.as_bytes());
        t.extend_from_slice(b"\",\"user_agent\":\"");
        escape_lossy_into(t, meta.user_agent);
        t.push(b'"');
        t.extend_from_slice(meta.enrichment);
        t.extend_from_slice(b",\"method\":\"");
        t.extend_from_slice(meta.method.as_str().as_bytes());
        t.extend_from_slice(b"\",\"path\":\"");
        escape_lossy_into(t, meta.path);
        t.extend_from_slice(b"\",\"transport\":\"");
        t.extend_from_slice(meta.transport.name().as_bytes());
        t.push(b'"');
        t.extend_from_slice(meta.headers);
        t.extend_from_slice(b",\"protocol\":\"");
        t.extend_from_slice(meta.protocol.name().as_bytes());
        t.extend_from_slice(b"\",\"event_id\":");
    }

    /// What a bad row says of the request (after `start_request`).
    pub fn received(&self) -> Received<'_> {
        Received {
            timestamp: &self.written_at,
            ip: &self.rendered_ip,
            user_agent: &self.rendered_user_agent,
            protocol: self.rendered_protocol.unwrap_or(Protocol::Plutos),
        }
    }

    /// Opens a record; the caller appends the `raw_data` JSON value, then calls `finish_record` or
    /// `finish_event`.
    pub fn begin_record(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"raw_data\":");
    }

    /// Closes a record whose event brings no fields of its own (plutos's `/e`): its id is its request id, its
    /// time the time it was received.
    pub fn finish_record(&self, out: &mut Vec<u8>, ids: &mut RequestIds) {
        let id = self.append_request_id(out, ids);
        out.extend_from_slice(&self.after_id);
        out.push(b'"');
        out.extend_from_within(id..id + 36);
        out.push(b'"');
        out.extend_from_slice(&self.no_fields);
        out.extend_from_slice(&self.tail);
    }

    /// Closes a record with the fields its event brought.
    pub fn finish_event(&self, out: &mut Vec<u8>, ids: &mut RequestIds, fields: &EventFields<'_>) {
        let id = self.append_request_id(out, ids);
        out.extend_from_slice(&self.after_id);
        match fields.event_id {
            Some(event_id) => event_id.write(out),
            None => {
                out.push(b'"');
                out.extend_from_within(id..id + 36);
                out.push(b'"');
            }
        }
        out.extend_from_slice(b",\"event_type\":");
        write_or_null(out, fields.event_type);
        out.extend_from_slice(b",\"event_name\":");
        write_or_null(out, fields.event_name);
        out.extend_from_slice(b",\"schema\":");
        write_or_null(out, fields.schema);
        out.extend_from_slice(b",\"validation\":");
        out.extend_from_slice(fields.validation.unwrap_or(b"null"));
        for (name, value) in [
            (&b",\"user_id\":"[..], fields.user_id),
            (b",\"anonymous_id\":", fields.anonymous_id),
            (b",\"client_ts\":", fields.client_ts),
            (b",\"sent_at\":", fields.sent_at),
        ] {
            out.extend_from_slice(name);
            write_or_null(out, value);
        }
        out.extend_from_slice(b",\"timestamp\":");
        let times =
            ClientTimes { client: fields.client_ts.and_then(Text::time), sent: fields.sent_at.and_then(Text::time) };
        timestamp::append_json(out, times.timestamp(self.micros.unwrap_or_default()));
        out.extend_from_slice(&self.tail);
    }

    /// `before_id` and the next request id; returns where the id's 36 characters start.
    fn append_request_id(&self, out: &mut Vec<u8>, ids: &mut RequestIds) -> usize {
        out.extend_from_slice(&self.before_id);
        let id = out.len();
        ids.append_next(self.micros.unwrap_or_default(), out);
        id
    }

    /// A whole record whose `raw_data` is already JSON.
    pub fn append_record(&self, out: &mut Vec<u8>, raw_data: &[u8], ids: &mut RequestIds) {
        self.begin_record(out);
        out.extend_from_slice(raw_data);
        self.finish_record(out, ids);
    }
}

/// Where one request's events go: each becomes a record line, through the request's `RecordBuilder`, at the end
/// of the batch's lines. Every protocol's events take this one path.
///
/// It only appends: a request refused part-way is taken back by whoever holds the batch (the worker's
/// `finish_request` rolls it back to the request's mark).
pub struct Emitter<'a> {
    out: &'a mut Vec<u8>,
    builder: &'a RecordBuilder,
    ids: &'a mut RequestIds,
    events: u64,
    /// Reads (and validates) self-describing events: plutos's own, whose records it writes whole.
    checker: Option<&'a mut Checker>,
    /// Where the bad rows of events that fail go, and how many went.
    bad: Option<&'a mut Vec<u8>>,
    bad_rows: u64,
    /// `VALIDATION=reject`: an event that fails validation is a bad row (the tracking plan has its own rule
    /// for unplanned events).
    rejects: bool,
    /// An event's JSON, written aside while it may yet become a bad row.
    aside: Vec<u8>,
}

impl<'a> Emitter<'a> {
    /// After `builder.start_request`.
    pub fn new(out: &'a mut Vec<u8>, builder: &'a RecordBuilder, ids: &'a mut RequestIds) -> Emitter<'a> {
        Emitter {
            out,
            builder,
            ids,
            events: 0,
            checker: None,
            bad: None,
            bad_rows: 0,
            rejects: false,
            aside: Vec::new(),
        }
    }

    /// Self-describing events get their schema (and validation) from `checker`; under `VALIDATION=reject`, one
    /// that fails becomes a bad row in `bad` instead of a record.
    pub fn checked(self, checker: &'a mut Checker, bad: &'a mut Vec<u8>) -> Emitter<'a> {
        let rejects = checker.rejects();
        Emitter { checker: Some(checker), bad: Some(bad), rejects, ..self }
    }

    /// One record: `raw_data` writes the event's JSON value, `fields` are what it brought.
    pub fn event(&mut self, fields: &EventFields<'_>, raw_data: impl FnOnce(&mut Vec<u8>)) {
        self.builder.begin_record(self.out);
        raw_data(self.out);
        self.builder.finish_event(self.out, self.ids, fields);
        self.events += 1;
    }

    /// One record of an event with self-describing parts (Snowplow's unstructured event and contexts): `parts`
    /// checks each with the checker and returns the event's schema (a JSON string literal), which with what
    /// failed completes `fields`.
    pub fn event_checked<'e>(
        &mut self,
        fields: EventFields<'e>,
        parts: impl FnOnce(&mut Checker) -> Option<&'e [u8]>,
        raw_data: impl FnOnce(&mut Vec<u8>),
    ) {
        let (schema, validation) = match self.checker.as_deref_mut() {
            Some(checker) => {
                checker.begin();
                let schema = parts(checker).and_then(Text::of);
                (schema, checker.finish())
            }
            None => (None, None),
        };
        if let (Some(messages), true, Some(bad)) = (validation, self.rejects, self.bad.as_deref_mut()) {
            // The event as its record would have held it, then its bad row.
            self.aside.clear();
            raw_data(&mut self.aside);
            let event = &self.aside[..];
            let (ue, co) = (get(event, "ue_pr"), get(event, "co"));
            let unstruct = ue.map_or(Unstruct::None, Unstruct::Json);
            let received = self.builder.received();
            let id = fields.event_id.is_none().then(|| request_id(self.builder, self.ids));
            let fields = EventFields { event_id: fields.event_id.or(id.as_deref().map(Text::Literal)), ..fields };
            badrow::schema_violations(bad, &received, messages, event, &fields, unstruct, co);
            self.bad_rows += 1;
            return;
        }
        let fields = EventFields { schema, validation, ..fields };
        self.builder.begin_record(self.out);
        raw_data(self.out);
        self.builder.finish_event(self.out, self.ids, &fields);
        self.events += 1;
    }

    /// One record of an event an SDK named (Segment's `track`, PostHog's), checked against the tracking plan if
    /// there is one: `name` and `properties` are what the plan reads. A planned event's record names its schema;
    /// what failed is flagged, or makes the event a bad row, as the plan and `VALIDATION` say.
    pub fn event_planned(
        &mut self,
        fields: EventFields<'_>,
        name: Option<&str>,
        properties: Option<&[u8]>,
        raw_data: impl FnOnce(&mut Vec<u8>),
    ) {
        let verdict = match (self.checker.as_deref_mut(), name) {
            (Some(checker), Some(name)) => checker.check_planned(name, properties),
            _ => None,
        };
        let Some(verdict) = verdict else {
            return self.event(&fields, raw_data);
        };
        if let (Some(messages), true) = (verdict.failures, verdict.reject) {
            let bad = self.bad.as_deref_mut().expect("a checker comes with a bad-row buffer");
            self.aside.clear();
            raw_data(&mut self.aside);
            let unstruct = match verdict.schema {
                Some(schema) => Unstruct::Parts { schema, data: properties.unwrap_or(b"{}") },
                None => Unstruct::None,
            };
            let received = self.builder.received();
            let id = fields.event_id.is_none().then(|| request_id(self.builder, self.ids));
            let fields = EventFields { event_id: fields.event_id.or(id.as_deref().map(Text::Literal)), ..fields };
            badrow::schema_violations(bad, &received, messages, &self.aside, &fields, unstruct, None);
            self.bad_rows += 1;
            return;
        }
        let fields = EventFields { schema: verdict.schema.and_then(Text::of), validation: verdict.failures, ..fields };
        self.builder.begin_record(self.out);
        raw_data(self.out);
        self.builder.finish_event(self.out, self.ids, &fields);
        self.events += 1;
    }

    /// One record of an event that brings no fields of its own (plutos's `/e`): `raw_data` writes its JSON
    /// value, or fails (the caller rolls the request back).
    pub fn plain<E>(&mut self, raw_data: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        self.builder.begin_record(self.out);
        raw_data(self.out)?;
        self.builder.finish_record(self.out, self.ids);
        self.events += 1;
        Ok(())
    }

    /// One record of an event that brings no fields of its own, whose `raw_data` is already JSON. A
    /// self-describing one gets its schema (and, under validation, what failed) as fields.
    #[inline]
    pub fn record(&mut self, raw_data: &[u8]) {
        if self.checker.is_some() && crate::schema::check::may_be_self_describing(raw_data) {
            return self.record_checked(raw_data);
        }
        self.builder.append_record(self.out, raw_data, self.ids);
        self.events += 1;
    }

    #[inline(never)]
    fn record_checked(&mut self, raw_data: &[u8]) {
        match self.checker.as_deref_mut().and_then(|checker| checker.check(raw_data)) {
            Some(Checked { failures: Some(messages), .. }) if self.rejects => {
                let bad = self.bad.as_deref_mut().expect("checked above");
                let received = self.builder.received();
                let id = request_id(self.builder, self.ids);
                let fields = EventFields { event_id: Some(Text::Literal(&id)), ..EventFields::default() };
                badrow::schema_violations(bad, &received, messages, raw_data, &fields, Unstruct::Json(raw_data), None);
                self.bad_rows += 1;
                return;
            }
            Some(checked) => {
                let fields = EventFields {
                    schema: Text::of(checked.schema),
                    validation: checked.failures,
                    ..Default::default()
                };
                self.builder.begin_record(self.out);
                self.out.extend_from_slice(raw_data);
                self.builder.finish_event(self.out, self.ids, &fields);
            }
            None => self.builder.append_record(self.out, raw_data, self.ids),
        }
        self.events += 1;
    }

    /// Records written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bad rows written so far.
    pub fn bad_rows(&self) -> u64 {
        self.bad_rows
    }
}

/// A new request id as a JSON string literal: the event id of a bad row whose event brought none (as its record's
/// would have been).
fn request_id(builder: &RecordBuilder, ids: &mut RequestIds) -> Vec<u8> {
    let mut id = Vec::with_capacity(38);
    id.push(b'"');
    ids.append_next(builder.micros.unwrap_or_default(), &mut id);
    id.push(b'"');
    id
}

fn write_or_null(out: &mut Vec<u8>, value: Option<Text<'_>>) {
    match value {
        Some(text) => text.write(out),
        None => out.extend_from_slice(b"null"),
    }
}

/// Byte equality that never hands an empty slice to `memcmp`. An empty `Vec` points at a dangling address, and
/// glibc's AVX-512 `memcmp` reads even zero bytes with a masked load there; on an unmapped page that load needs
/// a microcode assist. Measured: 37% of the time of 16 pipelined GETs without a User-Agent went to that one
/// comparison (`cargo bench --bench hot_path -- process`).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

#[cfg(test)]
mod tests;
