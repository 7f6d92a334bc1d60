//! The uploader against a scripted sink: what it ships, retries, deletes, counts and logs, its concurrency,
//! and the shutdown deadline. The sink's failures are scripted per chunk, so the tests do not depend on which
//! upload the runtime happens to start first.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;
use crate::ship::object::sha256_of;
use crate::spool::Codec;

/// How one `put` of a chunk goes.
#[derive(Debug, Clone)]
pub enum Outcome {
    Fail(SinkError),
    /// Fails once every upload scripted with this outcome has started (the failures happen together).
    FailTogether(SinkError),
    /// Waits for the shutdown deadline, then stores the object anyway.
    StoreAfterDeadline,
    /// Waits for the shutdown deadline and gives up, as a cancelled upload does.
    CancelAtDeadline,
}

#[derive(Default)]
pub struct Script {
    /// Per chunk (by its first sequence number): how each put goes in turn; it stores the object once none
    /// is left.
    outcomes: HashMap<u64, VecDeque<Outcome>>,
    together: Option<Arc<tokio::sync::Barrier>>,
    stored: Vec<(ObjectMeta, Vec<u8>)>,
    in_flight: usize,
    max_in_flight: usize,
    /// What each put saw: chunks queued, uploads in flight, a permanent error standing, oldest first event.
    seen: Vec<(u64, u64, bool, i64)>,
}

/// A sink whose every put does what the script says, watching the uploader's gauges as it goes.
#[derive(Clone)]
pub struct Scripted {
    script: Arc<Mutex<Script>>,
    shared: Arc<Shared>,
}

impl Scripted {
    pub async fn put(&self, object: &ObjectMeta, chunk: &ChunkFile, cancel: &Cancel) -> Result<(), SinkError> {
        let (outcome, together) = {
            let mut script = self.script.lock().unwrap();
            script.in_flight += 1;
            script.max_in_flight = script.max_in_flight.max(script.in_flight);
            let m = &self.shared.uploader;
            let seen = (
                m.chunks_queued.load(Relaxed),
                m.uploads_in_flight.load(Relaxed),
                m.permanent_error.load(Relaxed),
                m.oldest_unshipped_unix.load(Relaxed),
            );
            script.seen.push(seen);
            let outcome = script.outcomes.get_mut(&object.first_seq).and_then(|o| o.pop_front());
            (outcome, script.together.clone())
        };
        // Lets the other uploads in flight start before this one ends.
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        let result = match outcome {
            Some(Outcome::Fail(e)) => Err(e),
            Some(Outcome::FailTogether(e)) => {
                together.expect("a barrier for FailTogether").wait().await;
                Err(e)
            }
            Some(Outcome::CancelAtDeadline) => {
                cancel.clone().cancelled().await;
                Err(SinkError::Cancelled)
            }
            Some(Outcome::StoreAfterDeadline) => {
                cancel.clone().cancelled().await;
                Ok(())
            }
            None => Ok(()),
        };
        let mut script = self.script.lock().unwrap();
        if result.is_ok() {
            script.stored.push((object.clone(), fs::read(&chunk.path).expect("the chunk is in the spool")));
        }
        script.in_flight -= 1;
        result
    }
}

/// A spool, the shared state and a scripted sink.
struct Rig {
    _dir: tempfile::TempDir,
    dirs: SpoolDirs,
    shared: Arc<Shared>,
    sink: Scripted,
}

