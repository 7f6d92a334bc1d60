//! Reading and re-writing JSON objects that already passed `json::validate` and `json::minify_into`: the
//! envelopes of the SDK protocols (`{"batch":[…],"sentAt":…}`) and their events. Members are found by one byte
//! scan (`Members`), values are handed out as the JSON text they are, and an object is re-written member by
//! member (`write_object`) with some members left out, replaced or merged — no DOM, nothing decoded that is not
//! looked at. On input that did not pass validation these scans give meaningless (but memory-safe) results.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::event::{json, timestamp};

/// The members of a minified, validated JSON object, in order: each key as the inside of its string literal
/// (escapes left as they are) and each value as its JSON text.
pub struct Members<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Members<'a> {
    /// `object` must be a minified, validated JSON object; anything else yields no members.
    pub fn of(object: &'a [u8]) -> Members<'a> {
        let pos = if object.first() == Some(&b'{') { 1 } else { object.len() };
        Members { text: object, pos }
    }

    /// The next member's key; its value must be taken next (`value` or `array_elements`).
    pub fn next_key(&mut self) -> Option<&'a [u8]> {
        let text = self.text;
        if text.get(self.pos) != Some(&b'"') {
            return None;
        }
        let key_end = json::string_end(text, self.pos).unwrap_or(text.len());
        let key = &text[self.pos + 1..key_end.saturating_sub(1).max(self.pos + 1)];
        self.pos = key_end + 1; // past the ':'
        Some(key)
    }

    /// The value of the member whose key was just taken.
    pub fn value(&mut self) -> &'a [u8] {
        self.take_value(None)
    }

    /// The value of the member whose key was just taken; if it is an array, `elements` is set to the span of
    /// each of its elements (offsets into the object) by the same scan that finds the value's end.
    pub fn array_elements(&mut self, elements: &mut Vec<(u32, u32)>) -> &'a [u8] {
        elements.clear();
        self.take_value(Some(elements))
    }

    fn take_value(&mut self, mut elements: Option<&mut Vec<(u32, u32)>>) -> &'a [u8] {
        let (text, start) = (self.text, self.pos);
        let mut depth = 0usize;
        let mut element = start + 1;
        let mut i = start;
        let end = loop {
            let Some(&b) = text.get(i) else {
                break text.len();
            };
            match b {
                b'"' => {
                    i = json::string_end(text, i).unwrap_or(text.len());
                    if depth == 0 {
                        break i;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => break i,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        if let Some(elements) = elements.as_mut().filter(|_| b == b']' && element < i) {
                            elements.push((element as u32, i as u32));
                        }
                        break i + 1;
                    }
                }
                b',' if depth == 0 => break i,
                b',' if depth == 1 => {
                    if let Some(elements) = elements.as_mut() {
                        elements.push((element as u32, i as u32));
                    }
                    element = i + 1;
                }
                _ => {}
            }
            i += 1;
        };
        if elements.is_some() && text.get(start) != Some(&b'[') {
            // Not an array: whatever was noted inside an object is no element.
            if let Some(elements) = elements {
                elements.clear();
            }
        }
        self.pos = end + 1; // past the ',' or the closing '}'
        &text[start.min(end)..end]
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let key = self.next_key()?;
        Some((key, self.value()))
    }
}

/// A key as bytes to compare with plain (ASCII) names: as it stands, decoded only when it holds an escape.
pub fn key(raw: &[u8]) -> Cow<'_, [u8]> {
    if !has_escape(raw) {
        return Cow::Borrowed(raw);
    }
    match decoded(raw) {
        Some(text) => Cow::Owned(text.into_owned().into_bytes()),
        None => Cow::Borrowed(b""),
    }
}

/// Whether a raw key (the inside of its literal) names `name`. Keys are compared decoded, so `"api\u005fkey"`
/// is `api_key` too: a key spelled with escapes cannot slip past the member that must be left out.
pub fn key_is(raw: &[u8], name: &str) -> bool {
    *key(raw) == *name.as_bytes()
}

/// The inside of a string literal, decoded (escapes undone only when there are any).
pub fn decoded(raw: &[u8]) -> Option<Cow<'_, str>> {
    if !has_escape(raw) {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).ok().map(Cow::Owned)
}

/// Whether the inside of a string literal holds an escape. A byte loop, not `contains` (memchr): keys and most
/// values are a few bytes long, shorter than a call to memchr is worth (`examples/ingest_cost.rs segment 200`
/// under callgrind: 385.4M instructions with the loop, 389.5M with `contains`).
#[allow(clippy::manual_contains)]
fn has_escape(raw: &[u8]) -> bool {
    raw.iter().any(|&b| b == b'\\')
}

/// The value of the first member named `name`.
pub fn get<'a>(object: &'a [u8], name: &str) -> Option<&'a [u8]> {
    Members::of(object).find(|(key, _)| key_is(key, name)).map(|(_, value)| value)
}

/// A value as text: a string's contents (decoded), or a number's digits. `None` for anything else.
pub fn text(value: &[u8]) -> Option<Cow<'_, str>> {
    match value.first()? {
        b'"' => decoded(&value[1..value.len() - 1]),
        b'-' | b'0'..=b'9' => std::str::from_utf8(value).ok().map(Cow::Borrowed),
        _ => None,
    }
}

