//! Fuzzing and unit tests only (`cfg(fuzzing)`, which cargo-fuzz sets, or `cfg(test)`): per-thread counts of
//! what the input caused — the work (bytes framing examined, slots a query's key table probed), so `fuzz/framing`
//! and the unit tests can assert that handling requests costs time linear in their size however they are cut
//! into reads or whatever keys they repeat; and the spool's syncs, since a unit test cannot pull the plug to see
//! what each FSYNC setting does. In every other build the counting functions are empty and inlined away.

#[cfg(any(test, fuzzing))]
thread_local! {
    static EXAMINED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static SYNCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `units` more of work: input bytes looked at, or table slots probed.
#[inline(always)]
pub fn examined(units: usize) {
    #[cfg(any(test, fuzzing))]
    EXAMINED.with(|n| n.set(n.get() + units as u64));
    #[cfg(not(any(test, fuzzing)))]
    let _ = units;
}

/// One fsync or fdatasync of the spool.
#[inline(always)]
pub fn synced() {
    #[cfg(any(test, fuzzing))]
    SYNCS.with(|n| n.set(n.get() + 1));
}

/// The work counted on this thread since the last call.
#[cfg(any(test, fuzzing))]
pub fn take() -> u64 {
    EXAMINED.with(|n| n.replace(0))
}

/// The spool syncs counted on this thread since the last call.
#[cfg(any(test, fuzzing))]
pub fn take_syncs() -> u64 {
    SYNCS.with(|n| n.replace(0))
}
