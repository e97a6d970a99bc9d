//! Convolutions — the one place every convolution of every model goes through,
//! so the implementation can be swapped: ganzoo's kernels (`ganzoo-kernels`,
//! im2col + GEMM, differentiable to any order) on CPU tensors of f32/f64 and CUDA
//! tensors of f32 (cuDNN or its im2col / col2im kernels around cuBLAS) and, where cuDNN
//! is built, bf16 (cuDNN's graph API); on CUDA otherwise
//! Candle's im2col + GEMM `conv2d` for every product, with ganzoo's gradients
//! ([`crate::conv_as_gemm`]);
//! Candle's own ops for other CPU dtypes or when chosen for comparison (see
//! [`crate::backend`]).
//!
//! `Conv2d`: y = W ⋆ x (cross-correlation, stride s, padding p), output side
//! `(i + 2p − k)/s + 1`. `ConvTranspose2d` is its adjoint, output side
//! `(i − 1)s − 2p + k`. Each layer also gives its input gradient (the other one
//! of the pair) built from tracked ops, so it can itself be differentiated.
//!
//! Images are NCHW, or NHWC (`(B, H, W, C)`) where a [`Network`](crate::Network)
//! keeps its activations channels-last for ganzoo's kernels ([`ImageLayout`]);
//! only ganzoo's kernels take NHWC images.

use candle_core::{DType, Module, Tensor};
use candle_nn::{Init, VarBuilder};
use ganzoo_kernels::{ConvParams, ImageLayout};

use crate::Result;

/// Stride-`stride`, padding-`padding` cross-correlation: `(B, Cin, H, W) → (B, Cout, H', W')`.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> candle_core::Result<Tensor> {
    conv2d_in(x, w, stride, padding, ImageLayout::Nchw)
}

/// `relu(conv2d(x, W) + b)` with stride `stride`, separate zero padding `(ph, pw)` of the
/// rows and columns (InceptionV3's 1×7 and 7×1 kernels pad one axis only) and a bias
/// `b (O)`, on images in `layout`. Where ganzoo's kernels run on the CPU, one op
/// (`ganzoo_kernels::conv2d_bias_leaky_relu`); elsewhere the convolution, the bias and the
/// ReLU one after the other.
pub fn conv2d_bias_relu(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    (stride, pad): (usize, (usize, usize)),
    layout: ImageLayout,
) -> candle_core::Result<Tensor> {
    let (x, common) = pad_difference(x, pad, layout)?;
    if crate::backend::conv_kernels_run(&x, w, layout) && ganzoo_kernels::supports(&x) && b.dtype() == x.dtype() {
        let params = ConvParams::new(stride, common).with_layout(layout);
        return ganzoo_kernels::conv2d_bias_leaky_relu(&x, w, b, params, 0.0);
    }
    add_bias(conv2d_in(&x, w, stride, common, layout)?, Some(b), layout)?.relu()
}

/// An image in `layout` padded `(ph, pw)` as convolutions with one padding take it: the
/// axis padded more is padded explicitly by the difference; the padding left for both axes.
pub(crate) fn pad_difference(
    x: &Tensor,
    (ph, pw): (usize, usize),
    layout: ImageLayout,
) -> candle_core::Result<(Tensor, usize)> {
    let (common, axis) = (ph.min(pw), layout.height_axis());
    let x = x.pad_with_zeros(axis, ph - common, ph - common)?.pad_with_zeros(axis + 1, pw - common, pw - common)?;
    Ok((x, common))
}

/// [`conv2d`] on images in `layout` (NHWC: `(B, H, W, Cin) → (B, H', W', Cout)`).
pub fn conv2d_in(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    layout: ImageLayout,
) -> candle_core::Result<Tensor> {
    if let Some((x32, w32)) = widened(x, w)? {
        return conv2d_in(&x32, &w32, stride, padding, layout)?.to_dtype(x.dtype());
    }
    if crate::backend::conv_kernels_run(x, w, layout) {
        ganzoo_kernels::conv2d(x, w, ConvParams::new(stride, padding).with_layout(layout))
    } else if crate::backend::gemm_runs(x) {
        crate::conv_as_gemm::conv2d(x, w, stride, padding)
    } else {
        x.conv2d(w, padding, stride, 1, 1)
    }
}

