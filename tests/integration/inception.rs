//! ganzoo's InceptionV3 against pytorch-fid's own network on the same random weights
//! (`tests/fixtures/inception-random.safetensors`, made by `scripts/inception-fixture.py`
//! from `cargo run --example inception_probe`), and the `.pth` reader on both formats.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use ganzoo::eval::inception::{Inception, FEATURES};

/// The seed `examples/inception_probe.rs` drew the fixture's weights from.
const PROBE_SEED: u64 = 2015;

fn fixture(name: &str) -> HashMap<String, Tensor> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

/// The port on ganzoo's kernels (channels-last, fused convolutions and pools) against
/// pytorch-fid's features.
#[test]
fn inception_matches_pytorch_fid_on_random_weights() {
    check_against_pytorch_fid();
}

/// The same on Candle's convolutions (`GANZOO_KERNELS=candle`, read once per process: a
/// child process), the NCHW path any other device takes too.
#[test]
fn inception_on_candles_convolutions_matches_pytorch_fid() {
    if std::env::var_os("GANZOO_KERNELS").is_none() {
        crate::common::rerun_in_child(
            "inception::inception_on_candles_convolutions_matches_pytorch_fid",
            ("GANZOO_KERNELS", "candle"),
        );
        return;
    }
    check_against_pytorch_fid();
}

fn check_against_pytorch_fid() {
    let fixture = fixture("inception-random.safetensors");
    let (net, _) = Inception::random(PROBE_SEED, &Device::Cpu).unwrap();
    for name in ["gray28", "rgb32", "rgb64"] {
        let x = &fixture[&format!("input.{name}")];
        let want = &fixture[&format!("features.{name}")];
        let got = net.features(x).unwrap();
        assert_eq!(got.dims(), [x.dim(0).unwrap(), FEATURES]);
        let err = max_abs(&(&got - want).unwrap());
        // Features of different images differ by this much: the error must be far below it.
        let spread = max_abs(&(want - want.mean_keepdim(0).unwrap().broadcast_as(want.shape()).unwrap()).unwrap());
        println!(
            "{name}: max |ganzoo − pytorch-fid| = {err:.3e}, max feature {:.3}, spread {spread:.3}",
            max_abs(want)
        );
        // Measured (docs/performance.md, *InceptionV3 features*): about 1e-5 on either path
        // (features up to 28, f32 through 94 convolutions done differently). Each single
        // departure from pytorch-fid tried moved them by far more: padding counted in the
        // average pools 1.2, an average pool in Mixed_7c 7.5, BN ε 1e-5 0.44.
        assert!(err < 1e-4, "{name}: features differ from pytorch-fid's by up to {err}");
    }
}

#[test]
fn pth_reader_reads_both_torch_save_formats() {
    use ganzoo::eval::pth::read_state_dict;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for file in ["state-dict-legacy.pth", "state-dict-zip.pth"] {
        let sd = read_state_dict(&dir.join(file), 1 << 30).unwrap();
        let mut names: Vec<_> = sd.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["a.weight", "base", "double", "half", "view"], "{file}");
        let f32s = |n: &str| sd[n].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(sd["a.weight"].dims(), [2, 3]);
        assert_eq!(f32s("a.weight"), [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], "{file}");
        assert_eq!(f32s("base"), (0..10).map(|i| i as f32 / 4.0).collect::<Vec<_>>(), "{file}");
        // A view four elements long, three into the storage it shares with `base`.
        assert_eq!(f32s("view"), [0.75, 1.0, 1.25, 1.5], "{file}");
        assert_eq!(sd["double"].flatten_all().unwrap().to_vec1::<f64>().unwrap(), [1e-300, -3.0], "{file}");
        let half = sd["half"].to_dtype(candle_core::DType::F32).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(half, [1.5, -2.25, 65504.0], "{file}");
    }
}

#[test]
fn pth_reader_names_the_file_on_damage_and_never_panics() {
    use ganzoo::eval::pth::read_state_dict;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    for file in ["state-dict-legacy.pth", "state-dict-zip.pth"] {
        let good = std::fs::read(dir.join(file)).unwrap();
        let path = tmp.path().join(file);
        // Every truncation, and single-byte changes throughout the legacy stream.
        for cut in (0..good.len()).step_by(7) {
            std::fs::write(&path, &good[..cut]).unwrap();
            let e = read_state_dict(&path, 1 << 30).unwrap_err().to_string();
            assert!(e.contains(file), "{e}");
        }
        for at in (0..good.len()).step_by(3) {
            let mut bad = good.clone();
            bad[at] = bad[at].wrapping_add(0x55);
            std::fs::write(&path, &bad).unwrap();
            if let Err(e) = read_state_dict(&path, 1 << 30) {
                assert!(e.to_string().contains(file), "{e}");
            }
        }
    }
    // A file larger than the caller's bound is refused before it is read.
    let e = read_state_dict(&dir.join("state-dict-zip.pth"), 100).unwrap_err().to_string();
    assert!(
        e.contains("state-dict-zip.pth") && e.contains("more than a PyTorch weights file can be (100 at most)"),
        "{e}"
    );
    let missing = tmp.path().join("absent.pth");
    assert!(read_state_dict(&missing, 1 << 30).unwrap_err().to_string().contains("absent.pth"));
}

