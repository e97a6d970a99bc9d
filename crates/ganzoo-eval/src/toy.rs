//! Sample quality on 2-D toy distributions, as VEEGAN (Srivastava et al. 2017, §5.1)
//! and PacGAN (Lin et al. 2018, §5) count it on mixtures of Gaussians:
//!
//! - a sample is *high quality* when it lies within 3σ of its nearest mode centre (σ the
//!   toy's per-coordinate standard deviation);
//! - a mode is *covered* when it is the nearest centre of at least one high-quality
//!   sample (also reported: modes with at least [`STRICT_COUNT`] of them);
//! - KL(p ‖ uniform) of the histogram `p` of high-quality samples over the modes;
//! - for every toy (the Swiss roll has only this): W1 to as many fresh real samples, and
//!   the same statistic between two real sets as the floor a perfect generator reaches.
//!
//! Exact real samples are high quality with probability `1 − e^{−9/2} ≈ 0.989` (the
//! mass of a 2-D isotropic Gaussian within 3σ of its centre).

use ganzoo_data::ToyDistribution;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::transport::{w1, W1Method};
use crate::{EvalError, Result};

/// Modes with at least this many high-quality samples count in the strict coverage.
pub const STRICT_COUNT: usize = 20;
/// Mixed into the seed of the fresh real samples.
const REAL_SALT: u64 = 0x7e57_5eed_0f7e_a1a1;
/// Radius of a high-quality sample around its mode, in standard deviations.
pub const HQ_SIGMAS: f64 = 3.0;

/// The metrics of a set of samples from a toy generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToyReport {
    pub toy: String,
    pub samples: usize,
    /// Modes of the mixture (`None` for the Swiss roll).
    pub modes: Option<usize>,
    /// Modes that are the nearest centre of at least one high-quality sample.
    pub modes_covered: Option<usize>,
    /// Modes with at least [`STRICT_COUNT`] high-quality samples.
    pub modes_covered_strict: Option<usize>,
    /// Share of samples within 3σ of their nearest centre.
    pub high_quality: Option<f64>,
    /// KL(histogram of high-quality samples over modes ‖ uniform), in nats; `None` with
    /// no high-quality sample.
    pub kl_uniform: Option<f64>,
    /// W1 to as many fresh real samples.
    pub w1: f64,
    /// W1 between two fresh real sets of the same size: what a perfect generator gets.
    pub w1_real_floor: f64,
    pub w1_method: W1Method,
}

/// Scores `points` (row-major `n × 2`) as samples of `toy`; fresh real samples for W1 are
/// drawn from `seed` (salted: never the same draws as `toy.sample` with that seed).
pub fn toy_metrics(toy: ToyDistribution, points: &[f32], seed: u64) -> Result<ToyReport> {
    if toy.dim() != 2 || !points.len().is_multiple_of(2) || points.is_empty() {
        return Err(EvalError::Samples(format!("{} takes N×2 points; got {} values", toy.name(), points.len())));
    }
    crate::error::check_finite(points, "the samples")?;
    let n = points.len() / 2;
    // Salted, so real samples never repeat a toy's own draws with the same seed.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ REAL_SALT);
    let (real_a, real_b) = (toy.sample(n, &mut rng), toy.sample(n, &mut rng));
    let (w1_value, method) = w1(points, &real_a, 2, seed)?;
    let (floor, _) = w1(&real_b, &real_a, 2, seed)?;
    let mut report = ToyReport {
        toy: toy.name().into(),
        samples: n,
        modes: None,
        modes_covered: None,
        modes_covered_strict: None,
        high_quality: None,
        kl_uniform: None,
        w1: w1_value,
        w1_real_floor: floor,
        w1_method: method,
    };
    if let (Some(centres), Some(sigma)) = (toy.mode_centres(), toy.mode_std()) {
        let counts = high_quality_counts(points, &centres, HQ_SIGMAS * sigma);
        let hq: usize = counts.iter().sum();
        report.modes = Some(centres.len());
        report.modes_covered = Some(counts.iter().filter(|&&c| c > 0).count());
        report.modes_covered_strict = Some(counts.iter().filter(|&&c| c >= STRICT_COUNT).count());
        report.high_quality = Some(hq as f64 / n as f64);
        report.kl_uniform = (hq > 0).then(|| kl_to_uniform(&counts));
    }
    Ok(report)
}

/// High-quality samples per mode: those within `radius` of their nearest centre.
fn high_quality_counts(points: &[f32], centres: &[[f64; 2]], radius: f64) -> Vec<usize> {
    let mut counts = vec![0; centres.len()];
    for p in points.chunks_exact(2) {
        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
        let (k, d2) = centres
            .iter()
            .map(|c| (x - c[0]).powi(2) + (y - c[1]).powi(2))
            .enumerate()
            .fold((0, f64::MAX), |best, (k, d2)| if d2 < best.1 { (k, d2) } else { best });
        if d2 <= radius * radius {
            counts[k] += 1;
        }
    }
    counts
}

/// `Σ p_k ln(p_k K)` for the normalised histogram `p` over `K` modes (empty bins add 0).
fn kl_to_uniform(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    let k = counts.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            p * (p * k).ln()
        })
        .sum()
}