fn settings(concurrency: usize) -> UploadConfig {
    UploadConfig {
        key_prefix: "p".into(),
        concurrency,
        backoff_max: Duration::from_millis(2),
        permanent_retry: Duration::from_millis(1),
        parquet: None,
        window: Duration::from_secs(60),
        notify: None,
    }
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let dirs = SpoolDirs::create(dir.path()).unwrap();
        let shared = Arc::new(Shared::new(1, 0, u64::MAX));
        let sink = Scripted { script: Arc::default(), shared: shared.clone() };
        Rig { _dir: dir, dirs, shared, sink }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.sink.script.lock().unwrap()
    }

    fn id(seq: u64) -> ChunkId {
        ChunkId {
            boot: "b".into(),
            worker: 0,
            stream: crate::spool::Stream::Good,
            chunk_seq: seq,
            first_seq: seq,
            first_unix: 1000 + seq as i64,
            codec: Codec::None,
        }
    }

    /// A sealed chunk of `events` lines in the spool, counted in the spool's size.
    fn sealed(&self, seq: u64, events: u64) -> SealedChunk {
        let id = Rig::id(seq);
        let path = self.dirs.sealed.join(id.sealed_name(events));
        let text: String = (0..events).map(|i| format!("{{\"seq\":{}}}\n", seq + i)).collect();
        fs::write(&path, &text).unwrap();
        self.shared.spool_grew(text.len() as u64);
        SealedChunk { id, events, path }
    }

    /// Runs the uploader over `jobs` (handed over, then the workers hang up) and `recovered` until it returns;
    /// returns what it logged.
    fn run(&self, concurrency: usize, jobs: Vec<UploadJob>, recovered: Vec<SealedChunk>) -> String {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt().with_writer(logs.clone()).with_ansi(false).finish();
        let (send, receive) = crossbeam_channel::unbounded();
        for job in jobs {
            send.send(job).unwrap();
        }
        drop(send);
        let (started, check) = crossbeam_channel::bounded(1);
        let uploader = Uploader {
            notifier: None,
            sink: Sink::Scripted(self.sink.clone()),
            dirs: self.dirs.clone(),
            host: "h".into(),
            boot: "b".into(),
            shared: self.shared.clone(),
            settings: settings(concurrency),
        };
        tracing::subscriber::with_default(subscriber, || uploader.run(receive, recovered, started));
        assert_eq!(check.recv().unwrap(), Ok("scripted sink".to_string()));
        String::from_utf8(logs.0.lock().unwrap().clone()).unwrap()
    }

    fn spool_files(&self) -> usize {
        fs::read_dir(&self.dirs.sealed).unwrap().count() + fs::read_dir(&self.dirs.open).unwrap().count()
    }
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

fn lines_with(logs: &str, text: &str) -> usize {
    logs.lines().filter(|l| l.contains(text)).count()
}

#[test]
fn every_chunk_is_shipped_once_deleted_and_counted_after_retries_within_the_concurrency() {
    let rig = Rig::new();
    let chunks: Vec<SealedChunk> = (0..5).map(|i| rig.sealed(i * 10, 3 + i)).collect();
    let spool_bytes = rig.shared.spool_bytes();
    {
        // The first two uploads meet inside the sink before failing, so two are in flight at once however the
        // blocking pool schedules their hashing.
        let mut script = rig.script();
        script.together = Some(Arc::new(tokio::sync::Barrier::new(2)));
        script.outcomes.insert(0, [Outcome::FailTogether(SinkError::Retryable("down".into()))].into());
        script.outcomes.insert(10, [Outcome::FailTogether(SinkError::Permanent("403".into()))].into());
    }
    // A deadline far off changes nothing.
    rig.shared.upload_deadline.set(std::time::Instant::now() + Duration::from_secs(3600)).unwrap();
    // Held from the start (as after a restart), so the first upload sees them all queued.
    rig.run(2, Vec::new(), chunks.clone());

    let script = rig.script();
    let mut keys: Vec<&str> = script.stored.iter().map(|(object, _)| object.key.as_str()).collect();
    keys.sort_unstable();
    let expected: Vec<String> = chunks.iter().map(|c| c.id.object_key("p", "h")).collect();
    assert_eq!(keys, expected, "each chunk stored once");
    for (object, bytes) in &script.stored {
        let chunk = chunks.iter().find(|c| c.id.first_seq == object.first_seq).unwrap();
        let (len, sha256) = sha256_of(&bytes[..]).unwrap();
        assert_eq!(object.sha256, sha256);
        assert_eq!((object.events, object.last_seq), (chunk.events, chunk.id.first_seq + chunk.events - 1));
        assert_eq!(len as usize, bytes.len());
    }
    assert_eq!(rig.spool_files(), 0, "every shipped chunk deleted");
    assert_eq!(script.max_in_flight, 2, "UPLOAD_CONCURRENCY uploads at a time");
    assert_eq!(script.seen[0], (5, 2, false, 1000), "queued = held + in flight; the oldest first event");

    let m = &rig.shared.uploader;
    let events: u64 = chunks.iter().map(|c| c.events).sum();
    assert_eq!(m.chunks_shipped.load(Relaxed), 5);
    assert_eq!(m.events_shipped.load(Relaxed), events);
    assert_eq!(m.bytes_shipped.load(Relaxed), spool_bytes);
    assert_eq!((m.retryable_failures.load(Relaxed), m.permanent_failures.load(Relaxed)), (1, 1));
    assert!(!m.permanent_error.load(Relaxed), "cleared by the uploads that succeeded after it");
    assert_eq!(rig.shared.spool_bytes(), 0, "the spool's size shrank by every shipped chunk");
    let gauges = (m.chunks_queued.load(Relaxed), m.uploads_in_flight.load(Relaxed));
    assert_eq!((gauges, m.oldest_unshipped_unix.load(Relaxed)), ((0, 0), 0));
}

