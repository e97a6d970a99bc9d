//! The three convolution primitives as Candle custom ops, each differentiable
//! through the others.
//!
//! For `y = conv2d(x, W)` and an incoming gradient `dy`:
//! `dx = conv_transpose2d(dy, W)`, `dW = conv2d_weight_grad(x, dy)`.
//! For `y = conv_transpose2d(x, W)` (the adjoint of `conv2d(·, W)`):
//! `dx = conv2d(dy, W)`, `dW = conv2d_weight_grad(dy, x)`.
//! For `dW = conv2d_weight_grad(x, dy)` and an incoming gradient `g` on `dW`
//! (from `⟨dW, g⟩ = ⟨conv2d(x, g), dy⟩`): `dx = conv_transpose2d(dy, g)`,
//! `d(dy) = conv2d(x, g)`.
//!
//! Images (`x`, `y` and their gradients) are NCHW, or NHWC when the
//! [`ConvParams`]' layout says so; kernels are `(O, C, kh, kw)` either way. The
//! backward ops keep the forward op's parameters, so the layout too.
//!
//! [`conv2d_leaky_relu`] is `conv2d` with a (leaky) ReLU applied to its output in the
//! same op: the graph holds the activation alone, as batch norm's fused activation does,
//! and the backward masks `dy` by the output's sign first. [`conv2d_bias_leaky_relu`]
//! also adds a bias per output channel before the activation (InceptionV3's folded batch
//! norms): one pass over the output after the product instead of two ops of their own.

#[cfg(feature = "cuda")]
use candle_core::cuda_backend::CudaStorage;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::conv_gemm;
#[cfg(feature = "cuda")]
use crate::cuda::conv as on_cuda;
use crate::gemm::Element;
use crate::geometry::{ConvGeometry, ConvParams};
use crate::image_layout::ImageLayout;
use crate::leaky_relu::{leaky_relu_grad, leaky_relu_in_place};
use crate::storage::{tracked, typed, Typed};

fn dims4(l: &Layout, what: &str) -> Result<[usize; 4]> {
    match l.dims() {
        &[a, b, c, d] => Ok([a, b, c, d]),
        dims => bail!("{what}: expected a 4-D tensor, got shape {dims:?}"),
    }
}

/// `[N, C, H, W]` of an image operand in `layout`.
fn image(l: &Layout, what: &str, layout: ImageLayout) -> Result<[usize; 4]> {
    Ok(layout.to_nchw(dims4(l, what)?))
}

/// The shape in `layout` of an image `[N, C, H, W]`.
fn image_shape(layout: ImageLayout, nchw: [usize; 4]) -> Shape {
    Shape::from(layout.from_nchw(nchw).to_vec())
}

/// `(H, W)` of an image tensor in `layout`.
fn spatial(x: &Tensor, layout: ImageLayout) -> Result<(usize, usize)> {
    let axis = layout.height_axis();
    Ok((x.dim(axis)?, x.dim(axis + 1)?))
}

/// Runs `kernel` on the two operands' data, as f32 or f64.
fn dispatch(
    op: &'static str,
    a: (&CpuStorage, &Layout),
    b: (&CpuStorage, &Layout),
    kernel: impl Kernel,
) -> Result<CpuStorage> {
    Ok(match typed(op, [a, b])? {
        Typed::F32([a, b]) => CpuStorage::F32(kernel.run(a, b)),
        Typed::F64([a, b]) => CpuStorage::F64(kernel.run(a, b)),
    })
}

/// Whether ganzoo's CUDA convolutions take operands of `dtype`: f32, or bf16 where cuDNN
/// is built (through its graph API; not `fused` with the leaky ReLU, whose kernel is f32).
pub(crate) fn cuda_dtype(dtype: candle_core::DType, fused: bool) -> bool {
    use candle_core::DType;
    dtype == DType::F32 || (dtype == DType::BF16 && cfg!(feature = "cudnn") && !fused)
}

/// Whether ganzoo's CUDA convolutions take the operands: NCHW, both of one dtype
/// [`cuda_dtype`] takes.
#[cfg(feature = "cuda")]
fn cuda_takes(op: &str, g: &ConvGeometry, [a, b]: [&CudaStorage; 2], fused: bool) -> Result<()> {
    use candle_core::backend::BackendStorage;
    let (da, db) = (a.dtype(), b.dtype());
    if g.params.channels_last() || da != db || !cuda_dtype(da, fused) {
        let dtypes = if cuda_dtype(candle_core::DType::BF16, fused) { "f32 or bf16" } else { "f32" };
        bail!(
            "{op}: on CUDA, ganzoo's convolutions take NCHW operands of one dtype, {dtypes}; got {:?} {da:?} and {db:?}",
            g.params.layout
        );
    }
    Ok(())
}

