//! `ganzoo train classifier --dataset D`: the domain classifier image metrics are
//! measured with, trained on the data set's labels and saved with its test accuracy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::Device;
use ganzoo_data::DatasetSpec;
use ganzoo_eval::classifier::{Classifier, ClassifierCard};
use ganzoo_train::budget::MemoryLimit;
use ganzoo_train::device::DeviceSpec;
use ganzoo_train::DataSource;

use crate::cli::TrainArgs;
use crate::commands::data::load;
use crate::commands::first_given;
use crate::output::emit;

/// Epochs when `--epochs` is not given.
const EPOCHS: u64 = 15;

pub fn train(args: &TrainArgs, limit: MemoryLimit) -> anyhow::Result<()> {
    let spec = match &args.dataset {
        Some(DataSource::Images(spec @ DatasetSpec::Known(_))) => spec.clone(),
        None => bail!("name the data set: train classifier --dataset mnist|fashion-mnist|cifar10"),
        Some(other) => bail!("the classifier trains on mnist, fashion-mnist or cifar10, not {other}"),
    };
    refuse_gan_flags(args)?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(format!("classifier-{spec}")));
    check_stem(&out, args.overwrite)?;
    let splits = load(&spec, &args.source, limit)?;
    let test = splits.test.with_context(|| format!("{spec} has no test split to measure the classifier on"))?;
    let shape = splits.train.shape();
    let (seed, epochs) = (args.seed.unwrap_or(0), args.epochs.unwrap_or(EPOCHS));
    let card = ClassifierCard {
        dataset: spec.to_string(),
        channels: shape.channels,
        image_size: shape.height,
        width: 32,
        classes: splits.train.class_names().len(),
        seed,
        epochs,
        test_accuracy: None,
        command: format!("ganzoo train classifier --dataset {spec} --seed {seed} --epochs {epochs}"),
    };
    let mut classifier = Classifier::new(card, &Device::Cpu)?;
    let accuracy = classifier.fit(splits.train, &test, epochs, |epoch, acc| {
        let _ = emit(&format!("epoch {epoch}: test accuracy {:.2} %\n", 100.0 * acc));
    })?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    classifier.save(&out)?;
    emit(&format!("test accuracy {:.2} %; wrote {}.safetensors and .json\n", 100.0 * accuracy, out.display()))
}

/// Refuses the flags of GAN training, which the classifier's fixed recipe (Adam, whole
/// epochs, the data set's own size, the CPU) would otherwise silently ignore.
fn refuse_gan_flags(args: &TrainArgs) -> anyhow::Result<()> {
    let given = [
        (args.iters.is_some(), "--iters"),
        (args.batch_size.is_some(), "--batch-size"),
        (args.device != DeviceSpec::Cpu, "--device"),
        (args.config.is_some(), "--config"),
        (args.no_tensorboard, "--no-tensorboard"),
        (args.source.image_size.is_some(), "--image-size"),
        (args.print_config, "--print-config"),
    ];
    let (recipe, schedule) = (args.recipe.recipe_given(), args.recipe.schedule_given());
    if let Some(flag) = first_given(&[&recipe[..], &schedule, &given].concat()) {
        bail!(
            "{flag} applies to GAN training; train classifier takes --dataset, --epochs, --seed, --out, --overwrite \
             and the data options (--data-dir, --no-download, --mirror)"
        );
    }
    Ok(())
}

/// Refuses, before any data is read or any epoch trained, an `--out` that cannot take
/// `STEM.safetensors` and `STEM.json`: a stem with no file name (`.`, `..`, `/`) or
/// naming a folder, a folder where either file goes, a file where a folder goes,
/// a file a run writes itself (`ending.json`, `data.json` in a run), either file existing
/// without `--overwrite`, or either's `.partial` there (before
/// minutes of training, not after).
fn check_stem(stem: &Path, overwrite: bool) -> anyhow::Result<()> {
    let example = "e.g. runs/classifier-mnist";
    if stem.file_name().is_none() || stem.is_dir() {
        bail!(
            "{}: --out names the stem of the two files to write (STEM.safetensors, STEM.json; {example}), not a folder",
            stem.display()
        );
    }
    for file in [stem.with_extension("safetensors"), stem.with_extension("json")] {
        if file.is_dir() {
            bail!("{} is a folder: --out names files (--overwrite replaces files only)", file.display());
        }
        crate::commands::data::refuse_run_file(&file)?;
        if std::fs::symlink_metadata(&file).is_ok() && !overwrite {
            bail!("{} exists: pass --overwrite to replace it, or another --out", file.display());
        }
        ganzoo_data::partial::check_free(&file)?;
    }
    // The nearest folder that exists is where the files' folders will be created.
    if let Some(above) = stem.ancestors().skip(1).find(|p| !p.as_os_str().is_empty() && p.exists()) {
        if !above.is_dir() {
            bail!("{}: {} is not a folder", stem.display(), above.display());
        }
        if !writable(above) {
            bail!("{}: cannot write in {} (permission denied)", stem.display(), above.display());
        }
    }
    Ok(())
}

/// Whether this process may create entries in `folder` (`access(2)` with `W_OK`).
fn writable(folder: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(folder.as_os_str().as_bytes()) else { return false };
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}
