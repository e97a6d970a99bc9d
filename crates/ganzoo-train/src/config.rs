//! The typed training configuration: one struct, the papers' defaults as presets,
//! validated once. A run directory saves it as `config.toml`, enough to rebuild
//! the networks and continue.

use std::str::FromStr;

use ganzoo_data::{DatasetSpec, ToyDistribution};
use ganzoo_losses::GeneratorCost;
use ganzoo_models::mlp::TOY_LATENT;
use ganzoo_models::Norm;
use serde::{Deserialize, Serialize};

use crate::{Result, TrainError};

/// The four GAN families of the zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Gan,
    Dcgan,
    Wgan,
    WganGp,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gan => "gan",
            Self::Dcgan => "dcgan",
            Self::Wgan => "wgan",
            Self::WganGp => "wgan-gp",
        }
    }
}

/// Training data: an image data set or a toy distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DataSource {
    Images(DatasetSpec),
    Toy(ToyDistribution),
}

impl FromStr for DataSource {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        match s.parse::<ToyDistribution>() {
            Ok(toy) => return Ok(Self::Toy(toy)),
            // A toy named with a bad parameter: its own message says what is wrong.
            Err(e) if s.to_ascii_lowercase().starts_with("parallel-line:") => {
                return Err(TrainError::Config(e.to_string()))
            }
            Err(_) => {}
        }
        s.parse::<DatasetSpec>().map(Self::Images).map_err(|_| {
            TrainError::Config(format!(
                "unknown data set '{s}': expected mnist, fashion-mnist, cifar10, folder:PATH, 8gaussians, 25gaussians, swissroll or parallel-line:THETA"
            ))
        })
    }
}

impl TryFrom<String> for DataSource {
    type Error = TrainError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<DataSource> for String {
    fn from(d: DataSource) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Images(spec) => write!(f, "{spec}"),
            Self::Toy(ToyDistribution::ParallelLine { theta }) => write!(f, "parallel-line:{theta}"),
            Self::Toy(toy) => f.write_str(toy.name()),
        }
    }
}

/// Network architecture; each MLP names the reference it follows (see `ganzoo_models::mlp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// The seed's MLP GAN (LeakyReLU 0.2 in both networks).
    SeedMlp,
    /// WassersteinGAN `models/mlp.py`: 3 hidden ReLU layers of 512, no output activation.
    WganMlp,
    /// improved_wgan_training `gan_toy.py`: 3 ReLU layers of 512, tflib initialisation.
    ToyMlp,
    Dcgan,
    /// ganzoo ≤ 0.1's implicit MLP choice, kept so old runs' `config.toml` still load:
    /// ReLU seed generator for `gan`, 4 × 512 with Tanh otherwise, PyTorch-initialised toy MLPs.
    Mlp,
}

/// What the two players minimise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Objective {
    /// Cross-entropy discriminator, with a choice of generator cost. With one
    /// discriminator step the generator step reuses that step's generated batch (as
    /// pytorch/examples' DCGAN) unless `fresh_noise` (the seed's MLP GAN draws new noise).
    CrossEntropy {
        generator_cost: GeneratorCostName,
        #[serde(default)]
        fresh_noise: bool,
    },
    /// Wasserstein critic, kept Lipschitz by clipping or a gradient penalty.
    Wasserstein { constraint: Constraint },
}

/// When weight clipping clamps the critic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClipTiming {
    /// After each critic step (improved_wgan_training `gan_toy.py`; ganzoo ≤ 0.1).
    #[default]
    AfterStep,
    /// Before each critic step, so the first forward pass already sees clipped weights and
    /// the generator trains against the last step's unclipped critic (WassersteinGAN `main.py`).
    BeforeStep,
}

/// Serialisable name of a [`GeneratorCost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorCostName {
    Minimax,
    NonSaturating,
    MaximumLikelihood,
}

