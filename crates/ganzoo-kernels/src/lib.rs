//! ganzoo's CPU kernels. Convolutions: `conv2d` and `conv_transpose2d` as
//! im2col / col2im plus one GEMM (Chellapilla et al. 2006), wrapped as Candle
//! custom ops whose backward passes are built from the same ops, so they can be
//! differentiated again (the WGAN-GP penalty takes a gradient of a gradient).
//!
//! Three primitives, for a cross-correlation `y = W ⋆ x` with `W` of shape
//! `(O, C, kh, kw)` and `cols = im2col(x)` of shape `(C·kh·kw, H'·W')`:
//!
//! | primitive | matrix form | is |
//! | --- | --- | --- |
//! | [`conv2d`] | `Y = W · cols` | the forward convolution |
//! | [`conv_transpose2d`] | `X = col2im(Wᵀ · Y)` | its adjoint: `⟨conv2d(x, W), y⟩ = ⟨x, conv_transpose2d(y, W)⟩` |
//! | [`conv2d_weight_grad`] | `dW = Σₙ dYₙ · colsₙᵀ` | `∂⟨conv2d(x, W), dy⟩/∂W` |
//!
//! (`conv_gemm.rs` stores `cols` transposed, one row per output pixel with the channels
//! innermost, so unfolding copies whole runs of channels; the algebra is the same.)
//!
//! Each is bilinear in its two arguments, and the derivative of each is one of the
//! three again (see [`conv`](mod@conv)), so the set is closed under differentiation.
//!
//! Images may be NCHW (Candle's convention) or NHWC ([`ImageLayout`], chosen in
//! [`ConvParams`]); a network that keeps its activations NHWC between layers skips
//! the transposes the NCHW forms make around each convolution. [`to_nhwc`] and
//! [`to_nchw`] move tensors between the two, differentiably.
//!
//! Beside them, the other hot spots of a GAN training step, each fused into one or
//! two passes: training-mode [`batch_norm`](fn@batch_norm) (forward and backward;
//! fused with a following (leaky) ReLU as [`batch_norm_leaky_relu`]),
//! [`leaky_relu`](fn@leaky_relu) (differentiable backward; slope 0 is ReLU),
//! [`tanh`](fn@tanh) (the same, in parallel), [`linear`](fn@linear) (bias fused into
//! the GEMM; its backward from [`matrix_product`](fn@matrix_product) and
//! [`column_sum`], differentiable again), [`layer_norm`](fn@layer_norm) (with an input
//! gradient that is differentiable again) and in-place [`adam_step`] / [`rmsprop_step`]
//! (or [`optimiser_steps`] on all of an optimiser's tensors at once). For networks that
//! are only evaluated (InceptionV3's feature pass): [`conv2d_bias_leaky_relu`] (a
//! convolution with its bias and activation, differentiable like [`conv2d`]) and
//! channels-last [`pool2d`] (max or mean, forward only).
//!
//! Only `f32` and `f64` CPU tensors are supported ([`supports`]), except with the `cuda`
//! feature: batch norm (with its activation), layer norm (with its input gradient and
//! that gradient's derivative), the leaky ReLU and the optimiser steps also take f32 CUDA
//! tensors ([`cuda_supports`]), from ganzoo's own CUDA kernels.
//! Callers route other devices and dtypes to Candle's own ops.

pub mod batch_norm;
mod borders;
pub mod conv;
#[cfg(any(feature = "cuda", test))]
mod conv_columns;
mod conv_gemm;
#[cfg(feature = "cuda")]
mod cuda;
pub mod cuda_conv;
mod elementwise;
mod gemm;
mod geometry;
mod im2col;
mod image_layout;
pub mod isa;
pub mod layer_norm;
pub mod leaky_relu;
pub mod linear;
pub mod matrix_product;
pub mod optim;
pub mod pool;
mod scratch;
#[cfg(target_arch = "x86_64")]
mod sgemm;
mod storage;
mod sums;
pub mod tanh;
mod threads;
mod transpose;
mod uninit;
pub mod winograd;

pub use batch_norm::{
    batch_norm, batch_norm_leaky_relu, batch_norm_updating, batch_norm_with_moments, channel_mean_var, RunningStats,
};
pub use conv::{
    conv2d, conv2d_bias_leaky_relu, conv2d_leaky_relu, conv2d_weight_grad, conv_transpose2d, conv_transpose2d_to,
};
pub use conv_gemm::{adjoint, forward, weight_grad};
pub use cuda_conv::{conv_tf32, cuda_conv, cuda_conv_for, cudnn_workspace_bytes, set_conv_tf32, CudaConv};
pub use gemm::Element;
pub use geometry::{ConvGeometry, ConvParams};
pub use image_layout::ImageLayout;
pub use isa::Isa;
pub use layer_norm::{layer_norm, layer_norm_input_grad};
pub use leaky_relu::{leaky_relu, leaky_relu_grad};
pub use linear::linear;
pub use matrix_product::{column_sum, matrix_product, Transposes};
pub use optim::{
    adam_step, clamp_all, clamp_in_place, moving_average, optimiser_steps, rmsprop_step, StepRule, StepSlot,
};
pub use pool::{pool2d, Pool2d, PoolKind};
pub use storage::tracked;
pub use tanh::{tanh, tanh_grad};
pub use transpose::{to_nchw, to_nhwc};

/// Whether [`conv2d`] and friends can run on `t`: a CPU tensor of `f32` or `f64`.
pub fn supports(t: &candle_core::Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), candle_core::DType::F32 | candle_core::DType::F64)
}

/// Whether the ops with a CUDA kernel ([`batch_norm_with_moments`] and the other batch
/// norms, [`layer_norm()`], [`layer_norm_input_grad`], [`leaky_relu()`], [`leaky_relu_grad`],
/// [`adam_step`], [`rmsprop_step`], [`optimiser_steps`], [`moving_average`], [`clamp_in_place`],
/// [`clamp_all`]) run on `t`:
/// an f32 tensor on a CUDA device, in a build with the `cuda` feature.
pub fn cuda_supports(t: &candle_core::Tensor) -> bool {
    #[cfg(feature = "cuda")]
    return cuda::supports(t);
    #[cfg(not(feature = "cuda"))]
    {
        let _ = t;
        false
    }
}

/// Whether ganzoo's convolutions ([`conv2d`], [`conv_transpose2d`],
/// [`conv2d_weight_grad`]) run on `t` on CUDA: an NCHW tensor on a CUDA device of f32, or
/// of bf16 in a build with cuDNN (feature `cudnn`: mixed precision through its graph API,
/// `cuda_conv`'s rule for bf16). [`conv2d_leaky_relu`] takes f32 only.
pub fn cuda_conv_supports(t: &candle_core::Tensor) -> bool {
    t.device().is_cuda() && conv::cuda_dtype(t.dtype(), false)
}
