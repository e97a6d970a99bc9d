//! `im2col` unfolds every receptive field of a block of samples into one row of an
//! `(n·H'·W') × (kh·kw·C)` matrix; `col2im` is its adjoint, summing each row back into
//! the pixels it came from. Both work on channels-last images `(n, H, W, C)`.
//!
//! Row `l = (s·H' + oh)·W' + ow` holds, at column `(i·kw + j)·C + c`, the input pixel
//! `(s, oh·st − p + i·d, ow·st − p + j·d, c)` (zero outside the image). With the
//! channels innermost, the taps of one kernel row that fall inside the image are one
//! contiguous run of `C` values per tap (of `C·taps` values when the dilation is 1),
//! so both functions move whole runs instead of single pixels — what makes them cheap
//! on the 4×4 and 8×8 planes of the DCGAN layers.

use std::mem::MaybeUninit;

use crate::borders::Borders;
use crate::gemm::Element;
use crate::geometry::ConvGeometry;
use crate::threads::Plan;
use crate::uninit::fill;

/// The kernel taps `[lo, hi)` whose input `o·s − p + t·d` lies inside `0..len`, for
/// an output position `o` along one axis.
pub(crate) fn valid_taps(g: &ConvGeometry, o: usize, len: usize, taps: usize) -> (usize, usize) {
    let (s, p, d) = (g.params.stride, g.params.padding, g.params.dilation);
    let start = o * s;
    let lo = if p > start { (p - start).div_ceil(d) } else { 0 };
    let hi = if len + p > start { (len + p - start).div_ceil(d) } else { 0 };
    (lo.min(taps), hi.min(taps).max(lo.min(taps)))
}

/// The contiguous runs `(tap, input position, taps)` of kernel taps `[lo, hi)` along
/// the width: one run when the dilation is 1, one per tap otherwise.
fn runs(g: &ConvGeometry, ow: usize, (lo, hi): (usize, usize)) -> impl Iterator<Item = (usize, usize, usize)> {
    let (s, p, d) = (g.params.stride, g.params.padding, g.params.dilation);
    let step = if d == 1 { (hi - lo).max(1) } else { 1 };
    (lo..hi).step_by(step).map(move |j| (j, ow * s + j * d - p, step))
}

/// Writes `im2col` of `samples` channels-last samples `x` into the front of `cols`
/// (every entry of those rows: the taps in the padding as zeros), row by row as
/// [`Unfolded::row_into`] reads them.
pub fn im2col<T: Element>(g: &ConvGeometry, plan: &Plan, x: &[T], samples: usize, cols: &mut [T]) {
    let (u, p) = (Unfolded::new(g, x, samples), g.patch());
    let row_len = g.out_w * p;
    plan.for_each_chunk(&mut cols[..samples * g.out_h * row_len], row_len, |r, rows| {
        for (ow, row) in rows.chunks_exact_mut(p).enumerate() {
            u.row_into(r * g.out_w + ow, 0, row);
        }
    });
}

/// Writes `col2im` of `cols` into `samples` channels-last samples `dx`, every value
/// of `dx[..samples·H·W·C]`. Each input row gathers the output rows whose receptive
/// fields cover it, so rows can be filled independently.
pub fn col2im<T: Element>(g: &ConvGeometry, plan: &Plan, cols: &[T], samples: usize, dx: &mut [MaybeUninit<T>]) {
    let (c, p, d) = (g.cin, g.patch(), g.params.dilation);
    let (s, pad) = (g.params.stride, g.params.padding);
    let row_len = g.in_w * c;
    plan.for_each_chunk(&mut dx[..samples * g.in_h * row_len], row_len, |r, line| {
        let (n, ih) = (r / g.in_h, r % g.in_h);
        let line = fill(line, T::ZERO);
        for i in 0..g.k_h {
            let Some(span) = (ih + pad).checked_sub(i * d) else { break };
            if span % s != 0 || span / s >= g.out_h {
                continue;
            }
            let first = ((n * g.out_h + span / s) * g.out_w) * p;
            for (ow, row) in cols[first..][..g.out_w * p].chunks_exact(p).enumerate() {
                for (j, iw, taps) in runs(g, ow, valid_taps(g, ow, g.in_w, g.k_w)) {
                    let src = &row[(i * g.k_w + j) * c..][..taps * c];
                    for (t, &v) in line[iw * c..][..taps * c].iter_mut().zip(src) {
                        *t += v;
                    }
                }
            }
        }
    });
}

/// The im2col matrix of a block of channels-last samples, never stored: a GEMM's
/// packing copies the parts it needs straight from the images ([`Self::row_into`]),
/// which saves writing the whole matrix and reading it back (it is up to 8 MiB per
/// thread on the DCGAN layers, past the L2 cache).
#[derive(Clone, Copy)]
pub struct Unfolded<'a, T> {
    g: &'a ConvGeometry,
    x: &'a [T],
    samples: usize,
}

impl<'a, T: Element> Unfolded<'a, T> {
    /// `im2col` of the first `samples` channels-last samples of `x`.
    pub fn new(g: &'a ConvGeometry, x: &'a [T], samples: usize) -> Self {
        assert!(x.len() >= samples * g.in_plane() * g.cin, "unfold: {} values for {samples} samples", x.len());
        Self { g, x, samples }
    }

