//! Checkpoints: `run/checkpoints/step-NNNNNNNN/` holding `generator.safetensors`,
//! `critic.safetensors`, `optimizer_g.safetensors`, `optimizer_d.safetensors` and
//! `state.json` (counters, data position, RNG position) and `config.toml` (the
//! configuration it was trained with), plus `run/checkpoints/latest`
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
use crate::{Result, TrainConfig, TrainError};

/// Checkpoints kept on disk by default (`TrainConfig::keep_checkpoints`); older ones are
/// removed.
pub const DEFAULT_KEEP: usize = 2;
/// The most bytes `latest` or a `state.json` may have (ganzoo's are under 1 KiB).
pub const SMALL_FILE_BYTES: u64 = 1 << 20;

/// The folder name of the checkpoint at generator iteration `step`.
pub fn step_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// The iteration in a checkpoint folder's name, for names [`step_name`] gives and no
/// others: a user's copy beside them (`step-best`, `step-00000500-keep`) is neither
/// pruned, counted, nor removed by `--overwrite`.
pub fn step_of(name: &str) -> Option<u64> {
    let n: u64 = name.strip_prefix("step-")?.parse().ok()?;
    (step_name(n) == name).then_some(n)
}

/// Whether `name` in `checkpoints/` is one the trainer writes: `latest`, a checkpoint,
/// or the temporary forms of either (`latest.tmp`, `step-N.tmp`, `step-N.old`).
pub fn is_own_entry(name: &str) -> bool {
    let stem = name.strip_suffix(".tmp").or_else(|| name.strip_suffix(".old")).unwrap_or(name);
    (stem == "latest" && !name.ends_with(".old")) || step_of(stem).is_some()
}

/// Whether `name` is a leftover of an interrupted write: `latest.tmp`, `step-N.tmp`, `step-N.old`.
pub fn is_leftover(name: &str) -> bool {
    is_own_entry(name) && (name.ends_with(".tmp") || name.ends_with(".old"))
}

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
    /// The configuration it was trained with, kept beside the state: a resume checks the
    /// run's (perhaps hand-edited) `config.toml` against it.
    pub config: &'a TrainConfig,
}