impl From<GeneratorCostName> for GeneratorCost {
    fn from(c: GeneratorCostName) -> Self {
        match c {
            GeneratorCostName::Minimax => Self::Minimax,
            GeneratorCostName::NonSaturating => Self::NonSaturating,
            GeneratorCostName::MaximumLikelihood => Self::MaximumLikelihood,
        }
    }
}

/// How a Wasserstein critic is kept Lipschitz.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Constraint {
    /// Clamp every critic weight to `[−value, value]`, before or after each critic step.
    Clip {
        value: f64,
        #[serde(default)]
        timing: ClipTiming,
    },
    /// Gradient penalty with weight `lambda`.
    Penalty { lambda: f64 },
}

/// An optimiser and its hyper-parameters (PyTorch's definitions, ε = 1e-8).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Optimizer {
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
    },
    /// RMSprop as PyTorch: smoothing α = 0.99, `v₀ = 0`, ε = 1e-8 outside the root.
    RmsProp {
        lr: f64,
    },
    /// RMSprop as TensorFlow 1's `RMSPropOptimizer` (the WGAN-GP reference's): decay 0.9,
    /// `v₀ = 1`, `θ ← θ − lr·g/√(v + 1e-10)`.
    RmsPropTf {
        lr: f64,
    },
}

impl Optimizer {
    /// The same optimiser with its learning rate times `scale`.
    pub fn scaled(self, scale: f64) -> Self {
        match self {
            Self::Adam { lr, beta1, beta2 } => Self::Adam { lr: lr * scale, beta1, beta2 },
            Self::RmsProp { lr } => Self::RmsProp { lr: lr * scale },
            Self::RmsPropTf { lr } => Self::RmsPropTf { lr: lr * scale },
        }
    }
}

/// How the learning rates change over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrDecay {
    /// The configured rates throughout.
    #[default]
    Constant,
    /// Linearly to 0: generator iteration `t` of `T` uses `lr · (1 − t/T)`
    /// (improved_wgan_training `gan_cifar.py` / `gan_64x64.py`, `DECAY = True`).
    Linear,
}

impl LrDecay {
    /// The factor on the learning rates at generator iteration `iteration` (0-based) of `total`.
    pub fn factor(self, iteration: u64, total: u64) -> f64 {
        match self {
            Self::Constant => 1.0,
            Self::Linear if total == 0 => 1.0,
            Self::Linear => (1.0 - iteration as f64 / total as f64).max(0.0),
        }
    }
}

/// The dtype the networks compute their activations in. Weights, their gradients,
/// the optimisers' state and checkpoints are f32 either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Everything f32.
    #[default]
    F32,
    /// Mixed precision: bf16 activations on f32 master weights (cast at each use), the
    /// normalisations and the losses in f32 (`ganzoo_models::Network::with_activations`).
    /// Meant for GPUs with bf16 tensor cores; on the CPU slower than f32 (products widened
    /// to f32 and back, the other ops Candle's generic ones).
    Bf16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }

    /// The activations' dtype where it differs from the weights'.
    pub fn activations(self) -> Option<candle_core::DType> {
        match self {
            Self::F32 => None,
            Self::Bf16 => Some(candle_core::DType::BF16),
        }
    }
}

/// How many critic steps precede each generator step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticSchedule {
    pub n_critic: usize,
    /// WGAN: `warmup_n_critic` steps for the first `warmup_iters` generator iterations
    /// and every `every`-th one.
    pub warmup: Option<Warmup>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warmup {
    pub n_critic: usize,
    pub first_iters: u64,
    pub every: u64,
}

impl CriticSchedule {
    /// Critic steps before generator iteration `iteration` (0-based).
    pub fn critic_steps(&self, iteration: u64) -> usize {
        match self.warmup {
            Some(w) if iteration < w.first_iters || (w.every > 0 && iteration.is_multiple_of(w.every)) => w.n_critic,
            _ => self.n_critic,
        }
    }

