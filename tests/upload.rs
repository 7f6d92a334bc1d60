//! The uploader against the file sink: chunks are shipped independently (one that keeps failing holds no other
//! back), every failure is retried, and a chunk leaves the spool only once its own upload is confirmed.

mod common;

use common::*;

#[test]
fn a_chunk_that_keeps_failing_holds_no_other_back() {
    let dir = tempfile::tempdir().unwrap();
    let chunks = sealed_chunks(&dir.path().join("spool"), "01boot0000000000000a", 6, 5);
    // The first chunk cannot be written: a directory stands where its object goes.
    let blocked_key = chunks[0].0.id.object_key("", &plutos::event::ids::host_name());
    let blocker = dir.path().join("out").join(&blocked_key);
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();

    let server = TestServer::start_in(dir, &["--upload-concurrency", "2", "--upload-backoff-max-ms", "100"]);
    wait_until("the other five chunks to ship", || server.metric("plutos_chunks_shipped_total") == 5);
    wait_until("the first to fail again and again", || {
        server.metric("plutos_upload_failures_total{kind=\"retryable\"}") >= 3
    });
    assert_eq!(server.metric("plutos_chunks_queued"), 1, "the failing chunk is still held");
    assert!(server.metric("plutos_oldest_unshipped_chunk_age_seconds") < 3600);
    assert!(chunks[0].0.path.exists(), "a failing chunk stays in the spool");
    assert!(chunks[1..].iter().all(|(c, _)| !c.path.exists()), "shipped chunks leave the spool");

    std::fs::remove_dir_all(&blocker).unwrap();
    wait_until("the first chunk to ship once its way is clear", || server.metric("plutos_chunks_shipped_total") == 6);
    assert_eq!(server.metric("plutos_chunks_queued"), 0);
    assert_eq!(server.metric("plutos_oldest_unshipped_chunk_age_seconds"), 0);
    let dir = server.stop();
    let mut shipped: Vec<String> = raw_data(&read_records(&dir.path().join("out")))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    shipped.sort();
    let mut want: Vec<String> = chunks.into_iter().flat_map(|(_, ids)| ids).collect();
    want.sort();
    assert_eq!(shipped, want, "every event exactly once");
}

/// A sealed chunk whose gzip stream was cut (a damaged spool disk) can never be shipped: it is set aside in
/// `spool/corrupt/` at its first attempt — counted, `/ready` says so while staying ready — and every other
/// chunk ships.
#[test]
fn a_chunk_that_does_not_decode_is_set_aside_and_the_others_ship() {
    let dir = tempfile::tempdir().unwrap();
    let chunks = sealed_chunks(&dir.path().join("spool"), "01boot0000000000000c", 3, 5);
    let bad = &chunks[1].0.path;
    let bytes = std::fs::read(bad).unwrap();
    std::fs::write(bad, &bytes[..bytes.len() / 2]).unwrap();
    let name = bad.file_name().unwrap().to_owned();

    let server = TestServer::start_in(dir, &["--upload-backoff-max-ms", "100"]);
    wait_until("two shipped and one set aside", || {
        server.metric("plutos_chunks_shipped_total") == 2 && server.metric("plutos_chunks_corrupt_total") == 1
    });
    let ready = get(server.addr, "/ready");
    assert_eq!(ready.status, 200, "a corrupt chunk does not take the collector out of service");
    assert!(ready.text().contains("1 sealed chunks did not decode and were set aside in spool/corrupt"));
    assert!(server.metric("plutos_spool_aside_bytes") > 0);
    assert_eq!(server.metric("plutos_upload_failures_total{kind=\"retryable\"}"), 0, "not tried again");
    let spool = server.spool_dir();
    let dir = server.stop();
    assert!(spool.join("corrupt").join(&name).exists());
    let mut shipped: Vec<String> = read_shipped(&dir.path().join("out"))
        .into_iter()
        .flat_map(|s| s.records)
        .map(|r| r["raw_data"]["id"].as_str().unwrap().to_string())
        .collect();
    shipped.sort();
    let mut want: Vec<String> = [&chunks[0].1, &chunks[2].1].into_iter().flatten().cloned().collect();
    want.sort();
    assert_eq!(shipped, want, "the sound chunks, once each");
}
