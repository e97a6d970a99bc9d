//! Low-dimensional toy distributions, defined as the papers' reference code does.
//!
//! - 8 Gaussians (WGAN-GP `gan_toy.py`): centres `2·(cos kπ/4, sin kπ/4)`, σ = 0.02,
//!   the point then divided by 1.414.
//! - 25 Gaussians (same script): centres `{-4,-2,0,2,4}²`, σ = 0.05, divided by 2.828.
//!   The script draws a fixed pool of 4,000 points per centre; drawing the centre
//!   uniformly per point gives the same distribution.
//! - Swiss roll (scikit-learn `make_swiss_roll`, noise 0.25, coordinates 0 and 2):
//!   `t = 1.5π(1 + 2u)`, `u ~ U[0,1]`, point `(t cos t, t sin t) + N(0, 0.25²)`, divided by 7.5.
//! - Parallel lines (WGAN paper, example 1): `P_θ = (θ, Z)`, `Z ~ U[0,1]`; `P_0` is θ = 0.
//! - One-dimensional Gaussians `N(μ, σ²)` for the critic-vs-discriminator
//!   experiment (WGAN paper, figure 2), as a [`GaussianPair`].

use std::f64::consts::PI;
use std::str::FromStr;

use rand::Rng;
use rand_distr::StandardNormal;

use crate::DataError;

/// A distribution to sample points from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToyDistribution {
    EightGaussians,
    TwentyFiveGaussians,
    SwissRoll,
    /// `(θ, Z)`, `Z ~ U[0, 1]`.
    ParallelLine {
        theta: f64,
    },
    /// `N(mean, std²)` in one dimension.
    Gaussian1d {
        mean: f64,
        std: f64,
    },
}

impl ToyDistribution {
    /// Dimension of a sample.
    pub fn dim(&self) -> usize {
        match self {
            Self::Gaussian1d { .. } => 1,
            _ => 2,
        }
    }

    /// Draws `n` points, row-major (`n × dim`).
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * self.dim());
        for _ in 0..n {
            match *self {
                Self::EightGaussians => {
                    let k = rng.random_range(0..8) as f64;
                    let (sin, cos) = (k * PI / 4.0).sin_cos();
                    push_scaled(&mut out, 2.0 * cos + 0.02 * normal(rng), 2.0 * sin + 0.02 * normal(rng), 1.414);
                }
                Self::TwentyFiveGaussians => {
                    let (i, j) = (rng.random_range(0..5), rng.random_range(0..5));
                    let (cx, cy) = (2.0 * (i as f64 - 2.0), 2.0 * (j as f64 - 2.0));
                    push_scaled(&mut out, cx + 0.05 * normal(rng), cy + 0.05 * normal(rng), 2.828);
                }
                Self::SwissRoll => {
                    let t = 1.5 * PI * (1.0 + 2.0 * rng.random::<f64>());
                    push_scaled(&mut out, t * t.cos() + 0.25 * normal(rng), t * t.sin() + 0.25 * normal(rng), 7.5);
                }
                Self::ParallelLine { theta } => push_scaled(&mut out, theta, rng.random::<f64>(), 1.0),
                Self::Gaussian1d { mean, std } => out.push((mean + std * normal(rng)) as f32),
            }
        }
        out
    }

    /// Centres of the modes after scaling, for mixtures of Gaussians.
    pub fn mode_centres(&self) -> Option<Vec<[f64; 2]>> {
        match self {
            Self::EightGaussians => Some(
                (0..8)
                    .map(|k| {
                        let (s, c) = (k as f64 * PI / 4.0).sin_cos();
                        [2.0 * c / 1.414, 2.0 * s / 1.414]
                    })
                    .collect(),
            ),
            Self::TwentyFiveGaussians => Some(
                (0..25).map(|k| [2.0 * ((k / 5) as f64 - 2.0) / 2.828, 2.0 * ((k % 5) as f64 - 2.0) / 2.828]).collect(),
            ),
            _ => None,
        }
    }

    /// Standard deviation of each mode after scaling, for mixtures of Gaussians.
    pub fn mode_std(&self) -> Option<f64> {
        match self {
            Self::EightGaussians => Some(0.02 / 1.414),
            Self::TwentyFiveGaussians => Some(0.05 / 2.828),
            _ => None,
        }
    }

    /// The command-line name of a 2-D toy.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EightGaussians => "8gaussians",
            Self::TwentyFiveGaussians => "25gaussians",
            Self::SwissRoll => "swissroll",
            Self::ParallelLine { .. } => "parallel-line",
            Self::Gaussian1d { .. } => "gaussian1d",
        }
    }
}

impl FromStr for ToyDistribution {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, DataError> {
        match s.to_ascii_lowercase().as_str() {
            "8gaussians" => Ok(Self::EightGaussians),
            "25gaussians" => Ok(Self::TwentyFiveGaussians),
            "swissroll" => Ok(Self::SwissRoll),
            other => match other.strip_prefix("parallel-line:") {
                Some(t) => match t.parse::<f64>() {
                    Ok(theta) if theta.abs() <= MAX_THETA => Ok(Self::ParallelLine { theta }),
                    _ => Err(DataError::InvalidArgument(format!(
                        "parallel-line:THETA needs a number in [-{MAX_THETA}, {MAX_THETA}], got '{t}'"
                    ))),
                },
                None => Err(bad_toy(s)),
            },
        }
    }
}

/// The farthest line `parallel-line:THETA` may name (the WGAN paper's figure 1 spans
/// θ ∈ [−1, 1]); beyond, the points' f32 values lose the unit interval's detail and,
/// near 1e38, become infinite.
pub const MAX_THETA: f64 = 1e6;

fn bad_toy(s: &str) -> DataError {
    DataError::InvalidArgument(format!(
        "unknown toy distribution '{s}': expected 8gaussians, 25gaussians, swissroll or parallel-line:THETA"
    ))
}

/// Real and generated 1-D Gaussians whose optimal discriminator and critic are compared.
/// The paper does not state its parameters; these defaults separate the two clearly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianPair {
    pub real: ToyDistribution,
    pub fake: ToyDistribution,
}

impl Default for GaussianPair {
    fn default() -> Self {
        Self {
            real: ToyDistribution::Gaussian1d { mean: 0.0, std: 1.0 },
            fake: ToyDistribution::Gaussian1d { mean: 5.0, std: 1.0 },
        }
    }
}

fn normal(rng: &mut impl Rng) -> f64 {
    rng.sample(StandardNormal)
}

fn push_scaled(out: &mut Vec<f32>, x: f64, y: f64, scale: f64) {
    out.push((x / scale) as f32);
    out.push((y / scale) as f32);
}
