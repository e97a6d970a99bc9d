//! Every parser of user files, fed mutated valid files and random bytes: each answer is
//! an error or a valid value — never a panic, never an allocation beyond a bound derived
//! from the file. Deterministic (seeded), so a failure reproduces.

use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use candle_core::Device;
use ganzoo::data::cifar::load_batches;
use ganzoo::data::folder::load_image_folder;
use ganzoo::data::idx::{write_idx_images, write_idx_labels, IdxReader};
use ganzoo::data::npy::{read_npy_f32, write_npy_f32};
use ganzoo::data::{ImageFolderConfig, ToyDistribution};
use ganzoo::train::{checkpoint, DataSource, Family, RunDir, Silent, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::alloc::peak_during;
use crate::common::gzip;

const MIB: usize = 1 << 20;
/// Mutants per parser.
const CASES: usize = 250;

/// `CASES` variations of `original`: flipped bytes, extreme header words, truncations,
/// appended and spliced bytes, numbers swapped for extreme ones (in text), random bytes.
fn mutants(original: &[u8], seed: u64) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let extremes: [&[u8]; 6] = [b"18446744073709551615", b"-1", b"0", b"1e308", b"nan", b"4294967296"];
    (0..CASES)
        .map(|case| {
            let mut m = original.to_vec();
            let len = m.len().max(1);
            match case % 7 {
                0 => (0..rng.random_range(1..5)).for_each(|_| {
                    let i = rng.random_range(0..len);
                    if let Some(b) = m.get_mut(i) {
                        *b ^= 1 << rng.random_range(0..8);
                    }
                }),
                1 => {
                    let word: u32 = [u32::MAX, 0x7fff_ffff, 0, 1 << 20, rng.random()][rng.random_range(0..5)];
                    let at = 4 * rng.random_range(0..8usize);
                    if m.len() >= at + 4 {
                        m[at..at + 4].copy_from_slice(&word.to_be_bytes());
                    }
                }
                2 => m.truncate(rng.random_range(0..len)),
                3 => m.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
                4 => {
                    let (a, b) = (rng.random_range(0..len), rng.random_range(0..len));
                    let chunk = m[a.min(b).min(m.len())..a.max(b).min(m.len())].to_vec();
                    let at = rng.random_range(0..=m.len());
                    m.splice(at..at, chunk);
                }
                5 => {
                    // Text: a number replaced by an extreme one.
                    let digits: Vec<usize> = (0..m.len()).filter(|&i| m[i].is_ascii_digit()).collect();
                    if let Some(&i) = digits.get(rng.random_range(0..digits.len().max(1))) {
                        let end = (i..m.len()).find(|&j| !m[j].is_ascii_digit() && m[j] != b'.').unwrap_or(m.len());
                        m.splice(i..end, extremes[rng.random_range(0..extremes.len())].iter().copied());
                    }
                }
                _ => m = (0..rng.random_range(0..2 * len)).map(|_| rng.random::<u8>()).collect(),
            }
            m
        })
        .collect()
}

/// Runs `parse` on every mutant written to `path`; asserts no panic and a peak
/// allocation of at most `bound(mutant)`. Returns how many mutants parsed as valid.
fn fuzz<T>(
    path: &Path,
    original: &[u8],
    seed: u64,
    bound: impl Fn(&[u8]) -> usize,
    parse: impl Fn(&Path) -> Option<T>,
) -> usize {
    let mut valid = 0;
    for (case, m) in mutants(original, seed).into_iter().enumerate() {
        std::fs::write(path, &m).unwrap();
        let (outcome, peak) = peak_during(|| catch_unwind(AssertUnwindSafe(|| parse(path))));
        let outcome = outcome.unwrap_or_else(|_| panic!("{}: mutant {case} panicked", path.display()));
        let limit = bound(&m);
        assert!(peak <= limit, "{}: mutant {case} allocated {peak} bytes, bound {limit}", path.display());
        valid += usize::from(outcome.is_some());
    }
    valid
}

