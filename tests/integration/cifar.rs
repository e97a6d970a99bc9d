//! CIFAR-10 binary batches: real data and malformed files.

use ganzoo::data::cifar::{load_batches, CIFAR10_CLASSES};
use ganzoo::data::{DataError, DataLocator, KnownDataset};

use crate::common::shared_data;

#[test]
#[ignore = "reads real data (../shared/data, dataset-fashion-mnist): run with --include-ignored"]
fn real_cifar10_batches_read_with_their_class_names() {
    let dir = shared_data().join("cifar-10-batches-bin");
    assert_eq!(DataLocator::only(shared_data()).find(KnownDataset::Cifar10), Some(dir.clone()));
    let splits = KnownDataset::Cifar10.load_from(&dir).unwrap();
    let train = splits.train;
    assert_eq!(train.len(), 10_000);
    assert_eq!(train.class_names(), CIFAR10_CLASSES.map(String::from));
    assert_eq!(train.shape().numel(), 3 * 32 * 32);
    // The official test batch has exactly 1,000 images per class.
    assert_eq!(splits.test.unwrap().stats().class_histogram, vec![1000; 10]);
    // Record 0 of data_batch_1.bin: label byte, then R, G, B planes — kept as CHW.
    let raw = std::fs::read(dir.join("data_batch_1.bin")).unwrap();
    assert_eq!(train.labels()[0], u32::from(raw[0]));
    assert_eq!(train.image(0), &raw[1..3073]);
    assert_eq!(train.image(1), &raw[3074..6146]);
}

fn write_records(path: &std::path::Path, labels: &[u8]) {
    let mut bytes = Vec::new();
    for &l in labels {
        bytes.push(l);
        bytes.extend(std::iter::repeat_n(l.wrapping_mul(20), 3072));
    }
    std::fs::write(path, bytes).unwrap();
}

fn names() -> Vec<String> {
    CIFAR10_CLASSES.map(String::from).to_vec()
}

#[test]
fn truncated_batch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    write_records(&path, &[1, 2]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = load_batches(&[&path], &names()).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }) && err.to_string().contains("data_batch_1.bin"), "{err}");
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(load_batches(&[&path], &names()).unwrap_err(), DataError::Truncated { .. }));
}

#[test]
fn label_out_of_range_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    write_records(&path, &[3, 10]);
    match load_batches(&[&path], &names()).unwrap_err() {
        DataError::BadLabel { index, label, .. } => assert_eq!((index, label), (1, 10)),
        other => panic!("expected BadLabel, got {other}"),
    }
}

#[test]
fn several_batches_concatenate_and_meta_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    write_records(&dir.path().join("data_batch_1.bin"), &[1, 2]);
    write_records(&dir.path().join("data_batch_2.bin"), &[3]);
    let splits = KnownDataset::Cifar10.load_from(dir.path()).unwrap();
    assert_eq!(splits.train.labels(), &[1, 2, 3]);
    assert_eq!(splits.train.image(2)[0], 60);
    assert!(splits.test.is_none());
    std::fs::write(dir.path().join("batches.meta.txt"), "cat\ndog\n").unwrap();
    let err = KnownDataset::Cifar10.load_from(dir.path()).unwrap_err();
    assert!(err.to_string().contains("batches.meta.txt") && err.to_string().contains("10 class names"), "{err}");
}

#[test]
fn folder_without_batches_is_a_layout_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!KnownDataset::Cifar10.is_present_in(dir.path()));
    assert!(matches!(KnownDataset::Cifar10.load_from(dir.path()).unwrap_err(), DataError::BadLayout { .. }));
}
