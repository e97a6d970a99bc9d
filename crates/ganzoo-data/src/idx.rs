//! The IDX file format of MNIST and Fashion-MNIST (LeCun et al., "THE MNIST
//! DATABASE"), gzipped or raw.
//!
//! An IDX file is a big-endian header — two zero bytes, a type byte (0x08 for
//! `u8`), the number of dimensions `d` — then `d` big-endian `u32` sizes, then the
//! values. Images are `0x00000803` (N × rows × cols), labels `0x00000801` (N).
//! Gzip is recognised by its magic bytes, not by the file name.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::io_err;
use crate::{DataError, Result};

/// Magic number of an IDX file of `u8` images (three dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` labels (one dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Deflate expands at most 1032:1, so a gzip file of `n` bytes holds at most `1032 n`.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Reads an IDX header and then the values it promises (plus one byte), from a stream
/// that can hold at most `max_len` bytes.
fn read_bounded(path: &Path, r: &mut impl Read, max_len: u64) -> Result<Vec<u8>> {
    let failed = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            DataError::Truncated { path: path.to_path_buf(), detail: format!("the stream ends early ({e})") }
        }
        _ => DataError::Corrupt { path: path.to_path_buf(), detail: e.to_string() },
    };
    let mut bytes = vec![0u8; 4];
    let got = read_up_to(r, &mut bytes).map_err(failed)?;
    if got < 4 {
        return Err(DataError::Truncated { path: path.to_path_buf(), detail: format!("header ends at byte {got}") });
    }
    let ndim = usize::from(bytes[3]);
    if bytes[..2] != [0, 0] || !(1..=4).contains(&ndim) {
        return Ok(bytes); // not IDX: the caller's magic check says so
    }
    bytes.resize(4 + 4 * ndim, 0);
    let got = 4 + read_up_to(r, &mut bytes[4..]).map_err(failed)?;
    if got < bytes.len() {
        return Err(DataError::Truncated { path: path.to_path_buf(), detail: format!("header ends at byte {got}") });
    }
    let mut sizes = bytes[4..].chunks_exact(4).map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])));
    let promised = sizes.try_fold(1u64, u64::checked_mul).and_then(|n| n.checked_add(bytes.len() as u64));
    let Some(promised) = promised.filter(|&p| p <= max_len) else {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "the header promises more values than a file of this size can hold (at most {max_len} bytes)"
            ),
        });
    };
    // Grows with what arrives: a header that lies costs nothing it does not back with data.
    r.take(promised + 1 - bytes.len() as u64).read_to_end(&mut bytes).map_err(failed)?;
    Ok(bytes)
}

/// Reads into `buf` until it is full or the stream ends; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

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
    /// Reads the file, decompressing it if it is gzipped. The header is read first and
    /// its sizes multiplied with overflow checks; the values are then read up to what
    /// the header promises (plus one byte, to notice a longer file), never more, and a
    /// gzip file is not decompressed past it — a decompression bomb stops there. A gzip
    /// file whose header promises more than deflate could hold is refused unread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (file, meta) = crate::regular_file::open(&path, "IDX").map_err(io_err(&path))?;
        let (mut file, len) = (BufReader::new(file), meta.len());
        let gzipped = file.fill_buf().map_err(io_err(&path))?.starts_with(&[0x1f, 0x8b]);
        let bytes = if gzipped {
            let mut gz = flate2::bufread::GzDecoder::new(file);
            let bytes = read_bounded(&path, &mut gz, len.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024))?;
            let mut probe = [0u8; 1];
            let at_end = gz.read(&mut probe).is_ok_and(|n| n == 0);
            let trailing = if at_end { gz.into_inner().bytes().count() } else { 0 };
            if trailing > 0 {
                return Err(DataError::Corrupt {
                    path,
                    detail: format!("{trailing} bytes of something else follow the gzip stream"),
                });
            }
            bytes
        } else {
            read_bounded(&path, &mut file, len)?
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
        let values = count.checked_mul(rows).and_then(|n| n.checked_mul(cols));
        let values = values.ok_or_else(|| self.bad_dims(format!("{count} x {rows} x {cols} values overflow")))?;
        let pixels = self.body(4 * 4, values)?;
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
        let have = self.bytes.len().saturating_sub(offset);
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
