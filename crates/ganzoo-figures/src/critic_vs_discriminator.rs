//! `critic-vs-discriminator`: WGAN fig. 2. A discriminator (cross-entropy) and a WGAN
//! critic (weights clipped to ±0.01) trained to tell real `N(−2, 0.5²)` from generated
//! `N(2, 0.5²)` in one dimension: the discriminator saturates — its output is flat, so
//! its gradient vanishes, away from the data — while the critic stays close to linear and
//! keeps a useful gradient everywhere. MLPs 1 → 64 → 64 → 1; 1,500 steps of batch 256.

use std::path::Path;

use ganzoo_data::ToyDistribution;
use ganzoo_train::config::Optimizer;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use ganzoo_charts::{Chart, Mark, Series};

use crate::critics::{self, CriticLoss, Source};
use crate::files::{save_csv, save_png};
use crate::Result;

pub const REAL: ToyDistribution = ToyDistribution::Gaussian1d { mean: -2.0, std: 0.5 };
pub const FAKE: ToyDistribution = ToyDistribution::Gaussian1d { mean: 2.0, std: 0.5 };
const STEPS: usize = 1500;
const RANGE: f64 = 8.0;

/// Both functions on a grid of x.
#[derive(Debug, Clone)]
pub struct CriticVsDiscriminator {
    pub x: Vec<f64>,
    /// `D(x)`, a probability.
    pub discriminator: Vec<f64>,
    /// The critic's value `f(x)`.
    pub critic: Vec<f64>,
}

pub fn compute(seed: u64) -> Result<CriticVsDiscriminator> {
    let sides = (Source::Toy(REAL), Source::Toy(FAKE));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (disc, store) = critics::mlp_critic(1, 64, 2, seed)?;
    let ce = CriticLoss::CrossEntropy;
    critics::train(&disc, &store, ce, ce.reference_optimizer(), sides, STEPS, 256, &mut rng)?;
    let (critic, store) = critics::mlp_critic(1, 64, 2, seed + 1)?;
    // RMSprop at 1e-3: the paper's 5e-5 needs far more steps to reach the optimum.
    critics::train(
        &critic,
        &store,
        CriticLoss::Clipped(0.01),
        Optimizer::RmsProp { lr: 1e-3 },
        sides,
        STEPS,
        256,
        &mut rng,
    )?;
    let x: Vec<f64> = (0..=400).map(|i| -RANGE + 2.0 * RANGE * i as f64 / 400.0).collect();
    let grid = candle_core::Tensor::from_vec(
        x.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        (x.len(), 1),
        &candle_core::Device::Cpu,
    )?;
    let values = |net: &ganzoo_models::Network| -> Result<Vec<f64>> {
        Ok(net.forward_t(&grid, false)?.flatten_all()?.to_vec1::<f32>()?.into_iter().map(f64::from).collect())
    };
    let discriminator = values(&disc)?.into_iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect();
    Ok(CriticVsDiscriminator { x, discriminator, critic: values(&critic)? })
}

/// `|d y/dx|` at each end of the grid over its largest value in between.
pub fn end_slopes(x: &[f64], y: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = x.windows(2).zip(y.windows(2)).map(|(x, y)| ((y[1] - y[0]) / (x[1] - x[0])).abs()).collect();
    let max = d.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    (d[0] / max, d[d.len() - 1] / max)
}

pub fn write(f: &CriticVsDiscriminator, png: &Path, csv: &Path) -> Result<()> {
    let rows: Vec<Vec<f64>> = (0..f.x.len()).map(|i| vec![f.x[i], f.discriminator[i], f.critic[i]]).collect();
    save_csv(csv, &["x", "discriminator", "critic"], &rows)?;
    let density = |t: ToyDistribution| -> Vec<(f64, f64)> {
        let ToyDistribution::Gaussian1d { mean, std } = t else { return Vec::new() };
        f.x.iter().map(|&x| (x, (-(x - mean).powi(2) / (2.0 * std * std)).exp())).collect()
    };
    let pts = |ys: &[f64]| f.x.iter().copied().zip(ys.iter().copied()).collect::<Vec<_>>();
    // The critic's values rescaled to [0, 1] for one axis: its shape is what matters.
    let (lo, hi) = f.critic.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let scaled: Vec<f64> = f.critic.iter().map(|v| (v - lo) / (hi - lo).max(1e-12)).collect();
    let mut chart = Chart::new(
        "Discriminator vs WGAN critic between two Gaussians",
        "x",
        "value",
        vec![
            Series::new("real density (scaled)", density(REAL), Mark::Dashed),
            Series::new("generated density (scaled)", density(FAKE), Mark::Dashed),
            Series::new("discriminator D(x)", pts(&f.discriminator), Mark::Line),
            Series::new("WGAN critic f(x) (rescaled to [0, 1])", pts(&scaled), Mark::Line),
        ],
    );
    chart.y_range = Some((-0.05, 1.2));
    save_png(png, (900, 560), (1, 1), |p| Ok(chart.draw_on(&p[0])?))
}

pub fn summary(f: &CriticVsDiscriminator) -> String {
    let (dl, dr) = end_slopes(&f.x, &f.discriminator);
    let (cl, cr) = end_slopes(&f.x, &f.critic);
    format!("slope at x = ∓8 over the largest slope: discriminator {dl:.1e} / {dr:.1e}, critic {cl:.2} / {cr:.2}")
}