#[test]
fn a_chunk_that_does_not_hold_what_its_name_counts_is_set_aside_once_and_the_others_ship() {
    let rig = Rig::new();
    let good = [rig.sealed(0, 3), rig.sealed(20, 3)];
    // Its name counts 4 lines; its stream holds 3 and a cut one.
    let bad = rig.sealed(10, 4);
    fs::write(&bad.path, "{\"seq\":10}\n{\"seq\":11}\n{\"seq\":12}\n{\"seq\":").unwrap();
    let bad_len = fs::metadata(&bad.path).unwrap().len();
    let logs = rig.run(2, Vec::new(), vec![good[0].clone(), bad.clone(), good[1].clone()]);

    let script = rig.script();
    let mut stored: Vec<u64> = script.stored.iter().map(|(object, _)| object.first_seq).collect();
    stored.sort_unstable();
    assert_eq!(stored, [0, 20], "the sound chunks shipped, the corrupt one never reached the sink");
    let m = &rig.shared.uploader;
    assert_eq!(m.chunks_corrupt.load(Relaxed), 1);
    assert_eq!((m.retryable_failures.load(Relaxed), m.permanent_failures.load(Relaxed)), (0, 0), "not retried");
    assert_eq!(lines_with(&logs, "corrupt"), 1, "{logs}");
    assert_eq!(rig.spool_files(), 0);
    let aside = rig.dirs.corrupt.join(bad.path.file_name().unwrap());
    assert!(aside.exists(), "set aside in spool/corrupt");
    assert_eq!(rig.shared.aside_bytes.load(Relaxed), bad_len, "its bytes still count, as set aside");
    assert!(rig.shared.ready_notes().unwrap().contains("1 sealed chunks did not decode"));
}

#[test]
fn a_failure_is_logged_once_per_change_not_per_attempt() {
    let rig = Rig::new();
    let chunk = rig.sealed(0, 1);
    let down = || Outcome::Fail(SinkError::Retryable("down".into()));
    let refused = || Outcome::Fail(SinkError::Permanent("access denied".into()));
    rig.script().outcomes.insert(0, [down(), down(), down(), refused(), refused()].into());
    let logs = rig.run(1, vec![UploadJob::Sealed(chunk)], Vec::new());
    assert_eq!(lines_with(&logs, "upload failed; retrying"), 1, "{logs}");
    assert_eq!(lines_with(&logs, "error=down"), 1, "{logs}");
    assert_eq!(lines_with(&logs, "upload refused; retrying slowly"), 1, "{logs}");
    assert_eq!(lines_with(&logs, "error=access denied"), 1, "{logs}");
    assert_eq!(lines_with(&logs, "uploads succeed again"), 1, "{logs}");
    let script = rig.script();
    assert_eq!(script.stored.len(), 1);
    let standing: Vec<bool> = script.seen.iter().map(|s| s.2).collect();
    assert_eq!(standing, [false, false, false, false, true, true], "a refusal stands until an upload succeeds");
}

