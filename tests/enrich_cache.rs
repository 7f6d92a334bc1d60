//! The enrichment cache's bounds, checked from outside its own accounting: this test binary's allocator counts
//! the heap each test thread holds (bytes and allocations), so "at most two generations" is measured on what
//! the cache really keeps, not on the counters it keeps itself. Collisions are forced with a hasher that sends
//! every key to one slot.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hash::{BuildHasherDefault, Hasher};

use plutos::enrich::cache::{Bounds, Cache};

/// The system allocator, counting what the calling thread holds.
struct Counting;

thread_local! {
    /// Bytes and allocations this thread allocated and has not freed.
    static HELD: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn note(bytes: isize, allocations: isize) {
    // `try_with`: never panics, also while a thread's locals are being torn down.
    let _ = HELD.try_with(|held| {
        let (b, a) = held.get();
        held.set((b + bytes, a + allocations));
    });
}

// SAFETY: every call is passed on to `System` unchanged; the counting touches only a thread-local `Cell` of
// integers (const-initialised, no destructor, so it never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize, 1);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, layout) };
        note(-(layout.size() as isize), -1);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            note(new_size as isize - layout.size() as isize, 0);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn held() -> (isize, isize) {
    HELD.with(Cell::get)
}

/// Bytes and allocations held since `before`.
fn held_since(before: (isize, isize)) -> (isize, isize) {
    let now = held();
    (now.0 - before.0, now.1 - before.1)
}

/// A fragment of `len` bytes that names its key, so an answer for another key shows.
fn render(key: &[u8], len: usize) -> impl FnOnce(&mut Vec<u8>) -> bool + '_ {
    move |out| {
        out.extend_from_slice(key);
        out.resize(key.len().max(len), b'.');
        false
    }
}

/// Room the two maps' tables may take besides the entries: a generation of at most `entries` entries in a
/// table of at most twice that many buckets, each of a hash, an entry and a control byte.
fn table_slack(entries: usize) -> isize {
    let bucket = size_of::<u64>() + 2 * size_of::<Box<[u8]>>() + size_of::<usize>() + 1;
    (2 * 2 * entries.next_power_of_two() * bucket) as isize
}

#[test]
fn a_flood_of_distinct_keys_holds_at_most_two_generations_of_bytes() {
    // Entries of ~300 bytes against a 64 KiB generation: the byte bound is the one that retires.
    let bounds = Bounds { entries: 10_000, bytes: 64 << 10 };
    let before = held();
    let mut cache = Cache::new(bounds);
    let mut peak = (0, 0);
    for i in 0..20_000u32 {
        let key = format!("Mozilla/5.0 (flood {i}) {}", "x".repeat(100 + (i % 100) as usize));
        cache.get_or_render(key.as_bytes(), render(key.as_bytes(), 150));
        drop(key);
        let now = held_since(before);
        peak = (peak.0.max(now.0), peak.1.max(now.1));
    }
    // 64 KiB of ~300-byte entries is ~220 of them: two generations, plus their tables.
    let entries_per_generation = (bounds.bytes / 250).next_power_of_two();
    assert!(
        peak.0 <= 2 * bounds.bytes as isize + table_slack(entries_per_generation),
        "held {} bytes at most, for a bound of 2 x {}",
        peak.0,
        bounds.bytes
    );
    assert!(peak.1 <= 2 * 2 * entries_per_generation as isize + 4, "{} allocations held", peak.1);
    assert_eq!(cache.misses, 20_000);
    drop(cache);
    assert_eq!(held_since(before), (0, 0), "everything it held is freed with it");
}

#[test]
fn a_flood_of_small_keys_holds_at_most_two_generations_of_entries() {
    // Tiny entries against a large byte bound: the entry bound is the one that retires.
    let bounds = Bounds { entries: 100, bytes: 1 << 30 };
    let before = held();
    let mut cache = Cache::new(bounds);
    let mut most = 0;
    for i in 0..10_000u32 {
        let key = i.to_le_bytes();
        cache.get_or_render(&key, render(&key, 4));
        most = most.max(held_since(before).1);
    }
    // Two generations of entries, each entry a key and a fragment, and two tables.
    assert!(most <= 2 * 2 * bounds.entries as isize + 2, "{most} allocations held for 2 x {} entries", bounds.entries);
    // Counted from outside too: the newest generation answers without rendering; a key three generations
    // back renders again.
    let renders = Cell::new(0);
    for i in (10_000 - 100..10_000u32).rev() {
        let key = i.to_le_bytes();
        cache.get_or_render(&key, |out| {
            renders.set(renders.get() + 1);
            render(&key, 4)(out)
        });
    }
    assert_eq!(renders.get(), 0, "the newest generation is held");
    let old = (10_000u32 - 301).to_le_bytes();
    let misses = cache.misses;
    cache.get_or_render(&old, render(&old, 4));
    assert_eq!(cache.misses, misses + 1, "three generations back is gone");
}

#[test]
fn clear_forgets_every_entry_and_frees_them() {
    let mut cache = Cache::new(Bounds { entries: 64, bytes: 1 << 20 });
    let keys: Vec<String> = (0..100).map(|i| format!("agent {i}")).collect();
    let before_fill = held();
    for key in &keys {
        cache.get_or_render(key.as_bytes(), render(key.as_bytes(), 200));
    }
    let filled = held_since(before_fill);
    assert!(filled.0 > 100 * 200 / 2, "the entries are on the heap: {filled:?}");
    cache.clear();
    let cleared = held_since(before_fill);
    // The tables keep their capacity; no key or fragment is left.
    assert!(cleared.1 <= 2, "{} allocations left after clear", cleared.1);
    let misses = cache.misses;
    for key in &keys {
        let entry = cache.get_or_render(key.as_bytes(), render(key.as_bytes(), 200));
        assert!(entry.fragment.starts_with(key.as_bytes()));
    }
    assert_eq!(cache.misses - misses, keys.len() as u64, "every key rendered again");
}

/// Sends every key to hash 0.
#[derive(Default)]
struct OneSlot;

impl Hasher for OneSlot {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, _: &[u8]) {}
}

#[test]
fn keys_that_share_a_hash_are_never_answered_with_each_others_fragment() {
    // With room for one entry every miss retires the generation, so a key also meets the other in the
    // previous one; with room for four, in the current one.
    for entries in [1, 4] {
        let hasher = BuildHasherDefault::<OneSlot>::default();
        let mut cache = Cache::with_hasher(Bounds { entries, bytes: 1 << 20 }, hasher);
        let mut renders = 0;
        for round in 0..50 {
            for key in [&b"first key"[..], b"second key", b"third"] {
                let entry = cache.get_or_render(key, |out| {
                    renders += 1;
                    render(key, 16)(out)
                });
                assert!(entry.fragment.starts_with(key), "round {round}: {:?} answered for {key:?}", entry.fragment);
            }
        }
        assert_eq!(renders, 150, "a slot holds one key: each turn renders its own");
        // The same key twice in a row is a hit, collisions or not.
        cache.get_or_render(b"third", |_| panic!("third is in the slot"));
    }
}