pub fn checkpoints_dir(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

/// Writes a checkpoint atomically and points `latest` at it, then keeps the newest
/// `keep_checkpoints` of the configuration (0: all). Where the disk lacks room for it,
/// those that would then be removed go first; if that is not enough (or every one is
/// kept), nothing is written and [`TrainError::NoRoom`] says what is needed and what is kept.
pub fn save(run: &Path, snap: &Snapshot<'_>) -> Result<PathBuf> {
    let root = checkpoints_dir(run);
    std::fs::create_dir_all(&root).map_err(io_err(&root))?;
    let name = step_name(snap.state.iteration);
    let tmp = root.join(format!("{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let keep = snap.config.keep_checkpoints;
    make_room(run, &tmp, size_on_disk(snap), keep)?;
    std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    if let Err(e) = write_files(&tmp, snap) {
        // A failed write (the disk filled after all) gives its space back.
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
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
    prune(&root, &name, keep)?;
    Ok(dir)
}

/// The checkpoint's files, written and synced into `tmp`.
fn write_files(tmp: &Path, snap: &Snapshot<'_>) -> Result<()> {
    save_tensors(&store_tensors(snap.gen), &tmp.join("generator.safetensors"))?;
    save_tensors(&store_tensors(snap.critic), &tmp.join("critic.safetensors"))?;
    save_tensors(&snap.optimizer_g, &tmp.join("optimizer_g.safetensors"))?;
    save_tensors(&snap.optimizer_d, &tmp.join("optimizer_d.safetensors"))?;
    let state = serde_json::to_string_pretty(&snap.state).map_err(|e| TrainError::Config(e.to_string()))?;
    write_synced(&tmp.join("state.json"), state.as_bytes())?;
    write_synced(&tmp.join("config.toml"), snap.config.to_toml()?.as_bytes())
}

/// About the bytes a checkpoint of `snap` takes: its tensors' values, and a margin for
/// the safetensors headers (names, shapes) and `state.json`.
fn size_on_disk(snap: &Snapshot<'_>) -> u128 {
    let (gen, critic) = (store_tensors(snap.gen), store_tensors(snap.critic));
    let all = [&gen, &critic, &snap.optimizer_g, &snap.optimizer_d];
    let tensors = all.iter().flat_map(|m| m.values());
    tensors.map(|t| (t.elem_count() * t.dtype().size_in_bytes()) as u128 + 256).sum::<u128>() + (64 << 10)
}

/// Checks that `needed` bytes fit beside `tmp`; where they do not, removes the complete
/// checkpoints that `prune` would remove once this one is written (all but the newest
/// `keep − 1`; none where `keep` is 0), never the one `latest` names, and checks again.
/// The checkpoint a resume would start from is never removed.
fn make_room(run: &Path, tmp: &Path, needed: u128, keep: usize) -> Result<()> {
    make_room_within(run, tmp, needed, keep, &|| ganzoo_data::room::free_bytes(tmp))
}

/// [`make_room`] with the free space read by `free` (tests give a small disk).
fn make_room_within(run: &Path, tmp: &Path, needed: u128, keep: usize, free: &dyn Fn() -> Option<u64>) -> Result<()> {
    let short = || free().filter(|&free| needed > u128::from(free));
    if short().is_none() {
        return Ok(());
    }
    let root = checkpoints_dir(run);
    let kept = latest(run).ok().flatten();
    let steps = complete_steps(&root)?;
    let removable = if keep == 0 { 0 } else { steps.len().saturating_sub(keep - 1) };
    for name in &steps[..removable] {
        let dir = root.join(name);
        if Some(&dir) != kept.as_ref() {
            tracing::warn!(checkpoint = %dir.display(), "removed early to make room for the next checkpoint");
            std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
    }
    match short() {
        Some(free) => {
            let kept = kept.or_else(|| steps.last().map(|n| root.join(n)));
            Err(TrainError::NoRoom { path: tmp.to_path_buf(), needed, free, checkpoint: kept })
        }
        None => Ok(()),
    }
}

/// The checkpoint `latest` points to, if any.
pub fn latest(run: &Path) -> Result<Option<PathBuf>> {
    let pointer = checkpoints_dir(run).join("latest");
    if !pointer.exists() {
        return Ok(None);
    }
    let name = read_pointer(&pointer).map_err(io_err(&pointer))?;
    let dir = checkpoints_dir(run).join(name.trim());
    let problem = match step_of(name.trim()) {
        None => "names no checkpoint (step-N)",
        Some(_) if !dir.is_dir() => "points to a missing checkpoint",
        Some(_) => return Ok(Some(dir)),
    };
    let shown: String = name.trim().chars().take(80).collect();
    Err(TrainError::Checkpoint { path: pointer, detail: format!("{problem}: '{shown}'") })
}

/// The complete checkpoint at generator iteration `step`, or an error naming those kept.
pub fn at_step(run: &Path, step: u64) -> Result<PathBuf> {
    let root = checkpoints_dir(run);
    let name = step_name(step);
    let steps = complete_steps(&root)?;
    if steps.contains(&name) {
        return Ok(root.join(name));
    }
    let kept: Vec<String> = steps.iter().filter_map(|n| step_of(n)).map(|n| n.to_string()).collect();
    let detail = match kept.is_empty() {
        true => format!("has no checkpoint at iteration {step}, nor any other"),
        false => format!(
            "has no checkpoint at iteration {step}; it keeps those at {} (train --keep-checkpoints sets how many stay)",
            kept.join(", ")
        ),
    };
    Err(TrainError::Checkpoint { path: run.to_path_buf(), detail })
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

/// The text of a `latest` pointer (a regular file of at most [`SMALL_FILE_BYTES`]).
pub fn read_pointer(pointer: &Path) -> std::io::Result<String> {
    ganzoo_data::regular_file::read_to_string(pointer, SMALL_FILE_BYTES, "checkpoint pointer")
}

/// Reads a checkpoint's `state.json`.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let path = dir.join("state.json");
    let text = ganzoo_data::regular_file::read_to_string(&path, SMALL_FILE_BYTES, "checkpoint state")
        .map_err(io_err(&path))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint { path, detail: format!("unreadable state: {e}") })
}

/// Reads the configuration a checkpoint was trained with; `None` for a checkpoint
/// written before checkpoints kept it.
pub fn read_config(dir: &Path) -> Result<Option<TrainConfig>> {
    let path = dir.join("config.toml");
    match crate::config::read_config_text(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
        Ok(text) => TrainConfig::from_toml(&text)
            .map(Some)
            .map_err(|e| TrainError::Checkpoint { path, detail: format!("unreadable configuration: {e}") }),
    }
}

/// The most bytes a safetensors file of `elements` numbers may have: 8 bytes a number
/// (f64, the widest dtype ganzoo reads) plus [`SMALL_FILE_BYTES`] for the header.
pub fn max_safetensors_bytes(elements: usize) -> u64 {
    (elements as u64).saturating_mul(8).saturating_add(SMALL_FILE_BYTES)
}

/// Loads tensors from a safetensors file of at most `max_bytes`, naming the file on
/// failure. The file is opened once, only if regular (a FIFO would hang the open), and read
/// into memory rather than mapped: a mapped file truncated by another process meanwhile
/// would kill the process with SIGBUS.
pub fn load_tensors(path: &Path, device: &Device, max_bytes: u64) -> Result<HashMap<String, Tensor>> {
    let failed = |detail: String| TrainError::Checkpoint { path: path.to_path_buf(), detail };
    let bytes = ganzoo_data::regular_file::read(path, max_bytes, "safetensors").map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => failed(format!("{e} for this model: a checkpoint of another architecture?")),
        _ => failed(e.to_string()),
    })?;
    candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| failed(format!("not a readable safetensors file: {e}")))
}

/// Sets every variable of `store` from `path`; names and shapes must match exactly.
pub fn load_store(store: &ParamStore, path: &Path) -> Result<()> {
    let named = store.named();
    let device = named.first().map(|(_, v)| v.device().clone()).unwrap_or(Device::Cpu);
    let elements = named.iter().map(|(_, v)| v.elem_count()).sum();
    let tensors = load_tensors(path, &device, max_safetensors_bytes(elements))?;
    let mismatch = |detail: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        detail: format!("{detail}: the checkpoint is of another architecture"),
    };
    // The first name in order, so that the same file always gets the same message.
    if let Some(extra) = tensors.keys().filter(|k| !named.iter().any(|(n, _)| n == *k)).min() {
        return Err(mismatch(format!("unexpected tensor {extra}")));
    }
    let mut matched = Vec::with_capacity(named.len());
    for (name, var) in &named {
        let t = tensors.get(name).ok_or_else(|| mismatch(format!("no tensor {name}")))?;
        if t.dims() != var.dims() {
            return Err(mismatch(format!("{name} has shape {:?}, the model expects {:?}", t.dims(), var.dims())));
        }
        matched.push((var, t));
    }
    // Every name and shape checked first: a refused file leaves the model as it was.
    for (var, t) in matched {
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

fn store_tensors(store: &ParamStore) -> HashMap<String, Tensor> {
    store.named().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect()
}

fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    // Written with the run's other files' permissions, synced (inside the checkpoint's
    // `.tmp` folder, renamed whole after).
    ganzoo_data::safetensors_file::write(path, tensors)
        .map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), detail: format!("cannot write: {e}") })
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// The names of the complete checkpoints in `root` (`step-N`, not `.tmp`/`.old`), oldest first.
pub fn complete_steps(root: &Path) -> Result<Vec<String>> {
    let mut steps: Vec<(u64, String)> = match std::fs::read_dir(root) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter_map(|n| step_of(&n).map(|step| (step, n)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(root)(e)),
    };
    steps.sort();
    Ok(steps.into_iter().map(|(_, n)| n).collect())
}