    /// Rows `n·H'·W'`.
    pub fn rows(&self) -> usize {
        self.samples * self.g.out_plane()
    }

    /// Columns `kh·kw·C`.
    pub fn cols(&self) -> usize {
        self.g.patch()
    }

    /// The rows grouped by the taps they see inside the images, where enough fall in
    /// the padding to be worth skipping.
    pub(crate) fn borders(&self) -> Option<Borders> {
        Borders::new(self.g, self.samples)
    }

    /// Writes columns `p0..p0 + dst.len()` of row `l` into `dst`: what `im2col` puts
    /// there (zeros for the taps in the padding), copied in runs of whole taps.
    pub fn row_into(&self, l: usize, p0: usize, dst: &mut [T]) {
        let g = self.g;
        let (c, kw, d) = (g.cin, g.k_w, g.params.dilation);
        let (s, pad) = (g.params.stride, g.params.padding);
        let (n, oh, ow) = (l / g.out_plane(), (l / g.out_w) % g.out_h, l % g.out_w);
        let image = &self.x[n * g.in_plane() * c..][..g.in_plane() * c];
        let (top, bottom) = valid_taps(g, oh, g.in_h, g.k_h);
        let (lo, hi) = valid_taps(g, ow, g.in_w, kw);
        let (row_len, mut q, mut out) = (kw * c, p0, &mut dst[..]);
        while !out.is_empty() {
            let (i, within) = (q / row_len, q % row_len);
            let (j, ch) = (within / c, within % c);
            // The run from `within` to the next change: padding before `lo`, the
            // image from `lo` to `hi` (one tap at a time when dilated), padding after.
            let row_inside = (top..bottom).contains(&i);
            let inside = row_inside && (lo..hi).contains(&j);
            let end = if !row_inside || j >= hi {
                row_len
            } else if j < lo {
                lo * c
            } else if d == 1 {
                hi * c
            } else {
                (j + 1) * c
            };
            let (run, rest) = out.split_at_mut((end - within).min(out.len()));
            if inside {
                let (ih, iw) = (oh * s + i * d - pad, ow * s + j * d - pad);
                run.copy_from_slice(&image[(ih * g.in_w + iw) * c + ch..][..run.len()]);
            } else {
                run.fill(T::ZERO);
            }
            (q, out) = (q + run.len(), rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::ConvParams;
    use crate::image_layout::ImageLayout;

    /// The stored `im2col` matrix and every row of [`Unfolded`], read in pieces that
    /// start and end anywhere (inside taps, across kernel rows), equal the definition
    /// entry by entry — `x[n, oh·s − p + i·d, ow·s − p + j·d, c]`, zero outside the
    /// image: strides, padding on every side, dilation, one and several channels.
    #[test]
    fn unfolded_rows_match_the_definition() {
        let cases = [
            ([2, 3, 9, 7], [4, 3, 4, 4], ConvParams::new(2, 1)),
            ([1, 5, 6, 6], [2, 5, 3, 3], ConvParams::new(1, 2)),
            ([2, 2, 8, 9], [3, 2, 3, 2], ConvParams { dilation: 2, ..ConvParams::new(1, 1) }),
            ([3, 1, 4, 4], [2, 1, 4, 4], ConvParams::new(1, 0)),
        ];
        for (input, kernel, params) in cases {
            let g = ConvGeometry::new(input, kernel, params.with_layout(ImageLayout::Nhwc)).unwrap();
            let x: Vec<f32> = (0..g.input_len()).map(|i| i as f32 + 1.0).collect();
            let (s, p, d) = (params.stride as isize, params.padding as isize, params.dilation as isize);
            let entry = |l: usize, col: usize| {
                let (n, oh, ow) = (l / g.out_plane(), ((l / g.out_w) % g.out_h) as isize, (l % g.out_w) as isize);
                let (i, j, c) = ((col / g.cin / g.k_w) as isize, (col / g.cin) % g.k_w, col % g.cin);
                let (ih, iw) = (oh * s - p + i * d, ow * s - p + j as isize * d);
                let inside = (0..g.in_h as isize).contains(&ih) && (0..g.in_w as isize).contains(&iw);
                let at = || ((n * g.in_h + ih as usize) * g.in_w + iw as usize) * g.cin + c;
                if inside {
                    x[at()]
                } else {
                    0.0
                }
            };
            let plan = Plan { chunk: g.batch, group: g.batch, threaded: false };
            let mut cols = vec![f32::NAN; g.batch * g.out_plane() * g.patch()];
            im2col(&g, &plan, &x, g.batch, &mut cols);
            let u = Unfolded::new(&g, &x, g.batch);
            assert_eq!((u.rows(), u.cols()), (g.batch * g.out_plane(), g.patch()));
            for (l, stored) in cols.chunks_exact(g.patch()).enumerate() {
                let want: Vec<f32> = (0..g.patch()).map(|col| entry(l, col)).collect();
                assert_eq!(stored, want, "{input:?} {kernel:?} {params:?} stored row {l}");
                for piece in [1, 2, 5, g.patch()] {
                    let mut got = vec![f32::NAN; g.patch()];
                    for (k, part) in got.chunks_mut(piece).enumerate() {
                        u.row_into(l, k * piece, part);
                    }
                    assert_eq!(got, want, "{input:?} {kernel:?} {params:?} row {l} in pieces of {piece}");
                }
            }
        }
    }
}
