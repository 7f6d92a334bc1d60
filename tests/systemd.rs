//! The systemd unit as shipped: `systemd-analyze verify` accepts it (pointed at this build's binary), its
//! offline security exposure stays at 2.0 or less, and the env file lists every setting the binary knows.

use std::path::Path;
use std::process::Command;

/// The unit with ExecStart/ExecStartPre pointed at the binary under test.
fn unit_for_this_build(dir: &Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/plutos.service")).unwrap();
    let path = dir.join("plutos.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/plutos", env!("CARGO_BIN_EXE_plutos"))).unwrap();
    path
}

fn analyze(args: &[&str]) -> (bool, String) {
    let output = Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("systemd-analyze (scripts/test.sh installs the systemd package when it is missing)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn the_unit_verifies_and_is_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let unit = unit.to_str().unwrap();
    let (ok, text) = analyze(&["verify", unit]);
    assert!(ok && text.trim().is_empty(), "systemd-analyze verify: {text}");
    // --threshold is in tenths: exit non-zero above an exposure of 2.0.
    let (ok, text) = analyze(&["security", "--offline=true", "--threshold=20", unit]);
    let overall = text.lines().find(|l| l.contains("Overall exposure")).unwrap_or("no overall line").to_string();
    assert!(ok, "{overall}");
}

#[test]
fn the_env_file_lists_every_setting_at_its_default() {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/plutos.env")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_plutos")).arg("--print-env-file").env_clear().output().unwrap();
    assert!(output.status.success());
    assert_eq!(shipped, String::from_utf8(output.stdout).unwrap(), "regenerate with plutos --print-env-file");
    for name in ["PORT", "DRIVER", "S3_BUCKET", "WRITE_KEYS", "IP_HASH_KEY", "CORS_ORIGINS", "LOG_FORMAT"] {
        assert!(shipped.contains(&format!("\n#{name}=")), "{name}");
    }
}
