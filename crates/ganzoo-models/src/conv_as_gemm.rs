//! Convolutions where ganzoo's kernels do not run (CUDA with `--kernels gemm` or
//! `GANZOO_CUDA_CONV=gemm`, bf16 on CUDA in a build without cuDNN): every product is Candle's own
//! `conv2d` (im2col + one GEMM; cuBLAS on CUDA), with ganzoo's gradients. Candle's CUDA
//! `conv_transpose2d` is one thread per output looping over the inputs, and its `conv2d`
//! backward runs it for the input gradient; here neither is used:
//!
//! - a transposed convolution is a stride-1 `conv2d` of its input with the kernel's
//!   phases as `s²·Cout` output channels, then depth to space and the padding cropped
//!   (the sub-pixel form of the adjoint): tap `ky = s·qy + ry` (taps padded with zeros
//!   to `s·⌈k/s⌉`) sends input row `iy` to output row `s·(iy + qy) + ry`;
//! - `conv2d`'s value is Candle's, computed on detached operands and handed to a custom
//!   op whose backward is the transposed convolution above (input) and Candle's `conv2d`
//!   of the input with the output gradient (weight, as Candle's own backward does).
//!
//! The gradients are built from tracked ops, these functions included, so they
//! differentiate again to any order and the gradient penalty stays exact; handed to
//! Candle detached unless `CANDLE_GRAD_DO_NOT_DETACH` ([`ganzoo_kernels::tracked`]), and
//! an untracked input (a batch of images) gets none.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CudaStorage, CustomOp3, Layout, MetalStorage, Result, Shape, Tensor};
use ganzoo_kernels::tracked;

/// `y = W ⋆ x`: `x (B, C, H, W)`, `w (Cout, C, kh, kw)`, stride and zero padding on
/// both axes → `(B, Cout, H', W')`, `H' = (H + 2p − kh)/s + 1`.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    conv2d_padded(x, w, stride, (padding, padding))
}

/// The adjoint of [`conv2d`]: `x (B, Cin, H, W)`, `w (Cin, Cout, kh, kw)` → `(B, Cout,
/// (H − 1)s − 2p + kh + op, …)` with `output_padding` rows and columns added at the end.
pub fn conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Result<Tensor> {
    let (_, _, h, wd) = x.dims4()?;
    let (_, _, kh, kw) = w.dims4()?;
    let side = |i: usize, k: usize| ((i.max(1) - 1) * stride + k + output_padding).checked_sub(2 * padding);
    match (side(h, kh), side(wd, kw)) {
        (Some(oh), Some(ow)) if oh * ow > 0 => transposed_to(x, w, stride, (padding, padding), (oh, ow)),
        _ => bail!(
            "conv_transpose2d: input {:?}, weight {:?}, stride {stride}, padding {padding}, output padding \
             {output_padding} do not fit",
            x.dims(),
            w.dims()
        ),
    }
}

/// [`conv2d`] with zero padding `(ph, pw)` of rows and columns.
fn conv2d_padded(x: &Tensor, w: &Tensor, stride: usize, pad: (usize, usize)) -> Result<Tensor> {
    let ((_, c, h, wd), (_, w_c, kh, kw)) = (x.dims4()?, w.dims4()?);
    if c != w_c || stride == 0 || kh * kw == 0 || h + 2 * pad.0 < kh || wd + 2 * pad.1 < kw {
        bail!("conv2d: input {:?}, weight {:?}, stride {stride}, padding {pad:?} do not fit", x.dims(), w.dims())
    }
    let value = candle_conv(&x.detach(), &w.detach(), (stride, 1), pad)?.contiguous()?;
    x.apply_op3(w, &value, WithGradients { stride, pad })
}

/// Candle's `conv2d` with `(stride, dilation)` and padding `(ph, pw)`.
fn candle_conv(x: &Tensor, w: &Tensor, (stride, dilation): (usize, usize), pad: (usize, usize)) -> Result<Tensor> {
    let (x, common) = crate::conv::pad_difference(x, pad, ganzoo_kernels::ImageLayout::Nchw)?;
    x.conv2d(w, common, stride, dilation, 1)
}

