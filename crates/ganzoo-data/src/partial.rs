//! A file written whole or not at all: its bytes go to `PATH.partial` beside it, which is
//! synced and renamed onto `PATH` only once complete. An interrupted or failed write
//! leaves `PATH` as it was (the previous file, or none) and removes its partial file.
//!
//! The partial file is created new: a `PATH.partial` already there (someone's file, or
//! what a killed process left) is refused by name, never truncated.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{io_err, DataError, Result};

/// An open `PATH.partial`; [`commit`](Self::commit) puts it at `PATH`, dropping it
/// without a commit removes it.
pub struct PartialFile {
    path: PathBuf,
    partial: PathBuf,
    file: Option<BufWriter<File>>,
}

/// `PATH.partial`, where [`PartialFile`] writes `path`.
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
    /// Creates `path.partial`, refusing one that exists.
    pub fn create(path: &Path) -> Result<Self> {
        let partial = partial_path(path);
        let file = OpenOptions::new().write(true).create_new(true).open(&partial).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                DataError::PartialExists { partial: partial.clone(), path: path.to_path_buf() }
            } else {
                io_err(&partial)(e)
            }
        })?;
        Ok(Self { path: path.to_path_buf(), partial, file: Some(BufWriter::new(file)) })
    }

    /// The file's final place.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends bytes.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let file = self.file.as_mut().ok_or_else(|| closed(&self.partial))?;
        file.write_all(bytes).map_err(io_err(&self.partial))
    }

    /// Flushes and syncs the partial file, then renames it onto `PATH`. On any failure
    /// (a full disk, `PATH` being a folder) the partial file is removed and `PATH` is
    /// untouched.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().ok_or_else(|| closed(&self.partial))?;
        let done = file
            .into_inner()
            .map_err(|e| io_err(&self.partial)(e.into_error()))
            .and_then(|file| file.sync_all().map_err(io_err(&self.partial)))
            .and_then(|()| std::fs::rename(&self.partial, &self.path).map_err(io_err(&self.path)));
        if done.is_err() {
            let _ = std::fs::remove_file(&self.partial);
        }
        done
    }
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
    /// An uncommitted file is removed (it never was at `PATH`).
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn write_whole_replaces_the_file_and_never_follows_a_link_by_the_partial_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.html");
        std::fs::write(&path, "old").unwrap();
        check_free(&path).unwrap();
        write_whole(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(!dir.path().join("a.html.partial").exists());
        let theirs = dir.path().join("theirs");
        std::fs::write(&theirs, "kept").unwrap();
        std::os::unix::fs::symlink(&theirs, dir.path().join("a.html.partial")).unwrap();
        assert!(matches!(check_free(&path), Err(DataError::PartialExists { .. })));
        let e = write_whole(&path, b"newer").unwrap_err();
        assert!(matches!(e, DataError::PartialExists { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "kept");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(dir.path().join("a.html.partial").is_symlink(), "their link stays");
    }
}