    /// Critic steps in generator iterations `0..iterations`, in closed form (a
    /// checkpoint's count is checked against it, whatever iteration it claims).
    pub fn critic_steps_before(&self, iterations: u64) -> u128 {
        let n = u128::from(iterations);
        let Some(w) = self.warmup else { return n * self.n_critic as u128 };
        let first = n.min(u128::from(w.first_iters));
        // Iterations t in [first_iters, n) with t % every == 0 also take the warm-up count.
        let multiples_below = |x: u128| if w.every == 0 { 0 } else { x.div_ceil(u128::from(w.every)) };
        let periodic = multiples_below(n).saturating_sub(multiples_below(first));
        let warm = first + periodic;
        warm * w.n_critic as u128 + (n - warm) * self.n_critic as u128
    }
}

/// The seed's stabilising tricks for cross-entropy GANs; all off by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tricks {
    /// Target for real samples (1.0 plain; 0.9 one-sided label smoothing).
    pub real_label: f64,
    /// Real targets are lowered by U[0, label_noise] per sample.
    pub label_noise: f64,
    /// σ of Gaussian noise added to every discriminator input, decaying linearly to 0.
    pub instance_noise: f64,
}

impl Default for Tricks {
    fn default() -> Self {
        Self { real_label: 1.0, label_noise: 0.0, instance_noise: 0.0 }
    }
}

/// Everything a run needs; saved as the run's `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub family: Family,
    pub data: DataSource,
    /// Side of the training images (resized if it differs from the data's); a run
    /// records the size it used.
    pub image_size: Option<usize>,
    /// Channels of the training images; filled in by the trainer from the data.
    pub channels: Option<usize>,
    pub seed: u64,
    pub batch_size: usize,
    /// Stop after this many passes over the data (images) …
    pub epochs: Option<u64>,
    /// … or after this many generator iterations.
    pub iters: Option<u64>,
    pub arch: Arch,
    pub latent: usize,
    pub ngf: usize,
    pub ndf: usize,
    pub generator_norm: NormName,
    pub critic_norm: NormName,
    pub objective: Objective,
    pub optimizer_g: Optimizer,
    pub optimizer_d: Optimizer,
    /// Both players' learning-rate schedule (runs saved before it: constant).
    #[serde(default)]
    pub lr_decay: LrDecay,
    pub schedule: CriticSchedule,
    pub tricks: Tricks,
    pub log_every: u64,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk, the newest; 0 keeps every one (runs saved before it: 2).
    #[serde(default = "default_keep")]
    pub keep_checkpoints: usize,
    /// Measure sample quality every this many iterations (toys: mode counts and W1 of
    /// 2,000 samples) into that iteration's metrics line; a multiple of `log_every`.
    #[serde(default)]
    pub eval_every: Option<u64>,
    /// Write TensorBoard event files into the run's `tb/` (runs saved before it: on).
    #[serde(default = "on")]
    pub tensorboard: bool,
    /// Activations' precision (runs saved before it: f32).
    #[serde(default)]
    pub precision: Precision,
}

fn default_keep() -> usize {
    crate::checkpoint::DEFAULT_KEEP
}

fn on() -> bool {
    true
}

/// Serialisable name of a [`Norm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormName {
    Batch,
    Layer,
    LayerChannel,
    None,
}

impl From<NormName> for Norm {
    fn from(n: NormName) -> Self {
        match n {
            NormName::Batch => Norm::Batch,
            NormName::Layer => Norm::Layer,
            NormName::LayerChannel => Norm::LayerChannel,
            NormName::None => Norm::None,
        }
    }
}

