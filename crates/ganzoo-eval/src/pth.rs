//! PyTorch state dicts (`.pth`) in both of `torch.save`'s formats: the zip archive
//! (PyTorch ≥ 1.6, read through Candle's `pickle` module) and the legacy stream that
//! pytorch-fid's Inception weights (2019) are stored in, which Candle does not read
//! (huggingface/candle#1348).
//!
//! Legacy layout (torch/serialization.py, `_legacy_save`): five pickles — the magic
//! number, the protocol version (1001), system information, the object itself (tensors
//! as `_rebuild_tensor_v2(persistent_load(('storage', type, key, location, numel, …)),
//! offset, size, stride, …)`), the list of storage keys — then, for each key in that
//! order, its element count as a little-endian `i64` and its raw bytes. The pickles are
//! parsed with Candle's `pickle::Stack`; every size is checked against the file.

use std::collections::HashMap;
use std::io::{BufRead, Cursor};
use std::path::Path;

use candle_core::pickle::{Object, Stack, TensorInfo};
use candle_core::{DType, Device, Tensor};

use crate::{EvalError, Result};

/// The first pickle of a legacy file: protocol 2, `LONG1` of ten bytes holding
/// `0x1950a86a20f9469cfc6c`, `STOP`.
const LEGACY_MAGIC: [u8; 15] =
    [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// Every tensor of the state dict in `path`, by name (entries that are not tensors skipped).
/// The file must be a regular file of at most `max_bytes`.
pub fn read_state_dict(path: &Path, max_bytes: u64) -> Result<HashMap<String, Tensor>> {
    let bytes = ganzoo_data::regular_file::read(path, max_bytes, "PyTorch weights")
        .map_err(|e| EvalError::File { path: path.to_path_buf(), detail: e.to_string() })?;
    parse_state_dict(path, &bytes)
}

/// As [`read_state_dict`], on the file's bytes already read (a zip archive is read
/// again from `path`, entry by entry).
pub fn parse_state_dict(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    let bad = |detail: String| EvalError::File { path: path.to_path_buf(), detail };
    // Candle's pickle reader is not hardened against arbitrary bytes (an over-long
    // integer overflows a shift): a panic in it is reported as a malformed file.
    let parsed = std::panic::catch_unwind(|| {
        if bytes.starts_with(&ZIP_MAGIC) {
            read_zip(path)
        } else if bytes.starts_with(&LEGACY_MAGIC) {
            read_legacy(bytes)
        } else {
            Err("neither a zip-format nor a legacy PyTorch file".to_string())
        }
    });
    match parsed {
        Ok(Ok(tensors)) if tensors.is_empty() => Err(bad("holds no tensors".into())),
        Ok(Ok(tensors)) => Ok(tensors),
        Ok(Err(detail)) => Err(bad(detail)),
        Err(_) => Err(bad("malformed pickle".into())),
    }
}

fn read_zip(path: &Path) -> std::result::Result<HashMap<String, Tensor>, String> {
    let pth = candle_core::pickle::PthTensors::new(path, None).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for name in pth.tensor_infos().keys() {
        if let Some(t) = pth.get(name).map_err(|e| format!("tensor {name}: {e}"))? {
            out.insert(name.clone(), t);
        }
    }
    Ok(out)
}

fn read_legacy(bytes: &[u8]) -> std::result::Result<HashMap<String, Tensor>, String> {
    let mut cur = Cursor::new(&bytes[LEGACY_MAGIC.len()..]);
    let protocol = unpickle(&mut cur)?;
    if protocol != Object::Int(1001) {
        return Err(format!("unsupported legacy protocol {protocol:?}"));
    }
    let _system_info = unpickle(&mut cur)?;
    let Object::Dict(entries) = unpickle(&mut cur)? else {
        return Err("the object saved is not a dict of tensors".into());
    };
    let infos: Vec<TensorInfo> = entries
        .into_iter()
        .filter_map(|(name, value)| value.into_tensor_info(name, Path::new("")).transpose())
        .collect::<candle_core::Result<_>>()
        .map_err(|e| e.to_string())?;
    let Object::List(keys) = unpickle(&mut cur)? else { return Err("no list of storage keys".into()) };
    let storages = storage_ranges(&infos, keys, bytes, LEGACY_MAGIC.len() + cur.position() as usize)?;
    infos.iter().map(|info| tensor_from(info, &storages, bytes).map(|t| (info.name.clone(), t))).collect()
}

/// One pickle from `cur`.
fn unpickle(cur: &mut Cursor<&[u8]>) -> std::result::Result<Object, String> {
    if cur.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Err("ends early".into());
    }
    let mut stack = Stack::empty();
    stack.read_loop(cur).map_err(|e| e.to_string())?;
    stack.finalize().map_err(|e| e.to_string())
}

/// Byte range of each storage after the pickles, keyed by storage key; each checked to
/// lie inside the file and to hold as many elements as its tensors' type says.
fn storage_ranges(
    infos: &[TensorInfo],
    keys: Vec<Object>,
    bytes: &[u8],
    mut at: usize,
) -> std::result::Result<HashMap<String, std::ops::Range<usize>>, String> {
    let dtype_of: HashMap<&str, DType> = infos.iter().map(|i| (storage_key(i), i.dtype)).collect();
    let mut out = HashMap::new();
    for key in keys {
        let key = key.unicode().map_err(|o| format!("storage key {o:?} is not a string"))?;
        let size = dtype_of.get(key.as_str()).map_or(1, |d| d.size_in_bytes());
        let head: [u8; 8] = bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).ok_or("storages end early")?;
        let numel = u64::from_le_bytes(head);
        let len = usize::try_from(numel).ok().and_then(|n| n.checked_mul(size)).ok_or("storage size overflows")?;
        let start = at + 8;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| format!("storage {key} claims {numel} elements, more than the file holds"))?;
        out.insert(key, start..end);
        at = end;
    }
    Ok(out)
}

fn storage_key(info: &TensorInfo) -> &str {
    info.path.trim_start_matches('/')
}

/// The contiguous tensor `info` describes inside its storage.
fn tensor_from(
    info: &TensorInfo,
    storages: &HashMap<String, std::ops::Range<usize>>,
    bytes: &[u8],
) -> std::result::Result<Tensor, String> {
    let name = &info.name;
    let range = storages.get(storage_key(info)).ok_or_else(|| format!("tensor {name}: its storage is missing"))?;
    if !info.layout.is_contiguous() {
        return Err(format!("tensor {name} is not contiguous"));
    }
    let len = info.layout.shape().elem_count() * info.dtype.size_in_bytes();
    let start = range.start + info.layout.start_offset();
    let data = start
        .checked_add(len)
        .filter(|&end| end <= range.end)
        .map(|end| &bytes[start..end])
        .ok_or_else(|| format!("tensor {name} reaches past its storage"))?;
    Tensor::from_raw_buffer(data, info.dtype, info.layout.dims(), &Device::Cpu).map_err(|e| format!("{name}: {e}"))
}
