//! `ganzoo models summary`.

use candle_core::{DType, Device, Tensor};
use ganzoo_models::summary::render;
use ganzoo_models::{summarize, DcganConfig, Footprint, MlpConfig, Network, Norm, ParamStore};
use ganzoo_train::budget::MemoryLimit;

use crate::cli::{GanFamily, ModelsCommand};
use crate::output::emit;

pub fn run(cmd: ModelsCommand, limit: MemoryLimit) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Summary { family, image_size, channels } => summary(family, image_size, channels, limit),
    }
}

/// The networks of a family, before they are built.
enum Plan {
    Mlp(MlpConfig, MlpConfig),
    Dcgan(DcganConfig),
}

impl Plan {
    fn of(family: GanFamily, image: [usize; 3]) -> Self {
        match family {
            GanFamily::Gan => Self::Mlp(MlpConfig::seed_generator(64, image), MlpConfig::seed_discriminator(image)),
            _ => {
                let critic_norm = if family == GanFamily::WganGp { Norm::Layer } else { Norm::Batch };
                Self::Dcgan(DcganConfig {
                    image_size: image[1],
                    channels: image[0],
                    critic_norm,
                    ..DcganConfig::default()
                })
            }
        }
    }

    /// Bytes the two networks and a one-sample pass through each hold.
    fn bytes(&self) -> u128 {
        let total = |f: Footprint| f.params + f.activations + f.unfold;
        match self {
            Self::Mlp(g, d) => 4 * (total(g.footprint()) + total(d.footprint())),
            Self::Dcgan(c) => 4 * (total(c.generator_footprint()) + total(c.discriminator_footprint())),
        }
    }

    /// The generator and critic, each with its own store.
    fn build(&self) -> anyhow::Result<[(Network, ParamStore); 2]> {
        let (gs, ds) = (ParamStore::new(0), ParamStore::new(0));
        let gvb = gs.builder(DType::F32, &Device::Cpu).pp("gen");
        let dvb = ds.builder(DType::F32, &Device::Cpu).pp("disc");
        let (g, d) = match self {
            Self::Mlp(g, d) => (g.build(gvb)?, d.build(dvb)?),
            Self::Dcgan(c) => (c.generator(gvb)?, c.discriminator(dvb)?),
        };
        Ok([(g, gs), (d, ds)])
    }
}

fn summary(family: GanFamily, image_size: usize, channels: usize, limit: MemoryLimit) -> anyhow::Result<()> {
    let plan = Plan::of(family, [channels, image_size, image_size]);
    if let Plan::Dcgan(c) = &plan {
        c.validate()?;
    }
    limit.check(
        format!("the {family:?} networks at {channels}x{image_size}x{image_size}"),
        2 * plan.bytes(),
        "lower --image-size or --channels",
    )?;
    let [(g, gs), (d, ds)] = plan.build()?;
    let latent = if family == GanFamily::Gan { 64 } else { DcganConfig::default().nz };
    let critic = if matches!(family, GanFamily::Wgan | GanFamily::WganGp) { "critic" } else { "discriminator" };
    let z = Tensor::zeros((1, latent), DType::F32, &Device::Cpu)?;
    let x = Tensor::zeros((1, channels, image_size, image_size), DType::F32, &Device::Cpu)?;
    let mut text = render(&format!("generator ({family:?}, input {:?})", z.dims()), &summarize(&g, &gs, &z)?);
    text += &format!("\n{}", render(&format!("{critic} ({family:?}, input {:?})", x.dims()), &summarize(&d, &ds, &x)?));
    emit(&text)
}
