//! Images per second through the InceptionV3 port (random weights: speed does not depend
//! on them), MNIST-sized gray images resized to 299×299 as `eval --features inception`
//! runs them. `scripts/inception-throughput.py` times pytorch-fid's network the same way;
//! run the two one after the other, alternating (docs/performance.md, *InceptionV3 features*).
//!
//! `cargo run --release -p ganzoo-eval --example inception_throughput -- [BATCH] [ROUNDS]`

use std::time::Instant;

use candle_core::{Device, Tensor};
use ganzoo_eval::inception::Inception;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: usize| -> Result<usize, String> {
        std::env::args().nth(i).map_or(Ok(default), |s| s.parse().map_err(|e| format!("argument {i} ({s}): {e}")))
    };
    let (batch, rounds) = (arg(1, 16)?.max(1), arg(2, 3)?.max(1));
    let (net, _) = Inception::random(2015, &Device::Cpu)?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let pixels: Vec<f32> = (0..batch * 28 * 28).map(|_| rng.random_range(-1.0..=1.0)).collect();
    let images = Tensor::from_vec(pixels, (batch, 1, 28, 28), &Device::Cpu)?;
    net.features(&images)?;
    for _ in 0..rounds {
        let start = Instant::now();
        net.features(&images)?;
        let s = start.elapsed().as_secs_f64();
        println!("ganzoo batch {batch}: {s:.3} s, {:.2} images/s", batch as f64 / s);
    }
    Ok(())
}
