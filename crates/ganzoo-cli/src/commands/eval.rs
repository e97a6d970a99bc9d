//! `ganzoo eval`: sample-quality metrics of a run's latest generator (written to
//! `RUN/eval/step-N.json`) or of samples from a `.npy` file. Toys get the mode counts
//! and W1; images FID-style metrics in a classifier's or Inception's features against
//! the real test split (an image folder's own images, which have no other).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use ganzoo_data::npy::read_npy_f32;
use ganzoo_data::ToyDistribution;
use ganzoo_data::{DataLocator, DatasetSpec, ImageDataset};
use ganzoo_eval::classifier::Classifier;
use ganzoo_eval::feature_cache::real_features;
use ganzoo_eval::image::{image_metrics_with, metrics_working_bytes, FeatureExtractor, ImageReport, Seen};
use ganzoo_eval::inception_weights::{ganzoo_cache_dir, load_inception, WeightsLocator};
use ganzoo_eval::transport::{W1Method, EXACT_MAX};
use ganzoo_eval::{toy_metrics, EvalReport, ToyReport};
use ganzoo_train::budget::MemoryLimit;
use ganzoo_train::data_record::DataRecord;
use ganzoo_train::{DataSource, TrainedGenerator};

use crate::cli::{open_device, EvalArgs, FeatureKind, SourceArgs};
use crate::commands::data::load;
use crate::commands::first_given;
use crate::commands::train::{read_as_trained, with_recorded_data_dir};
use crate::output::emit;
use crate::progress::{DownloadBar, EvalProgress, Pass};

pub fn run(args: EvalArgs, limit: MemoryLimit) -> anyhow::Result<()> {
    anyhow::ensure!(args.n != Some(0), "--n must be at least 1");
    anyhow::ensure!(
        args.run.is_some() || args.precision.is_none(),
        "--precision sets the activations of --run's generator; samples from a file are already made"
    );
    let (report, run_step) = match (&args.run, &args.samples, &args.dataset) {
        (Some(run), _, _) => {
            let (report, step) = eval_run(run, &args, limit)?;
            (report, Some((run.clone(), step)))
        }
        (None, Some(file), Some(DataSource::Toy(toy))) => {
            refuse_image_flags(*toy, &args)?;
            if args.device.is_some() {
                bail!(
                    "--device runs a generator or an image network; samples of {} from a file need neither",
                    toy.name()
                );
            }
            (EvalReport::Toy(eval_file(file, *toy, args.seed, limit)?), None)
        }
        (None, Some(file), Some(DataSource::Images(spec))) => {
            (EvalReport::Image(eval_image_file(file, &spec.to_string(), &args, limit)?), None)
        }
        _ => bail!("give --run RUN_DIR, or --samples FILE.npy with --dataset"),
    };
    let json = match &report {
        EvalReport::Toy(r) => serde_json::to_string_pretty(r)?,
        EvalReport::Image(r) => serde_json::to_string_pretty(r)?,
    };
    if let Some((run, step)) = run_step {
        ganzoo_train::run_dir::write_eval_report(&run, &report_name(step, &args), json.as_bytes())?;
        // The run's page lists its evaluations; a run still training rewrites it itself.
        if let Err(e) = ganzoo_train::report::refresh(&run) {
            tracing::warn!(run = %run.display(), "report.html not rewritten: {e}");
        }
    }
    let text = match &report {
        _ if args.json => json + "\n",
        EvalReport::Toy(r) => toy_table(r),
        EvalReport::Image(r) => image_table(r),
    };
    emit(&text)
}

/// What to do about too little memory: a run's samples are drawn `--n` at a time; a
/// file's are all of it (`--n` is refused with one).
const LOWER_N: &str = "lower --n, or raise --max-memory";
const FEWER_IN_FILE: &str = "evaluate fewer samples (a smaller file), or raise --max-memory";

