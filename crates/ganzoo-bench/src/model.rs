//! The benchmark models: the zoo's recipes at the shapes and batch sizes of the
//! PyTorch reference cases, fed from an in-memory pool of synthetic images.

use std::str::FromStr;

use ganzoo_data::{ImageDataset, ImageShape, ToyDistribution};
use ganzoo_train::{CriticSchedule, DataSource, Family, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Result;

/// One benchmark case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchModel {
    /// The seed's MLP GAN on 28×28 grey images, batch 100.
    Gan,
    /// DCGAN at 32×32 RGB, batch 64.
    Dcgan32,
    /// DCGAN at 64×64 RGB, batch 64.
    Dcgan64,
    /// WGAN with weight clipping, DCGAN-32 networks (batch-norm critic), 5 critic steps.
    Wgan32,
    /// WGAN-GP, DCGAN-32 networks with a layer-norm critic, 5 critic steps.
    WganGp32,
    /// WGAN-GP on 8 Gaussians with the toy MLPs, batch 256, 5 critic steps.
    Toy,
}

impl BenchModel {
    pub const ALL: [Self; 6] = [Self::Gan, Self::Dcgan32, Self::Dcgan64, Self::Wgan32, Self::WganGp32, Self::Toy];

    pub fn name(self) -> &'static str {
        match self {
            Self::Gan => "gan",
            Self::Dcgan32 => "dcgan32",
            Self::Dcgan64 => "dcgan64",
            Self::Wgan32 => "wgan32",
            Self::WganGp32 => "wgan-gp32",
            Self::Toy => "toy",
        }
    }

    /// The matching case of `../shared/bench/torchref/throughput.py`.
    pub fn torch_case(self) -> &'static str {
        match self {
            Self::Gan => "mlp-gan",
            Self::Dcgan32 => "dcgan32",
            Self::Dcgan64 => "dcgan64",
            Self::Wgan32 => "wgan-clip-dcgan32",
            Self::WganGp32 => "wgan-gp-dcgan32",
            Self::Toy => "wgan-gp-toy",
        }
    }

    fn family(self) -> Family {
        match self {
            Self::Gan => Family::Gan,
            Self::Dcgan32 | Self::Dcgan64 => Family::Dcgan,
            Self::Wgan32 => Family::Wgan,
            Self::WganGp32 | Self::Toy => Family::WganGp,
        }
    }

    /// `(channels, side)` of the images; `None` for the toy.
    fn image(self) -> Option<(usize, usize)> {
        match self {
            Self::Gan => Some((1, 28)),
            Self::Dcgan32 | Self::Wgan32 | Self::WganGp32 => Some((3, 32)),
            Self::Dcgan64 => Some((3, 64)),
            Self::Toy => None,
        }
    }

    /// The family's preset with the reference's shapes (and `batch` if given, as
    /// `throughput.py --batch`), a steady critic schedule (no WGAN warm-up: the
    /// reference times steady iterations) and nothing written during the timed iterations.
    pub fn config(self, seed: u64, batch: Option<usize>) -> Result<TrainConfig> {
        let data = match self.image() {
            Some((1, _)) => DataSource::from_str("fashion-mnist")?,
            Some(_) => DataSource::from_str("cifar10")?,
            None => DataSource::Toy(ToyDistribution::EightGaussians),
        };
        let mut config = TrainConfig::preset(self.family(), data);
        config.seed = seed;
        config.batch_size = batch.unwrap_or(config.batch_size);
        config.tensorboard = false;
        config.image_size = self.image().map(|(_, side)| side);
        config.schedule = CriticSchedule { n_critic: config.schedule.n_critic, warmup: None };
        (config.epochs, config.iters) = (None, Some(u64::MAX / 2));
        let never = ganzoo_train::config::MAX_STORED;
        (config.log_every, config.sample_every, config.checkpoint_every) = (never, never, never);
        config.validate()?;
        Ok(config)
    }

    /// 32 batches of uniform random images (the reference uses a pool of 32 random batches too).
    pub fn synthetic_images(self, config: &TrainConfig) -> Result<Option<ImageDataset>> {
        let Some((channels, side)) = self.image() else { return Ok(None) };
        let shape = ImageShape { channels, height: side, width: side };
        let n = 32 * config.batch_size;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let pixels = (0..n * shape.numel()).map(|_| rng.random::<u8>()).collect();
        Ok(Some(ImageDataset::new(pixels, vec![0; n], shape, vec!["synthetic".into()])?))
    }

    /// Bytes one timed run of `config` (this model's) holds at its peak: the training
    /// estimate over its synthetic images (32 batches).
    pub fn bytes(self, config: &TrainConfig) -> u128 {
        let data = self
            .image()
            .map(|(c, side)| ganzoo_train::budget::DataSize { count: 32 * config.batch_size, shape: [c, side, side] });
        ganzoo_train::budget::training_bytes(config, data)
    }

    /// Images per generator iteration: (real images consumed, critic forward passes).
    pub fn images_per_iteration(self, config: &TrainConfig) -> (usize, usize) {
        let (b, n) = (config.batch_size, config.schedule.n_critic);
        let penalty = matches!(self, Self::WganGp32 | Self::Toy);
        (b * n, b * (n * if penalty { 3 } else { 2 } + 1))
    }
}

impl FromStr for BenchModel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|m| m.name()).collect();
            format!("unknown benchmark model '{s}': expected one of {}", names.join(", "))
        })
    }
}

impl std::fmt::Display for BenchModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
