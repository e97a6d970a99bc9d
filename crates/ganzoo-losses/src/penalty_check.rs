//! The penalty's gradient with respect to every critic weight — a second-order
//! derivative — against central finite differences, on whatever device the critic lives
//! on (f64 weights). The tests run it on the CPU; `ganzoo bench --parity` on a GPU.

use candle_core::Tensor;
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

/// Compares `∂ penalty / ∂ w` (λ = 10, one ε per sample from a fixed seed) with central
/// differences for every trainable weight of `critic` (built from `store`, f64).
pub fn finite_differences(
    critic: &Network,
    store: &ParamStore,
    real: &Tensor,
    fake: &Tensor,
) -> Result<FiniteDifferences> {
    let gp = GradientPenalty { lambda: 10.0 };
    let eps = gp.sample_eps(real, &mut ChaCha8Rng::seed_from_u64(3))?;
    let value = || -> Result<f64> { Ok(gp.penalty(critic, real, fake, &eps)?.penalty.to_scalar::<f64>()?) };
    let grads = gp.penalty(critic, real, fake, &eps)?.penalty.backward()?;
    let mut report = FiniteDifferences { checked: 0, worst: 0.0, worst_at: String::new(), missing: Vec::new() };
    for (name, var) in store.trainable() {
        // A bias seen only through piecewise-linear masks has a zero penalty gradient
        // (Candle then returns none); finite differences confirm it. Weights never do.
        let analytic: Vec<f64> = match grads.get(&var) {
            Some(g) => g.flatten_all()?.to_vec1()?,
            None if name.ends_with("bias") => vec![0.0; var.elem_count()],
            None => {
                report.missing.push(name);
                continue;
            }
        };
        let base: Vec<f64> = var.flatten_all()?.to_vec1()?;
        let set =
            |values: &[f64]| -> Result<()> { Ok(var.set(&Tensor::from_slice(values, var.shape(), var.device())?)?) };
        for (i, &a) in analytic.iter().enumerate() {
            let mut bumped = base.clone();
            bumped[i] = base[i] + H;
            set(&bumped)?;
            let up = value()?;
            bumped[i] = base[i] - H;
            set(&bumped)?;
            let down = value()?;
            let numeric = (up - down) / (2.0 * H);
            let err = (numeric - a).abs() / (1e-6 + 1e-5 * numeric.abs().max(a.abs()));
            if err.is_nan() || err > report.worst {
                report.worst = if err.is_nan() { f64::INFINITY } else { err };
                report.worst_at = format!("{name}[{i}]: analytic {a}, numeric {numeric}");
            }
            report.checked += 1;
        }
        set(&base)?;
    }
    Ok(report)
}
