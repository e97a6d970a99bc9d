//! Each GAN family's objective in one place: what the critic and the generator
//! minimise, what follows a critic step, and what a metrics line reports. The
//! training loop knows only [`AdversarialObjective`]; adding a family is one
//! implementation here and one arm in [`for_config`].
//!
//! - [`CrossEntropy`]: Goodfellow et al. 2014, eq. 1 — the discriminator's binary
//!   cross-entropy (with the seed's label smoothing and noise), one of three generator
//!   costs (minimax, non-saturating, maximum likelihood).
//! - [`WeightClipping`]: Arjovsky et al. 2017, algorithm 1 — `E f(G(z)) − E f(x)` for the
//!   critic, `−E f(G(z))` for the generator, weights clamped to `[−c, c]` after each step.
//! - [`GradientPenalty`]: Gulrajani et al. 2017, algorithm 1 — the same losses plus
//!   `λ E[(‖∇x̂ f(x̂)‖₂ − 1)²]`, no clipping.

use candle_core::{DType, Tensor};
use ganzoo_losses::{cross_entropy, generator_loss, wasserstein, GeneratorCost};
use ganzoo_models::{Network, ParamStore};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::{ClipTiming, Constraint, Objective, TrainConfig, Tricks};
use crate::metrics::Metrics;
use crate::Result;

/// Losses and diagnostics of one generator iteration.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepStats {
    /// The last critic step's loss, as the papers' code reports it.
    pub d_loss: f64,
    /// The first critic step's, before this iteration updated anything.
    pub first_d_loss: f64,
    pub g_loss: f64,
    /// The critic's mean output on the real batch: `D(x)`, a probability, for
    /// cross-entropy; the score `f(x)` for WGANs.
    pub d_real: f64,
    /// The same on the generated batch.
    pub d_fake: f64,
    pub penalty: f64,
    /// Real samples the critic saw.
    pub real_seen: usize,
}

/// One iteration's statistics while it runs: one-element tensors left where they were
/// computed, read back together once the iteration's work is queued ([`Self::read`]),
/// so a GPU is never made to wait in the middle of an iteration. A later critic step
/// replaces an earlier one's values, as the metrics report the last; the first's loss is
/// kept too (`first_d_loss`).
#[derive(Debug, Clone, Default)]
pub struct PendingStats {
    pub d_loss: Option<Tensor>,
    pub first_d_loss: Option<Tensor>,
    pub g_loss: Option<Tensor>,
    pub d_real: Option<Tensor>,
    pub d_fake: Option<Tensor>,
    pub penalty: Option<Tensor>,
    pub real_seen: usize,
}

impl PendingStats {
    /// Every value set, in one device-to-host copy (unset ones read 0).
    pub fn read(&self) -> Result<StepStats> {
        let fields = [&self.d_loss, &self.first_d_loss, &self.g_loss, &self.d_real, &self.d_fake, &self.penalty];
        let set: Vec<Tensor> = fields
            .iter()
            .filter_map(|t| t.as_ref())
            .map(|t| t.detach().to_dtype(DType::F64)?.reshape(1))
            .collect::<candle_core::Result<_>>()?;
        let mut values = if set.is_empty() { Vec::new() } else { Tensor::cat(&set, 0)?.to_vec1::<f64>()? }.into_iter();
        let mut next = |t: &Option<Tensor>| if t.is_some() { values.next().unwrap_or(0.0) } else { 0.0 };
        Ok(StepStats {
            d_loss: next(&self.d_loss),
            first_d_loss: next(&self.first_d_loss),
            g_loss: next(&self.g_loss),
            d_real: next(&self.d_real),
            d_fake: next(&self.d_fake),
            penalty: next(&self.penalty),
            real_seen: self.real_seen,
        })
    }
}

/// The critic's two batches in a step, in the order their terms are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    Real,
    Generated,
}

/// What distinguishes one GAN family's training from another's.
pub trait AdversarialObjective: Send {
    /// What the critic step draws from the run's RNG, drawn on the host before the step,
    /// after its batches and their instance noise, in the order the terms use it:
    /// cross-entropy's noisy real targets, WGAN-GP's ε (one per sample of `real`).
    /// The step itself draws nothing, so a CUDA graph can record it (`replay.rs`).
    /// `None` where the objective draws nothing.
    fn critic_draws(&self, _real: &Tensor, _rng: &mut ChaCha8Rng) -> Result<Option<Tensor>> {
        Ok(None)
    }

    /// The critic's loss term on its outputs `out` for one batch, with what
    /// [`Self::critic_draws`] drew, recording its statistics in `stats`. The critic
    /// minimises the real batch's term plus the generated batch's plus
    /// [`Self::critic_penalty`]. [`crate::critic_step`] asks for the real batch's first
    /// and back-propagates each term before building the next pass (with batch norm), or
    /// sums the two from one pass over both batches.
    fn critic_term(
        &self,
        batch: Batch,
        out: &Tensor,
        drawn: Option<&Tensor>,
        stats: &mut PendingStats,
    ) -> Result<Tensor>;

