//! `ganzoo data info | sample | grid`.

use std::path::Path;

use anyhow::Context;
use candle_core::Device;
use ganzoo_data::batcher::epoch_order;
use ganzoo_data::grid::save_tensor_grid;
use ganzoo_data::npy::write_npy_f32;
use ganzoo_data::{
    load_dataset, DataLocator, DatasetSpec, DatasetStats, Fetch, ImageDataset, ImageFolderConfig, Splits,
    ToyDistribution,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cli::{DataCommand, SourceArgs};
use crate::output::emit;
use crate::progress::DownloadBar;

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Info { dataset, source } => info(&dataset, &source),
        DataCommand::Sample { toy, n, seed, out } => sample(toy, n, seed, &out),
        DataCommand::Grid { dataset, source, seed, out } => grid(&dataset, &source, seed, &out),
    }
}

/// Loads an image data set as the command line describes it.
pub fn load(dataset: &DatasetSpec, source: &SourceArgs) -> anyhow::Result<Splits> {
    let locator = DataLocator::new(source.data_dir.clone());
    let folder = ImageFolderConfig { size: source.image_size.unwrap_or(64), grayscale: source.grayscale };
    let mut bar = DownloadBar::default();
    let fetch = Fetch { enabled: !source.no_download, mirror: source.mirror.clone(), progress: &mut bar };
    load_dataset(dataset, &locator, folder, fetch).with_context(|| format!("cannot load {dataset}"))
}

fn info(dataset: &DatasetSpec, source: &SourceArgs) -> anyhow::Result<()> {
    let splits = load(dataset, source)?;
    let mut text = format!("{dataset}\n");
    describe_split(&mut text, "train", &splits.train);
    if let Some(test) = &splits.test {
        describe_split(&mut text, "test", test);
    }
    emit(&text)
}

fn describe_split(out: &mut String, name: &str, data: &ImageDataset) {
    use std::fmt::Write;
    let DatasetStats { count, shape, min, max, mean, class_histogram } = data.stats();
    let _ = writeln!(out, "  {name}: {count} images of {shape} (CxHxW), pixel values {min}..={max}, mean {mean:.2}");
    let _ = writeln!(
        out,
        "    as tensors: f32 in [{:.3}, {:.3}]",
        f32::from(min) / 127.5 - 1.0,
        f32::from(max) / 127.5 - 1.0
    );
    let classes = data.class_names();
    let width = classes.iter().map(String::len).max().unwrap_or(0).max(5);
    for (k, n) in class_histogram.iter().enumerate() {
        let label = classes.get(k).filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| format!("class {k}"));
        let _ = writeln!(out, "    {label:>width$} {n:>6}");
    }
    let _ = writeln!(out, "    histogram: {class_histogram:?}");
}

fn sample(toy: ToyDistribution, n: usize, seed: u64, out: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(n > 0, "--n must be at least 1");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let points = toy.sample(n, &mut rng);
    write_npy_f32(out, &[n, toy.dim()], &points)?;
    emit(&format!("wrote {n} points of {} to {}\n", toy.name(), out.display()))
}

fn grid(dataset: &DatasetSpec, source: &SourceArgs, seed: Option<u64>, out: &Path) -> anyhow::Result<()> {
    let train = load(dataset, source)?.train;
    let n = train.len().min(64);
    let ids: Vec<usize> = match seed {
        Some(seed) => epoch_order(train.len(), seed, 0)[..n].to_vec(),
        None => (0..n).collect(),
    };
    let (images, _) = train.gather(&ids, &Device::Cpu)?;
    save_tensor_grid(&images, 8, out)?;
    emit(&format!("wrote an 8x8 grid of {dataset} to {}\n", out.display()))
}
