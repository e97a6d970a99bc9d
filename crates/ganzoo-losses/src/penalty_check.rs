//! The penalty's gradient with respect to every critic weight — a second-order
//! derivative — against central finite differences, on whatever device the critic lives
//! on (f64 weights). The tests run it on the CPU; `ganzoo bench --parity` on a GPU.
//! [`mixed_precision`] measures how far a critic computing its activations in bf16 (f64
//! weights) is from those same exact differences.

use candle_core::{DType, Tensor};
use ganzoo_models::{Network, ParamStore};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{GradientPenalty, Result};

/// Finite-difference step.
const H: f64 = 1e-6;

/// How the analytic gradient compared with finite differences.
#[derive(Debug, Clone, PartialEq)]
pub struct FiniteDifferences {
    /// Weights compared.
    pub checked: usize,
    /// The worst weight's `|numeric − analytic| / (1e-6 + 1e-5 · max(|numeric|, |analytic|))`:
    /// below 1 everywhere when the gradient is exact to f64 finite-difference accuracy.
    pub worst: f64,
    /// The worst weight: `name[index]`, analytic and numeric values.
    pub worst_at: String,
    /// Trainable weights Candle gave no gradient that is not a bias (a detached graph).
    pub missing: Vec<String>,
}

impl FiniteDifferences {
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.worst < 1.0
    }
}

/// How a mixed-precision penalty gradient compared with finite differences of the exact one.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedPrecision {
    /// Weights compared.
    pub checked: usize,
    /// `‖g − n‖ / ‖n‖` over every weight: `g` the mixed-precision gradient, `n` the
    /// central differences of the penalty computed in the weights' dtype.
    pub relative_error: f64,
    /// `g·n / (‖g‖ ‖n‖)`.
    pub cosine: f64,
    /// Trainable weights Candle gave no gradient that is not a bias.
    pub missing: Vec<String>,
}

impl MixedPrecision {
    /// Within `tolerance` (on the relative error), no weight missing.
    pub fn within(&self, tolerance: f64) -> bool {
        self.missing.is_empty() && self.relative_error <= tolerance
    }
}

/// Each trainable weight's name, its analytic penalty gradient (from `grads`) and the
/// central difference of `value` around it; weights with no gradient (not biases) in `missing`.
type Compared = (Vec<(String, Vec<f64>, Vec<f64>)>, Vec<String>);

fn compare_weights(
    store: &ParamStore,
    grads: &candle_core::backprop::GradStore,
    value: impl Fn() -> Result<f64>,
) -> Result<Compared> {
    let (mut out, mut missing) = (Vec::new(), Vec::new());
    for (name, var) in store.trainable() {
        // A bias seen only through piecewise-linear masks has a zero penalty gradient
        // (Candle then returns none); finite differences confirm it. Weights never do.
        let analytic: Vec<f64> = match grads.get(&var) {
            Some(g) => g.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?,
            None if name.ends_with("bias") => vec![0.0; var.elem_count()],
            None => {
                missing.push(name);
                continue;
            }
        };
        let base: Vec<f64> = var.flatten_all()?.to_vec1()?;
        let set =
            |values: &[f64]| -> Result<()> { Ok(var.set(&Tensor::from_slice(values, var.shape(), var.device())?)?) };
        let mut numeric = Vec::with_capacity(base.len());
        let mut bumped = base.clone();
        for i in 0..base.len() {
            bumped[i] = base[i] + H;
            set(&bumped)?;
            let up = value()?;
            bumped[i] = base[i] - H;
            set(&bumped)?;
            let down = value()?;
            bumped[i] = base[i];
            numeric.push((up - down) / (2.0 * H));
        }
        set(&base)?;
        out.push((name, analytic, numeric));
    }
    Ok((out, missing))
}

/// The penalty (λ = 10, one ε per sample from a fixed seed) on `real` and `fake`: its
/// weight gradient through `analytic` beside central differences of its value through
/// `numeric` (the same critic, or the same weights computing otherwise), per weight.
fn penalty_gradients(
    analytic: &Network,
    numeric: &Network,
    store: &ParamStore,
    (real, fake): (&Tensor, &Tensor),
) -> Result<Compared> {
    let gp = GradientPenalty { lambda: 10.0 };
    let eps = gp.sample_eps(real, &mut ChaCha8Rng::seed_from_u64(3))?;
    let value = || -> Result<f64> { Ok(gp.penalty(numeric, real, fake, &eps)?.penalty.to_scalar::<f64>()?) };
    let grads = gp.penalty(analytic, real, fake, &eps)?.penalty.backward()?;
    compare_weights(store, &grads, value)
}

/// Compares `∂ penalty / ∂ w` (λ = 10, one ε per sample from a fixed seed) with central
/// differences for every trainable weight of `critic` (built from `store`, f64).
pub fn finite_differences(
    critic: &Network,
    store: &ParamStore,
    real: &Tensor,
    fake: &Tensor,
) -> Result<FiniteDifferences> {
    let (weights, missing) = penalty_gradients(critic, critic, store, (real, fake))?;
    let mut report = FiniteDifferences { checked: 0, worst: 0.0, worst_at: String::new(), missing };
    for (name, analytic, numeric) in weights {
        for (i, (&a, &n)) in analytic.iter().zip(&numeric).enumerate() {
            let err = (n - a).abs() / (1e-6 + 1e-5 * n.abs().max(a.abs()));
            if err.is_nan() || err > report.worst {
                report.worst = if err.is_nan() { f64::INFINITY } else { err };
                report.worst_at = format!("{name}[{i}]: analytic {a}, numeric {n}");
            }
            report.checked += 1;
        }
    }
    Ok(report)
}

/// The penalty's weight gradient with `critic`'s activations in `activations` (its
/// weights f64 in `store`) against central differences of the penalty computed all in
/// f64: how much mixed precision costs the gradient the critic trains on.
pub fn mixed_precision(
    critic: &Network,
    activations: DType,
    store: &ParamStore,
    real: &Tensor,
    fake: &Tensor,
) -> Result<MixedPrecision> {
    let (exact, mixed) = (critic.clone().with_activations(None), critic.clone().with_activations(Some(activations)));
    let (weights, missing) = penalty_gradients(&mixed, &exact, store, (real, fake))?;
    let (mut diff, mut norm_n, mut norm_g, mut dot, mut checked) = (0.0, 0.0, 0.0, 0.0, 0);
    for (_, analytic, numeric) in &weights {
        for (&g, &n) in analytic.iter().zip(numeric) {
            diff += (g - n) * (g - n);
            (norm_n, norm_g, dot) = (norm_n + n * n, norm_g + g * g, dot + g * n);
            checked += 1;
        }
    }
    let relative_error = if norm_n > 0.0 { (diff / norm_n).sqrt() } else { f64::INFINITY };
    let cosine = dot / (norm_g * norm_n).sqrt();
    Ok(MixedPrecision { checked, relative_error, cosine: if cosine.is_nan() { 0.0 } else { cosine }, missing })
}

/// Bound on [`MixedPrecision::relative_error`] with bf16 activations.
pub const BF16_TOLERANCE: f64 = 0.05;
