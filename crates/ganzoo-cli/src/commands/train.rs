//! `ganzoo train`: resolve the configuration (preset or file, then flags), load
//! the data, and run the one training loop with a progress bar.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use candle_core::Device;
use ganzoo_data::{DatasetSpec, ImageDataset, KnownDataset};
use ganzoo_eval::classifier::Classifier;
use ganzoo_eval::feature_cache::real_features;
use ganzoo_eval::image::FeatureExtractor;
use ganzoo_train::budget::{training_bytes, DataSize, MemoryLimit};
use ganzoo_train::config::{GeneratorCostName, LrDecay, NormName, Preset};
use ganzoo_train::data_record::DataRecord;
use ganzoo_train::{
    Arch, Constraint, DataSource, ImageEval, Objective, Optimizer, Outcome, RunDir, TrainConfig, Trainer,
};

use crate::cli::{open_device, ArchArg, CostArg, LrDecayArg, NormArg, RecipeArgs, SourceArgs, TrainArgs, TrainTarget};
use crate::commands::data::load_located;
use crate::commands::eval::feature_cache_dirs;
use crate::commands::first_given;
use crate::logfile;
use crate::output::{emit, program, shell_word};
use crate::progress::TrainBar;
use crate::signals::{StopNotice, StopSignals};

