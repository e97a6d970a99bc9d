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
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

    #[test]
    fn the_option_number_is_mimallocs_purge_delay() {
        // The test binary does not call `keep_freed_memory`: mimalloc holds its
        // default, or the value of the environment variable if one is set.
        let expected = std::env::var(PURGE_DELAY_VAR).ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        // SAFETY: reading a numeric option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, expected);
    }
}
