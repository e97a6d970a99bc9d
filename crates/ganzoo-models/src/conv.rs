//! Convolutions — the one place every convolution of every model goes through,
//! so the implementation can be swapped (Candle's ops today, ganzoo's kernels later).
//!
//! `Conv2d`: y = W ⋆ x (cross-correlation, stride s, padding p), output side
//! `(i + 2p − k)/s + 1`. `ConvTranspose2d` is its adjoint, output side
//! `(i − 1)s − 2p + k`. Each layer also gives its input gradient (the other one
//! of the pair) built from tracked ops, so it can itself be differentiated.

use candle_core::{Module, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::Result;

/// Stride-`stride`, padding-`padding` cross-correlation: `(B, Cin, H, W) → (B, Cout, H', W')`.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> candle_core::Result<Tensor> {
    x.conv2d(w, padding, stride, 1, 1)
}

/// The adjoint of [`conv2d`] with the same weight layout `(Cin, Cout, k, k)` of a transposed convolution.
pub fn conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> candle_core::Result<Tensor> {
    x.conv_transpose2d(w, padding, output_padding, stride, 1)
}

/// Weight initialisation of the DCGAN paper: N(0, 0.02).
pub const DCGAN_WEIGHT_INIT: Init = Init::Randn { mean: 0.0, stdev: 0.02 };

/// A 2-D convolution with square kernels, weight `(Cout, Cin, k, k)`, optional bias.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        init: Init,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((cout, cin, k, k), "weight", init)?;
        let bias = if bias { Some(vb.get_with_hints(cout, "bias", Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias, stride, padding })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `∂(Σ y·dy)/∂x` for an input of spatial size `(h, w)`.
    pub fn input_grad(&self, dy: &Tensor, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, _) = x.dims4()?;
        let k = self.weight.dim(2)?;
        let full = (dy.dim(2)? - 1) * self.stride + k - 2 * self.padding;
        conv_transpose2d(dy, &self.weight, self.stride, self.padding, h - full)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = conv2d(x, &self.weight, self.stride, self.padding)?;
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }
}

/// A 2-D transposed convolution, weight `(Cin, Cout, k, k)`, optional bias.
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl ConvTranspose2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        init: Init,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((cin, cout, k, k), "weight", init)?;
        let bias = if bias { Some(vb.get_with_hints(cout, "bias", Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias, stride, padding })
    }

    /// `∂(Σ y·dy)/∂x`.
    pub fn input_grad(&self, dy: &Tensor) -> candle_core::Result<Tensor> {
        conv2d(dy, &self.weight, self.stride, self.padding)
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = conv_transpose2d(x, &self.weight, self.stride, self.padding, 0)?;
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }
}
