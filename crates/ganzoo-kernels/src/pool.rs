//! Max and mean pooling of channels-last images `(N, H, W, C)`, forward only: for networks
//! that are evaluated, never trained through a pool (InceptionV3's feature pass).
//!
//! Output side `(H + 2p − k)/s + 1` as in PyTorch (floor). The padding is never a value:
//! a max is over the window's pixels inside the image, a mean divides their sum by their
//! count (PyTorch's `count_include_pad=False`). Each output pixel reads its window's
//! pixels row by row, one vector of channels at a time; a NaN in a max's window is its max.

use std::ops::Div;

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::gemm::Element;
use crate::storage::{typed, Typed};

/// What a window reduces to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    /// The mean of the window's pixels inside the image.
    Mean,
}

/// A square `kernel × kernel` pooling window moved by `stride`, over an image padded by
/// `padding` on every side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    pub kind: PoolKind,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Pool2d {
    /// Output side over an input side `input`; `None` where the window does not fit or
    /// some window would lie in the padding alone (`padding ≥ kernel`, PyTorch refuses
    /// `padding > kernel / 2`).
    fn out_side(&self, input: usize) -> Option<usize> {
        if self.kernel == 0 || self.stride == 0 || self.padding >= self.kernel {
            return None;
        }
        let padded = input.checked_add(self.padding.checked_mul(2)?)?;
        Some(padded.checked_sub(self.kernel)? / self.stride + 1)
    }

    /// The input indices `[lo, hi)` of output index `o`'s window along an axis of `side`.
    fn window(&self, o: usize, side: usize) -> (usize, usize) {
        let start = o * self.stride;
        (start.saturating_sub(self.padding), (start + self.kernel - self.padding).min(side))
    }
}

struct PoolOp(Pool2d);

impl PoolOp {
    /// `(N, H, W, C)` of the input and `(H', W')` of the output.
    fn geometry(&self, l: &Layout) -> Result<([usize; 4], (usize, usize))> {
        let &[n, h, w, c] = l.dims() else { bail!("pool2d: expected an (N, H, W, C) image, got {:?}", l.dims()) };
        match (self.0.out_side(h), self.0.out_side(w)) {
            (Some(oh), Some(ow)) if n * c > 0 => Ok(([n, h, w, c], (oh, ow))),
            _ => bail!("pool2d: {:?} does not fit an image {:?}", self.0, l.dims()),
        }
    }
}

impl CustomOp1 for PoolOp {
    fn name(&self) -> &'static str {
        "ganzoo-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (dims, (oh, ow)) = self.geometry(l)?;
        let out = match typed(self.name(), [(s, l)])? {
            Typed::F32([x]) => CpuStorage::F32(pool(self.0, x, dims, (oh, ow))),
            Typed::F64([x]) => CpuStorage::F64(pool(self.0, x, dims, (oh, ow))),
        };
        Ok((out, Shape::from((dims[0], oh, ow, dims[3]))))
    }
}

/// The pooled image, one output row per task.
fn pool<T: Element + Div<Output = T>>(
    p: Pool2d,
    x: &[T],
    [n, h, w, c]: [usize; 4],
    (oh, ow): (usize, usize),
) -> Vec<T> {
    let isa = crate::isa::active();
    let mut out = vec![T::ZERO; n * oh * ow * c];
    out.par_chunks_mut(ow * c).enumerate().for_each(|(row, out)| {
        let (image, oy) = (&x[row / oh * h * w * c..][..h * w * c], row % oh);
        let rows = p.window(oy, h);
        crate::isa::vectorized(isa, || {
            for (ox, out) in out.chunks_exact_mut(c).enumerate() {
                let cols = p.window(ox, w);
                reduce(p.kind, image, (w, c), rows, cols, out);
            }
        });
    });
    out
}

/// One output pixel's channels `out` from the window `rows × cols` of `image` (`w`
/// pixels of `c` channels per row). The window holds at least one pixel.
#[inline(always)]
fn reduce<T: Element + Div<Output = T>>(
    kind: PoolKind,
    image: &[T],
    (w, c): (usize, usize),
    rows: (usize, usize),
    cols: (usize, usize),
    out: &mut [T],
) {
    let pixel = |y: usize, x: usize| &image[(y * w + x) * c..][..c];
    out.copy_from_slice(pixel(rows.0, cols.0));
    for y in rows.0..rows.1 {
        for x in cols.0..cols.1 {
            if (y, x) == (rows.0, cols.0) {
                continue;
            }
            for (o, &v) in out.iter_mut().zip(pixel(y, x)) {
                *o = match kind {
                    // A NaN wins, as in PyTorch (`v != v`).
                    PoolKind::Max => {
                        #[allow(clippy::eq_op)]
                        let wins = v > *o || v != v;
                        if wins {
                            v
                        } else {
                            *o
                        }
                    }
                    PoolKind::Mean => *o + v,
                };
            }
        }
    }
    if kind == PoolKind::Mean {
        let count = T::from_f64(((rows.1 - rows.0) * (cols.1 - cols.0)) as f64);
        out.iter_mut().for_each(|o| *o = *o / count);
    }
}

/// `pool` over a channels-last image `x (N, H, W, C)` of f32 or f64 on the CPU, giving
/// `(N, H', W', C)`. Not differentiable (no backward).
pub fn pool2d(x: &Tensor, pool: Pool2d) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&PoolOp(pool))
}
