//! IDX reading of MNIST-format files (fixtures; real MNIST and Fashion-MNIST with
//! `--include-ignored`), and every malformed-file case.

use std::path::Path;

use ganzoo::data::idx::{write_idx_images, write_idx_labels};
use ganzoo::data::mnist::load_idx_pair;
use ganzoo::data::{DataError, DataLocator, KnownDataset};

use crate::common::{gunzip, gzip, mnist_root, shared_data};

const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

#[test]
#[ignore = "reads real data (../shared/data, dataset-fashion-mnist): run with --include-ignored"]
fn real_mnist_test_set_has_the_published_class_histogram() {
    let splits = KnownDataset::Mnist.load_from(&shared_data().join("mnist")).unwrap();
    let test = splits.test.expect("t10k files are present");
    let stats = test.stats();
    assert_eq!(stats.count, 10_000);
    assert_eq!(stats.class_histogram, vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    assert_eq!((stats.shape.channels, stats.shape.height, stats.shape.width), (1, 28, 28));
    assert_eq!((stats.min, stats.max), (0, 255));
    // The train subset holds 10,000 digits of the official training set.
    assert_eq!(splits.train.len(), 10_000);
    assert_eq!(splits.train.stats().class_histogram.iter().sum::<usize>(), 10_000);
}

#[test]
fn locator_finds_mnist_under_a_data_root() {
    let root = mnist_root(20);
    let locator = DataLocator::only(root.path());
    assert_eq!(locator.find(KnownDataset::Mnist), Some(root.path().join("mnist")));
    assert_eq!(locator.find(KnownDataset::FashionMnist), None);
}

#[test]
fn raw_and_gzipped_files_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let root = mnist_root(40);
    let src = root.path().join("mnist");
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let raw = gunzip(&std::fs::read(src.join(format!("{name}.gz"))).unwrap());
        std::fs::write(dir.path().join(name), raw).unwrap();
    }
    let raw =
        load_idx_pair(&dir.path().join("t10k-images-idx3-ubyte"), &dir.path().join("t10k-labels-idx1-ubyte"), &DIGITS)
            .unwrap();
    let gz =
        load_idx_pair(&src.join("t10k-images-idx3-ubyte.gz"), &src.join("t10k-labels-idx1-ubyte.gz"), &DIGITS).unwrap();
    assert_eq!(raw.pixels(), gz.pixels());
    assert_eq!(raw.labels(), gz.labels());
}

#[test]
#[ignore = "reads real data (../shared/data, dataset-fashion-mnist): run with --include-ignored"]
fn fashion_mnist_from_debian_is_complete() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    assert!(dir.is_dir(), "install it: apt-get install -y dataset-fashion-mnist");
    let locator = DataLocator::new(Some(tempfile::tempdir().unwrap().path().to_path_buf()));
    assert_eq!(locator.find(KnownDataset::FashionMnist).as_deref(), Some(dir));
    let splits = KnownDataset::FashionMnist.load_from(dir).unwrap();
    // Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert_eq!(splits.train.stats().class_histogram, vec![6000; 10]);
    assert_eq!(splits.test.unwrap().stats().class_histogram, vec![1000; 10]);
    assert_eq!(splits.train.class_names()[9], "Ankle boot");
}

/// Writes a 3-image, 2×2 IDX pair and returns the paths.
fn fixture(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (img, lab) = (dir.join("train-images-idx3-ubyte"), dir.join("train-labels-idx1-ubyte"));
    write_idx_images(&img, 3, 2, 2, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]).unwrap();
    write_idx_labels(&lab, &[7, 0, 9]).unwrap();
    (img, lab)
}

#[test]
fn a_small_fixture_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = fixture(dir.path());
    let data = load_idx_pair(&img, &lab, &DIGITS).unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data.image(2), &[8, 9, 10, 11]);
    assert_eq!(data.labels(), &[7, 0, 9]);
}

fn expect_err(img: &Path, lab: &Path) -> DataError {
    load_idx_pair(img, lab, &DIGITS).expect_err("malformed input must be an error")
}

#[test]
fn truncated_image_file_is_reported_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = fixture(dir.path());
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&img, &bytes[..bytes.len() - 3]).unwrap();
    let err = expect_err(&img, &lab);
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
    // A header cut short is truncated too.
    std::fs::write(&img, &bytes[..6]).unwrap();
    assert!(matches!(expect_err(&img, &lab), DataError::Truncated { .. }));
}

#[test]
fn wrong_magic_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = fixture(dir.path());
    // Labels where images are expected: magic 0x801 instead of 0x803.
    let err = expect_err(&lab, &img);
    match &err {
        DataError::BadMagic { found, expected, path, .. } => {
            assert_eq!((*found, *expected), (0x801, 0x803));
            assert!(path.ends_with("train-labels-idx1-ubyte"));
        }
        other => panic!("expected BadMagic, got {other}"),
    }
}

#[test]
fn wrong_dimensions_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = fixture(dir.path());
    write_idx_images(&img, 3, 0, 2, &[]).unwrap();
    assert!(matches!(expect_err(&img, &lab), DataError::BadDimensions { .. }));
    // More bytes than the header promises.
    write_idx_images(&img, 2, 2, 2, &[0; 12]).unwrap();
    let err = expect_err(&img, &lab);
    assert!(matches!(err, DataError::BadDimensions { .. }), "{err}");
}

#[test]
fn label_count_must_match_image_count() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = fixture(dir.path());
    write_idx_labels(&lab, &[1, 2]).unwrap();
    match expect_err(&img, &lab) {
        DataError::CountMismatch { n_images, n_labels, .. } => assert_eq!((n_images, n_labels), (3, 2)),
        other => panic!("expected CountMismatch, got {other}"),
    }
}

#[test]
fn out_of_range_label_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = fixture(dir.path());
    write_idx_labels(&lab, &[1, 12, 2]).unwrap();
    match expect_err(&img, &lab) {
        DataError::BadLabel { index, label, .. } => assert_eq!((index, label), (1, 12)),
        other => panic!("expected BadLabel, got {other}"),
    }
}

#[test]
fn damaged_gzip_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = fixture(dir.path());
    let gz = gzip(&std::fs::read(&img).unwrap());
    let bad = dir.path().join("bad.gz");
    std::fs::write(&bad, &gz[..gz.len() / 2]).unwrap();
    let err = expect_err(&bad, &lab);
    assert!(matches!(err, DataError::Truncated { .. }) && err.to_string().contains("bad.gz"), "{err}");
}

#[test]
fn missing_label_file_is_a_layout_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, lab) = fixture(dir.path());
    std::fs::remove_file(&lab).unwrap();
    let err = KnownDataset::Mnist.load_from(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::BadLayout { .. }), "{err}");
    assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
}

#[test]
fn unreadable_path_is_an_io_error_naming_it() {
    let missing = Path::new("/nonexistent/train-images-idx3-ubyte");
    let err = expect_err(missing, missing);
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("/nonexistent/"), "{err}");
}

#[test]
fn bytes_after_the_gzip_stream_are_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = fixture(dir.path());
    let mut gz = gzip(&std::fs::read(&img).unwrap());
    gz.extend_from_slice(b"trailing junk");
    let bad = dir.path().join("junk.gz");
    std::fs::write(&bad, &gz).unwrap();
    let err = expect_err(&bad, &lab);
    assert!(matches!(err, DataError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("13 bytes of something else follow the gzip stream"), "{err}");
}
