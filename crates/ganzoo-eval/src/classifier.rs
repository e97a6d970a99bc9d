//! A domain classifier as the feature extractor of image metrics (FID, KID and the
//! Inception-style score computed in a small CNN's features instead of InceptionV3's, as
//! is common for MNIST-like data): built from ganzoo's own layers and kernels.
//!
//! Network (`S` = 28 or 32, `w` = width): conv 3×3 `C→w` + ReLU, conv 4×4/2 `w→2w` + ReLU,
//! conv 4×4/2 `2w→4w` + ReLU, flatten, linear `4w·(S/4)²→128` + ReLU (the **features**),
//! linear `128→classes` (logits). He-normal weights, zero biases. Trained with Adam on
//! cross-entropy; saved as safetensors beside a JSON card (config, data, seed, accuracy).

use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Init, Optimizer, ParamsAdamW, VarBuilder};
use ganzoo_data::{Batcher, BatcherConfig, ImageDataset};
use ganzoo_models::conv::{Conv2d, ConvSpec};
use ganzoo_models::linear::Linear;
use ganzoo_models::{Activation, Layer, Network, ParamStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{EvalError, Result};

/// Width of the feature layer.
pub const FEATURES: usize = 128;

/// The classifier's architecture and what it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierCard {
    /// The data set's name (`mnist`, `fashion-mnist`, `cifar10`).
    pub dataset: String,
    pub channels: usize,
    pub image_size: usize,
    pub width: usize,
    pub classes: usize,
    pub seed: u64,
    pub epochs: u64,
    /// Accuracy on the data set's test split.
    pub test_accuracy: Option<f64>,
    /// The command that made it.
    pub command: String,
}

/// A classifier's network and weights.
pub struct Classifier {
    pub card: ClassifierCard,
    store: ParamStore,
    net: Network,
    device: Device,
}

/// The classifier that ships for `dataset` (weights, card), made by the command in its
/// card — MNIST on the 10,000-digit training subset in `../shared/data`, Fashion-MNIST on
/// Debian's full 60,000 images, CIFAR-10 on the 10,000 images of `data_batch_1.bin` in
/// `../shared/data` — kept in `crates/ganzoo-eval/classifiers/` and compiled into the
/// binary, so evaluation needs nothing fetched.
pub fn shipped(dataset: &str) -> Option<(&'static [u8], &'static str)> {
    match dataset {
        "mnist" => {
            Some((include_bytes!("../classifiers/mnist.safetensors"), include_str!("../classifiers/mnist.json")))
        }
        "fashion-mnist" => Some((
            include_bytes!("../classifiers/fashion-mnist.safetensors"),
            include_str!("../classifiers/fashion-mnist.json"),
        )),
        "cifar10" => {
            Some((include_bytes!("../classifiers/cifar10.safetensors"), include_str!("../classifiers/cifar10.json")))
        }
        _ => None,
    }
}

/// The widest classifier a card may describe (ganzoo trains width 32).
const MAX_WIDTH: usize = 512;
/// The most classes a card may describe.
const MAX_CLASSES: usize = 1000;
/// The most bytes a classifier's card and weights files may have (ganzoo's: 1 KiB and
/// 2.4 MB at most).
const CARD_BYTES: u64 = 1 << 20;
const WEIGHTS_BYTES: u64 = 256 << 20;

/// Index of the feature layer (fc1's ReLU) in the network.
const FEATURE_LAYER: usize = 8;

impl Classifier {
    /// A freshly initialised classifier.
    pub fn new(card: ClassifierCard, device: &Device) -> Result<Self> {
        // Bounded before anything is allocated: a card is a file a user may have edited.
        let fits = [28, 32].contains(&card.image_size)
            && [1, 3].contains(&card.channels)
            && (1..=MAX_WIDTH).contains(&card.width)
            && (2..=MAX_CLASSES).contains(&card.classes);
        if !fits {
            return Err(EvalError::Weights(format!(
                "unsupported classifier: image size {} (28 or 32), {} channels (1 or 3), width {} (1 to {MAX_WIDTH}), {} classes (2 to {MAX_CLASSES})",
                card.image_size, card.channels, card.width, card.classes
            )));
        }
        let store = ParamStore::new(card.seed);
        let net = build(&card, store.builder(DType::F32, device)).map_err(model_err)?;
        Ok(Self { card, store, net, device: device.clone() })
    }

