//! `ganzoo eval`: sample-quality metrics of a run's latest generator (written to
//! `RUN/eval/step-N.json`) or of samples from a `.npy` file.

use std::path::Path;

use anyhow::{bail, Context};
use candle_core::Device;
use ganzoo_data::npy::read_npy_f32;
use ganzoo_data::ToyDistribution;
use ganzoo_eval::transport::{W1Method, EXACT_MAX};
use ganzoo_eval::{toy_metrics, ToyReport};
use ganzoo_train::budget::MemoryLimit;
use ganzoo_train::{checkpoint, DataSource, TrainedGenerator};

use crate::cli::EvalArgs;
use crate::output::emit;

pub fn run(args: EvalArgs, limit: MemoryLimit) -> anyhow::Result<()> {
    anyhow::ensure!(args.n > 0, "--n must be at least 1");
    let (report, run_step) = match (&args.run, &args.samples, args.dataset) {
        (Some(run), _, _) => {
            let (report, step) = eval_run(run, args.n, args.seed, limit)?;
            (report, Some((run.clone(), step)))
        }
        (None, Some(file), Some(toy)) => (eval_file(file, toy, args.seed, limit)?, None),
        _ => bail!("give --run RUN_DIR, or --samples FILE.npy with --dataset"),
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some((run, step)) = run_step {
        let dir = run.join("eval");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("step-{step:08}.json"));
        let partial = dir.join(format!("step-{step:08}.json.partial"));
        std::fs::write(&partial, &json).with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    emit(&if args.json { json + "\n" } else { table(&report) })
}

/// Points needed in memory: the samples and as many real ones twice, and the exact
/// assignment's cost matrix up to [`EXACT_MAX`] points.
fn check_memory(n: usize, limit: MemoryLimit) -> anyhow::Result<()> {
    let points = 3 * 2 * 4 * n as u128;
    let exact = if n <= EXACT_MAX { 8 * (n as u128).pow(2) } else { 0 };
    limit.check(format!("evaluating {n} samples"), points + exact, "lower --n")?;
    Ok(())
}

fn eval_run(run: &Path, n: usize, seed: u64, limit: MemoryLimit) -> anyhow::Result<(ToyReport, u64)> {
    let gen =
        TrainedGenerator::load(run, &Device::Cpu).with_context(|| format!("cannot load the run {}", run.display()))?;
    let DataSource::Toy(toy) = gen.config.data else {
        bail!("{}: image runs are measured with the domain classifier's features, which `eval` does not have yet; toy runs only", run.display());
    };
    check_memory(n, limit)?;
    let step = checkpoint::latest(run)?.and_then(|dir| checkpoint::read_state(&dir).ok()).map_or(0, |s| s.iteration);
    let mut points = Vec::with_capacity(2 * n);
    gen.sample_chunks(n, seed, 4096, |chunk| -> anyhow::Result<()> {
        points.extend(chunk.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    })?;
    Ok((toy_metrics(toy, &points, seed)?, step))
}

fn eval_file(file: &Path, toy: ToyDistribution, seed: u64, limit: MemoryLimit) -> anyhow::Result<ToyReport> {
    let len = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
    check_memory((len / 8) as usize, limit)?;
    let (shape, points) = read_npy_f32(file)?;
    if shape.len() != 2 || shape[1] != 2 {
        bail!("{}: {} takes N×2 points, the file holds an array of shape {shape:?}", file.display(), toy.name());
    }
    toy_metrics(toy, &points, seed).with_context(|| format!("{}", file.display()))
}

fn table(r: &ToyReport) -> String {
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.4}"));
    let count = |v: Option<usize>| v.map_or("—".to_string(), |v| v.to_string());
    let modes = count(r.modes);
    format!(
        "{} samples of {}\n  modes covered           {} / {modes}\n  modes with ≥ 20 samples {} / {modes}\n  high-quality share      {}\n  KL(modes ‖ uniform)     {}\n  W1 to real ({})  {:.4}   (real vs real: {:.4})\n",
        r.samples,
        r.toy,
        count(r.modes_covered),
        count(r.modes_covered_strict),
        opt(r.high_quality),
        opt(r.kl_uniform),
        match r.w1_method {
            W1Method::ExactAssignment => "exact",
            W1Method::Sliced => "sliced",
        },
        r.w1,
        r.w1_real_floor
    )
}
