//! `value-surfaces`: WGAN-GP fig. 1a. The toy critic of `gan_toy.py` (3 ReLU layers of
//! 512) trained against the paper's fixed generator (real data plus `N(0, 1)` noise) on
//! 8 Gaussians, 25 Gaussians and the Swiss roll, with weight clipping (±0.01, RMSprop
//! 5e-5) and with the gradient penalty (λ = 0.1, Adam 1e-4, β = (0.5, 0.9)); its values
//! on a 128 × 128 grid over [−3, 3]² (as `gan_toy.py`'s `generate_image`). The paper's
//! point: clipping learns too simple a function; the penalised critic follows the data.
//! The number that shows it: [`mode_contrast`], how much higher the critic is on the
//! Gaussians' modes than between them.

use std::path::Path;

use candle_core::{Device, Tensor};
use ganzoo_charts::{Panel, PointSet, RGBColor};
use ganzoo_data::ToyDistribution;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::critics::{self, CriticLoss, Source};
use crate::files::{save_csv, save_png};
use crate::Result;

pub const TOYS: [ToyDistribution; 3] =
    [ToyDistribution::EightGaussians, ToyDistribution::TwentyFiveGaussians, ToyDistribution::SwissRoll];
pub const N: usize = 128;
pub const RANGE: f64 = 3.0;
/// Critic steps in the command (tests take fewer).
pub const STEPS: usize = 1000;

/// One critic's values: `values[i * N + j]` at `(x_i, y_j)`.
#[derive(Debug, Clone)]
pub struct Surface {
    pub toy: ToyDistribution,
    pub loss: CriticLoss,
    pub values: Vec<f64>,
    /// Real points drawn on top.
    pub real: Vec<f32>,
}

pub fn grid_coord(i: usize) -> f64 {
    -RANGE + 2.0 * RANGE * i as f64 / (N - 1) as f64
}

pub fn compute(seed: u64, steps: usize) -> Result<Vec<Surface>> {
    compute_on(&TOYS, seed, steps)
}

/// The two critics' surfaces on each of `toys`.
pub fn compute_on(toys: &[ToyDistribution], seed: u64, steps: usize) -> Result<Vec<Surface>> {
    let points: Vec<f32> = (0..N * N).flat_map(|k| [grid_coord(k / N) as f32, grid_coord(k % N) as f32]).collect();
    let grid = Tensor::from_vec(points, (N * N, 2), &Device::Cpu)?;
    let mut out = Vec::new();
    for &toy in toys {
        for loss in [CriticLoss::Clipped(0.01), CriticLoss::Penalty(0.1)] {
            let (critic, store) = critics::mlp_critic(2, 512, 3, seed)?;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let sides = (Source::Toy(toy), Source::NoisyToy(toy, 1.0));
            critics::train(&critic, &store, loss, fast(loss), sides, steps, 256, &mut rng)?;
            let values = critic.forward_t(&grid, false)?.flatten_all()?.to_vec1::<f32>()?;
            let real = toy.sample(1000, &mut rng);
            out.push(Surface { toy, loss, values: values.into_iter().map(f64::from).collect(), real });
        }
    }
    Ok(out)
}

/// How much the surface peaks at the modes: the mean value at the mode centres minus the
/// mean at the midpoints between each mode and its nearest neighbours, over the surface's
/// range (bilinear in the grid). Positive when the critic has a ridge on every mode;
/// `None` for toys without modes.
pub fn mode_contrast(s: &Surface) -> Option<f64> {
    let centres = s.toy.mode_centres()?;
    let step = 2.0 * RANGE / (N - 1) as f64;
    let at = |x: f64, y: f64| {
        let (u, v) = ((x + RANGE) / step, (y + RANGE) / step);
        let (i, j) = ((u.floor() as usize).min(N - 2), (v.floor() as usize).min(N - 2));
        let (a, b) = (u - i as f64, v - j as f64);
        let g = |i: usize, j: usize| s.values[i * N + j];
        (1.0 - a) * ((1.0 - b) * g(i, j) + b * g(i, j + 1)) + a * ((1.0 - b) * g(i + 1, j) + b * g(i + 1, j + 1))
    };
    let dist = |p: &[f64; 2], q: &[f64; 2]| (p[0] - q[0]).hypot(p[1] - q[1]);
    let mut mids = Vec::new();
    for p in &centres {
        let nearest = centres.iter().filter(|q| *q != p).map(|q| dist(p, q)).fold(f64::MAX, f64::min);
        for q in centres.iter().filter(|q| *q != p && dist(p, q) < nearest * 1.01) {
            mids.push(at((p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0));
        }
    }
    let peaks = centres.iter().map(|c| at(c[0], c[1])).sum::<f64>() / centres.len() as f64;
    let between = mids.iter().sum::<f64>() / mids.len().max(1) as f64;
    let (lo, hi) = s.values.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    Some((peaks - between) / (hi - lo).max(1e-12))
}

/// Learning rates 20× (clipping) and 10× (penalty) the reference scripts', so the critics
/// get near their optimum in 1,000 steps.
fn fast(loss: CriticLoss) -> ganzoo_train::config::Optimizer {
    use ganzoo_train::config::Optimizer;
    match loss {
        CriticLoss::Clipped(_) => Optimizer::RmsProp { lr: 1e-3 },
        _ => Optimizer::Adam { lr: 1e-3, beta1: 0.5, beta2: 0.9 },
    }
}

fn method(loss: CriticLoss) -> &'static str {
    match loss {
        CriticLoss::Clipped(_) => "weight clipping",
        CriticLoss::Penalty(_) => "gradient penalty",
        CriticLoss::CrossEntropy => "discriminator",
    }
}

fn panel(area: &Panel<'_>, s: &Surface) -> Result<()> {
    // The chart's cells are centred on the grid's points: row 0 at the top (y = +RANGE).
    let values = (0..N * N).map(|k| s.values[(k % N) * N + (N - 1 - k / N)]).collect();
    let real = s.real.chunks_exact(2).map(|p| (f64::from(p[0]), f64::from(p[1]))).collect();
    let chart = ganzoo_charts::Surface {
        title: format!("{} — {}", s.toy.name(), method(s.loss)),
        radius: RANGE + RANGE / (N - 1) as f64,
        values,
        side: N,
        value_label: "critic value".into(),
        points: vec![PointSet { label: "real".into(), points: real, colour: RGBColor(255, 127, 14) }],
    };
    Ok(chart.draw_on(area)?)
}

pub fn write(surfaces: &[Surface], png: &Path, csv: &Path) -> Result<()> {
    let mut rows = Vec::new();
    for (k, s) in surfaces.iter().enumerate() {
        for (g, &v) in s.values.iter().enumerate() {
            rows.push(vec![(k / 2) as f64, (k % 2) as f64, grid_coord(g / N), grid_coord(g % N), v]);
        }
    }
    save_csv(csv, &["toy (0 8gaussians, 1 25gaussians, 2 swissroll)", "penalty", "x", "y", "critic"], &rows)?;
    save_png(png, (1650, 900), (2, 3), |p| {
        for (k, s) in surfaces.iter().enumerate() {
            // Top row clipping, bottom row the penalty, one toy per column.
            panel(&p[(k % 2) * 3 + k / 2], s)?;
        }
        Ok(())
    })
}

pub fn summary(surfaces: &[Surface]) -> String {
    let parts: Vec<String> = surfaces
        .iter()
        .filter_map(|s| mode_contrast(s).map(|c| format!("{} {}: {c:+.3}", s.toy.name(), method(s.loss))))
        .collect();
    format!("critic value at the modes minus between them, over its range — {}", parts.join(", "))
}