    /// Loads weights written by [`save`](Self::save) (`stem.safetensors` + `stem.json`).
    pub fn load(weights: &[u8], card: &str, device: &Device) -> Result<Self> {
        let card: ClassifierCard =
            serde_json::from_str(card).map_err(|e| EvalError::Weights(format!("bad classifier card: {e}")))?;
        let c = Self::new(card, device)?;
        let tensors = candle_core::safetensors::load_buffer(weights, device).map_err(candle_err)?;
        for (name, var) in c.store.named() {
            let t = tensors.get(&name).ok_or_else(|| EvalError::Weights(format!("classifier weights lack {name}")))?;
            if t.dims() != var.dims() {
                return Err(EvalError::Weights(format!("classifier weight {name} has shape {:?}", t.dims())));
            }
            var.set(&t.to_dtype(DType::F32).map_err(candle_err)?).map_err(candle_err)?;
        }
        Ok(c)
    }

    /// Loads `stem.safetensors` and `stem.json`.
    pub fn load_files(stem: &Path, device: &Device) -> Result<Self> {
        let read = |ext: &str, max: u64, what: &str| {
            let path = stem.with_extension(ext);
            ganzoo_data::regular_file::read(&path, max, what)
                .map_err(|e| EvalError::File { path, detail: e.to_string() })
        };
        let card = read("json", CARD_BYTES, "classifier card")?;
        let in_files = |e: EvalError| EvalError::File { path: stem.to_path_buf(), detail: e.to_string() };
        let card =
            String::from_utf8(card).map_err(|e| in_files(EvalError::Weights(format!("classifier card: {e}"))))?;
        Self::load(&read("safetensors", WEIGHTS_BYTES, "classifier weights")?, &card, device).map_err(in_files)
    }

    /// Writes `stem.safetensors` (weights in f16: half the size, and features within
    /// 1e-3 of the f32 ones) and `stem.json`, each whole (temporary name, then rename).
    pub fn save(&self, stem: &Path) -> Result<()> {
        let tensors: std::collections::HashMap<String, Tensor> = self
            .store
            .named()
            .into_iter()
            .map(|(n, v)| v.as_tensor().to_dtype(DType::F16).map(|t| (n, t)))
            .collect::<candle_core::Result<_>>()
            .map_err(candle_err)?;
        let card = serde_json::to_string_pretty(&self.card).map_err(|e| EvalError::Numeric(e.to_string()))?;
        let failed = |path: &Path, e: String| EvalError::File { path: path.to_path_buf(), detail: e };
        let weights = stem.with_extension("safetensors");
        let bytes = ganzoo_data::safetensors_file::to_bytes(&tensors).map_err(|e| failed(&weights, e.to_string()))?;
        crate::files::write_whole(&weights, &bytes)?;
        crate::files::write_whole(&stem.with_extension("json"), card.as_bytes())
    }

    /// The weights, sorted by name.
    pub fn parameters(&self) -> Vec<Tensor> {
        let mut named = self.store.named();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named.into_iter().map(|(_, v)| v.as_tensor().clone()).collect()
    }