/// The adjoint of [`conv2d`] with the same weight layout `(Cin, Cout, k, k)` of a transposed convolution.
pub fn conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> candle_core::Result<Tensor> {
    conv_transpose2d_in(x, w, (stride, padding, output_padding), ImageLayout::Nchw)
}

/// [`conv_transpose2d`] on images in `layout`, with `(stride, padding, output_padding)`.
pub fn conv_transpose2d_in(
    x: &Tensor,
    w: &Tensor,
    (stride, padding, output_padding): (usize, usize, usize),
    layout: ImageLayout,
) -> candle_core::Result<Tensor> {
    if let Some((x32, w32)) = widened(x, w)? {
        return conv_transpose2d_in(&x32, &w32, (stride, padding, output_padding), layout)?.to_dtype(x.dtype());
    }
    if crate::backend::conv_kernels_run(x, w, layout) {
        ganzoo_kernels::conv_transpose2d(x, w, ConvParams::new(stride, padding).with_layout(layout), output_padding)
    } else if crate::backend::gemm_runs(x) {
        crate::conv_as_gemm::conv_transpose2d(x, w, stride, padding, output_padding)
    } else {
        x.conv_transpose2d(w, padding, output_padding, stride, 1)
    }
}

/// A half-precision CPU image and weight widened to f32: Candle's CPU back end has no
/// bf16/f16 convolution, so there a convolution runs as cuBLAS runs a bf16 one on the GPU
/// (half-precision operands, f32 sums, the result rounded to the operands' dtype).
/// `None` for every other tensor.
fn widened(x: &Tensor, w: &Tensor) -> candle_core::Result<Option<(Tensor, Tensor)>> {
    let half = |t: &Tensor| matches!(t.dtype(), DType::BF16 | DType::F16);
    if !x.device().is_cpu() || !half(x) {
        return Ok(None);
    }
    Ok(Some((x.to_dtype(DType::F32)?, w.to_dtype(DType::F32)?)))
}

/// `y + b` with one bias value per channel of `y`, an image in `layout` (`b` cast to `y`'s dtype).
fn add_bias(y: Tensor, bias: Option<&Tensor>, layout: ImageLayout) -> candle_core::Result<Tensor> {
    let Some(b) = bias else { return Ok(y) };
    let b = b.to_dtype(y.dtype())?;
    match layout {
        ImageLayout::Nchw => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
        ImageLayout::Nhwc => y.broadcast_add(&b.reshape((1, 1, 1, ()))?),
    }
}

/// A layer's weight in the dtype of the image it meets (mixed precision: a tracked cast
/// of the f32 weight; otherwise the weight itself).
fn weight_for(w: &Tensor, x: &Tensor) -> candle_core::Result<Tensor> {
    w.to_dtype(x.dtype())
}

/// Weight initialisation of the DCGAN paper: N(0, 0.02).
pub const DCGAN_WEIGHT_INIT: Init = Init::Randn { mean: 0.0, stdev: 0.02 };

/// Shape and initialisation of a square-kernel convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
    pub init: Init,
}

impl ConvSpec {
    /// A bias-free convolution with DCGAN's N(0, 0.02) weights.
    pub fn dcgan(cin: usize, cout: usize, kernel: usize, stride: usize, padding: usize) -> Self {
        Self { cin, cout, kernel, stride, padding, bias: false, init: DCGAN_WEIGHT_INIT }
    }

