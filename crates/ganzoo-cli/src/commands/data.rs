//! `ganzoo data info | sample | grid`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::Device;
use ganzoo_data::batcher::epoch_order;
use ganzoo_data::folder::MAX_SIDE;
use ganzoo_data::grid::save_tensor_grid;
use ganzoo_data::npy::NpyWriter;
use ganzoo_data::{
    load_dataset_located, DataLocator, DatasetSpec, DatasetStats, Fetch, ImageDataset, ImageFolderConfig, Splits,
    ToyDistribution,
};
use ganzoo_train::budget::{MemoryLimit, BASELINE_BYTES};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cli::{DataCommand, SourceArgs};
use crate::output::emit;
use crate::progress::DownloadBar;
use crate::signals::StopFlag;

pub fn run(cmd: DataCommand, limit: MemoryLimit) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Info { dataset, source } => info(&dataset, &source, limit),
        DataCommand::Sample { toy, n, seed, out, overwrite } => sample(toy, n, seed, &out, overwrite),
        DataCommand::Grid { dataset, source, seed, out, overwrite } => {
            grid(&dataset, &source, seed, &out, overwrite, limit)
        }
    }
}

/// Loads an image data set as the command line describes it; an image folder is
/// refused before decoding when its images would not fit in `limit`.
pub fn load(dataset: &DatasetSpec, source: &SourceArgs, limit: MemoryLimit) -> anyhow::Result<Splits> {
    Ok(load_located(dataset, source, limit)?.0)
}

/// [`load`], and the folder a known data set was read from (`None` for an image folder).
pub fn load_located(
    dataset: &DatasetSpec,
    source: &SourceArgs,
    limit: MemoryLimit,
) -> anyhow::Result<(Splits, Option<PathBuf>)> {
    if source.grayscale && !matches!(dataset, DatasetSpec::Folder(_)) {
        anyhow::bail!("--grayscale applies to image folders (folder:PATH); {dataset} is read as it is stored");
    }
    let locator = DataLocator::new(source.data_dir.clone());
    let folder = ImageFolderConfig {
        max_bytes: limit.bytes.saturating_sub(BASELINE_BYTES),
        ..ImageFolderConfig::new(source.image_size.unwrap_or(64), source.grayscale)
    };
    let mut bar = DownloadBar::default();
    let fetch = Fetch { enabled: !source.no_download, mirror: source.mirror.clone(), progress: &mut bar };
    load_dataset_located(dataset, &locator, folder, fetch).with_context(|| format!("cannot load {dataset}"))
}

fn info(dataset: &DatasetSpec, source: &SourceArgs, limit: MemoryLimit) -> anyhow::Result<()> {
    let splits = load(dataset, source, limit)?;
    let mut text = format!("{dataset}\n");
    describe_split(&mut text, "train", &splits.train);
    if let Some(test) = &splits.test {
        describe_split(&mut text, "test", test);
    }
    let stored = splits.train.shape();
    if let Some(s) = source.image_size.filter(|&s| (stored.height, stored.width) != (s, s)) {
        text += &format!(
            "  (stored at {}x{}; training with --image-size {s} resizes them to {s}x{s}, bilinear)\n",
            stored.height, stored.width
        );
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

/// Points are drawn and written a chunk at a time: `--n` is bounded by the disk, not memory.
fn sample(toy: ToyDistribution, n: usize, seed: u64, out: &Path, overwrite: bool) -> anyhow::Result<()> {
    anyhow::ensure!(n > 0, "--n must be at least 1");
    output_kind(out, &["npy"], overwrite)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let stop = StopFlag::install()?;
    let mut writer = NpyWriter::create(out, &[n, toy.dim()])?;
    let mut left = n;
    while left > 0 {
        stop.check()?;
        let k = left.min(TOY_CHUNK);
        writer.write(&toy.sample(k, &mut rng))?;
        left -= k;
    }
    writer.finish()?;
    emit(&format!("wrote {n} points of {} to {}\n", toy.name(), out.display()))
}

fn grid(
    dataset: &DatasetSpec,
    source: &SourceArgs,
    seed: Option<u64>,
    out: &Path,
    overwrite: bool,
    limit: MemoryLimit,
) -> anyhow::Result<()> {
    output_kind(out, &["png"], overwrite)?;
    let train = load(dataset, source, limit)?.train;
    let n = train.len().min(64);
    let ids: Vec<usize> = match seed {
        Some(seed) => epoch_order(train.len(), seed, 0)[..n].to_vec(),
        None => (0..n).collect(),
    };
    let picked = train.subset(&ids)?;
    // Known data sets are stored at one size; training resizes them to --image-size,
    // and so does the grid (folders were read at it already).
    let shape = picked.shape();
    let picked = match source.image_size {
        Some(s) if (shape.height, shape.width) != (s, s) => {
            anyhow::ensure!((1..=MAX_SIDE).contains(&s), "--image-size must lie in 1..={MAX_SIDE}, got {s}");
            limit.check(
                format!("{n} images at {s}×{s}"),
                5 * (n * shape.channels) as u128 * (s as u128).pow(2),
                "lower --image-size",
            )?;
            picked.resized(s)?
        }
        _ => picked,
    };
    let (images, _) = picked.gather(&(0..n).collect::<Vec<_>>(), &Device::Cpu)?;
    save_tensor_grid(&images, 8, out)?;
    emit(&format!("wrote an 8x8 grid of {dataset} to {}\n", out.display()))
}

/// Refuses `out` where it names a file a run writes itself (its page, charts, sample
/// grids, checkpoints, records): the run would replace the output, or lose its own.
pub fn refuse_run_file(out: &Path) -> anyhow::Result<()> {
    if let Some(run) = ganzoo_train::run_dir::owner_of(out) {
        anyhow::bail!(
            "{}: run {} writes this file itself (training and `report` replace it, --overwrite removes it); \
             write elsewhere",
            out.display(),
            run.display()
        );
    }
    Ok(())
}

/// Points drawn and written at a time by `data sample`.
const TOY_CHUNK: usize = 1 << 16;

/// The lower-case extension of `out` if it is one of `allowed`, its folder exists and
/// it does not (unless `overwrite`: a user's file is replaced only when asked, a folder
/// never), else an error naming what is wrong.
pub fn output_kind(out: &Path, allowed: &[&str], overwrite: bool) -> anyhow::Result<String> {
    let ext = out.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if !allowed.contains(&ext.as_str()) {
        let names: Vec<String> = allowed.iter().map(|e| format!(".{e}")).collect();
        anyhow::bail!("{}: the output must end in {}", out.display(), names.join(" or "));
    }
    if let Some(folder) = out.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        let what = if folder.exists() { "is not a folder" } else { "does not exist" };
        anyhow::bail!("{}: its folder {} {what}", out.display(), folder.display());
    }
    if out.is_dir() {
        anyhow::bail!("{} is a folder: --out names a file (--overwrite replaces files only)", out.display());
    }
    refuse_run_file(out)?;
    if out.exists() && !overwrite {
        anyhow::bail!("{} exists: pass --overwrite to replace it, or another --out", out.display());
    }
    ganzoo_data::partial::check_free(out)?;
    Ok(ext)
}
