//! `ganzoo models summary`.

use candle_core::{DType, Device, Tensor};
use ganzoo_models::summary::render;
use ganzoo_models::{summarize, DcganConfig, MlpConfig, Network, Norm, ParamStore};

use crate::cli::{GanFamily, ModelsCommand};
use crate::output::emit;

pub fn run(cmd: ModelsCommand) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Summary { family, image_size, channels } => summary(family, image_size, channels),
    }
}

/// The generator and critic of `family`, each with its own store, and the latent size.
fn build(family: GanFamily, image: [usize; 3]) -> anyhow::Result<[(Network, ParamStore); 2]> {
    let (gs, ds) = (ParamStore::new(0), ParamStore::new(0));
    let (gvb, dvb) = (gs.builder(DType::F32, &Device::Cpu).pp("gen"), ds.builder(DType::F32, &Device::Cpu).pp("disc"));
    let (g, d) = match family {
        GanFamily::Gan => {
            (MlpConfig::seed_generator(64, image).build(gvb)?, MlpConfig::seed_discriminator(image).build(dvb)?)
        }
        _ => {
            let critic_norm = if family == GanFamily::WganGp { Norm::Layer } else { Norm::Batch };
            let config =
                DcganConfig { image_size: image[1], channels: image[0], critic_norm, ..DcganConfig::default() };
            (config.generator(gvb)?, config.discriminator(dvb)?)
        }
    };
    Ok([(g, gs), (d, ds)])
}

fn summary(family: GanFamily, image_size: usize, channels: usize) -> anyhow::Result<()> {
    let [(g, gs), (d, ds)] = build(family, [channels, image_size, image_size])?;
    let latent = if family == GanFamily::Gan { 64 } else { DcganConfig::default().nz };
    let critic = if matches!(family, GanFamily::Wgan | GanFamily::WganGp) { "critic" } else { "discriminator" };
    let z = Tensor::zeros((1, latent), DType::F32, &Device::Cpu)?;
    let x = Tensor::zeros((1, channels, image_size, image_size), DType::F32, &Device::Cpu)?;
    let mut text = render(&format!("generator ({family:?}, input {:?})", z.dims()), &summarize(&g, &gs, &z)?);
    text += &format!("\n{}", render(&format!("{critic} ({family:?}, input {:?})", x.dims()), &summarize(&d, &ds, &x)?));
    emit(&text)
}
