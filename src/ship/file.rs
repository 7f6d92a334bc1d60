//! The local directory sink (default): `{root}/{key}` plus `{root}/{key}.meta.json`, each written to a
//! temporary file, fsynced and renamed, so a reader never sees a partial object. Putting the same key again
//! replaces it with the same bytes.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::object::{ChunkFile, ObjectMeta, SinkError};
use super::parquet::MergedMeta;
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
        self.store(&object.key, &serde_json::to_vec(object).map_err(io::Error::other)?, chunk)
    }

    /// A Parquet object and its manifest (`OUTPUT_FORMAT=parquet`).
    pub fn put_merged(&self, meta: &MergedMeta, file: &ChunkFile) -> Result<(), SinkError> {
        self.store(&meta.manifest.key, &serde_json::to_vec(meta).map_err(io::Error::other)?, file)
    }

    fn store(&self, key: &str, meta: &[u8], chunk: &ChunkFile) -> Result<(), SinkError> {
        let path = self.root.join(key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        // Data first, then the sidecar: a sidecar always describes a complete object.
        // io::copy between files uses copy_file_range: the bytes never pass through this process.
        write_durably_with(&path, |out| io::copy(&mut File::open(&chunk.path)?, out).map(drop))?;
        let mut meta_path = path.into_os_string();
        meta_path.push(".meta.json");
        write_durably(&PathBuf::from(meta_path), meta)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::object::sha256_file;

    /// A chunk shipped, then shipped again after a crash before its spool file was deleted: one object, the
    /// same bytes, one sidecar, no temporary file left.
    #[test]
    fn putting_the_same_key_again_leaves_one_identical_object() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = dir.path().join("chunk.ndjson.gz");
        fs::write(&chunk, b"compressed bytes").unwrap();
        let (len, sha256) = sha256_file(&chunk).unwrap();
        let object = ObjectMeta {
            key: "p/created_date=2026-11-27/hour=02/h-b-w0-00000000.ndjson.gz".into(),
            events: 1,
            first_seq: 0,
            last_seq: 0,
            sha256,
            host: "h".into(),
            boot: "b".into(),
            worker: 0,
            stream: crate::spool::Stream::Good,
            content_encoding: Some("gzip"),
        };
        let sink = FileSink::new(dir.path().join("out"));
        let file = ChunkFile { path: chunk, len };
        sink.put(&object, &file).unwrap();
        let first = fs::read(sink.root().join(&object.key)).unwrap();
        sink.put(&object, &file).unwrap();
        assert_eq!(fs::read(sink.root().join(&object.key)).unwrap(), first);
        let hour = sink.root().join("p/created_date=2026-11-27/hour=02");
        let mut names: Vec<String> =
            fs::read_dir(hour).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["h-b-w0-00000000.ndjson.gz", "h-b-w0-00000000.ndjson.gz.meta.json"]);
    }
}
