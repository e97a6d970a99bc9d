//! `ganzoo eval`: sample-quality metrics of a run's latest generator (written to
//! `RUN/eval/step-N.json`) or of toy samples from a `.npy` file. Toy runs get the mode
//! counts and W1; image runs the domain classifier's metrics against the real test split.

use std::path::Path;

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use ganzoo_data::npy::read_npy_f32;
use ganzoo_data::ToyDistribution;
use ganzoo_eval::classifier::{Classifier, FEATURES};
use ganzoo_eval::image::{image_metrics, see, ImageReport, Seen};
use ganzoo_eval::transport::{W1Method, EXACT_MAX};
use ganzoo_eval::{toy_metrics, ToyReport};
use ganzoo_train::budget::MemoryLimit;
use ganzoo_train::{checkpoint, DataSource, TrainedGenerator};
use serde::Serialize;

use crate::cli::EvalArgs;
use crate::commands::data::load;
use crate::output::emit;

/// Images run through the classifier at a time.
const CHUNK: usize = 500;

#[derive(Serialize)]
#[serde(untagged)]
enum Report {
    Toy(ToyReport),
    Image(ImageReport),
}

pub fn run(args: EvalArgs, limit: MemoryLimit) -> anyhow::Result<()> {
    anyhow::ensure!(args.n != Some(0), "--n must be at least 1");
    let (report, run_step) = match (&args.run, &args.samples, &args.dataset) {
        (Some(run), _, _) => {
            let (report, step) = eval_run(run, &args, limit)?;
            (report, Some((run.clone(), step)))
        }
        (None, Some(file), Some(DataSource::Toy(toy))) => (Report::Toy(eval_file(file, *toy, args.seed, limit)?), None),
        (None, Some(file), Some(DataSource::Images(spec))) => {
            (Report::Image(eval_image_file(file, &spec.to_string(), &args, limit)?), None)
        }
        _ => bail!("give --run RUN_DIR, or --samples FILE.npy with --dataset"),
    };
    let json = match &report {
        Report::Toy(r) => serde_json::to_string_pretty(r)?,
        Report::Image(r) => serde_json::to_string_pretty(r)?,
    };
    if let Some((run, step)) = run_step {
        let dir = run.join("eval");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        ganzoo_train::run_dir::write_atomic(&dir.join(format!("step-{step:08}.json")), json.as_bytes())?;
    }
    let text = match &report {
        _ if args.json => json + "\n",
        Report::Toy(r) => toy_table(r),
        Report::Image(r) => image_table(r),
    };
    emit(&text)
}

/// Points needed in memory: the samples and as many real ones twice, and the exact
/// assignment's cost matrix up to [`EXACT_MAX`] points.
fn check_toy_memory(n: usize, limit: MemoryLimit) -> anyhow::Result<()> {
    let points = 3 * 2 * 4 * n as u128;
    let exact = if n <= EXACT_MAX { 8 * (n as u128).pow(2) } else { 0 };
    limit.check(format!("evaluating {n} samples"), points + exact, "lower --n")?;
    Ok(())
}

fn eval_run(run: &Path, args: &EvalArgs, limit: MemoryLimit) -> anyhow::Result<(Report, u64)> {
    let gen =
        TrainedGenerator::load(run, &Device::Cpu).with_context(|| format!("cannot load the run {}", run.display()))?;
    let step = checkpoint::latest(run)?.and_then(|dir| checkpoint::read_state(&dir).ok()).map_or(0, |s| s.iteration);
    let report = match &gen.config.data {
        DataSource::Toy(toy) => {
            let n = args.n.unwrap_or(2000);
            check_toy_memory(n, limit)?;
            let mut points = Vec::with_capacity(2 * n);
            gen.sample_chunks(n, args.seed, 4096, |chunk| -> anyhow::Result<()> {
                points.extend(chunk.flatten_all()?.to_vec1::<f32>()?);
                Ok(())
            })?;
            Report::Toy(toy_metrics(*toy, &points, args.seed)?)
        }
        DataSource::Images(spec) => Report::Image(eval_images(&gen, &spec.to_string(), args, limit)?),
    };
    Ok((report, step))
}

/// The classifier given by `--classifier`, else the one shipped for `dataset`.
fn classifier_for(dataset: &str, args: &EvalArgs) -> anyhow::Result<Classifier> {
    let c = match &args.classifier {
        Some(stem) => Classifier::load_files(stem, &Device::Cpu)?,
        None => match ganzoo_eval::classifier::shipped(dataset) {
            Some((weights, card)) => Classifier::load(weights, card, &Device::Cpu)?,
            None => bail!(
                "no classifier ships for {dataset}: train one (ganzoo train classifier --dataset {dataset}) and pass --classifier STEM"
            ),
        },
    };
    if c.card.dataset != dataset {
        bail!("the classifier was trained on {}, the samples imitate {dataset}", c.card.dataset);
    }
    Ok(c)
}