#[test]
fn chunks_failing_the_same_way_together_log_one_line_and_recover_with_one() {
    let rig = Rig::new();
    let chunks = [rig.sealed(0, 1), rig.sealed(10, 1)];
    {
        let mut script = rig.script();
        script.together = Some(Arc::new(tokio::sync::Barrier::new(2)));
        for seq in [0, 10] {
            script.outcomes.insert(seq, [Outcome::FailTogether(SinkError::Retryable("down".into()))].into());
        }
    }
    let logs = rig.run(2, chunks.into_iter().map(UploadJob::Sealed).collect(), Vec::new());
    assert_eq!(lines_with(&logs, "upload failed; retrying"), 1, "{logs}");
    assert_eq!(lines_with(&logs, "uploads succeed again"), 1, "only once no chunk is failing:\n{logs}");
    assert_eq!(rig.script().stored.len(), 2);
    assert_eq!(rig.shared.uploader.retryable_failures.load(Relaxed), 2);
}

#[test]
fn at_the_deadline_uploads_are_cancelled_and_their_chunks_stay_but_one_that_completes_is_deleted() {
    let rig = Rig::new();
    let chunks = [rig.sealed(0, 1), rig.sealed(10, 2), rig.sealed(20, 3)];
    rig.script().outcomes.insert(0, [Outcome::StoreAfterDeadline].into());
    rig.script().outcomes.insert(10, [Outcome::CancelAtDeadline].into());
    rig.shared.upload_deadline.set(std::time::Instant::now()).unwrap();
    let logs = rig.run(2, Vec::new(), chunks.to_vec());
    let stored: Vec<u64> = rig.script().stored.iter().map(|(object, _)| object.first_seq).collect();
    assert_eq!(stored, vec![0], "only the upload that completed");
    assert!(!chunks[0].path.exists(), "a chunk confirmed at the deadline is deleted");
    assert!(chunks[1].path.exists() && chunks[2].path.exists(), "the others stay for the next start");
    assert_eq!(lines_with(&logs, "shutdown timeout: unshipped chunks stay in the spool"), 1, "{logs}");
    assert_eq!(lines_with(&logs, "chunks=2"), 1, "{logs}");
}

#[test]
fn an_open_chunk_handed_over_for_repair_is_sealed_shipped_and_accounted() {
    let rig = Rig::new();
    let path = rig.dirs.open.join(Rig::id(7).open_name());
    let text = b"{\"a\":1}\n{\"a\":2}\n{\"a\":";
    fs::write(&path, text).unwrap();
    rig.shared.spool_grew(text.len() as u64);
    rig.run(1, vec![UploadJob::Repair(path)], Vec::new());
    let script = rig.script();
    assert_eq!(script.stored.len(), 1);
    assert_eq!(script.stored[0].1, b"{\"a\":1}\n{\"a\":2}\n", "the complete lines");
    assert_eq!((script.stored[0].0.events, script.stored[0].0.last_seq), (2, 8));
    assert_eq!(rig.spool_files(), 0);
    assert_eq!(rig.shared.spool_bytes(), 0, "the open file's bytes, then the sealed one's, accounted");
}

