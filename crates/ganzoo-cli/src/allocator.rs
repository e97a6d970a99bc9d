//! The process's allocator: mimalloc, told to keep the memory it is given back.
//!
//! A training step allocates and frees the same tensor-sized buffers every
//! iteration (tens of MB each for DCGAN-64: activations, gradients, Candle's
//! zeroed accumulators). mimalloc 3 returns ("purges") free memory to the OS one
//! second after it is freed; a DCGAN-64 iteration on the CPU takes longer than
//! that, so every step faulted its buffers in again and the kernel cleared each
//! page first: 11 % of a dcgan64 iteration in `perf`. Training reuses the same
//! sizes all run long, so the process keeps what it freed instead: its resident
//! memory stays at its peak, which is what it needs anyway.
//!
//! It counts the bytes it hands out, so `bench` can report the heap's peak in use.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// mimalloc's `mi_option_purge_delay` (milliseconds; -1: never purge). Option numbers
/// are part of mimalloc's ABI (retired options keep their number as `deprecated_*`);
/// `libmimalloc-sys` does not name this one, so the test below checks that the
/// number still means a delay with mimalloc's 1 000 ms default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The environment variable through which a user sets the same option.
const PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";
/// The environment variable through which a user lets mimalloc use transparent huge pages.
const ALLOW_THP_VAR: &str = "MIMALLOC_ALLOW_THP";

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes the process's live allocations hold, and the most they have held at once.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// mimalloc, counting live bytes. The peak is the CPU's counterpart of a CUDA pool's
/// high-water mark (what `bench` reports as `peak_heap_mb`): the memory tensors held at
/// once, which the resident size hides under what mimalloc keeps (see above). It costs
/// two relaxed atomics per allocation and deallocation.
struct Counting;

impl Counting {
    fn grew(by: usize) {
        let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
        if now > PEAK.load(Ordering::Relaxed) {
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is mimalloc's with the same arguments; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `alloc`, passed on unchanged.
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from mimalloc) with `layout`.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and the caller's guarantees on `new_size`.
        let p = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            Self::grew(new_size);
        }
        p
    }
}

/// The most bytes live allocations have held at once since the process started.
pub fn peak_live_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Never purge freed memory, unless the user chose a delay with `MIMALLOC_PURGE_DELAY`.
/// Call first thing in `main`, before any other thread exists (mimalloc's option
/// setters are not thread-safe).
pub fn keep_freed_memory() {
    if std::env::var_os(PURGE_DELAY_VAR).is_none() {
        // SAFETY: setting a numeric option; no other thread runs yet.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
    }
    if std::env::var_os(ALLOW_THP_VAR).is_none() {
        no_transparent_huge_pages();
    }
}

/// Turns transparent huge pages off for this process (what `MIMALLOC_ALLOW_THP=0` does at
/// mimalloc's start-up, which runs before `main`). With them, a touched 2 MiB region is
/// resident whole, which inflates small models' footprint for no measured speed gain
/// (docs/performance.md, "Memory").
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments and touches no memory of ours;
        // a failure (an old kernel) leaves the default, which is only a matter of footprint.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary's allocator is this one too: a buffer held counts toward the
    /// peak, and is counted out when freed.
    #[test]
    fn the_peak_counts_what_was_held_at_once() {
        const BIG: usize = 1 << 30;
        let buffer = vec![0u8; BIG];
        let held = LIVE.load(Ordering::Relaxed);
        assert!(held >= BIG && peak_live_bytes() >= held, "{held} live, peak {}", peak_live_bytes());
        drop(buffer);
        // Other tests may allocate meanwhile, but not a gigabyte.
        assert!(LIVE.load(Ordering::Relaxed) < held - BIG / 2);
        assert!(peak_live_bytes() >= BIG);
        let mut grown = Vec::<u8>::with_capacity(16);
        grown.reserve_exact(BIG);
        // Bounded on both sides: a count gone below zero wraps to a huge number.
        let live = LIVE.load(Ordering::Relaxed);
        assert!((BIG..held + BIG / 2).contains(&live), "a reallocation counts its new size: {live} live");
    }

    #[test]
    fn the_option_number_is_mimallocs_purge_delay() {
        // The test binary does not call `keep_freed_memory`: mimalloc holds its
        // default, or the value of the environment variable if one is set.
        let expected = std::env::var(PURGE_DELAY_VAR).ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        // SAFETY: reading a numeric option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, expected);
    }
}