/// One of the three primitives on a fixed geometry.
trait Kernel {
    fn run<T: Element>(&self, a: &[T], b: &[T]) -> Vec<T>;
}

struct Forward(ConvGeometry);
struct Adjoint(ConvGeometry);
struct WeightGrad(ConvGeometry);

impl Kernel for Forward {
    fn run<T: Element>(&self, x: &[T], w: &[T]) -> Vec<T> {
        conv_gemm::forward(&self.0, x, w)
    }
}

impl Kernel for Adjoint {
    fn run<T: Element>(&self, dy: &[T], w: &[T]) -> Vec<T> {
        conv_gemm::adjoint(&self.0, dy, w)
    }
}

impl Kernel for WeightGrad {
    fn run<T: Element>(&self, x: &[T], dy: &[T]) -> Vec<T> {
        conv_gemm::weight_grad(&self.0, x, dy)
    }
}

/// `conv2d(x, W)`: operands `x (N, C, H, W)`, `W (O, C, kh, kw)`; with `slope`, its
/// output through `max(y, slope·y)`.
struct Conv2dOp {
    params: ConvParams,
    slope: Option<f64>,
}

impl Conv2dOp {
    /// The convolution and its output's shape.
    fn geometry(&self, l1: &Layout, l2: &Layout) -> Result<(ConvGeometry, Shape)> {
        let x = image(l1, "conv2d input", self.params.layout)?;
        let g = ConvGeometry::new(x, dims4(l2, "conv2d kernel")?, self.params)?;
        Ok((g, image_shape(self.params.layout, [g.batch, g.cout, g.out_h, g.out_w])))
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "ganzoo-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, shape) = self.geometry(l1, l2)?;
        let y = dispatch(self.name(), (s1, l1), (s2, l2), Forward(g))?;
        let y = if let Some(a) = self.slope { leaky_relu_in_place(y, a)? } else { y };
        Ok((y, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let (g, shape) = self.geometry(l1, l2)?;
        cuda_takes(self.name(), &g, [s1, s2], self.slope.is_some())?;
        let y = on_cuda::forward(&g, (s1, l1), (s2, l2))?;
        let Some(a) = self.slope else { return Ok((y, shape)) };
        let all = Layout::contiguous(shape.clone());
        Ok((crate::cuda::mask((&y, &all), (&y, &all), a)?, shape))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // The activation's gradient first: its mask is the sign of the output.
        let dy = &match self.slope {
            Some(a) => leaky_relu_grad(y, dy, a)?,
            None => dy.clone(),
        };
        input_and_kernel_grads(self.params, x, w, dy)
    }
}

/// `(dx, dW)` of `conv2d(x, W)` for its output gradient `dy`, each only where its operand
/// is part of a graph.
fn input_and_kernel_grads(
    params: ConvParams,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let size = spatial(x, params.layout)?;
    let dx = tracked(x, || conv_transpose2d_to(dy, w, params, size))?;
    let (_, _, kh, kw) = w.dims4()?;
    let dw = tracked(w, || conv2d_weight_grad(x, dy, params, (kh, kw)))?;
    Ok((dx, dw))
}

/// `max(z, a·z)` of `z = conv2d(x, W) + b`, `b` one value per output channel: operands
/// `x`, `W (O, C, kh, kw)` and `b (O)`. CPU only (the models send CUDA tensors through
/// the separate ops).
struct Conv2dBiasOp {
    params: ConvParams,
    slope: f64,
}

impl CustomOp3 for Conv2dBiasOp {
    fn name(&self) -> &'static str {
        "ganzoo-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let conv = Conv2dOp { params: self.params, slope: None };
        let (g, shape) = conv.geometry(l1, l2)?;
        if l3.dims() != [g.cout] {
            bail!("conv2d with bias: the bias is {:?}, the kernel {:?} needs ({})", l3.dims(), l2.dims(), g.cout);
        }
        let planes = if self.params.channels_last() { None } else { Some(g.out_plane()) };
        let out = match typed(self.name(), [(s1, l1), (s2, l2), (s3, l3)])? {
            Typed::F32([x, w, b]) => {
                CpuStorage::F32(bias_leaky_relu(Forward(g).run(x, w), b, planes, self.slope as f32))
            }
            Typed::F64([x, w, b]) => CpuStorage::F64(bias_leaky_relu(Forward(g).run(x, w), b, planes, self.slope)),
        };
        Ok((out, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dz = leaky_relu_grad(y, dy, self.slope)?;
        let (dx, dw) = input_and_kernel_grads(self.params, x, w, &dz)?;
        let channel = self.params.layout.channel_axis();
        let others: Vec<usize> = (0..4).filter(|&d| d != channel).collect();
        let db = tracked(b, || dz.sum(others))?;
        Ok((dx, dw, db))
    }
}

/// `max(y + b, a·(y + b))` in place, `b` indexed by channel: the last axis of `y`, or
/// with `planes = Some(H'·W')` its planes of that size.
fn bias_leaky_relu<T: Element>(mut y: Vec<T>, b: &[T], planes: Option<usize>, a: T) -> Vec<T> {
    let isa = crate::isa::active();
    let each = move |v: &mut T, bias: T| {
        let z = *v + bias;
        *v = if z > T::ZERO { z } else { z * a };
    };
    match planes {
        None => y.par_chunks_mut(b.len() * 64).for_each(|rows| {
            crate::isa::vectorized(isa, || {
                for row in rows.chunks_exact_mut(b.len()) {
                    row.iter_mut().zip(b).for_each(|(v, &bias)| each(v, bias));
                }
            })
        }),
        Some(plane) => y.par_chunks_mut(plane).enumerate().for_each(|(i, plane)| {
            let bias = b[i % b.len()];
            crate::isa::vectorized(isa, || plane.iter_mut().for_each(|v| each(v, bias)))
        }),
    }
    y
}

/// `conv_transpose2d(x, W)`: operands `x (N, Cin, H, W)`, `W (Cin, Cout, kh, kw)`,
/// output side `(H − 1)s − 2p + d(k − 1) + 1 + output_padding`.
struct ConvTranspose2dOp {
    params: ConvParams,
    output: (usize, usize),
}

impl ConvTranspose2dOp {
    /// The forward convolution this op is the adjoint of, and this op's output shape.
    fn geometry(&self, l1: &Layout, l2: &Layout) -> Result<(ConvGeometry, Shape)> {
        let x = image(l1, "conv_transpose2d input", self.params.layout)?;
        let w = dims4(l2, "conv_transpose2d kernel")?;
        let [n, cin, h, wd] = x;
        let [wc, cout, kh, kw] = w;
        if wc != cin {
            bail!("conv_transpose2d: kernel {w:?} expects {wc} input channels, input {x:?} has {cin}");
        }
        let g = ConvGeometry::new([n, cout, self.output.0, self.output.1], [cin, cout, kh, kw], self.params)?;
        if (g.out_h, g.out_w) != (h, wd) {
            bail!("conv_transpose2d: output {:?} does not map back to input {x:?} with {:?}", self.output, self.params);
        }
        Ok((g, image_shape(self.params.layout, [g.batch, g.cin, g.in_h, g.in_w])))
    }
}

impl CustomOp2 for ConvTranspose2dOp {
    fn name(&self) -> &'static str {
        "ganzoo-conv-transpose2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, shape) = self.geometry(l1, l2)?;
        Ok((dispatch(self.name(), (s1, l1), (s2, l2), Adjoint(g))?, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let (g, shape) = self.geometry(l1, l2)?;
        cuda_takes(self.name(), &g, [s1, s2], false)?;
        Ok((on_cuda::adjoint(&g, (s1, l1), (s2, l2))?, shape))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = tracked(x, || conv2d(dy, w, self.params))?;
        let (_, _, kh, kw) = w.dims4()?;
        let dw = tracked(w, || conv2d_weight_grad(dy, x, self.params, (kh, kw)))?;
        Ok((dx, dw))
    }
}

/// `conv2d_weight_grad(x, dy)`: operands `x (N, C, H, W)`, `dy (N, O, H', W')`.
struct WeightGradOp {
    params: ConvParams,
    kernel: (usize, usize),
}

impl WeightGradOp {
    /// The convolution whose kernel gradient this is, and the kernel's shape.
    fn geometry(&self, l1: &Layout, l2: &Layout) -> Result<(ConvGeometry, Shape)> {
        let x = image(l1, "conv2d weight gradient input", self.params.layout)?;
        let dy = image(l2, "conv2d weight gradient output gradient", self.params.layout)?;
        let g = ConvGeometry::new(x, [dy[1], x[1], self.kernel.0, self.kernel.1], self.params)?;
        if dy != [g.batch, g.cout, g.out_h, g.out_w] {
            bail!("conv2d weight gradient: output gradient {dy:?} does not match input {x:?} with {:?}", self.params);
        }
        Ok((g, Shape::from((g.cout, g.cin, g.k_h, g.k_w))))
    }
}

impl CustomOp2 for WeightGradOp {
    fn name(&self) -> &'static str {
        "ganzoo-conv2d-weight-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, shape) = self.geometry(l1, l2)?;
        Ok((dispatch(self.name(), (s1, l1), (s2, l2), WeightGrad(g))?, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let (g, shape) = self.geometry(l1, l2)?;
        cuda_takes(self.name(), &g, [s1, s2], false)?;
        Ok((on_cuda::weight_grad(&g, (s1, l1), (s2, l2))?, shape))
    }

    fn bwd(&self, x: &Tensor, dy: &Tensor, _: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let size = spatial(x, self.params.layout)?;
        Ok((tracked(x, || conv_transpose2d_to(dy, g, self.params, size))?, tracked(dy, || conv2d(x, g, self.params))?))
    }
}

/// Cross-correlation of `x (N, C, H, W)` (or `(N, H, W, C)`) with `w (O, C, kh, kw)`.
pub fn conv2d(x: &Tensor, w: &Tensor, params: ConvParams) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Conv2dOp { params, slope: None })
}

/// `max(y, a·y)` of `y = conv2d(x, W)` for a slope `0 ≤ a ≤ 1` (0: ReLU), in one op: the
/// graph keeps the activation, not the convolution's output (the critics' first layer;
/// what it saves: docs/performance.md, *Memory*).
pub fn conv2d_leaky_relu(x: &Tensor, w: &Tensor, params: ConvParams, slope: f64) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&slope) {
        bail!("conv2d_leaky_relu: the slope must lie in [0, 1], got {slope}");
    }
    x.contiguous()?.apply_op2(&w.contiguous()?, Conv2dOp { params, slope: Some(slope) })
}

/// `max(z, a·z)` of `z = conv2d(x, W) + b` for a bias `b (O)` and a slope `0 ≤ a ≤ 1`
/// (0: ReLU), in one op on the CPU; differentiable to any order like [`conv2d`].
pub fn conv2d_bias_leaky_relu(x: &Tensor, w: &Tensor, b: &Tensor, params: ConvParams, slope: f64) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&slope) {
        bail!("conv2d_bias_leaky_relu: the slope must lie in [0, 1], got {slope}");
    }
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Conv2dBiasOp { params, slope })
}

