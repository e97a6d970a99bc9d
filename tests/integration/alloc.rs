//! The test binary's allocator: the system's, counting the bytes each thread holds, so a
//! test can assert that a parser never allocates beyond its bound ([`peak_during`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes held by all threads together, and the most held at once since [`reset_global_peak`].
static GLOBAL_HELD: AtomicUsize = AtomicUsize::new(0);
static GLOBAL_PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

pub struct Counting;

fn grow(bytes: usize) {
    let now = GLOBAL_HELD.fetch_add(bytes, Ordering::Relaxed) + bytes;
    GLOBAL_PEAK.fetch_max(now, Ordering::Relaxed);
    let _ = HELD.try_with(|h| {
        let now = h.get().saturating_add(bytes);
        h.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn shrink(bytes: usize) {
    GLOBAL_HELD.fetch_sub(bytes, Ordering::Relaxed);
    let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(bytes)));
}

// SAFETY: every method forwards to `System` unchanged; the counting touches only
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` satisfies `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        p
    }
}

/// Runs `f` and returns its result with the most bytes this thread held at once during
/// it, above what it held before.
pub fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = HELD.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    (r, PEAK.with(Cell::get).saturating_sub(start))
}

/// Starts a new process-wide peak from what is held now; returns that baseline.
pub fn reset_global_peak() -> usize {
    let now = GLOBAL_HELD.load(Ordering::Relaxed);
    GLOBAL_PEAK.store(now, Ordering::Relaxed);
    now
}

/// The most bytes all threads held at once since [`reset_global_peak`].
pub fn global_peak() -> usize {
    GLOBAL_PEAK.load(Ordering::Relaxed)
}
