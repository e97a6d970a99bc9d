//! The gradients of one critic update, back-propagated term by term.
//!
//! The critic's loss is a sum: a term on the real batch's outputs, one on the generated
//! batch's, and for WGAN-GP the penalty. Each term is back-propagated, and its graph
//! dropped, before the next pass is built, as the papers' PyTorch code does
//! (pytorch/examples/dcgan `errD_real.backward(); errD_fake.backward()`,
//! martinarjovsky/WassersteinGAN `errD_real.backward(one); errD_fake.backward(mone)`):
//! with a batch-norm critic only one pass's activations are held at a time, and the
//! penalty's double pass never sits beside a forward pass. The gradients are the same
//! as one backward pass over the summed loss (tested below): the weights' gradients
//! are added, as one backward pass would add them.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use ganzoo_models::Network;

use crate::objective::{AdversarialObjective, Batch, PendingStats};
use crate::Result;

/// The critic's loss gradients for one step on `real` and `fake` (inputs as the critic
/// sees them), with what the objective drew for it (`AdversarialObjective::critic_draws`);
/// the loss's value goes to `stats.d_loss` (and `first_d_loss` if unset).
pub fn critic_gradients(
    objective: &dyn AdversarialObjective,
    critic: &Network,
    (real, fake): (&Tensor, &Tensor),
    drawn: Option<&Tensor>,
    stats: &mut PendingStats,
) -> Result<GradStore> {
    let pass = |batch: Batch, x: &Tensor, stats: &mut PendingStats| -> Result<Tensor> {
        objective.critic_term(batch, &critic.forward_t(x, true)?, drawn, stats)
    };
    let mut sum = if critic.couples_samples() || real.dims() != fake.dims() {
        // Batch norm: two passes, so each batch is normalised by its own statistics as in
        // the papers' code; each pass's graph freed before the next is built.
        let mut sum = TermSum::of(pass(Batch::Real, real, stats)?)?;
        sum.add(pass(Batch::Generated, fake, stats)?)?;
        sum
    } else {
        // No layer couples the samples: one pass over both gives the same outputs, from
        // matrix products twice as tall and one weight gradient per layer instead of two.
        let b = real.dim(0)?;
        let both = critic.forward_t(&Tensor::cat(&[real, fake], 0)?, true)?;
        let real_term = objective.critic_term(Batch::Real, &both.narrow(0, 0, b)?, drawn, stats)?;
        let fake_term = objective.critic_term(Batch::Generated, &both.narrow(0, b, b)?, drawn, stats)?;
        TermSum::of((real_term + fake_term)?)?
    };
    if let Some(penalty) = objective.critic_penalty(critic, real, fake, drawn, stats)? {
        sum.add(penalty)?;
    }
    if stats.first_d_loss.is_none() {
        stats.first_d_loss = Some(sum.value.clone());
    }
    stats.d_loss = Some(sum.value);
    Ok(sum.grads)
}

/// The terms back-propagated so far: their value and their gradients, added.
struct TermSum {
    value: Tensor,
    grads: GradStore,
}

impl TermSum {
    /// Back-propagates `term`, then drops it and with it its graph.
    fn of(term: Tensor) -> Result<Self> {
        let mut grads = term.backward()?;
        // Candle stores a gradient for every operand, constants too (the targets of
        // cross-entropy: `∂J/∂t`, built from the logits), and detaches none of the
        // stored ones: such a gradient holds the whole forward graph for as long as the
        // store lives. Detached (a shallow copy), the graph goes with `term`.
        let ids: Vec<_> = grads.get_ids().copied().collect();
        for id in ids {
            if let Some(g) = grads.get_id(id).filter(|g| g.track_op()) {
                let g = g.detach();
                grads.insert_id(id, g);
            }
        }
        Ok(Self { value: term.detach().to_dtype(DType::F32)?, grads })
    }

