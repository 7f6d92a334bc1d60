//! The stdout sink: each chunk's raw compressed bytes, one after another. Concatenated gzip members are one
//! valid gzip stream (and concatenated zstd frames one valid zstd stream), so `plutos | gunzip` works.
//! Logs go to stderr, never here.

use std::fs::File;
use std::io::{self, Write};

use super::{ChunkFile, ObjectMeta, SinkError};

pub struct StdoutSink {
    out: io::Stdout,
}

impl StdoutSink {
    pub fn new() -> StdoutSink {
        StdoutSink { out: io::stdout() }
    }

    pub fn put(&mut self, _object: &ObjectMeta, chunk: &ChunkFile<'_>) -> Result<(), SinkError> {
        let mut out = self.out.lock();
        io::copy(&mut File::open(chunk.path)?, &mut out)?;
        out.flush()?;
        Ok(())
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink::new()
    }
}
