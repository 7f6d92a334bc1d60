//! The analytics SDKs under test, installed (pinned, from PyPI and npm) by scripts/sdks.sh into a cache outside
//! the clone: a Python with the Python SDKs and DuckDB, and a node_modules with the Node SDKs and the browser
//! SDKs' built files.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// `(python, node_modules)`: from `PLUTOS_SDK_PYTHON` and `PLUTOS_SDK_NODE` (scripts/test.sh sets them), else
/// from running scripts/sdks.sh.
pub fn sdks() -> &'static (PathBuf, PathBuf) {
    static SDKS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    SDKS.get_or_init(|| {
        if let (Some(python), Some(node)) = (std::env::var_os("PLUTOS_SDK_PYTHON"), std::env::var_os("PLUTOS_SDK_NODE"))
        {
            return (python.into(), node.into());
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sdks.sh");
        let output = Command::new(script).stderr(Stdio::inherit()).output().expect("scripts/sdks.sh runs");
        assert!(output.status.success(), "scripts/sdks.sh failed");
        let text = String::from_utf8(output.stdout).unwrap();
        let find = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(PathBuf::from).unwrap();
        (find("PLUTOS_SDK_PYTHON="), find("PLUTOS_SDK_NODE="))
    })
}

/// Checks every bad row against its schema in the test registry (`tests/data/iglu`) with Python's jsonschema
/// (`tests/badrows.py`): an independent validator, not plutos's own.
pub fn assert_bad_rows_valid(rows: &[serde_json::Value]) {
    use std::io::Write;
    assert!(!rows.is_empty(), "no bad rows to check");
    let (python, _) = sdks();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut child = Command::new(python)
        .arg(format!("{root}/tests/badrows.py"))
        .arg(format!("{root}/tests/data/iglu"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the SDKs' Python runs");
    let mut input = Vec::new();
    for row in rows {
        input.extend_from_slice(row.to_string().as_bytes());
        input.push(b'\n');
    }
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bad rows that Python's jsonschema refuses:\n{report}");
    assert!(report.contains(&format!("{} rows, 0 invalid", rows.len())), "{report}");
}