/// Points needed in memory: the samples and as many real ones twice, and the exact
/// assignment's cost matrix up to [`EXACT_MAX`] points.
fn check_toy_memory(n: usize, limit: MemoryLimit, hint: &str) -> anyhow::Result<()> {
    let points = 3 * 2 * 4 * n as u128;
    let exact = if n <= EXACT_MAX { 8 * (n as u128).pow(2) } else { 0 };
    limit.check(format!("evaluating {n} samples"), points + exact, hint)?;
    Ok(())
}

fn eval_run(run: &Path, args: &EvalArgs, limit: MemoryLimit) -> anyhow::Result<(EvalReport, u64)> {
    let device = open_device(args.device.unwrap_or_default())?;
    let mut gen = TrainedGenerator::load_at(run, args.step, &device)
        .with_context(|| format!("cannot load the run {}", run.display()))?;
    if let Some(precision) = args.precision {
        gen = gen.with_precision(precision.into());
    }
    // The iteration of the checkpoint loaded (a run training meanwhile may have a newer one).
    let step = gen.iteration;
    let report = match &gen.config.data {
        DataSource::Toy(toy) => {
            refuse_image_flags(*toy, args)?;
            let n = args.n.unwrap_or(2000);
            check_toy_memory(n, limit, LOWER_N)?;
            let mut points = Vec::with_capacity(2 * n);
            gen.sample_chunks(n, args.seed, 4096, |chunk| -> anyhow::Result<()> {
                points.extend(chunk.flatten_all()?.to_vec1::<f32>()?);
                Ok(())
            })?;
            EvalReport::Toy(toy_metrics(*toy, &points, args.seed)?)
        }
        DataSource::Images(spec) => {
            let given = [(args.source.image_size.is_some(), "--image-size"), (args.source.grayscale, "--grayscale")];
            if let Some(flag) = first_given(&given) {
                bail!("{flag} reads a data set's images; a run's are read as it was trained on them");
            }
            // Where the run's data was read from, unless --data-dir says otherwise.
            let recorded = DataRecord::read(run)?;
            let source = read_as_trained(&gen.config, &with_recorded_data_dir(&args.source, recorded.as_ref()));
            EvalReport::Image(eval_images(&gen, &spec.to_string(), &source, args, &device, limit)?)
        }
    };
    Ok((report, step))
}

/// Refuses the flags that choose an image network or read images for samples of a toy
/// (measured by mode counts and W1), rather than ignoring them.
fn refuse_image_flags(toy: ToyDistribution, args: &EvalArgs) -> anyhow::Result<()> {
    let given = [
        (args.classifier.is_some(), "--classifier"),
        (args.inception_weights.is_some(), "--inception-weights"),
        (matches!(args.features, FeatureKind::Inception), "--features inception"),
        (args.source.image_size.is_some(), "--image-size"),
        (args.source.grayscale, "--grayscale"),
    ];
    if let Some(flag) = first_given(&given) {
        bail!("{flag} applies to images; samples of {} are measured by their modes and W1 to real points", toy.name());
    }
    Ok(())
}

/// The classifier given by `--classifier`, else the one shipped for `dataset`, on `device`.
fn classifier_for(dataset: &str, args: &EvalArgs, device: &Device) -> anyhow::Result<Classifier> {
    let c = match &args.classifier {
        Some(stem) => Classifier::load_files(stem, device)?,
        None => match ganzoo_eval::classifier::shipped(dataset) {
            Some((weights, card)) => Classifier::load(weights, card, device)?,
            None if is_folder(dataset) => {
                bail!("no classifier ships for an image folder: use --features inception")
            }
            None => bail!(
                "no classifier ships for {dataset}: train one (ganzoo train classifier --dataset {dataset}) and pass \
                 --classifier STEM, or use --features inception"
            ),
        },
    };
    if c.card.dataset != dataset {
        bail!("the classifier was trained on {}, the samples imitate {dataset}", c.card.dataset);
    }
    Ok(c)
}

