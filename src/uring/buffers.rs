//! A provided-buffer ring: `count` input buffers of `size` bytes the kernel picks from when a multishot receive
//! has data, so a connection holds no input buffer while it waits (an idle one costs nothing here). Each
//! completion names the buffer it filled; the loop reads it, then gives it back (`give_back`), which puts it at
//! the ring's tail for the kernel again. When every buffer is out, receives end with ENOBUFS and are armed
//! again once buffers came back.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::Submitter;
use io_uring::types::BufRingEntry;

pub struct BufRing {
    /// The ring of `count` entries the kernel reads (page-aligned, as it requires).
    entries: *mut BufRingEntry,
    layout: Layout,
    /// The buffers themselves, `size` bytes each, buffer id `i` at `i * size`.
    memory: Box<[u8]>,
    size: usize,
    count: u16,
    /// Entries published so far (wrapping): the kernel owns those between its head and this tail.
    tail: u16,
    group: u16,
}

// SAFETY: the ring and the buffers are this struct's own allocations, like a Box's; the kernel, not another
// thread, is what shares them, and it does not care which thread the owner runs on.
unsafe impl Send for BufRing {}

impl BufRing {
    /// Registers `count` (a power of two, ≤ 32768) buffers of `size` bytes as buffer group `group` of the ring
    /// `submitter` submits to, every one handed to the kernel.
    pub fn new(submitter: &Submitter<'_>, group: u16, count: u16, size: usize) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 32768, "buffer ring size must be a power of two");
        let layout = Layout::from_size_align(usize::from(count) * size_of::<BufRingEntry>(), 4096)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the layout has a non-zero size (count ≥ 1).
        let entries = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        if entries.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut buffers =
            BufRing { entries, layout, memory: vec![0; usize::from(count) * size].into(), size, count, tail: 0, group };
        // SAFETY: `entries` holds `count` zeroed entries and lives until `Drop`, which the owner orders after the
        // ring's end or `unregister` (see `Drop`).
        unsafe { submitter.register_buf_ring_with_flags(entries as u64, count, group, 0)? };
        for bid in 0..count {
            buffers.give_back(bid);
        }
        Ok(buffers)
    }

    pub fn group(&self) -> u16 {
        self.group
    }

    /// The first `len` bytes of buffer `bid`, as a completion filled them.
    pub fn filled(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid) * self.size;
        &self.memory[start..start + len.min(self.size)]
    }

    /// Hands buffer `bid` to the kernel again; the caller no longer reads it.
    pub fn give_back(&mut self, bid: u16) {
        debug_assert!(bid < self.count);
        let slot = usize::from(self.tail & (self.count - 1));
        let addr = self.memory.as_ptr() as u64 + u64::from(bid) * self.size as u64;
        // SAFETY: `slot < count`; the kernel reads an entry only between its head and the published tail, and
        // this one is past the tail until the store below.
        let entry = unsafe { &mut *self.entries.add(slot) };
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail shares the first entry's reserved field, inside the allocation; the kernel reads it
        // with acquire ordering, so the entry written above is visible before the new tail.
        unsafe { (*BufRingEntry::tail(self.entries).cast::<AtomicU16>()).store(self.tail, Ordering::Release) };
    }

    /// Takes the buffers back from the kernel: after this it picks none of them.
    pub fn unregister(&self, submitter: &Submitter<'_>) -> io::Result<()> {
        submitter.unregister_buf_ring(self.group)
    }
}

impl Drop for BufRing {
    /// The owner unregisters the ring first (or drops the io_uring before this), so the kernel writes into
    /// none of these buffers after they are freed.
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.entries.cast(), self.layout) };
    }
}
