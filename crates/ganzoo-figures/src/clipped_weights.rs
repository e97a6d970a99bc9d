//! `clipped-weights`: WGAN-GP fig. 1b (right). The toy critic of `gan_toy.py` (3 ReLU
//! layers of 512) trained on the Swiss roll against the paper's fixed generator (the
//! data plus `N(0, 1)` noise), once with weights clipped to ±0.01 (RMSprop 5e-5) and once
//! with the gradient penalty (λ = 0.1, Adam 1e-4, β = (0.5, 0.9)): clipping piles the
//! weights at the two ends of its range; the penalty leaves a spread distribution.

use std::path::Path;

use ganzoo_data::ToyDistribution;
use ganzoo_models::ParamStore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use ganzoo_charts::{draw_histogram, histogram, COLOURS};

use crate::critics::{self, CriticLoss, Source};
use crate::files::{save_csv, save_png};
use crate::Result;

pub const CLIP: f64 = 0.01;
/// Training steps of each critic in the command (tests take fewer).
pub const STEPS: usize = 500;

/// Every weight (not bias) of each trained critic.
#[derive(Debug, Clone)]
pub struct ClippedWeights {
    pub clipped: Vec<f64>,
    pub penalised: Vec<f64>,
}

/// The Swiss roll against itself plus unit Gaussian noise (WGAN-GP fig. 1).
pub fn sides() -> (Source, Source) {
    (Source::Toy(ToyDistribution::SwissRoll), Source::NoisyToy(ToyDistribution::SwissRoll, 1.0))
}

pub fn compute(seed: u64, steps: usize) -> Result<ClippedWeights> {
    Ok(ClippedWeights {
        clipped: trained(CriticLoss::Clipped(CLIP), seed, steps)?,
        penalised: trained(CriticLoss::Penalty(0.1), seed, steps)?,
    })
}

fn trained(loss: CriticLoss, seed: u64, steps: usize) -> Result<Vec<f64>> {
    let (critic, store) = critics::mlp_critic(2, 512, 3, seed)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    critics::train(&critic, &store, loss, loss.reference_optimizer(), sides(), steps, 256, &mut rng)?;
    weights(&store)
}

/// The weights of `store`'s linear layers (biases left out), flattened.
pub fn weights(store: &ParamStore) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for (name, v) in store.trainable() {
        if name.ends_with(".weight") {
            out.extend(v.flatten_all()?.to_vec1::<f32>()?.into_iter().map(f64::from));
        }
    }
    Ok(out)
}

/// Share of `w` within 1 % of the largest magnitude in `w` (for clipping: of ±c).
pub fn share_at_extremes(w: &[f64]) -> f64 {
    let max = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    w.iter().filter(|v| v.abs() >= 0.99 * max).count() as f64 / w.len().max(1) as f64
}

pub fn write(f: &ClippedWeights, png: &Path, csv: &Path) -> Result<()> {
    let (a, b) = (histogram(&f.clipped, (-CLIP, CLIP), 40), histogram(&f.penalised, spread(&f.penalised), 40));
    let mut rows: Vec<Vec<f64>> = a.iter().map(|&(x0, x1, c)| vec![0.0, x0, x1, c as f64]).collect();
    rows.extend(b.iter().map(|&(x0, x1, c)| vec![1.0, x0, x1, c as f64]));
    save_csv(csv, &["penalty", "bin_from", "bin_to", "count"], &rows)?;
    save_png(png, (1200, 460), (1, 2), |p| {
        draw_histogram(&p[0], "Weight clipping (c = 0.01)", "weight", &a, COLOURS[0])?;
        Ok(draw_histogram(&p[1], "Gradient penalty (λ = 0.1)", "weight", &b, COLOURS[1])?)
    })
}

fn spread(w: &[f64]) -> (f64, f64) {
    let max = w.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    (-max, max)
}

pub fn summary(f: &ClippedWeights) -> String {
    format!(
        "share of weights at the extremes of their range: clipping {:.1} %, gradient penalty {:.2} %",
        100.0 * share_at_extremes(&f.clipped),
        100.0 * share_at_extremes(&f.penalised)
    )
}
