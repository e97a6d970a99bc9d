//! Writes the inputs of the Inception port check: InceptionV3 weights drawn by
//! `Inception::random(SEED)` and a few fixed images, as one safetensors file that
//! `scripts/inception-fixture.py` runs through pytorch-fid's own network.
//!
//! `cargo run --release -p ganzoo-eval --example inception_probe -- OUT.safetensors`

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use ganzoo_eval::inception::Inception;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The seed the fixture's weights are drawn from (the test draws them again).
const SEED: u64 = 2015;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).ok_or("usage: inception_probe OUT.safetensors")?;
    let (_, mut tensors): (_, HashMap<String, Tensor>) = Inception::random(SEED, &Device::Cpu)?;
    // Uniform noise in [-1, 1] in the shapes ganzoo's data sets have (resized up to 299).
    for (name, shape, seed) in
        [("input.gray28", (2, 1, 28, 28), 1), ("input.rgb32", (2, 3, 32, 32), 2), ("input.rgb64", (1, 3, 64, 64), 3)]
    {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..=1.0)).collect();
        tensors.insert(name.to_string(), Tensor::from_vec(values, shape, &Device::Cpu)?);
    }
    candle_core::safetensors::save(&tensors, &out)?;
    println!("wrote {} tensors to {out} (seed {SEED})", tensors.len());
    Ok(())
}
