//! The `ganzoo` binary end to end: outputs, and bad input giving a clear error and
//! a non-zero exit code, never a panic.

// Tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ganzoo_data::idx::{write_idx_images, write_idx_labels};

/// Real data beside the checkout, for the tests `--include-ignored` adds.
fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// A data root the test writes itself: MNIST-format `mnist/` (64 training digits, 20
/// test digits, labels 0..9 in turn) and a CIFAR-10 `data_batch_1.bin` of 64 images.
fn fixture_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let mnist = root.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    for (split, n) in [("train", 64usize), ("t10k", 20)] {
        let pixels: Vec<u8> = (0..n * 784).map(|i| ((i * 37 + i / 784 * 11) % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        write_idx_images(&mnist.join(format!("{split}-images-idx3-ubyte")), n, 28, 28, &pixels).unwrap();
        write_idx_labels(&mnist.join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
    }
    let cifar = root.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&cifar).unwrap();
    let records: Vec<u8> = (0..64)
        .flat_map(|i: usize| std::iter::once((i % 10) as u8).chain((0..3072).map(move |p| ((p + i) % 256) as u8)))
        .collect();
    std::fs::write(cifar.join("data_batch_1.bin"), records).unwrap();
    root
}

/// Runs the binary with its caches (Inception weights, real features) in a folder of the
/// test run's own, never the user's.
fn ganzoo(args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join(format!("ganzoo-cli-tests-{}", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env("GANZOO_CACHE", &cache)
        .env("TORCH_HOME", &cache)
        .output()
        .unwrap()
}

/// The shape in an `.npy` file's header, as written there: `(3, 2)`.
fn npy_shape(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let header = String::from_utf8_lossy(&bytes[..128.min(bytes.len())]).to_string();
    let from = header.find("'shape': ").unwrap() + "'shape': ".len();
    header[from..].split_inclusive(')').next().unwrap().to_string()
}

fn assert_clean_failure(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "a panic is never an answer: {err}");
    assert!(err.contains(needle), "stderr should mention {needle}: {err}");
}

/// `ganzoo models summary gan` (a command that does little) with `var` set to `value`.
fn summary_with_env(var: &str, value: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganzoo")).args(["models", "summary", "gan"]).env(var, value).output().unwrap()
}

#[test]
fn a_bad_ganzoo_isa_is_refused_before_any_work() {
    let with_isa = |value: &str| summary_with_env("GANZOO_ISA", value);
    assert_clean_failure(&with_isa("sse9"), "unknown instruction set \"sse9\"");
    assert!(with_isa("scalar").status.success(), "the baseline runs everywhere");
}

/// A thread count that would hang (100 000 threads spinning at barriers did not finish
/// a toy run in minutes) or is no number is refused; more than the CPUs only warned of.
#[test]
fn a_bad_rayon_thread_count_is_refused_before_any_work() {
    let with_threads = |value: &str| summary_with_env("RAYON_NUM_THREADS", value);
    assert_clean_failure(&with_threads("100000"), "RAYON_NUM_THREADS=100000: at most 1024 threads");
    assert_clean_failure(&with_threads("eight"), "RAYON_NUM_THREADS=eight: not a number of threads");
    let more = std::thread::available_parallelism().unwrap().get() + 1;
    let out = with_threads(&more.to_string());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains(&format!("RAYON_NUM_THREADS={more} is more than the")), "{err}");
    for fine in ["", "0", "1"] {
        let out = with_threads(fine);
        assert!(out.status.success() && out.stderr.is_empty(), "{fine:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn info_prints_the_class_histogram() {
    let root = fixture_root();
    let out = ganzoo(&["data", "info", "mnist", "--data-dir", root.path().to_str().unwrap(), "--no-download"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("test: 20 images of 1x28x28"), "{text}");
    assert!(text.contains("[2, 2, 2, 2, 2, 2, 2, 2, 2, 2]"), "{text}");
}

#[test]
#[ignore = "reads real data (../shared/data): run with --include-ignored"]
fn info_prints_real_mnists_class_histogram() {
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
    let data_dir = fixture_root();
    let data_dir = data_dir.path();
    let out =
        ganzoo(&["data", "grid", "cifar10", "--data-dir", data_dir.to_str().unwrap(), "--out", png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&png).unwrap();
    // 8 images of 32 pixels and 9 gaps of 2.
    assert_eq!((img.width(), img.height()), (8 * 32 + 18, 8 * 32 + 18));
    // At --image-size, as training would see them (was: ignored for known data sets).
    let d = data_dir.to_str().unwrap();
    let at_16 = ["data", "grid", "cifar10", "--data-dir", d, "--image-size", "16", "--out", png.to_str().unwrap()];
    assert_clean_failure(&ganzoo(&at_16), "exists: pass --overwrite");
    let out = ganzoo(&[&at_16[..], &["--overwrite"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(image::open(&png).unwrap().width(), 8 * 16 + 18);
    let info = ganzoo(&["data", "info", "cifar10", "--data-dir", d, "--image-size", "16"]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("stored at 32x32; training with --image-size 16 resizes them to 16x16"), "{text}");
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
    assert_clean_failure(&unwritable, "/nonexistent/dir/p.npy: its folder /nonexistent/dir does not exist");
    let under_a_file = dir.path().join("x.npy/p.npy");
    std::fs::write(dir.path().join("x.npy"), b"not a folder").unwrap();
    let out = ganzoo(&["data", "sample", "swissroll", "--out", under_a_file.to_str().unwrap()]);
    assert_clean_failure(&out, "x.npy is not a folder");
    // More than the disk holds: refused before anything is written, not after filling it.
    let huge = dir.path().join("huge.npy");
    let out = ganzoo(&["data", "sample", "swissroll", "--n", "1000000000000000000", "--out", huge.to_str().unwrap()]);
    assert_clean_failure(&out, "huge.npy: writing it needs 6.9 EiB but its file system has");
    assert!(!huge.exists() && !dir.path().join("huge.npy.partial").exists());
    // A file already there (the user's, say) is replaced only with --overwrite.
    let mine = dir.path().join("mine.npy");
    std::fs::write(&mine, b"the user's own file").unwrap();
    let args = ["data", "sample", "swissroll", "--n", "4", "--out", mine.to_str().unwrap()];
    assert_clean_failure(&ganzoo(&args), "mine.npy exists: pass --overwrite to replace it, or another --out");
    assert_eq!(std::fs::read(&mine).unwrap(), b"the user's own file");
    assert!(ganzoo(&[&args[..], &["--overwrite"]].concat()).status.success());
    assert_eq!(npy_shape(&mine), "(4, 2)");
    // A folder is never replaced, asked or not, and nothing is left beside it.
    let folder = dir.path().join("kept.npy");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("inside"), b"kept").unwrap();
    let args = ["data", "sample", "swissroll", "--n", "4", "--out", folder.to_str().unwrap(), "--overwrite"];
    assert_clean_failure(&ganzoo(&args), "kept.npy is a folder: --out names a file");
    assert_eq!(std::fs::read(folder.join("inside")).unwrap(), b"kept");
    assert!(!dir.path().join("kept.npy.partial").exists());
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
    // gan_mnist.py / gan_cifar.py: an unnormalised critic.
    assert!(!gp.contains("LayerNorm") && gp.contains("critic"), "{gp}");
    let gan = String::from_utf8_lossy(&ganzoo(&["models", "summary", "gan"]).stdout).to_string();
    assert!(gan.contains("total parameters: 283,920") && gan.contains("total parameters: 267,009"), "{gan}");
    // Every preset `train` takes, at its own image size: wgan-gp-64's per-channel
    // layer-norm critic at 64×64 (the summary took the four families only).
    let gp64 = String::from_utf8_lossy(&ganzoo(&["models", "summary", "wgan-gp-64"]).stdout).to_string();
    assert!(gp64.contains("critic (wgan-gp-64, input [1, 1, 64, 64])") && gp64.contains("LayerNorm"), "{gp64}");
    // A run's own networks, from its config.toml: a 2-D toy run's MLPs.
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("toy");
    let r = run.to_str().unwrap();
    assert!(ganzoo(&["train", "wgan-gp", "--dataset", "8gaussians", "--iters", "1", "--out", r]).status.success());
    let toy = ganzoo(&["models", "summary", "--run", r]);
    let toy = String::from_utf8_lossy(&toy.stdout);
    assert!(toy.contains(&format!("critic ({r}, input [1, 2])")) && toy.contains("total parameters: 527,361"), "{toy}");
    let capped = ganzoo(&["models", "summary", "--run", r, "--max-memory", "1K"]);
    assert_clean_failure(&capped, "allows 1.0 KiB; raise --max-memory");
    assert_clean_failure(&ganzoo(&["models", "summary", "dcgan", "--run", r]), "cannot be used with");
    assert_clean_failure(&ganzoo(&["models", "summary", "--run", r, "--channels", "3"]), "cannot be used with");
    assert_clean_failure(&ganzoo(&["models", "summary", "dcgan", "--image-size", "48"]), "not 28, 32 or 64");
    assert_clean_failure(&ganzoo(&["models", "summary", "gan", "--channels", "0"]), "--channels must be at least 1");
    assert_clean_failure(
        &ganzoo(&["models", "summary", "gan", "--image-size", "0"]),
        "--image-size must be at least 1",
    );
}

/// `train --resume RUN` — the command a stopped run prints — reads the data from where
/// the run read it (it looked in `./data` and downloaded the full data set, or failed
/// offline, for a run trained with `--data-dir`), and refuses other images.
#[test]
fn a_run_resumes_on_the_data_it_trained_on_and_on_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture_root();
    let run = dir.path().join("run");
    let (r, d) = (run.to_str().unwrap(), root.path().to_str().unwrap());
    let quiet = |args: &[&str]| {
        // From a folder without ./data, with no $GANZOO_DATA and no download.
        Command::new(env!("CARGO_BIN_EXE_ganzoo"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("GANZOO_DATA")
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    };
    let trained =
        quiet(&["train", "gan", "--data-dir", d, "--iters", "2", "--batch-size", "16", "--log-every", "1", "--out", r]);
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("data.json")).unwrap()).unwrap();
    assert_eq!((record["count"].as_u64(), record["shape"].to_string().as_str()), (Some(64), "[1,28,28]"));
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(page.contains("<h2>Data</h2>\n<p>64 images of 1x28x28 (digest "), "{page}");
    let resumed = quiet(&["train", "--resume", r, "--iters", "3", "--no-download"]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    // A run from before data.json gets one when resumed (here: the same record again).
    std::fs::remove_file(run.join("data.json")).unwrap();
    let old = quiet(&["train", "--resume", r, "--iters", "3", "--data-dir", d]);
    assert!(old.status.success(), "{}", String::from_utf8_lossy(&old.stderr));
    let again: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("data.json")).unwrap()).unwrap();
    assert_eq!(again, record);
    // The same number of other digits: refused, naming both, and the run untouched.
    let images = root.path().join("mnist/train-images-idx3-ubyte");
    let other: Vec<u8> = (0..64 * 784).map(|i| (i % 251) as u8).collect();
    write_idx_images(&images, 64, 28, 28, &other).unwrap();
    let before = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let refused = quiet(&["train", "--resume", r, "--iters", "4", "--no-download"]);
    assert_clean_failure(&refused, "trained on 64 images of 1x28x28 (digest ");
    assert_clean_failure(&refused, "but the data read now is 64 images of 1x28x28 (digest ");
    assert_clean_failure(&refused, "resuming would change the data order; pass --data-dir ");
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(), before);
    // --data-dir names another copy of the data it trained on: that one is read.
    let copy = fixture_root();
    let elsewhere = quiet(&["train", "--resume", r, "--iters", "4", "--data-dir", copy.path().to_str().unwrap()]);
    assert!(elsewhere.status.success(), "{}", String::from_utf8_lossy(&elsewhere.stderr));
}

#[test]
fn train_then_sample_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let data_dir = fixture_root();
    let data_dir = data_dir.path();
    let (run_s, data_s) = (run.to_str().unwrap(), data_dir.to_str().unwrap());
    let args = [
        "train",
        "gan",
        "--data-dir",
        data_s,
        "--iters",
        "3",
        "--batch-size",
        "16",
        "--log-every",
        "1",
        "--out",
        run_s,
    ];
    let out = ganzoo(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("finished 3 iterations"));
    assert!(run.join("train.log").is_file() && run.join("curves.png").is_file());
    // Never overwrite an existing run unless asked.
    assert_clean_failure(&ganzoo(&args), "already holds a run");
    // Samples as a grid and as raw values.
    let png = dir.path().join("s.png");
    assert!(ganzoo(&["sample", "--run", run_s, "--out", png.to_str().unwrap()]).status.success());
    assert_eq!(image::open(&png).unwrap().width(), 8 * 30 + 2);
    let npy = dir.path().join("s.npy");
    assert!(ganzoo(&["sample", "--run", run_s, "--n", "5", "--out", npy.to_str().unwrap()]).status.success());
    let header = String::from_utf8_lossy(&std::fs::read(&npy).unwrap()[..100]).to_string();
    assert!(header.contains("'shape': (5, 1, 28, 28)"), "{header}");
    // 10¹⁵ images of 28 × 28: refused at once for the disk, nothing written.
    let huge = dir.path().join("huge.npy");
    let out = ganzoo(&["sample", "--run", run_s, "--n", "1000000000000000", "--out", huge.to_str().unwrap()]);
    assert_clean_failure(&out, "huge.npy: writing it needs 2.7 EiB but its file system has");
    assert!(!huge.exists() && !dir.path().join("huge.npy.partial").exists());
    let grid = dir.path().join("i.png");
    assert!(ganzoo(&["sample", "--run", run_s, "--interpolate", "--out", grid.to_str().unwrap()]).status.success());
    // --interpolate always draws 8 walks of 8: an --n beside it is refused, not ignored.
    let walks = ["sample", "--run", run_s, "--interpolate", "--n", "100", "--out", "x.png"];
    assert_clean_failure(&ganzoo(&walks), "cannot be used with '--n <N>'");
    // The same samples with bf16 activations: another rounding of the same images.
    let bf16 = dir.path().join("b.npy");
    let args = ["sample", "--run", run_s, "--n", "5", "--precision", "bf16", "--out", bf16.to_str().unwrap()];
    assert!(ganzoo(&args).status.success());
    let (a, b) = (std::fs::read(&npy).unwrap(), std::fs::read(&bf16).unwrap());
    assert!(a.len() == b.len() && a != b, "bf16 samples are bf16's rounding of the f32 ones");
    // Resume for two more iterations.
    let out = ganzoo(&["train", "--resume", run_s, "--data-dir", data_s, "--iters", "5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().count(), 5);
    // Never shortened (5 iterations of 4 batches an epoch are 1.25 epochs): refused.
    for (flag, n, said) in [("--iters", "4", "pass --iters 5 or more"), ("--epochs", "1", "pass --epochs 2 or more")] {
        let shorter = ganzoo(&["train", "--resume", run_s, "--data-dir", data_s, flag, n]);
        assert_clean_failure(&shorter, &format!("has trained 5 iterations, 1.25 epochs (checkpoint {run_s}"));
        assert_clean_failure(&shorter, said);
    }
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().count(), 5);
    assert!(std::fs::read_to_string(run.join("config.toml")).unwrap().contains("iters = 5"));
    // Nothing but the length may change, and the flag tried is named (--log-every and
    // --image-size were once accepted and ignored).
    for (flag, value) in [("--lr-g", "0.1"), ("--log-every", "1"), ("--image-size", "32"), ("--seed", "3")] {
        let changed = ganzoo(&["train", "--resume", run_s, "--data-dir", data_s, flag, value]);
        assert_clean_failure(
            &changed,
            &format!("keeps its recipe, data, batch size, seed and logging, so {flag} cannot"),
        );
    }
    // Nor by editing the run's config.toml: refused, and the edit is left for the user.
    let config = run.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let edited = text.replace("batch_size = 16", "batch_size = 8");
    assert_ne!(edited, text);
    std::fs::write(&config, &edited).unwrap();
    let out = ganzoo(&["train", "--resume", run_s, "--data-dir", data_s, "--iters", "6"]);
    assert_clean_failure(&out, "`batch_size` is 8 (trained with 16)");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().count(), 5);
    // What config.toml may change, the flags change too, and it is recorded there.
    std::fs::write(&config, &text).unwrap();
    let more = ["train", "--resume", run_s, "--data-dir", data_s, "--iters", "6", "--checkpoint-every", "2"];
    let out = ganzoo(&[&more[..], &["--sample-every", "3", "--keep-checkpoints", "3"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains("checkpoint_every = 2") && saved.contains("sample_every = 3"), "{saved}");
    assert!(saved.contains("keep_checkpoints = 3"), "{saved}");
}

/// `--keep-checkpoints 0` keeps every checkpoint; a resume may keep fewer from then on.
#[test]
fn keep_checkpoints_sets_how_many_checkpoints_stay() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let steps = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect();
        names.sort();
        names
    };
    let train = ["train", "gan", "--dataset", "8gaussians", "--iters", "4", "--checkpoint-every", "1"];
    let out = ganzoo(&[&train[..], &["--keep-checkpoints", "0", "--out", r]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(steps(), ["step-00000001", "step-00000002", "step-00000003", "step-00000004"]);
    // Any kept checkpoint can be sampled and measured; each gives its own samples.
    let npy = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for (step, out) in [(None, npy("latest.npy")), (Some("2"), npy("two.npy")), (Some("4"), npy("four.npy"))] {
        let at = step.map_or(vec![], |s| vec!["--step", s]);
        let sampled = ganzoo(&[&["sample", "--run", r, "--n", "20", "--out", &out][..], &at].concat());
        assert!(sampled.status.success(), "{}", String::from_utf8_lossy(&sampled.stderr));
    }
    let bytes = |name: &str| std::fs::read(npy(name)).unwrap();
    assert!(bytes("latest.npy") == bytes("four.npy") && bytes("two.npy") != bytes("four.npy"));
    assert!(ganzoo(&["eval", "--run", r, "--step", "2", "--n", "200"]).status.success());
    assert!(run.join("eval/step-00000002-n200.json").is_file());
    let missing = ganzoo(&["sample", "--run", r, "--step", "7", "--out", &npy("x.npy")]);
    assert_clean_failure(&missing, "has no checkpoint at iteration 7; it keeps those at 1, 2, 3, 4");
    let out = ganzoo(&["train", "--resume", r, "--iters", "6", "--keep-checkpoints", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(steps(), ["step-00000006"]);
    assert_clean_failure(&ganzoo(&["train", "gan", "--keep-checkpoints", "-1"]), "--keep-checkpoints");
}

/// A 2-iteration toy run at `DIR/run`, in a fresh temporary folder `DIR`.
fn toy_run() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let made = ganzoo(&["train", "gan", "--dataset", "8gaussians", "--iters", "2", "--out", run.to_str().unwrap()]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    (dir, run)
}

/// Files at paths a user chose are written through `PATH.partial`, created new: a file of
/// the user's named `PATH.tmp` is not replaced and renamed away, and a link named
/// `PATH.partial` is refused, not followed (before, `sample --out x.png` truncated and
/// renamed a user's `x.png.tmp`, and wrote its PNG into the target of a link `y.png.tmp`).
#[cfg(unix)]
#[test]
fn outputs_never_touch_a_users_files_by_their_temporary_names() {
    let (dir, run) = toy_run();
    let run_s = run.to_str().unwrap();
    let important = dir.path().join("important");
    std::fs::write(&important, "theirs").unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for out in ["x.png", "cmp.html"] {
        std::fs::write(path(&format!("{out}.tmp")), "mine").unwrap();
        let made = match out {
            "x.png" => ganzoo(&["sample", "--run", run_s, "--out", &path(out)]),
            _ => ganzoo(&["report", run_s, run_s, "--out", &path(out)]),
        };
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        assert_eq!(std::fs::read_to_string(path(&format!("{out}.tmp"))).unwrap(), "mine");
        assert!(std::fs::metadata(path(out)).unwrap().len() > 1000);
    }
    std::os::unix::fs::symlink(&important, path("y.png.partial")).unwrap();
    assert_clean_failure(&ganzoo(&["sample", "--run", run_s, "--out", &path("y.png")]), "y.png.partial exists");
    assert_eq!(std::fs::read_to_string(&important).unwrap(), "theirs");
    assert!(!dir.path().join("y.png").exists());
}

#[test]
fn an_output_is_never_a_file_a_run_writes_itself() {
    let (_dir, run) = toy_run();
    let run_s = run.to_str().unwrap();
    let files = ["config.toml", "report.html", "curves.png", "samples/iter-00000002.png", "checkpoints/latest"];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(run.join(f)).unwrap()).collect();
    let path = |name: &str| run.join(name).to_str().unwrap().to_owned();
    let classifier_stem = path("data");
    let refused: [Vec<String>; 6] = [
        vec!["sample".into(), "--run".into(), run_s.into(), "--out".into(), path("curves.png")],
        vec!["sample".into(), "--run".into(), run_s.into(), "--out".into(), path("samples/iter-00000002.png")],
        vec!["report".into(), run_s.into(), run_s.into(), "--out".into(), path("report.html")],
        vec!["data".into(), "grid".into(), "mnist".into(), "--out".into(), path("quality.png")],
        vec!["train".into(), "classifier".into(), "--dataset".into(), "mnist".into(), "--out".into(), classifier_stem],
        vec![
            "bench".into(),
            "--models".into(),
            "toy".into(),
            "--torch".into(),
            "python3".into(),
            "--write".into(),
            path("config.toml"),
        ],
    ];
    for args in refused {
        let args: Vec<&str> = args.iter().map(String::as_str).chain(["--overwrite"]).collect();
        let args = if args[0] == "bench" { &args[..args.len() - 1] } else { &args[..] };
        assert_clean_failure(&ganzoo(args), "writes this file itself");
    }
    // From inside the run, by a relative name, too.
    let inside = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args(["sample", "--run", ".", "--out", "curves.png", "--overwrite"])
        .current_dir(&run)
        .output()
        .unwrap();
    assert_clean_failure(&inside, "writes this file itself");
    let after: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(run.join(f)).unwrap()).collect();
    assert!(before == after, "a run's own files are unchanged");
    assert!(!run.join("quality.png").exists() && !run.join("data.json").exists());
    // Other names in a run stay the user's to write.
    let mine = ganzoo(&["sample", "--run", run_s, "--out", &path("samples/iter-best.png")]);
    assert!(mine.status.success(), "{}", String::from_utf8_lossy(&mine.stderr));
}

/// A checkpoint write that fails part-way (here: a file-size limit, `ulimit -f`, as a full
/// disk would) fails the run naming the file, removes its temporary folder, and keeps the
/// checkpoint before it as the one to resume from.
#[cfg(target_os = "linux")]
#[test]
fn a_checkpoint_write_that_fails_leaves_the_previous_one_and_no_temporary_folder() {
    let (_dir, run) = toy_run();
    let run_s = run.to_str().unwrap();
    // 200 KiB lets the logs, plots and report through but not the generator's weights.
    let limited = Command::new("bash")
        .args(["-c", "trap '' XFSZ; ulimit -f 200; exec \"$@\"", "bash", env!("CARGO_BIN_EXE_ganzoo")])
        .args(["train", "--resume", run_s, "--iters", "4"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert_clean_failure(&limited, "checkpoints/step-00000004.tmp/generator.safetensors: cannot write");
    let names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"step-00000002".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "a temporary folder was left: {names:?}");
    assert_eq!(std::fs::read_to_string(run.join("checkpoints/latest")).unwrap(), "step-00000002");
}

#[test]
fn toy_training_writes_value_surface_plots() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("toy");
    let out = ganzoo(&[
        "train",
        "wgan-gp",
        "--dataset",
        "25gaussians",
        "--iters",
        "2",
        "--batch-size",
        "32",
        "--sample-every",
        "1",
        "--log-every",
        "1",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plot = image::open(run.join("samples/iter-00000001.png")).unwrap();
    assert_eq!((plot.width(), plot.height()), (760, 640));
    let npy = dir.path().join("p.npy");
    assert!(ganzoo(&["sample", "--run", run.to_str().unwrap(), "--n", "7", "--out", npy.to_str().unwrap()])
        .status
        .success());
    assert!(String::from_utf8_lossy(&std::fs::read(&npy).unwrap()[..100]).contains("(7, 2)"));
    // Without a terminal (as here, and in CI logs) progress comes as plain lines: the
    // first log step and the last, each with the losses, speed and time left.
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("iteration ")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].starts_with("iteration 1/2 ") && lines[1].starts_with("iteration 2/2 "), "{log}");
    assert!(lines.iter().all(|l| l.contains(" W ") && l.contains("img/s") && l.contains("left")), "{log}");
}

/// `ganzoo ARGS` run in `cwd` with no data root there: what it leaves in `cwd` shows.
fn ganzoo_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_BACKTRACE", "0")
        .env("GANZOO_DATA", cwd.join("no-data-here"))
        .output()
        .unwrap()
}

#[test]
fn print_config_shows_the_recipe_a_run_records_and_makes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let recipe = ["train", "wgan-gp", "--dataset", "8gaussians", "--iters", "3", "--lr-g", "3e-4", "--n-critic", "2"];
    let out = ganzoo_in(&work, &[&recipe[..], &["--seed", "7", "--print-config"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    for line in ["family = \"wgan-gp\"", "iters = 3", "seed = 7", "lr = 0.0003", "n_critic = 2", "lambda = 0.1"] {
        assert!(printed.lines().any(|l| l == line), "{line} missing from:\n{printed}");
    }
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "no run, no data folder");
    // Trained from, it is the run's config.toml, byte for byte.
    let file = dir.path().join("recipe.toml");
    std::fs::write(&file, &printed).unwrap();
    let run = dir.path().join("run");
    let out = ganzoo(&["train", "--config", file.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(run.join("config.toml")).unwrap(), printed);
    // An image preset prints without its data (none here, nothing downloaded).
    let out = ganzoo_in(&work, &["train", "dcgan", "--epochs", "2", "--print-config"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("family = \"dcgan\"\ndata = \"mnist\"") && printed.contains("epochs = 2"), "{printed}");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "nothing read or made for images either");
    // The MLPs record no normalisation; DCGAN networks in their place take batch norm.
    for (arch, norm) in [(None, "none"), (Some("dcgan"), "batch")] {
        let args = [&["train", "gan", "--print-config"][..], &arch.map_or(vec![], |a| vec!["--arch", a])].concat();
        let printed = String::from_utf8(ganzoo_in(&work, &args).stdout).unwrap();
        let expected = format!("generator_norm = \"{norm}\"\ncritic_norm = \"{norm}\"");
        assert!(printed.contains(&expected), "{arch:?}: {printed}");
    }
    // The configuration is validated as for training; flags about a run or its data are refused.
    assert_clean_failure(&ganzoo_in(&work, &["train", "dcgan", "--lr-g=-1", "--print-config"]), "learning rate");
    for flag in [
        &["--resume", "x"][..],
        &["--out", "x"],
        &["--overwrite"],
        &["--device", "cpu"],
        &["--data-dir", "x"],
        &["--grayscale"],
    ] {
        let args = [&["train", "dcgan", "--print-config"][..], flag].concat();
        let args = if flag[0] == "--resume" { vec!["train", "--print-config", "--resume", "x"] } else { args };
        assert_clean_failure(&ganzoo_in(&work, &args), "cannot be used with");
    }
    assert_clean_failure(
        &ganzoo_in(&work, &["train", "classifier", "--dataset", "mnist", "--print-config"]),
        "--print-config applies to GAN training",
    );
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

#[test]
fn bad_training_requests_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = fixture_root();
    let d = data_dir.path().to_str().unwrap();
    let out_dir = dir.path().join("x");
    let o = out_dir.to_str().unwrap();
    assert_clean_failure(&ganzoo(&["train", "dcgan", "--data-dir", d, "--lr-g=-0.1", "--out", o]), "learning rate");
    assert_clean_failure(&ganzoo(&["train", "dcgan", "--data-dir", d, "--batch-size", "0", "--out", o]), "batch size");
    assert_clean_failure(
        &ganzoo(&["train", "dcgan", "--data-dir", d, "--image-size", "48", "--out", o]),
        "unsupported image size",
    );
    assert_clean_failure(&ganzoo(&["train", "dcgan", "--dataset", "imagenet"]), "unknown data set");
    assert_clean_failure(
        &ganzoo(&["train", "gan", "--dataset", "8gaussians", "--image-size", "64", "--out", o]),
        "--image-size applies to images; 8gaussians is 2-D points",
    );
    assert_clean_failure(
        &ganzoo(&["train", "gan", "--data-dir", d, "--clip", "0.1", "--out", o]),
        "--clip is for wgan",
    );
    // Each trick out of range is named with its flag and its bounds.
    for (flags, said) in [
        (&["--real-label", "2"][..], "the real label (--real-label) must lie in [0, 1], got 2"),
        (
            &["--real-label", "0.1", "--label-noise", "0.5"][..],
            "(--label-noise) must lie in [0, real label = 0.1], got 0.5",
        ),
        // Negative numbers reach these checks as values (clap alone called `-1` an
        // unexpected argument and suggested `-- -1`, which makes it a positional).
        (&["--instance-noise", "-1"][..], "instance noise (--instance-noise) must be ≥ 0, got -1"),
        (&["--lr-g", "-1"][..], "learning rate must be positive and finite, got -1"),
        // The toy MLPs have no widths or normalisation: these were ignored, yet recorded.
        (&["--critic-norm", "layer"][..], "--critic-norm applies to DCGAN networks; this run trains MLPs"),
        (&["--ngf", "32"][..], "--ngf applies to DCGAN networks"),
        (
            &["--instance-noise", "inf"][..],
            "instance noise (--instance-noise) must be within f32's range (3.4028235e38), got inf",
        ),
        // Finite in f64, ∞ in the f32 the tensors use: these stopped at iteration 0 on a NaN.
        (&["--lr-d", "1e300"][..], "learning rate 1e300 is beyond f32's range (3.4028235e38)"),
        // The toy generator takes 2-D noise: a wider draw failed at the first step with a
        // shape error, and --latent 1000000000 filled 22 GB drawing it.
        (&["--latent", "1000000000"][..], "the toy networks take 2-D noise (gan_toy.py), not --latent 1000000000"),
    ] {
        let toy = ["train", "gan", "--dataset", "8gaussians", "--out", o];
        assert_clean_failure(&ganzoo(&[&toy[..], flags].concat()), said);
    }
    assert_clean_failure(
        &ganzoo(&["train", "wgan-gp", "--dataset", "8gaussians", "--lambda", "1e300", "--out", o]),
        "λ = 1e300 is beyond f32's range (3.4028235e38): the penalty is computed in f32",
    );
    assert_clean_failure(&ganzoo(&["train", "--resume", dir.path().to_str().unwrap()]), "not a run directory");
    assert_clean_failure(
        &ganzoo(&["sample", "--run", dir.path().to_str().unwrap(), "--out", "a.png"]),
        "not a run directory",
    );
    // Flags that do not apply are refused, not ignored: a Wasserstein critic has no
    // targets, and only image folders are converted to grayscale.
    assert_clean_failure(
        &ganzoo(&["train", "wgan", "--dataset", "8gaussians", "--real-label", "0.9", "--out", o]),
        "--real-label sets the targets of a cross-entropy discriminator (gan, dcgan); a Wasserstein critic has none",
    );
    assert_clean_failure(
        &ganzoo(&["train", "gan", "--dataset", "8gaussians", "--grayscale", "--out", o]),
        "--grayscale applies to images; 8gaussians is 2-D points",
    );
    assert_clean_failure(
        &ganzoo(&["train", "dcgan", "--data-dir", d, "--grayscale", "--out", o]),
        "--grayscale applies to image folders (folder:PATH); mnist is read as it is stored",
    );
    // A file or a missing path given as a run is called what it is.
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "").unwrap();
    assert_clean_failure(
        &ganzoo(&["sample", "--run", file.to_str().unwrap(), "--out", "a.png"]),
        "config.toml is a file, not a run directory (the folder `ganzoo train` wrote)",
    );
    assert_clean_failure(&ganzoo(&["train", "--resume", o]), &format!("{o} does not exist"));
    // A preset named beside --config was ignored: `train dcgan --config` of a WGAN-GP
    // run's file trained WGAN-GP. It may only repeat the file's family.
    let gp = dir.path().join("gp");
    let made = ganzoo(&["train", "wgan-gp", "--dataset", "8gaussians", "--iters", "1", "--out", gp.to_str().unwrap()]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let config = gp.join("config.toml");
    let c = config.to_str().unwrap();
    for preset in ["dcgan", "wgan-gp-64"] {
        assert_clean_failure(
            &ganzoo(&["train", preset, "--config", c, "--out", o]),
            &format!("config.toml trains wgan-gp, and with --config the file is the recipe: leave out `{preset}`"),
        );
    }
    // A toy recipe on images failed on whichever setting came first ("not --latent 100").
    assert_clean_failure(
        &ganzoo(&["train", "--config", c, "--dataset", "mnist", "--data-dir", d, "--out", o]),
        "config.toml is a recipe for 2-D points (8gaussians), and mnist is images: start from a preset instead",
    );
    let again = dir.path().join("gp2");
    assert!(ganzoo(&["train", "wgan-gp", "--config", c, "--out", again.to_str().unwrap()]).status.success());
    assert!(!out_dir.exists(), "a rejected configuration creates no run");
}

#[test]
fn bench_times_a_model_and_writes_the_comparison_with_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for the PyTorch reference: an interpreter that "imports torch" and
    // answers its first, second and later worker calls with 10, 40 and 20 it/s.
    let torchref = dir.path().join("torchref");
    std::fs::create_dir(&torchref).unwrap();
    std::fs::write(torchref.join("throughput.py"), "").unwrap();
    let python = dir.path().join("python");
    let count = dir.path().join("calls");
    let line = r#"{"case": "mlp-gan", "batch": 100, "gen_iters_per_s": RATE, "peak_rss_mb": 900.0, "other_cpu_frac": 0.0, "threads": 2, "torch": "9.9-fake"}"#;
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = \"-c\" ] && exit 0\necho x >> '{}'\nn=$(wc -l < '{}')\n\
         case $n in 1) r=10.0;; 2) r=40.0;; *) r=20.0;; esac\necho '{}'\n",
        count.display(),
        count.display(),
        line.replace("RATE", "'$r'")
    );
    std::fs::write(&python, script).unwrap();
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let report = dir.path().join("perf.md");
    std::fs::write(&report, "# Performance\n\nprose kept\n").unwrap();
    let quick = ["--repeats", "1", "--target-s", "0.2", "--warmup-s", "0", "--wait-quiet-s", "0", "--skip-ops"];
    let mut args = vec!["bench", "--models", "gan", "--json", "--rounds", "3", "--torch", python.to_str().unwrap()];
    args.extend(["--torchref", torchref.to_str().unwrap(), "--write", report.to_str().unwrap()]);
    args.extend(quick);
    let out = ganzoo(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7, "three rounds of two lines and a summary: {text}");
    // Rounds alternate which side runs first; each line says its round.
    let sides: Vec<(bool, u64)> =
        lines[..6].iter().map(|l| (l["reference"] == "pytorch", l["round"].as_u64().unwrap())).collect();
    assert_eq!(sides, [(false, 0), (true, 0), (true, 1), (false, 1), (false, 2), (true, 2)], "{text}");
    let ours = &lines[0];
    assert_eq!((ours["model"].as_str(), ours["batch"].as_u64()), (Some("gan"), Some(100)));
    let rate = ours["iters_per_s"].as_f64().unwrap();
    assert!(rate > 0.0 && (ours["images_per_s"].as_f64().unwrap() - rate * 100.0).abs() < 1e-6, "{ours}");
    assert!(ours["peak_rss_mb"].as_f64().unwrap() > 1.0, "{ours}");
    assert!((lines[1]["ratio"].as_f64().unwrap() - rate / 10.0).abs() < 1e-9, "{text}");
    let mut ratios: Vec<f64> = [(0, 1, 10.0), (3, 2, 40.0), (4, 5, 20.0)]
        .iter()
        .map(|&(o, t, torch)| {
            assert_eq!(lines[t]["iters_per_s"].as_f64(), Some(torch), "{text}");
            lines[o]["iters_per_s"].as_f64().unwrap() / torch
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let summary = &lines[6];
    assert_eq!((summary["summary"].as_bool(), summary["rounds"].as_u64()), (Some(true), Some(3)), "{summary}");
    assert!((summary["ratio"].as_f64().unwrap() - ratios[1]).abs() < 1e-9, "median of the rounds: {text}");
    assert!((summary["ratio_min"].as_f64().unwrap() - ratios[0]).abs() < 1e-9, "{summary}");
    assert_eq!(summary["torch_iters_per_s"].as_f64(), Some(20.0), "{summary}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.starts_with("# Performance\n\nprose kept\n") && md.contains("| gan | 100 |"), "{md}");
    assert!(md.contains(&format!("**{:.2}**", ratios[1])) && md.contains("PyTorch 9.9-fake"), "{md}");
    assert!(md.contains(&format!("{:.2}–{:.2}", ratios[0], ratios[2])) && md.contains("3 alternating rounds"), "{md}");

    let out = ganzoo(&["bench", "--models", "gan,nope"]);
    assert_clean_failure(&out, "unknown benchmark model 'nope'");
    let out = ganzoo(&["bench", "--models", "gan", "--repeats", "0"]);
    assert_clean_failure(&out, "--repeats");
    assert_clean_failure(&ganzoo(&["bench", "--models", "gan", "--rounds", "0"]), "--rounds");
    let out = ganzoo(&[
        "bench",
        "--models",
        "gan",
        "--torch",
        "/nonexistent/python",
        "--torchref",
        torchref.to_str().unwrap(),
    ]);
    assert_clean_failure(&out, "/nonexistent/python");
}

/// A stand-in PyTorch reference in `dir`: a "python" that answers gan's case at 5 it/s
/// and writes down how it was called (in `calls`), and its reference directory.
fn stand_in_reference(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let torchref = dir.join("torchref");
    std::fs::create_dir(&torchref).unwrap();
    std::fs::write(torchref.join("throughput.py"), "").unwrap();
    let (python, calls) = (dir.join("python"), dir.join("calls"));
    let line = r#"{"case": "mlp-gan", "batch": 8, "gen_iters_per_s": 5.0, "peak_rss_mb": 1.0, "other_cpu_frac": 0.0, "threads": 2, "torch": "fake"}"#;
    let script =
        format!("#!/bin/sh\n[ \"$1\" = \"-c\" ] && exit 0\necho \"$@\" >> '{}'\necho '{line}'\n", calls.display());
    std::fs::write(&python, script).unwrap();
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (python, torchref, calls)
}

#[test]
fn bench_batch_and_device_reach_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (python, torchref, calls) = stand_in_reference(dir.path());
    let (py, tr) = (python.to_str().unwrap(), torchref.to_str().unwrap());
    let out = ganzoo(&[
        "bench",
        "--models",
        "gan",
        "--json",
        "--rounds",
        "1",
        "--batch",
        "8",
        "--torch",
        py,
        "--torchref",
        tr,
        "--repeats",
        "1",
        "--target-s",
        "0.2",
        "--warmup-s",
        "0",
        "--wait-quiet-s",
        "0",
        "--skip-ops",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!((ours["batch"].as_u64(), ours["device"].as_str()), (Some(8), Some("cpu")), "{ours}");
    let called = std::fs::read_to_string(&calls).unwrap();
    assert!(called.contains("--worker mlp-gan") && called.contains("--device cpu --batch 8"), "{called}");
    assert_clean_failure(&ganzoo(&["bench", "--models", "gan", "--batch", "0"]), "--batch must be at least 1");
    // A --write that could not be written fails before anything is timed; --ops-only
    // has no table to write, so the two together are refused rather than blanking it.
    std::fs::remove_file(&calls).unwrap();
    let bench = ["bench", "--models", "gan", "--skip-ops", "--wait-quiet-s", "0", "--torch", py, "--torchref", tr];
    assert_clean_failure(&ganzoo(&[&bench[..], &["--write", tr]].concat()), &format!("reading {tr}"));
    let nowhere = dir.path().join("missing/perf.md");
    assert_clean_failure(&ganzoo(&[&bench[..], &["--write", nowhere.to_str().unwrap()]].concat()), "missing/perf.md");
    assert!(!calls.exists(), "the reference ran: {}", std::fs::read_to_string(&calls).unwrap_or_default());
    let ops_only = ["bench", "--ops-only", "--torch", py, "--torchref", tr, "--write", "perf.md"];
    assert_clean_failure(&ganzoo(&ops_only), "--ops-only");
    // A batch nothing could hold is refused before anything is allocated, models and layers alike.
    let huge = ["--batch", "100000000", "--wait-quiet-s", "0"];
    assert_clean_failure(
        &ganzoo(&[&["bench", "--models", "dcgan32", "--skip-ops"][..], &huge].concat()),
        "bench dcgan32 at batch 100000000 needs about",
    );
    assert_clean_failure(
        &ganzoo(&[&["bench", "--ops-only"][..], &huge].concat()),
        "the per-layer timings at batch 100000000 needs about",
    );
}

/// `--cuda-conv` times ganzoo once per convolution implementation against one PyTorch
/// run per round (on the CPU every variant runs the same kernels; the plumbing is what is
/// checked), and a worker's log reaches the bench's stderr (the timed choices travel so).
#[test]
fn bench_variants_share_the_pytorch_run_and_workers_logs_come_through() {
    let dir = tempfile::tempdir().unwrap();
    let (python, torchref, calls) = stand_in_reference(dir.path());
    let (py, tr) = (python.to_str().unwrap(), torchref.to_str().unwrap());
    let bench = ["bench", "--models", "gan", "--batch", "8", "--torch", py, "--torchref", tr, "--wait-quiet-s", "0"];
    let timing = ["--repeats", "1", "--target-s", "0.1", "--warmup-s", "0", "--skip-ops"];
    let out = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args(bench)
        .args(timing)
        .args(["--rounds", "2", "--json", "--cuda-conv", "cudnn,timed"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let (text, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{err}");
    assert_eq!(std::fs::read_to_string(&calls).unwrap().lines().count(), 2, "one PyTorch run a round");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ours: Vec<&str> = lines
        .iter()
        .filter(|l| l["reference"].is_null() && l["summary"].is_null())
        .map(|l| l["cuda_conv"].as_str().unwrap())
        .collect();
    assert_eq!(ours, ["cudnn", "timed", "cudnn", "timed"], "{text}");
    let summaries: Vec<&str> =
        lines.iter().filter(|l| l["summary"] == true).map(|l| l["cuda_conv"].as_str().unwrap()).collect();
    assert_eq!(summaries, ["cudnn", "timed"], "a median per variant: {text}");
    assert!(lines.iter().filter(|l| l["reference"] == "pytorch").all(|l| l["iters_per_s"] == 5.0), "{text}");
    assert_eq!(err.matches("timing in a worker process").count(), 4, "each worker's log: {err}");
    assert!(err.contains("--cuda-conv on the CPU"), "{err}");
    // The table names each row's variant.
    let out = ganzoo(&[&bench[..], &timing, &["--rounds", "1", "--cuda-conv", "columns,gemm"]].concat());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && table.contains("gan columns") && table.contains("gan gemm"), "{table}");
    // Refused before anything runs: the per-layer timings (GANZOO_CUDA_CONV's), parity,
    // a CPU table that has no variants, a value that is none.
    std::fs::remove_file(&calls).unwrap();
    let report = dir.path().join("perf.md");
    std::fs::write(&report, "# Performance\n").unwrap();
    for (extra, needle) in [
        (vec!["--cuda-conv", "timed"], "--skip-ops"),
        (vec!["--cuda-conv", "timed", "--skip-ops", "--write", report.to_str().unwrap()], "needs --device cuda"),
        (vec!["--cuda-conv", "nope", "--skip-ops"], "nope"),
    ] {
        assert_clean_failure(&ganzoo(&[&bench[..], &extra].concat()), needle);
    }
    assert_clean_failure(&ganzoo(&["bench", "--parity", "1", "--cuda-conv", "timed", "--skip-ops"]), "--parity");
    assert!(!calls.exists(), "the reference ran");
}

/// The trainer holds a generated batch's graph only where the generator step reuses it
/// (one critic step, as DCGAN): WGAN-GP's five critic steps each drop theirs at once.
/// The bound lies between the binary's own allocator's peaks with and without that
/// (docs/performance.md, "Memory").
#[test]
fn a_critic_step_keeps_no_generator_graph_it_does_not_reuse() {
    let out = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args(["bench", "--worker", "wgan-gp32", "--kernels", "ganzoo", "--seed", "0", "--device", "cpu"])
        .args(["--precision", "f32", "--batch", "64", "--repeats", "1", "--target-s", "0.1", "--warmup-s", "0"])
        // Each worker thread adds scratch of its own: the bound is for two.
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let peak = line["peak_heap_mb"].as_f64().unwrap();
    assert!((40.0..95.0).contains(&peak), "wgan-gp32 at batch 64 held {peak} MB at its peak");
}

#[test]
fn bench_parity_compares_the_first_steps_of_two_backends() {
    // On a CPU machine: Candle's kernels against ganzoo's; on a GPU machine the same
    // command with --device cuda compares the GPU with the CPU.
    let out = ganzoo(&["bench", "--parity", "2", "--kernels", "candle", "--models", "toy", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let p = &lines[0];
    assert_eq!((p["model"].as_str(), p["steps"].as_u64()), (Some("toy"), Some(2)), "{p}");
    assert_eq!((p["reference"].as_str(), p["candidate"].as_str()), (Some("cpu (ganzoo)"), Some("cpu (candle)")));
    let diffs: Vec<f64> = p["diffs"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    assert!(
        diffs[0] < 1e-3 && diffs[1] < 0.05 && diffs.iter().any(|&d| d > 0.0),
        "different kernels round differently: {p}"
    );
    // The penalty's second-order gradient on the same kernels, against finite differences.
    let penalty: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("penalty_check").is_some()).collect();
    let checks: Vec<&str> = penalty.iter().map(|l| l["penalty_check"].as_str().unwrap()).collect();
    assert_eq!(checks, ["mlp", "conv + layer norm"]);
    assert!(penalty.iter().all(|l| l["ok"] == true && l["checked"].as_u64().unwrap() > 50), "{lines:?}");
    // Every op off the kernels (here Candle's), value and gradients, against the kernels;
    // then eval's two feature networks.
    let ops: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("op_parity").is_some()).collect();
    assert_eq!(ops.len(), 30, "{lines:?}");
    let networks: Vec<&str> = ops[28..].iter().map(|l| l["op_parity"].as_str().unwrap()).collect();
    assert_eq!(networks, ["classifier (mnist) features [4, 1, 28, 28]", "inception features [2, 3, 32, 32]"]);
    assert!(ops.iter().all(|l| l["ok"] == true && l["on"] == "cpu (candle)"), "{ops:?}");
    let batch_norm = ops.iter().find(|l| l["op_parity"].as_str().unwrap().starts_with("batch norm")).unwrap();
    let grads: Vec<&String> = batch_norm["errors"].as_object().unwrap().keys().collect();
    assert_eq!(grads, ["dbeta", "dgamma", "dx", "y"], "{batch_norm}");
    // Bounds below the differences fail, naming the model and the step.
    let strict = ganzoo(&[
        "bench",
        "--parity",
        "2",
        "--kernels",
        "candle",
        "--models",
        "toy",
        "--tolerance",
        "1e-9",
        "--drift",
        "1e-9",
    ]);
    assert_clean_failure(&strict, "parity failed: toy (losses over");
    assert!(String::from_utf8_lossy(&strict.stdout).contains("over its bound at step"), "{strict:?}");
    // Bounds with nothing to compare: refused, not ignored.
    let timing = ganzoo(&["bench", "--models", "toy", "--skip-ops", "--drift", "0.1"]);
    assert_clean_failure(&timing, "--drift bounds --parity's comparison");
}

#[test]
fn bench_parity_runs_the_cuda_convolution_path_on_the_cpu() {
    // `--kernels gemm`: the convolutions CUDA runs (Candle's conv2d for every product,
    // ganzoo's gradients), here on the CPU, through a whole DCGAN's first steps.
    let out = ganzoo(&["bench", "--parity", "2", "--kernels", "gemm", "--models", "dcgan32", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!((p["model"].as_str(), p["candidate"].as_str()), (Some("dcgan32"), Some("cpu (gemm)")), "{p}");
    let diffs: Vec<f64> = p["diffs"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    assert!(diffs[0] < 1e-4 && diffs[1] < 1e-2 && diffs.iter().any(|&d| d > 0.0), "{p}");
}

#[test]
fn bench_parity_in_bf16_checks_the_losses_and_the_penalty_gradient() {
    // bf16 activations on the CUDA path (here on the CPU) against the CPU's f32 kernels,
    // then the penalty's bf16 gradient against finite differences of the exact one.
    let args = ["bench", "--parity", "2", "--kernels", "gemm", "--precision", "bf16", "--models", "dcgan32", "--json"];
    let out = ganzoo(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let p = &lines[0];
    assert_eq!((p["candidate"].as_str(), p["tolerance"].as_f64()), (Some("cpu (gemm, bf16)"), Some(2e-2)), "{p}");
    let diffs: Vec<f64> = p["diffs"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    // bf16 rounds far more coarsely than f32 (the f32 gemm path: below 1e-4 at step 1).
    assert!(diffs[0] > 1e-4 && diffs[0] < 2e-2, "{p}");
    let mixed: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("mixed_precision_check").is_some()).collect();
    assert_eq!(mixed.len(), 2, "{lines:?}");
    for m in mixed {
        let err = m["relative_error"].as_f64().unwrap();
        assert!(m["ok"] == true && err > 1e-4 && err < 0.05 && m["precision"] == "bf16", "{m}");
    }
}

#[test]
fn a_bf16_run_records_its_precision_and_keeps_it_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let train = ["train", "wgan-gp", "--dataset", "8gaussians", "--iters", "2", "--log-every", "1"];
    let out = ganzoo(&[&train[..], &["--precision", "bf16", "--out", run_s]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("precision = \"bf16\""), "{config}");
    let lines = metrics_lines(&run);
    assert!(lines.len() == 2 && lines.iter().all(|m| m["d_loss"].as_f64().is_some_and(f64::is_finite)), "{lines:?}");
    assert_clean_failure(&ganzoo(&["train", "--resume", run_s, "--precision", "f32"]), "keeps its recipe");
    let out = ganzoo(&["train", "--resume", run_s, "--iters", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(run.join("config.toml")).unwrap().contains("precision = \"bf16\""));
}

/// A toy training run in the background, writing `run`.
fn spawn_training(run: &Path, extra: &[&str]) -> std::process::Child {
    let mut args = vec!["train", "gan", "--dataset", "8gaussians", "--batch-size", "16", "--log-every", "1"];
    args.extend(["--sample-every", "100000", "--checkpoint-every", "1", "--out", run.to_str().unwrap()]);
    args.extend(extra);
    Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `train --resume run` in the background, as `cargo xtask` runs it (`GANZOO_PROGRAM`).
/// SIGHUP is reset to its default there: a test runner started under `nohup` would
/// otherwise pass its ignoring on, which ganzoo keeps.
fn spawn_resume(run: &Path, iters: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_ganzoo"));
    command
        .args(["train", "--resume", run.to_str().unwrap(), "--iters", iters])
        .env("GANZOO_PROGRAM", "cargo xtask")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // SAFETY: signal(2) is async-signal-safe, as a hook between fork and exec must be.
    unsafe {
        command.pre_exec(|| match libc::signal(libc::SIGHUP, libc::SIG_DFL) {
            libc::SIG_ERR => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        })
    };
    command.spawn().unwrap()
}

/// Waits (at most a minute) until the run has a checkpoint at `iteration` or later.
fn wait_for_checkpoint(run: &Path, iteration: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let latest = std::fs::read_to_string(run.join("checkpoints/latest")).unwrap_or_default();
        let step: u64 = latest.trim().trim_start_matches("step-").parse().unwrap_or(0);
        if step >= iteration {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint {iteration} in {}", run.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let ok = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

/// The iterations of `metrics.jsonl`, which must be strictly increasing.
fn metric_iterations(run: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let its: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["iteration"].as_u64().unwrap())
        .collect();
    assert!(its.windows(2).all(|w| w[0] < w[1]), "metrics out of order: {its:?}");
    its
}

#[test]
fn overwrite_from_inside_a_folder_refuses_dot_and_dotdot() {
    let root = tempfile::tempdir().unwrap();
    let inner = root.path().join("project");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(inner.join("data.csv"), "a,b\n1,2\n").unwrap();
    for out in [".", ".."] {
        let result = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
            .args(["train", "gan", "--dataset", "8gaussians", "--iters", "1", "--out", out, "--overwrite"])
            .current_dir(&inner)
            .output()
            .unwrap();
        assert_clean_failure(&result, "is not a ganzoo run");
    }
    assert_eq!(std::fs::read_to_string(inner.join("data.csv")).unwrap(), "a,b\n1,2\n");
    assert_eq!(std::fs::read_dir(&inner).unwrap().count(), 1, "nothing was added either");
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
}

#[test]
fn sigterm_sigint_and_sighup_save_a_checkpoint_and_exit_143_130_and_129() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // SIGHUP: the terminal closed or the SSH session dropped.
    for (name, code, child) in [("TERM", 143, None), ("INT", 130, Some(())), ("HUP", 129, Some(()))] {
        let child = match child {
            None => spawn_training(&run, &["--iters", "1000000"]),
            Some(()) => spawn_resume(&run, "1000000"),
        };
        let before = std::fs::read_to_string(run.join("checkpoints/latest")).ok();
        let start: u64 = before.map_or(0, |b| b.trim().trim_start_matches("step-").parse().unwrap());
        wait_for_checkpoint(&run, start + 3);
        signal(&child, name);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "SIG{name}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The command printed is the one the user ran: `ganzoo`, or `cargo xtask`.
        let program = if name == "TERM" { "ganzoo" } else { "cargo xtask" };
        assert!(stdout.contains(&format!("continue with: {program} train --resume")), "{stdout}");
        let last = *metric_iterations(&run).last().unwrap();
        let latest = std::fs::read_to_string(run.join("checkpoints/latest")).unwrap();
        assert_eq!(latest.trim(), format!("step-{last:08}"), "the checkpoint is at the last logged iteration");
    }
}

/// `nohup ganzoo train …` asks the run to outlive the terminal: the SIGHUP it then gets
/// is ignored, not taken as a stop.
#[test]
fn under_nohup_a_hangup_does_not_stop_training() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = Command::new("nohup")
        .arg(env!("CARGO_BIN_EXE_ganzoo"))
        .args(["train", "gan", "--dataset", "8gaussians", "--batch-size", "16", "--log-every", "1"])
        .args(["--checkpoint-every", "1", "--iters", "1000000", "--out", run.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_checkpoint(&run, 3);
    signal(&child, "HUP");
    let latest = || -> u64 {
        let name = std::fs::read_to_string(run.join("checkpoints/latest")).unwrap_or_default();
        name.trim().trim_start_matches("step-").parse().unwrap_or(0)
    };
    let (at_hangup, deadline) = (latest(), std::time::Instant::now() + std::time::Duration::from_secs(60));
    while latest() < at_hangup + 20 {
        assert!(child.try_wait().unwrap().is_none(), "the hangup ended the run");
        assert!(std::time::Instant::now() < deadline, "no checkpoint after the hangup");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "stopped by the SIGTERM only: {stderr}");
}

/// A run folder moved away while training fails the run at its next write; the error
/// says why (it used to name only the missing file: "run/metrics.jsonl: No such file").
#[test]
fn a_run_folder_moved_while_training_is_named_as_gone() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let child = spawn_training(&run, &["--iters", "1000000"]);
    wait_for_checkpoint(&run, 3);
    std::fs::rename(&run, dir.path().join("moved")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_clean_failure(&out, "the run's folder is gone (moved or deleted while training?)");
    assert!(!run.exists(), "nothing made anew there");
    assert!(dir.path().join("moved/checkpoints/latest").is_file());
}

/// A reader that goes away (`ganzoo train … 2>&1 | head`, a closed terminal) costs the
/// progress lines, not the run: writing them used to panic, killing training with
/// nothing saved since the last checkpoint.
#[test]
fn training_outlives_a_closed_stderr_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = spawn_training(&run, &["--iters", "40"]);
    drop(child.stderr.take());
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(std::fs::read_to_string(run.join("checkpoints/latest")).unwrap().trim(), "step-00000040");
    assert_eq!(metric_iterations(&run).last(), Some(&40));
}

/// A stop during a long iteration is acknowledged at once (it used to be silent until
/// the iteration ended), and a second signal quits without waiting.
#[test]
fn a_stop_during_a_long_iteration_is_said_and_a_second_quits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // One iteration of 10⁹ critic steps: it never ends here.
    let child = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args(["train", "wgan", "--dataset", "8gaussians", "--n-critic", "1000000000", "--out", run.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    // train.log's "new run" line comes just before the signal handlers.
    while !std::fs::read_to_string(run.join("train.log")).is_ok_and(|l| l.contains("new run")) {
        assert!(started.elapsed().as_secs() < 60, "the run did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    signal(&child, "TERM");
    std::thread::sleep(std::time::Duration::from_millis(500));
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("stop requested: the run stops after its current step"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "no colour codes where stderr is no terminal: {stderr}");
    assert!(run.join("config.toml").is_file(), "the run stays");
}

/// mode-coverage trains 18 runs: a stop signal ends the one in progress with a checkpoint
/// and names the command that continues; `--resume` refuses runs of other settings.
#[test]
fn mode_coverage_stops_with_a_checkpoint_and_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figs");
    let o = out.to_str().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args(["figures", "mode-coverage", "--iters", "2000000", "--eval-every", "1000000", "--seeds", "1", "--out", o])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = out.join("mode-coverage-runs/gan-8gaussians-s0");
    let started = std::time::Instant::now();
    while !run.join("config.toml").is_file() {
        assert!(started.elapsed().as_secs() < 60, "the first run did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    signal(&child, "TERM");
    let done = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&done.stdout), String::from_utf8_lossy(&done.stderr));
    assert_eq!(done.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("mode-coverage: run 1 of 6") && stderr.contains("stop requested"), "{stderr}");
    let said = format!(
        "of {} (checkpoint saved); continue with: ganzoo figures mode-coverage --out {o} --seed 0 --iters 2000000 \
         --eval-every 1000000 --seeds 1 --resume",
        run.display()
    );
    assert!(stdout.starts_with("stopped at iteration ") && stdout.contains(&said), "{stdout}");
    assert!(run.join("checkpoints/latest").is_file());
    let other = ganzoo(&[
        "figures",
        "mode-coverage",
        "--iters",
        "20",
        "--eval-every",
        "10",
        "--seeds",
        "1",
        "--out",
        o,
        "--resume",
    ]);
    assert_clean_failure(&other, "gan-8gaussians-s0: was trained with other settings (`log_every` 1000000 (asked 10)");
    let shorter = ganzoo(&[
        "figures",
        "mode-coverage",
        "--iters",
        "1000000",
        "--eval-every",
        "1000000",
        "--seeds",
        "1",
        "--out",
        o,
        "--resume",
    ]);
    assert_clean_failure(
        &shorter,
        "was started for 2000000 iterations: a run is never shortened; pass --iters 2000000",
    );
    let both = ganzoo(&["figures", "mode-coverage", "--out", o, "--resume", "--overwrite"]);
    assert_clean_failure(&both, "cannot be used with");
    assert!(run.join("checkpoints/latest").is_file(), "nothing was removed");
}

#[test]
fn a_second_writer_is_refused_while_a_run_trains_and_readers_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = spawn_training(&run, &["--iters", "1000000"]);
    wait_for_checkpoint(&run, 2);
    let pid = child.id().to_string();
    let run_s = run.to_str().unwrap();
    let resume = ganzoo(&["train", "--resume", run_s]);
    assert_clean_failure(&resume, &format!("in use by pid {pid}"));
    let overwrite = ganzoo(&["train", "gan", "--dataset", "8gaussians", "--iters", "1", "--out", run_s, "--overwrite"]);
    assert_clean_failure(&overwrite, &format!("in use by pid {pid}"));
    // The page of a run in training is the trainer's to write; a comparison only reads it.
    assert_clean_failure(&ganzoo(&["report", run_s]), &format!("in use by pid {pid}"));
    let cmp = dir.path().join("cmp.html");
    let both = ganzoo(&["report", run_s, run_s, "--out", cmp.to_str().unwrap()]);
    assert!(both.status.success(), "{}", String::from_utf8_lossy(&both.stderr));
    assert!(std::fs::read_to_string(&cmp).unwrap().contains("training"));
    let npy = dir.path().join("s.npy");
    let sample = ganzoo(&["sample", "--run", run_s, "--n", "4", "--out", npy.to_str().unwrap()]);
    assert!(sample.status.success(), "{}", String::from_utf8_lossy(&sample.stderr));
    signal(&child, "TERM");
    assert_eq!(child.wait().unwrap().code(), Some(143));
    metric_iterations(&run);
}

#[test]
fn kill_9_at_any_moment_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = spawn_training(&run, &["--iters", "1000000"]);
    // Kill at assorted moments: mid-step, mid-checkpoint, mid-metrics line.
    for (round, delay_ms) in [0u64, 7, 13, 3, 29, 1].into_iter().enumerate() {
        wait_for_checkpoint(&run, 1);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms * 11));
        child.kill().unwrap();
        child.wait().unwrap();
        let npy = dir.path().join(format!("s{round}.npy"));
        let sample = ganzoo(&["sample", "--run", run.to_str().unwrap(), "--n", "3", "--out", npy.to_str().unwrap()]);
        assert!(sample.status.success(), "round {round}: {}", String::from_utf8_lossy(&sample.stderr));
        child = spawn_resume(&run, "1000000");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The run still finishes, with one metrics line per iteration in order.
    let latest = std::fs::read_to_string(run.join("checkpoints/latest")).unwrap();
    let at: u64 = latest.trim().trim_start_matches("step-").parse().unwrap();
    let target = (at + 5).to_string();
    let out = ganzoo(&["train", "--resume", run.to_str().unwrap(), "--iters", &target]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(metric_iterations(&run), (1..=at + 5).collect::<Vec<_>>());
}

/// kill -9 while an output file is being written leaves nothing in its folder: not the
/// file, not a `NAME.partial` that would block the next write (its bytes were in an
/// unnamed file, which goes with the process).
#[test]
#[cfg(target_os = "linux")]
fn kill_9_while_writing_an_output_leaves_nothing() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.npy");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args(["data", "sample", "swissroll", "--n", "100000000", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed as soon as it holds a file open in the folder (it takes seconds to write).
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let writing = loop {
        let open_there = std::fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(dir.path())));
        if open_there || std::time::Instant::now() > deadline {
            break open_there;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(writing && status.signal() == Some(9), "not killed mid-write: {status:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A count or time no benchmark needs (an extra digit, a negative number read as
/// 2⁶⁴ − 1) is refused before any work: each of these panicked (a vector's capacity
/// overflowed, seconds beyond a `Duration`) or would have waited for ever.
#[test]
fn bench_refuses_counts_and_times_beyond_any_run() {
    let max = u64::MAX.to_string();
    let quick = |flag: &str| {
        let defaults = [("--wait-quiet-s", "0"), ("--warmup-s", "0")];
        let mut args = vec!["bench", "--models", "toy", "--skip-ops"];
        args.extend(defaults.iter().filter(|(f, _)| *f != flag).flat_map(|&(f, v)| [f, v]));
        args
    };
    for (flag, value, said) in [
        ("--repeats", max.as_str(), "--repeats must lie in 1..=1000"),
        ("--repeats", "0", "--repeats must lie in 1..=1000"),
        ("--rounds", max.as_str(), "--rounds must lie in 1..=1000"),
        ("--threads", max.as_str(), "--threads must lie in 1..=1024"),
        ("--threads", "0", "--threads must lie in 1..=1024"),
        ("--parity", max.as_str(), "--parity takes 1..=100000 steps"),
        ("--parity", "0", "--parity takes 1..=100000 steps"),
        ("--wait-quiet-s", "1e300", "--wait-quiet-s must be a number of seconds from 0 to 86400"),
        ("--wait-quiet-s", "nan", "--wait-quiet-s must be"),
        ("--target-s", "1e300", "--target-s and --warmup-s in seconds up to 86400"),
        ("--warmup-s", "1e300", "--target-s and --warmup-s in seconds up to 86400"),
        ("--target-s", "0", "--target-s above 0"),
    ] {
        // Under `timeout`: a flag taken would time a model for ever.
        let out = Command::new("timeout")
            .args(["60", env!("CARGO_BIN_EXE_ganzoo")])
            .args(quick(flag))
            .args([flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {}", String::from_utf8_lossy(&out.stderr));
        assert_clean_failure(&out, said);
    }
}

#[test]
fn sizes_are_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("big");
    let o = out_dir.to_str().unwrap();
    let toy = ["train", "gan", "--dataset", "8gaussians", "--iters", "1"];
    let huge = ganzoo(&[&toy[..], &["--batch-size", "1000000000", "--out", o]].concat());
    assert_clean_failure(&huge, "needs about");
    assert_clean_failure(&huge, "--batch-size");
    assert!(!out_dir.exists(), "a refused start leaves no run directory");
    // A seed config.toml cannot hold (TOML integers are signed 64-bit) would leave a run
    // that could never be read back.
    let seed = ganzoo(&[&toy[..], &["--seed", "18446744073709551615", "--out", o]].concat());
    assert_clean_failure(&seed, "`seed = 18446744073709551615` is more than a run's config.toml can hold");
    assert!(!out_dir.exists(), "a refused start leaves no run directory");
    let capped = ganzoo(&[&toy[..], &["--max-memory", "50M", "--out", o]].concat());
    assert_clean_failure(&capped, "--max-memory allows 50.0 MiB");
    assert_clean_failure(&ganzoo(&[&toy[..], &["--max-memory", "lots", "--out", o]].concat()), "not a size");
    let root = fixture_root();
    let d = root.path().to_str().unwrap();
    assert_clean_failure(
        &ganzoo(&["train", "gan", "--data-dir", d, "--image-size", "100000", "--out", o]),
        "image size",
    );
    assert_clean_failure(
        &ganzoo(&["train", "gan", "--data-dir", d, "--image-size", "8000", "--out", o]),
        "needs about",
    );
    assert!(!out_dir.exists());
    // A real run, then samples: a picture of 10^8 samples is refused; .npy streams.
    let run = dir.path().join("run");
    assert!(ganzoo(&[&toy[..], &["--out", run.to_str().unwrap()]].concat()).status.success());
    let r = run.to_str().unwrap();
    // A resumed run keeps its batch size and networks: only the limit is named (the
    // hint listed flags that --resume refuses).
    let resumed = ganzoo(&["train", "--resume", r, "--iters", "2", "--max-memory", "1M"]);
    assert_clean_failure(&resumed, "--max-memory allows 1.0 MiB; raise --max-memory (a resumed run keeps");
    let png = dir.path().join("s.png");
    assert_clean_failure(
        &ganzoo(&["sample", "--run", r, "--n", "100000000", "--out", png.to_str().unwrap()]),
        "write .npy",
    );
    assert!(!png.exists());
    let npy = dir.path().join("s.npy");
    let streamed =
        ganzoo(&["sample", "--run", r, "--n", "5000", "--max-memory", "200M", "--out", npy.to_str().unwrap()]);
    assert!(streamed.status.success(), "{}", String::from_utf8_lossy(&streamed.stderr));
    assert_eq!(std::fs::metadata(&npy).unwrap().len(), 128 + 5000 * 2 * 4);
    let folder = dir.path().join("imgs");
    std::fs::create_dir(&folder).unwrap();
    image::RgbImage::new(4, 4).save(folder.join("a.png")).unwrap();
    let spec = format!("folder:{}", folder.display());
    assert_clean_failure(
        &ganzoo(&["data", "info", &spec, "--image-size", "8192", "--max-memory", "100M"]),
        "too large",
    );
    // Files read whole are read only if regular and small: a configuration that is
    // /dev/zero or a FIFO is refused at once (it was read until memory ran out, or
    // waited forever for a writer); so is an oversized one.
    let fifo = dir.path().join("fifo.toml");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; (1 << 20) + 1]).unwrap();
    for (config, said) in [
        ("/dev/zero", "/dev/zero: is not a regular file, not a configuration file"),
        (fifo.to_str().unwrap(), "fifo.toml: is not a regular file"),
        (big.to_str().unwrap(), "1048577 bytes is more than a configuration file can be (1048576 at most)"),
    ] {
        // Under `timeout`: were the file read, this would not end.
        let refused = Command::new("timeout")
            .args(["30", env!("CARGO_BIN_EXE_ganzoo"), "train", "gan", "--config", config, "--out", o])
            .output()
            .unwrap();
        assert_clean_failure(&refused, said);
    }
    // A classifier card may not describe a network larger than any ganzoo trains.
    let stem = dir.path().join("wide");
    let card =
        include_str!("../../ganzoo-eval/classifiers/mnist.json").replace("\"width\": 32", "\"width\": 1000000000");
    assert!(card.contains("1000000000"));
    std::fs::write(stem.with_extension("json"), card).unwrap();
    std::fs::write(
        stem.with_extension("safetensors"),
        include_bytes!("../../ganzoo-eval/classifiers/mnist.safetensors"),
    )
    .unwrap();
    let wide = ganzoo(&[
        "eval",
        "--samples",
        npy.to_str().unwrap(),
        "--dataset",
        "mnist",
        "--data-dir",
        d,
        "--classifier",
        stem.to_str().unwrap(),
    ]);
    assert_clean_failure(
        &wide,
        "wide: unsupported classifier: image size 28 (28 or 32), 1 channels (1 or 3), width 1000000000 (1 to 512)",
    );
}

#[test]
fn small_things_are_reported_as_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    // An error's cause once, not twice.
    let missing = ganzoo(&["data", "info", "mnist", "--data-dir", "/nonexistent-ganzoo", "--no-download"]);
    let err = String::from_utf8_lossy(&missing.stderr).to_string();
    assert!(!missing.status.success());
    // (The partial file's name taken by a folder: refused by name, once, and kept.)
    let blocked = dir.path().join("p.npy");
    std::fs::create_dir(dir.path().join("p.npy.partial")).unwrap();
    let npy_blocked = ganzoo(&["data", "sample", "swissroll", "--out", blocked.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&npy_blocked.stderr).to_string();
    assert_eq!(text.matches("p.npy.partial exists").count(), 1, "{text}");
    assert!(dir.path().join("p.npy.partial").is_dir() && !blocked.exists());
    assert!(!err.contains("panicked"), "{err}");
    // Output formats are what their names say.
    let root = fixture_root();
    let jpgx = dir.path().join("x.jpgx");
    let d = root.path().to_str().unwrap();
    assert_clean_failure(&ganzoo(&["data", "grid", "mnist", "--data-dir", d, "--out", jpgx.to_str().unwrap()]), ".png");
    assert!(!jpgx.exists());
    let q = dir.path().join("q.npy");
    let bounds = "parallel-line:THETA needs a number in [-1000000, 1000000]";
    assert_clean_failure(&ganzoo(&["data", "sample", "parallel-line:nan", "--out", q.to_str().unwrap()]), bounds);
    assert!(!q.exists());
    // 1e308 was accepted and training failed at its first step on infinite points.
    let pl = dir.path().join("pl");
    let far = ganzoo(&["train", "gan", "--dataset", "parallel-line:1e308", "--out", pl.to_str().unwrap()]);
    assert_clean_failure(&far, &format!("{bounds}, got '1e308'"));
    assert!(!pl.exists());
    // A damaged gzip member (bad CRC) is "damaged", not "truncated".
    let mnist = root.path().join("mnist");
    let raw = std::fs::read(mnist.join("train-images-idx3-ubyte")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &raw).unwrap();
    let mut gz = enc.finish().unwrap();
    let n = gz.len();
    gz[n - 8] ^= 0xff; // the CRC-32 in the trailer
    std::fs::remove_file(mnist.join("train-images-idx3-ubyte")).unwrap();
    std::fs::write(mnist.join("train-images-idx3-ubyte.gz"), &gz).unwrap();
    let crc = ganzoo(&["data", "info", "mnist", "--data-dir", d]);
    assert_clean_failure(&crc, "damaged");
    let text = String::from_utf8_lossy(&crc.stderr).to_string();
    assert!(!text.contains("truncated"), "{text}");
}

#[test]
fn eval_scores_a_toy_run_and_samples_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let train = ganzoo(&["train", "wgan-gp", "--dataset", "8gaussians", "--iters", "3", "--out", r]);
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    let out = ganzoo(&["eval", "--run", r, "--n", "300", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["samples"].as_u64(), report["modes"].as_u64()), (Some(300), Some(8)));
    let saved = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("eval").join(name)).unwrap()).unwrap()
    };
    assert_eq!(saved("step-00000003-n300.json"), report);
    // The run's page lists it (rewritten by eval: no process was training the run).
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(page.contains("<h2>Evaluations</h2>") && page.contains("href=\"eval/step-00000003-n300.json\""));
    // Measured another way, the checkpoint gets another file: none replaces another.
    assert!(ganzoo(&["eval", "--run", r]).status.success());
    assert!(ganzoo(&["eval", "--run", r, "--n", "300", "--seed", "4"]).status.success());
    assert_eq!(saved("step-00000003.json")["samples"].as_u64(), Some(2000));
    assert_eq!(saved("step-00000003-n300-s4.json")["samples"].as_u64(), Some(300));
    assert_ne!(saved("step-00000003-n300-s4.json"), report);
    assert_eq!(saved("step-00000003-n300.json"), report);
    // Real samples score like real samples; the fresh real set is not the file's own draw.
    let npy = dir.path().join("real.npy");
    assert!(ganzoo(&["data", "sample", "8gaussians", "--n", "1000", "--out", npy.to_str().unwrap()]).status.success());
    let real = ganzoo(&["eval", "--samples", npy.to_str().unwrap(), "--dataset", "8gaussians", "--json"]);
    let real: serde_json::Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(real["modes_covered"].as_u64(), Some(8));
    // Over the memory limit, the hint names what each form can change: a run's --n; a
    // file's samples are all of it (--n is refused with a file).
    let npy_s = npy.to_str().unwrap();
    let capped = ganzoo(&["eval", "--samples", npy_s, "--dataset", "8gaussians", "--max-memory", "1K"]);
    assert_clean_failure(&capped, "evaluate fewer samples (a smaller file), or raise --max-memory");
    assert_clean_failure(&ganzoo(&["eval", "--run", r, "--max-memory", "1K"]), "lower --n, or raise --max-memory");
    assert!(real["w1"].as_f64().unwrap() > 0.0, "{real}");
    let table = String::from_utf8_lossy(
        &ganzoo(&["eval", "--samples", npy.to_str().unwrap(), "--dataset", "8gaussians"]).stdout,
    )
    .to_string();
    assert!(table.contains("modes covered           8 / 8") && table.contains("W1 to real (exact)"), "{table}");
    // Wrong shapes, NaN, image runs, no source: clear errors.
    let nan = dir.path().join("nan.npy");
    let mut bytes = std::fs::read(&npy).unwrap();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&nan, bytes).unwrap();
    assert_clean_failure(
        &ganzoo(&["eval", "--samples", nan.to_str().unwrap(), "--dataset", "8gaussians"]),
        "non-finite",
    );
    let wide = dir.path().join("wide.npy");
    assert!(ganzoo(&["data", "sample", "8gaussians", "--n", "6", "--out", wide.to_str().unwrap()]).status.success());
    assert_clean_failure(
        &ganzoo(&["eval", "--samples", wide.to_str().unwrap(), "--dataset", "8gaussians", "--n", "0"]),
        "--n",
    );
    assert_clean_failure(&ganzoo(&["eval"]), "--run");
    // A flag that does not apply is refused, not ignored: a run is measured against its
    // own data, a file's samples are all used, toys have no image network.
    assert_clean_failure(&ganzoo(&["eval", "--run", r, "--dataset", "mnist"]), "cannot be used with '--dataset");
    let w = wide.to_str().unwrap();
    assert_clean_failure(&ganzoo(&["eval", "--samples", w, "--dataset", "8gaussians", "--n", "5"]), "'--n <N>'");
    assert_clean_failure(&ganzoo(&["eval", "--samples", w, "--dataset", "8gaussians", "--device", "cpu"]), "--device");
    let image_flags = [
        (&["--classifier", "c"][..], "--classifier"),
        (&["--features", "inception"], "--features inception"),
        (&["--inception-weights", "w.pth"], "--inception-weights"),
        (&["--image-size", "32"], "--image-size"),
        (&["--grayscale"], "--grayscale"),
    ];
    for (flag, named) in image_flags {
        let from_run = ganzoo(&[&["eval", "--run", r][..], flag].concat());
        assert_clean_failure(&from_run, &format!("{named} applies to images; samples of 8gaussians"));
        let from_file = ganzoo(&[&["eval", "--samples", w, "--dataset", "8gaussians"][..], flag].concat());
        assert_clean_failure(&from_file, &format!("{named} applies to images"));
    }
    let root = fixture_root();
    let image_run = dir.path().join("img");
    let d = root.path().to_str().unwrap();
    let ok = ganzoo(&[
        "train",
        "gan",
        "--data-dir",
        d,
        "--iters",
        "1",
        "--batch-size",
        "8",
        "--out",
        image_run.to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let ir = image_run.to_str().unwrap();
    assert_clean_failure(&ganzoo(&["eval", "--run", ir, "--classifier", "/nonexistent/c"]), "/nonexistent/c.json");
    // A classifier of the fixture (1 epoch), then image metrics: the fixture's 20 test
    // digits are too few for a 128-d covariance, which is said, not a NaN.
    let stem = dir.path().join("classifier");
    let s = stem.to_str().unwrap();
    let trained = ganzoo(&["train", "classifier", "--dataset", "mnist", "--data-dir", d, "--epochs", "1", "--out", s]);
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    assert!(String::from_utf8_lossy(&trained.stdout).contains("test accuracy"));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
    assert_eq!((card["dataset"].as_str(), card["epochs"].as_u64()), (Some("mnist"), Some(1)));
    assert_clean_failure(
        &ganzoo(&["train", "classifier", "--dataset", "mnist", "--data-dir", d, "--out", s]),
        "--overwrite",
    );
    // An --out the two files cannot take is refused before the data is read (a data dir
    // that does not exist would fail later), not after the epochs.
    let taken = dir.path().join("taken");
    std::fs::create_dir(taken.with_extension("safetensors")).unwrap();
    for (bad, said) in [
        (".", "--out names the stem of the two files to write"),
        (dir.path().to_str().unwrap(), "not a folder"),
        (&format!("{s}.json/c"), "classifier.json is not a folder"),
        (taken.to_str().unwrap(), "taken.safetensors is a folder"),
    ] {
        let train = ["train", "classifier", "--dataset", "mnist", "--data-dir", "/nonexistent", "--overwrite"];
        assert_clean_failure(&ganzoo(&[&train[..], &["--out", bad]].concat()), said);
    }
    let few = ganzoo(&["eval", "--run", ir, "--classifier", s, "--data-dir", d, "--n", "200"]);
    assert_clean_failure(&few, "needs more than 128 samples on each side; got 200 generated and 20 real");
    let images = dir.path().join("images.npy");
    assert!(ganzoo(&["sample", "--run", ir, "--n", "150", "--out", images.to_str().unwrap()]).status.success());
    let (im, cl) = (images.to_str().unwrap(), s);
    let from_file = ganzoo(&["eval", "--samples", im, "--dataset", "mnist", "--classifier", cl, "--data-dir", d]);
    assert_clean_failure(&from_file, "needs more than 128 samples on each side; got 150 generated and 20 real");
    let toy_file = dir.path().join("toy.npy");
    assert!(ganzoo(&["data", "sample", "8gaussians", "--n", "10", "--out", toy_file.to_str().unwrap()])
        .status
        .success());
    let wrong = ganzoo(&["eval", "--samples", toy_file.to_str().unwrap(), "--dataset", "mnist", "--classifier", cl]);
    assert_clean_failure(&wrong, "mnist samples are N×C×H×W images, the file holds [10, 2]");
    assert_clean_failure(
        &ganzoo(&["train", "classifier", "--dataset", "8gaussians"]),
        "mnist, fashion-mnist or cifar10",
    );
    // GAN flags are refused by name, not ignored (the classifier's recipe is fixed).
    let gan_flags: [&[&str]; 6] = [
        &["--iters", "5"],
        &["--batch-size", "7"],
        &["--lr-g", "0.1"],
        &["--image-size", "64"],
        &["--device", "cuda"],
        &["--checkpoint-every", "2"],
    ];
    for flag in gan_flags {
        let train = ["train", "classifier", "--dataset", "mnist", "--data-dir", d, "--overwrite", "--out", s];
        assert_clean_failure(&ganzoo(&[&train[..], flag].concat()), &format!("{} applies to GAN training", flag[0]));
    }
    // The same file again: refused, then replaced when asked.
    let again = ["sample", "--run", image_run.to_str().unwrap(), "--n", "3", "--out", images.to_str().unwrap()];
    assert_clean_failure(&ganzoo(&again), "images.npy exists: pass --overwrite to replace it");
    assert_eq!(npy_shape(&images), "(150, 1, 28, 28)");
    assert!(ganzoo(&[&again[..], &["--overwrite"]].concat()).status.success());
    assert_eq!(npy_shape(&images), "(3, 1, 28, 28)");
    assert_clean_failure(
        &ganzoo(&["eval", "--samples", images.to_str().unwrap(), "--dataset", "8gaussians"]),
        "takes N×2 points",
    );
}

/// An MNIST-format root with 64 training and `test` test digits (bars at ten angles, so
/// the shipped classifier sees something digit-like).
fn mnist_root(test: usize) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let mnist = root.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    for (split, n) in [("train", 64usize), ("t10k", test)] {
        let pixels: Vec<u8> = (0..n * 784)
            .map(|i| {
                let (k, y, x) = (i / 784, (i % 784) / 28, i % 28);
                let angle = (k % 10) as f64 * std::f64::consts::PI / 10.0;
                let d = (x as f64 - 13.5) * angle.sin() - (y as f64 - 13.5) * angle.cos();
                if d.abs() < 2.0 {
                    255
                } else {
                    0
                }
            })
            .collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        write_idx_images(&mnist.join(format!("{split}-images-idx3-ubyte")), n, 28, 28, &pixels).unwrap();
        write_idx_labels(&mnist.join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
    }
    root
}

fn metrics_lines(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn train_eval_every_scores_mnist_runs_with_the_shipped_classifier() {
    let root = mnist_root(200);
    let d = root.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let common = ["--data-dir", d, "--batch-size", "8", "--log-every", "1", "--eval-every", "2"];
    let out = ganzoo(&[&["train", "gan", "--iters", "2", "--out", r][..], &common[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = metrics_lines(&run);
    assert!(lines[0].get("eval").is_none(), "{}", lines[0]);
    let eval = &lines[1]["eval"];
    assert_eq!(eval["features"].as_str(), Some("classifier:mnist"), "{eval}");
    assert_eq!((eval["samples"].as_u64(), eval["real_samples"].as_u64()), (Some(2000), Some(200)));
    assert_eq!(eval["class_histogram"].as_array().unwrap().len(), 10);
    assert!(eval["fid"].as_f64().unwrap().is_finite() && run.join("quality.png").is_file());
    // The test split's features were cached beside the data, once.
    let cached: Vec<_> = std::fs::read_dir(root.path().join("mnist"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("ganzoo-features-classifier-mnist-"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    // Resumed, the run keeps measuring.
    let more = ganzoo(&["train", "--resume", r, "--iters", "4", "--data-dir", d]);
    assert!(more.status.success(), "{}", String::from_utf8_lossy(&more.stderr));
    let lines = metrics_lines(&run);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["eval"]["features"].as_str(), Some("classifier:mnist"));
    // No classifier ships for a folder of images: refused before a run directory exists.
    let (folder, run) = (format!("folder:{}", dir.path().join("pictures").display()), dir.path().join("folder-run"));
    let refused =
        ganzoo(&["train", "dcgan", "--dataset", &folder, "--eval-every", "10", "--out", run.to_str().unwrap()]);
    assert_clean_failure(&refused, "ships only for mnist, fashion-mnist and cifar10");
    assert!(!run.exists());
}

#[test]
fn eval_scores_cifar10_samples_with_the_shipped_classifier() {
    // A CIFAR-10 root: 64 training and 300 test records of pseudo-random pixels.
    let root = tempfile::tempdir().unwrap();
    let cifar = root.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&cifar).unwrap();
    let pixel = |i: usize, p: usize| ((i * 7919 + p * 104_729 + (p * p) % 251) % 256) as u8;
    let records = |n: usize, salt: usize| -> Vec<u8> {
        (0..n).flat_map(|i| std::iter::once((i % 10) as u8).chain((0..3072).map(move |p| pixel(i + salt, p)))).collect()
    };
    std::fs::write(cifar.join("data_batch_1.bin"), records(64, 1000)).unwrap();
    std::fs::write(cifar.join("test_batch.bin"), records(300, 0)).unwrap();
    let d = root.path().to_str().unwrap();
    // The test images themselves, as samples: FID 0 up to rounding; uniform noise: far off.
    let dir = tempfile::tempdir().unwrap();
    let (same, noise) = (dir.path().join("same.npy"), dir.path().join("noise.npy"));
    let test: Vec<f32> = (0..300).flat_map(|i| (0..3072).map(move |p| pixel(i, p) as f32 / 127.5 - 1.0)).collect();
    ganzoo_data::npy::write_npy_f32(&same, &[300, 3, 32, 32], &test).unwrap();
    let uniform: Vec<f32> = (0..300 * 3072usize).map(|i| ((i * 48_271) % 2001) as f32 / 1000.0 - 1.0).collect();
    ganzoo_data::npy::write_npy_f32(&noise, &[300, 3, 32, 32], &uniform).unwrap();
    let report = |npy: &Path, more: &[&str]| {
        let eval = ["eval", "--samples", npy.to_str().unwrap(), "--dataset", "cifar10", "--data-dir", d, "--json"];
        let out = ganzoo(&[&eval[..], more].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let fid = |npy: &Path| {
        let report: serde_json::Value = serde_json::from_slice(&report(npy, &[])).unwrap();
        assert_eq!(report["features"].as_str(), Some("classifier:cifar10"), "{report}");
        report["fid"].as_f64().unwrap()
    };
    let (same_fid, noise_fid) = (fid(&same), fid(&noise));
    assert!(same_fid.abs() < 1e-3 && noise_fid > 100.0, "same {same_fid}, noise {noise_fid}");
    // --device says where the classifier runs: the CPU, named, gives the same report.
    assert_eq!(report(&noise, &["--device", "cpu"]), report(&noise, &[]));
    // The table names what the samples were measured against: the network and the real images.
    let table = ganzoo(&["eval", "--samples", same.to_str().unwrap(), "--dataset", "cifar10", "--data-dir", d]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("reference        network classifier-cifar10-") && text.contains(", real images "), "{text}");
    // Digits are not CIFAR-10 images: the shape is named.
    let gray = dir.path().join("gray.npy");
    ganzoo_data::npy::write_npy_f32(&gray, &[300, 1, 28, 28], &vec![0.0; 300 * 784]).unwrap();
    let refused = ganzoo(&["eval", "--samples", gray.to_str().unwrap(), "--dataset", "cifar10", "--data-dir", d]);
    assert_clean_failure(&refused, "takes [3, 32, 32] images (C, H, W), got [1, 28, 28]");
}

#[test]
fn eval_with_inception_features_finds_weights_or_says_where_to_put_them() {
    let root = mnist_root(30);
    let d = root.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("x.npy");
    let images: Vec<f32> = (0..40 * 784).map(|i| ((i % 7) as f32 / 3.0 - 1.0).clamp(-1.0, 1.0)).collect();
    ganzoo_data::npy::write_npy_f32(&npy, &[40, 1, 28, 28], &images).unwrap();
    let x = npy.to_str().unwrap();
    let base = ["eval", "--samples", x, "--dataset", "mnist", "--data-dir", d, "--features", "inception"];
    let offline = ganzoo(&[&base[..], &["--no-download"]].concat());
    assert_clean_failure(&offline, "pt_inception-2015-12-05-6726825d.pth");
    assert_clean_failure(&offline, "--inception-weights FILE");
    // Weights of the right shapes (random): the count check comes before any image is seen.
    let weights = dir.path().join("w.safetensors");
    let (_, tensors) = ganzoo_eval::inception::Inception::random(1, &candle_core::Device::Cpu).unwrap();
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let w = weights.to_str().unwrap();
    let few = ganzoo(&[&base[..], &["--inception-weights", w]].concat());
    assert_clean_failure(&few, "needs more than 2048 samples on each side; got 40 generated and 30 real");
    assert_clean_failure(
        &ganzoo(&[&base[..], &["--classifier", "c"]].concat()),
        "--classifier needs --features classifier",
    );
    let mixed = ["eval", "--samples", x, "--dataset", "mnist", "--data-dir", d, "--inception-weights", w];
    assert_clean_failure(&ganzoo(&mixed), "--inception-weights needs --features inception");
    let damaged = dir.path().join("bad.pth");
    std::fs::write(&damaged, b"not a state dict").unwrap();
    let bad = ganzoo(&[&base[..], &["--inception-weights", damaged.to_str().unwrap()]].concat());
    assert_clean_failure(&bad, "bad.pth");
}

#[test]
fn figures_are_made_named_and_never_overwritten_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figs");
    let o = out.to_str().unwrap();
    let made = ganzoo(&["figures", "generator-costs", "--out", o]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(String::from_utf8_lossy(&made.stdout).contains("slopes at D = 0.01"));
    assert!(out.join("generator-costs.png").is_file() && out.join("generator-costs.csv").is_file());
    assert_clean_failure(&ganzoo(&["figures", "generator-costs", "--out", o]), "--overwrite");
    assert!(ganzoo(&["figures", "generator-costs", "--out", o, "--overwrite"]).status.success());
    assert_clean_failure(
        &ganzoo(&["figures", "nope", "--out", o]),
        "expected one of distances, critic-vs-discriminator",
    );
    assert_clean_failure(
        &ganzoo(&["figures", "mode-coverage", "--iters", "15", "--eval-every", "10"]),
        "multiple of --eval-every",
    );
    // mode-coverage's budget without mode-coverage: refused by name (was: ignored, or a
    // multiple-of error about a budget no figure asked for used).
    assert_clean_failure(
        &ganzoo(&["figures", "generator-costs", "--iters", "5", "--out", o, "--overwrite"]),
        "--iters sets mode-coverage's runs, and mode-coverage is not among the figures",
    );
    // Bounded before anything is planned: 10¹² seeds used to abort on the allocation.
    assert_clean_failure(&ganzoo(&["figures", "mode-coverage", "--seeds", "1000000000000"]), "more than 1000 runs");
    let past = ganzoo(&["figures", "mode-coverage", "--seed", "18446744073709551615", "--seeds", "2"]);
    assert_clean_failure(&past, "the seeds would pass 9223372036854775807");
    let past = ganzoo(&["figures", "mode-coverage", "--seed", "9223372036854775807", "--seeds", "2"]);
    assert_clean_failure(&past, "the seeds would pass 9223372036854775807");
    // Every output is checked before the first figure is computed: a later figure's file
    // (or a mode-coverage run) that exists stops the command with nothing written.
    let later = dir.path().join("later");
    std::fs::create_dir_all(later.join("mode-coverage-runs/wgan-25gaussians-s2")).unwrap();
    let l = later.to_str().unwrap();
    let refused = ganzoo(&["figures", "distances", "mode-coverage", "--out", l]);
    assert_clean_failure(&refused, "wgan-25gaussians-s2 exists: pass --overwrite");
    std::fs::write(later.join("generator-costs.csv"), "mine").unwrap();
    assert_clean_failure(
        &ganzoo(&["figures", "distances", "generator-costs", "--out", l]),
        "generator-costs.csv exists",
    );
    assert!(!later.join("distances.png").exists() && !later.join("distances.csv").exists());
    std::fs::create_dir(later.join("distances.png")).unwrap();
    let folder = ganzoo(&["figures", "distances", "--out", l, "--overwrite"]);
    assert_clean_failure(&folder, "distances.png: is a folder where the figure's file goes");
    let file = later.join("generator-costs.csv");
    assert_clean_failure(&ganzoo(&["figures", "distances", "--out", file.to_str().unwrap()]), "--out names a folder");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    // A name given twice is made once.
    let twice =
        ganzoo(&["figures", "generator-costs", "generator-costs", "--out", dir.path().join("twice").to_str().unwrap()]);
    assert!(twice.status.success(), "{}", String::from_utf8_lossy(&twice.stderr));
}

/// Debian's headless Chromium, which `.ci/run` installs; `None` (the browser checks are
/// skipped, saying so) only outside CI.
fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must have chromium (.ci/run installs it)");
        eprintln!("chromium not installed: the browser checks are skipped (apt-get install chromium)");
    }
    found
}

/// `page` rendered by headless Chromium: a screenshot of its first `1320 × 1600` pixels,
/// and the DOM after loading.
fn render(browser: &Path, page: &Path, shot: &Path) -> (image::RgbImage, String) {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", std::path::absolute(page).unwrap().display());
    let run = |extra: &[&str]| {
        let out = Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--hide-scrollbars", "--window-size=1320,1600"])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[&format!("--screenshot={}", shot.display())]);
    let dom = run(&["--dump-dom"]);
    (image::open(shot).unwrap().to_rgb8(), dom)
}

/// The share of pixels that are not (near) white, and how many distinct colours there are.
fn ink(img: &image::RgbImage) -> (f64, usize) {
    let inked = img.pixels().filter(|p| p.0.iter().any(|&c| c < 235)).count();
    let colours: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    (inked as f64 / (img.width() * img.height()) as f64, colours.len())
}

#[test]
fn reports_render_in_a_browser_and_report_rewrites_and_compares_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("wgan-gp-8g"), dir.path().join("gan-8g"));
    for (run, family) in [(&a, "wgan-gp"), (&b, "gan")] {
        let out = ganzoo(&[
            "train",
            family,
            "--dataset",
            "8gaussians",
            "--iters",
            "20",
            "--batch-size",
            "32",
            "--log-every",
            "5",
            "--sample-every",
            "10",
            "--eval-every",
            "10",
            "--out",
            run.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("report in "));
    }
    // `report RUN` redraws what a run shows from its files.
    for f in ["report.html", "curves.png", "quality.png"] {
        std::fs::remove_file(a.join(f)).unwrap();
    }
    let out = ganzoo(&["report", a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(["report.html", "curves.png", "quality.png"].iter().all(|f| a.join(f).is_file()));
    // Several runs: a comparison page, never over an existing file unasked.
    let cmp = dir.path().join("comparison.html");
    let compare = |extra: &[&str]| {
        let mut args = vec!["report", a.to_str().unwrap(), b.to_str().unwrap(), "--out", cmp.to_str().unwrap()];
        args.extend(extra);
        ganzoo(&args)
    };
    assert!(compare(&[]).status.success());
    assert_clean_failure(&compare(&[]), "exists: pass --overwrite");
    assert!(compare(&["--overwrite"]).status.success());
    let txt = dir.path().join("comparison.txt");
    assert_clean_failure(
        &ganzoo(&["report", a.to_str().unwrap(), b.to_str().unwrap(), "--out", txt.to_str().unwrap()]),
        ".html",
    );
    assert_clean_failure(&ganzoo(&["report", dir.path().to_str().unwrap()]), "not a run directory");
    // One run with --out: refused, not written in the run while --out is ignored.
    assert_clean_failure(
        &ganzoo(&["report", a.to_str().unwrap(), "--out", txt.to_str().unwrap()]),
        "names the page comparing several runs; one run's report is rewritten in the run",
    );

    // As a person sees them: rendered, not blank, the run's name in the heading, and
    // every image the page references on disk.
    let Some(browser) = chromium() else { return };
    for (page, name) in [(a.join("report.html"), "wgan-gp-8g"), (cmp.clone(), "gan-8g")] {
        let (shot, dom) = render(&browser, &page, &dir.path().join("shot.png"));
        let (share, colours) = ink(&shot);
        assert!(share > 0.02 && colours > 50, "{}: blank page? ink {share:.3}, {colours} colours", page.display());
        assert!(dom.contains(&format!("{name}</")), "{} does not show {name}", page.display());
        let html = std::fs::read_to_string(&page).unwrap();
        for f in ganzoo_train::html::local_references(&html) {
            assert!(page.parent().unwrap().join(&f).is_file(), "{} references {f}, which is missing", page.display());
        }
    }
}

#[test]
fn a_toy_run_stays_under_100_mib() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("toy");
    let out = ganzoo(&["train", "gan", "--dataset", "8gaussians", "--iters", "500", "--out", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let peak: f64 = stdout.split("peak memory ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!(peak > 1.0 && peak < 100.0, "peak resident memory {peak} MiB: {stdout}");
}

#[test]
fn cuda_without_a_cuda_build_says_how_to_get_one() {
    if cfg!(feature = "cuda") {
        eprintln!("a CUDA build: this test is for builds without the cuda feature");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = ganzoo(&["train", "gan", "--dataset", "8gaussians", "--device", "cuda", "--out", run.to_str().unwrap()]);
    assert_clean_failure(&out, "built without CUDA: build one with scripts/build-cuda.sh");
    assert!(!run.exists(), "nothing is created for a refused start");
    assert!(ganzoo(&["train", "gan", "--dataset", "8gaussians", "--iters", "1", "--out", run.to_str().unwrap()])
        .status
        .success());
    let npy = dir.path().join("s.npy");
    for args in [
        vec!["sample", "--run", run.to_str().unwrap(), "--device", "cuda", "--out", npy.to_str().unwrap()],
        vec!["eval", "--run", run.to_str().unwrap(), "--device", "cuda"],
        vec!["eval", "--samples", npy.to_str().unwrap(), "--dataset", "mnist", "--device", "cuda"],
        vec!["bench", "--models", "gan", "--device", "cuda"],
        vec!["sample", "--run", run.to_str().unwrap(), "--device", "cuda:1", "--out", npy.to_str().unwrap()],
    ] {
        assert_clean_failure(&ganzoo(&args), "built without CUDA");
    }
}

/// `scripts/gpu-check.sh` is run once per GPU lease, with no second try: its plumbing (the
/// steps, the workflow's commands and their checks, the four files it returns) runs here
/// on the CPU with this binary, shortened (one model's parity, no PyTorch).
#[test]
fn the_gpu_check_script_runs_its_cpu_part() {
    let python = ["python3", "python"].into_iter().find(|p| Command::new(p).arg("--version").output().is_ok());
    let Some(python) = python else {
        assert!(std::env::var_os("CI").is_none(), "CI must have Python 3");
        eprintln!("skipped: no python3 to write the workflow's data");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gpu-check.sh");
    let run = Command::new("bash")
        .arg(script)
        .envs([("CHECK_CPU_ONLY", "1"), ("PARITY_MODELS", "gan"), ("TORCHREF", "none"), ("BENCH_S", "0.2")])
        .env("LIMIT_S", "100000")
        .env("GANZOO_BIN", env!("CARGO_BIN_EXE_ganzoo"))
        .env("PYTHON", python)
        .env("OUT", out.path())
        .output()
        .unwrap();
    let summary = std::fs::read_to_string(out.path().join("summary.txt")).unwrap_or_default();
    assert!(run.status.success(), "{summary}\n{}", String::from_utf8_lossy(&run.stderr));
    let mut files: Vec<String> =
        std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    files.sort();
    assert_eq!(files, ["details.tar.gz", "performance.md", "summary.txt", "timed.txt"], "at most 8 files come back");
    // The timed choices, one heading per comparison (the CPU has none to log); each
    // comparison times the default, cuDNN's graph API's choice and timing.
    let timed = std::fs::read_to_string(out.path().join("timed.txt")).unwrap();
    for heading in ["tf32conv", "exact", "tf32conv-graphs"] {
        assert!(timed.contains(&format!("== batch 8, {heading}\n")), "{heading}: {timed}");
    }
    // The default in all three comparisons (CUDA graphs: the default alone), the others in two.
    for (row, n) in [("gan auto ", 3), ("gan cudnn-graph-any ", 2), ("gan timed ", 2)] {
        assert_eq!(summary.matches(row).count(), n, "{row}: {summary}");
    }
    assert!(summary.contains("parity with the steps replayed as CUDA graphs"), "{summary}");
    // Label and instance noise, eager against replayed (on the CPU nothing records).
    assert_eq!(summary.matches("12 iterations: worst relative difference 0.00e+00 (bound 1e-4): ok").count(), 2);
    // eval's feature networks beside the ops; eval on the device against the CPU (here
    // both the CPU: the same numbers).
    assert_eq!(summary.matches("\"op_parity\":\"inception features [2, 3, 32, 32]\"").count(), 4, "{summary}");
    let eval_line = "eval on the device against the CPU, 640 f32 samples: fid 0.0e+00 relative";
    for needle in [
        "\"ok\":true",
        "SIGINT: exit status 130 (130 expected)",
        "wrote [64, 1, 28, 28] samples",
        eval_line,
        "exit status 0",
    ] {
        assert!(summary.contains(needle), "summary.txt lacks {needle}: {summary}");
    }
    assert!(!summary.contains("FAILED") && !summary.contains("skipped ("), "{summary}");
    let listing = Command::new("tar").arg("-tzf").arg(out.path().join("details.tar.gz")).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("workflow/dcgan/report.html") && listing.contains("parity.txt"), "{listing}");
    assert!(listing.contains("parity-graph.txt"), "{listing}");
    assert!(!listing.contains("checkpoints/") && !listing.contains("workflow/data/"), "{listing}");
}

#[test]
fn the_version_names_what_the_build_runs_on() {
    let out = ganzoo(&["--version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = if cfg!(feature = "cuda") { "(cpu, cuda" } else { "(cpu)" };
    assert!(out.status.success() && text.starts_with("ganzoo 0.") && text.contains(expected), "{text}");
}

#[test]
fn devices_are_named_as_pytorch_names_them() {
    for device in ["gpu", "cuda:", "cuda:x", "cuda:-1", "CUDA"] {
        let out = ganzoo(&["train", "gan", "--dataset", "8gaussians", "--device", device]);
        assert_clean_failure(&out, "expected cpu, cuda or cuda:N");
        assert_eq!(out.status.code(), Some(2), "a usage error");
    }
    let help = String::from_utf8_lossy(&ganzoo(&["sample", "--help"]).stdout).to_string();
    assert!(help.contains("cuda:N") && help.contains("--precision"), "{help}");
    assert_clean_failure(
        &ganzoo(&["eval", "--samples", "x.npy", "--dataset", "8gaussians", "--precision", "bf16"]),
        "--run",
    );
}

/// A run on a folder read in gray resumes without its data flags: the folder is read
/// again at the run's size and in gray (was: read as RGB, refused as 3 channels against 1).
/// `eval` reads it so too, and compares with the folder's images, a folder having no test
/// split (was: "has no test split to compare with", whatever was asked).
#[test]
fn a_grayscale_folder_run_resumes_and_is_evaluated_as_it_was_read() {
    let dir = tempfile::tempdir().unwrap();
    for (class, shade) in [("a", 40u8), ("b", 200)] {
        std::fs::create_dir_all(dir.path().join("pictures").join(class)).unwrap();
        for i in 0..4u8 {
            let img = image::RgbImage::from_fn(20, 24, |x, y| image::Rgb([shade, (x * 9) as u8, (y * 7) as u8 ^ i]));
            img.save(dir.path().join("pictures").join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    let (folder, run) = (format!("folder:{}", dir.path().join("pictures").display()), dir.path().join("run"));
    let r = run.to_str().unwrap();
    // Named relative to the folder training starts in; resumed and evaluated from another
    // (the run recorded `folder:pictures` and read it from wherever it was resumed).
    let args =
        ["train", "dcgan", "--dataset", "folder:pictures", "--grayscale", "--image-size", "28", "--batch-size", "4"];
    let first = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .args([&args[..], &["--iters", "2", "--out", "run"]].concat())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("channels = 1") && config.contains(&format!("data = \"{folder}\"")), "{config}");
    let more = ganzoo(&["train", "--resume", r, "--iters", "3"]);
    assert!(more.status.success(), "{}", String::from_utf8_lossy(&more.stderr));
    assert!(String::from_utf8_lossy(&more.stdout).contains("finished 3 iterations"));
    assert_clean_failure(&ganzoo(&["eval", "--run", r]), "no classifier ships for an image folder");
    assert_clean_failure(&ganzoo(&["eval", "--run", r, "--image-size", "32"]), "a run's are read as it was trained");
    // Weights of the right shapes (random): the count check names the folder's 8 images.
    let weights = dir.path().join("w.safetensors");
    let (_, tensors) = ganzoo_eval::inception::Inception::random(1, &candle_core::Device::Cpu).unwrap();
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let inception = ["--features", "inception", "--inception-weights", weights.to_str().unwrap()];
    let few = ganzoo(&[&["eval", "--run", r, "--n", "40"][..], &inception].concat());
    assert_clean_failure(&few, "needs more than 2048 samples on each side; got 40 generated and 8 real");
    let npy = dir.path().join("x.npy");
    ganzoo_data::npy::write_npy_f32(&npy, &[30, 1, 28, 28], &vec![0.0; 30 * 784]).unwrap();
    let file = ["eval", "--samples", npy.to_str().unwrap(), "--dataset", &folder];
    assert_clean_failure(&ganzoo(&[&file[..], &inception].concat()), "got 30 generated and 8 real");
}
