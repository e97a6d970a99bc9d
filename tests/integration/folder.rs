//! Image folders: the real CIFAR-10 JPEG sample, resize and crop, and bad folders.

use std::path::Path;

use ganzoo::data::folder::load_image_folder;
use ganzoo::data::{DataError, ImageFolderConfig};

use crate::common::shared_data;

#[test]
#[ignore = "reads real data (../shared/data, dataset-fashion-mnist): run with --include-ignored"]
fn real_jpeg_class_folders_load_resized() {
    let dir = shared_data().join("cifar10-jpg-sample");
    let data = load_image_folder(&dir, ImageFolderConfig::new(16, false)).unwrap();
    let stats = data.stats();
    assert_eq!(stats.count, 500);
    assert_eq!(stats.class_histogram, vec![50; 10]);
    assert_eq!(data.class_names()[0], "airplane");
    assert_eq!(data.class_names()[9], "truck");
    assert_eq!((stats.shape.channels, stats.shape.height, stats.shape.width), (3, 16, 16));
    let gray = load_image_folder(&dir.join("cat"), ImageFolderConfig::new(32, true)).unwrap();
    assert_eq!((gray.len(), gray.shape().channels, gray.class_names().len()), (50, 1, 1));
}

fn write_png(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y))).save(path).unwrap();
}

#[test]
fn wide_image_is_centre_cropped_and_planes_are_chw() {
    let dir = tempfile::tempdir().unwrap();
    // 4×2, already at the target height: no resampling, the crop keeps columns 1 and 2.
    let cols = [10u8, 50, 90, 200];
    write_png(&dir.path().join("a.png"), 4, 2, |x, _| [cols[x as usize], 1, 2]);
    let data = load_image_folder(dir.path(), ImageFolderConfig::new(2, false)).unwrap();
    assert_eq!(data.image(0), &[50, 90, 50, 90, 1, 1, 1, 1, 2, 2, 2, 2]);
    // A uniform image stays uniform whatever the scaling.
    write_png(&dir.path().join("b.png"), 7, 13, |_, _| [30, 60, 90]);
    let data = load_image_folder(dir.path(), ImageFolderConfig::new(5, false)).unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(&data.image(1)[..25], &[30; 25]);
    assert_eq!(&data.image(1)[50..], &[90; 25]);
}

#[test]
fn non_image_file_is_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 2, 2, |_, _| [0, 0, 0]);
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let err = load_image_folder(dir.path(), ImageFolderConfig::default()).unwrap_err();
    assert!(matches!(err, DataError::NotAnImage { .. }) && err.to_string().contains("notes.txt"), "{err}");
}

#[test]
fn corrupt_image_is_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = load_image_folder(dir.path(), ImageFolderConfig::default()).unwrap_err();
    assert!(matches!(err, DataError::Decode { .. }) && err.to_string().contains("broken.png"), "{err}");
}

#[test]
fn empty_missing_and_mixed_folders_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = ImageFolderConfig::default();
    assert!(matches!(load_image_folder(dir.path(), config).unwrap_err(), DataError::Empty { .. }));
    let missing = dir.path().join("nope");
    let err = load_image_folder(&missing, config).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("nope"), "{err}");
    std::fs::create_dir(dir.path().join("cats")).unwrap();
    assert!(matches!(load_image_folder(dir.path(), config).unwrap_err(), DataError::Empty { .. }));
    write_png(&dir.path().join("loose.png"), 2, 2, |_, _| [0, 0, 0]);
    let err = load_image_folder(dir.path(), config).unwrap_err();
    assert!(matches!(err, DataError::BadLayout { .. }) && err.to_string().contains("loose.png"), "{err}");
    let bad = ImageFolderConfig::new(0, false);
    assert!(matches!(load_image_folder(dir.path(), bad).unwrap_err(), DataError::InvalidArgument(_)));
}
