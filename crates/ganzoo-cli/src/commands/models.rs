//! `ganzoo models summary`.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use ganzoo_data::{DatasetSpec, KnownDataset};
use ganzoo_models::summary::render;
use ganzoo_models::{summarize, Footprint, ParamStore};
use ganzoo_train::budget::MemoryLimit;
use ganzoo_train::networks::Architecture;
use ganzoo_train::sample::sample_shape_from;
use ganzoo_train::{DataSource, Objective, RunDir, TrainConfig};

use crate::cli::ModelsCommand;
use crate::output::emit;

pub fn run(cmd: ModelsCommand, limit: MemoryLimit) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Summary { run: Some(run), .. } => {
            let (config, shape) = of_run(&run)?;
            summary(&config, &shape, &run.display().to_string(), limit, "raise --max-memory")
        }
        ModelsCommand::Summary { preset: Some(preset), image_size, channels, run: None } => {
            let config = TrainConfig::from_preset(preset, DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist)));
            let (size, channels) = (image_size.or(config.image_size).unwrap_or(28), channels.unwrap_or(1));
            anyhow::ensure!(channels > 0, "--channels must be at least 1, got 0");
            anyhow::ensure!(size > 0, "--image-size must be at least 1, got 0");
            summary(&config, &[channels, size, size], preset.name(), limit, "lower --image-size or --channels")
        }
        ModelsCommand::Summary { preset: None, run: None, .. } => anyhow::bail!("name a preset or give --run RUN_DIR"),
    }
}

/// A run's configuration and the shape of one of its samples, read from its config.toml.
fn of_run(run: &Path) -> anyhow::Result<(TrainConfig, Vec<usize>)> {
    let (dir, config) = RunDir::open(run)?;
    let shape = sample_shape_from(&config, &dir.config_path())?;
    Ok((config, shape))
}

/// The two networks `config` builds for samples of `shape`, layer by layer; `label`
/// names where they came from (a preset or a run).
fn summary(config: &TrainConfig, shape: &[usize], label: &str, limit: MemoryLimit, hint: &str) -> anyhow::Result<()> {
    let arch = Architecture::of(config, shape);
    if let Architecture::Dcgan(c) = &arch {
        c.validate()?;
    }
    let (gf, df) = arch.footprints();
    let bytes = |f: Footprint| 4 * (f.params + f.activations + f.unfold);
    let dims = shape.iter().map(usize::to_string).collect::<Vec<_>>().join("x");
    limit.check(format!("the {label} networks at {dims}"), 2 * (bytes(gf) + bytes(df)), hint)?;
    let (gs, ds) = (ParamStore::new(0), ParamStore::new(0));
    let (g, d) =
        arch.build(gs.builder(DType::F32, &Device::Cpu).pp("gen"), ds.builder(DType::F32, &Device::Cpu).pp("disc"))?;
    let critic = match config.objective {
        Objective::Wasserstein { .. } => "critic",
        Objective::CrossEntropy { .. } => "discriminator",
    };
    let z = Tensor::zeros((1, config.latent), DType::F32, &Device::Cpu)?;
    let x = Tensor::zeros([&[1], shape].concat(), DType::F32, &Device::Cpu)?;
    let mut text = render(&format!("generator ({label}, input {:?})", z.dims()), &summarize(&g, &gs, &z)?);
    text += &format!("\n{}", render(&format!("{critic} ({label}, input {:?})", x.dims()), &summarize(&d, &ds, &x)?));
    emit(&text)
}
