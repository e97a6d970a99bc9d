//! A fully connected layer `y = x Wᵀ + b`, W of shape `(out, in)`, initialised as
//! PyTorch's `nn.Linear` (Kaiming-uniform weight, bias U(−1/√in, 1/√in)).

use candle_core::{Module, Tensor};
use candle_nn::{Init, VarBuilder};
use ganzoo_kernels::ImageLayout;

use crate::Result;

#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(input: usize, output: usize, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / (input as f64).sqrt();
        // PyTorch's kaiming_uniform_(a=√5) gives exactly U(−1/√in, 1/√in) for the weight too.
        let weight = vb.get_with_hints((output, input), "weight", Init::Uniform { lo: -bound, up: bound })?;
        let bias = vb.get_with_hints(output, "bias", Init::Uniform { lo: -bound, up: bound })?;
        Ok(Self { weight, bias })
    }

    /// The same layer on detached weights (see [`crate::Network::frozen`]).
    pub fn frozen(&self) -> Self {
        Self { weight: self.weight.detach(), bias: self.bias.detach() }
    }

    /// `∂(Σ y·dy)/∂x = dy W`.
    pub fn input_grad(&self, dy: &Tensor) -> candle_core::Result<Tensor> {
        dy.matmul(&self.weight)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if crate::backend::kernels_run(x, &[&self.weight], ImageLayout::Nchw) && x.rank() == 2 {
            return ganzoo_kernels::linear(x, &self.weight, &self.bias);
        }
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}