/// The network `--features` names, for samples imitating `dataset`, on `device`.
fn extractor_for(dataset: &str, args: &EvalArgs, device: &Device) -> anyhow::Result<FeatureExtractor> {
    match args.features {
        FeatureKind::Classifier => {
            anyhow::ensure!(args.inception_weights.is_none(), "--inception-weights needs --features inception");
            Ok(FeatureExtractor::Classifier(Box::new(classifier_for(dataset, args, device)?)))
        }
        FeatureKind::Inception => {
            anyhow::ensure!(args.classifier.is_none(), "--classifier needs --features classifier");
            let mut locator = WeightsLocator::new(args.inception_weights.clone());
            if args.source.no_download {
                locator.url = None;
            }
            let path = locator.locate(&mut DownloadBar::default())?;
            Ok(FeatureExtractor::Inception(load_inception(&path, device)?))
        }
    }
}

/// Checks that images of `shape` (C, H, W) suit `net`.
fn check_image_shape(net: &FeatureExtractor, shape: &[usize]) -> Result<(), String> {
    match net {
        FeatureExtractor::Classifier(c) => {
            let expected = [c.card.channels, c.card.image_size, c.card.image_size];
            if shape != expected {
                return Err(format!(
                    "{} takes {expected:?} images (C, H, W), got {shape:?} (--features inception takes any size)",
                    net.name()
                ));
            }
        }
        // Inception resizes any size to 299×299.
        FeatureExtractor::Inception(_) if shape[0] != 1 && shape[0] != 3 => {
            return Err(format!("inception takes images of 1 or 3 channels, got {shape:?} (C, H, W)"));
        }
        FeatureExtractor::Inception(_) => {}
    }
    Ok(())
}

fn eval_images(
    gen: &TrainedGenerator,
    dataset: &str,
    source: &SourceArgs,
    args: &EvalArgs,
    device: &Device,
    limit: MemoryLimit,
) -> anyhow::Result<ImageReport> {
    let net = extractor_for(dataset, args, device)?;
    check_image_shape(&net, &gen.sample_shape).map_err(|e| anyhow::anyhow!("the run's samples: {e}"))?;
    let real = real_split(dataset, source, limit, square_side(&gen.sample_shape))?;
    let n = args.n.unwrap_or(10_000);
    check_counts(&net, n, &real.images)?;
    let numel: u128 = gen.sample_shape.iter().map(|&d| d as u128).product();
    check_image_memory(&net, (n, real.images.len()), numel, limit, LOWER_N)?;
    let mut fake = net.nothing_seen();
    let mut seen = EvalProgress::new(Pass::Features("generated samples"));
    gen.sample_chunks(n, args.seed, net.batch(), |images| -> anyhow::Result<()> {
        fake.extend(net.see(&images)?);
        seen.at(fake.len() as u64, n as u64);
        Ok(())
    })?;
    compare_with_real(&net, &fake, &real, dataset, source, args.seed)
}

/// Images from a `.npy` file (N×C×H×W in [−1, 1]) against the real images ([`real_split`]).
fn eval_image_file(file: &Path, dataset: &str, args: &EvalArgs, limit: MemoryLimit) -> anyhow::Result<ImageReport> {
    let net = extractor_for(dataset, args, &open_device(args.device.unwrap_or_default())?)?;
    let len = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
    limit.check(format!("reading {}", file.display()), 2 * u128::from(len), FEWER_IN_FILE)?;
    let (shape, values) = read_npy_f32(file)?;
    if shape.len() != 4 || shape[0] == 0 {
        bail!("{}: {dataset} samples are N×C×H×W images, the file holds {shape:?}", file.display());
    }
    check_image_shape(&net, &shape[1..]).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let source = folder_read_as_samples(dataset, &args.source, &shape[1..]);
    let real = real_split(dataset, &source, limit, square_side(&shape[1..]))?;
    check_counts(&net, shape[0], &real.images).map_err(|e| e.context(file.display().to_string()))?;
    let numel = values.len() / shape[0];
    check_image_memory(&net, (shape[0], real.images.len()), numel as u128, limit, FEWER_IN_FILE)?;
    let mut fake = net.nothing_seen();
    let mut seen = EvalProgress::new(Pass::Features("samples"));
    for chunk in values.chunks(net.batch() * numel) {
        let images = Tensor::from_slice(chunk, (chunk.len() / numel, shape[1], shape[2], shape[3]), &Device::Cpu)?;
        fake.extend(net.see(&images).with_context(|| format!("{}", file.display()))?);
        seen.at(fake.len() as u64, shape[0] as u64);
    }
    compare_with_real(&net, &fake, &real, dataset, &source, args.seed)
}