/// A named recipe: a family with the settings of the reference it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// `gan`: ganzoo's default MLP GAN: the seed's networks with DCGAN's Adam (2e-4,
    /// β = (0.5, 0.999)) and, on images, the seed's one-sided label smoothing (real label 0.9)
    /// for 20,000 iterations — the combination that covered the most digit classes at the
    /// lowest FID among those measured, all ten on three seeds at that budget
    /// (`docs/results.md`, "The MLP-GAN recipe").
    Gan,
    /// `gan-seed`: the seed's MLP GAN as it is: LeakyReLU 0.2 MLPs, Adam 3e-4 with
    /// PyTorch's default betas (0.9, 0.999), batch 100, fresh noise for the generator step.
    GanSeed,
    /// `dcgan`: Radford et al. 2016 and pytorch/examples `dcgan/main.py`: Adam 2e-4
    /// (0.5, 0.999), batch 64, BN in both networks.
    Dcgan,
    /// `wgan`: WassersteinGAN `main.py` on images (RMSprop 5e-5, clip ±0.01 before each
    /// critic step, 5 critic steps, 100 for the first 25 and every 500th generator
    /// iteration, BN critic); on toys improved_wgan_training `gan_toy.py` `MODE='wgan'`
    /// (batch 256, 5 critic steps, TensorFlow's RMSprop 5e-5, clip after each step).
    Wgan,
    /// `wgan-gp`: improved_wgan_training `gan_mnist.py` / `gan_cifar.py` on images
    /// (unnormalised critic, Adam 1e-4 with the scripts' β = (0.5, 0.9) — the paper's
    /// Algorithm 1 has β₁ = 0 — λ = 10, 5 critic steps) on DCGAN networks; on toys
    /// `gan_toy.py`'s networks, batch 256 and λ = 0.1 with ganzoo's faster schedule: Adam
    /// 1e-3 decaying linearly to 0 over 3,000 iterations (the script: 1e-4, constant,
    /// 100,000 iterations; `--lr-g 1e-4 --lr-d 1e-4 --lr-decay constant --iters 100000`).
    WganGp,
    /// `wgan-gp-64`: `gan_64x64.py`'s DCGAN critic normalisation — layer norm with one
    /// scale and offset per channel (tflib) — at 64×64, otherwise as `wgan-gp`.
    WganGp64,
}

impl Preset {
    pub const ALL: [Preset; 6] = [Self::Gan, Self::GanSeed, Self::Dcgan, Self::Wgan, Self::WganGp, Self::WganGp64];

    pub fn name(self) -> &'static str {
        match self {
            Self::Gan => "gan",
            Self::GanSeed => "gan-seed",
            Self::Dcgan => "dcgan",
            Self::Wgan => "wgan",
            Self::WganGp => "wgan-gp",
            Self::WganGp64 => "wgan-gp-64",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Self::Gan | Self::GanSeed => Family::Gan,
            Self::Dcgan => Family::Dcgan,
            Self::Wgan => Family::Wgan,
            Self::WganGp | Self::WganGp64 => Family::WganGp,
        }
    }

    /// The family's default preset.
    pub fn of(family: Family) -> Self {
        match family {
            Family::Gan => Self::Gan,
            Family::Dcgan => Self::Dcgan,
            Family::Wgan => Self::Wgan,
            Family::WganGp => Self::WganGp,
        }
    }
}

impl TrainConfig {
    /// The default preset of `family` on `data`.
    pub fn preset(family: Family, data: DataSource) -> Self {
        Self::from_preset(Preset::of(family), data)
    }

