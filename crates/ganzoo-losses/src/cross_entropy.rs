//! The original GAN objective (Goodfellow et al. 2014; equations from Goodfellow,
//! "NIPS 2016 Tutorial: Generative Adversarial Networks", section 3.2), from logits.
//!
//! With `D = σ(l)`: `log D = −softplus(−l)` and `log(1 − D) = −softplus(l)`, where
//! `softplus(x) = max(x, 0) + log(1 + e^{−|x|})` never overflows, so every loss is
//! finite at any logit.
//!
//! - Discriminator (eq. 8): `J(D) = −½ E log D(x) − ½ E log(1 − D(G(z)))`.
//! - Generator costs: minimax (eq. 9) `J(G) = −J(D)`, of which only
//!   `½ E log(1 − D(G(z)))` depends on G; non-saturating (eq. 13)
//!   `−½ E log D(G(z))`; maximum likelihood (eq. 14) `−½ E exp(σ⁻¹(D(G(z))))` = `−½ E e^{l}`.

use candle_core::Tensor;

use crate::{LossError, Result};

/// `softplus(x) = log(1 + eˣ)`, computed stably.
pub fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// `J(D)` from the discriminator's logits on real and generated samples.
pub fn discriminator_loss(real_logits: &Tensor, fake_logits: &Tensor) -> Result<Tensor> {
    let real = softplus(&real_logits.flatten_all()?.neg()?)?.mean_all()?;
    let fake = softplus(&fake_logits.flatten_all()?)?.mean_all()?;
    Ok(((real + fake)? * 0.5)?)
}

/// `J(D)` with soft or noisy real-label targets `t ∈ [0, 1]` per sample (the seed's
/// label smoothing): `−½ E[t log D(x) + (1 − t) log(1 − D(x))] − ½ E log(1 − D(G(z)))`.
pub fn discriminator_loss_with_targets(real_logits: &Tensor, targets: &Tensor, fake_logits: &Tensor) -> Result<Tensor> {
    Ok((discriminator_real_term(real_logits, targets)? + discriminator_fake_term(fake_logits)?)?)
}

/// `J(D)`'s term on real samples, `−½ E[t log D(x) + (1 − t) log(1 − D(x))]`: the trainer
/// back-propagates it before the generated batch's pass (as pytorch/examples/dcgan's
/// `errD_real.backward()`), so only one of the two passes is held at a time.
pub fn discriminator_real_term(real_logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let l = real_logits.flatten_all()?;
    let t = targets.flatten_all()?;
    if l.dims() != t.dims() {
        return Err(LossError::InvalidArgument(format!("{:?} logits but {:?} targets", l.dims(), t.dims())));
    }
    let pos = (softplus(&l.neg()?)? * &t)?;
    let neg = (softplus(&l)? * (1.0 - &t)?)?;
    Ok(((pos + neg)?.mean_all()? * 0.5)?)
}

/// `J(D)`'s term on generated samples, `−½ E log(1 − D(G(z)))`.
pub fn discriminator_fake_term(fake_logits: &Tensor) -> Result<Tensor> {
    Ok((softplus(&fake_logits.flatten_all()?)?.mean_all()? * 0.5)?)
}

/// Which generator cost to minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeneratorCost {
    /// `½ E log(1 − D(G(z)))`: the zero-sum game; saturates when D rejects G's samples.
    Minimax,
    /// `−½ E log D(G(z))`: the heuristic that keeps gradients alive (the default).
    #[default]
    NonSaturating,
    /// `−½ E exp(σ⁻¹(D(G(z))))`: maximum likelihood when D is optimal. Above the logit
    /// [`ML_LINEAR_FROM`] the exponential continues along its tangent, so value and
    /// gradient stay finite in f32 (`exp` overflows past 88.7).
    MaximumLikelihood,
}

/// Logit from which the maximum-likelihood cost's `e^l` is replaced by its tangent
/// `e^c (1 + l − c)`: continuous with a continuous gradient `e^c` (≈ 5.2e21 at c = 50).
/// `D(G(z)) = σ(50)` is 1 to 21 decimal places, far outside where training goes.
pub const ML_LINEAR_FROM: f64 = 50.0;

/// The generator's cost from the discriminator's logits on generated samples.
pub fn generator_loss(cost: GeneratorCost, fake_logits: &Tensor) -> Result<Tensor> {
    let l = fake_logits.flatten_all()?;
    let v = match cost {
        GeneratorCost::Minimax => (softplus(&l)?.mean_all()? * -0.5)?,
        GeneratorCost::NonSaturating => (softplus(&l.neg()?)?.mean_all()? * 0.5)?,
        GeneratorCost::MaximumLikelihood => {
            // e^min(l, c) + e^c · max(l − c, 0): e^l below c, its tangent above.
            let capped = l.clamp(f64::MIN, ML_LINEAR_FROM)?;
            let excess = (l - ML_LINEAR_FROM)?.relu()?;
            let e = (capped.exp()? + (excess * ML_LINEAR_FROM.exp())?)?;
            (e.mean_all()? * -0.5)?
        }
    };
    Ok(v)
}
