//! A fully connected layer `y = x Wᵀ + b`, W of shape `(out, in)`, initialised as
//! PyTorch's `nn.Linear` (Kaiming-uniform weight, bias U(−1/√in, 1/√in)) or as tflib's
//! `Linear` (improved_wgan_training `tflib/ops/linear.py`: `uniform(stdev)` draws
//! U(±√3·stdev); He: stdev √(2/in), Glorot: √(2/(in+out)); zero bias).

use candle_core::{Module, Tensor};
use candle_nn::{Init, VarBuilder};
use ganzoo_kernels::{ImageLayout, Transposes};

use crate::Result;

/// How a [`Linear`] layer's weight and bias are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinearInit {
    /// PyTorch's `nn.Linear`: weight and bias U(−1/√in, 1/√in).
    #[default]
    Torch,
    /// tflib's `initialization='he'`: weight U(±√(6/in)), zero bias.
    He,
    /// tflib's default (Glorot): weight U(±√(6/(in+out))), zero bias.
    Glorot,
}

#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// PyTorch's initialisation.
    pub fn new(input: usize, output: usize, vb: VarBuilder) -> Result<Self> {
        Self::with_init(input, output, LinearInit::Torch, vb)
    }

    pub fn with_init(input: usize, output: usize, init: LinearInit, vb: VarBuilder) -> Result<Self> {
        let uniform = |bound: f64| Init::Uniform { lo: -bound, up: bound };
        let (w, b) = match init {
            // PyTorch's kaiming_uniform_(a=√5) gives exactly U(−1/√in, 1/√in) for the weight too.
            LinearInit::Torch => (uniform(1.0 / (input as f64).sqrt()), uniform(1.0 / (input as f64).sqrt())),
            LinearInit::He => (uniform((6.0 / input as f64).sqrt()), Init::Const(0.0)),
            LinearInit::Glorot => (uniform((6.0 / (input + output) as f64).sqrt()), Init::Const(0.0)),
        };
        let weight = vb.get_with_hints((output, input), "weight", w)?;
        let bias = vb.get_with_hints(output, "bias", b)?;
        Ok(Self { weight, bias })
    }

    /// The same layer on detached weights (see [`crate::Network::frozen`]).
    pub fn frozen(&self) -> Self {
        Self { weight: self.weight.detach(), bias: self.bias.detach() }
    }

    /// `∂(Σ y·dy)/∂x = dy W`: on ganzoo's kernels a product differentiable again (the
    /// WGAN-GP penalty of an MLP critic differentiates it).
    pub fn input_grad(&self, dy: &Tensor) -> candle_core::Result<Tensor> {
        let weight = self.weight.to_dtype(dy.dtype())?;
        if crate::backend::kernels_run(dy, &[&weight], ImageLayout::Nchw) && dy.rank() == 2 {
            return ganzoo_kernels::matrix_product(dy, &weight, Transposes::NONE);
        }
        dy.matmul(&weight)
    }
}

impl Module for Linear {
    /// `x Wᵀ + b` in `x`'s dtype (W and b cast to it: mixed precision).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (weight, bias) = (self.weight.to_dtype(x.dtype())?, self.bias.to_dtype(x.dtype())?);
        if crate::backend::kernels_run(x, &[&weight], ImageLayout::Nchw) && x.rank() == 2 {
            return ganzoo_kernels::linear(x, &weight, &bias);
        }
        x.matmul(&weight.t()?)?.broadcast_add(&bias)
    }
}
