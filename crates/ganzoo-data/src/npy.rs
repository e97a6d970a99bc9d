//! The NumPy `.npy` format, version 1.0, for little-endian `f32` arrays.
//!
//! Layout: `\x93NUMPY`, version bytes `1 0`, a little-endian `u16` header length,
//! an ASCII dict `{'descr': '<f4', 'fortran_order': False, 'shape': (...), }`
//! padded with spaces and a newline so the data starts on a 64-byte boundary.

use std::path::Path;

use crate::error::io_err;
use crate::{DataError, Result};

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";

/// Writes a C-ordered `f32` array of the given shape.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(DataError::InvalidArgument(format!("{} values do not fill shape {shape:?}", data.len())));
    }
    let dims = shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    let dims = if shape.len() == 1 { format!("{dims},") } else { dims };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    let unpadded = MAGIC.len() + 2 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + header.len() + 4 * data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(io_err(path))
}

/// Reads an array written by [`write_npy_f32`] (or NumPy, for C-ordered `<f4`).
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let bad = |detail: &str| DataError::BadLayout { path: path.to_path_buf(), detail: detail.to_string() };
    if bytes.len() < 10 || &bytes[..8] != MAGIC {
        return Err(bad("not a version 1.0 .npy file"));
    }
    let hlen = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header =
        bytes.get(10..10 + hlen).and_then(|h| std::str::from_utf8(h).ok()).ok_or_else(|| bad("truncated header"))?;
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        return Err(bad("only C-ordered little-endian float32 arrays are supported"));
    }
    let dims =
        header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).ok_or_else(|| bad("no shape in header"))?;
    let shape: Vec<usize> = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_>>()?;
    let body = &bytes[10 + hlen..];
    if body.len() != 4 * shape.iter().product::<usize>() {
        return Err(bad("data length does not match the shape"));
    }
    Ok((shape, body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}
