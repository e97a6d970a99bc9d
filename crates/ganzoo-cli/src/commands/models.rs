//! `ganzoo models summary`.

use candle_core::{DType, Device, Tensor};
use ganzoo_data::{DatasetSpec, KnownDataset};
use ganzoo_models::summary::render;
use ganzoo_models::{summarize, Footprint, ParamStore};
use ganzoo_train::budget::MemoryLimit;
use ganzoo_train::networks::Architecture;
use ganzoo_train::{DataSource, TrainConfig};

use crate::cli::{GanFamily, ModelsCommand};
use crate::commands::train::family_of;
use crate::output::emit;

pub fn run(cmd: ModelsCommand, limit: MemoryLimit) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Summary { family, image_size, channels } => summary(family, image_size, channels, limit),
    }
}

fn summary(family: GanFamily, image_size: usize, channels: usize, limit: MemoryLimit) -> anyhow::Result<()> {
    anyhow::ensure!(channels > 0, "--channels must be at least 1, got 0");
    anyhow::ensure!(image_size > 0, "--image-size must be at least 1, got 0");
    // The family's preset on images: the networks `train` builds at this size.
    let config = TrainConfig::preset(family_of(family), DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist)));
    let arch = Architecture::of(&config, &[channels, image_size, image_size]);
    if let Architecture::Dcgan(c) = &arch {
        c.validate()?;
    }
    let (gf, df) = arch.footprints();
    let bytes = |f: Footprint| 4 * (f.params + f.activations + f.unfold);
    limit.check(
        format!("the {} networks at {channels}x{image_size}x{image_size}", family_of(family).name()),
        2 * (bytes(gf) + bytes(df)),
        "lower --image-size or --channels",
    )?;
    let (gs, ds) = (ParamStore::new(0), ParamStore::new(0));
    let (g, d) =
        arch.build(gs.builder(DType::F32, &Device::Cpu).pp("gen"), ds.builder(DType::F32, &Device::Cpu).pp("disc"))?;
    let critic = if matches!(family, GanFamily::Wgan | GanFamily::WganGp) { "critic" } else { "discriminator" };
    let z = Tensor::zeros((1, config.latent), DType::F32, &Device::Cpu)?;
    let x = Tensor::zeros((1, channels, image_size, image_size), DType::F32, &Device::Cpu)?;
    let mut text = render(&format!("generator ({family:?}, input {:?})", z.dims()), &summarize(&g, &gs, &z)?);
    text += &format!("\n{}", render(&format!("{critic} ({family:?}, input {:?})", x.dims()), &summarize(&d, &ds, &x)?));
    emit(&text)
}