/// For samples of a folder, `source` set to read it at their square size and in gray
/// where they have one channel, unless `--image-size` / `--grayscale` said otherwise
/// (read once at the samples' size rather than at 64 and resized again).
fn folder_read_as_samples(dataset: &str, source: &SourceArgs, shape: &[usize]) -> SourceArgs {
    if !is_folder(dataset) {
        return source.clone();
    }
    SourceArgs {
        image_size: source.image_size.or(square_side(shape)),
        grayscale: source.grayscale || shape.first() == Some(&1),
        ..source.clone()
    }
}

/// A covariance of `dim` features needs more than `dim` samples, generated and real:
/// checked before any image is seen.
fn check_counts(net: &FeatureExtractor, n: usize, test: &ImageDataset) -> anyhow::Result<()> {
    let dim = net.dim();
    if n <= dim || test.len() <= dim {
        bail!(
            "FID in the {dim}-d features of {} needs more than {dim} samples on each side; got {n} generated and {} real",
            net.name(),
            test.len()
        );
    }
    Ok(())
}

/// Features and probabilities of `n` samples and `m` real images, the network's working
/// copies for images of `numel` values, and what the metrics work in.
fn check_image_memory(
    net: &FeatureExtractor,
    (n, m): (usize, usize),
    numel: u128,
    limit: MemoryLimit,
    hint: &str,
) -> anyhow::Result<()> {
    let per_sample = (net.dim() + net.classes().unwrap_or(0)) as u128 * 4;
    // Inception at 299×299: its weights plus activations per image of a batch, with margin
    // over the peak measured in docs/performance.md ("InceptionV3 features").
    let working = match net {
        FeatureExtractor::Classifier(_) => 16 * net.batch() as u128 * numel,
        FeatureExtractor::Inception(_) => net.batch() as u128 * (24 << 20) + (256 << 20),
    };
    let metrics = metrics_working_bytes(n, m, net.dim());
    limit.check(format!("evaluating {n} images"), (n + m) as u128 * per_sample + working + metrics, hint)?;
    Ok(())
}

fn is_folder(dataset: &str) -> bool {
    matches!(dataset.parse(), Ok(DatasetSpec::Folder(_)))
}

/// The real images the samples are compared with.
struct RealSplit {
    images: ImageDataset,
    /// Which split they are: `test`, or `train` for a folder.
    split: &'static str,
    /// The side they were resized to, if they were.
    resized: Option<usize>,
}

/// `H` of square `(C, H, W)` samples.
fn square_side(shape: &[usize]) -> Option<usize> {
    matches!(shape, [_, h, w] if h == w).then(|| shape[1])
}

/// The data set's real test split — for an image folder, which has none, its images
/// (as pytorch-fid compares with a folder) — [`matched`] to samples of square side `side`.
fn real_split(
    dataset: &str,
    source: &SourceArgs,
    limit: MemoryLimit,
    side: Option<usize>,
) -> anyhow::Result<RealSplit> {
    let spec: DatasetSpec = dataset.parse()?;
    let splits = load(&spec, source, limit)?;
    let (images, split) = match (splits.test, spec) {
        (Some(test), _) => (test, "test"),
        (None, DatasetSpec::Folder(_)) => {
            tracing::info!("an image folder has no test split: the samples are compared with its images");
            (splits.train, "train")
        }
        (None, _) => bail!("{dataset} has no test split to compare with"),
    };
    matched(images, side, limit).map(|(images, resized)| RealSplit { images, split, resized })
}

