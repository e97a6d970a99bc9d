//! Building the generator and the critic a configuration names, each with its own
//! seeded parameter store (`gen.*`, `critic.*`).

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use ganzoo_models::{DcganConfig, Footprint, MlpConfig, Network, ParamStore};

use crate::config::{Arch, DataSource, Family, TrainConfig};
use crate::Result;

/// The two players and their parameters.
pub struct Players {
    pub gen: Network,
    pub critic: Network,
    pub gen_store: ParamStore,
    pub critic_store: ParamStore,
}

/// Shape of one training sample: `[C, H, W]` for images, `[2]` for toys.
pub type SampleShape = Vec<usize>;

/// The two architectures a configuration names, before anything is built.
#[derive(Debug, Clone, PartialEq)]
pub enum Architecture {
    Mlp(MlpConfig, MlpConfig),
    Dcgan(DcganConfig),
}

impl Architecture {
    /// The generator and critic `config` trains on samples of shape `sample`.
    pub fn of(config: &TrainConfig, sample: &[usize]) -> Self {
        let z = config.latent;
        match (&config.data, config.arch, sample) {
            (DataSource::Images(_), Arch::Dcgan, _) => Self::Dcgan(dcgan_config(config, sample)),
            (DataSource::Images(_), Arch::SeedMlp, &[c, h, w]) => {
                Self::Mlp(MlpConfig::seed_generator(z, [c, h, w]), MlpConfig::seed_discriminator([c, h, w]))
            }
            (DataSource::Images(_), Arch::WganMlp, &[c, h, w]) => {
                Self::Mlp(MlpConfig::wgan_generator(z, [c, h, w]), MlpConfig::wgan_critic([c, h, w]))
            }
            (DataSource::Images(_), Arch::Mlp, &[c, h, w]) if config.family == Family::Gan => {
                Self::Mlp(MlpConfig::legacy_generator(z, [c, h, w]), MlpConfig::seed_discriminator([c, h, w]))
            }
            (DataSource::Images(_), Arch::Mlp, &[c, h, w]) => {
                Self::Mlp(MlpConfig::legacy_wgan_generator(z, [c, h, w]), MlpConfig::legacy_wgan_critic([c, h, w]))
            }
            (_, Arch::Mlp, _) => Self::Mlp(MlpConfig::legacy_toy(true), MlpConfig::legacy_toy(false)),
            _ => Self::Mlp(MlpConfig::toy_generator(), MlpConfig::toy_critic()),
        }
    }

    /// What the two networks will hold, computed without building them.
    pub fn footprints(&self) -> (Footprint, Footprint) {
        match self {
            Self::Mlp(g, c) => (g.footprint(), c.footprint()),
            Self::Dcgan(dc) => (dc.generator_footprint(), dc.discriminator_footprint()),
        }
    }

    /// Builds the generator under `gvb` and the critic under `cvb`.
    pub fn build(&self, gvb: VarBuilder, cvb: VarBuilder) -> Result<(Network, Network)> {
        Ok(match self {
            Self::Mlp(g, c) => (g.build(gvb)?, c.build(cvb)?),
            Self::Dcgan(dc) => (dc.generator(gvb)?, dc.discriminator(cvb)?),
        })
    }
}

impl Players {
    /// Builds both networks; `sample` is the shape of one data sample.
    pub fn build(config: &TrainConfig, sample: &[usize], device: &Device) -> Result<Self> {
        let gen_store = ParamStore::new(config.seed.wrapping_mul(2).wrapping_add(1));
        let critic_store = ParamStore::new(config.seed.wrapping_mul(2).wrapping_add(2));
        let gvb = gen_store.builder(DType::F32, device).pp("gen");
        let cvb = critic_store.builder(DType::F32, device).pp("critic");
        let (gen, critic) = Architecture::of(config, sample).build(gvb, cvb)?;
        let activations = config.precision.activations();
        let (gen, critic) = (gen.with_activations(activations), critic.with_activations(activations));
        Ok(Self { gen, critic, gen_store, critic_store })
    }

    /// What the generator and the critic [`build`](Self::build) would make will hold, without building them.
    pub fn footprints(config: &TrainConfig, sample: &[usize]) -> (Footprint, Footprint) {
        Architecture::of(config, sample).footprints()
    }
}

/// The DCGAN architecture a configuration describes for images of shape `sample`.
pub fn dcgan_config(config: &TrainConfig, sample: &[usize]) -> DcganConfig {
    DcganConfig {
        image_size: sample[1],
        channels: sample[0],
        nz: config.latent,
        ngf: config.ngf,
        ndf: config.ndf,
        generator_norm: config.generator_norm.into(),
        critic_norm: config.critic_norm.into(),
    }
}