/// An identifier or name for a record field: a JSON string as its literal, or a number as its digits (written
/// as a string, so a field has one type whatever the client sent). Anything else — `null`, `""`, an object —
/// is no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text<'a> {
    /// A JSON string literal, quotes included.
    Literal(&'a [u8]),
    /// A JSON number's text, written quoted.
    Number(&'a [u8]),
    /// A name plutos gives (no escaping needed), written quoted.
    Static(&'static str),
    /// Decoded text (part of a value), written quoted and escaped.
    Plain(&'a str),
}

impl<'a> Text<'a> {
    pub fn of(value: &'a [u8]) -> Option<Text<'a>> {
        match value.first()? {
            b'"' if value.len() > 2 => Some(Text::Literal(value)),
            b'-' | b'0'..=b'9' => Some(Text::Number(value)),
            _ => None,
        }
    }

    /// The time it names (`event::timestamp::parse`), if it is one.
    pub fn time(self) -> Option<i64> {
        match self {
            // A time has no escapes: its inside is parsed as it is (a time with an escape is no time).
            Text::Literal(literal) => timestamp::parse(&literal[1..literal.len() - 1]),
            Text::Number(digits) => timestamp::parse(digits),
            Text::Static(t) | Text::Plain(t) => timestamp::parse(t.as_bytes()),
        }
    }

    /// Appends the value as a JSON string.
    pub fn write(self, out: &mut Vec<u8>) {
        match self {
            Text::Literal(literal) => out.extend_from_slice(literal),
            Text::Number(digits) => {
                out.push(b'"');
                out.extend_from_slice(digits);
                out.push(b'"');
            }
            Text::Static(name) => {
                out.push(b'"');
                out.extend_from_slice(name.as_bytes());
                out.push(b'"');
            }
            Text::Plain(text) => {
                out.push(b'"');
                json::escape_into(out, text.as_bytes());
                out.push(b'"');
            }
        }
    }
}

/// What becomes of one member when an object is re-written.
pub enum Edit<'a> {
    Keep,
    Drop,
    /// The value is replaced by this JSON text.
    Replace(&'a [u8]),
    /// The value (an object) gets the members of this object that it does not have itself.
    MergeUnder(&'a [u8]),
    /// The value (an object) without its members of these names.
    Without(&'a [&'a str]),
    /// The member is written under another name, with this JSON text as its value.
    Rename(&'a str, &'a [u8]),
}

/// Appends `object` member by member, each as `edit` says (called with the raw key and value), then a member for
/// each of `extra` (key, JSON value) — members the object should have and did not. Keys are written as sent.
pub fn write_object<'a>(
    out: &mut Vec<u8>,
    object: &'a [u8],
    mut edit: impl FnMut(&'a [u8], &'a [u8]) -> Edit<'a>,
    extra: &[(&str, &[u8])],
) {
    let mut w = ObjectWriter::open(out);
    for (key, value) in Members::of(object) {
        let is_object = value.first() == Some(&b'{');
        match edit(key, value) {
            Edit::Drop => {}
            Edit::Replace(with) => w.member(key, with),
            Edit::Rename(name, with) => w.member(name.as_bytes(), with),
            Edit::MergeUnder(defaults) if is_object => w.member_with(key, |out| merge(out, value, defaults)),
            Edit::Without(names) if is_object => w.member_with(key, |out| without(out, value, names)),
            Edit::Keep | Edit::MergeUnder(_) | Edit::Without(_) => w.member(key, value),
        }
    }
    for (key, value) in extra {
        w.member(key.as_bytes(), value);
    }
    w.close();
}

/// An object being written member by member: the commas and the quotes around keys in one place.
struct ObjectWriter<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> ObjectWriter<'o> {
    fn open(out: &'o mut Vec<u8>) -> ObjectWriter<'o> {
        out.push(b'{');
        ObjectWriter { out, first: true }
    }

    /// Goes on with `object`'s members already in `out`: all of it but its closing brace.
    fn resume(out: &'o mut Vec<u8>, object: &[u8]) -> ObjectWriter<'o> {
        out.extend_from_slice(&object[..object.len() - 1]);
        ObjectWriter { out, first: object.len() <= 2 }
    }

    /// `key` (the inside of its string literal) and `value` (JSON text).
    fn member(&mut self, key: &[u8], value: &[u8]) {
        self.member_with(key, |out| out.extend_from_slice(value));
    }

    fn member_with(&mut self, key: &[u8], value: impl FnOnce(&mut Vec<u8>)) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(b"\":");
        value(self.out);
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// `object` without its members named any of `names`.
fn without(out: &mut Vec<u8>, object: &[u8], names: &[&str]) {
    let mut w = ObjectWriter::open(out);
    for (key, value) in Members::of(object).filter(|(key, _)| !names.iter().any(|name| key_is(key, name))) {
        w.member(key, value);
    }
    w.close();
}

/// `own`'s members, then those of `defaults` whose keys `own` does not have (the object's own values win). Keys
/// are compared decoded. Linear in the members of both however many a client sends: a few own keys without
/// escapes (a message's `context` has a handful) are held in place and each compared with every default; more,
/// or escaped ones, go through a hash set.
fn merge(out: &mut Vec<u8>, own: &[u8], defaults: &[u8]) {
    /// Up to this many own keys, comparing costs less than building a set.
    const FEW: usize = 16;
    let mut few: [&[u8]; FEW] = [b""; FEW];
    let mut held = 0;
    let mut simple = true;
    for (k, _) in Members::of(own) {
        if held == FEW || has_escape(k) {
            simple = false;
            break;
        }
        few[held] = k;
        held += 1;
    }
    let set: Option<HashSet<Cow<'_, [u8]>>> = (!simple).then(|| Members::of(own).map(|(k, _)| key(k)).collect());
    let mut w = ObjectWriter::resume(out, own);
    for (raw, value) in Members::of(defaults) {
        let name = key(raw);
        let taken = match &set {
            Some(set) => set.contains(&name),
            None => few[..held].iter().any(|k| **k == *name),
        };
        if !taken {
            w.member(raw, value);
        }
    }
    w.close();
}

#[cfg(test)]
mod tests;
