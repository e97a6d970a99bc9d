//! Shared helpers: fixtures the tests make themselves, where the real data is (for
//! the tests marked `#[ignore = "reads real data …"]`, which `cargo test --workspace
//! -- --include-ignored` runs), a tiny HTTP server on 127.0.0.1.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use ganzoo::data::idx::{write_idx_images, write_idx_labels};
use ganzoo::data::ImageDataset;
use rand::{Rng, SeedableRng};

/// Rewrites the configuration each of `run`'s checkpoints keeps, as if they had been
/// trained with `config`: how a test changes a recipe under a stopped run (to make it
/// diverge, say), which a resume otherwise refuses (tested in `train.rs`).
pub fn pretend_trained_with(run: &Path, config: &ganzoo::train::TrainConfig) {
    for entry in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.is_dir() {
            std::fs::write(dir.join("config.toml"), config.to_toml().unwrap()).unwrap();
        }
    }
}

/// `../shared/data` beside the checkout.
pub fn shared_data() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(dir.is_dir(), "real data expected in {} (see the README)", dir.display());
    dir
}

/// `n` synthetic 28×28 grayscale "digits", label `i % 10`: a bright bar whose angle and
/// place depend on the label, on seeded noise. Enough structure for a GAN to train on.
pub fn digits(n: usize, seed: u64) -> ImageDataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * 784);
    for i in 0..n {
        let angle = (i % 10) as f64 * std::f64::consts::PI / 10.0;
        let (c, s) = (angle.cos(), angle.sin());
        for y in 0..28 {
            for x in 0..28 {
                let (dx, dy) = (x as f64 - 13.5, y as f64 - 13.5);
                let across = (dx * s - dy * c).abs();
                let along = (dx * c + dy * s).abs();
                let ink = if across < 2.5 && along < 10.0 { 220.0 } else { 0.0 };
                pixels.push((ink + rng.random::<f64>() * 30.0).min(255.0) as u8);
            }
        }
    }
    let labels = (0..n).map(|i| (i % 10) as u32).collect();
    let names = (0..10).map(|d| d.to_string()).collect();
    let shape = ganzoo::data::ImageShape { channels: 1, height: 28, width: 28 };
    ImageDataset::new(pixels, labels, shape, names).unwrap()
}

/// Writes `data` as an MNIST split (`train` or `t10k`) under its standard gzipped names in `dir`.
pub fn write_mnist_split(dir: &Path, split: &str, data: &ImageDataset) {
    std::fs::create_dir_all(dir).unwrap();
    let raw = tempfile::tempdir().unwrap();
    let (img, lab) = (raw.path().join("i"), raw.path().join("l"));
    let labels: Vec<u8> = data.labels().iter().map(|&l| l as u8).collect();
    write_idx_images(&img, data.len(), 28, 28, data.pixels()).unwrap();
    write_idx_labels(&lab, &labels).unwrap();
    for (file, kind) in [(img, "images-idx3"), (lab, "labels-idx1")] {
        std::fs::write(dir.join(format!("{split}-{kind}-ubyte.gz")), gzip(&std::fs::read(file).unwrap())).unwrap();
    }
}

/// A data root holding a small synthetic MNIST (`n` training, `n / 2` test digits) under `mnist/`.
pub fn mnist_root(n: usize) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    write_mnist_split(&root.path().join("mnist"), "train", &digits(n, 1));
    write_mnist_split(&root.path().join("mnist"), "t10k", &digits(n / 2, 2));
    root
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// Serves `files` (URL path → body) over HTTP/1.1 on 127.0.0.1; returns the base URL.
/// Unknown paths get 404. The thread ends with the test process.
pub fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req).lines().next().unwrap_or_default().to_string();
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, body) = match files.get(&path) {
                Some(body) => ("200 OK", body.clone()),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/")
}

/// Runs the test named `test` (its full path, e.g. `kernels::some_test`) again in a
/// child process of this test binary with `var=value` set, and asserts that it passed.
/// For settings read once per process or thread (`CANDLE_GRAD_DO_NOT_DETACH`, `GANZOO_KERNELS`).
pub fn rerun_in_child(test: &str, setting: (&str, &str)) {
    rerun_in_child_with(test, &[setting]);
}

/// [`rerun_in_child`] with several variables set.
pub fn rerun_in_child_with(test: &str, settings: &[(&str, &str)]) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test])
        .envs(settings.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} with {settings:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
