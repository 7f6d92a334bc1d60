//! The chunk writer on a real spool directory: what each commit leaves in the open file, when a chunk is due
//! for sealing, what sealing leaves, the sequence numbers, memory mode, and the syncs each FSYNC setting makes
//! (counted by `cost`).

use std::time::Duration;

use super::*;
use crate::cost::take_syncs as syncs;
use crate::spool::recoverable_lines;
use crate::spool::{Codec, Compression, Stream};

const LINE: &[u8] = b"{\"n\":1}\n";

fn settings(durability: Durability, fsync: Fsync) -> ChunkConfig {
    ChunkConfig {
        compression: Compression { codec: Codec::None, level: 0 },
        durability,
        fsync,
        max_bytes: 64 << 20,
        max_events: None,
        max_age: Duration::from_secs(60),
    }
}

fn writer(dir: &tempfile::TempDir, settings: ChunkConfig) -> ChunkWriter {
    ChunkWriter::new(2, Stream::Good, "boot".into(), SpoolDirs::create(dir.path()).unwrap(), settings)
}

fn files(dir: &std::path::Path) -> Vec<PathBuf> {
    fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect()
}

#[test]
fn each_commit_is_in_the_open_file_when_it_returns_and_sealing_moves_the_whole_stream() {
    for codec in [Codec::None, Codec::Gzip, Codec::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = settings(Durability::Spool, Fsync::Never);
        config.compression = Compression { codec, level: 3 };
        let mut writer = writer(&dir, config);
        let now = Instant::now();
        assert_eq!(writer.commit(b"", 0, now, 1000).unwrap(), 0);
        assert!(writer.is_idle() && files(&writer.dirs.open).is_empty(), "no chunk before its first event");
        let mut grown = 0;
        for batch in 1..=3u64 {
            grown += writer.commit(&LINE.repeat(batch as usize), batch, now, 1000).unwrap();
            let open = files(&writer.dirs.open);
            let bytes = fs::read(&open[0]).unwrap();
            assert_eq!(bytes.len() as u64, grown, "{codec:?}: the file is what the commits said they wrote");
            let (_, _, events) = recoverable_lines(codec, &bytes);
            assert_eq!(events, batch * (batch + 1) / 2, "{codec:?}: every committed line decodes from the file");
        }
        let (sealed, tail) = writer.seal().unwrap();
        let sealed = sealed.expect("a chunk was open");
        assert_eq!((sealed.events, sealed.id.first_seq, sealed.id.chunk_seq, sealed.id.worker), (6, 0, 0, 2));
        assert_eq!(fs::metadata(&sealed.path).unwrap().len(), grown + tail, "{codec:?}");
        assert!(files(&writer.dirs.open).is_empty() && writer.is_idle());
        let mut text = Vec::new();
        crate::spool::encoder::decode(codec, &fs::read(&sealed.path).unwrap(), &mut text).expect("a complete stream");
        assert_eq!(text, LINE.repeat(6));

        // The next chunk goes on with the numbers.
        writer.commit(LINE, 1, now, 1001).unwrap();
        let next = writer.seal().unwrap().0.unwrap();
        assert_eq!((next.id.first_seq, next.id.chunk_seq, next.id.first_unix, next.events), (6, 1, 1001, 1));
        assert_eq!(writer.seal().unwrap().0.map(|c| c.events), None, "nothing open: nothing sealed");
    }
}

#[test]
fn a_chunk_is_due_by_size_by_events_and_by_age_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut by_size =
        writer(&dir, ChunkConfig { max_bytes: 3 * LINE.len() as u64, ..settings(Durability::Spool, Fsync::Never) });
    assert!(!by_size.seal_due(now), "nothing open");
    by_size.commit(&LINE.repeat(2), 2, now, 0).unwrap();
    assert!(!by_size.seal_due(now), "one line short of the size");
    by_size.commit(LINE, 1, now, 0).unwrap();
    assert!(by_size.seal_due(now), "at the size");

    let dir = tempfile::tempdir().unwrap();
    let mut by_events = writer(&dir, ChunkConfig { max_events: Some(3), ..settings(Durability::Spool, Fsync::Never) });
    by_events.commit(&LINE.repeat(2), 2, now, 0).unwrap();
    assert!(!by_events.seal_due(now));
    by_events.commit(LINE, 1, now, 0).unwrap();
    assert!(by_events.seal_due(now));

    let dir = tempfile::tempdir().unwrap();
    let mut by_age = writer(&dir, settings(Durability::Spool, Fsync::Never));
    by_age.commit(LINE, 1, now, 0).unwrap();
    assert_eq!(by_age.age_deadline(), Some(now + Duration::from_secs(60)));
    assert!(!by_age.seal_due(now + Duration::from_secs(59)));
    assert!(by_age.seal_due(now + Duration::from_secs(60)));
}