fn idx_fixture(n: usize) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..n * 49).map(|i| (i * 7 % 256) as u8).collect();
    write_idx_images(&dir.path().join("i"), n, 7, 7, &pixels).unwrap();
    write_idx_labels(&dir.path().join("l"), &(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>()).unwrap();
    (std::fs::read(dir.path().join("i")).unwrap(), std::fs::read(dir.path().join("l")).unwrap())
}

/// What a gzip stream decompresses to before it ends or fails (at most 64 MiB).
fn gunzipped_len(bytes: &[u8]) -> usize {
    let mut d = flate2::read::GzDecoder::new(bytes).take(64 << 20);
    let mut buf = [0u8; 1 << 16];
    let mut n = 0;
    while let Ok(k) = d.read(&mut buf) {
        if k == 0 {
            break;
        }
        n += k;
    }
    n
}

#[test]
fn idx_files_raw_and_gzipped_never_panic_or_over_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = idx_fixture(30);
    let read = |p: &Path| {
        let r = IdxReader::open(p).ok()?;
        r.images().ok().map(|i| i.count).or_else(|| r.labels().ok().map(|l| l.len()))
    };
    let raw_bound = |m: &[u8]| 3 * m.len() + MIB;
    let gz_bound = |m: &[u8]| 3 * m.len().max(gunzipped_len(m)) + MIB;
    let path = dir.path().join("f");
    assert!(fuzz(&path, &images, 1, raw_bound, read) > 0, "some mutants stay valid");
    fuzz(&path, &labels, 2, raw_bound, read);
    fuzz(&path, &gzip(&images), 3, gz_bound, read);
    fuzz(&path, &gzip(&labels), 4, gz_bound, read);
}

#[test]
fn idx_headers_that_lie_are_refused_without_allocating_what_they_promise() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let header = |n: u32, r: u32, c: u32| [0x803u32, n, r, c].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
    // Sizes whose product overflows 64 bits, and a promise of 47 MB in a 100-byte file.
    for (bytes, needle) in [
        (header(u32::MAX, u32::MAX, u32::MAX), "more values than a file of this size"),
        ([header(60_000, 28, 28), vec![0; 84]].concat(), "more values than a file of this size"),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let (r, peak) = peak_during(|| IdxReader::open(&path).and_then(|r| r.images()));
        let err = r.unwrap_err().to_string();
        assert!(err.contains(needle) && err.contains("truncated"), "{err}");
        assert!(peak < 64 * 1024, "{peak} bytes allocated");
        std::fs::write(&path, gzip(&bytes)).unwrap();
        let (r, peak) = peak_during(|| IdxReader::open(&path).and_then(|r| r.images()));
        assert!(r.is_err() && peak < MIB, "{peak} bytes allocated");
    }
    // A gzip bomb: a header promising 10 images of 28×28, then 64 MiB of zeros, in ~64 KB.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&header(10, 28, 28)).unwrap();
    for _ in 0..64 {
        enc.write_all(&vec![0u8; MIB]).unwrap();
    }
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    let (r, peak) = peak_during(|| IdxReader::open(&path).and_then(|r| r.images()));
    let err = r.unwrap_err().to_string();
    assert!(err.contains("more bytes follow"), "{err}");
    assert!(peak < MIB, "the bomb was decompressed: {peak} bytes allocated");
}

#[test]
fn cifar_batches_never_panic_or_over_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<u8> =
        (0..4).flat_map(|i: u8| std::iter::once(i).chain((0..3072).map(move |p| (p % 251) as u8 ^ i))).collect();
    let names: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let path = dir.path().join("data_batch_1.bin");
    let valid = fuzz(&path, &records, 5, |m| 3 * m.len() + MIB, |p| load_batches(&[p], &names).ok());
    assert!(valid > 0);
}

#[test]
fn npy_files_never_panic_or_over_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let values: Vec<f32> = (0..60).map(|i| i as f32 * 0.5).collect();
    write_npy_f32(&path, &[30, 2], &values).unwrap();
    let original = std::fs::read(&path).unwrap();
    let valid = fuzz(&path, &original, 6, |m| 3 * m.len() + MIB, |p| read_npy_f32(p).ok());
    assert!(valid > 0);
}

