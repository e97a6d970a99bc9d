//! What a feature network sees in a real split, computed once and kept next to the data:
//! `<dir>/ganzoo-features-<network id>-<split fingerprint>.safetensors` holding `features`
//! (`n × dim`, f32) and, from a classifier, `probs` (`n × classes`). The network id hashes
//! its weights, the fingerprint the split's pixels and labels, so a changed network or
//! data set never meets a stale cache. Files are written through a temporary name and
//! renamed; one that does not read back as expected is ignored (and recomputed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use ganzoo_data::ImageDataset;
use sha2::{Digest, Sha256};

use crate::image::{FeatureExtractor, Reference, Seen};
use crate::{EvalError, Result};

/// Hex digits of SHA-256 kept in ids and fingerprints.
const DIGITS: usize = 16;

/// Hex SHA-256 prefix of the bytes of `tensors` (as f32, in order) and of `extra`.
pub fn fingerprint_tensors<'a>(tensors: impl IntoIterator<Item = &'a Tensor>, extra: &[u8]) -> Result<String> {
    let mut h = Sha256::new();
    h.update(extra);
    for t in tensors {
        let v: Vec<f32> = t
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(|e| EvalError::Numeric(e.to_string()))?;
        h.update(format!("{:?}", t.dims()).as_bytes());
        v.iter().for_each(|x| h.update(x.to_le_bytes()));
    }
    Ok(hex(&h.finalize()))
}

/// Hex SHA-256 prefix of a split's shape, pixels and labels.
pub fn fingerprint_split(data: &ImageDataset) -> String {
    let mut h = Sha256::new();
    let s = data.shape();
    h.update(format!("{}x{}x{}x{}", data.len(), s.channels, s.height, s.width).as_bytes());
    h.update(data.pixels());
    data.labels().iter().for_each(|l| h.update(l.to_le_bytes()));
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..DIGITS].to_string()
}

/// The cache file for network `id` and split `fingerprint` in `dir`.
pub fn cache_file(dir: &Path, id: &str, fingerprint: &str) -> PathBuf {
    dir.join(format!("ganzoo-features-{id}-{fingerprint}.safetensors"))
}

/// The cached features if `path` holds `n` rows of `dim` features (and `classes` probabilities).
pub fn read(path: &Path, n: usize, dim: usize, classes: usize) -> Option<Seen> {
    // Only a regular file no larger than those rows (f32) and a header is read, into
    // memory: a FIFO by that name would hang the open, a mapped file truncated meanwhile
    // would kill the process.
    let max = (n as u64).saturating_mul((dim + classes) as u64 * 4).saturating_add(1 << 20);
    let bytes = ganzoo_data::regular_file::read(path, max, "feature cache").ok()?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).ok()?;
    let rows = |name: &str, width: usize| -> Option<Vec<f32>> {
        let t = tensors.get(name)?;
        (t.dims() == [n, width]).then(|| t.flatten_all().and_then(|t| t.to_vec1()).ok())?
    };
    let features = rows("features", dim)?;
    let probs = if classes > 0 { rows("probs", classes)? } else { Vec::new() };
    if features.iter().chain(&probs).any(|v| !v.is_finite()) {
        return None;
    }
    Some(Seen { dim, classes, features, probs, reference: None })
}

/// Writes `seen` to `path` through a temporary file in the same folder.
pub fn write(path: &Path, seen: &Seen) -> Result<()> {
    let to_tensor = |v: &[f32], width: usize| {
        Tensor::from_slice(v, (v.len() / width.max(1), width), &Device::Cpu)
            .map_err(|e| EvalError::Numeric(e.to_string()))
    };
    let mut tensors = HashMap::from([("features".to_string(), to_tensor(&seen.features, seen.dim)?)]);
    if seen.classes > 0 {
        tensors.insert("probs".to_string(), to_tensor(&seen.probs, seen.classes)?);
    }
    let bytes = ganzoo_data::safetensors_file::to_bytes(&tensors)
        .map_err(|e| EvalError::File { path: path.to_path_buf(), detail: e.to_string() })?;
    crate::files::write_whole(path, &bytes)
}

/// What `net` sees in `data`: read from the first cache in `dirs` that holds it, else
/// computed (`progress(done, total)` after each batch) and written to the first of `dirs`
/// that accepts it (a folder that refuses — read-only data — is skipped with a warning).
pub fn real_features(
    net: &FeatureExtractor,
    data: &ImageDataset,
    dirs: &[PathBuf],
    mut progress: impl FnMut(usize, usize),
) -> Result<Seen> {
    let (id, fingerprint) = (net.id()?, fingerprint_split(data));
    let files: Vec<PathBuf> = dirs.iter().map(|d| cache_file(d, &id, &fingerprint)).collect();
    let (n, dim, classes) = (data.len(), net.dim(), net.classes().unwrap_or(0));
    let reference = Some(Reference { network: id, real: fingerprint });
    if let Some((file, seen)) = files.iter().find_map(|f| read(f, n, dim, classes).map(|s| (f, s))) {
        tracing::info!(file = %file.display(), "real features from the cache");
        return Ok(Seen { reference, ..seen });
    }
    let mut seen = net.nothing_seen();
    for ids in (0..n).collect::<Vec<_>>().chunks(net.batch()) {
        let (images, _) = data.gather(ids, &Device::Cpu).map_err(|e| EvalError::Samples(e.to_string()))?;
        seen.extend(net.see(&images)?);
        progress(seen.len(), n);
    }
    for file in &files {
        match file
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .map_err(|e| e.to_string())
            .and_then(|_| write(file, &seen).map_err(|e| e.to_string()))
        {
            Ok(()) => {
                tracing::info!(file = %file.display(), "real features cached");
                break;
            }
            Err(e) => tracing::warn!(file = %file.display(), error = %e, "cannot cache the real features here"),
        }
    }
    Ok(Seen { reference, ..seen })
}