pub fn run(args: TrainArgs, limit: MemoryLimit) -> anyhow::Result<ExitCode> {
    if args.family == Some(TrainTarget::Classifier) {
        return crate::commands::classifier::train(&args, limit).map(|()| ExitCode::SUCCESS);
    }
    if args.print_config {
        emit(&resolve(&args)?.to_toml()?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let device = open_device(args.device)?;
    let trainer = match &args.resume {
        Some(path) => resume(path, &args, device, limit)?,
        None => fresh(&args, device, limit)?,
    };
    drive(trainer)
}

/// A new run: everything that can refuse the start (configuration, data, memory) is
/// checked before the run directory is made, and a start refused after that leaves no
/// half-made run behind.
fn fresh(args: &TrainArgs, device: Device, limit: MemoryLimit) -> anyhow::Result<Trainer> {
    let config = resolve(args)?;
    let (train, eval, record) = load_images(&config, &args.source, limit, &device)?;
    check_memory(
        &config,
        train.as_ref(),
        limit,
        "lower --batch-size, --image-size, --ngf/--ndf, --latent, or raise --max-memory",
    )?;
    let mut run = match &args.out {
        Some(out) => RunDir::create(out, args.overwrite)?,
        None => RunDir::create_numbered(&PathBuf::from("runs").join(format!(
            "{}-{}",
            config.family.name(),
            data_slug(&config.data)
        )))?,
    };
    let started = match &record {
        Some(r) => r.write(run.path()),
        None => Ok(()),
    };
    match started.and_then(|()| Trainer::new(config, train, run.clone(), device)) {
        Ok(trainer) => {
            let trainer = match eval {
                Some(eval) => trainer.with_image_eval(eval),
                None => trainer,
            };
            logfile::log_to(&run.path().join("train.log"))?;
            tracing::info!(run = %run.path().display(), "new run");
            Ok(trainer)
        }
        Err(e) => {
            run.discard();
            Err(e.into())
        }
    }
}

fn resume(path: &Path, args: &TrainArgs, device: Device, limit: MemoryLimit) -> anyhow::Result<Trainer> {
    // What an edited config.toml may change (check_config_unchanged) the flags may too:
    // the length, and how often the run samples, saves and measures.
    let r = &args.recipe;
    let given = [
        (args.dataset.is_some(), "--dataset"),
        (args.source.image_size.is_some(), "--image-size"),
        (args.source.grayscale, "--grayscale"),
        (args.batch_size.is_some(), "--batch-size"),
        (args.seed.is_some(), "--seed"),
        (r.log_every.is_some(), "--log-every"),
    ];
    if let Some(flag) = first_given(&[&r.recipe_given()[..], &given].concat()) {
        bail!(
            "a resumed run keeps its recipe, data, batch size, seed and logging, so {flag} cannot change; --epochs, \
             --iters, --sample-every, --checkpoint-every, --keep-checkpoints and --eval-every may"
        );
    }
    let (run, mut config) = RunDir::open_for_writing(path)?;
    if args.epochs.is_some() || args.iters.is_some() {
        (config.epochs, config.iters) = (args.epochs, args.iters);
    }
    config.sample_every = r.sample_every.unwrap_or(config.sample_every);
    config.checkpoint_every = r.checkpoint_every.unwrap_or(config.checkpoint_every);
    config.keep_checkpoints = r.keep_checkpoints.unwrap_or(config.keep_checkpoints);
    config.eval_every = r.eval_every.or(config.eval_every);
    config.validate()?;
    config.tensorboard &= !args.no_tensorboard;
    let recorded = DataRecord::read(run.path())?;
    let source = with_recorded_data_dir(&args.source, recorded.as_ref());
    let (train, eval, now) = load_images(&config, &source, limit, &device)?;
    // Its batch size and networks are the checkpoint's: only the limit can move.
    check_memory(
        &config,
        train.as_ref(),
        limit,
        "raise --max-memory (a resumed run keeps its batch size and networks)",
    )?;
    // Refuses images other than data.json records, before the run changes.
    let mut trainer = Trainer::resume(run, config, train, device)?;
    // A run older than data.json gets one now (Trainer::resume writes it without the
    // folder, which is known only here): the data later resumes must read again.
    if let (None, Some(now)) = (&recorded, &now) {
        now.write(trainer.run_dir().path())?;
    }
    if let Some(eval) = eval {
        trainer = trainer.with_image_eval(eval);
    }
    logfile::log_to(&trainer.run_dir().path().join("train.log"))?;
    Ok(trainer)
}

/// Refuses a run whose estimated peak memory exceeds the limit.
fn check_memory(
    config: &TrainConfig,
    train: Option<&ImageDataset>,
    limit: MemoryLimit,
    hint: &str,
) -> anyhow::Result<()> {
    let data = train.map(|d| {
        let s = d.shape();
        DataSize { count: d.len(), shape: [s.channels, s.height, s.width] }
    });
    let what = format!("training {} on {} at batch size {}", config.family.name(), config.data, config.batch_size);
    limit.check(what, training_bytes(config, data), hint)?;
    Ok(())
}

fn drive(mut trainer: Trainer) -> anyhow::Result<ExitCode> {
    let signals = StopSignals::install(trainer.stop_flag())?;
    let notice = StopNotice::watch(trainer.stop_flag());
    let mut bar = TrainBar::new(trainer.total_iters(), trainer.iteration());
    let outcome = trainer.run(&mut bar);
    drop(notice);
    bar.finish();
    let run = trainer.run_dir().path().to_path_buf();
    let outcome = outcome.map_err(|e| match run.is_dir() {
        true => anyhow::Error::from(e),
        // Moved or deleted while training: the file named below is missing for that reason.
        false => anyhow::Error::from(e).context(format!(
            "{}: the run's folder is gone (moved or deleted while training?); its checkpoints went with it",
            run.display()
        )),
    })?;
    match outcome {
        Outcome::Finished => {
            let peak = ganzoo_bench::system::peak_rss_mb();
            tracing::info!(peak_memory_mib = peak, "finished");
            emit(&format!(
                "finished {} iterations (peak memory {peak:.0} MiB); report in {}\n",
                trainer.iteration(),
                run.join(ganzoo_train::report::REPORT_FILE).display()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted => {
            emit(&format!(
                "stopped at iteration {}; continue with: {} train --resume {}\n",
                trainer.iteration(),
                program(),
                shell_word(&run)
            ))?;
            Ok(ExitCode::from(signals.exit_status()))
        }
    }
}

/// The preset for the family and data (or a configuration file), then the flags.
fn resolve(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let mut c = match (&args.config, args.family) {
        (Some(file), target) => recipe_file(file, target, args.dataset.as_ref())?,
        (None, Some(target)) => {
            let preset = target.preset().context("the classifier has no GAN recipe")?;
            let data = args.dataset.clone().unwrap_or(DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist)));
            TrainConfig::from_preset(preset, data)
        }
        (None, None) => bail!("name a preset (gan, gan-seed, dcgan, wgan, wgan-gp, wgan-gp-64) or give --config FILE"),
    };
    if let Some(n) = args.epochs {
        (c.epochs, c.iters) = (Some(n), None);
    }
    if let Some(n) = args.iters {
        (c.epochs, c.iters) = (None, Some(n));
    }
    c.batch_size = args.batch_size.unwrap_or(c.batch_size);
    c.seed = args.seed.unwrap_or(c.seed);
    if let DataSource::Toy(toy) = &c.data {
        let given = [(args.source.image_size.is_some(), "--image-size"), (args.source.grayscale, "--grayscale")];
        if let Some(flag) = first_given(&given) {
            bail!("{flag} applies to images; {} is 2-D points", toy.name());
        }
    }
    // An image folder is recorded by its absolute path, so that the run resumes and is
    // evaluated from any working directory (a relative one was read from wherever the
    // command ran). One that does not exist is left for the loader to name.
    if let DataSource::Images(DatasetSpec::Folder(path)) = &mut c.data {
        if let Ok(absolute) = std::fs::canonicalize(&path) {
            *path = absolute;
        }
    }
    c.image_size = args.source.image_size.or(c.image_size);
    c.tensorboard &= !args.no_tensorboard;
    apply_recipe(&mut c, &args.recipe)?;
    c.validate()?;
    Ok(c)
}

/// `--config FILE` as the recipe, on `data` where given. The file is the recipe: a preset
/// named beside it would be ignored, so it may only repeat the file's family; and images
/// and 2-D points take other networks, noise and schedules, so `data` must be of the
/// file's kind (a toy recipe on images failed on whichever setting came first).
fn recipe_file(file: &Path, target: Option<TrainTarget>, data: Option<&DataSource>) -> anyhow::Result<TrainConfig> {
    let text =
        ganzoo_train::config::read_config_text(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut c = TrainConfig::from_toml(&text).with_context(|| format!("{}", file.display()))?;
    let file_preset = Preset::of(c.family);
    if let Some(named) = target.and_then(TrainTarget::preset).filter(|&p| p != file_preset) {
        bail!(
            "{} trains {}, and with --config the file is the recipe: leave out `{}` (or name {})",
            file.display(),
            c.family.name(),
            named.name(),
            file_preset.name()
        );
    }
    if let Some(data) = data {
        let toy = |d: &DataSource| matches!(d, DataSource::Toy(_));
        if toy(&c.data) != toy(data) {
            let kind = |d: &DataSource| if toy(d) { "2-D points" } else { "images" };
            bail!(
                "{} is a recipe for {} ({}), and {data} is {}: start from a preset instead (train {} --dataset {data})",
                file.display(),
                kind(&c.data),
                c.data,
                kind(data),
                file_preset.name()
            );
        }
        c.data = data.clone();
    }
    Ok(c)
}

fn apply_recipe(c: &mut TrainConfig, r: &RecipeArgs) -> anyhow::Result<()> {
    for (opt, lr) in [(&mut c.optimizer_g, r.lr_g), (&mut c.optimizer_d, r.lr_d)] {
        match opt {
            Optimizer::Adam { lr: l, beta1, beta2 } => {
                *l = lr.unwrap_or(*l);
                *beta1 = r.beta1.unwrap_or(*beta1);
                *beta2 = r.beta2.unwrap_or(*beta2);
            }
            Optimizer::RmsProp { lr: l } | Optimizer::RmsPropTf { lr: l } => {
                if r.beta1.is_some() || r.beta2.is_some() {
                    bail!("--beta1/--beta2 apply to Adam; this recipe uses RMSprop");
                }
                *l = lr.unwrap_or(*l);
            }
        }
    }
    if let Some(d) = r.lr_decay {
        c.lr_decay = match d {
            LrDecayArg::Constant => LrDecay::Constant,
            LrDecayArg::Linear => LrDecay::Linear,
        };
    }
    if let Some(n) = r.n_critic {
        c.schedule.n_critic = n;
    }
    match (&mut c.objective, r.clip, r.lambda, r.generator_cost) {
        (Objective::Wasserstein { constraint: Constraint::Clip { value, .. } }, clip, None, None) => {
            *value = clip.unwrap_or(*value)
        }
        (Objective::Wasserstein { constraint: Constraint::Penalty { lambda } }, None, l, None) => {
            *lambda = l.unwrap_or(*lambda)
        }
        (Objective::CrossEntropy { generator_cost, .. }, None, None, cost) => {
            *generator_cost = cost.map(cost_of).unwrap_or(*generator_cost)
        }
        _ => bail!("--clip is for wgan, --lambda for wgan-gp, --generator-cost for gan and dcgan"),
    }
    let targets = [(r.real_label.is_some(), "--real-label"), (r.label_noise.is_some(), "--label-noise")];
    if let (Objective::Wasserstein { .. }, Some(flag)) = (&c.objective, first_given(&targets)) {
        bail!("{flag} sets the targets of a cross-entropy discriminator (gan, dcgan); a Wasserstein critic has none");
    }
    c.latent = r.latent.unwrap_or(c.latent);
    c.ngf = r.ngf.unwrap_or(c.ngf);
    c.ndf = r.ndf.unwrap_or(c.ndf);
    if let Some(a) = r.arch {
        c.set_arch(match a {
            ArchArg::SeedMlp => Arch::SeedMlp,
            ArchArg::WganMlp => Arch::WganMlp,
            ArchArg::ToyMlp => Arch::ToyMlp,
            ArchArg::Dcgan => Arch::Dcgan,
        });
    }
    // The MLPs (seed, WassersteinGAN, gan_toy.py) have no width or normalisation to set:
    // these flags were ignored there while config.toml recorded them.
    let dcgan_only = [
        (r.ngf.is_some(), "--ngf"),
        (r.ndf.is_some(), "--ndf"),
        (r.generator_norm.is_some(), "--generator-norm"),
        (r.critic_norm.is_some(), "--critic-norm"),
    ];
    if let (false, Some(flag)) = (c.arch == Arch::Dcgan, first_given(&dcgan_only)) {
        bail!("{flag} applies to DCGAN networks; this run trains MLPs, which have no widths or normalisation to set (--arch dcgan trains DCGAN networks)");
    }
    c.generator_norm = r.generator_norm.map(norm_of).unwrap_or(c.generator_norm);
    c.critic_norm = r.critic_norm.map(norm_of).unwrap_or(c.critic_norm);
    let t = &mut c.tricks;
    t.real_label = r.real_label.unwrap_or(t.real_label);
    t.label_noise = r.label_noise.unwrap_or(t.label_noise);
    t.instance_noise = r.instance_noise.unwrap_or(t.instance_noise);
    c.log_every = r.log_every.unwrap_or(c.log_every);
    c.sample_every = r.sample_every.unwrap_or(c.sample_every);
    c.checkpoint_every = r.checkpoint_every.unwrap_or(c.checkpoint_every);
    c.keep_checkpoints = r.keep_checkpoints.unwrap_or(c.keep_checkpoints);
    c.eval_every = r.eval_every.or(c.eval_every);
    c.precision = r.precision.map(Into::into).unwrap_or(c.precision);
    Ok(())
}

/// `source` set to read a run's images as it was trained on them: at its image size, and
/// a folder in gray where the run has one channel (a folder is read as RGB unless
/// `--grayscale`; config.toml records the channels, not the flag).
pub fn read_as_trained(config: &TrainConfig, source: &SourceArgs) -> SourceArgs {
    let folder = matches!(&config.data, DataSource::Images(DatasetSpec::Folder(_)));
    SourceArgs {
        image_size: config.image_size.or(source.image_size),
        grayscale: source.grayscale || (folder && config.channels == Some(1)),
        ..source.clone()
    }
}

/// The training images (`None` for toys), what `--eval-every` measures them with (the
/// classifier on the run's `device`, where its samples are made), and their record
/// (`RUN/data.json`).
fn load_images(
    config: &TrainConfig,
    source: &SourceArgs,
    limit: MemoryLimit,
    device: &Device,
) -> anyhow::Result<(Option<ImageDataset>, Option<ImageEval>, Option<DataRecord>)> {
    match &config.data {
        DataSource::Toy(_) => Ok((None, None, None)),
        DataSource::Images(spec) => {
            let source = read_as_trained(config, source);
            let classifier = config.eval_every.map(|_| shipped_classifier(spec, device)).transpose()?;
            let (splits, dir) = load_located(spec, &source, limit)?;
            let record = DataRecord::of(&splits.train, dir.as_deref());
            let eval = match classifier {
                Some(c) => Some(image_eval(c, spec, splits.test, &source)?),
                None => None,
            };
            Ok((Some(splits.train), eval, Some(record)))
        }
    }
}

/// `source` with the folder a run's data was read from (`RUN/data.json`) where no
/// `--data-dir` is given and that folder still exists: a run resumes and is evaluated on
/// the data it trained on without being told again where it is.
pub fn with_recorded_data_dir(source: &SourceArgs, record: Option<&DataRecord>) -> SourceArgs {
    let recorded = record.and_then(DataRecord::existing_dir).map(Path::to_path_buf);
    SourceArgs { data_dir: source.data_dir.clone().or(recorded), ..source.clone() }
}

/// The domain classifier `--eval-every` scores samples of `spec` with, on `device`.
fn shipped_classifier(spec: &DatasetSpec, device: &Device) -> anyhow::Result<Classifier> {
    let dataset = spec.to_string();
    let Some((weights, card)) = ganzoo_eval::classifier::shipped(&dataset) else {
        bail!("--eval-every on {dataset} needs a domain classifier, and one ships only for mnist, fashion-mnist and cifar10")
    };
    Ok(Classifier::load(weights, card, device)?)
}

/// `classifier` and its features of the test split (cached next to the data): what
/// `--eval-every` scores an image run's samples against.
fn image_eval(
    classifier: Classifier,
    spec: &DatasetSpec,
    test: Option<ImageDataset>,
    source: &SourceArgs,
) -> anyhow::Result<ImageEval> {
    let dataset = spec.to_string();
    let test = test.with_context(|| format!("--eval-every compares with the test split, and {dataset} has none"))?;
    let (s, c) = (test.shape(), &classifier.card);
    if (s.channels, s.height, s.width) != (c.channels, c.image_size, c.image_size) {
        bail!(
            "--eval-every scores {dataset} with its classifier, which takes {}×{}×{} images; this run makes {}×{}×{} \
             (score it afterwards with `ganzoo eval --run RUN --features inception`)",
            c.channels,
            c.image_size,
            c.image_size,
            s.channels,
            s.height,
            s.width
        );
    }
    let net = FeatureExtractor::Classifier(Box::new(classifier));
    let real = real_features(&net, &test, &feature_cache_dirs(spec, source), |_, _| {})?;
    Ok(ImageEval { net, real })
}

fn data_slug(data: &DataSource) -> String {
    match data {
        DataSource::Images(DatasetSpec::Folder(_)) => "folder".into(),
        other => other.to_string().replace([':', '/'], "-"),
    }
}

fn norm_of(n: NormArg) -> NormName {
    match n {
        NormArg::Batch => NormName::Batch,
        NormArg::Layer => NormName::Layer,
        NormArg::LayerChannel => NormName::LayerChannel,
        NormArg::None => NormName::None,
    }
}

fn cost_of(c: CostArg) -> GeneratorCostName {
    match c {
        CostArg::Minimax => GeneratorCostName::Minimax,
        CostArg::NonSaturating => GeneratorCostName::NonSaturating,
        CostArg::MaximumLikelihood => GeneratorCostName::MaximumLikelihood,
    }
}
