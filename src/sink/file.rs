//! The local directory sink (default): `{root}/{key}` plus `{root}/{key}.meta.json`, each written to a
//! temporary file, fsynced and renamed, so a reader never sees a partial object.

use std::fs;
use std::path::PathBuf;

use super::{ObjectMeta, SinkError};
use crate::spool::write_durably;

pub struct FileSink {
    root: PathBuf,
}

impl FileSink {
    pub fn new(root: PathBuf) -> FileSink {
        FileSink { root }
    }

    pub fn put(&mut self, object: &ObjectMeta, body: &[u8]) -> Result<(), SinkError> {
        let path = self.root.join(&object.key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        // Data first, then the sidecar: a sidecar always describes a complete object.
        write_durably(&path, body)?;
        let meta = serde_json::to_vec(object).map_err(std::io::Error::other)?;
        let mut meta_path = path.into_os_string();
        meta_path.push(".meta.json");
        write_durably(&PathBuf::from(meta_path), &meta)?;
        Ok(())
    }
}
