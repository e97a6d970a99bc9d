//! One writer per run directory: an advisory lock (`flock`) on `RUN_DIR/.lock`,
//! held for as long as a [`RunLock`] lives. The file holds the holder's pid so a
//! second writer can say who has the run. Readers (`sample`, evaluation, reports)
//! never take it; a page's rewrite (`eval --run`, `report RUN`) takes it for a moment,
//! so a writer waits [`MOMENT`] for a held lock before saying who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::io_err;
use crate::{Result, TrainError};

/// Name of the lock file inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// How long [`RunLock::acquire`] waits for a held lock: longer than a page's rewrite
/// holds it, short enough that a run another process trains is refused promptly.
pub const MOMENT: Duration = Duration::from_secs(2);

/// How often a waiting writer asks again.
const POLL: Duration = Duration::from_millis(20);

/// An exclusive lock on a run directory; released when dropped (or when the process ends,
/// however it ends: the kernel drops `flock` locks with the file descriptor).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of the run directory `dir` (which must exist), waiting up to
    /// [`MOMENT`] where another process holds it, or says which process does.
    pub fn acquire(dir: &Path) -> Result<Self> {
        Self::acquire_within(dir, LOCK_FILE, MOMENT)
    }

    /// As [`acquire`](Self::acquire) without waiting: for a rewrite that is skipped where
    /// a writer has the run.
    pub fn try_acquire(dir: &Path) -> Result<Self> {
        Self::acquire_within(dir, LOCK_FILE, Duration::ZERO)
    }

    /// As [`try_acquire`](Self::try_acquire), with the lock file `dir/name`: for a folder
    /// other than a run that one process writes at a time (the figures' folder).
    pub fn acquire_named(dir: &Path, name: &str) -> Result<Self> {
        Self::acquire_within(dir, name, Duration::ZERO)
    }

    fn acquire_within(dir: &Path, name: &str, wait: Duration) -> Result<Self> {
        let path = dir.join(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(POLL),
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    return Err(TrainError::InUse { path: dir.to_path_buf(), pid: holder.trim().parse().ok() });
                }
                Err(TryLockError::Error(e)) => return Err(io_err(&path)(e)),
            }
        }
        file.set_len(0).map_err(io_err(&path))?;
        file.rewind().map_err(io_err(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(io_err(&path))?;
        Ok(Self { _file: file })
    }

    /// Whether a writer holds the lock of `dir` now. Changes nothing: opens the lock
    /// file read-only (if there is one) and asks for a shared lock, released at once.
    pub fn is_held(dir: &Path) -> bool {
        match File::open(dir.join(LOCK_FILE)) {
            Ok(file) => matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }
}
