//! SIGINT, SIGTERM and SIGHUP alike ask a training run to stop: it saves a checkpoint
//! and exits with the conventional status, 128 + the signal (130 for Ctrl-C, 143 for
//! `timeout`, `docker stop`, Slurm, Kubernetes, 129 for a closed terminal or a dropped
//! SSH session, which would otherwise kill it with everything since its last
//! checkpoint). SIGHUP is left alone where it was ignored when ganzoo started: `nohup`
//! asks the run to outlive the terminal. A second signal while it stops exits at once
//! with that status; checkpoints are written atomically, so none is lost.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Which stop signal arrived, once one has.
pub struct StopSignals {
    which: Arc<AtomicUsize>,
}

impl StopSignals {
    /// Sets `stop` on SIGINT, SIGTERM or SIGHUP from now on (SIGHUP only where it is not ignored).
    pub fn install(stop: Arc<AtomicBool>) -> anyhow::Result<Self> {
        let which = Arc::new(AtomicUsize::new(0));
        let hangup = (!ignored(SIGHUP)).then_some(SIGHUP);
        for signal in [SIGINT, SIGTERM].into_iter().chain(hangup) {
            // The shutdown must be registered first: it is armed only by a previous signal.
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register_usize(signal, Arc::clone(&which), signal as usize))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
                .with_context(|| format!("cannot install a handler for signal {signal}"))?;
        }
        Ok(Self { which })
    }

    /// The exit status for a run stopped by a signal: 128 + its number (130 if none was recorded).
    pub fn exit_status(&self) -> u8 {
        match self.which.load(Ordering::SeqCst) {
            0 => 128 + SIGINT as u8,
            s => 128u8.saturating_add(s as u8),
        }
    }
}

/// Whether `signal` is ignored now, as `nohup` leaves SIGHUP for the program it starts.
fn ignored(signal: libc::c_int) -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action sigaction(2) only writes the current one into
    // `current`, a properly sized and aligned `struct sigaction`.
    let read = unsafe { libc::sigaction(signal, std::ptr::null(), current.as_mut_ptr()) } == 0;
    // SAFETY: all-zero bytes are a valid `struct sigaction` (integers, a mask, a nullable
    // pointer), and a successful call filled it.
    read && unsafe { current.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// Says, as soon as the first stop signal arrives, what happens next: the run stops only
/// after its current critic or generator step, which may take a while (a large batch
/// or network on a CPU), and silence there looks like a hang. A thread watches the flag
/// until this is dropped.
pub struct StopNotice {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StopNotice {
    pub fn watch(stop: Arc<AtomicBool>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&done);
        // The stop flag is read before `finished`: a run that stops within one poll of
        // the signal (a fast iteration) still says why, before the thread is joined.
        let thread = std::thread::spawn(move || loop {
            if stop.load(Ordering::SeqCst) {
                tracing::warn!(
                    "stop requested: the run stops after its current step, with a checkpoint; \
                     signal again to quit at once (the checkpoints already written are kept)"
                );
                return;
            }
            if finished.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        });
        Self { done, thread: Some(thread) }
    }
}

impl Drop for StopNotice {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A command stopped by a stop signal before it finished, having removed its
/// partial output; `main` exits with the status it carries.
#[derive(Debug, Clone, Copy)]
pub struct Stopped(pub u8);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped by signal {}; the unfinished output was removed", self.0.saturating_sub(128))
    }
}

impl std::error::Error for Stopped {}

/// A stop flag with the stop signals installed, for commands that write in chunks.
pub struct StopFlag {
    flag: Arc<AtomicBool>,
    signals: StopSignals,
}

impl StopFlag {
    pub fn install() -> anyhow::Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let signals = StopSignals::install(Arc::clone(&flag))?;
        Ok(Self { flag, signals })
    }

    /// `Err(Stopped)` once a signal has arrived.
    pub fn check(&self) -> Result<(), Stopped> {
        match self.flag.load(Ordering::SeqCst) {
            true => Err(Stopped(self.signals.exit_status())),
            false => Ok(()),
        }
    }
}