    /// Logits `(n, classes)` and features `(n, 128)` of images `(n, C, S, S)` in [−1, 1]
    /// on any device, computed on the classifier's.
    pub fn logits_and_features(&self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, c, h, w) = images.dims4().map_err(candle_err)?;
        if (c, h, w) != (self.card.channels, self.card.image_size, self.card.image_size) {
            return Err(EvalError::Samples(format!(
                "the {} classifier takes {}×{}×{} images, got {c}×{h}×{w}",
                self.card.dataset, self.card.channels, self.card.image_size, self.card.image_size
            )));
        }
        let images = images.to_device(&self.device).and_then(|t| t.to_dtype(DType::F32)).map_err(candle_err)?;
        let outs = self.net.trace(&images, false).map_err(model_err)?;
        let logits = outs.last().cloned().ok_or_else(|| EvalError::Numeric("empty classifier".into()))?;
        Ok((logits, outs[FEATURE_LAYER].clone()))
    }

    /// Trains on `train` for `epochs` (Adam, batch 128 or the whole set if smaller, lr 1e-3 and 1e-4 for the last third;
    /// each image shifted by up to 2 pixels either way and, if in colour, mirrored left to
    /// right half the time, seeded); reports the accuracy on
    /// `test` after each epoch and returns the last.
    pub fn fit(
        &mut self,
        train: ImageDataset,
        test: &ImageDataset,
        epochs: u64,
        mut progress: impl FnMut(u64, f64),
    ) -> Result<f64> {
        let config = BatcherConfig { batch_size: 128.min(train.len().max(1)), drop_last: true, seed: self.card.seed };
        let batches = Batcher::new(train, config, self.device.clone()).map_err(data_err)?;
        let params = ParamsAdamW { lr: 1e-3, weight_decay: 0.0, ..Default::default() };
        let vars = self.store.trainable().into_iter().map(|(_, v)| v).collect();
        let mut opt = candle_nn::AdamW::new(vars, params).map_err(candle_err)?;
        let mut accuracy = 0.0;
        let mut rng = ChaCha8Rng::seed_from_u64(self.card.seed ^ 0xc1a5_51f1);
        for epoch in 0..epochs {
            if epoch == epochs - epochs / 3 {
                opt.set_learning_rate(1e-4);
            }
            for batch in batches.epoch(epoch) {
                let batch = batch.map_err(data_err)?;
                let images = augmented(&batch.images, &mut rng).map_err(candle_err)?;
                let logits = self.net.forward_t(&images, true).map_err(model_err)?;
                let loss = candle_nn::loss::cross_entropy(&logits, &batch.labels).map_err(candle_err)?;
                opt.backward_step(&loss).map_err(candle_err)?;
            }
            accuracy = self.accuracy(test)?;
            self.card.epochs = epoch + 1;
            progress(epoch + 1, accuracy);
        }
        self.card.test_accuracy = Some(accuracy);
        Ok(accuracy)
    }

    /// Share of `data` classified correctly.
    pub fn accuracy(&self, data: &ImageDataset) -> Result<f64> {
        let mut correct = 0usize;
        for ids in (0..data.len()).collect::<Vec<_>>().chunks(500) {
            let (images, labels) = data.gather(ids, &self.device).map_err(data_err)?;
            let (logits, _) = self.logits_and_features(&images)?;
            let predicted = logits.argmax(D::Minus1).map_err(candle_err)?;
            let hits = predicted.eq(&labels).map_err(candle_err)?.to_dtype(DType::F32).map_err(candle_err)?;
            correct += hits.sum_all().map_err(candle_err)?.to_scalar::<f32>().map_err(candle_err)? as usize;
        }
        Ok(correct as f64 / data.len().max(1) as f64)
    }
}

/// Largest shift of the training augmentation, in pixels.
const SHIFT: usize = 2;

/// Each image moved by up to [`SHIFT`] pixels along each axis, the border filled with −1
/// (the background of MNIST-like data in [−1, 1]). Colour images (natural scenes, as
/// CIFAR-10) are also mirrored left to right with probability ½, the usual CIFAR
/// augmentation; gray digits and clothes are not (a mirrored digit is another glyph), so
/// their draws, and the shipped MNIST classifiers' weights, are as before.
fn augmented(images: &Tensor, rng: &mut ChaCha8Rng) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = images.dims4()?;
    let padded = ((images + 1.0)?.pad_with_zeros(2, SHIFT, SHIFT)?.pad_with_zeros(3, SHIFT, SHIFT)? - 1.0)?;
    let reversed = Tensor::from_vec((0..w as u32).rev().collect::<Vec<_>>(), w, images.device())?;
    let moved: Vec<Tensor> = (0..n)
        .map(|i| {
            let (dy, dx) = (rng.random_range(0..=2 * SHIFT), rng.random_range(0..=2 * SHIFT));
            let image = padded.narrow(0, i, 1)?.narrow(2, dy, h)?.narrow(3, dx, w)?;
            match c == 3 && rng.random_bool(0.5) {
                true => image.contiguous()?.index_select(&reversed, 3),
                false => Ok(image),
            }
        })
        .collect::<candle_core::Result<_>>()?;
    Tensor::cat(&moved, 0)?.contiguous()
}

