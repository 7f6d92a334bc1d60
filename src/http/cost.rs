//! Fuzzing and unit tests only (`cfg(fuzzing)`, which cargo-fuzz sets, or `cfg(test)`): how many input bytes
//! framing examined on this thread, so `fuzz/framing` and the framing tests can assert that reading requests
//! costs time linear in their size however they are cut into reads. In every other build `examined` is empty
//! and inlined away.

#[cfg(any(test, fuzzing))]
thread_local! {
    static EXAMINED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Framing looked at `bytes` more input bytes.
#[inline(always)]
pub fn examined(bytes: usize) {
    #[cfg(any(test, fuzzing))]
    EXAMINED.with(|n| n.set(n.get() + bytes as u64));
    #[cfg(not(any(test, fuzzing)))]
    let _ = bytes;
}

/// The bytes examined on this thread since the last call.
#[cfg(any(test, fuzzing))]
pub fn take() -> u64 {
    EXAMINED.with(|n| n.replace(0))
}
