//! Convolutions as Candle tensor ops: the image unfolded by strided views into one
//! matrix, one matrix product (cuBLAS on CUDA), NCHW in and out. Built only from ops
//! Candle differentiates with ops of the same kinds (narrow, cat, pad, reshape, permute,
//! flip, matmul), so both convolutions differentiate again to any order on any device —
//! the gradient penalty stays exact. This is the path on CUDA, where Candle's own
//! `conv_transpose2d` (which its `conv2d` backward runs too) is one thread per output
//! element looping over the inputs; Candle's `conv2d` is im2col + GEMM already, but its
//! input gradient is that `conv_transpose2d`.
//!
//! Phases: with stride `s`, a kernel side `k` is padded with zero taps to `s·q`,
//! `q = ⌈k/s⌉`, so tap `ky = s·qy + ry` of output row `oy` reads padded row
//! `s·oy + ky = s·(oy + qy) + ry`. Viewed as `(coarse row, phase)`, every shift `qy` is
//! one narrow of the coarse axis: the unfold is `q²` views, never a gather.
//! A transposed convolution is a stride-1 correlation of the input padded by `q − 1`
//! with the flipped phases as `s²·Cout` output channels, then depth to space
//! (the sub-pixel form of the adjoint), cropped by the padding.

use candle_core::{bail, Result, Tensor};

/// `y = W ⋆ x`: `x (B, C, H, W)`, `w (Cout, C, kh, kw)`, stride and zero padding on
/// both axes → `(B, Cout, H', W')`, `H' = (H + 2p − kh)/s + 1`.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (b, c, h, wd) = x.dims4()?;
    let (o, cw, kh, kw) = w.dims4()?;
    if c != cw || stride == 0 || kh * kw == 0 || h + 2 * padding < kh || wd + 2 * padding < kw {
        bail!("conv2d: input {:?}, weight {:?}, stride {stride}, padding {padding} do not fit", x.dims(), w.dims())
    }
    let (oh, ow) = ((h + 2 * padding - kh) / stride + 1, (wd + 2 * padding - kw) / stride + 1);
    if padding == 0 && (h, wd) == (kh, kw) {
        // One output pixel that sees the whole image: a plain product.
        let y = x.flatten_from(1)?.matmul(&w.flatten_from(1)?.t()?)?;
        return y.reshape((b, o, 1, 1));
    }
    let s = stride;
    let (qh, qw) = (kh.div_ceil(s), kw.div_ceil(s));
    let x = pad_or_crop(x, 2, padding, s * (oh + qh - 1))?;
    let x = pad_or_crop(&x, 3, padding, s * (ow + qw - 1))?;
    let phased = x.reshape((b, c, oh + qh - 1, s, ow + qw - 1, s))?;
    // (Cout, C, qh·s, qw·s) → (Cout, qy, qx, C, ry, rx): the unfold's column order.
    let w = w.pad_with_zeros(2, 0, qh * s - kh)?.pad_with_zeros(3, 0, qw * s - kw)?;
    let w = w.reshape((o, c, qh, s, qw, s))?.permute([0, 2, 4, 1, 3, 5])?;
    correlate(&phased, &w, (oh, ow))
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
    let (b, ci, h, wd) = x.dims4()?;
    let (w_ci, o, kh, kw) = w.dims4()?;
    let side = |i: usize, k: usize| ((i.max(1) - 1) * stride + k + output_padding).checked_sub(2 * padding);
    let (out_h, out_w) = match (side(h, kh), side(wd, kw)) {
        (Some(oh), Some(ow)) if ci == w_ci && stride > 0 && [h, wd, oh, ow, kh, kw].iter().all(|&n| n > 0) => (oh, ow),
        _ => bail!(
            "conv_transpose2d: input {:?}, weight {:?}, stride {stride}, padding {padding}, output padding \
             {output_padding} do not fit",
            x.dims(),
            w.dims()
        ),
    };
    if (h, wd, padding, output_padding) == (1, 1, 0, 0) {
        // A 1×1 input spreads over one kernel's extent: a plain product.
        return x.flatten_from(1)?.matmul(&w.flatten_from(1)?)?.reshape((b, o, kh, kw));
    }
    let s = stride;
    let (qh, qw) = (kh.div_ceil(s), kw.div_ceil(s));
    // Output coarse row Y sums input rows Y − qy over the taps qy·s + ry: a stride-1
    // correlation of the input padded by q − 1 with the taps in reverse order.
    let x = x.pad_with_zeros(2, qh - 1, qh - 1)?.pad_with_zeros(3, qw - 1, qw - 1)?;
    let (yc, xc) = (h + qh - 1, wd + qw - 1);
    let unit = x.reshape((b, ci, h + 2 * (qh - 1), 1, wd + 2 * (qw - 1), 1))?;
    let w = w.pad_with_zeros(2, 0, qh * s - kh)?.pad_with_zeros(3, 0, qw * s - kw)?;
    let w = w.reshape((ci, o, qh, s, qw, s))?.flip(&[2, 4])?;
    // (Cin, Cout, qy, ry, qx, rx) → (Cout·ry·rx, qy, qx, Cin, 1, 1).
    let w = w.permute([1, 3, 5, 2, 4, 0])?.reshape((o * s * s, qh, qw, ci, 1, 1))?;
    let y = correlate(&unit, &w, (yc, xc))?;
    // Depth to space: (B, Cout, ry, rx, Y, X) → (B, Cout, Y·s + ry, X·s + rx), then
    // the padding's rows and columns cut off.
    let y = y.reshape((b, o, s, s, yc, xc))?.permute([0, 1, 4, 2, 5, 3])?.reshape((b, o, yc * s, xc * s))?;
    let y = pad_or_crop(&skip(&y, 2, padding)?, 2, 0, out_h)?;
    pad_or_crop(&skip(&y, 3, padding)?, 3, 0, out_w)
}