/// Transposed convolution of `x (N, Cin, H, W)` (or `(N, H, W, Cin)`) with `w (Cin, Cout, kh, kw)`, as
/// PyTorch and Candle define it (`output_padding` extends the bottom and right edges).
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, params: ConvParams, output_padding: usize) -> Result<Tensor> {
    let (h, wd) = spatial(x, params.layout)?;
    let (_, _, kh, kw) = w.dims4()?;
    let side = |i, k| params.transposed_side(i, k, output_padding);
    let (Some(oh), Some(ow)) = (side(h, kh), side(wd, kw)) else {
        bail!("conv_transpose2d: input {:?} and kernel {:?} give an empty output with {params:?}", x.dims(), w.dims());
    };
    conv_transpose2d_to(x, w, params, (oh, ow))
}

/// [`conv_transpose2d`] with the output size given: the input of the forward
/// convolution whose gradient this is, when a stride left several sizes possible.
pub fn conv_transpose2d_to(x: &Tensor, w: &Tensor, params: ConvParams, output: (usize, usize)) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, ConvTranspose2dOp { params, output })
}

/// `∂⟨conv2d(x, W), dy⟩/∂W` for a `kernel = (kh, kw)` kernel: shape `(O, C, kh, kw)`.
pub fn conv2d_weight_grad(x: &Tensor, dy: &Tensor, params: ConvParams, kernel: (usize, usize)) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&dy.contiguous()?, WeightGradOp { params, kernel })
}

#[cfg(test)]
mod tests {
    use candle_core::DType;

    use super::cuda_dtype;

    /// f32 always; bf16 only where cuDNN is built and not fused with the leaky ReLU.
    #[test]
    fn cuda_convolutions_take_f32_and_with_cudnn_unfused_bf16() {
        assert!(cuda_dtype(DType::F32, false) && cuda_dtype(DType::F32, true));
        assert_eq!(cuda_dtype(DType::BF16, false), cfg!(feature = "cudnn"));
        assert!(!cuda_dtype(DType::BF16, true));
        for other in [DType::F16, DType::F64, DType::U8] {
            assert!(!cuda_dtype(other, false), "{other:?}");
        }
    }
}