/// The transposed convolution of `x` by `w` (stride, padding `(ph, pw)`) with output
/// side `(out_h, out_w)` (output padding included).
fn transposed_to(
    x: &Tensor,
    w: &Tensor,
    s: usize,
    (ph, pw): (usize, usize),
    (out_h, out_w): (usize, usize),
) -> Result<Tensor> {
    let ((b, ci, h, wd), (w_ci, o, kh, kw)) = (x.dims4()?, w.dims4()?);
    if ci != w_ci || s == 0 || [h, wd, kh, kw].contains(&0) {
        bail!("conv_transpose2d: input {:?}, weight {:?}, stride {s} do not fit", x.dims(), w.dims())
    }
    if (h, wd, ph, pw, out_h, out_w) == (1, 1, 0, 0, kh, kw) {
        // A 1×1 input spreads over one kernel's extent: a plain product.
        return x.flatten_from(1)?.matmul(&w.flatten_from(1)?)?.reshape((b, o, kh, kw));
    }
    let (qh, qw) = (kh.div_ceil(s), kw.div_ceil(s));
    // Coarse rows the convolution's padding can drop at both ends, its output still
    // covering the rows kept (`p` and `out` in fine rows, `i + q − 1` coarse rows in all).
    let dropped = |q: usize, p: usize, i: usize, out: usize| {
        (q - 1).min(p / s).min((s * (i + q - 1)).saturating_sub(p + out) / s)
    };
    let (dh, dw) = (dropped(qh, ph, h, out_h), dropped(qw, pw, wd, out_w));
    // (Cin, Cout, qy, ry, qx, rx), taps reversed → (Cout·ry·rx, Cin, qy, qx).
    let w = w.pad_with_zeros(2, 0, qh * s - kh)?.pad_with_zeros(3, 0, qw * s - kw)?;
    let w = w.reshape((ci, o, qh, s, qw, s))?.flip(&[2, 4])?;
    let w = w.permute([1, 3, 5, 0, 2, 4])?.reshape((o * s * s, ci, qh, qw))?;
    let y = conv2d_padded(x, &w, 1, (qh - 1 - dh, qw - 1 - dw))?;
    // Depth to space: (B, Cout, ry, rx, Y, X) → (B, Cout, Y·s + ry, X·s + rx).
    let (yc, xc) = (y.dim(2)?, y.dim(3)?);
    let y = y.reshape((b, o, s, s, yc, xc))?.permute([0, 1, 4, 2, 5, 3])?.reshape((b, o, yc * s, xc * s))?;
    let y = pad_or_crop(&skip(&y, 2, ph - s * dh)?, 2, out_h)?;
    pad_or_crop(&skip(&y, 3, pw - s * dw)?, 3, out_w)
}

/// `x` without its first `n` rows along `dim` (all of them if it has fewer).
fn skip(x: &Tensor, dim: usize, n: usize) -> Result<Tensor> {
    let len = x.dim(dim)?;
    x.narrow(dim, n.min(len), len - n.min(len))
}

/// `x` cut or zero-padded at the end to `len` rows along `dim`.
fn pad_or_crop(x: &Tensor, dim: usize, len: usize) -> Result<Tensor> {
    let n = x.dim(dim)?;
    if n >= len {
        x.narrow(dim, 0, len)
    } else {
        x.pad_with_zeros(dim, 0, len - n)
    }
}

/// `conv2d(x, w)` with its value given (the third operand, which gets no gradient).
struct WithGradients {
    stride: usize,
    pad: (usize, usize),
}

/// The value operand's storage, copied: it was computed for this op, whole and contiguous.
fn value<S: BackendStorage>(s: &S, l: &Layout) -> Result<(S, Shape)> {
    if !l.is_contiguous() || l.start_offset() != 0 {
        bail!("ganzoo-conv2d: the value operand is a view")
    }
    Ok((s.try_clone(l)?, l.shape().clone()))
}

impl CustomOp3 for WithGradients {
    fn name(&self) -> &'static str {
        "ganzoo-conv2d"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        v: &CpuStorage,
        lv: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        value(v, lv)
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
        v: &CudaStorage,
        lv: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        value(v, lv)
    }

    fn metal_fwd(
        &self,
        _: &MetalStorage,
        _: &Layout,
        _: &MetalStorage,
        _: &Layout,
        v: &MetalStorage,
        lv: &Layout,
    ) -> Result<(MetalStorage, Shape)> {
        value(v, lv)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _: &Tensor,
        _: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = tracked(x, || transposed_to(dy, w, self.stride, self.pad, (x.dim(2)?, x.dim(3)?)))?;
        // Candle's weight gradient: the input's channels as the batch, the output
        // gradient as the kernel, dilated by the stride; cut to the kernel's side.
        let dw = tracked(w, || {
            let dw = candle_conv(&x.transpose(0, 1)?, &dy.transpose(0, 1)?, (1, self.stride), self.pad)?;
            dw.narrow(2, 0, w.dim(2)?)?.narrow(3, 0, w.dim(3)?)?.transpose(0, 1)
        })?;
        Ok((dx, dw, None))
    }
}