    /// The settings `preset` names on `data` (images or a 2-D toy).
    pub fn from_preset(preset: Preset, data: DataSource) -> Self {
        let toy = matches!(data, DataSource::Toy(_));
        let family = preset.family();
        let adam = |lr, beta1, beta2| Optimizer::Adam { lr, beta1, beta2 };
        let ce =
            |fresh_noise| Objective::CrossEntropy { generator_cost: GeneratorCostName::NonSaturating, fresh_noise };
        let five = CriticSchedule { n_critic: 5, warmup: None };
        let one = CriticSchedule { n_critic: 1, warmup: None };
        let clip = |timing| Objective::Wasserstein { constraint: Constraint::Clip { value: 0.01, timing } };
        let penalty =
            Objective::Wasserstein { constraint: Constraint::Penalty { lambda: if toy { 0.1 } else { 10.0 } } };
        let (objective, opt, schedule, critic_norm, batch) = match (preset, toy) {
            (Preset::Gan | Preset::Dcgan, _) => (ce(false), adam(2e-4, 0.5, 0.999), one, NormName::Batch, 64),
            (Preset::GanSeed, _) => (ce(true), adam(3e-4, 0.9, 0.999), one, NormName::Batch, 100),
            (Preset::Wgan, false) => (
                clip(ClipTiming::BeforeStep),
                Optimizer::RmsProp { lr: 5e-5 },
                CriticSchedule { n_critic: 5, warmup: Some(Warmup { n_critic: 100, first_iters: 25, every: 500 }) },
                NormName::Batch,
                64,
            ),
            (Preset::Wgan, true) => {
                (clip(ClipTiming::AfterStep), Optimizer::RmsPropTf { lr: 5e-5 }, five, NormName::None, 256)
            }
            // Toys: ganzoo's faster default (gan_toy.py has 1e-4, constant, for 100,000 iterations).
            (Preset::WganGp, true) => (penalty, adam(1e-3, 0.5, 0.9), five, NormName::None, 256),
            (Preset::WganGp, false) => (penalty, adam(1e-4, 0.5, 0.9), five, NormName::None, 64),
            (Preset::WganGp64, _) => (penalty, adam(1e-4, 0.5, 0.9), five, NormName::LayerChannel, 64),
        };
        let arch = match (toy, family) {
            (true, _) => Arch::ToyMlp,
            (false, Family::Gan) => Arch::SeedMlp,
            (false, _) => Arch::Dcgan,
        };
        // The MLPs have no normalisation: config.toml says so.
        let (generator_norm, critic_norm) =
            if arch == Arch::Dcgan { (NormName::Batch, critic_norm) } else { (NormName::None, NormName::None) };
        Self {
            family,
            data,
            image_size: (preset == Preset::WganGp64 && !toy).then_some(64),
            channels: None,
            seed: 0,
            batch_size: if preset == Preset::Gan { 100 } else { batch },
            // `gan` covered all ten digits from about 12,500 iterations on, on three seeds
            // (docs/results.md, "The MLP-GAN recipe"); a budget in iterations, not epochs,
            // holds whatever the data set's size.
            epochs: if toy || preset == Preset::Gan { None } else { Some(5) },
            // wgan-gp covered every mode of 8 and 25 Gaussians on three seeds in 3,000
            // iterations of its decaying schedule (docs/results.md, "2-D toys").
            iters: if toy && preset == Preset::WganGp {
                Some(3000)
            } else if toy {
                Some(2000)
            } else if preset == Preset::Gan {
                Some(20_000)
            } else {
                None
            },
            arch,
            latent: if toy {
                TOY_LATENT
            } else if family == Family::Gan {
                64
            } else {
                100
            },
            ngf: 64,
            ndf: 64,
            generator_norm,
            critic_norm,
            objective,
            optimizer_g: opt,
            optimizer_d: opt,
            lr_decay: if toy && preset == Preset::WganGp { LrDecay::Linear } else { LrDecay::Constant },
            schedule,
            // One-sided label smoothing is part of `gan`'s image recipe (measured on MNIST only).
            tricks: if preset == Preset::Gan && !toy {
                Tricks { real_label: 0.9, ..Tricks::default() }
            } else {
                Tricks::default()
            },
            log_every: 10,
            sample_every: if toy { 500 } else { 200 },
            checkpoint_every: 500,
            keep_checkpoints: crate::checkpoint::DEFAULT_KEEP,
            eval_every: None,
            tensorboard: true,
            precision: Precision::F32,
        }
    }

