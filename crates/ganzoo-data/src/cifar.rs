//! The CIFAR-10 binary version (Krizhevsky, "Learning Multiple Layers of Features
//! from Tiny Images", 2009).
//!
//! Each record is `<1 label byte><3072 pixel bytes>`: the red, green and blue
//! planes of a 32×32 image, each row-major — already CHW order.

use std::path::Path;

use crate::error::io_err;
use crate::{DataError, ImageDataset, ImageShape, Result, Splits};

const SIDE: usize = 32;
const RECORD: usize = 1 + 3 * SIDE * SIDE;

/// CIFAR-10's class names, used when `batches.meta.txt` is absent.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// True when `dir` holds at least one CIFAR-10 training batch.
pub fn looks_like_cifar_dir(dir: &Path) -> bool {
    dir.join("data_batch_1.bin").is_file()
}

/// Loads `data_batch_1..5.bin` (those present, at least one) and `test_batch.bin` (if present).
pub fn load_cifar10_dir(dir: &Path) -> Result<Splits> {
    let names = read_class_names(dir)?;
    let train_files: Vec<_> =
        (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).filter(|p| p.is_file()).collect();
    if train_files.is_empty() {
        return Err(DataError::BadLayout {
            path: dir.to_path_buf(),
            detail: "no CIFAR-10 training batch (data_batch_1.bin … data_batch_5.bin)".into(),
        });
    }
    let train = load_batches(&train_files, &names)?;
    let test_path = dir.join("test_batch.bin");
    let test = if test_path.is_file() { Some(load_batches(&[test_path], &names)?) } else { None };
    Ok(Splits { train, test })
}

/// Loads and concatenates binary batch files.
pub fn load_batches(files: &[impl AsRef<Path>], class_names: &[String]) -> Result<ImageDataset> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for file in files {
        let path = file.as_ref();
        // The length is checked before anything is read: a file of the wrong size is not loaded.
        let len = std::fs::metadata(path).map_err(io_err(path))?.len();
        if len == 0 || len % RECORD as u64 != 0 {
            return Err(DataError::Truncated {
                path: path.to_path_buf(),
                detail: format!("{len} bytes is not a whole number of {RECORD}-byte records"),
            });
        }
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        if bytes.len() as u64 != len {
            return Err(DataError::Truncated {
                path: path.to_path_buf(),
                detail: "the file changed while it was read".into(),
            });
        }
        for (index, record) in bytes.chunks_exact(RECORD).enumerate() {
            let label = record[0];
            if usize::from(label) >= class_names.len() {
                let max = (class_names.len() - 1) as u8;
                return Err(DataError::BadLabel { path: path.to_path_buf(), index, label, max });
            }
            labels.push(u32::from(label));
            pixels.extend_from_slice(&record[1..]);
        }
    }
    let shape = ImageShape { channels: 3, height: SIDE, width: SIDE };
    ImageDataset::new(pixels, labels, shape, class_names.to_vec())
}

fn read_class_names(dir: &Path) -> Result<Vec<String>> {
    let meta = dir.join("batches.meta.txt");
    if !meta.is_file() {
        return Ok(CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
    }
    let text = crate::regular_file::read_to_string(&meta, 1 << 16, "class-name list").map_err(io_err(&meta))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.len() != 10 {
        return Err(DataError::BadLayout {
            path: meta,
            detail: format!("expected 10 class names, found {}", names.len()),
        });
    }
    Ok(names)
}