    /// Weight `(Cout, Cin, k, k)` — `(Cin, Cout, k, k)` when `transposed` — and the optional bias.
    fn variables(&self, transposed: bool, vb: VarBuilder) -> Result<(Tensor, Option<Tensor>)> {
        let (a, b) = if transposed { (self.cin, self.cout) } else { (self.cout, self.cin) };
        let weight = vb.get_with_hints((a, b, self.kernel, self.kernel), "weight", self.init)?;
        let bias = if self.bias { Some(vb.get_with_hints(self.cout, "bias", Init::Const(0.0))?) } else { None };
        Ok((weight, bias))
    }
}

/// A 2-D convolution with square kernels, weight `(Cout, Cin, k, k)`, optional bias.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    pub fn new(spec: ConvSpec, vb: VarBuilder) -> Result<Self> {
        let (weight, bias) = spec.variables(false, vb)?;
        Ok(Self { weight, bias, stride: spec.stride, padding: spec.padding })
    }

    /// The same layer on detached weights (see [`crate::Network::frozen`]).
    pub fn frozen(&self) -> Self {
        Self { weight: self.weight.detach(), bias: self.bias.as_ref().map(Tensor::detach), ..self.clone() }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `∂(Σ y·dy)/∂x` for the input `x`, both images in `layout`.
    pub fn input_grad(&self, dy: &Tensor, x: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        let axis = layout.height_axis();
        let k = self.weight.dim(2)?;
        let full = (dy.dim(axis)? - 1) * self.stride + k - 2 * self.padding;
        let w = weight_for(&self.weight, dy)?;
        conv_transpose2d_in(dy, &w, (self.stride, self.padding, x.dim(axis)? - full), layout)
    }

    /// The layer on an image in `layout`.
    pub fn forward_in(&self, x: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        let y = conv2d_in(x, &weight_for(&self.weight, x)?, self.stride, self.padding, layout)?;
        add_bias(y, self.bias.as_ref(), layout)
    }

    /// The layer then `max(y, slope·y)` as one of ganzoo's ops (the graph keeps the
    /// activation alone), or `None` where that op does not run: a bias, a slope outside
    /// [0, 1], bf16 (the fused op is f32 only), or a convolution ganzoo's kernels do not
    /// take (`--kernels gemm`, `GANZOO_CUDA_CONV=gemm`).
    pub fn forward_leaky_relu(
        &self,
        x: &Tensor,
        slope: f64,
        layout: ImageLayout,
    ) -> Option<candle_core::Result<Tensor>> {
        let plain = matches!(x.dtype(), DType::F32 | DType::F64) && x.dtype() == self.weight.dtype();
        let fits = self.bias.is_none() && plain && (0.0..=1.0).contains(&slope);
        if !fits || !crate::backend::conv_kernels_run(x, &self.weight, layout) {
            return None;
        }
        let params = ConvParams::new(self.stride, self.padding).with_layout(layout);
        Some(ganzoo_kernels::conv2d_leaky_relu(x, &self.weight, params, slope))
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_in(x, ImageLayout::Nchw)
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
    /// The same layer on detached weights (see [`crate::Network::frozen`]).
    pub fn frozen(&self) -> Self {
        Self { weight: self.weight.detach(), bias: self.bias.as_ref().map(Tensor::detach), ..self.clone() }
    }

    pub fn new(spec: ConvSpec, vb: VarBuilder) -> Result<Self> {
        let (weight, bias) = spec.variables(true, vb)?;
        Ok(Self { weight, bias, stride: spec.stride, padding: spec.padding })
    }

    /// `∂(Σ y·dy)/∂x`, both images in `layout`.
    pub fn input_grad(&self, dy: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        conv2d_in(dy, &weight_for(&self.weight, dy)?, self.stride, self.padding, layout)
    }

    /// The layer on an image in `layout`.
    pub fn forward_in(&self, x: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        let y = conv_transpose2d_in(x, &weight_for(&self.weight, x)?, (self.stride, self.padding, 0), layout)?;
        add_bias(y, self.bias.as_ref(), layout)
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_in(x, ImageLayout::Nchw)
    }
}