    /// A term of the critic's loss on the critic itself (the gradient penalty), asked
    /// for after both batches' terms, with what [`Self::critic_draws`] drew.
    fn critic_penalty(
        &self,
        _critic: &Network,
        _real: &Tensor,
        _fake: &Tensor,
        _drawn: Option<&Tensor>,
        _stats: &mut PendingStats,
    ) -> Result<Option<Tensor>> {
        Ok(None)
    }

    /// The generator's loss from the critic's outputs on generated samples.
    fn generator_loss(&self, fake_out: &Tensor) -> Result<Tensor>;

    /// Applied to the critic's weights before each critic step (its first forward pass).
    fn before_critic_step(&self, _critic: &ParamStore) -> Result<()> {
        Ok(())
    }

    /// Applied to the critic's weights after each of its optimiser steps.
    fn after_critic_step(&self, _critic: &ParamStore) -> Result<()> {
        Ok(())
    }

    /// The generator step may train on the last critic step's generated batch instead
    /// of fresh noise (cross-entropy GANs with one discriminator step, as in the DCGAN
    /// reference code: one generator forward pass per iteration instead of two).
    fn reuses_fake_batch(&self, _critic_steps: usize) -> bool {
        false
    }

    /// D(G(z)) is a probability whose collapse to 0 is worth reporting.
    fn reports_collapse(&self) -> bool {
        false
    }

    /// This objective's statistics in a metrics line.
    fn record(&self, stats: &StepStats, metrics: &mut Metrics);
}

/// The objective a configuration names.
pub fn for_config(config: &TrainConfig) -> Box<dyn AdversarialObjective> {
    match config.objective {
        Objective::CrossEntropy { generator_cost, fresh_noise } => {
            Box::new(CrossEntropy { cost: generator_cost.into(), tricks: config.tricks, fresh_noise })
        }
        Objective::Wasserstein { constraint: Constraint::Clip { value, timing } } => {
            Box::new(WeightClipping { value, timing })
        }
        Objective::Wasserstein { constraint: Constraint::Penalty { lambda } } => Box::new(GradientPenalty { lambda }),
    }
}

/// The cross-entropy GAN of Goodfellow et al. (and DCGAN).
pub struct CrossEntropy {
    pub cost: GeneratorCost,
    pub tricks: Tricks,
    /// The generator step draws new noise even after a single discriminator step.
    pub fresh_noise: bool,
}

impl AdversarialObjective for CrossEntropy {
    /// Label noise: real targets `real_label − U[0, label_noise]`, one per sample of
    /// `real`; nothing drawn without it.
    fn critic_draws(&self, real: &Tensor, rng: &mut ChaCha8Rng) -> Result<Option<Tensor>> {
        let (t, b) = (self.tricks, real.dim(0)?);
        if t.label_noise <= 0.0 {
            return Ok(None);
        }
        let values: Vec<f32> = (0..b).map(|_| (t.real_label - t.label_noise * rng.random::<f64>()) as f32).collect();
        Ok(Some(Tensor::from_vec(values, b, real.device())?))
    }

    fn critic_term(
        &self,
        batch: Batch,
        out: &Tensor,
        drawn: Option<&Tensor>,
        stats: &mut PendingStats,
    ) -> Result<Tensor> {
        let mean = Some(candle_nn::ops::sigmoid(&out.detach())?.mean_all()?);
        match batch {
            Batch::Real => {
                stats.d_real = mean;
                let targets = match drawn {
                    Some(noisy) => noisy.clone(),
                    None => Tensor::full(self.tricks.real_label as f32, out.dim(0)?, out.device())?,
                };
                Ok(cross_entropy::discriminator_real_term(out, &targets)?)
            }
            Batch::Generated => {
                stats.d_fake = mean;
                Ok(cross_entropy::discriminator_fake_term(out)?)
            }
        }
    }

    fn generator_loss(&self, fake_out: &Tensor) -> Result<Tensor> {
        Ok(generator_loss(self.cost, fake_out)?)
    }

    fn reuses_fake_batch(&self, critic_steps: usize) -> bool {
        critic_steps == 1 && !self.fresh_noise
    }

    fn reports_collapse(&self) -> bool {
        true
    }

    fn record(&self, stats: &StepStats, m: &mut Metrics) {
        (m.d_real, m.d_fake) = (Some(stats.d_real), Some(stats.d_fake));
    }
}