    /// Trains `arch` instead (`--arch`). The MLPs have no normalisation, so both norms
    /// become `none`; DCGAN networks in place of an MLP take DCGAN's: batch norm in the
    /// generator, and in the critic unless a gradient penalty forbids it.
    pub fn set_arch(&mut self, arch: Arch) {
        if arch != Arch::Dcgan {
            (self.generator_norm, self.critic_norm) = (NormName::None, NormName::None);
        } else if self.arch != Arch::Dcgan {
            let penalty = matches!(self.objective, Objective::Wasserstein { constraint: Constraint::Penalty { .. } });
            (self.generator_norm, self.critic_norm) =
                (NormName::Batch, if penalty { NormName::None } else { NormName::Batch });
        }
        self.arch = arch;
    }

    /// Checks every value once; nothing later re-validates.
    pub fn validate(&self) -> Result<()> {
        self.check_storable()?;
        let bad = |m: String| Err(TrainError::Config(m));
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        match (self.epochs, self.iters) {
            (Some(0), _) | (_, Some(0)) => return bad("epochs and iterations must be positive".into()),
            (Some(_), Some(_)) => return bad("give --epochs or --iters, not both".into()),
            (None, None) => return bad("give --epochs or --iters".into()),
            (Some(_), None) if matches!(self.data, DataSource::Toy(_)) => {
                return bad("toy distributions have no epochs: use --iters".into())
            }
            _ => {}
        }
        if self.latent == 0 || self.ngf == 0 || self.ndf == 0 {
            return bad("latent size, ngf and ndf must be positive".into());
        }
        // The toy MLPs' generator takes 2-D noise (gan_toy.py); a wider draw would not fit it.
        if matches!(self.data, DataSource::Toy(_)) && self.latent != TOY_LATENT {
            return bad(format!(
                "the toy networks take {TOY_LATENT}-D noise (gan_toy.py), not --latent {}: --latent applies to image networks",
                self.latent
            ));
        }
        if self.log_every == 0 || self.sample_every == 0 || self.checkpoint_every == 0 {
            return bad("log, sample and checkpoint intervals must be positive".into());
        }
        match (self.eval_every, &self.data) {
            (Some(k), _) if k == 0 || k % self.log_every != 0 => {
                return bad(format!("--eval-every must be a positive multiple of --log-every ({})", self.log_every))
            }
            _ => {}
        }
        for opt in [self.optimizer_g, self.optimizer_d] {
            check_optimizer(opt)?;
        }
        if self.schedule.n_critic == 0 || self.schedule.warmup.is_some_and(|w| w.n_critic == 0) {
            return bad("n_critic must be at least 1".into());
        }
        match self.objective {
            Objective::Wasserstein { constraint: Constraint::Clip { value, .. } }
                if !(value > 0.0 && value.is_finite()) =>
            {
                return bad(format!("clip value must be positive, got {value}"))
            }
            Objective::Wasserstein { constraint: Constraint::Penalty { lambda } }
                if !(lambda >= 0.0 && lambda.is_finite()) =>
            {
                return bad(format!("λ must be non-negative, got {lambda}"))
            }
            Objective::Wasserstein { constraint: Constraint::Penalty { lambda } } if !fits_f32(lambda) => {
                return bad(format!(
                    "λ = {lambda:e} is beyond f32's range ({:e}): the penalty is computed in f32",
                    f32::MAX
                ))
            }
            Objective::Wasserstein { constraint: Constraint::Penalty { .. } }
                if self.critic_norm == NormName::Batch && self.arch == Arch::Dcgan =>
            {
                return bad(
                    "a gradient penalty needs a critic without batch norm (--critic-norm layer, layer-channel or none)"
                        .into(),
                )
            }
            _ => {}
        }
        let t = self.tricks;
        if !(0.0..=1.0).contains(&t.real_label) {
            return bad(format!("the real label (--real-label) must lie in [0, 1], got {}", t.real_label));
        }
        // Real targets are real_label − U[0, label_noise]: they stay in [0, 1].
        if !(0.0..=t.real_label).contains(&t.label_noise) {
            return bad(format!(
                "label noise (--label-noise) must lie in [0, real label = {}], got {}",
                t.real_label, t.label_noise
            ));
        }
        if t.instance_noise.is_nan() || t.instance_noise < 0.0 {
            return bad(format!("instance noise (--instance-noise) must be ≥ 0, got {}", t.instance_noise));
        }
        if !fits_f32(t.instance_noise) {
            return bad(format!(
                "instance noise (--instance-noise) must be within f32's range ({:e}), got {:e}",
                f32::MAX,
                t.instance_noise
            ));
        }
        if matches!(self.generator_norm, NormName::Layer | NormName::LayerChannel) {
            return bad("the generator takes batch norm or none".into());
        }
        match (&self.data, self.arch) {
            (DataSource::Toy(_), Arch::Dcgan | Arch::SeedMlp | Arch::WganMlp) => {
                bad("DCGAN and the image MLPs need images; 2-D toys train the toy MLPs (--arch toy-mlp)".into())
            }
            (DataSource::Images(_), Arch::ToyMlp) => {
                bad("the toy MLPs take 2-D points; images take --arch dcgan, seed-mlp or wgan-mlp".into())
            }
            (DataSource::Toy(t), _) if t.dim() != 2 => bad("only 2-D toy distributions can be trained on".into()),
            (DataSource::Images(_), Arch::Dcgan) => match self.image_size {
                Some(s) if ![28, 32, 64].contains(&s) => {
                    bad(format!("unsupported image size {s}: DCGAN takes 28, 32 or 64"))
                }
                _ => Ok(()),
            },
            _ => match self.image_size {
                Some(s) if s == 0 || s > ganzoo_data::folder::MAX_SIDE => {
                    bad(format!("image size must lie in 1..={}, got {s}", ganzoo_data::folder::MAX_SIDE))
                }
                _ => Ok(()),
            },
        }
    }

