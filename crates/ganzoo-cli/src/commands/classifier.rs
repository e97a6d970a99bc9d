//! `ganzoo train classifier --dataset D`: the domain classifier image metrics are
//! measured with, trained on the data set's labels and saved with its test accuracy.

use std::path::PathBuf;

use anyhow::{bail, Context};
use candle_core::Device;
use ganzoo_data::DatasetSpec;
use ganzoo_eval::classifier::{Classifier, ClassifierCard};
use ganzoo_train::budget::MemoryLimit;
use ganzoo_train::DataSource;

use crate::cli::TrainArgs;
use crate::commands::data::load;
use crate::output::emit;

/// Epochs when `--epochs` is not given.
const EPOCHS: u64 = 15;

pub fn train(args: &TrainArgs, limit: MemoryLimit) -> anyhow::Result<()> {
    let spec = match &args.dataset {
        Some(DataSource::Images(spec @ DatasetSpec::Known(_))) => spec.clone(),
        None => bail!("name the data set: train classifier --dataset mnist|fashion-mnist|cifar10"),
        Some(other) => bail!("the classifier trains on mnist, fashion-mnist or cifar10, not {other}"),
    };
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(format!("classifier-{spec}")));
    for file in [out.with_extension("safetensors"), out.with_extension("json")] {
        if file.exists() && !args.overwrite {
            bail!("{} exists: pass --overwrite to replace it, or another --out", file.display());
        }
    }
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
