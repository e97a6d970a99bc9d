//! `distances`: WGAN (Arjovsky et al. 2017) fig. 1. Between `P₀ = (0, Z)` and
//! `P_θ = (θ, Z)`, `Z ~ U[0, 1]`: the closed forms `W = |θ|`, `JS = log 2`, `KL = ∞`,
//! `TV = 1` for `θ ≠ 0` (`ganzoo_losses::ParallelLines`) — only W is continuous in θ —
//! beside W estimated by a trained critic (gradient penalty) and JS by a trained
//! discriminator, both MLPs 2 → 64 → 64 → 1 trained 400 steps on batches of 256.

use std::path::Path;

use ganzoo_data::ToyDistribution;
use ganzoo_losses::ParallelLines;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use ganzoo_charts::{Chart, Mark, Series};

use crate::critics::{self, CriticLoss, Source};
use crate::files::{save_csv, save_png};
use crate::Result;

/// Closed forms on a fine grid, estimates at a few θ.
#[derive(Debug, Clone)]
pub struct Distances {
    /// `(θ, distances)` on a fine grid.
    pub closed: Vec<(f64, ParallelLines)>,
    /// `(θ, W from a critic, JS from a discriminator)`.
    pub estimated: Vec<(f64, f64, f64)>,
}

pub const THETAS: [f64; 9] = [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0];
const STEPS: usize = 400;
const BATCH: usize = 256;

pub fn compute(seed: u64) -> Result<Distances> {
    let closed = (0..=200).map(|i| -1.0 + i as f64 / 100.0).map(|t| (t, ParallelLines::at(t))).collect();
    let mut estimated = Vec::new();
    for (k, &theta) in THETAS.iter().enumerate() {
        let sides = (
            Source::Toy(ToyDistribution::ParallelLine { theta: 0.0 }),
            Source::Toy(ToyDistribution::ParallelLine { theta }),
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (k as u64) << 32);
        let (critic, store) = critics::mlp_critic(2, 64, 2, seed + 2 * k as u64)?;
        let wgan = CriticLoss::Penalty(10.0);
        let adam = ganzoo_train::config::Optimizer::Adam { lr: 1e-3, beta1: 0.5, beta2: 0.9 };
        critics::train(&critic, &store, wgan, adam, sides, STEPS, BATCH, &mut rng)?;
        let w = critics::wasserstein_estimate(&critic, sides, 4096, &mut rng)?;
        let (disc, store) = critics::mlp_critic(2, 64, 2, seed + 2 * k as u64 + 1)?;
        let ce = CriticLoss::CrossEntropy;
        critics::train(&disc, &store, ce, ce.reference_optimizer(), sides, STEPS, BATCH, &mut rng)?;
        let js = critics::jensen_shannon_estimate(&disc, sides, 4096, &mut rng)?;
        estimated.push((theta, w, js));
    }
    Ok(Distances { closed, estimated })
}

pub fn write(d: &Distances, png: &Path, csv: &Path) -> Result<()> {
    let mut rows: Vec<Vec<f64>> = d
        .closed
        .iter()
        .map(|(t, p)| {
            vec![*t, p.wasserstein, p.jensen_shannon, p.kullback_leibler, p.total_variation, f64::NAN, f64::NAN]
        })
        .collect();
    for &(t, w, js) in &d.estimated {
        let p = ParallelLines::at(t);
        rows.push(vec![t, p.wasserstein, p.jensen_shannon, p.kullback_leibler, p.total_variation, w, js]);
    }
    save_csv(csv, &["theta", "w", "js", "kl", "tv", "w_critic", "js_discriminator"], &rows)?;
    let closed = |f: fn(&ParallelLines) -> f64| d.closed.iter().map(|(t, p)| (*t, f(p))).collect::<Vec<_>>();
    let mut w = Chart::new(
        "Earth-mover distance W(P₀, Pθ)",
        "θ",
        "distance",
        vec![
            Series::new("W = |θ|", closed(|p| p.wasserstein), Mark::Line),
            Series::new("trained critic (WGAN-GP)", d.estimated.iter().map(|e| (e.0, e.1)).collect(), Mark::Points),
        ],
    );
    let mut js = Chart::new(
        "Jensen-Shannon divergence (KL = ∞ for θ ≠ 0)",
        "θ",
        "divergence",
        vec![
            Series::new("JS = log 2 for θ ≠ 0", closed(|p| p.jensen_shannon), Mark::Line),
            Series::new("total variation", closed(|p| p.total_variation), Mark::Dashed),
            Series::new("trained discriminator", d.estimated.iter().map(|e| (e.0, e.2)).collect(), Mark::Points),
        ],
    );
    w.y_range = Some((-0.05, 1.15));
    js.y_range = Some((-0.05, 1.15));
    save_png(png, (1200, 480), (1, 2), |p| {
        w.draw_on(&p[0])?;
        Ok(js.draw_on(&p[1])?)
    })
}

pub fn summary(d: &Distances) -> String {
    let w_err = d.estimated.iter().map(|e| (e.1 - e.0.abs()).abs()).fold(0.0, f64::max);
    let js_apart = d.estimated.iter().filter(|e| e.0 != 0.0).map(|e| e.2).fold(f64::MAX, f64::min);
    format!("critic W within {w_err:.3} of |θ|; discriminator JS ≥ {js_apart:.3} wherever θ ≠ 0 (log 2 = 0.693)")
}
