//! Normalisation layers, written with differentiable ops only.
//!
//! - [`BatchNorm2d`] (Ioffe & Szegedy 2015): `y = γ (x − μ_B)/√(σ²_B + ε) + β` per channel,
//!   batch statistics in training, running statistics (momentum 0.1, unbiased variance,
//!   as PyTorch) in evaluation.
//! - [`LayerNorm`] (Ba et al. 2016) over every non-batch dimension, `γ, β` of that shape:
//!   PyTorch's `nn.LayerNorm([C, H, W])`, the critic normalisation WGAN-GP recommends; or
//!   `γ, β` per channel, as tflib's `Layernorm` in the WGAN-GP reference's 64×64 critics.
//!   Candle's fused layer-norm kernel has no backward pass; ganzoo's kernel has, and its
//!   input gradient can be differentiated again (the WGAN-GP penalty); Candle's generic ops, to any order.
//!
//! Both take images NCHW or, inside a network running ganzoo's kernels, NHWC
//! ([`ImageLayout`]): batch norm's statistics are per channel either way; layer
//! norm's `γ, β` are permuted to `(H, W, C)` to match.

use candle_core::{Tensor, Var, D};
use candle_nn::{Init, VarBuilder};
use ganzoo_kernels::ImageLayout;

use crate::Result;

const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

/// Which statistics batch norm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    /// Batch statistics; the running statistics are updated.
    Train,
    /// Batch statistics; the running statistics are left alone (sample grids during training).
    BatchStats,
    /// Running statistics.
    Eval,
}

#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Var,
    running_var: Var,
}

impl BatchNorm2d {
    /// The same layer with detached `γ, β`; the running statistics stay shared.
    pub fn frozen(&self) -> Self {
        Self { gamma: self.gamma.detach(), beta: self.beta.detach(), ..self.clone() }
    }

    /// `gamma_init` is N(1, 0.02) in DCGAN.
    pub fn new(channels: usize, gamma_init: Init, vb: VarBuilder) -> Result<Self> {
        let gamma = vb.get_with_hints(channels, "weight", gamma_init)?;
        let beta = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
        let running_mean = Var::from_tensor(&vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?)?;
        let running_var = Var::from_tensor(&vb.get_with_hints(channels, "running_var", Init::Const(1.0))?)?;
        Ok(Self { gamma, beta, running_mean, running_var })
    }

