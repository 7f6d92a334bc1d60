//! A real full disk: the spool on a 1 MiB tmpfs the test mounts (root only: without it the test fails under
//! `CI=true` and elsewhere says why it did not run; tests/process.rs covers a failing write through
//! RLIMIT_FSIZE without root). The sink is down, so the spool fills the filesystem: every answer must be a 200
//! for an event that was written or a 503 + Retry-After for one that was not; when the sink comes back and
//! chunks leave the spool, ingest resumes; at the end every 200 is shipped, no 503 is, and `plutos verify`
//! passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::collector::*;
use common::*;

/// A tmpfs of `size` mounted for the life of the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `Err` with the reason when this process may not mount.
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "plutos-test"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_spool_filesystem_answers_503_never_a_200_it_did_not_write_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let _tmpfs = match Tmpfs::mount(&spool, "1m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            prerequisite_missing(&format!("cannot mount a tmpfs for the spool ({why})"));
            return;
        }
    };
    let out = dir.path().join("out");
    std::fs::write(&out, b"not a directory").unwrap(); // the sink is down until this becomes a directory
    let spool_env = spool.display().to_string();
    let env = [
        ("WORKERS", "1"),
        ("COMPRESSION_TYPE", "none"),
        ("SPOOL_DIR", spool_env.as_str()),
        ("MAX_SPOOL_BYTES", "1GiB"),
        ("MAX_CHUNK_EVENTS", "500"),
    ];
    let collector = Collector::spawn(dir.path(), &env);
    let mut client = Client::connect(collector.addr);
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut sink_back = false;
    for i in 0.. {
        assert!(start.elapsed() < DEADLINE, "no 503s and then 200s again within the deadline");
        let id = format!("disk-{i}");
        let raw = format!("GET /e?id={id}&pad={} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(200));
        match client.try_request(raw.as_bytes()) {
            Some(r) if r.status == 200 => {
                acked.push(id);
                if sink_back {
                    break; // ingest works again once chunks left the full filesystem
                }
            }
            Some(r) => {
                assert_eq!(r.status, 503, "{}", r.text());
                assert_eq!(r.header("retry-after"), Some("1"));
                refused.push(id);
                if refused.len() == 20 {
                    std::fs::remove_file(&out).unwrap();
                    sink_back = true;
                }
            }
            None => client = Client::connect(collector.addr),
        }
    }
    assert!(acked.len() > 1000, "the filesystem filled after {} events", acked.len());
    collector.signal(libc::SIGTERM);
    assert!(collector.wait().success());
    assert_all_shipped(&acked, &out);
    let shipped = shipped_ids(&out);
    let stored: Vec<&String> = refused.iter().filter(|id| shipped.contains(*id)).collect();
    assert!(stored.is_empty(), "503'd events were stored: {stored:?}");
    let verify = Command::new(env!("CARGO_BIN_EXE_plutos")).arg("verify").arg(&out).env_clear().output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
