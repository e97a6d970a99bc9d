//! Running every command on the main thread as one of rayon's workers.
//!
//! Candle and ganzoo's kernels parallelise each op with rayon. Called from a thread
//! outside the pool, every op hands its work to the pool's threads, whose idle
//! spinning then competes with the calling thread for the cores between ops (on 2
//! cores: 3 busy threads). Inside `install`, the caller is itself a worker: the
//! pool's size is the total number of threads.
//!
//! Candle 0.11 runs its large elementwise ops on a second pool of its own, whose
//! threads spin for a while (25 000 rounds by default) after every op before they
//! sleep: on a 2-core machine they steal the cores from the next GEMM or convolution
//! on rayon's threads. [`limit_candle_spinning`] shortens that spin.

/// Spin rounds of Candle's elementwise pool before it sleeps (Candle's default: 25 000);
/// between the best values for the MLP and the convolutional models (measurements:
/// docs/performance.md, "Candle's spinning pool").
const CANDLE_SPIN_LIMIT: &str = "1000";

/// Sets `CANDLE_BARRIER_POOL_SPIN_LIMIT` unless the user did. Call first thing in
/// `main`, before any thread exists (Candle reads it when its pool starts).
pub fn limit_candle_spinning() {
    const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(VAR).is_none() {
        std::env::set_var(VAR, CANDLE_SPIN_LIMIT);
    }
}

/// Most threads `RAYON_NUM_THREADS` (and `bench --threads`) may ask for: far beyond any
/// machine here; a typo past it (an extra digit) hangs, that many threads spinning at
/// Candle's barriers (measured in the README, *Performance*).
pub const MOST_THREADS: usize = 1_024;

/// `RAYON_NUM_THREADS` checked before the pools start: a number in 0..=[`MOST_THREADS`]
/// (0 or unset: the machine's CPUs, as rayon reads it), with a warning above the CPUs
/// there are (each op is then split into more pieces than can run at once).
pub fn check_thread_count() -> Result<(), String> {
    const VAR: &str = "RAYON_NUM_THREADS";
    let Some(value) = std::env::var_os(VAR) else { return Ok(()) };
    let text = value.to_string_lossy();
    let n: usize = match text.trim() {
        "" => return Ok(()),
        t => t.parse().map_err(|_| format!("{VAR}={text}: not a number of threads"))?,
    };
    if n > MOST_THREADS {
        return Err(format!("{VAR}={n}: at most {MOST_THREADS} threads"));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    if n > cpus {
        tracing::warn!("{VAR}={n} is more than the {cpus} CPUs here: more threads than CPUs only slow every op down");
    }
    Ok(())
}

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
