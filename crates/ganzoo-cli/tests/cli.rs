//! The `ganzoo` binary end to end: outputs, and bad input giving a clear error and
//! a non-zero exit code, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn ganzoo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganzoo")).args(args).env("RUST_BACKTRACE", "0").output().unwrap()
}

fn assert_clean_failure(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "a panic is never an answer: {err}");
    assert!(err.contains(needle), "stderr should mention {needle}: {err}");
}

#[test]
fn info_prints_the_class_histogram() {
    let data_dir = shared_data();
    let out = ganzoo(&["data", "info", "mnist", "--data-dir", data_dir.to_str().unwrap(), "--no-download"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("test: 10000 images of 1x28x28"), "{text}");
    assert!(text.contains("[980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]"), "{text}");
}

#[test]
fn sample_writes_an_n_by_2_npy() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("p.npy");
    let out =
        ganzoo(&["data", "sample", "8gaussians", "--n", "50", "--seed", "3", "--out", out_path.to_str().unwrap()]);
    assert!(out.status.success());
    let bytes = std::fs::read(&out_path).unwrap();
    let header = String::from_utf8_lossy(&bytes[10..128]);
    assert!(header.contains("'shape': (50, 2)"), "{header}");
    assert_eq!(bytes.len(), 128 + 50 * 2 * 4);
}

#[test]
fn grid_writes_an_8_by_8_png() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("g.png");
    let data_dir = shared_data();
    let out =
        ganzoo(&["data", "grid", "cifar10", "--data-dir", data_dir.to_str().unwrap(), "--out", png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&png).unwrap();
    // 8 images of 32 pixels and 9 gaps of 2.
    assert_eq!((img.width(), img.height()), (8 * 32 + 18, 8 * 32 + 18));
}

#[test]
fn bad_files_fail_cleanly_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = dir.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    std::fs::write(mnist.join("train-images-idx3-ubyte"), [0, 0, 8, 3, 0, 0]).unwrap();
    std::fs::write(mnist.join("train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    let out = ganzoo(&["data", "info", "mnist", "--data-dir", dir.path().to_str().unwrap()]);
    assert_clean_failure(&out, "train-images-idx3-ubyte: truncated");
    let folder = format!("folder:{}", dir.path().join("empty").display());
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    assert_clean_failure(&ganzoo(&["data", "info", &folder]), "no images found");
    assert_clean_failure(&ganzoo(&["data", "info", "imagenet"]), "unknown data set");
    assert_clean_failure(
        &ganzoo(&["data", "sample", "8gaussians", "--n", "0", "--out", "x.npy"]),
        "--n must be at least 1",
    );
    let unwritable = ganzoo(&["data", "sample", "swissroll", "--out", "/nonexistent/dir/p.npy"]);
    assert_clean_failure(&unwritable, "/nonexistent/dir/p.npy");
}

#[test]
fn missing_data_offline_says_what_to_put_where() {
    let dir = tempfile::tempdir().unwrap();
    let out = ganzoo(&[
        "data",
        "info",
        "cifar10",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--mirror",
        "http://127.0.0.1:9/",
    ]);
    assert_clean_failure(&out, "cifar-10-batches-bin");
    assert_clean_failure(&out, "test_batch.bin");
}

#[test]
fn models_summary_prints_pytorch_parameter_counts() {
    let out = ganzoo(&["models", "summary", "dcgan", "--image-size", "64", "--channels", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("total parameters: 3,576,704") && text.contains("total parameters: 2,765,568"), "{text}");
    assert!(text.contains("gen.block1.conv") && text.contains("[1, 512, 4, 4]"), "{text}");
    let gp = String::from_utf8_lossy(
        &ganzoo(&["models", "summary", "wgan-gp", "--image-size", "32", "--channels", "3"]).stdout,
    )
    .to_string();
    assert!(gp.contains("LayerNorm") && gp.contains("critic"), "{gp}");
    let gan = String::from_utf8_lossy(&ganzoo(&["models", "summary", "gan"]).stdout).to_string();
    assert!(gan.contains("total parameters: 283,920") && gan.contains("total parameters: 267,009"), "{gan}");
    assert_clean_failure(&ganzoo(&["models", "summary", "dcgan", "--image-size", "48"]), "not 28, 32 or 64");
}
