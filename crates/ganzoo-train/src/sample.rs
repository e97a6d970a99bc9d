//! Reading a finished (or interrupted) run back: rebuild the generator from the
//! run's `config.toml`, load a checkpoint's weights (the latest, or one by iteration),
//! and sample.

use std::path::Path;

use candle_core::{Device, Tensor};
use ganzoo_models::norm::BnMode;
use ganzoo_models::Network;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint;
use crate::config::{DataSource, Precision, TrainConfig};
use crate::networks::Players;
use crate::run_dir::RunDir;
use crate::trainer::noise;
use crate::{Result, TrainError};

/// A trained generator and the configuration it came from.
pub struct TrainedGenerator {
    pub config: TrainConfig,
    pub gen: Network,
    /// Shape of one sample.
    pub sample_shape: Vec<usize>,
    /// The generator iteration of the checkpoint its weights come from.
    pub iteration: u64,
    device: Device,
}

impl TrainedGenerator {
    /// Loads the generator of `run` (its latest checkpoint).
    pub fn load(run: &Path, device: &Device) -> Result<Self> {
        Self::load_at(run, None, device)
    }

    /// Loads the generator of `run` from its checkpoint at generator iteration `step`
    /// (`checkpoints/step-N`, kept by `keep_checkpoints`), or the latest for `None`.
    pub fn load_at(run: &Path, step: Option<u64>, device: &Device) -> Result<Self> {
        let (run, config) = RunDir::open(run)?;
        let dir = match step {
            None => checkpoint::latest(run.path())?.ok_or_else(|| TrainError::Checkpoint {
                path: run.path().to_path_buf(),
                detail: "has no checkpoint yet".into(),
            })?,
            Some(step) => checkpoint::at_step(run.path(), step)?,
        };
        // Its folder's name says its iteration (`latest` and `at_step` give only `step-N`).
        let iteration = dir.file_name().and_then(|n| checkpoint::step_of(&n.to_string_lossy())).unwrap_or(0);
        let weights = dir.join("generator.safetensors");
        let sample_shape = sample_shape_from(&config, &run.config_path())?;
        let players = Players::build(&config, &sample_shape, device)?;
        checkpoint::load_store(&players.gen_store, &weights)?;
        Ok(Self { config, gen: players.gen, sample_shape, iteration, device: device.clone() })
    }

    /// The same generator computing its activations in `precision` instead of the run's
    /// (e.g. f32 for a run trained with bf16 activations; the weights are f32 either way).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.gen = self.gen.with_activations(precision.activations());
        self.config.precision = precision;
        self
    }

    /// `n` samples from noise drawn with `seed`: `(n, 2)` for toys, `(n, C, H, W)` in [−1, 1] for images.
    /// Batch norm uses the statistics of the generated batch, as during training.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Tensor> {
        let z = noise(&mut ChaCha8Rng::seed_from_u64(seed), n, self.config.latent, &self.device)?;
        self.generate(&z)
    }

    /// [`sample`](Self::sample) in chunks of at most `chunk`, handed to `each` in order: the
    /// same noise stream, so the first `chunk` samples equal `sample(chunk, seed)`'s. Batch
    /// norm takes each chunk's statistics.
    pub fn sample_chunks<E: From<TrainError>>(
        &self,
        n: usize,
        seed: u64,
        chunk: usize,
        mut each: impl FnMut(Tensor) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.max(1));
            let z = noise(&mut rng, k, self.config.latent, &self.device)?;
            each(self.generate(&z)?)?;
            left -= k;
        }
        Ok(())
    }

    fn generate(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.gen.forward_mode(z, BnMode::BatchStats)?)
    }

    /// `rows` walks of `cols` steps each, linear in latent space between two random points.
    pub fn interpolate(&self, rows: usize, cols: usize, seed: u64) -> Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut walks = Vec::with_capacity(rows * cols);
        for _ in 0..rows {
            let (a, b) = (
                noise(&mut rng, 1, self.config.latent, &self.device)?,
                noise(&mut rng, 1, self.config.latent, &self.device)?,
            );
            for j in 0..cols {
                let t = j as f64 / (cols.max(2) - 1) as f64;
                walks.push(((&a * (1.0 - t))? + (&b * t)?)?);
            }
        }
        self.generate(&Tensor::cat(&walks, 0)?)
    }
}

/// Sample shape of a run, as its resolved configuration (read from `config_path`) records it.
pub fn sample_shape_from(config: &TrainConfig, config_path: &Path) -> Result<Vec<usize>> {
    match (&config.data, config.channels, config.image_size) {
        (DataSource::Toy(_), _, _) => Ok(vec![2]),
        (_, Some(c), Some(s)) => Ok(vec![c, s, s]),
        _ => Err(TrainError::Checkpoint {
            path: config_path.to_path_buf(),
            detail: "records no image size and channel count (not written by a trainer)".into(),
        }),
    }
}