    /// Refuses a value `config.toml` cannot hold: its integers are TOML's, signed 64-bit,
    /// so a larger one (a random 64-bit `--seed`) would be written into the run but never
    /// read back, leaving a run that cannot be resumed, sampled or evaluated.
    fn check_storable(&self) -> Result<()> {
        let beyond = |line: &&str| {
            let value = line.split_once(" = ").map_or("", |(_, v)| v.trim());
            !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) && value.parse::<i64>().is_err()
        };
        match self.to_toml()?.lines().find(beyond) {
            Some(line) => Err(TrainError::Config(format!(
                "`{}` is more than a run's config.toml can hold (TOML integers go up to {})",
                line.trim(),
                MAX_STORED
            ))),
            None => Ok(()),
        }
    }

    /// Parses a saved `config.toml` (or one a user wrote, `train --config`). Every key
    /// must be one the configuration has: a misspelt one (`learning_rate` for `lr`) would
    /// otherwise be dropped and the run trained with the value it meant to replace.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|e| TrainError::Config(e.to_string()))?;
        // The configuration writes every field it holds, so a key it did not write back
        // is one it did not read.
        if let Some(key) = unknown_key(&table(text)?, &table(&config.to_toml()?)?, "") {
            return Err(TrainError::Config(format!(
                "unknown setting `{key}` (the settings are those `ganzoo train` writes to a run's config.toml)"
            )));
        }
        config.validate()?;
        Ok(config)
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| TrainError::Config(e.to_string()))
    }
}

/// The largest integer a `config.toml` holds (TOML's are signed 64-bit): the largest
/// seed, iteration count or interval a run can record.
pub const MAX_STORED: u64 = i64::MAX as u64;

/// The most bytes a configuration file (`--config`, a run's or a checkpoint's
/// `config.toml`) may have; ganzoo's own are under 1 KiB.
pub const CONFIG_BYTES: u64 = 1 << 20;

