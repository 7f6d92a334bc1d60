//! (b) Query / form decoding into an event object: whatever the bytes, either an error or exactly one JSON
//! object serde_json's default reader accepts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use plutos::event::query::{QueryScratch, append_query_object};

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let mut scratch = QueryScratch::default();
    if append_query_object(&mut out, data, &mut scratch).is_ok() {
        let value: serde_json::Value = serde_json::from_slice(&out).expect("a JSON object serde_json reads");
        assert!(value.is_object(), "{value}");
    }
});
