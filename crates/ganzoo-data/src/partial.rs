//! A file written whole or not at all: its bytes go to a file beside `PATH` that is synced
//! and renamed onto `PATH` only once complete. An interrupted or failed write leaves
//! `PATH` as it was (the previous file, or none).
//!
//! On Linux the bytes go to an unnamed file in `PATH`'s folder (`O_TMPFILE`), which has a
//! name only from the moment it is complete: linked as `PATH.partial`, then renamed onto
//! `PATH`. A process killed before that (kill -9, a crash, a default-action signal) leaves
//! nothing behind. Where the folder's file system has no unnamed files (or elsewhere than
//! Linux), the bytes go to `PATH.partial` from the start, removed on failure or drop
//! (kill -9 leaves it, and the next write says so).
//!
//! `PATH.partial` is always created new: one already there (someone's file or link, or
//! what a killed process left) is refused by name, never followed or truncated.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{io_err, DataError, Result};

/// An open partial file; [`commit`](Self::commit) puts it at `PATH`, dropping it without
/// a commit removes it. I/O errors name `PATH`, the file asked for (its `.partial` name
/// may never have existed); only a `.partial` name in the way is named itself.
pub struct PartialFile {
    path: PathBuf,
    partial: PathBuf,
    file: Option<BufWriter<File>>,
    /// Whether the bytes are in an unnamed file (`PATH.partial` made only at the commit).
    unnamed: bool,
}

/// `PATH.partial`, the name a [`PartialFile`] for `path` has before its rename.
fn partial_path(path: &Path) -> PathBuf {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    PathBuf::from(partial)
}

/// Refuses, as [`PartialFile::create`] would, a `path.partial` already there (even a
/// dangling link): for a command to say so before it computes what it would write.
pub fn check_free(path: &Path) -> Result<()> {
    let partial = partial_path(path);
    match std::fs::symlink_metadata(&partial) {
        Ok(_) => Err(DataError::PartialExists { partial, path: path.to_path_buf() }),
        Err(_) => Ok(()),
    }
}

impl PartialFile {
    /// Starts a write to `path`, refusing a `path.partial` that exists.
    pub fn create(path: &Path) -> Result<Self> {
        Self::create_in(path, true)
    }

    /// As [`create`](Self::create); with `allow_unnamed` false, always through a named
    /// `PATH.partial` (as where unnamed files are missing).
    fn create_in(path: &Path, allow_unnamed: bool) -> Result<Self> {
        check_free(path)?;
        let partial = partial_path(path);
        let (file, unnamed) = match allow_unnamed.then(|| unnamed::open(path)).flatten() {
            Some(file) => (file, true),
            None => (create_new(&partial, path)?, false),
        };
        Ok(Self { path: path.to_path_buf(), partial, file: Some(BufWriter::new(file)), unnamed })
    }

    /// The file's final place.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends bytes.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let file = self.file.as_mut().ok_or_else(|| closed(&self.partial))?;
        file.write_all(bytes).map_err(io_err(&self.path))
    }

    /// Flushes and syncs the file, names it `PATH.partial` (if unnamed so far), then
    /// renames it onto `PATH`. On any failure (a full disk, `PATH` being a folder, a
    /// `PATH.partial` made meanwhile) `PATH` is untouched and nothing of this write is left.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().ok_or_else(|| closed(&self.partial))?;
        let done = file
            .into_inner()
            .map_err(|e| io_err(&self.path)(e.into_error()))
            .and_then(|file| file.sync_all().map_err(io_err(&self.path)).map(|()| file))
            .and_then(|file| match self.unnamed {
                true => self.name(&file),
                false => Ok(()),
            });
        // `PATH.partial` is this write's once created new or linked; an unnamed file that
        // failed before its link goes with its descriptor (the name may be someone's).
        let named = !self.unnamed || done.is_ok();
        let done = done.and_then(|()| std::fs::rename(&self.partial, &self.path).map_err(io_err(&self.path)));
        if done.is_err() && named {
            let _ = std::fs::remove_file(&self.partial);
        }
        done
    }

    /// Names the unnamed `file` `PATH.partial`, refusing one made meanwhile.
    fn name(&self, file: &File) -> Result<()> {
        unnamed::link(file, &self.partial).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                DataError::PartialExists { partial: self.partial.clone(), path: self.path.clone() }
            }
            _ => io_err(&self.path)(e),
        })
    }
}

/// `partial` created new (never a file or link already there).
fn create_new(partial: &Path, path: &Path) -> Result<File> {
    OpenOptions::new().write(true).create_new(true).open(partial).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            DataError::PartialExists { partial: partial.to_path_buf(), path: path.to_path_buf() }
        } else {
            io_err(path)(e)
        }
    })
}

/// Writes `bytes` to `path` whole, through a [`PartialFile`]: the way every file at a
/// path a user chose is written (a `PATH.partial` there already, or a link by that name,
/// is refused, never followed or truncated).
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = PartialFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

