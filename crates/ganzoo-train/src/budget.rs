//! Memory a command will need, estimated from its sizes before anything is allocated,
//! and the limit it must stay under: `--max-memory`, else what the machine has free.
//!
//! The estimate is deliberately generous (it is a refusal threshold, not a
//! prediction): every value a training step keeps, its gradient, and the kernels'
//! working copies. `tests/integration/bounds.rs` checks it against the bytes training
//! really holds at its peak (counted by the test binary's allocator): an upper bound,
//! within a small factor.

use ganzoo_models::Footprint;

use crate::config::{Constraint, DataSource, Objective, TrainConfig};
use crate::networks::Players;
use crate::{Result, TrainError};

/// The process itself, Candle, the allocator's slack: what any command holds.
pub const BASELINE_BYTES: u64 = 96 << 20;
/// Bytes of one `f32`.
const F32: u128 = 4;

/// An upper limit on memory and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    pub source: &'static str,
}

impl MemoryLimit {
    /// `--max-memory`, if given; else the machine's available memory (Linux's
    /// `MemAvailable`); else no limit.
    pub fn resolve(flag: Option<u64>) -> Self {
        match flag {
            Some(bytes) => Self { bytes, source: "--max-memory" },
            None => match available_memory() {
                Some(bytes) => Self { bytes, source: "the machine's available memory" },
                None => Self { bytes: u64::MAX, source: "no limit" },
            },
        }
    }

    /// Refuses `needed` bytes (plus [`BASELINE_BYTES`]) for `what` when over the limit.
    pub fn check(&self, what: impl Into<String>, needed: u128, hint: &str) -> Result<()> {
        let needed = u64::try_from(needed.saturating_add(u128::from(BASELINE_BYTES))).unwrap_or(u64::MAX);
        if needed <= self.bytes {
            return Ok(());
        }
        Err(TrainError::TooLarge {
            what: what.into(),
            needed,
            limit: self.bytes,
            limit_source: self.source,
            hint: hint.into(),
        })
    }
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Images a training run holds: how many, and their stored shape `[C, H, W]` (resized to
/// the configuration's image size if it differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataSize {
    pub count: usize,
    pub shape: [usize; 3],
}

/// Bytes a training run of `config` needs at its peak, over `data` (`None` for toys).
pub fn training_bytes(config: &TrainConfig, data: Option<DataSize>) -> u128 {
    let sample: Vec<usize> = match (&config.data, data) {
        (DataSource::Images(_), Some(d)) => {
            let side = config.image_size.unwrap_or(d.shape[1]);
            vec![d.shape[0], side, side]
        }
        _ => vec![2],
    };
    let (g, d) = Players::footprints(config, &sample);
    let batch = config.batch_size as u128;
    // Weights; gradients (accumulated: a zero tensor, then the sum); two optimiser
    // moments; two copies while a checkpoint is serialised.
    let params = 7 * F32 * (g.params + d.params);
    // The critic sees real and fake; every kept value has a gradient of its size; the
    // penalty's graph of ∇x D doubles the critic's share again.
    let penalty = matches!(config.objective, Objective::Wasserstein { constraint: Constraint::Penalty { .. } });
    let critic_passes = if penalty { 4 } else { 2 };
    let per_sample = 2 * (g.activations + critic_passes * d.activations) + unfold(g, d);
    let activations = F32 * batch * per_sample;
    let images = data.map_or(0, |d| {
        let stored = d.count as u128 * d.shape.iter().map(|&s| s as u128).product::<u128>();
        let side = config.image_size.map_or(0, |s| s as u128);
        stored + d.count as u128 * d.shape[0] as u128 * side * side
    });
    // A toy run's sample plot evaluates the critic over the plane, a chunk at a time.
    let surface = match config.data {
        DataSource::Toy(_) => F32 * crate::plot::SURFACE_CHUNK as u128 * d.activations,
        DataSource::Images(_) => 0,
    };
    params.saturating_add(activations).saturating_add(images).saturating_add(surface)
}

/// The kernels' unfolding buffers (forward and backward) of the larger network.
fn unfold(g: Footprint, d: Footprint) -> u128 {
    2 * g.unfold.max(d.unfold)
}

/// Bytes `n` generated samples of `numel` values take as `f32`, with the generator's
/// activations for a batch of `batch` at a time.
pub fn sampling_bytes(config: &TrainConfig, sample: &[usize], batch: usize) -> u128 {
    let (g, _) = Players::footprints(config, sample);
    F32 * (g.params + batch as u128 * (g.activations + g.unfold))
}