#[test]
fn memory_mode_writes_nothing_until_the_chunk_is_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let config = ChunkConfig { max_bytes: 4 * LINE.len() as u64, ..settings(Durability::Memory, Fsync::Never) };
    let mut writer = writer(&dir, config);
    let now = Instant::now();
    assert_eq!(writer.commit(&LINE.repeat(3), 3, now, 0).unwrap(), 0);
    assert!(!writer.seal_due(now), "the size counts what is held in memory");
    assert_eq!(writer.commit(LINE, 1, now, 0).unwrap(), 0);
    assert!(writer.seal_due(now));
    assert!(files(&writer.dirs.open).is_empty() && !writer.is_idle());
    let (sealed, bytes) = writer.seal().unwrap();
    let sealed = sealed.unwrap();
    assert_eq!((sealed.events, bytes), (4, 4 * LINE.len() as u64));
    assert_eq!(fs::read(&sealed.path).unwrap(), LINE.repeat(4));
}

#[test]
fn memory_mode_keeps_a_chunk_it_could_not_write_and_writes_it_at_the_next_seal() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = writer(&dir, settings(Durability::Memory, Fsync::Never));
    writer.commit(&LINE.repeat(2), 2, Instant::now(), 0).unwrap();
    fs::remove_dir(&writer.dirs.sealed).unwrap();
    assert!(writer.seal().is_err());
    assert!(writer.is_backlogged() && writer.seal_due(Instant::now()) && !writer.is_idle());
    fs::create_dir(&writer.dirs.sealed).unwrap();
    let (sealed, bytes) = writer.seal().unwrap();
    assert_eq!((sealed.map(|c| c.events), bytes), (Some(2), 2 * LINE.len() as u64));
    assert!(!writer.is_backlogged() && writer.is_idle());
}

#[test]
fn fsync_always_syncs_every_commit_every_syncs_on_its_interval_and_never_does_not() {
    let now = Instant::now();
    let second = Duration::from_secs(1);
    let dir = tempfile::tempdir().unwrap();
    let mut never = writer(&dir, settings(Durability::Spool, Fsync::Never));
    syncs();
    never.commit(LINE, 1, now, 0).unwrap();
    never.sync_if_due(now + 10 * second).unwrap();
    never.seal().unwrap();
    assert_eq!(syncs(), 0, "FSYNC=never");

    let dir = tempfile::tempdir().unwrap();
    let mut always = writer(&dir, settings(Durability::Spool, Fsync::Always));
    always.commit(LINE, 1, now, 0).unwrap();
    assert_eq!(syncs(), 2, "the new file's directory entry, then the commit");
    always.commit(LINE, 1, now, 0).unwrap();
    always.sync_if_due(now + 10 * second).unwrap();
    assert_eq!(syncs(), 1, "each commit, and nothing left for the interval");
    always.seal().unwrap();
    assert_eq!(syncs(), 2, "the sealed file, then its directory");

    let dir = tempfile::tempdir().unwrap();
    let mut every = writer(&dir, settings(Durability::Spool, Fsync::Every(second)));
    every.commit(LINE, 1, now, 0).unwrap();
    assert_eq!(syncs(), 1, "the new file's directory entry only");
    every.sync_if_due(now + second / 2).unwrap();
    assert_eq!(syncs(), 0, "not yet due");
    every.sync_if_due(now + second).unwrap();
    assert_eq!(syncs(), 1, "due after the interval");
    every.sync_if_due(now + 3 * second).unwrap();
    assert_eq!(syncs(), 0, "nothing written since");
    let half = second / 2;
    every.commit(LINE, 1, now + 3 * second, 0).unwrap();
    every.sync_if_due(now + 3 * second + half).unwrap();
    assert_eq!(syncs(), 1, "written long after the last sync: synced at once");
    every.commit(LINE, 1, now + 3 * second + half, 0).unwrap();
    every.sync_if_due(now + 4 * second).unwrap();
    assert_eq!(syncs(), 0, "written within the interval of the last sync");
    every.sync_if_due(now + 4 * second + half).unwrap();
    assert_eq!(syncs(), 1);
}
