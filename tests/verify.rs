//! `plutos verify` on what the real server shipped to a file sink, then on copies of it broken on purpose: an
//! object deleted, an object whose sidecar stayed, a truncated object, a doctored sidecar, a duplicate. S3
//! buckets: tests/s3.rs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Ships 60 events in chunks of at most 10 (2 workers, so at least 6 objects) and returns the sink's directory.
fn shipped() -> tempfile::TempDir {
    let server = TestServer::start(&["--max-chunk-events", "10"]);
    let mut client = server.client();
    for i in 0..60 {
        let response = client.request(format!("GET /e?i={i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_eq!(response.status, 200);
    }
    server.stop()
}

/// Runs the binary; returns the exit code and stdout.
fn verify(target: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_plutos")).arg("verify").arg(target).env_clear().output().unwrap();
    (output.status.code().expect("exited"), String::from_utf8(output.stdout).unwrap())
}

/// A copy of the sink's directory to break.
fn copy(out: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    collect_files(out, &mut files);
    for file in files {
        let to = copy.path().join(file.strip_prefix(out).unwrap());
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(&file, &to).unwrap();
    }
    copy
}

/// The objects (not sidecars) under `dir`, and the `first-seq` of each.
fn objects(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    let mut objects: Vec<_> = files
        .into_iter()
        .filter(|f| !f.to_string_lossy().ends_with(".meta.json"))
        .map(|f| {
            let meta: serde_json::Value = serde_json::from_slice(&fs::read(sidecar(&f)).unwrap()).unwrap();
            let first_seq = meta["first-seq"].as_u64().unwrap();
            (f, first_seq)
        })
        .collect();
    objects.sort();
    objects
}

fn sidecar(object: &Path) -> PathBuf {
    PathBuf::from(format!("{}.meta.json", object.display()))
}

fn key(dir: &Path, object: &Path) -> String {
    object.strip_prefix(dir).unwrap().display().to_string()
}

#[test]
fn a_complete_sink_passes_and_each_kind_of_damage_is_reported() {
    let shipped = shipped();
    let out = shipped.path().join("out");
    let (code, report) = verify(&out);
    assert_eq!(code, 0, "{report}");
    let summary = report.lines().last().unwrap();
    assert!(summary.starts_with("plutos verify: "), "{report}");
    assert!(summary.contains(" objects, 60 events from "), "{report}");
    assert!(summary.ends_with("; 0 gaps (0 events missing), 0 duplicated ranges, 0 bad objects"), "{report}");
    assert_eq!(report.lines().count(), 1, "no findings expected:\n{report}");
    let all = objects(&out);
    assert!(all.len() >= 6, "{all:?}");
    // The first object of a writer, so the hole is followed by another object and cannot pass as unshipped.
    let (first, _) = all.iter().find(|(_, seq)| *seq == 0).unwrap().clone();

    let deleted = copy(&out);
    let victim = deleted.path().join(first.strip_prefix(&out).unwrap());
    fs::remove_file(&victim).unwrap();
    fs::remove_file(sidecar(&victim)).unwrap();
    let (code, report) = verify(deleted.path());
    assert_eq!(code, 1, "{report}");
    assert!(report.lines().any(|l| l.starts_with("gap ") && l.contains(": events 0..=")), "{report}");
    assert!(report.lines().last().unwrap().contains("; 1 gaps ("), "{report}");

    let orphan = copy(&out);
    let victim = orphan.path().join(first.strip_prefix(&out).unwrap());
    fs::remove_file(&victim).unwrap();
    let (code, report) = verify(orphan.path());
    assert_eq!(code, 1, "{report}");
    let line = format!("object {}: cannot be read: ", key(orphan.path(), &victim));
    assert!(report.lines().any(|l| l.starts_with(&line)), "{line:?} in\n{report}");

    let truncated = copy(&out);
    let victim = truncated.path().join(first.strip_prefix(&out).unwrap());
    let bytes = fs::read(&victim).unwrap();
    fs::write(&victim, &bytes[..bytes.len() - 12]).unwrap();
    let (code, report) = verify(truncated.path());
    assert_eq!(code, 1, "{report}");
    let name = key(truncated.path(), &victim);
    for problem in ["sha256 ", "undecodable after "] {
        let line = format!("object {name}: {problem}");
        assert!(report.lines().any(|l| l.starts_with(&line)), "{line:?} in\n{report}");
    }

    let doctored = copy(&out);
    let victim = doctored.path().join(first.strip_prefix(&out).unwrap());
    let mut meta: serde_json::Value = serde_json::from_slice(&fs::read(sidecar(&victim)).unwrap()).unwrap();
    let events = meta["events"].as_u64().unwrap();
    meta["events"] = (events + 1).into();
    meta["last-seq"] = events.into();
    fs::write(sidecar(&victim), serde_json::to_vec(&meta).unwrap()).unwrap();
    let (code, report) = verify(doctored.path());
    assert_eq!(code, 1, "{report}");
    let line =
        format!("object {}: holds {events} lines, metadata says {} events", key(doctored.path(), &victim), events + 1);
    assert!(report.lines().any(|l| l == line), "{line:?} in\n{report}");

    let duplicated = copy(&out);
    let original = duplicated.path().join(first.strip_prefix(&out).unwrap());
    let twin = PathBuf::from(original.display().to_string().replace("-00000000.ndjson", "-00000999.ndjson"));
    assert_ne!(twin, original);
    fs::copy(&original, &twin).unwrap();
    let mut meta: serde_json::Value = serde_json::from_slice(&fs::read(sidecar(&original)).unwrap()).unwrap();
    meta["key"] = key(duplicated.path(), &twin).into();
    fs::write(sidecar(&twin), serde_json::to_vec(&meta).unwrap()).unwrap();
    let (code, report) = verify(duplicated.path());
    assert_eq!(code, 0, "duplicates are listed, not failed:\n{report}");
    let line = format!(
        "events 0..={} in {} and {}",
        events - 1,
        key(duplicated.path(), &original),
        key(duplicated.path(), &twin)
    );
    assert!(report.lines().any(|l| l.starts_with("duplicate ") && l.ends_with(&line)), "{line:?} in\n{report}");
    assert!(report.lines().last().unwrap().contains(", 1 duplicated ranges, 0 bad objects"), "{report}");
}

#[test]
fn a_target_that_cannot_be_listed_exits_2() {
    let missing = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_plutos"))
        .args(["verify", missing.path().join("nothing").to_str().unwrap()])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("plutos verify: ") && stderr.contains("No such file"), "{stderr}");
}