/// `real` resized to `side × side` where the samples are square and of another size:
/// a run trained at `--image-size` imitates its data resized so (`make_stream`), and
/// comparing the two sizes would measure the resizing as much as the generator.
fn matched(
    real: ImageDataset,
    side: Option<usize>,
    limit: MemoryLimit,
) -> anyhow::Result<(ImageDataset, Option<usize>)> {
    let shape = real.shape();
    match side {
        Some(s) if (shape.height, shape.width) != (s, s) => {
            let bytes = real.len() as u128 * shape.channels as u128 * (s as u128).pow(2);
            limit.check(format!("the real images resized to {s}×{s}"), bytes, "raise --max-memory")?;
            tracing::info!(side = s, "the real images are resized to the samples' size");
            Ok((real.resized(s)?, Some(s)))
        }
        _ => Ok((real, None)),
    }
}

/// The metrics of `fake` against the real images, whose features are cached next to
/// the data (else in ganzoo's cache folder).
fn compare_with_real(
    net: &FeatureExtractor,
    fake: &Seen,
    real: &RealSplit,
    dataset: &str,
    source: &SourceArgs,
    seed: u64,
) -> anyhow::Result<ImageReport> {
    let dirs = feature_cache_dirs(&dataset.parse()?, source);
    let what = if real.split == "test" { "real test images" } else { "the folder's images" };
    let mut seen = EvalProgress::new(Pass::Features(what));
    let features = real_features(net, &real.images, &dirs, |done, total| seen.at(done as u64, total as u64))?;
    let mut measuring = EvalProgress::new(Pass::Distances);
    let mut report =
        image_metrics_with(&net.name(), fake, &features, seed, &mut |done, total| measuring.at(done, total))?;
    (report.real_resized_to, report.real_split) = (real.resized, Some(real.split.to_string()));
    Ok(report)
}

/// Where features of a real split are cached: the data set's folder, then ganzoo's cache.
pub fn feature_cache_dirs(spec: &DatasetSpec, source: &SourceArgs) -> Vec<PathBuf> {
    let data_dir = match spec {
        DatasetSpec::Known(known) => DataLocator::new(source.data_dir.clone()).find(*known),
        DatasetSpec::Folder(_) => None,
    };
    data_dir.into_iter().chain(ganzoo_cache_dir().map(|d| d.join("features"))).collect()
}

/// `step-N.json` for a measurement with the defaults; each setting given that changes
/// the numbers joins the name (`step-N-inception-n50000-s3.json`), so that measuring a
/// checkpoint another way never replaces an earlier measurement (an hour of Inception
/// features by a minute of the classifier's). The same settings give the same name.
fn report_name(step: u64, args: &EvalArgs) -> String {
    let mut name = format!("step-{step:08}");
    if args.features == FeatureKind::Inception {
        name += "-inception";
    }
    if let Some(stem) = args.classifier.as_ref().and_then(|s| s.file_name()) {
        let safe: String = stem
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
            .collect();
        name += &format!("-classifier-{safe}");
    }
    if let Some(n) = args.n {
        name += &format!("-n{n}");
    }
    if args.seed != 0 {
        name += &format!("-s{}", args.seed);
    }
    if let Some(precision) = args.precision {
        name += &format!("-{}", ganzoo_train::Precision::from(precision).name());
    }
    name + ".json"
}

fn eval_file(file: &Path, toy: ToyDistribution, seed: u64, limit: MemoryLimit) -> anyhow::Result<ToyReport> {
    let len = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
    check_toy_memory((len / 8) as usize, limit, FEWER_IN_FILE)?;
    let (shape, points) = read_npy_f32(file)?;
    if shape.len() != 2 || shape[1] != 2 {
        bail!("{}: {} takes N×2 points, the file holds an array of shape {shape:?}", file.display(), toy.name());
    }
    toy_metrics(toy, &points, seed).with_context(|| format!("{}", file.display()))
}