/// `x` without its first `n` rows along `dim` (all of them if it has fewer).
fn skip(x: &Tensor, dim: usize, n: usize) -> Result<Tensor> {
    let len = x.dim(dim)?;
    x.narrow(dim, n.min(len), len - n.min(len))
}

/// `x` along `dim` as `before` zero rows, then its own rows, then zeros, `len` in all
/// (its last rows dropped where `len` ends inside it).
fn pad_or_crop(x: &Tensor, dim: usize, before: usize, len: usize) -> Result<Tensor> {
    let n = x.dim(dim)?;
    if before + n <= len {
        x.pad_with_zeros(dim, before, len - before - n)
    } else {
        x.narrow(dim, 0, len.saturating_sub(before))?.pad_with_zeros(dim, before.min(len), 0)
    }
}

/// The core product: `phased (B, C, Yc, s, Xc, s)` — an image whose rows and columns
/// are split into (coarse, phase) — against `w (Cout, qh, qw, C, s, s)`, summing for
/// every output `(oy, ox)` over the taps `phased[.., oy + qy, ry, ox + qx, rx]`.
fn correlate(phased: &Tensor, w: &Tensor, (oh, ow): (usize, usize)) -> Result<Tensor> {
    let (d, k) = (phased.dims(), w.dims());
    let (b, c, s, o, qh, qw) = (d[0], d[1], d[3], k[0], k[1], k[2]);
    // The unfold, contraction index first: (qy·qx, C, ry, rx) × (B, oh, ow); one copy.
    let mut views = Vec::with_capacity(qh * qw);
    for qy in 0..qh {
        for qx in 0..qw {
            let v = phased.narrow(2, qy, oh)?.narrow(4, qx, ow)?;
            views.push(v.permute([1, 3, 5, 0, 2, 4])?.unsqueeze(0)?);
        }
    }
    let cols = Tensor::cat(&views, 0)?.reshape((qh * qw * c * s * s, b * oh * ow))?;
    let y = w.reshape((o, qh * qw * c * s * s))?.matmul(&cols)?;
    y.reshape((o, b, oh, ow))?.transpose(0, 1)?.contiguous()
}
