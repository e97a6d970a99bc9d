//! Running every command on the main thread as one of rayon's workers.
//!
//! Candle and ganzoo's kernels parallelise each op with rayon. Called from a thread
//! outside the pool, every op hands its work to the pool's threads, whose idle
//! spinning then competes with the calling thread for the cores between ops (on 2
//! cores: 3 busy threads). Inside `install`, the caller is itself a worker: the
//! pool's size is the total number of threads.

/// Runs `f` inside a rayon pool of `RAYON_NUM_THREADS` (default: the machine's CPUs) threads.
pub fn run_in_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new().build() {
        Ok(pool) => pool.install(f),
        Err(e) => {
            tracing::warn!("cannot start a thread pool ({e}); running on the global one");
            f()
        }
    }
}
