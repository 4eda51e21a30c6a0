//! The process allocator: mimalloc, plus a request for transparent huge pages on every large
//! allocation.
//!
//! Why mimalloc: the request path allocates per request (decoded batches, replies, encoded
//! frames) on the network threads and frees on others. Under the batched benchmark glibc's
//! malloc spent its time in `malloc_consolidate` and `unlink_chunk`, and switching the server
//! to mimalloc raised batched throughput by a fifth to a quarter in alternating A/B runs (see
//! `docs/benchmarks.md`). The state machine itself allocates nothing in steady state.
//!
//! Why huge pages: the kernel's tables are allocated once at startup and then probed at random (an
//! operation table of 8 Mi records is 512 MiB). With 4 KiB pages nearly every probe also misses
//! the TLB and pays a page walk; with 2 MiB pages the whole working set fits the TLB. Linux
//! hands out huge pages only to regions marked `MADV_HUGEPAGE` when
//! `/sys/kernel/mm/transparent_hugepage/enabled` is `madvise` (the Debian default), so every
//! allocation of at least [`HUGE_PAGE_BYTES`] is marked right after it is made and before
//! anything is written to it. Elsewhere (`never`, other systems) the advice is ignored and this
//! is exactly mimalloc.
//!
//! Invariant: only the 2 MiB-aligned interior of an allocation is advised, so the advice never
//! touches memory outside the block the caller owns; the advice changes how pages are backed,
//! never their contents.

#![allow(unsafe_code, reason = "a global allocator and madvise are unsafe by definition")]

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;

/// The huge page size on x86-64 and aarch64 with 4 KiB base pages.
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// mimalloc, advising huge pages for large blocks.
pub(crate) struct ProcessAllocator;

// SAFETY: every method forwards to `MiMalloc` with the caller's arguments unchanged and returns
// its result; `advise` only adds a hint on memory inside the block just returned.
unsafe impl GlobalAlloc for ProcessAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        let block = unsafe { MiMalloc.alloc(layout) };
        advise(block, layout.size());
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let block = unsafe { MiMalloc.alloc_zeroed(layout) };
        advise(block, layout.size());
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from `MiMalloc` (through this allocator) with `layout`.
        unsafe { MiMalloc.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `dealloc`; the caller upholds `GlobalAlloc::realloc`'s contract.
        let moved = unsafe { MiMalloc.realloc(block, layout, new_size) };
        advise(moved, new_size);
        moved
    }
}

/// Marks the 2 MiB-aligned interior of `[block, block + size)` for huge pages.
fn advise(block: *mut u8, size: usize) {
    if block.is_null() || size < HUGE_PAGE_BYTES {
        return;
    }
    let start = (block as usize).next_multiple_of(HUGE_PAGE_BYTES);
    let end = (block as usize + size) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
    if end <= start {
        return;
    }
    // SAFETY: `[start, end)` lies inside the block the allocator just returned, which this
    // process owns and maps; MADV_HUGEPAGE is advisory and never changes the contents. A
    // failure (no THP support) leaves ordinary pages, which is correct, so it is ignored.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_blocks_are_usable_and_keep_their_contents() {
        let mut table = vec![7_u64; 3 << 20];
        table[1 << 20] = 9;
        assert_eq!(table.iter().filter(|&&value| value == 7).count(), (3 << 20) - 1);
        let zeroed = vec![0_u8; 5 << 20];
        assert!(zeroed.iter().all(|&byte| byte == 0));
        table.resize(5 << 20, 1);
        assert_eq!(table[(5 << 20) - 1], 1);
        assert_eq!(table[1 << 20], 9);
    }
}