fn toy_table(r: &ToyReport) -> String {
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.4}"));
    let count = |v: Option<usize>| v.map_or("—".to_string(), |v| v.to_string());
    let modes = count(r.modes);
    let method = match r.w1_method {
        W1Method::ExactAssignment => "exact",
        W1Method::Sliced => "sliced",
    };
    format!(
        "{} samples of {}\n  modes covered           {} / {modes}\n  modes with ≥ 20 samples {} / {modes}\n  high-quality share      {}\n  KL(modes ‖ uniform)     {}\n  W1 to real ({method})  {:.4}   (real vs real: {:.4})\n",
        r.samples,
        r.toy,
        count(r.modes_covered),
        count(r.modes_covered_strict),
        opt(r.high_quality),
        opt(r.kl_uniform),
        r.w1,
        r.w1_real_floor
    )
}

fn image_table(r: &ImageReport) -> String {
    let mut text = format!(
        "{} samples against {} real {}{}, in the features of {}\n  FID              {:.3}\n  KID              {:.5} ± {:.5}\n",
        r.samples,
        r.real_samples,
        if r.real_split.as_deref() == Some("train") { "images of the folder (it has no test split)" } else { "test images" },
        r.real_resized_to.map_or(String::new(), |s| format!(" (resized to {s}×{s})")),
        r.features,
        r.fid,
        r.kid.mean,
        r.kid.std
    );
    if let (Some(score), Some(covered), Some(histogram)) = (r.inception_score, r.classes_covered, &r.class_histogram) {
        text += &format!(
            "  score (IS-style) {score:.3}\n  classes covered  {covered} / {}\n  class histogram  {histogram:?}\n",
            histogram.len()
        );
    }
    text += &format!("  precision        {:.3}\n  recall           {:.3}\n", r.precision, r.recall);
    if let Some(reference) = &r.reference {
        text += &format!("  reference        network {}, real images {}\n", reference.network, reference.real);
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ganzoo_data::ImageShape;

    use super::*;

    fn digits(n: usize) -> ImageDataset {
        let pixels = (0..n * 28 * 28).map(|i| (i % 251) as u8).collect();
        ImageDataset::new(pixels, vec![0; n], ImageShape { channels: 1, height: 28, width: 28 }, vec!["0".into()])
            .unwrap()
    }

    #[test]
    fn real_images_are_resized_to_square_samples_of_another_size() {
        assert_eq!((square_side(&[3, 64, 64]), square_side(&[1, 28, 32]), square_side(&[2])), (Some(64), None, None));
        let limit = MemoryLimit { bytes: u64::MAX, source: "test" };
        let (same, resized) = matched(digits(4), Some(28), limit).unwrap();
        assert_eq!((resized, same.shape().height), (None, 28));
        let (kept, resized) = matched(digits(4), None, limit).unwrap();
        assert_eq!((resized, kept.shape().height), (None, 28));
        let (larger, resized) = matched(digits(4), Some(64), limit).unwrap();
        assert_eq!((resized, larger.len()), (Some(64), 4));
        assert_eq!((larger.shape().height, larger.shape().width), (64, 64));
        // Checked before the resized copy is made: 10⁶ pixels a side would be 4 TB here.
        let huge = matched(digits(4), Some(1_000_000), MemoryLimit { bytes: 1 << 30, source: "test" }).err().unwrap();
        assert!(huge.to_string().contains("the real images resized to 1000000×1000000"), "{huge}");
    }

    #[test]
    fn a_folder_is_read_at_the_samples_size_and_channels_unless_told() {
        let source = SourceArgs { data_dir: None, no_download: true, mirror: None, image_size: None, grayscale: false };
        let read = |dataset: &str, source: &SourceArgs, shape: &[usize]| {
            let s = folder_read_as_samples(dataset, source, shape);
            (s.image_size, s.grayscale)
        };
        assert_eq!(read("folder:/x", &source, &[1, 28, 28]), (Some(28), true));
        assert_eq!(read("folder:/x", &source, &[3, 32, 32]), (Some(32), false));
        assert_eq!(read("folder:/x", &source, &[3, 32, 30]), (None, false));
        assert_eq!(read("mnist", &source, &[1, 64, 64]), (None, false));
        let told = SourceArgs { image_size: Some(64), ..source };
        assert_eq!(read("folder:/x", &told, &[1, 28, 28]), (Some(64), true));
    }
}