    fn add(&mut self, term: Tensor) -> Result<()> {
        let next = Self::of(term)?;
        self.value = (&self.value + next.value)?;
        self.grads.extend(next.grads)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use ganzoo_losses::{cross_entropy, wasserstein, GradientPenalty as Penalty};
    use ganzoo_models::{DcganConfig, Network, Norm, ParamStore};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::critic_gradients;
    use crate::config::{ClipTiming, Tricks};
    use crate::objective::{AdversarialObjective, CrossEntropy, GradientPenalty, PendingStats, WeightClipping};

    /// The loss as one expression over a pass per batch, from the losses' formulas.
    type Reference = fn(&Network, &Tensor, &Tensor, &mut ChaCha8Rng) -> Tensor;

    fn cross_entropy_loss(critic: &Network, real: &Tensor, fake: &Tensor, _: &mut ChaCha8Rng) -> Tensor {
        let targets = Tensor::full(0.9f32, real.dim(0).unwrap(), &Device::Cpu).unwrap();
        let (r, f) = (critic.forward_t(real, true).unwrap(), critic.forward_t(fake, true).unwrap());
        cross_entropy::discriminator_loss_with_targets(&r, &targets, &f).unwrap()
    }

    /// Label noise: each real target `0.9 − 0.2 u`, `u ~ U[0, 1)` drawn in sample order.
    fn noisy_cross_entropy_loss(critic: &Network, real: &Tensor, fake: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
        let b = real.dim(0).unwrap();
        let targets: Vec<f32> = (0..b).map(|_| (0.9 - 0.2 * rng.random::<f64>()) as f32).collect();
        let targets = Tensor::from_vec(targets, b, &Device::Cpu).unwrap();
        let (r, f) = (critic.forward_t(real, true).unwrap(), critic.forward_t(fake, true).unwrap());
        cross_entropy::discriminator_loss_with_targets(&r, &targets, &f).unwrap()
    }

    fn wasserstein_loss(critic: &Network, real: &Tensor, fake: &Tensor, _: &mut ChaCha8Rng) -> Tensor {
        let (r, f) = (critic.forward_t(real, true).unwrap(), critic.forward_t(fake, true).unwrap());
        wasserstein::critic_loss(&r, &f).unwrap()
    }

    fn penalised_loss(critic: &Network, real: &Tensor, fake: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
        let gp = Penalty { lambda: 10.0 };
        let eps = gp.sample_eps(real, rng).unwrap();
        let penalty = gp.penalty(critic, real, fake, &eps).unwrap().penalty;
        (wasserstein_loss(critic, real, fake, rng) + penalty).unwrap()
    }

    /// Term by term, with one pass over both batches (layer norm, no norm) or two (batch
    /// norm): the same loss and the same gradient for every weight as one backward pass
    /// over the whole loss, for each family's objective; no gradient holds a graph.
    #[test]
    fn term_by_term_gradients_are_the_whole_loss_gradients() {
        let real = Tensor::randn(0f32, 1.0, (3, 3, 32, 32), &Device::Cpu).unwrap();
        let fake = Tensor::randn(1f32, 3.0, (3, 3, 32, 32), &Device::Cpu).unwrap();
        let smoothed = Tricks { real_label: 0.9, ..Tricks::default() };
        let noisy = Tricks { label_noise: 0.2, ..smoothed };
        let all = [Norm::Layer, Norm::Batch, Norm::None];
        // The penalty refuses batch norm (no per-sample input gradient).
        let cases: [(Box<dyn AdversarialObjective>, Reference, &[Norm]); 4] = [
            (
                Box::new(CrossEntropy { cost: Default::default(), tricks: smoothed, fresh_noise: false }),
                cross_entropy_loss,
                &all,
            ),
            (
                Box::new(CrossEntropy { cost: Default::default(), tricks: noisy, fresh_noise: false }),
                noisy_cross_entropy_loss,
                &all,
            ),
            (Box::new(WeightClipping { value: 0.01, timing: ClipTiming::AfterStep }), wasserstein_loss, &all),
            (Box::new(GradientPenalty { lambda: 10.0 }), penalised_loss, &[Norm::Layer, Norm::None]),
        ];
        for (objective, reference, norms) in &cases {
            for &norm in *norms {
                let config = DcganConfig { critic_norm: norm, ndf: 8, ..DcganConfig::cifar10() };
                let store = ParamStore::new(1);
                let critic = config.discriminator(store.builder(DType::F32, &Device::Cpu).pp("critic")).unwrap();
                let mut stats = PendingStats::default();
                let mut rng = ChaCha8Rng::seed_from_u64(7);
                let drawn = objective.critic_draws(&real, &mut rng).unwrap();
                let grads =
                    critic_gradients(objective.as_ref(), &critic, (&real, &fake), drawn.as_ref(), &mut stats).unwrap();
                let whole = reference(&critic, &real, &fake, &mut ChaCha8Rng::seed_from_u64(7));
                let scalar = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
                let (value, expect) = (scalar(stats.d_loss.as_ref().unwrap()), scalar(&whole));
                assert!((value - expect).abs() <= 1e-5 * expect.abs().max(1.0), "{norm:?}: loss {value} vs {expect}");
                // A second step replaces the loss; the first step's stays.
                let mut again = stats.clone();
                let drawn = objective.critic_draws(&fake, &mut rng).unwrap();
                critic_gradients(objective.as_ref(), &critic, (&fake, &real), drawn.as_ref(), &mut again).unwrap();
                let (first, last) =
                    (scalar(again.first_d_loss.as_ref().unwrap()), scalar(again.d_loss.as_ref().unwrap()));
                assert!(first == value && last != value, "{norm:?}: first {first}, last {last}, was {value}");
                // No stored gradient keeps a graph (and with it a pass's activations) alive.
                for id in grads.get_ids() {
                    assert!(!grads.get_id(*id).unwrap().track_op(), "{norm:?}: a gradient carries a graph");
                }
                let expected = whole.backward().unwrap();
                for (name, var) in store.trainable() {
                    let (g, e) = (grads.get(var.as_tensor()).unwrap(), expected.get(var.as_tensor()).unwrap());
                    let scale = scalar(&e.abs().unwrap().max_all().unwrap()).max(1e-6);
                    let diff = scalar(&(g - e).unwrap().abs().unwrap().max_all().unwrap());
                    assert!(diff <= 1e-4 * scale, "{norm:?} {name}: gradients differ by {diff} (scale {scale})");
                }
            }
        }
    }
}
