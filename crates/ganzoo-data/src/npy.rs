//! The NumPy `.npy` format, version 1.0, for little-endian `f32` arrays.
//!
//! Layout: `\x93NUMPY`, version bytes `1 0`, a little-endian `u16` header length,
//! an ASCII dict `{'descr': '<f4', 'fortran_order': False, 'shape': (...), }`
//! padded with spaces and a newline so the data starts on a 64-byte boundary.

use std::io::Read;
use std::path::Path;

use crate::error::io_err;
use crate::partial::PartialFile;
use crate::{DataError, Result};

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";

/// Writes a C-ordered `f32` array of the given shape.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let mut w = NpyWriter::create(path, shape)?;
    w.write(data)?;
    w.finish()
}

/// An `.npy` file written a chunk at a time, so an array is bounded by the disk, not
/// memory: [`create`](Self::create) refuses an array larger than the disk's free space
/// before writing anything. It is written through a [`PartialFile`], put in place by
/// [`finish`](Self::finish) once every value is there: an interrupted write never leaves
/// a truncated `PATH`.
pub struct NpyWriter {
    file: PartialFile,
    remaining: u128,
}

impl NpyWriter {
    /// Starts an array of `shape`; its values follow in C order through [`write`](Self::write).
    pub fn create(path: &Path, shape: &[usize]) -> Result<Self> {
        let dims = shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
        let dims = if shape.len() == 1 { format!("{dims},") } else { dims };
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
        let unpadded = MAGIC.len() + 2 + header.len() + 1;
        header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
        header.push('\n');
        let hlen = u16::try_from(header.len())
            .map_err(|_| DataError::InvalidArgument(format!("shape {shape:?} does not fit an .npy header")))?;
        let remaining = shape.iter().map(|&d| d as u128).product::<u128>();
        let bytes = (MAGIC.len() + 2 + header.len()) as u128 + remaining.saturating_mul(4);
        crate::room::ensure_room(path, bytes)?;
        let mut file = PartialFile::create(path)?;
        file.write_all(MAGIC)?;
        file.write_all(&hlen.to_le_bytes())?;
        file.write_all(header.as_bytes())?;
        Ok(Self { file, remaining })
    }

    /// Appends values.
    pub fn write(&mut self, values: &[f32]) -> Result<()> {
        if values.len() as u128 > self.remaining {
            return Err(DataError::InvalidArgument(format!(
                "more values than the shape of {} holds",
                self.file.path().display()
            )));
        }
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.file.write_all(&bytes)?;
        self.remaining -= values.len() as u128;
        Ok(())
    }

    /// Checks that the shape is full, then puts the file in place.
    pub fn finish(self) -> Result<()> {
        if self.remaining != 0 {
            return Err(DataError::InvalidArgument(format!(
                "{} values missing from {}",
                self.remaining,
                self.file.path().display()
            )));
        }
        self.file.commit()
    }
}

/// Reads an array written by [`write_npy_f32`] (or NumPy, for C-ordered `<f4`). The
/// header's shape is checked against the file's length before the values are read.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bad = |detail: String| DataError::BadLayout { path: path.to_path_buf(), detail };
    let (mut file, meta) = crate::regular_file::open(path, ".npy").map_err(io_err(path))?;
    let len = meta.len();
    let mut head = [0u8; 10];
    file.read_exact(&mut head).map_err(|_| bad("not a version 1.0 .npy file".into()))?;
    if &head[..8] != MAGIC {
        return Err(bad("not a version 1.0 .npy file".into()));
    }
    let hlen = usize::from(u16::from_le_bytes([head[8], head[9]]));
    let mut header = vec![0u8; hlen];
    file.read_exact(&mut header).map_err(|_| bad("truncated header".into()))?;
    let header = std::str::from_utf8(&header).map_err(|_| bad("header is not text".into()))?;
    let descr = header.split("'descr': '").nth(1).and_then(|s| s.split('\'').next()).unwrap_or("?");
    if descr != "<f4" {
        return Err(bad(format!(
            "holds '{descr}' values; only little-endian float32 ('<f4') is read: save a.astype(np.float32)"
        )));
    }
    if header.contains("'fortran_order': True") {
        return Err(bad("holds a Fortran-ordered array; only C order is read: save np.ascontiguousarray(a)".into()));
    }
    let dims = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape in header".into()))?;
    let shape: Vec<usize> = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().map_err(|_| bad(format!("bad shape ({dims})"))))
        .collect::<Result<_>>()?;
    let values = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
    let body = len - 10 - hlen as u64;
    match values.and_then(|v| v.checked_mul(4)) {
        Some(bytes) if bytes == body => {}
        _ => return Err(bad(format!("shape {shape:?} does not match the {body} bytes of data"))),
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_err(path))?;
    if bytes.len() as u64 != body {
        return Err(bad("the file changed while it was read".into()));
    }
    Ok((shape, bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}