mod weights {
    use std::collections::HashMap;

    use candle_core::Device;
    use ganzoo::data::download::{sha256_file, NoProgress};
    use ganzoo::eval::inception::Inception;
    use ganzoo::eval::inception_weights::{load_inception, WeightsLocator, FILE_NAME};

    use crate::common::serve;

    fn locator(dirs: Vec<std::path::PathBuf>, url: Option<String>, prefix: &str) -> WeightsLocator {
        WeightsLocator { explicit: None, dirs, url, sha256_prefix: prefix.to_string() }
    }

    #[test]
    fn sha256_of_a_known_vector() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("abc");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(sha256_file(&f).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn found_in_any_folder_else_downloaded_and_verified_into_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let (ours, torch) = (tmp.path().join("ganzoo"), tmp.path().join("torch"));
        std::fs::create_dir_all(&torch).unwrap();
        std::fs::write(torch.join(FILE_NAME), b"weights").unwrap();
        let found = locator(vec![ours.clone(), torch.clone()], None, "").locate(&mut NoProgress).unwrap();
        assert_eq!(found, torch.join(FILE_NAME));

        std::fs::remove_file(torch.join(FILE_NAME)).unwrap();
        let body = b"abc".to_vec();
        let base = serve(HashMap::from([(format!("/{FILE_NAME}"), body.clone())]));
        let url = format!("{}/{FILE_NAME}", base.trim_end_matches('/'));
        // The wrong checksum: refused, nothing left behind.
        let e = locator(vec![ours.clone()], Some(url.clone()), "6726825d").locate(&mut NoProgress).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("checksum mismatch") && msg.contains("--inception-weights"), "{msg}");
        assert_eq!(std::fs::read_dir(&ours).unwrap().count(), 0, "a failed download left a file");
        // The right one: kept under its canonical name.
        let got = locator(vec![ours.clone()], Some(url), "ba7816bf").locate(&mut NoProgress).unwrap();
        assert_eq!((got.clone(), std::fs::read(&got).unwrap()), (ours.join(FILE_NAME), body));
    }

    #[test]
    fn offline_without_the_file_says_where_to_put_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        // Nothing listens on port 1 of the loopback interface.
        let e = locator(vec![dir.clone()], Some("http://127.0.0.1:1/w.pth".into()), "6726825d")
            .locate(&mut NoProgress)
            .unwrap_err()
            .to_string();
        for part in [FILE_NAME, "download failed", "--inception-weights", &dir.display().to_string()] {
            assert!(e.contains(part), "{part} missing from: {e}");
        }
        let e = locator(vec![dir], None, "").locate(&mut NoProgress).unwrap_err().to_string();
        assert!(e.contains("downloads are off"), "{e}");
        let missing = tmp.path().join("nope.pth");
        let explicit = WeightsLocator { explicit: Some(missing), ..locator(vec![], None, "") };
        assert!(explicit.locate(&mut NoProgress).unwrap_err().to_string().contains("nope.pth"));
        // Not a regular file (a folder; on Unix /dev/zero, which would be hashed forever).
        let named =
            |p: &std::path::Path| WeightsLocator { explicit: Some(p.to_path_buf()), ..locator(vec![], None, "") };
        let e = named(tmp.path()).locate(&mut NoProgress).unwrap_err().to_string();
        assert!(e.contains("is a folder, not a weights file"), "{e}");
        #[cfg(unix)]
        {
            let e = named(std::path::Path::new("/dev/zero")).locate(&mut NoProgress).unwrap_err().to_string();
            assert!(e.contains("/dev/zero: is not a regular file, not a weights file"), "{e}");
        }
    }

    #[test]
    fn weight_files_load_or_fail_naming_file_and_tensor() {
        let tmp = tempfile::tempdir().unwrap();
        // A safetensors file of random weights gives the same network as those weights.
        let (net, tensors) = Inception::random(7, &Device::Cpu).unwrap();
        let file = tmp.path().join("w.safetensors");
        candle_core::safetensors::save(&tensors, &file).unwrap();
        let loaded = load_inception(&file, &Device::Cpu).unwrap();
        let x = candle_core::Tensor::rand(-1f32, 1f32, (1, 3, 32, 32), &Device::Cpu).unwrap();
        let diff = (net.features(&x).unwrap() - loaded.features(&x).unwrap()).unwrap();
        assert_eq!(super::max_abs(&diff), 0.0);
        // A state dict of something else: the missing tensor is named, with the file.
        let other = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state-dict-zip.pth");
        let e = load_inception(&other, &Device::Cpu).err().unwrap().to_string();
        assert!(e.contains("state-dict-zip.pth") && e.contains("Conv2d_1a_3x3.conv.weight"), "{e}");
        // A file too large to be Inception's is refused before it is read.
        let big = tmp.path().join("big.pth");
        std::fs::File::create(&big).unwrap().set_len(600 << 20).unwrap();
        let (e, peak) = crate::alloc::peak_during(|| load_inception(&big, &Device::Cpu).err().unwrap().to_string());
        let said = "big.pth: 629145600 bytes is more than a weights file can be (536870912 at most); any InceptionV3 weights file is smaller";
        assert!(e.ends_with(said), "{e}");
        assert!(peak < 1 << 20, "{peak} bytes held");
        // Named with --inception-weights it is refused before hashing, in the same words.
        let explicit = WeightsLocator { explicit: Some(big), ..WeightsLocator::new(None) };
        let e = explicit.locate(&mut NoProgress).unwrap_err().to_string();
        assert!(e.ends_with(said), "{e}");
    }
}

