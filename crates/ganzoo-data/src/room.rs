//! Free space, checked before writing a file whose size is known (a streamed `.npy`, a
//! download announcing its length): a `--n` that would fill the disk fails at once,
//! naming the file and both sizes, instead of filling it for everything else written
//! there (other runs' checkpoints included) and failing at the end.

use std::path::Path;

use crate::error::{DataError, Result};

/// Bytes an unprivileged process may still write on the file system holding `path`'s
/// folder; `None` where that is unknown (not Unix, or the folder cannot be queried: the
/// write itself then says why).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    statvfs_free(folder)
}

#[cfg(unix)]
fn statvfs_free(folder: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(folder.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path, and a buffer `statvfs` fills where it returns 0.
    if unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: `statvfs` returned 0, so it filled `stats`.
    let stats = unsafe { stats.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the fields' types vary by platform
    (stats.f_bavail as u64).checked_mul(stats.f_frsize as u64)
}

#[cfg(not(unix))]
fn statvfs_free(_: &Path) -> Option<u64> {
    None
}

/// `Ok` where `bytes` more fit on `path`'s file system (or its free space is unknown),
/// else [`DataError::NoRoom`] naming `path`.
pub fn ensure_room(path: &Path, bytes: u128) -> Result<()> {
    match free_bytes(path) {
        Some(free) if bytes > u128::from(free) => {
            Err(DataError::NoRoom { path: path.to_path_buf(), needed: bytes, free })
        }
        _ => Ok(()),
    }
}

/// Bytes as `1.5 GiB`.
pub fn gib(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let (mut v, mut unit) = (bytes as f64, 0);
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        (v, unit) = (v / 1024.0, unit + 1);
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_free_space_of_an_existing_folder_is_known_and_a_missing_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(&dir.path().join("x.npy"));
        assert!(free.is_some_and(|f| f > 0), "{free:?}");
        assert_eq!(free_bytes(&dir.path().join("missing/x.npy")), None);
        // A bare file name is in the current folder.
        assert!(free_bytes(Path::new("x.npy")).is_some());
    }

    #[test]
    fn more_than_is_free_is_refused_naming_the_file_and_both_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.npy");
        let free = free_bytes(&path).unwrap();
        ensure_room(&path, u128::from(free) / 2).unwrap();
        let err = ensure_room(&path, u128::from(free) + 1).unwrap_err().to_string();
        assert!(err.contains("big.npy") && err.contains(&gib(u128::from(free) + 1)) && err.contains("free"), "{err}");
        // Unknown free space refuses nothing: the write reports what is wrong.
        ensure_room(&dir.path().join("missing/x.npy"), u128::MAX).unwrap();
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(gib(512), "512 B");
        assert_eq!(gib(1536), "1.5 KiB");
        assert_eq!(gib(3 << 30), "3.0 GiB");
        assert_eq!(gib(u128::from(u64::MAX)), "16.0 EiB");
    }
}
