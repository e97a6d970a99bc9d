//! Building the generator and the critic a configuration names, each with its own
//! seeded parameter store (`gen.*`, `critic.*`).

use candle_core::{DType, Device};
use ganzoo_models::{DcganConfig, MlpConfig, Network, ParamStore};

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

impl Players {
    /// Builds both networks; `sample` is the shape of one data sample.
    pub fn build(config: &TrainConfig, sample: &[usize], device: &Device) -> Result<Self> {
        let gen_store = ParamStore::new(config.seed.wrapping_mul(2).wrapping_add(1));
        let critic_store = ParamStore::new(config.seed.wrapping_mul(2).wrapping_add(2));
        let gvb = gen_store.builder(DType::F32, device).pp("gen");
        let cvb = critic_store.builder(DType::F32, device).pp("critic");
        let (gen, critic) = match (&config.data, config.arch) {
            (DataSource::Toy(_), _) => (MlpConfig::toy_generator().build(gvb)?, MlpConfig::toy_critic().build(cvb)?),
            (DataSource::Images(_), Arch::Mlp) => {
                let image = [sample[0], sample[1], sample[2]];
                let (g, c) = if config.family == Family::Gan {
                    (MlpConfig::seed_generator(config.latent, image), MlpConfig::seed_discriminator(image))
                } else {
                    (MlpConfig::wgan_generator(config.latent, image), MlpConfig::wgan_critic(image))
                };
                (g.build(gvb)?, c.build(cvb)?)
            }
            (DataSource::Images(_), Arch::Dcgan) => {
                let dc = dcgan_config(config, sample);
                (dc.generator(gvb)?, dc.discriminator(cvb)?)
            }
        };
        Ok(Self { gen, critic, gen_store, critic_store })
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