#[test]
fn real_features_are_computed_once_and_cached_next_to_the_data() {
    use ganzoo::eval::feature_cache::{cache_file, fingerprint_split, real_features, write};
    use ganzoo::eval::image::{FeatureExtractor, Seen};
    let (net, _) = Inception::random(3, &Device::Cpu).unwrap();
    let net = FeatureExtractor::Inception(net);
    let tmp = tempfile::tempdir().unwrap();
    // The first folder cannot be created (a file is in the way): the second one is used.
    std::fs::write(tmp.path().join("file"), b"").unwrap();
    let dirs = [tmp.path().join("file/sub"), tmp.path().join("cache")];
    let data = crate::common::digits(5, 1);
    let first = real_features(&net, &data, &dirs, |_, _| {}).unwrap();
    assert_eq!((first.len(), first.dim, first.classes), (5, FEATURES, 0));
    let file = cache_file(&dirs[1], &net.id().unwrap(), &fingerprint_split(&data));
    assert!(file.is_file(), "{} not written", file.display());
    // What the cache holds is what comes back (planted values prove it was read).
    let planted = Seen { features: vec![7.0; 5 * FEATURES], ..first.clone() };
    write(&file, &planted).unwrap();
    assert_eq!(real_features(&net, &data, &dirs, |_, _| {}).unwrap(), planted);
    // Other data: another file. A damaged cache: recomputed and replaced.
    let other = crate::common::digits(5, 2);
    assert_ne!(fingerprint_split(&other), fingerprint_split(&data));
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let again = real_features(&net, &data, &dirs, |_, _| {}).unwrap();
    assert_eq!(again, first);
    assert_eq!(std::fs::read(&file).unwrap().len(), bytes.len());
    // Only the cache files themselves were written (no temporaries left).
    let names: Vec<_> = std::fs::read_dir(&dirs[1]).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // A FIFO by the cache's name is passed over (recomputed), not waited on.
    #[cfg(unix)]
    {
        std::fs::remove_file(&file).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(&file).status().unwrap().success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(real_features(&net, &data, &dirs, |_, _| {}).unwrap()));
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(60)).expect("hung on a FIFO"), first);
    }
}

#[test]
fn image_metrics_in_inception_features_leave_out_the_class_metrics() {
    use ganzoo::eval::image::{image_metrics, Seen};
    use rand::{Rng, SeedableRng};
    let normal = |n: usize, shift: f32, seed: u64| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let features = (0..n * FEATURES).map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal) + shift).collect();
        Seen { dim: FEATURES, classes: 0, features, probs: Vec::new(), reference: None }
    };
    let real = normal(2100, 0.0, 1);
    let report = image_metrics("inception", &normal(2100, 0.0, 2), &real, 0).unwrap();
    let far = image_metrics("inception", &normal(2100, 1.0, 3), &real, 0).unwrap();
    // Mean shift of 1 in each of 2048 dimensions: FID ≈ 2048 plus the sampling noise both share.
    assert!((far.fid - report.fid - 2048.0).abs() < 60.0, "{} vs {}", far.fid, report.fid);
    assert!(report.inception_score.is_none() && report.class_histogram.is_none());
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"features\":\"inception\"") && !json.contains("inception_score"), "{json}");
    // Too few samples for a 2048-d covariance: an error, not a NaN.
    assert!(image_metrics("inception", &normal(2000, 0.0, 4), &real, 0).is_err());
}
