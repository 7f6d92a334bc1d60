//! What every fuzz target that writes records checks of them: after the batch's earlier `previous\n` line, whole
//! lines only, one per event counted, each a JSON object serde_json reads (also when the request was refused
//! part-way: the worker rolls those back).

pub fn whole_records(out: &[u8], events: u64) -> Vec<serde_json::Value> {
    let lines = &out[b"previous\n".len()..];
    assert!(lines.is_empty() || lines.ends_with(b"\n"));
    let records: Vec<&[u8]> = lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(records.len() as u64, events);
    records
        .into_iter()
        .map(|record| {
            let value: serde_json::Value = serde_json::from_slice(record).expect("a record serde_json reads");
            assert!(value.is_object() && value.get("raw_data").is_some(), "{value}");
            value
        })
        .collect()
}
