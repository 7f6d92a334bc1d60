//! The spool's dead-letter files: events a message sink (Kafka, SQS) cannot send — over its message limit, or
//! refused for their content — kept in `dead-letter/{object key}.ndjson` instead, so they never block their
//! chunk. Their bytes count against `MAX_SPOOL_BYTES` as set aside.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use crate::spool::{sync_data, sync_dir};
use crate::state::Shared;

/// Appends `line` to the dead-letter file of the object `key` durably (and returns its path): the line and its newline in one
/// `write(2)`, so a kill cannot leave two lines merged; a new file's and a new directory's entries synced
/// before the chunk can leave the spool.
pub fn write(dir: &Path, key: &str, line: &[u8], shared: &Shared) -> io::Result<PathBuf> {
    let path = dir.join(format!("{}.ndjson", key.replace('/', "_")));
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
    }
    let created = !path.exists();
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    let mut record = Vec::with_capacity(line.len() + 1);
    record.extend_from_slice(line);
    record.push(b'\n');
    file.write_all(&record)?;
    sync_data(&file)?;
    if created {
        sync_dir(dir)?;
    }
    shared.aside_bytes.fetch_add(record.len() as u64, Relaxed);
    Ok(path)
}
