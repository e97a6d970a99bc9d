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

#[test]
fn train_then_sample_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let data_dir = shared_data();
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
    let grid = dir.path().join("i.png");
    assert!(ganzoo(&["sample", "--run", run_s, "--interpolate", "--out", grid.to_str().unwrap()]).status.success());
    // Resume for two more iterations.
    let out = ganzoo(&["train", "--resume", run_s, "--data-dir", data_s, "--iters", "5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().count(), 5);
    assert_clean_failure(
        &ganzoo(&["train", "--resume", run_s, "--data-dir", data_s, "--lr-g", "0.1"]),
        "keeps its recipe",
    );
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
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plot = image::open(run.join("samples/iter-00000001.png")).unwrap();
    assert_eq!((plot.width(), plot.height()), (256, 256));
    let npy = dir.path().join("p.npy");
    assert!(ganzoo(&["sample", "--run", run.to_str().unwrap(), "--n", "7", "--out", npy.to_str().unwrap()])
        .status
        .success());
    assert!(String::from_utf8_lossy(&std::fs::read(&npy).unwrap()[..100]).contains("(7, 2)"));
}

#[test]
fn bad_training_requests_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = shared_data();
    let d = data_dir.to_str().unwrap();
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
        &ganzoo(&["train", "gan", "--data-dir", d, "--clip", "0.1", "--out", o]),
        "--clip is for wgan",
    );
    assert_clean_failure(&ganzoo(&["train", "--resume", dir.path().to_str().unwrap()]), "not a run directory");
    assert_clean_failure(
        &ganzoo(&["sample", "--run", dir.path().to_str().unwrap(), "--out", "a.png"]),
        "not a run directory",
    );
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