fn closed(partial: &Path) -> DataError {
    DataError::InvalidArgument(format!("{} is already closed", partial.display()))
}

impl Drop for PartialFile {
    /// An uncommitted file is removed (it never was at `PATH`); an unnamed one goes with
    /// its descriptor.
    fn drop(&mut self) {
        if self.file.take().is_some() && !self.unnamed {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Unnamed files (`O_TMPFILE`, Linux ≥ 3.11 on ext4, XFS, Btrfs, tmpfs and others),
/// given a name with `linkat` through `/proc/self/fd`.
#[cfg(target_os = "linux")]
mod unnamed {
    use std::ffi::CString;
    use std::fs::{File, OpenOptions};
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::Path;

    /// An unnamed file in `path`'s folder, or `None` where that folder's file system has
    /// none (or `/proc` is missing, without which it could not be named later).
    pub fn open(path: &Path) -> Option<File> {
        if !Path::new("/proc/self/fd").is_dir() {
            return None;
        }
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        OpenOptions::new().write(true).custom_flags(libc::O_TMPFILE).open(folder).ok()
    }

    /// Gives the unnamed `file` the name `to` (which must not exist; a link there is not followed).
    pub fn link(file: &File, to: &Path) -> std::io::Result<()> {
        let invalid = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
        let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(invalid)?;
        let to = CString::new(to.as_os_str().as_bytes()).map_err(invalid)?;
        // SAFETY: two NUL-terminated paths that live across the call; `linkat` reads them only.
        let rc = unsafe {
            libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod unnamed {
    use std::fs::File;
    use std::path::Path;

    pub fn open(_: &Path) -> Option<File> {
        None
    }

    pub fn link(_: &File, _: &Path) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    /// Everything in `dir`, by name.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn write_whole_replaces_the_file_and_never_follows_a_link_by_the_partial_name() {
        for allow_unnamed in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("a.html");
            std::fs::write(&path, "old").unwrap();
            check_free(&path).unwrap();
            let mut file = PartialFile::create_in(&path, allow_unnamed).unwrap();
            file.write_all(b"new").unwrap();
            file.commit().unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
            assert_eq!(names(dir.path()), ["a.html"]);
            let theirs = dir.path().join("theirs");
            std::fs::write(&theirs, "kept").unwrap();
            std::os::unix::fs::symlink(&theirs, dir.path().join("a.html.partial")).unwrap();
            assert!(matches!(check_free(&path), Err(DataError::PartialExists { .. })));
            let e = PartialFile::create_in(&path, allow_unnamed).err().unwrap();
            assert!(matches!(e, DataError::PartialExists { .. }), "{e}");
            assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "kept");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
            assert!(dir.path().join("a.html.partial").is_symlink(), "their link stays");
        }
    }

    /// On Linux the bytes have no name until the commit: a process killed while writing
    /// leaves nothing. A `PATH.partial` someone makes meanwhile is refused at the commit
    /// and left as it is. Without unnamed files, `PATH.partial` is there while writing
    /// and goes when the write is dropped.
    #[test]
    fn an_unfinished_write_has_no_name_and_a_name_taken_meanwhile_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.png");
        let mut file = PartialFile::create_in(&path, true).unwrap();
        file.write_all(&[7; 100_000]).unwrap();
        if cfg!(target_os = "linux") {
            assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
            std::fs::write(dir.path().join("b.png.partial"), "theirs").unwrap();
            let e = file.commit().unwrap_err();
            assert!(matches!(e, DataError::PartialExists { .. }), "{e}");
            assert_eq!(names(dir.path()), ["b.png.partial"]);
            assert_eq!(std::fs::read_to_string(dir.path().join("b.png.partial")).unwrap(), "theirs");
            std::fs::remove_file(dir.path().join("b.png.partial")).unwrap();
        } else {
            drop(file);
        }
        let mut named = PartialFile::create_in(&path, false).unwrap();
        named.write_all(b"x").unwrap();
        assert_eq!(names(dir.path()), ["b.png.partial"]);
        drop(named);
        assert!(names(dir.path()).is_empty());
    }

    /// A write that cannot start names the file asked for, not its `.partial` name
    /// (which, unnamed, never existed): `sample --out /proc/a.png` said
    /// "/proc/a.png.partial: No such file or directory".
    #[test]
    fn a_write_that_cannot_start_names_the_path_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        for path in [dir.path().join("missing/a.png"), dir.path().join("file/a.png")] {
            for allow_unnamed in [true, false] {
                let e = PartialFile::create_in(&path, allow_unnamed).err().unwrap();
                let said = e.to_string();
                assert!(said.starts_with(&format!("{}: ", path.display())) && !said.contains(".partial"), "{said}");
            }
        }
    }
}
