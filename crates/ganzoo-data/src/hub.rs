//! Loading MNIST, Fashion-MNIST and CIFAR-10 from the Hugging Face Hub through
//! `candle-datasets` (cargo feature `hub`; needs the network).
//!
//! candle-datasets returns `f32` pixels in [0, 1]; they are brought back to `u8`
//! so the result is the same [`ImageDataset`] the file loaders produce.

use candle_core::{DType, Tensor};

use crate::{ImageDataset, ImageShape, KnownDataset, Result, Splits};

/// Fetches `dataset` from the Hub (cached by hf-hub) and converts it.
pub fn load_from_hub(dataset: KnownDataset) -> Result<Splits> {
    use candle_datasets::vision;
    let ds = match dataset {
        KnownDataset::Mnist => vision::mnist::load()?,
        KnownDataset::FashionMnist => vision::fashion_mnist::load()?,
        KnownDataset::Cifar10 => vision::cifar::load()?,
    };
    let shape = match dataset {
        KnownDataset::Cifar10 => ImageShape { channels: 3, height: 32, width: 32 },
        _ => ImageShape { channels: 1, height: 28, width: 28 },
    };
    let names: Vec<String> = dataset.class_names().iter().map(|s| s.to_string()).collect();
    Ok(Splits {
        train: to_dataset(&ds.train_images, &ds.train_labels, shape, &names)?,
        test: Some(to_dataset(&ds.test_images, &ds.test_labels, shape, &names)?),
    })
}

fn to_dataset(images: &Tensor, labels: &Tensor, shape: ImageShape, names: &[String]) -> Result<ImageDataset> {
    let values: Vec<f32> = images.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let pixels = values.iter().map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect();
    let labels: Vec<u32> = labels.to_dtype(DType::U32)?.to_vec1()?;
    ImageDataset::new(pixels, labels, shape, names.to_vec())
}