/// The Wasserstein critic's loss terms, shared by both WGANs; the mean scores they
/// record give the estimate of W ([`wasserstein_estimate`]).
fn wasserstein_term(batch: Batch, out: &Tensor, stats: &mut PendingStats) -> Result<Tensor> {
    let mean = Some(out.detach().to_dtype(DType::F32)?.mean_all()?);
    match batch {
        Batch::Real => {
            stats.d_real = mean;
            Ok(wasserstein::critic_real_term(out)?)
        }
        Batch::Generated => {
            stats.d_fake = mean;
            Ok(wasserstein::critic_fake_term(out)?)
        }
    }
}

/// `E f(x) − E f(G(z))`, the critic's loss negated (Arjovsky et al. 2017, eq. 3), from
/// the mean scores of the last critic step.
fn wasserstein_estimate(stats: &StepStats) -> f64 {
    stats.d_real - stats.d_fake
}

/// WGAN: a weight-clipped critic.
pub struct WeightClipping {
    pub value: f64,
    pub timing: ClipTiming,
}

impl WeightClipping {
    fn clip(&self, critic: &ParamStore) -> Result<()> {
        let vars = critic.trainable();
        Ok(wasserstein::clip_weights(vars.iter().map(|(_, v)| v), self.value)?)
    }
}

impl AdversarialObjective for WeightClipping {
    fn critic_term(&self, batch: Batch, out: &Tensor, _: Option<&Tensor>, stats: &mut PendingStats) -> Result<Tensor> {
        wasserstein_term(batch, out, stats)
    }

    fn generator_loss(&self, fake_out: &Tensor) -> Result<Tensor> {
        Ok(wasserstein::generator_loss(fake_out)?)
    }

    fn before_critic_step(&self, critic: &ParamStore) -> Result<()> {
        match self.timing {
            ClipTiming::BeforeStep => self.clip(critic),
            ClipTiming::AfterStep => Ok(()),
        }
    }

    fn after_critic_step(&self, critic: &ParamStore) -> Result<()> {
        match self.timing {
            ClipTiming::AfterStep => self.clip(critic),
            ClipTiming::BeforeStep => Ok(()),
        }
    }

    fn record(&self, stats: &StepStats, m: &mut Metrics) {
        m.wasserstein = Some(wasserstein_estimate(stats));
    }
}

/// WGAN-GP: a critic kept 1-Lipschitz by a gradient penalty.
pub struct GradientPenalty {
    pub lambda: f64,
}

impl GradientPenalty {
    fn penalty(&self) -> ganzoo_losses::GradientPenalty {
        ganzoo_losses::GradientPenalty { lambda: self.lambda }
    }
}

impl AdversarialObjective for GradientPenalty {
    fn critic_term(&self, batch: Batch, out: &Tensor, _: Option<&Tensor>, stats: &mut PendingStats) -> Result<Tensor> {
        wasserstein_term(batch, out, stats)
    }

    fn critic_draws(&self, real: &Tensor, rng: &mut ChaCha8Rng) -> Result<Option<Tensor>> {
        Ok(Some(self.penalty().sample_eps(real, rng)?))
    }

    fn critic_penalty(
        &self,
        critic: &Network,
        real: &Tensor,
        fake: &Tensor,
        drawn: Option<&Tensor>,
        stats: &mut PendingStats,
    ) -> Result<Option<Tensor>> {
        let missing = || ganzoo_losses::LossError::InvalidArgument("the gradient penalty's ε was not drawn".into());
        let eps = drawn.ok_or_else(missing)?;
        let penalty = self.penalty().penalty(critic, real, fake, eps)?.penalty;
        stats.penalty = Some(penalty.detach());
        Ok(Some(penalty))
    }

    fn generator_loss(&self, fake_out: &Tensor) -> Result<Tensor> {
        Ok(wasserstein::generator_loss(fake_out)?)
    }

    fn record(&self, stats: &StepStats, m: &mut Metrics) {
        (m.wasserstein, m.penalty) = (Some(wasserstein_estimate(stats)), Some(stats.penalty));
    }
}

/// A one-element tensor's value as `f64`.
pub fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn pending_statistics_are_read_together_unset_ones_as_zero() {
        let one = |v: f32| Tensor::new(v, &Device::Cpu).unwrap();
        let pending = PendingStats {
            d_loss: Some(one(1.5)),
            first_d_loss: Some(one(2.5)),
            g_loss: Some(Tensor::new(&[f32::NAN], &Device::Cpu).unwrap()),
            d_fake: Some(one(-0.25)),
            real_seen: 64,
            ..PendingStats::default()
        };
        let s = pending.read().unwrap();
        assert_eq!((s.d_loss, s.d_fake, s.d_real, s.penalty, s.real_seen), (1.5, -0.25, 0.0, 0.0, 64));
        assert_eq!(s.first_d_loss, 2.5);
        assert!(s.g_loss.is_nan());
        assert_eq!(PendingStats::default().read().unwrap().d_loss, 0.0);
    }
}
