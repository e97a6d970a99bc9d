//! Checkpoints: `run/checkpoints/step-NNNNNNNN/` holding `generator.safetensors`,
//! `critic.safetensors`, `optimizer_g.safetensors`, `optimizer_d.safetensors` and
//! `state.json` (counters, data position, RNG position), plus `run/checkpoints/latest`
//! naming the newest complete one.
//!
//! Writes are atomic: a checkpoint is written into `step-N.tmp/`, synced, renamed into
//! place, and only then does `latest` (itself written to a temporary file and renamed)
//! point to it. A crash at any moment leaves the previous checkpoint and pointer intact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use ganzoo_models::ParamStore;
use serde::{Deserialize, Serialize};

use crate::error::io_err;
use crate::stream::StreamPosition;
use crate::{Result, TrainError};

/// Checkpoints kept on disk; older ones are removed.
const KEEP: usize = 2;

/// Counters and random-stream positions that make a resume exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub iteration: u64,
    pub position: StreamPosition,
    /// ChaCha8 word position of the run's RNG (a `u128`, as a decimal string).
    pub rng_word_pos: String,
    pub optimizer_g_steps: u64,
    pub optimizer_d_steps: u64,
    pub wall_time_s: f64,
    pub collapse_streak: u64,
}

/// Everything a checkpoint stores.
pub struct Snapshot<'a> {
    pub gen: &'a ParamStore,
    pub critic: &'a ParamStore,
    pub optimizer_g: HashMap<String, Tensor>,
    pub optimizer_d: HashMap<String, Tensor>,
    pub state: TrainState,
}

pub fn checkpoints_dir(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

/// Writes a checkpoint atomically and points `latest` at it.
pub fn save(run: &Path, snap: &Snapshot<'_>) -> Result<PathBuf> {
    let root = checkpoints_dir(run);
    std::fs::create_dir_all(&root).map_err(io_err(&root))?;
    let name = format!("step-{:08}", snap.state.iteration);
    let tmp = root.join(format!("{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    save_tensors(&store_tensors(snap.gen), &tmp.join("generator.safetensors"))?;
    save_tensors(&store_tensors(snap.critic), &tmp.join("critic.safetensors"))?;
    save_tensors(&snap.optimizer_g, &tmp.join("optimizer_g.safetensors"))?;
    save_tensors(&snap.optimizer_d, &tmp.join("optimizer_d.safetensors"))?;
    let state = serde_json::to_string_pretty(&snap.state).map_err(|e| TrainError::Config(e.to_string()))?;
    write_synced(&tmp.join("state.json"), state.as_bytes())?;
    let dir = root.join(&name);
    if dir.exists() {
        let old = root.join(format!("{name}.old"));
        std::fs::rename(&dir, &old).map_err(io_err(&dir))?;
        std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    } else {
        std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
    }
    crate::run_dir::write_atomic(&root.join("latest"), name.as_bytes())?;
    prune(&root, &name)?;
    Ok(dir)
}

/// The checkpoint `latest` points to, if any.
pub fn latest(run: &Path) -> Result<Option<PathBuf>> {
    let pointer = checkpoints_dir(run).join("latest");
    if !pointer.exists() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&pointer).map_err(io_err(&pointer))?;
    let dir = checkpoints_dir(run).join(name.trim());
    if name.trim().is_empty() || name.contains('/') || !dir.is_dir() {
        return Err(TrainError::Checkpoint {
            path: pointer,
            detail: format!("points to a missing checkpoint '{}'", name.trim()),
        });
    }
    Ok(Some(dir))
}

/// Checkpoints to resume from, most preferred first: the one `latest` names (when it
/// names one that exists), then every complete `step-N` folder, newest first.
pub fn candidates(run: &Path) -> Result<Vec<PathBuf>> {
    let root = checkpoints_dir(run);
    let mut out = Vec::new();
    match latest(run) {
        Ok(Some(dir)) => out.push(dir),
        Ok(None) => {}
        Err(e) => tracing::warn!("{e}"),
    }
    let steps = complete_steps(&root)?;
    for name in steps.into_iter().rev() {
        let dir = root.join(name);
        if dir.is_dir() && !out.contains(&dir) {
            out.push(dir);
        }
    }
    Ok(out)
}

/// Reads a checkpoint's `state.json`.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let path = dir.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint { path, detail: format!("unreadable state: {e}") })
}

/// Loads tensors from a safetensors file, naming the file on failure.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(path, device).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        detail: format!("not a readable safetensors file: {e}"),
    })
}

/// Sets every variable of `store` from `path`; names and shapes must match exactly.
pub fn load_store(store: &ParamStore, path: &Path) -> Result<()> {
    let named = store.named();
    let device = named.first().map(|(_, v)| v.device().clone()).unwrap_or(Device::Cpu);
    let tensors = load_tensors(path, &device)?;
    let mismatch = |detail: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        detail: format!("{detail}: the checkpoint is of another architecture"),
    };
    if let Some(extra) = tensors.keys().find(|k| !named.iter().any(|(n, _)| n == *k)) {
        return Err(mismatch(format!("unexpected tensor {extra}")));
    }
    for (name, var) in &named {
        let t = tensors.get(name).ok_or_else(|| mismatch(format!("no tensor {name}")))?;
        if t.dims() != var.dims() {
            return Err(mismatch(format!("{name} has shape {:?}, the model expects {:?}", t.dims(), var.dims())));
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

fn store_tensors(store: &ParamStore) -> HashMap<String, Tensor> {
    store.named().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect()
}

fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    // GPU tensors come to host memory here, where a failed copy is an error: Candle's
    // writer copies them inside safetensors' `View::data`, which cannot fail, and unwraps.
    let host = tensors.iter().map(|(n, t)| Ok((n.clone(), t.to_device(&Device::Cpu)?)));
    let host = host.collect::<candle_core::Result<HashMap<String, Tensor>>>()?;
    candle_core::safetensors::save(&host, path)
        .map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), detail: format!("cannot write: {e}") })?;
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// The names of the complete checkpoints in `root` (`step-N`, not `.tmp`/`.old`), oldest first.
fn complete_steps(root: &Path) -> Result<Vec<String>> {
    let mut steps: Vec<String> = match std::fs::read_dir(root) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.starts_with("step-") && !n.contains('.'))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(root)(e)),
    };
    steps.sort();
    Ok(steps)
}

/// Removes all but the newest [`KEEP`] complete checkpoints (never `current`).
fn prune(root: &Path, current: &str) -> Result<()> {
    let steps = complete_steps(root)?;
    let excess = steps.len().saturating_sub(KEEP);
    for name in steps.into_iter().take(excess).filter(|n| n != current) {
        let dir = root.join(&name);
        std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
    }
    Ok(())
}
