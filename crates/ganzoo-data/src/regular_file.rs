//! Files a user names, opened only if they are regular files: opening a FIFO waits for a
//! writer and `/dev/zero` never ends, so a path naming the wrong thing is an error that
//! says so, never a hang. Small files (configurations, checkpoint state, classifier
//! cards) are read whole only up to a size the caller states, never one the file dictates.
//!
//! Errors are `std::io::Error`s (kind `InvalidInput` or `InvalidData`) so that each
//! caller's own wrapper adds the path, as for any other failed read.

use std::fs::{File, Metadata};
use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// `path` opened for reading, if it is a regular file (checked before opening); `what`
/// names the file's role in the error ("configuration", "IDX").
pub fn open(path: &Path, what: &str) -> std::io::Result<(File, Metadata)> {
    let meta = check(path, u64::MAX, what)?;
    Ok((File::open(path)?, meta))
}

/// Checks without opening it that `path` is a regular file of at most `max` bytes, with
/// [`read`]'s errors: for a caller that must refuse a file before working through it
/// (hashing a weights file) and reads it later.
pub fn check(path: &Path, max: u64, what: &str) -> std::io::Result<Metadata> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let kind = if meta.is_dir() { "a folder" } else { "not a regular file" };
        return Err(Error::new(ErrorKind::InvalidInput, format!("is {kind}, not a {what} file")));
    }
    if meta.len() > max {
        return Err(too_big(meta.len(), max, what));
    }
    Ok(meta)
}

fn too_big(len: u64, max: u64, what: &str) -> Error {
    Error::new(ErrorKind::InvalidData, format!("{len} bytes is more than a {what} file can be ({max} at most)"))
}

/// `path`'s bytes, if it is a regular file of at most `max` bytes; `what` names the
/// file's role in the error ("configuration", "classifier card").
pub fn read(path: &Path, max: u64, what: &str) -> std::io::Result<Vec<u8>> {
    let meta = check(path, max, what)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the bound tells a file that grew since from one that did not.
    File::open(path)?.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64, max, what));
    }
    Ok(bytes)
}

/// As [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, max: u64, what: &str) -> std::io::Result<String> {
    String::from_utf8(read(path, max, what)?)
        .map_err(|e| Error::new(ErrorKind::InvalidData, format!("is not UTF-8 text ({e}), not a {what} file")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "family = \"gan\"\n").unwrap();
        assert_eq!(read_to_string(&file, 15, "configuration").unwrap(), "family = \"gan\"\n");
        let big = read_to_string(&file, 14, "configuration").unwrap_err();
        assert_eq!(big.to_string(), "15 bytes is more than a configuration file can be (14 at most)");
        let folder = read(dir.path(), 1 << 20, "configuration").unwrap_err();
        assert_eq!(folder.to_string(), "is a folder, not a configuration file");
        // A character device: refused without reading (this would never end).
        let zero = read(Path::new("/dev/zero"), 1 << 20, "configuration").unwrap_err();
        assert_eq!(zero.to_string(), "is not a regular file, not a configuration file");
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(read_to_string(&file, 15, "configuration").unwrap_err().to_string().starts_with("is not UTF-8 text"));
        assert_eq!(read(&dir.path().join("none"), 15, "x").unwrap_err().kind(), ErrorKind::NotFound);
    }
}
