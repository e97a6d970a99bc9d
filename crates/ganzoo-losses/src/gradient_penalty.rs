//! The WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3 and algorithm 1):
//!
//! `P = λ E_x̂ [(‖∇_x̂ D(x̂)‖₂ − 1)²]`, `x̂ = ε x + (1 − ε) x̃`, `ε ~ U[0, 1]`,
//!
//! with one `ε` per sample and the norm taken over all of a sample's dimensions
//! (not one norm over the batch). `∇_x̂ D` comes from
//! [`Network::input_gradient`](ganzoo_models::Network::input_gradient), an explicit
//! differentiable graph, so `P.backward()` gives the exact second-order gradient
//! with respect to every critic weight — independent of Candle's
//! `CANDLE_GRAD_DO_NOT_DETACH`, which would otherwise detach it silently. A critic
//! with batch norm (whose per-sample gradient is undefined) is an error.

use candle_core::{Device, Tensor};
use ganzoo_models::Network;
use rand::Rng;

use crate::{LossError, Result};

/// Inside the square root, so the norm's gradient stays finite at a zero gradient.
const NORM_EPS: f64 = 1e-12;

/// The penalty's weight λ (10 in the paper, 0.1 in its toy script).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientPenalty {
    pub lambda: f64,
}

impl Default for GradientPenalty {
    fn default() -> Self {
        Self { lambda: 10.0 }
    }
}

/// The penalty and the numbers worth logging.
#[derive(Debug, Clone)]
pub struct PenaltyOutput {
    /// `λ E (‖g‖ − 1)²`, differentiable with respect to the critic's weights.
    pub penalty: Tensor,
    /// Per-sample gradient norms `‖∇_x̂ D(x̂)‖₂`, shape `(B,)`.
    pub grad_norms: Tensor,
}

impl GradientPenalty {
    /// Draws one `ε ~ U[0, 1]` per sample, shaped `(B, 1, …, 1)` to broadcast over a sample.
    pub fn sample_eps(&self, like: &Tensor, rng: &mut impl Rng) -> Result<Tensor> {
        let b = like.dim(0)?;
        let eps: Vec<f64> = (0..b).map(|_| rng.random::<f64>()).collect();
        let mut shape = vec![b];
        shape.extend(std::iter::repeat_n(1, like.rank() - 1));
        Ok(Tensor::from_vec(eps, shape, &Device::Cpu)?.to_dtype(like.dtype())?.to_device(like.device())?)
    }

    /// The penalty at `x̂ = ε real + (1 − ε) fake`; `fake` is detached from the generator.
    pub fn penalty(&self, critic: &Network, real: &Tensor, fake: &Tensor, eps: &Tensor) -> Result<PenaltyOutput> {
        if real.dims() != fake.dims() {
            return Err(LossError::InvalidArgument(format!(
                "real {:?} and fake {:?} differ in shape",
                real.dims(),
                fake.dims()
            )));
        }
        if eps.dim(0)? != real.dim(0)? || eps.elem_count() != eps.dim(0)? {
            return Err(LossError::InvalidArgument(format!("need one ε per sample, got {:?}", eps.dims())));
        }
        let fake = fake.detach();
        let x_hat = (real.broadcast_mul(eps)? + fake.broadcast_mul(&(1.0 - eps)?)?)?.detach();
        let (_, grad) = critic.input_gradient(&x_hat)?;
        let grad_norms = (grad.flatten_from(1)?.sqr()?.sum(1)? + NORM_EPS)?.sqrt()?;
        let penalty = ((&grad_norms - 1.0)?.sqr()?.mean_all()? * self.lambda)?;
        Ok(PenaltyOutput { penalty, grad_norms })
    }
}