fn eval_images(
    gen: &TrainedGenerator,
    dataset: &str,
    args: &EvalArgs,
    limit: MemoryLimit,
) -> anyhow::Result<ImageReport> {
    let classifier = classifier_for(dataset, args)?;
    let n = args.n.unwrap_or(10_000);
    let numel: u128 = gen.sample_shape.iter().map(|&d| d as u128).product();
    check_image_memory(&classifier, n, numel, limit)?;
    let mut fake = Seen { features: Vec::new(), probs: Vec::new() };
    gen.sample_chunks(n, args.seed, CHUNK, |images| -> anyhow::Result<()> {
        extend(&mut fake, see(&classifier, &images)?);
        Ok(())
    })?;
    compare_with_test_split(&classifier, &fake, dataset, args, limit)
}

/// Images from a `.npy` file (N×C×H×W in [−1, 1]) against the real test split.
fn eval_image_file(file: &Path, dataset: &str, args: &EvalArgs, limit: MemoryLimit) -> anyhow::Result<ImageReport> {
    let classifier = classifier_for(dataset, args)?;
    let len = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
    limit.check(format!("reading {}", file.display()), 2 * u128::from(len), "evaluate fewer samples")?;
    let (shape, values) = read_npy_f32(file)?;
    let card = &classifier.card;
    let expected = [card.channels, card.image_size, card.image_size];
    if shape.len() != 4 || shape[1..] != expected || shape[0] == 0 {
        bail!(
            "{}: {dataset} images are N×{}×{}×{}, the file holds {shape:?}",
            file.display(),
            expected[0],
            expected[1],
            expected[2]
        );
    }
    let numel = values.len() / shape[0];
    check_image_memory(&classifier, shape[0], numel as u128, limit)?;
    let mut fake = Seen { features: Vec::new(), probs: Vec::new() };
    for chunk in values.chunks(CHUNK * numel) {
        let images = Tensor::from_slice(chunk, (chunk.len() / numel, shape[1], shape[2], shape[3]), &Device::Cpu)?;
        extend(&mut fake, see(&classifier, &images).with_context(|| format!("{}", file.display()))?);
    }
    compare_with_test_split(&classifier, &fake, dataset, args, limit)
}

/// Features, probabilities and the classifier's working copies for `n` images of `numel` values.
fn check_image_memory(classifier: &Classifier, n: usize, numel: u128, limit: MemoryLimit) -> anyhow::Result<()> {
    let per_sample = (FEATURES + classifier.card.classes) as u128 * 4;
    limit.check(
        format!("evaluating {n} images"),
        2 * n as u128 * per_sample + 16 * CHUNK as u128 * numel,
        "lower --n",
    )?;
    Ok(())
}

/// The metrics of `fake` against the data set's real test split.
fn compare_with_test_split(
    classifier: &Classifier,
    fake: &Seen,
    dataset: &str,
    args: &EvalArgs,
    limit: MemoryLimit,
) -> anyhow::Result<ImageReport> {
    let test = load(&dataset.parse()?, &args.source, limit)?
        .test
        .with_context(|| format!("{dataset} has no test split to compare with"))?;
    let mut real = Seen { features: Vec::new(), probs: Vec::new() };
    for ids in (0..test.len()).collect::<Vec<_>>().chunks(CHUNK) {
        let (images, _): (Tensor, Tensor) = test.gather(ids, &Device::Cpu)?;
        extend(&mut real, see(classifier, &images)?);
    }
    Ok(image_metrics(classifier, fake, &real, args.seed)?)
}

fn extend(all: &mut Seen, more: Seen) {
    all.features.extend(more.features);
    all.probs.extend(more.probs);
}

fn eval_file(file: &Path, toy: ToyDistribution, seed: u64, limit: MemoryLimit) -> anyhow::Result<ToyReport> {
    let len = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
    check_toy_memory((len / 8) as usize, limit)?;
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
    format!(
        "{} samples against {} real test images, in the {} classifier's features\n  FID              {:.3}\n  KID              {:.5} ± {:.5}\n  score (IS-style) {:.3}\n  classes covered  {} / {}\n  class histogram  {:?}\n  precision        {:.3}\n  recall           {:.3}\n",
        r.samples,
        r.real_samples,
        r.classifier,
        r.fid,
        r.kid.mean,
        r.kid.std,
        r.inception_score,
        r.classes_covered,
        r.class_histogram.len(),
        r.class_histogram,
        r.precision,
        r.recall
    )
}