fn he(fan_in: usize) -> Init {
    Init::Randn { mean: 0.0, stdev: (2.0 / fan_in as f64).sqrt() }
}

fn build(card: &ClassifierCard, vb: VarBuilder) -> ganzoo_models::Result<Network> {
    let (c, w, s) = (card.channels, card.width, card.image_size);
    let conv = |cin: usize, cout: usize, k: usize, stride: usize, pad: usize| ConvSpec {
        cin,
        cout,
        kernel: k,
        stride,
        padding: pad,
        bias: true,
        init: he(cin * k * k),
    };
    let mut net = Network::new();
    for (i, spec) in [conv(c, w, 3, 1, 1), conv(w, 2 * w, 4, 2, 1), conv(2 * w, 4 * w, 4, 2, 1)].into_iter().enumerate()
    {
        let name = format!("conv{}", i + 1);
        net.push(name.clone(), Layer::Conv(Conv2d::new(spec, vb.pp(&name))?));
        net.push(format!("{name}.relu"), Layer::Act(Activation::Relu));
    }
    let flat = 4 * w * (s / 4) * (s / 4);
    net.push("flatten", Layer::Reshape(vec![flat]));
    net.push("fc1", Layer::Linear(Linear::new(flat, FEATURES, vb.pp("fc1"))?));
    net.push("fc1.relu", Layer::Act(Activation::Relu));
    net.push("fc2", Layer::Linear(Linear::new(FEATURES, card.classes, vb.pp("fc2"))?));
    Ok(net)
}

fn candle_err(e: candle_core::Error) -> EvalError {
    EvalError::Numeric(format!("candle: {e}"))
}

fn model_err(e: ganzoo_models::ModelError) -> EvalError {
    EvalError::Numeric(format!("model: {e}"))
}

fn data_err(e: ganzoo_data::DataError) -> EvalError {
    EvalError::Samples(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The augmented images against the draws replayed by hand: shift (border −1), then,
    /// for colour only, a mirror; gray images draw nothing but the two shifts.
    #[test]
    fn augmentation_shifts_every_image_and_mirrors_only_colour() {
        let (n, h, w) = (32, 5, 6);
        for c in [1, 3] {
            // Multiples of 1/128: exact through the padding's +1 and −1.
            let src: Vec<f32> = (0..n * c * h * w).map(|i| (i % 97) as f32 / 128.0).collect();
            let images = Tensor::from_vec(src.clone(), (n, c, h, w), &Device::Cpu).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let out: Vec<f32> = augmented(&images, &mut rng).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let mut replay = ChaCha8Rng::seed_from_u64(7);
            let mut mirrored = 0;
            for i in 0..n {
                let (dy, dx) = (replay.random_range(0..=2 * SHIFT), replay.random_range(0..=2 * SHIFT));
                let mirror = c == 3 && replay.random_bool(0.5);
                mirrored += usize::from(mirror);
                for (ch, y, x) in (0..c).flat_map(|ch| (0..h).flat_map(move |y| (0..w).map(move |x| (ch, y, x)))) {
                    let col = if mirror { w - 1 - x } else { x };
                    let (sy, sx) = ((y + dy).checked_sub(SHIFT), (col + dx).checked_sub(SHIFT));
                    let want = match (sy, sx) {
                        (Some(sy), Some(sx)) if sy < h && sx < w => src[((i * c + ch) * h + sy) * w + sx],
                        _ => -1.0,
                    };
                    assert_eq!(out[((i * c + ch) * h + y) * w + x], want, "c={c} image {i} ({ch}, {y}, {x})");
                }
            }
            // Both sides of the coin in colour; the generator left where the replay is.
            assert!(c == 1 || (4..n - 4).contains(&mirrored), "{mirrored} of {n} mirrored");
            assert_eq!(rng.random::<u64>(), replay.random::<u64>());
        }
    }
}
