//! Training a lone critic or discriminator between two fixed distributions — what the
//! papers' figures show: the critic "trained to optimality" against a held-fixed
//! generator. Built from ganzoo's networks, losses and optimisers.

use candle_core::{DType, Device, Tensor};
use ganzoo_data::ToyDistribution;
use ganzoo_losses::{cross_entropy, wasserstein, GradientPenalty};
use ganzoo_models::{MlpConfig, Network, ParamStore};
use ganzoo_train::config::Optimizer;
use ganzoo_train::optim::OptimizerState;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::Result;

/// What the critic is trained to tell apart: data from `real`, and from `fake` (a toy,
/// or the real toy plus `N(0, σ²)` noise — the WGAN-GP paper's fixed generator).
#[derive(Debug, Clone, Copy)]
pub enum Source {
    Toy(ToyDistribution),
    NoisyToy(ToyDistribution, f64),
}

impl Source {
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        let (toy, sigma) = match *self {
            Self::Toy(t) => (t, 0.0),
            Self::NoisyToy(t, s) => (t, s),
        };
        let dim = toy.dim();
        let mut v = toy.sample(n, rng);
        if sigma > 0.0 {
            v.iter_mut().for_each(|x| *x += (sigma * rng.sample::<f64, _>(StandardNormal)) as f32);
        }
        Ok(Tensor::from_vec(v, (n, dim), &Device::Cpu)?)
    }
}

/// The loss a critic is trained with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CriticLoss {
    /// Goodfellow et al.'s discriminator (logits, cross-entropy).
    CrossEntropy,
    /// A WGAN critic with weights clipped to ±c after each step.
    Clipped(f64),
    /// A WGAN critic with gradient penalty λ.
    Penalty(f64),
}

impl CriticLoss {
    /// The optimiser the reference scripts pair with this loss: RMSprop 5e-5 for clipping
    /// (WGAN), Adam 1e-4 (0.5, 0.9) for the penalty (WGAN-GP); Adam 1e-3 for a discriminator.
    pub fn reference_optimizer(self) -> Optimizer {
        match self {
            Self::CrossEntropy => Optimizer::Adam { lr: 1e-3, beta1: 0.5, beta2: 0.999 },
            Self::Clipped(_) => Optimizer::RmsProp { lr: 5e-5 },
            Self::Penalty(_) => Optimizer::Adam { lr: 1e-4, beta1: 0.5, beta2: 0.9 },
        }
    }
}

/// An MLP critic for `dim`-dimensional points: `depth` ReLU layers of `width`.
pub fn mlp_critic(dim: usize, width: usize, depth: usize, seed: u64) -> Result<(Network, ParamStore)> {
    let store = ParamStore::new(seed);
    let config = MlpConfig { input: dim, hidden: vec![width; depth], ..MlpConfig::toy_critic() };
    let net = config.build(store.builder(DType::F32, &Device::Cpu).pp("critic"))?;
    Ok((net, store))
}

/// `steps` optimiser steps on batches of `batch` from each side; returns the loss of each step.
#[allow(clippy::too_many_arguments)]
pub fn train(
    critic: &Network,
    store: &ParamStore,
    loss: CriticLoss,
    optimizer: Optimizer,
    (real, fake): (Source, Source),
    steps: usize,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>> {
    let mut opt = OptimizerState::new(optimizer, store.trainable())?;
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let (x, y) = (real.sample(batch, rng)?, fake.sample(batch, rng)?);
        let l = critic_loss(critic, loss, &x, &y, rng)?;
        losses.push(l.to_scalar::<f32>()? as f64);
        opt.step(&l.backward()?)?;
        if let CriticLoss::Clipped(c) = loss {
            let vars = store.trainable();
            wasserstein::clip_weights(vars.iter().map(|(_, v)| v), c)?;
        }
    }
    Ok(losses)
}

/// The loss of `critic` on real `x` and generated `y` (penalty included).
pub fn critic_loss(critic: &Network, loss: CriticLoss, x: &Tensor, y: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let (fx, fy) = (critic.forward_t(x, true)?, critic.forward_t(y, true)?);
    Ok(match loss {
        CriticLoss::CrossEntropy => cross_entropy::discriminator_loss(&fx, &fy)?,
        CriticLoss::Clipped(_) => wasserstein::critic_loss(&fx, &fy)?,
        CriticLoss::Penalty(lambda) => {
            let gp = GradientPenalty { lambda };
            let eps = gp.sample_eps(x, rng)?;
            (wasserstein::critic_loss(&fx, &fy)? + gp.penalty(critic, x, y, &eps)?.penalty)?
        }
    })
}

/// The critic's values on `n` fresh samples of each side.
fn fresh_scores(
    critic: &Network,
    (real, fake): (Source, Source),
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Tensor, Tensor)> {
    let (x, y) = (real.sample(n, rng)?, fake.sample(n, rng)?);
    Ok((critic.forward_t(&x, false)?, critic.forward_t(&y, false)?))
}

/// `E f(x) − E f(y)` over `n` fresh samples of each side: the critic's estimate of W.
pub fn wasserstein_estimate(critic: &Network, sides: (Source, Source), n: usize, rng: &mut ChaCha8Rng) -> Result<f64> {
    let (fx, fy) = fresh_scores(critic, sides, n, rng)?;
    Ok(wasserstein::wasserstein_estimate(&fx, &fy)?)
}

/// `log 2 − J(D)` over `n` fresh samples: the discriminator's estimate of JS (at the
/// optimal D, `V(D, G) = 2 JS − log 4` and `J(D) = −V/2`).
pub fn jensen_shannon_estimate(
    critic: &Network,
    sides: (Source, Source),
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<f64> {
    let (fx, fy) = fresh_scores(critic, sides, n, rng)?;
    let j = cross_entropy::discriminator_loss(&fx, &fy)?;
    Ok(std::f64::consts::LN_2 - j.to_scalar::<f32>()? as f64)
}