#[test]
fn a_chunk_that_vanished_is_skipped_but_one_that_cannot_be_read_is_retried() {
    let rig = Rig::new();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let context = Context {
        sink: Sink::Scripted(rig.sink.clone()),
        notifier: None,
        dirs: rig.dirs.clone(),
        key_prefix: String::new(),
        host: "h".into(),
        shared: rig.shared.clone(),
    };
    let (_cancel_all, cancel) = watch::channel(false);
    let gone = SealedChunk { id: Rig::id(0), events: 1, path: rig.dirs.sealed.join("gone") };
    let result = runtime.block_on(ship(&context, gone, Cancel::new(cancel.clone())));
    assert!(matches!(result, Ok(Done::Vanished)));
    // A directory where the chunk should be: reading it fails, and not because it is missing.
    let unreadable = SealedChunk { id: Rig::id(0), events: 1, path: rig.dirs.sealed.clone() };
    let result = runtime.block_on(ship(&context, unreadable, Cancel::new(cancel)));
    assert!(matches!(result, Err(SinkError::Retryable(_))));
    assert!(rig.script().seen.is_empty(), "nothing reached the sink");
}

#[test]
fn the_loop_wakes_for_what_comes_due_not_for_what_waits_for_a_slot() {
    let now = Instant::now();
    let ms = Duration::from_millis;
    assert_eq!(next_wake([now - ms(5), now].into_iter(), now, None), now + IDLE_WAKE, "all due: no spin");
    assert_eq!(next_wake([now - ms(5), now + ms(30)].into_iter(), now, None), now + ms(30));
    assert_eq!(next_wake([now + ms(30)].into_iter(), now, Some(now + ms(10))), now + ms(10), "the deadline");
    assert_eq!(next_wake(std::iter::empty(), now, None), now + IDLE_WAKE);
}

/// The uploader's state alone, with a backoff capped at 1 s and permanent failures retried after 60 s.
fn state(rig: &Rig) -> State {
    let context = Context {
        sink: Sink::Discard,
        notifier: None,
        dirs: rig.dirs.clone(),
        key_prefix: String::new(),
        host: "h".into(),
        shared: rig.shared.clone(),
    };
    State {
        context: Arc::new(context),
        settings: UploadConfig {
            backoff_max: Duration::from_millis(1000),
            permanent_retry: Duration::from_secs(60),
            ..settings(1)
        },
        held: VecDeque::new(),
        in_flight: JoinSet::new(),
        in_flight_unix: HashMap::new(),
        last_logged: None,
        failing: 0,
        rng: 0x9E37_79B9_7F4A_7C15,
        in_flight_repairs: 0,
        merge: None,
    }
}

#[test]
fn each_failed_attempt_is_counted_and_waits_its_backoff_from_now() {
    let rig = Rig::new();
    let mut state = state(&rig);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _context = runtime.enter();
    let mut held = Held::new(Job::Spool(UploadJob::Sealed(rig.sealed(0, 1))));
    for attempt in 1..=4u32 {
        state.in_flight.spawn(async move { (held, Err(SinkError::Retryable("down".into()))) });
        let joined = runtime.block_on(state.in_flight.join_next_with_id()).unwrap();
        let before = Instant::now();
        state.finish(joined);
        held = state.held.pop_back().expect("held again for its next attempt");
        assert_eq!(held.attempts, attempt);
        let full = Duration::from_millis(100 << (attempt - 1));
        assert!(held.not_before >= before + full / 2, "attempt {attempt}: waits at least half its backoff");
        assert!(held.not_before <= Instant::now() + full, "attempt {attempt}: and at most all of it");
    }
    assert_eq!(state.failing, 1, "one chunk failing, however often");
}

#[test]
fn backoff_doubles_with_jitter_over_its_whole_span_up_to_its_cap_and_permanent_failures_wait_a_fixed_time() {
    let rig = Rig::new();
    let mut state = state(&rig);
    let retryable = SinkError::Retryable("down".into());
    for (attempts, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (30, 1000)] {
        let waits: Vec<u64> = (0..20_000).map(|_| state.wait_after(&retryable, attempts).as_millis() as u64).collect();
        let (least, most) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert_eq!((*least, *most), (full / 2, full), "attempt {attempts}: from half the backoff to all of it");
    }
    assert_eq!(state.wait_after(&SinkError::Permanent("403".into()), 7), Duration::from_secs(60));
}
