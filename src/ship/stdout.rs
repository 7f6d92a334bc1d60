//! The stdout sink: each chunk's raw compressed bytes, one after another. Concatenated gzip members are one
//! valid gzip stream (and concatenated zstd frames one valid zstd stream), so `plutos | gunzip` works.
//! Logs go to stderr, never here.

use std::fs::File;
use std::io::{self, Write};

use super::object::{ChunkFile, SinkError};

#[derive(Debug, Clone, Copy, Default)]
pub struct StdoutSink;

impl StdoutSink {
    /// Holds stdout's lock for the whole chunk: uploads in flight side by side never interleave their bytes.
    pub fn put(&self, chunk: &ChunkFile) -> Result<(), SinkError> {
        let mut out = io::stdout().lock();
        io::copy(&mut File::open(&chunk.path)?, &mut out)?;
        out.flush()?;
        Ok(())
    }
}
