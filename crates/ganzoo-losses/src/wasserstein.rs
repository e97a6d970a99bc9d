//! The Wasserstein GAN objective (Arjovsky et al. 2017, eq. 3 and algorithm 1).
//!
//! The critic `f` maximises `E f(x) − E f(G(z))`, an estimate of `W(P_r, P_g)` (up to
//! the Lipschitz constant) when `f` is kept K-Lipschitz; so it minimises
//! `L_f = E f(G(z)) − E f(x)`, and the generator minimises `L_G = −E f(G(z))`.
//! Weight clipping (algorithm 1, line 7) keeps `f` Lipschitz by clamping every
//! critic weight to `[−c, c]` after each critic step.

use candle_core::{Tensor, Var};

use crate::{LossError, Result};

/// `L_f = E f(G(z)) − E f(x)`.
pub fn critic_loss(real_scores: &Tensor, fake_scores: &Tensor) -> Result<Tensor> {
    Ok((critic_fake_term(fake_scores)? + critic_real_term(real_scores)?)?)
}

/// `L_f`'s term on real samples, `−E f(x)` (the reference's `errD_real.backward(one)`,
/// back-propagated before the generated batch's pass).
pub fn critic_real_term(real_scores: &Tensor) -> Result<Tensor> {
    Ok(real_scores.flatten_all()?.mean_all()?.neg()?)
}

/// `L_f`'s term on generated samples, `E f(G(z))`.
pub fn critic_fake_term(fake_scores: &Tensor) -> Result<Tensor> {
    Ok(fake_scores.flatten_all()?.mean_all()?)
}

/// `L_G = −E f(G(z))`.
pub fn generator_loss(fake_scores: &Tensor) -> Result<Tensor> {
    Ok(fake_scores.flatten_all()?.mean_all()?.neg()?)
}

/// The critic's estimate `E f(x) − E f(G(z))` as a number.
pub fn wasserstein_estimate(real_scores: &Tensor, fake_scores: &Tensor) -> Result<f64> {
    Ok(critic_loss(real_scores, fake_scores)?.neg()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

/// Clamps each variable to `[−c, c]` in place (ganzoo's kernel where it runs: one pass
/// per variable, or on CUDA one launch for all; else Candle's ops and a copy back). Pass
/// only the critic's trainable weights ([`ganzoo_models::ParamStore::trainable`]), never
/// batch-norm running statistics.
pub fn clip_weights<'a>(vars: impl IntoIterator<Item = &'a Var>, c: f64) -> Result<()> {
    if !(c > 0.0 && c.is_finite()) {
        return Err(LossError::InvalidArgument(format!("clip value must be positive and finite, got {c}")));
    }
    let mut in_place = Vec::new();
    for var in vars {
        let v = var.as_tensor();
        if ganzoo_models::backend::cuda_kernels_run(v, &[], ganzoo_kernels::ImageLayout::Nchw) {
            in_place.push(v);
        } else {
            var.set(&v.clamp(-c, c)?)?;
        }
    }
    Ok(ganzoo_kernels::clamp_all(&in_place, -c, c)?)
}
