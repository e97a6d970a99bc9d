//! `gradient-norms`: WGAN-GP fig. 1b (left). A deep critic — 12 ReLU layers of 512, the
//! toy critic made deep — trained on the Swiss roll against the fixed noisy generator
//! with weight clipping at c ∈ {0.1, 0.01, 0.001} (RMSprop 5e-5) and with the gradient
//! penalty (λ = 0.1, Adam 1e-4): the norm of the critic's gradient with respect to the
//! input of each of its 13 linear layers (mean over real and generated samples, log₁₀),
//! from the input (1) to the output layer (13). Backpropagation multiplies it by about
//! `c·√(512/2)` per clipped layer, so towards the input it explodes (c = 0.1) or
//! vanishes (c = 0.01, 0.001); with the penalty it stays near 1 at every layer.

use std::path::Path;

use candle_core::Tensor;
use ganzoo_models::{Layer, Network};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use ganzoo_charts::{Chart, Mark, Series};

use crate::clipped_weights::sides;
use crate::critics::{self, CriticLoss};
use crate::files::{save_csv, save_png};
use crate::Result;

pub const DEPTH: usize = 12;
/// Training steps of each critic in the command (tests take fewer).
pub const STEPS: usize = 200;
pub const WIDTH: usize = 512;

/// `(label, loss, log₁₀ gradient norm of layers 1..=13)`.
#[derive(Debug, Clone)]
pub struct GradientNorms {
    pub curves: Vec<(String, CriticLoss, Vec<f64>)>,
}

pub fn losses() -> [(String, CriticLoss); 4] {
    [
        ("weight clipping c = 0.1".into(), CriticLoss::Clipped(0.1)),
        ("weight clipping c = 0.01".into(), CriticLoss::Clipped(0.01)),
        ("weight clipping c = 0.001".into(), CriticLoss::Clipped(0.001)),
        ("gradient penalty".into(), CriticLoss::Penalty(0.1)),
    ]
}

pub fn compute(seed: u64, steps: usize) -> Result<GradientNorms> {
    let mut curves = Vec::new();
    for (label, loss) in losses() {
        let (critic, store) = critics::mlp_critic(2, WIDTH, DEPTH, seed)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        critics::train(&critic, &store, loss, loss.reference_optimizer(), sides(), steps, 256, &mut rng)?;
        let (x, y) = (sides().0.sample(256, &mut rng)?, sides().1.sample(256, &mut rng)?);
        curves.push((label, loss, layer_input_gradients(&critic, &Tensor::cat(&[&x, &y], 0)?)?));
    }
    Ok(GradientNorms { curves })
}

/// log₁₀ of the mean per-sample norm of `∂f/∂h` at the input `h` of each linear layer.
pub fn layer_input_gradients(critic: &Network, x: &Tensor) -> Result<Vec<f64>> {
    let outputs = critic.trace(x, false)?;
    let layers = critic.layers();
    let mut norms = Vec::new();
    for (i, (_, layer)) in layers.iter().enumerate() {
        if !matches!(layer, Layer::Linear(_)) {
            continue;
        }
        let h = if i == 0 { x.clone() } else { outputs[i - 1].detach() };
        let mut tail = Network::new();
        layers[i..].iter().for_each(|(n, l)| tail.push(n.clone(), l.clone()));
        let (_, g) = tail.input_gradient(&h)?;
        let per_sample = g.flatten_from(1)?.sqr()?.sum(1)?.sqrt()?;
        let mean = per_sample.mean_all()?.to_scalar::<f32>()? as f64;
        // A norm below f32's range is 0: −∞ in the CSV, left out of the chart.
        norms.push(mean.log10());
    }
    Ok(norms)
}

pub fn write(f: &GradientNorms, png: &Path, csv: &Path) -> Result<()> {
    let rows: Vec<Vec<f64>> =
        (0..=DEPTH).map(|i| std::iter::once((i + 1) as f64).chain(f.curves.iter().map(|c| c.2[i])).collect()).collect();
    save_csv(csv, &["layer", "clip_0.1", "clip_0.01", "clip_0.001", "penalty"], &rows)?;
    let series = f
        .curves
        .iter()
        .map(|(label, _, n)| {
            Series::new(label.as_str(), n.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v)).collect(), Mark::Line)
        })
        .collect();
    let mut chart = Chart::new(
        "Gradient norms of a 12-layer critic on the Swiss roll",
        "critic layer (1 = input)",
        "log₁₀ ‖∂f/∂(layer input)‖",
        series,
    );
    chart.y_range = Some((-25.0, 15.0));
    save_png(png, (900, 560), (1, 1), |p| Ok(chart.draw_on(&p[0])?))
}

/// log₁₀ of the output layer's norm over the input layer's: > 0 vanishing towards the
/// input, < 0 exploding.
/// Layers whose norm underflowed to 0 are skipped.
pub fn decades_across(norms: &[f64]) -> f64 {
    let first = norms.iter().copied().find(|v| v.is_finite()).unwrap_or(f64::NAN);
    norms[norms.len() - 1] - first
}

pub fn summary(f: &GradientNorms) -> String {
    let parts: Vec<String> =
        f.curves.iter().map(|(label, _, n)| format!("{label}: {:+.1}", decades_across(n))).collect();
    format!("decades from input to output layer — {}", parts.join("; "))
}
