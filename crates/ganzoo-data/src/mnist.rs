//! MNIST and Fashion-MNIST: a pair of IDX files per split under standard names.
//!
//! Accepted names per split (`train`, `t10k`): `{split}-images-idx3-ubyte[.gz]`
//! and `{split}-labels-idx1-ubyte[.gz]`, or the same with a `.` before `idx`.

use std::path::{Path, PathBuf};

use crate::idx::IdxReader;
use crate::{DataError, ImageDataset, ImageShape, Result, Splits};

/// The file names MNIST-format data may be stored under for one split.
pub fn candidate_names(split: &str, kind: &str) -> Vec<String> {
    let idx = if kind == "images" { "idx3" } else { "idx1" };
    let mut names = Vec::new();
    for sep in ['-', '.'] {
        for ext in [".gz", ""] {
            names.push(format!("{split}-{kind}{sep}{idx}-ubyte{ext}"));
        }
    }
    names
}

/// First existing file among the accepted names, if any.
pub fn find_split_file(dir: &Path, split: &str, kind: &str) -> Option<PathBuf> {
    candidate_names(split, kind).into_iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// True when `dir` holds at least the training images and labels.
pub fn looks_like_mnist_dir(dir: &Path) -> bool {
    find_split_file(dir, "train", "images").is_some() && find_split_file(dir, "train", "labels").is_some()
}

/// Loads one split from an image file and a label file, checking that they agree.
pub fn load_idx_pair(images: &Path, labels: &Path, class_names: &[&str]) -> Result<ImageDataset> {
    let img = IdxReader::open(images)?.images()?;
    let lab = IdxReader::open(labels)?.labels()?;
    if img.count != lab.len() {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            n_images: img.count,
            labels: labels.to_path_buf(),
            n_labels: lab.len(),
        });
    }
    let max = (class_names.len() - 1) as u8;
    if let Some((index, &label)) = lab.iter().enumerate().find(|(_, &l)| l > max) {
        return Err(DataError::BadLabel { path: labels.to_path_buf(), index, label, max });
    }
    let shape = ImageShape { channels: 1, height: img.rows, width: img.cols };
    let names = class_names.iter().map(|s| s.to_string()).collect();
    ImageDataset::new(img.pixels, lab.into_iter().map(u32::from).collect(), shape, names)
}

/// Loads `train` (required) and `t10k` (if present) from `dir`.
pub fn load_mnist_dir(dir: &Path, class_names: &[&str]) -> Result<Splits> {
    let train = load_split(dir, "train", class_names)?.ok_or_else(|| DataError::BadLayout {
        path: dir.to_path_buf(),
        detail: format!(
            "no training files; expected {} and {}",
            candidate_names("train", "images")[0],
            candidate_names("train", "labels")[0]
        ),
    })?;
    let test = load_split(dir, "t10k", class_names)?;
    Ok(Splits { train, test })
}

fn load_split(dir: &Path, split: &str, class_names: &[&str]) -> Result<Option<ImageDataset>> {
    match (find_split_file(dir, split, "images"), find_split_file(dir, split, "labels")) {
        (Some(i), Some(l)) => load_idx_pair(&i, &l, class_names).map(Some),
        (None, None) => Ok(None),
        (Some(i), None) => Err(DataError::BadLayout {
            path: i,
            detail: format!("has no label file beside it ({})", candidate_names(split, "labels")[0]),
        }),
        (None, Some(l)) => Err(DataError::BadLayout {
            path: l,
            detail: format!("has no image file beside it ({})", candidate_names(split, "images")[0]),
        }),
    }
}
