//! A cache prefetch hint for the lease kernel's tables.
//!
//! The kernel forbids `unsafe`, and the processor's prefetch instruction is only reachable
//! through an `unsafe` intrinsic, so the call lives here, alone. A prefetch asks the cache to
//! start loading a line and retires at once: unlike an ordinary load, it never holds up the
//! instructions after it while the miss is served, so the misses of several commands overlap
//! with the work of the commands before them.
//!
//! Invariant: a prefetch has no observable effect on the program's state or results. It never
//! faults, reads nothing into a register and writes nothing; calling it or not, early or late,
//! changes only timing. Targets without the instruction compile it to nothing.

#![no_std]
#![allow(unsafe_code, reason = "the prefetch intrinsic is unsafe to call; see the SAFETY note")]

/// Asks the processor to bring the cache line holding `value` into every cache level.
#[inline]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let address = core::ptr::from_ref(value).cast::<i8>();
        // SAFETY: PREFETCHT0 is a hint: it does not fault even on an invalid address and changes
        // no architectural state; `address` comes from a live reference in any case. SSE, which
        // the intrinsic requires, is part of the x86_64 baseline.
        unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(address) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = value;
    }
}
