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

/// The outputs `[lo, hi)` whose input `o·s − p + off` lies inside `0..len`, for an
/// offset `off = j·d` (columns) or `i·d` (rows) of the kernel tap.
fn valid_range(g: &ConvGeometry, off: usize, len: usize, outs: usize) -> (usize, usize) {
    let (s, p) = (g.params.stride, g.params.padding);
    let lo = if p > off { (p - off).div_ceil(s) } else { 0 };
    let hi = if len + p > off { (len + p - off).div_ceil(s) } else { 0 };
    (lo.min(outs), hi.min(outs).max(lo.min(outs)))
}

/// Writes `im2col` of `samples` samples of `x` (NCHW, contiguous) into `cols`.
///
/// Only the taps inside the image are written: the entries for taps in the padding
/// must already be zero. A zeroed buffer satisfies that, and so does one this function
/// filled before for the same geometry and number of samples (the padding entries
/// sit at the same places). Skipping them saves two tiny fills per output row.
pub fn im2col<T: Element>(g: &ConvGeometry, x: &[T], samples: usize, cols: &mut [T]) {
    let (plane, width) = (g.out_plane(), samples * g.out_plane());
    let (taps, s, d, p) = (g.k_h * g.k_w, g.params.stride, g.params.dilation, g.params.padding);
    cols[..g.patch() * width].par_chunks_mut(width).enumerate().for_each(|(r, row)| {
        let (c, i, j) = (r / taps, (r / g.k_w) % g.k_h, r % g.k_w);
        let (lo, hi) = valid_range(g, j * d, g.in_w, g.out_w);
        let (top, bottom) = valid_range(g, i * d, g.in_h, g.out_h);
        if lo >= hi || top >= bottom {
            return;
        }
        let (first, run) = (lo * s + j * d - p, (hi - lo - 1) * s + 1);
        for (n, out) in row.chunks_exact_mut(plane).enumerate() {
            let src = &x[(n * g.cin + c) * g.in_plane()..][..g.in_plane()];
            for oh in top..bottom {
                let line = &mut out[oh * g.out_w + lo..][..hi - lo];
                let src = &src[(oh * s + i * d - p) * g.in_w + first..][..run];
                if s == 1 {
                    line.copy_from_slice(src);
                } else {
                    for (v, &x) in line.iter_mut().zip(src.iter().step_by(s)) {
                        *v = x;
                    }
                }
            }
        }
    });
}

/// Adds `col2im` of `cols` into `samples` samples of `dx` (NCHW, contiguous).
pub fn col2im<T: Element>(g: &ConvGeometry, cols: &[T], samples: usize, dx: &mut [T]) {
    let (plane, width) = (g.out_plane(), samples * g.out_plane());
    let (taps, s, d, p) = (g.k_h * g.k_w, g.params.stride, g.params.dilation, g.params.padding);
    dx[..samples * g.cin * g.in_plane()].par_chunks_mut(g.in_plane()).enumerate().for_each(|(nc, img)| {
        let (n, c) = (nc / g.cin, nc % g.cin);
        for i in 0..g.k_h {
            let (top, bottom) = valid_range(g, i * d, g.in_h, g.out_h);
            for j in 0..g.k_w {
                let (lo, hi) = valid_range(g, j * d, g.in_w, g.out_w);
                if lo >= hi || top >= bottom {
                    continue;
                }
                let row = &cols[(c * taps + i * g.k_w + j) * width + n * plane..][..plane];
                let (first, run) = (lo * s + j * d - p, (hi - lo - 1) * s + 1);
                for oh in top..bottom {
                    let line = &row[oh * g.out_w + lo..][..hi - lo];
                    let dst = &mut img[(oh * s + i * d - p) * g.in_w + first..][..run];
                    for (t, &v) in dst.iter_mut().step_by(s).zip(line) {
                        *t += v;
                    }
                }
            }
        }
    });
}
