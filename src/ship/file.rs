//! The local directory sink (default): `{root}/{key}` plus `{root}/{key}.meta.json`, each written to a
//! temporary file, fsynced and renamed, so a reader never sees a partial object. Putting the same key again
//! replaces it with the same bytes.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::object::{ChunkFile, ObjectMeta, SinkError};
use crate::spool::{write_durably, write_durably_with};

#[derive(Debug, Clone)]
pub struct FileSink {
    root: PathBuf,
}

impl FileSink {
    pub fn new(root: PathBuf) -> FileSink {
        FileSink { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn put(&self, object: &ObjectMeta, chunk: &ChunkFile) -> Result<(), SinkError> {
        let path = self.root.join(&object.key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        // Data first, then the sidecar: a sidecar always describes a complete object.
        // io::copy between files uses copy_file_range: the bytes never pass through this process.
        write_durably_with(&path, |out| io::copy(&mut File::open(&chunk.path)?, out).map(drop))?;
        let meta = serde_json::to_vec(object).map_err(io::Error::other)?;
        let mut meta_path = path.into_os_string();
        meta_path.push(".meta.json");
        write_durably(&PathBuf::from(meta_path), &meta)?;
        Ok(())
    }
}
