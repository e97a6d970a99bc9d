//! The one error type of `ganzoo-data`.
//!
//! Every variant that comes from a file names that file, so a user reading the
//! message knows which file to fix without a backtrace.

use std::path::PathBuf;

/// Errors raised while finding, downloading, reading or batching data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: bad magic number 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    BadMagic { path: PathBuf, found: u32, expected: u32, what: &'static str },
    #[error("{path}: truncated: {detail}")]
    Truncated { path: PathBuf, detail: String },
    #[error("{path}: bad dimensions: {detail}")]
    BadDimensions { path: PathBuf, detail: String },
    #[error("{images} has {n_images} images but {labels} has {n_labels} labels")]
    CountMismatch { images: PathBuf, n_images: usize, labels: PathBuf, n_labels: usize },
    #[error("{path}: label {label} at index {index} is out of range (at most {max})")]
    BadLabel { path: PathBuf, index: usize, label: u8, max: u8 },
    #[error("{path}: not an image file (expected .png, .jpg or .jpeg)")]
    NotAnImage { path: PathBuf },
    #[error("{path}: cannot decode image: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{path}: cannot write image: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{path}: {detail}")]
    BadLayout { path: PathBuf, detail: String },
    #[error("{path}: no images found")]
    Empty { path: PathBuf },
    #[error("{dataset} not found. {hint}")]
    NotFound { dataset: String, hint: String },
    #[error("download of {url} failed: {detail}")]
    Download { url: String, detail: String },
    #[error("{path}: checksum mismatch ({algorithm} {found}, expected {expected}); the file was not kept")]
    Checksum { path: PathBuf, algorithm: &'static str, found: String, expected: String },
    #[error("{path}: damaged: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path}: too large: {detail}")]
    TooLarge { path: PathBuf, detail: String },
    /// A file whose size is known would not fit on its file system.
    #[error("{path}: writing it needs {} but its file system has {} free", crate::room::gib(*.needed), crate::room::gib(u128::from(*.free)))]
    NoRoom { path: PathBuf, needed: u128, free: u64 },
    /// The temporary file of a write to `path` exists already: refused, never truncated.
    #[error("{partial} exists: an interrupted write to {path} leaves one, or it is someone's file; remove it or choose another output")]
    PartialExists { partial: PathBuf, path: PathBuf },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.into();
    move |source| DataError::Io { path, source }
}