#[test]
fn image_folders_never_panic_or_over_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("imgs");
    std::fs::create_dir(&folder).unwrap();
    let img = image::RgbImage::from_fn(12, 9, |x, y| image::Rgb([(x * 20) as u8, (y * 25) as u8, 100]));
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    // A decoder may hold one image of up to the decode limit, whatever the file's size.
    let bound = |_: &[u8]| 2 * ganzoo::data::folder::MAX_DECODED_BYTES as usize + MIB;
    let load = |p: &Path| load_image_folder(p.parent().unwrap(), ImageFolderConfig::new(8, false)).ok();
    fuzz(&folder.join("a.png"), png.get_ref(), 7, bound, load);
    std::fs::remove_file(folder.join("a.png")).unwrap();
    fuzz(&folder.join("a.jpg"), jpeg.get_ref(), 8, bound, load);
}

#[test]
fn configs_and_checkpoints_never_panic_or_over_allocate() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    let mut c = TrainConfig::preset(Family::WganGp, DataSource::Toy(ToyDistribution::EightGaussians));
    (c.iters, c.batch_size, c.checkpoint_every) = (Some(2), 8, 1);
    let mut t = Trainer::new(c.clone(), None, RunDir::create(&run, false).unwrap(), Device::Cpu).unwrap();
    t.run(&mut Silent).unwrap();
    drop(t);
    let scratch = root.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let toml = c.to_toml().unwrap();
    fuzz(
        &scratch.join("config.toml"),
        toml.as_bytes(),
        9,
        |m| 64 * m.len() + MIB,
        |p| TrainConfig::from_toml(&std::fs::read_to_string(p).ok()?).ok(),
    );
    let ck = checkpoint::latest(&run).unwrap().unwrap();
    let state = std::fs::read(ck.join("state.json")).unwrap();
    let valid = fuzz(
        &scratch.join("state.json"),
        &state,
        10,
        |m| 16 * m.len() + MIB,
        |p| checkpoint::read_state(p.parent().unwrap()).ok(),
    );
    assert!(valid > 0);
    let critic = std::fs::read(ck.join("critic.safetensors")).unwrap();
    let (run_dir, config) = RunDir::open(&run).unwrap();
    let players = ganzoo::train::networks::Players::build(&config, &[2], &Device::Cpu).unwrap();
    fuzz(
        &scratch.join("critic.safetensors"),
        &critic,
        11,
        |m| 4 * m.len() + MIB,
        |p| checkpoint::load_store(&players.critic_store, p).ok(),
    );
    drop(run_dir);
}

/// A named pipe where a file goes is refused at once. Opening one for reading waits for a
/// writer: here a writer comes after 5 s and closes at once, so a reader that waited
/// reads an empty file and fails with another message (the test fails, it does not hang).
#[test]
fn named_pipes_are_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = |name: &str| {
        let path = dir.path().join(name);
        assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success());
        let writer = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(5));
            let _ = std::fs::OpenOptions::new().write(true).open(writer);
        });
        path
    };
    let said = |e: String| assert!(e.contains("is not a regular file"), "{e}");
    said(IdxReader::open(fifo("train-images-idx3-ubyte")).err().unwrap().to_string());
    said(read_npy_f32(&fifo("s.npy")).unwrap_err().to_string());
    said(ganzoo::train::config::read_config_text(&fifo("config.toml")).unwrap_err().to_string());
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("checkpoints")).unwrap();
    std::fs::rename(fifo("pipe"), run.join("checkpoints/latest")).unwrap();
    said(checkpoint::latest(&run).unwrap_err().to_string());
    let images = dir.path().join("images/cat");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::rename(fifo("a.png"), images.join("a.png")).unwrap();
    let folder = load_image_folder(images.parent().unwrap(), ImageFolderConfig::new(8, false));
    assert!(folder.unwrap_err().to_string().contains("a.png: not a regular file"));
}