/// Removes all but the newest `keep` complete checkpoints (never `current`; none where
/// `keep` is 0).
fn prune(root: &Path, current: &str, keep: usize) -> Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let steps = complete_steps(root)?;
    let excess = steps.len().saturating_sub(keep);
    for name in steps.into_iter().take(excess).filter(|n| n != current) {
        let dir = root.join(&name);
        std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run with complete checkpoints `steps` of `size` bytes each, `latest` naming one.
    fn run_with(steps: &[u64], size: usize, latest: u64) -> tempfile::TempDir {
        let run = tempfile::tempdir().unwrap();
        let root = checkpoints_dir(run.path());
        for step in steps {
            let dir = root.join(format!("step-{step:08}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("generator.safetensors"), vec![0u8; size]).unwrap();
        }
        std::fs::write(root.join("latest"), format!("step-{latest:08}")).unwrap();
        run
    }

    /// The free space of a disk of `capacity` bytes holding only the run's checkpoints.
    fn disk(run: &Path, capacity: u64) -> impl Fn() -> Option<u64> + '_ {
        move || {
            let used: u64 = complete_steps(&checkpoints_dir(run))
                .unwrap()
                .iter()
                .map(|n| std::fs::metadata(checkpoints_dir(run).join(n).join("generator.safetensors")).unwrap().len())
                .sum();
            Some(capacity.saturating_sub(used))
        }
    }

    fn left(run: &Path) -> Vec<String> {
        complete_steps(&checkpoints_dir(run)).unwrap()
    }

    #[test]
    fn room_enough_removes_nothing() {
        let run = run_with(&[10, 20, 30], 100, 30);
        let tmp = checkpoints_dir(run.path()).join("step-00000040.tmp");
        make_room_within(run.path(), &tmp, 100, 2, &disk(run.path(), 400)).unwrap();
        assert_eq!(left(run.path()).len(), 3);
    }

    /// Short of room: the older checkpoints go, never the newest or the one `latest`
    /// names (a resume's start), and that makes room.
    #[test]
    fn short_of_room_the_older_checkpoints_go_first() {
        let run = run_with(&[10, 20, 30], 100, 30);
        let tmp = checkpoints_dir(run.path()).join("step-00000040.tmp");
        make_room_within(run.path(), &tmp, 100, 2, &disk(run.path(), 350)).unwrap();
        assert_eq!(left(run.path()), ["step-00000030"]);
        // `latest` naming an older one (a resume from it): both it and the newest stay.
        let run = run_with(&[10, 20, 30], 100, 20);
        make_room_within(run.path(), &tmp, 100, 2, &disk(run.path(), 350)).unwrap();
        assert_eq!(left(run.path()), ["step-00000020", "step-00000030"]);
    }

    #[test]
    fn checkpoint_names_are_only_the_ones_save_writes() {
        assert_eq!(step_of("step-00000042"), Some(42));
        assert_eq!(step_of("step-123456789"), Some(123_456_789));
        for other in ["step-42", "step-best", "step-00000042-keep", "step-+0000042", "step-000000042", "step-", ".."] {
            assert_eq!(step_of(other), None, "{other}");
        }
        for own in ["latest", "latest.tmp", "step-00000042", "step-00000042.tmp", "step-00000042.old"] {
            assert!(is_own_entry(own), "{own}");
        }
        for other in ["latest.npy", "latest.old", "step-best", "step-best.tmp", "step-00000042.bak", "model.pt"] {
            assert!(!is_own_entry(other), "{other}");
        }
        assert!(is_leftover("step-00000042.old") && is_leftover("latest.tmp") && !is_leftover("step-00000042"));
    }

    /// A user's copies beside the checkpoints (`step-best`, `step-00000010-keep`) are
    /// neither counted, pruned, nor removed to make room; checkpoints sort by number.
    #[test]
    fn a_users_copies_of_checkpoints_are_never_removed() {
        let run = run_with(&[10, 20, 30], 100, 30);
        let root = checkpoints_dir(run.path());
        let copies = ["step-best", "step-00000010-keep", "step-1"];
        for copy in copies {
            std::fs::create_dir(root.join(copy)).unwrap();
            std::fs::write(root.join(copy).join("generator.safetensors"), [1u8; 8]).unwrap();
        }
        assert_eq!(left(run.path()), ["step-00000010", "step-00000020", "step-00000030"]);
        let tmp = root.join("step-00000040.tmp");
        make_room_within(run.path(), &tmp, 100, 2, &disk(run.path(), 350)).unwrap();
        prune(&root, "step-00000030", 2).unwrap();
        assert_eq!(left(run.path()), ["step-00000030"]);
        for copy in copies {
            assert!(root.join(copy).join("generator.safetensors").is_file(), "{copy} was removed");
        }
        let run = run_with(&[99_999_999, 100_000_000, 100_000_001], 1, 100_000_001);
        prune(&checkpoints_dir(run.path()), "step-100000001", 2).unwrap();
        assert_eq!(left(run.path()), ["step-100000000", "step-100000001"], "by number, not by text");
    }

    #[test]
    fn a_latest_pointer_naming_no_checkpoint_is_refused() {
        let run = run_with(&[10], 1, 10);
        assert_eq!(latest(run.path()).unwrap(), Some(checkpoints_dir(run.path()).join("step-00000010")));
        for (text, says) in [("..", "names no checkpoint"), ("step-00000099", "missing checkpoint")] {
            std::fs::write(checkpoints_dir(run.path()).join("latest"), text).unwrap();
            let err = latest(run.path()).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains(text), "{err}");
        }
    }

    /// `keep_checkpoints`: short of room, only those pruning would remove go early (the
    /// oldest beyond the newest `keep − 1`); with every one kept (0), none, and the
    /// error says what is needed.
    #[test]
    fn short_of_room_what_is_kept_stays() {
        let run = run_with(&[10, 20, 30, 40], 100, 40);
        let tmp = checkpoints_dir(run.path()).join("step-00000050.tmp");
        make_room_within(run.path(), &tmp, 100, 3, &disk(run.path(), 400)).unwrap();
        assert_eq!(left(run.path()), ["step-00000030", "step-00000040"]);
        let run = run_with(&[10, 20, 30, 40], 100, 40);
        let err = make_room_within(run.path(), &tmp, 100, 0, &disk(run.path(), 450)).unwrap_err();
        assert!(matches!(err, TrainError::NoRoom { needed: 100, free: 50, .. }), "{err:?}");
        assert_eq!(left(run.path()).len(), 4);
        prune(&checkpoints_dir(run.path()), "step-00000040", 0).unwrap();
        assert_eq!(left(run.path()).len(), 4, "0 keeps every one");
        prune(&checkpoints_dir(run.path()), "step-00000040", 3).unwrap();
        assert_eq!(left(run.path()), ["step-00000020", "step-00000030", "step-00000040"]);
    }

    /// Still short once the older ones are gone: an error naming the checkpoint, both
    /// sizes and the checkpoint kept, which is still there.
    #[test]
    fn no_room_even_then_stops_with_the_latest_kept() {
        let run = run_with(&[10, 20], 100, 20);
        let tmp = checkpoints_dir(run.path()).join("step-00000030.tmp");
        let err = make_room_within(run.path(), &tmp, 100, 2, &disk(run.path(), 150)).unwrap_err();
        assert!(matches!(err, TrainError::NoRoom { needed: 100, free: 50, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("step-00000030.tmp") && msg.contains("100 B") && msg.contains("50 B free"), "{msg}");
        assert!(msg.contains("(") && msg.contains("step-00000020) is kept"), "{msg}");
        assert_eq!(left(run.path()), ["step-00000020"]);
        // Unknown free space refuses nothing.
        make_room_within(run.path(), &tmp, u128::MAX, 2, &|| None).unwrap();
    }
}