/// Reads a configuration file: a regular file of at most [`CONFIG_BYTES`].
pub fn read_config_text(path: &std::path::Path) -> std::io::Result<String> {
    ganzoo_data::regular_file::read_to_string(path, CONFIG_BYTES, "configuration")
}

/// Settings a resumed run may change (by flag or by editing its `config.toml`): how long
/// it trains and what it writes along the way. Every other one shapes the run's state
/// (data order, batch, models, optimisers) and must stay as its checkpoint was trained.
pub const RESUME_MAY_CHANGE: [&str; 7] =
    ["epochs", "iters", "tensorboard", "sample_every", "checkpoint_every", "keep_checkpoints", "eval_every"];

impl TrainConfig {
    /// The settings, dotted (`optimizer_g.lr`), in which `self` differs from `trained`
    /// (the configuration a checkpoint was written with), other than
    /// [`RESUME_MAY_CHANGE`]; each with its value here and in `trained`.
    pub fn changed_since(&self, trained: &TrainConfig) -> Result<Vec<Changed>> {
        let (now, then) = (table(&self.to_toml()?)?, table(&trained.to_toml()?)?);
        let mut out = Vec::new();
        changed_keys(&now, &then, "", &mut out);
        out.retain(|c| !RESUME_MAY_CHANGE.contains(&c.key.as_str()));
        Ok(out)
    }
}

/// TOML text as a table of settings.
fn table(text: &str) -> Result<toml::Table> {
    toml::from_str(text).map_err(|e| TrainError::Config(e.to_string()))
}

/// A setting whose value differs between two configurations (`unset` where one lacks it).
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub key: String,
    pub now: String,
    pub then: String,
}

fn changed_keys(now: &toml::Table, then: &toml::Table, prefix: &str, out: &mut Vec<Changed>) {
    let keys: std::collections::BTreeSet<&String> = now.keys().chain(then.keys()).collect();
    for key in keys {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (now.get(key), then.get(key)) {
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => changed_keys(a, b, &path, out),
            (a, b) if a != b => {
                let show = |v: Option<&toml::Value>| v.map_or("unset".to_string(), toml::Value::to_string);
                out.push(Changed { key: path, now: show(a), then: show(b) });
            }
            _ => {}
        }
    }
}

/// The first key of `given`, at any depth and dotted (`optimizer_g.lr`), that `known` lacks.
fn unknown_key(given: &toml::Table, known: &toml::Table, prefix: &str) -> Option<String> {
    given.iter().find_map(|(key, value)| {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (value, known.get(key)) {
            (_, None) => Some(path),
            (toml::Value::Table(inner), Some(toml::Value::Table(known))) => unknown_key(inner, known, &path),
            _ => None,
        }
    })
}

/// Whether `v` stays finite as the f32 the tensors compute with (a larger finite f64,
/// 1e300, would become ∞ there and every loss NaN at the first step).
fn fits_f32(v: f64) -> bool {
    v.is_finite() && v.abs() <= f64::from(f32::MAX)
}

fn check_optimizer(opt: Optimizer) -> Result<()> {
    let (lr, betas) = match opt {
        Optimizer::Adam { lr, beta1, beta2 } => (lr, vec![beta1, beta2]),
        Optimizer::RmsProp { lr } | Optimizer::RmsPropTf { lr } => (lr, vec![]),
    };
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(TrainError::Config(format!("learning rate must be positive and finite, got {lr}")));
    }
    if !fits_f32(lr) {
        return Err(TrainError::Config(format!(
            "learning rate {lr:e} is beyond f32's range ({:e}): updates are computed in f32",
            f32::MAX
        )));
    }
    if betas.iter().any(|b| !(0.0..1.0).contains(b)) {
        return Err(TrainError::Config(format!("Adam betas must lie in [0, 1), got {betas:?}")));
    }
    Ok(())
}
