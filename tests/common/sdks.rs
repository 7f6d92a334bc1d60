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
