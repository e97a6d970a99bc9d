//! Finding pytorch-fid's InceptionV3 weights, `pt_inception-2015-12-05-6726825d.pth`
//! (TensorFlow's FID network ported to PyTorch, 2019): a file given with
//! `--inception-weights`, else ganzoo's cache folder, else torch.hub's (where pytorch-fid
//! itself keeps it), else a download from pytorch-fid's release into ganzoo's cache,
//! verified by the SHA-256 prefix its name carries. Offline with none of these, the error
//! says where to put the file.

use std::path::{Path, PathBuf};

use candle_core::Device;
use ganzoo_data::download::{download_sha256, sha256_file, DownloadProgress};

use crate::inception::Inception;
use crate::{EvalError, Result};

pub const FILE_NAME: &str = "pt_inception-2015-12-05-6726825d.pth";
/// pytorch-fid's `FID_WEIGHTS_URL`.
pub const URL: &str =
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";
/// The first 8 hex digits of the file's SHA-256 (torch.hub's naming convention).
pub const SHA256_PREFIX: &str = "6726825d";
/// Files larger than this are refused before reading (the published one is about 92 MiB).
pub const MAX_BYTES: u64 = 512 << 20;

fn env_dir(key: &str) -> Option<PathBuf> {
    std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn home_cache() -> Option<PathBuf> {
    env_dir("XDG_CACHE_HOME").or_else(|| env_dir("HOME").map(|h| h.join(".cache")))
}

/// ganzoo's cache folder: `$GANZOO_CACHE`, else `$XDG_CACHE_HOME/ganzoo`, else `~/.cache/ganzoo`.
pub fn ganzoo_cache_dir() -> Option<PathBuf> {
    env_dir("GANZOO_CACHE").or_else(|| home_cache().map(|c| c.join("ganzoo")))
}

/// Where the weights are looked for and fetched from.
#[derive(Debug, Clone)]
pub struct WeightsLocator {
    /// `--inception-weights FILE`: used as given; a checksum that differs is a warning
    /// (the features may then not be comparable with published FIDs).
    pub explicit: Option<PathBuf>,
    /// Folders searched for [`FILE_NAME`]; a download goes into the first.
    pub dirs: Vec<PathBuf>,
    /// Where to download from when no folder has the file; `None`: never download.
    pub url: Option<String>,
    pub sha256_prefix: String,
}

impl WeightsLocator {
    /// `explicit`, else `$GANZOO_CACHE` (default `$XDG_CACHE_HOME/ganzoo` or
    /// `~/.cache/ganzoo`), then `$TORCH_HOME/hub/checkpoints` (default
    /// `~/.cache/torch/hub/checkpoints`), then a download from [`URL`].
    pub fn new(explicit: Option<PathBuf>) -> Self {
        let torch = env_dir("TORCH_HOME").or_else(|| home_cache().map(|c| c.join("torch")));
        let dirs = ganzoo_cache_dir().into_iter().chain(torch.map(|t| t.join("hub/checkpoints"))).collect();
        Self { explicit, dirs, url: Some(URL.to_string()), sha256_prefix: SHA256_PREFIX.to_string() }
    }

    /// The weights file: found, or downloaded (with progress) and verified.
    pub fn locate(&self, progress: &mut dyn DownloadProgress) -> Result<PathBuf> {
        if let Some(path) = &self.explicit {
            // Checked before hashing: a 4 GiB file is refused at once, as loading would.
            ganzoo_data::regular_file::check(path, MAX_BYTES, WHAT).map_err(|e| file_error(path, e))?;
            let sha = sha256_file(path).map_err(|e| EvalError::Weights(e.to_string()))?;
            if !sha.starts_with(&self.sha256_prefix) {
                tracing::warn!(file = %path.display(), sha256 = %sha,
                    "not pytorch-fid's published weights (SHA-256 should start with {}): FIDs will not compare with published ones",
                    self.sha256_prefix);
            }
            return Ok(path.clone());
        }
        if let Some(found) = self.dirs.iter().map(|d| d.join(FILE_NAME)).find(|p| p.is_file()) {
            return Ok(found);
        }
        let (Some(url), Some(dir)) = (&self.url, self.dirs.first()) else {
            return Err(self.not_found("downloads are off".into()));
        };
        let dest = dir.join(FILE_NAME);
        tracing::info!(%url, dest = %dest.display(), "downloading pytorch-fid's InceptionV3 weights (about 92 MiB)");
        std::fs::create_dir_all(dir).map_err(|e| EvalError::File {
            path: dir.clone(),
            detail: format!("cannot create the cache folder: {e}"),
        })?;
        match download_sha256(url, &dest, &self.sha256_prefix, progress) {
            Ok(()) => Ok(dest),
            Err(e) => Err(self.not_found(format!("the download failed: {e}"))),
        }
    }

    fn not_found(&self, why: String) -> EvalError {
        let looked: Vec<String> = self.dirs.iter().map(|d| d.join(FILE_NAME).display().to_string()).collect();
        let home = self.dirs.first().map_or_else(|| "a folder".to_string(), |d| d.display().to_string());
        EvalError::Weights(format!(
            "InceptionV3 weights not found (looked for {}), and {why}. Download {FILE_NAME} from {URL} \
             (its SHA-256 starts with {SHA256_PREFIX}) into {home}, or pass --inception-weights FILE",
            if looked.is_empty() { "nothing: no cache folder".to_string() } else { looked.join(", ") }
        ))
    }
}

/// The network on the weights in `path`: a `.pth` state dict (either `torch.save` format)
/// or a `.safetensors` file with the same names. The file is read once (a regular file,
/// its size checked before reading) into memory, never mapped.
pub fn load_inception(path: &Path, device: &Device) -> Result<Inception> {
    let bad = |detail: String| EvalError::File { path: path.into(), detail };
    let bytes = ganzoo_data::regular_file::read(path, MAX_BYTES, WHAT).map_err(|e| file_error(path, e))?;
    let tensors = if path.extension().is_some_and(|e| e == "safetensors") {
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| bad(e.to_string()))?
    } else {
        crate::pth::parse_state_dict(path, &bytes)?
    };
    Inception::from_state_dict(&tensors, device).map_err(|e| bad(e.to_string()))
}

/// The role a weights file has in [`ganzoo_data::regular_file`]'s errors.
const WHAT: &str = "weights";

/// A weights file refused by [`ganzoo_data::regular_file`], in one phrasing wherever
/// it is refused.
fn file_error(path: &Path, e: std::io::Error) -> EvalError {
    let detail = match e.kind() {
        std::io::ErrorKind::InvalidData => format!("{e}; any InceptionV3 weights file is smaller"),
        _ => e.to_string(),
    };
    EvalError::File { path: path.into(), detail }
}
