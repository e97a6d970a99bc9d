//! `im2col` unfolds every receptive field of a block of samples into one column of
//! a `(C·kh·kw) × (n·H'·W')` matrix; `col2im` is its adjoint, summing each column
//! back into the pixels it came from.
//!
//! Row `r = (c·kh + i)·kw + j` of the matrix holds, for every output pixel
//! `(oh, ow)` of every sample, the input pixel `(c, oh·s − p + i·d, ow·s − p + j·d)`
//! (zero outside the image). Both functions work row by row so each inner loop is a
//! contiguous run of one output row.

use rayon::prelude::*;

use crate::gemm::Element;
use crate::geometry::ConvGeometry;

/// The output columns `[lo, hi)` whose input column `o·s − p + off` lies inside `0..len`,
/// for an offset `off = j·d` of the kernel tap.
fn valid_range(g: &ConvGeometry, off: usize, len: usize, outs: usize) -> (usize, usize) {
    let (s, p) = (g.params.stride, g.params.padding);
    let lo = if p > off { (p - off).div_ceil(s) } else { 0 };
    let hi = if len + p > off { (len + p - off).div_ceil(s) } else { 0 };
    (lo.min(outs), hi.min(outs).max(lo.min(outs)))
}

/// The input row of output row `oh` for tap `i`, if inside the image.
fn input_row(g: &ConvGeometry, oh: usize, i: usize) -> Option<usize> {
    (oh * g.params.stride + i * g.params.dilation).checked_sub(g.params.padding).filter(|&r| r < g.in_h)
}

/// Writes `im2col` of `samples` samples of `x` (NCHW, contiguous) into `cols`.
pub fn im2col<T: Element>(g: &ConvGeometry, x: &[T], samples: usize, cols: &mut [T]) {
    let (plane, width) = (g.out_plane(), samples * g.out_plane());
    let taps = g.k_h * g.k_w;
    cols[..g.patch() * width].par_chunks_mut(width).enumerate().for_each(|(r, row)| {
        let (c, i, j) = (r / taps, (r / g.k_w) % g.k_h, r % g.k_w);
        let (lo, hi) = valid_range(g, j * g.params.dilation, g.in_w, g.out_w);
        for (n, out) in row.chunks_mut(plane).enumerate() {
            let src = &x[(n * g.cin + c) * g.in_plane()..][..g.in_plane()];
            for (oh, line) in out.chunks_mut(g.out_w).enumerate() {
                let Some(ih) = input_row(g, oh, i) else {
                    line.fill(T::ZERO);
                    continue;
                };
                let src = &src[ih * g.in_w..][..g.in_w];
                line[..lo].fill(T::ZERO);
                line[hi..].fill(T::ZERO);
                let first = lo * g.params.stride + j * g.params.dilation - g.params.padding;
                if g.params.stride == 1 {
                    line[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
                } else {
                    for (k, v) in line[lo..hi].iter_mut().enumerate() {
                        *v = src[first + k * g.params.stride];
                    }
                }
            }
        }
    });
}

/// Adds `col2im` of `cols` into `samples` samples of `dx` (NCHW, contiguous).
pub fn col2im<T: Element>(g: &ConvGeometry, cols: &[T], samples: usize, dx: &mut [T]) {
    let (plane, width) = (g.out_plane(), samples * g.out_plane());
    let taps = g.k_h * g.k_w;
    dx[..samples * g.cin * g.in_plane()].par_chunks_mut(g.in_plane()).enumerate().for_each(|(nc, img)| {
        let (n, c) = (nc / g.cin, nc % g.cin);
        for i in 0..g.k_h {
            for j in 0..g.k_w {
                let (lo, hi) = valid_range(g, j * g.params.dilation, g.in_w, g.out_w);
                if lo >= hi {
                    continue;
                }
                let row = &cols[(c * taps + i * g.k_w + j) * width + n * plane..][..plane];
                let first = lo * g.params.stride + j * g.params.dilation - g.params.padding;
                for (oh, line) in row.chunks(g.out_w).enumerate() {
                    let Some(ih) = input_row(g, oh, i) else { continue };
                    let dst = &mut img[ih * g.in_w..][..g.in_w];
                    if g.params.stride == 1 {
                        for (d, &v) in dst[first..first + hi - lo].iter_mut().zip(&line[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        for (k, &v) in line[lo..hi].iter().enumerate() {
                            dst[first + k * g.params.stride] += v;
                        }
                    }
                }
            }
        }
    });
}
