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
use ganzoo_data::ToyDistribution;
use plotters::coord::Shift;
use plotters::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::chart::{save_csv, save_png};
use crate::critics::{self, CriticLoss, Source};
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

/// Dark (low) to light (high), a viridis-like ramp.
fn colour(t: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [68.0, 1.0, 84.0]),
        (0.25, [59.0, 82.0, 139.0]),
        (0.5, [33.0, 145.0, 140.0]),
        (0.75, [94.0, 201.0, 98.0]),
        (1.0, [253.0, 231.0, 37.0]),
    ];
    let t = t.clamp(0.0, 1.0);
    let k = STOPS.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let ((t0, a), (t1, b)) = (STOPS[k - 1], STOPS[k]);
    let u = (t - t0) / (t1 - t0);
    let mix = |i: usize| (a[i] + u * (b[i] - a[i])) as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

fn panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, s: &Surface) -> Result<()> {
    crate::chart::register();
    let draw = |e: plotters::drawing::DrawingAreaErrorKind<_>| crate::FigureError::Draw(format!("{e:?}"));
    let (lo, hi) = s.values.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let title = format!("{} — {}", s.toy.name(), method(s.loss));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(36)
        .build_cartesian_2d(-RANGE..RANGE, -RANGE..RANGE)
        .map_err(draw)?;
    chart.configure_mesh().disable_mesh().label_style(("sans-serif", 11)).draw().map_err(draw)?;
    let half = RANGE / (N - 1) as f64;
    chart
        .draw_series((0..N * N).map(|k| {
            let (x, y) = (grid_coord(k / N), grid_coord(k % N));
            let c = colour((s.values[k] - lo) / (hi - lo).max(1e-12));
            Rectangle::new([(x - half, y - half), (x + half, y + half)], c.filled())
        }))
        .map_err(draw)?;
    chart
        .draw_series(
            s.real
                .chunks_exact(2)
                .map(|p| Circle::new((f64::from(p[0]), f64::from(p[1])), 1, RGBColor(255, 127, 14).filled())),
        )
        .map_err(draw)?;
    Ok(())
}

pub fn write(surfaces: &[Surface], png: &Path, csv: &Path) -> Result<()> {
    let mut rows = Vec::new();
    for (k, s) in surfaces.iter().enumerate() {
        for (g, &v) in s.values.iter().enumerate() {
            rows.push(vec![(k / 2) as f64, (k % 2) as f64, grid_coord(g / N), grid_coord(g % N), v]);
        }
    }
    save_csv(csv, &["toy (0 8gaussians, 1 25gaussians, 2 swissroll)", "penalty", "x", "y", "critic"], &rows)?;
    save_png(png, (1350, 900), (2, 3), |p| {
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