    /// Normalises with batch statistics (`train`, updating the running ones) or running statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_mode(x, if train { BnMode::Train } else { BnMode::Eval })
    }

    /// Normalises an NCHW image as `mode` says.
    pub fn forward_mode(&self, x: &Tensor, mode: BnMode) -> candle_core::Result<Tensor> {
        self.forward_in(x, mode, ImageLayout::Nchw)
    }

    /// Normalises an image in `layout` as `mode` says.
    pub fn forward_in(&self, x: &Tensor, mode: BnMode, layout: ImageLayout) -> candle_core::Result<Tensor> {
        if let Some(master) = in_master(x, &self.gamma)? {
            return self.forward_in(&master, mode, layout)?.to_dtype(x.dtype());
        }
        if self.runs_kernel(x, mode, layout) {
            return self.kernel_forward(x, mode, None, layout);
        }
        let [b, c, h, w] = layout.to_nchw(x.dims4()?.into());
        let per_channel = |t: &Tensor| t.reshape(channel_shape(layout, c));
        let (mean, var) = if mode != BnMode::Eval {
            let by_channel = match layout {
                ImageLayout::Nchw => x.transpose(0, 1)?.reshape((c, b * h * w))?,
                ImageLayout::Nhwc => x.reshape((b * h * w, c))?.t()?,
            };
            let mean = by_channel.mean_keepdim(1)?;
            let var = by_channel.broadcast_sub(&mean)?.sqr()?.mean_keepdim(1)?;
            if mode == BnMode::Train {
                self.update_running(&mean.flatten_all()?, &var.flatten_all()?, b * h * w)?;
            }
            (per_channel(&mean)?, per_channel(&var)?)
        } else {
            (per_channel(self.running_mean.as_tensor())?, per_channel(self.running_var.as_tensor())?)
        };
        let xhat = x.broadcast_sub(&mean)?.broadcast_div(&(var + EPS)?.sqrt()?)?;
        xhat.broadcast_mul(&per_channel(&self.gamma)?)?.broadcast_add(&per_channel(&self.beta)?)
    }

    /// `leaky_relu(self.forward_in(x, mode, layout), slope)` as one kernel op (`slope`
    /// 0: ReLU), or `None` where the kernel does not run (running statistics, or a
    /// tensor ganzoo's kernels do not take): the caller then runs the two layers one by one.
    /// With mixed precision (`x` in another dtype than the weights), both run in the
    /// master dtype as [`Self::forward_in`] normalises, the result cast back: one rounding
    /// after the activation, where the two layers one by one round twice.
    pub fn forward_leaky_relu(
        &self,
        x: &Tensor,
        mode: BnMode,
        slope: f64,
        layout: ImageLayout,
    ) -> Option<candle_core::Result<Tensor>> {
        if x.dtype() == self.gamma.dtype() {
            return self.runs_kernel(x, mode, layout).then(|| self.kernel_forward(x, mode, Some(slope), layout));
        }
        // γ: a tensor of the master dtype on x's device, as the cast of x would be.
        self.runs_kernel(&self.gamma, mode, layout).then(|| {
            let master = x.to_dtype(self.gamma.dtype())?;
            self.kernel_forward(&master, mode, Some(slope), layout)?.to_dtype(x.dtype())
        })
    }

    /// Whether ganzoo's fused kernel normalises `x` in `mode` (batch statistics only;
    /// always on NHWC images, which only the kernels take).
    fn runs_kernel(&self, x: &Tensor, mode: BnMode, layout: ImageLayout) -> bool {
        mode != BnMode::Eval && crate::backend::cuda_kernels_run(x, &[&self.gamma], layout)
    }

    fn kernel_forward(
        &self,
        x: &Tensor,
        mode: BnMode,
        slope: Option<f64>,
        layout: ImageLayout,
    ) -> candle_core::Result<Tensor> {
        if mode == BnMode::Train {
            // The running statistics updated by the kernels (on CUDA in the statistics' launch).
            let (mean, var) = (self.running_mean.as_tensor(), self.running_var.as_tensor());
            let running = ganzoo_kernels::RunningStats { mean, var, momentum: MOMENTUM };
            return ganzoo_kernels::batch_norm_updating(x, &self.gamma, &self.beta, EPS, (slope, layout), &running);
        }
        Ok(ganzoo_kernels::batch_norm_with_moments(x, &self.gamma, &self.beta, EPS, slope, layout)?.0)
    }

    /// The running statistics blended with Candle's ops, where the kernels do not run
    /// (where they do, `batch_norm_updating` updates them in place).
    fn update_running(&self, mean: &Tensor, var: &Tensor, n: usize) -> candle_core::Result<()> {
        let unbias = n as f64 / (n.max(2) - 1) as f64;
        let unbiased = (var.detach() * unbias)?;
        let blend = |old: &Var, new: &Tensor| -> candle_core::Result<()> {
            let v = ((old.as_tensor() * (1.0 - MOMENTUM))? + (new.detach().to_dtype(old.dtype())? * MOMENTUM)?)?;
            old.set(&v)
        };
        blend(&self.running_mean, mean)?;
        blend(&self.running_var, &unbiased)
    }
}

/// `x` cast to the dtype of the layer's weights where it has another (mixed precision:
/// the statistics and the normalisation run in the f32 master precision, as PyTorch's
/// autocast runs its normalisations in f32), else `None`.
fn in_master(x: &Tensor, weight: &Tensor) -> candle_core::Result<Option<Tensor>> {
    (x.dtype() != weight.dtype()).then(|| x.to_dtype(weight.dtype())).transpose()
}

/// The shape that broadcasts `C` per-channel values over an image in `layout`.
fn channel_shape(layout: ImageLayout, c: usize) -> (usize, usize, usize, usize) {
    match layout {
        ImageLayout::Nchw => (1, c, 1, 1),
        ImageLayout::Nhwc => (1, 1, 1, c),
    }
}

/// Layer normalisation over all non-batch dimensions, with affine `γ, β` per element or
/// (images) per channel.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
    /// `[C, H, W]` when `γ, β` hold one value per channel, broadcast over each plane.
    per_channel: Option<[usize; 3]>,
}

impl LayerNorm {
    /// The same layer with detached `γ, β`.
    pub fn frozen(&self) -> Self {
        Self { gamma: self.gamma.detach(), beta: self.beta.detach(), per_channel: self.per_channel }
    }

