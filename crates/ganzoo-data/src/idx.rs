//! The IDX file format of MNIST and Fashion-MNIST (LeCun et al., "THE MNIST
//! DATABASE"), gzipped or raw.
//!
//! An IDX file is a big-endian header — two zero bytes, a type byte (0x08 for
//! `u8`), the number of dimensions `d` — then `d` big-endian `u32` sizes, then the
//! values. Images are `0x00000803` (N × rows × cols), labels `0x00000801` (N).
//! Gzip is recognised by its magic bytes, not by the file name.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::io_err;
use crate::{DataError, Result};

/// Magic number of an IDX file of `u8` images (three dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` labels (one dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Images read from an IDX file.
#[derive(Debug, Clone)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Reads IDX files, checking magic, dimensions and length.
#[derive(Debug, Clone)]
pub struct IdxReader {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl IdxReader {
    /// Reads the whole file, decompressing it if it is gzipped.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let raw = std::fs::read(&path).map_err(io_err(&path))?;
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::with_capacity(raw.len() * 4);
            flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out).map_err(|e| DataError::Truncated {
                path: path.clone(),
                detail: format!("gzip stream is damaged ({e})"),
            })?;
            out
        } else {
            raw
        };
        Ok(Self { path, bytes })
    }

    /// Parses the file as images (`0x00000803`).
    pub fn images(&self) -> Result<IdxImages> {
        let dims = self.header(IMAGES_MAGIC, "IDX images, u8, 3 dimensions")?;
        let (count, rows, cols) = (dims[0], dims[1], dims[2]);
        if rows == 0 || cols == 0 {
            return Err(self.bad_dims(format!("images of {rows}x{cols} pixels")));
        }
        let pixels = self.body(4 * 4, count * rows * cols)?;
        Ok(IdxImages { count, rows, cols, pixels })
    }

    /// Parses the file as labels (`0x00000801`).
    pub fn labels(&self) -> Result<Vec<u8>> {
        let dims = self.header(LABELS_MAGIC, "IDX labels, u8, 1 dimension")?;
        self.body(2 * 4, dims[0])
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn header(&self, expected: u32, what: &'static str) -> Result<Vec<usize>> {
        let magic = self.be_u32(0)?;
        if magic != expected {
            return Err(DataError::BadMagic { path: self.path.clone(), found: magic, expected, what });
        }
        let ndim = (expected & 0xff) as usize;
        (0..ndim).map(|i| self.be_u32(4 + 4 * i).map(|d| d as usize)).collect()
    }

    fn body(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        let have = self.bytes.len() - offset;
        if have < len {
            return Err(DataError::Truncated {
                path: self.path.clone(),
                detail: format!("header promises {len} values after the header, file holds {have}"),
            });
        }
        if have > len {
            return Err(
                self.bad_dims(format!("header promises {len} values but {} more bytes follow them", have - len))
            );
        }
        Ok(self.bytes[offset..].to_vec())
    }

    fn be_u32(&self, at: usize) -> Result<u32> {
        let b = self.bytes.get(at..at + 4).ok_or_else(|| DataError::Truncated {
            path: self.path.clone(),
            detail: format!("header ends at byte {}", self.bytes.len()),
        })?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn bad_dims(&self, detail: String) -> DataError {
        DataError::BadDimensions { path: self.path.clone(), detail }
    }
}

/// Writes `u8` images in IDX format (raw, not gzipped). Used for fixtures and exports.
pub fn write_idx_images(path: &Path, count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IMAGES_MAGIC, count as u32, rows as u32, cols as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    std::fs::write(path, out).map_err(io_err(path))
}

/// Writes `u8` labels in IDX format (raw, not gzipped).
pub fn write_idx_labels(path: &Path, labels: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    std::fs::write(path, out).map_err(io_err(path))
}