    /// `shape` is the shape of one sample, e.g. `[C, H, W]`; `γ, β` of that shape.
    pub fn new(shape: &[usize], vb: VarBuilder) -> Result<Self> {
        let gamma = vb.get_with_hints(shape, "weight", Init::Const(1.0))?;
        let beta = vb.get_with_hints(shape, "bias", Init::Const(0.0))?;
        Ok(Self { gamma, beta, per_channel: None })
    }

    /// Normalised over `[C, H, W]`, `γ, β` of shape `[C]` (tflib's `Layernorm`).
    pub fn per_channel(shape: [usize; 3], vb: VarBuilder) -> Result<Self> {
        let gamma = vb.get_with_hints(shape[0], "weight", Init::Const(1.0))?;
        let beta = vb.get_with_hints(shape[0], "bias", Init::Const(0.0))?;
        Ok(Self { gamma, beta, per_channel: Some(shape) })
    }

    /// `γ, β` per element of a sample (per-channel ones broadcast by a tracked op, so their
    /// gradients sum over each plane).
    fn affine(&self) -> candle_core::Result<(Tensor, Tensor)> {
        match self.per_channel {
            None => Ok((self.gamma.clone(), self.beta.clone())),
            Some([c, h, w]) => {
                let full = |t: &Tensor| t.reshape((c, 1, 1))?.broadcast_as((c, h, w))?.contiguous();
                Ok((full(&self.gamma)?, full(&self.beta)?))
            }
        }
    }

    /// `x̂ = (x − μ)/σ` per sample, flattened to `(B, N)`, and `σ` as `(B, 1)`.
    fn normalise(x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let flat = x.flatten_from(1)?;
        let centred = flat.broadcast_sub(&flat.mean_keepdim(D::Minus1)?)?;
        let sigma = (centred.sqr()?.mean_keepdim(D::Minus1)? + EPS)?.sqrt()?;
        Ok((centred.broadcast_div(&sigma)?, sigma))
    }

    /// `γ` or `β` (of shape `[C, H, W]` for images) in the order of an input in `layout`.
    fn in_layout(t: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        match layout {
            ImageLayout::Nhwc if t.rank() == 3 => t.permute((1, 2, 0))?.contiguous(),
            _ => Ok(t.clone()),
        }
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_in(x, ImageLayout::Nchw)
    }

    /// The layer on an input in `layout` (NHWC: ganzoo's kernels, `γ, β` permuted).
    pub fn forward_in(&self, x: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        if let Some(master) = in_master(x, &self.gamma)? {
            return self.forward_in(&master, layout)?.to_dtype(x.dtype());
        }
        let (gamma, beta) = self.affine()?;
        let (gamma, beta) = (Self::in_layout(&gamma, layout)?, Self::in_layout(&beta, layout)?);
        if crate::backend::cuda_kernels_run(x, &[&self.gamma], layout) {
            return ganzoo_kernels::layer_norm(x, &gamma, &beta, EPS);
        }
        let (xhat, _) = Self::normalise(x)?;
        let y = xhat.broadcast_mul(&gamma.flatten_all()?)?.broadcast_add(&beta.flatten_all()?)?;
        y.reshape(x.shape())
    }

    /// `∂(Σ y·dy)/∂x = (g − mean(g) − x̂ · mean(g x̂)) / σ` with `g = γ dy`, for
    /// `dy` and `x` in `layout`.
    pub fn input_grad(&self, dy: &Tensor, x: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        if let (Some(dy_master), Some(x_master)) = (in_master(dy, &self.gamma)?, in_master(x, &self.gamma)?) {
            return self.input_grad(&dy_master, &x_master, layout)?.to_dtype(dy.dtype());
        }
        let g = dy.flatten_from(1)?.broadcast_mul(&Self::in_layout(&self.affine()?.0, layout)?.flatten_all()?)?;
        if crate::backend::cuda_kernels_run(x, &[&self.gamma], layout) {
            return ganzoo_kernels::layer_norm_input_grad(x, &g.reshape(x.shape())?, EPS);
        }
        let (xhat, sigma) = Self::normalise(x)?;
        let g_mean = g.mean_keepdim(D::Minus1)?;
        let gx_mean = (&g * &xhat)?.mean_keepdim(D::Minus1)?;
        let dx = g.broadcast_sub(&g_mean)?.sub(&xhat.broadcast_mul(&gx_mean)?)?.broadcast_div(&sigma)?;
        dx.reshape(x.shape())
    }
}
