//! Which kernel taps each output pixel of a padded convolution sees inside its image.
//!
//! In a product whose rows are output pixels — the forward `cols · Wcᵀ`, with `cols`'
//! columns as `K`, and the adjoint `dŶᵀ · Wc`, whose `N` columns are `cols`' — the
//! taps in the padding contribute zeros (forward) or values `col2im` drops (adjoint).
//! On the DCGAN layers (4×4 kernels, stride 2, padding 1) that is 6 %, 12 % and 23 %
//! of the products on 32², 16² and 8² inputs. [`Borders`] orders the pixels by the
//! rectangle of taps they see, so that the GEMM's slivers of rows mostly share one
//! and can skip the rest.

use crate::geometry::ConvGeometry;
use crate::im2col::valid_taps;

/// Below this fraction of taps in the padding the reordering is not worth it.
const WORTH_SKIPPING: f64 = 0.04;

/// The kernel taps inside the image: kernel rows `rows.0..rows.1`, columns `cols.0..cols.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taps {
    rows: (usize, usize),
    cols: (usize, usize),
}

impl Taps {
    /// The smallest rectangle holding both.
    fn hull(self, other: Taps) -> Taps {
        let span = |a: (usize, usize), b: (usize, usize)| (a.0.min(b.0), a.1.max(b.1));
        Taps { rows: span(self.rows, other.rows), cols: span(self.cols, other.cols) }
    }

    fn is_empty(&self) -> bool {
        self.rows.0 >= self.rows.1 || self.cols.0 >= self.cols.1
    }

    /// The im2col columns of these taps (kernel `kw` wide, `c` channels) within
    /// `lo..hi`, as ascending disjoint intervals, adjacent ones merged.
    pub(crate) fn spans(self, kw: usize, c: usize, lo: usize, hi: usize) -> impl Iterator<Item = (usize, usize)> {
        let whole_rows = self.cols == (0, kw);
        let step = if whole_rows { (self.rows.1 - self.rows.0).max(1) } else { 1 };
        (self.rows.0..self.rows.1).step_by(step).filter_map(move |i| {
            let last = if whole_rows { self.rows.1 - 1 } else { i };
            let (a, b) = ((i * kw + self.cols.0) * c, (last * kw + self.cols.1) * c);
            let (a, b) = (a.max(lo), b.min(hi));
            (a < b).then_some((a, b))
        })
    }
}

/// The output pixels of a block of samples (rows `(s·H' + oh)·W' + ow`, as `im2col`'s),
/// grouped by the taps they see.
pub(crate) struct Borders {
    /// Product row → pixel row, each group's pixels in their natural order.
    order: Vec<usize>,
    /// Each group's first product row (ascending) and taps.
    groups: Vec<(usize, Taps)>,
    kw: usize,
    c: usize,
}

impl Borders {
    /// `None` where too few taps fall in the padding to be worth skipping.
    pub(crate) fn new(g: &ConvGeometry, samples: usize) -> Option<Borders> {
        let along = |outs: usize, len: usize, taps: usize| -> Vec<((usize, usize), Vec<usize>)> {
            let mut classes: Vec<((usize, usize), Vec<usize>)> = Vec::new();
            for o in 0..outs {
                let t = valid_taps(g, o, len, taps);
                match classes.iter_mut().find(|(seen, _)| *seen == t) {
                    Some((_, members)) => members.push(o),
                    None => classes.push((t, vec![o])),
                }
            }
            classes
        };
        let (down, across) = (along(g.out_h, g.in_h, g.k_h), along(g.out_w, g.in_w, g.k_w));
        let seen: usize = down
            .iter()
            .flat_map(|(r, rows)| {
                across.iter().map(move |(c, cols)| (r.1 - r.0) * (c.1 - c.0) * rows.len() * cols.len())
            })
            .sum();
        let skipped = 1.0 - seen as f64 / (g.out_plane() * g.k_h * g.k_w).max(1) as f64;
        if skipped < WORTH_SKIPPING {
            return None;
        }
        let mut order = Vec::with_capacity(samples * g.out_plane());
        let mut groups = Vec::with_capacity(down.len() * across.len());
        for (rows, ohs) in &down {
            for (cols, ows) in &across {
                groups.push((order.len(), Taps { rows: *rows, cols: *cols }));
                for s in 0..samples {
                    for &oh in ohs {
                        order.extend(ows.iter().map(|&ow| (s * g.out_h + oh) * g.out_w + ow));
                    }
                }
            }
        }
        Some(Borders { order, groups, kw: g.k_w, c: g.cin })
    }

    /// The pixel rows of product rows `i..i + rows` and the taps any of them sees
    /// (`None` when they see none: nothing to skip then).
    pub(crate) fn sliver(&self, i: usize, rows: usize) -> (&[usize], Option<Taps>) {
        let end = i + rows;
        let mut hull: Option<Taps> = None;
        for (start, stop, taps) in self.ranges() {
            if start < end && i < stop && !taps.is_empty() {
                hull = Some(hull.map_or(taps, |h| h.hull(taps)));
            }
        }
        (&self.order[i..end], hull)
    }

    /// Product row (or depth) → pixel row.
    pub(crate) fn order(&self) -> &[usize] {
        &self.order
    }

    /// The ranges of product rows (ascending) whose pixels see any of im2col columns
    /// `j0..j1`: a weight gradient's depths for those columns.
    pub(crate) fn seeing(&self, j0: usize, j1: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.ranges().filter_map(move |(start, stop, taps)| self.spans(taps, j0, j1).next().map(|_| (start, stop)))
    }

    /// Each group's product rows `start..stop` and taps.
    fn ranges(&self) -> impl Iterator<Item = (usize, usize, Taps)> + '_ {
        let stops = self.groups.iter().skip(1).map(|next| next.0).chain([self.order.len()]);
        self.groups.iter().zip(stops).map(|(&(start, taps), stop)| (start, stop, taps))
    }

    /// [`Taps::spans`] for this geometry.
    pub(crate) fn spans(&self, taps: Taps, lo: usize, hi: usize) -> impl Iterator<Item = (usize, usize)> {
        taps.spans(self.kw, self.c, lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::ConvParams;
    use crate::image_layout::ImageLayout;

    fn geometry(input: [usize; 4], kernel: [usize; 4], params: ConvParams) -> ConvGeometry {
        ConvGeometry::new(input, kernel, params.with_layout(ImageLayout::Nhwc)).unwrap()
    }

    /// Every pixel appears once; every sliver's taps cover, column for column, every
    /// im2col entry of its pixels that lies inside the image (brute force over the
    /// definition, `(oh·s − p + i·d, ow·s − p + j·d)` inside `H × W`).
    #[test]
    fn slivers_see_every_tap_inside_the_image() {
        let cases = [
            ([3, 2, 8, 8], [4, 2, 4, 4], ConvParams::new(2, 1)),
            ([2, 3, 16, 12], [2, 3, 4, 4], ConvParams::new(2, 1)),
            ([2, 1, 7, 9], [1, 1, 3, 3], ConvParams::new(1, 2)),
            ([1, 2, 9, 9], [1, 2, 3, 3], ConvParams { dilation: 2, ..ConvParams::new(1, 2) }),
        ];
        for (input, kernel, params) in cases {
            let g = geometry(input, kernel, params);
            let b = Borders::new(&g, g.batch).expect("these layers have taps in the padding");
            let mut seen = b.order.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..g.batch * g.out_plane()).collect::<Vec<_>>(), "{input:?}");
            let (s, p, d) = (params.stride as isize, params.padding as isize, params.dilation as isize);
            for mr in [1, 5, 12] {
                for i in (0..b.order.len()).step_by(mr) {
                    let rows = mr.min(b.order.len() - i);
                    let (pixels, taps) = b.sliver(i, rows);
                    let spans: Vec<_> = taps.map(|t| b.spans(t, 0, g.patch()).collect()).unwrap_or_default();
                    for &l in pixels {
                        let (oh, ow) = (((l / g.out_w) % g.out_h) as isize, (l % g.out_w) as isize);
                        for col in 0..g.patch() {
                            let (i, j) = ((col / g.cin / g.k_w) as isize, ((col / g.cin) % g.k_w) as isize);
                            let (ih, iw) = (oh * s - p + i * d, ow * s - p + j * d);
                            let inside = (0..g.in_h as isize).contains(&ih) && (0..g.in_w as isize).contains(&iw);
                            let covered = spans.iter().any(|&(a, z)| (a..z).contains(&col));
                            assert!(!inside || covered, "{input:?} pixel {l} column {col} not covered");
                        }
                    }
                }
            }
        }
    }

    /// The taps of a corner pixel, and the merged spans of whole kernel rows.
    #[test]
    fn spans_are_the_rectangles_columns() {
        let corner = Taps { rows: (1, 4), cols: (1, 4) };
        assert_eq!(corner.spans(4, 2, 0, 32).collect::<Vec<_>>(), [(10, 16), (18, 24), (26, 32)]);
        assert_eq!(corner.spans(4, 2, 12, 20).collect::<Vec<_>>(), [(12, 16), (18, 20)]);
        let top = Taps { rows: (1, 4), cols: (0, 4) };
        assert_eq!(top.spans(4, 2, 0, 32).collect::<Vec<_>>(), [(8, 32)]);
        assert_eq!(top.spans(4, 2, 0, 8).count(), 0);
    }

    /// The forward product with the padding's columns skipped gives the bits of the
    /// one over the stored im2col matrix; the adjoint's, with the skipped entries left
    /// as NaN, folds (`col2im`) to the bits of the full product's; the weight
    /// gradient's matches the f64 sums: at every level whose GEMM skips, in slivers
    /// that straddle groups and in ones that do not.
    #[test]
    fn skipping_the_padding_changes_no_bits() {
        use crate::gemm::{matmul, matmul_patches, matmul_to, matmul_unfolded_to, MatRef, Side};
        use crate::im2col::{col2im, im2col, Unfolded};
        use crate::isa::{with_isa, Isa};
        use crate::threads::Plan;

        let value = |i: usize, seed: usize| ((i * 7919 + seed * 104729) % 1999) as f32 / 999.5 - 1.0;
        let cases = [
            ([5, 16, 8, 8], [40, 16, 4, 4], ConvParams::new(2, 1)),
            ([3, 64, 16, 16], [33, 64, 4, 4], ConvParams::new(2, 1)),
            ([2, 40, 9, 7], [36, 40, 3, 3], ConvParams::new(1, 2)),
        ];
        for isa in [Isa::Avx2, Isa::Avx512].into_iter().filter(|isa| isa.supported()) {
            for (input, kernel, params) in cases {
                let g = geometry(input, kernel, params);
                let (m, n, o) = (g.batch * g.out_plane(), g.patch(), g.cout);
                assert!(Borders::new(&g, g.batch).is_some(), "{input:?}: a case that skips");
                let x: Vec<f32> = (0..g.input_len()).map(|i| value(i, 1)).collect();
                let wt: Vec<f32> = (0..n * o).map(|i| value(i, 2)).collect();
                let dy: Vec<f32> = (0..m * o).map(|i| value(i, 3)).collect();
                let plan = Plan { chunk: g.batch, group: g.batch, threaded: true };
                let mut cols = vec![0f32; m * n];
                im2col(&g, &plan, &x, g.batch, &mut cols);
                with_isa(isa, || {
                    let (mut stored, mut skipped) = (vec![0f32; m * o], vec![0f32; m * o]);
                    let wt = MatRef::rows(&wt, o);
                    fn uninit(v: &mut [f32]) -> &mut [std::mem::MaybeUninit<f32>] {
                        // SAFETY: the vectors are initialised and only ever get values stored.
                        unsafe { crate::uninit::as_uninit(v) }
                    }
                    matmul_to(m, o, n, uninit(&mut stored), MatRef::rows(&cols, n), wt, true);
                    let u = Unfolded::new(&g, &x, g.batch);
                    assert!(matmul_unfolded_to((m, o, n), uninit(&mut skipped), u, Side::Lhs, wt, true));
                    assert!(stored == skipped, "{isa:?} {input:?}: forward");

                    let (dyt, wc) = (MatRef::rows(&dy, o), MatRef::transposed(wt.data, o));
                    let (mut full, mut partial) = (vec![0f32; m * n], vec![f32::NAN; m * n]);
                    matmul(m, n, o, &mut full, false, dyt, wc, true);
                    matmul_patches((m, n, o), &mut partial, dyt, wc, &g, g.batch, true);
                    assert!(partial.iter().any(|v| v.is_nan()), "{isa:?} {input:?}: nothing skipped");
                    let fold = |c: &[f32]| {
                        let mut dx = vec![0f32; g.input_len()];
                        // SAFETY: as above.
                        col2im(&g, &plan, c, g.batch, unsafe { crate::uninit::as_uninit(&mut dx) });
                        dx
                    };
                    assert!(fold(&full) == fold(&partial), "{isa:?} {input:?}: adjoint");

                    // The weight gradient sums its pixels in the borders' order: within
                    // rounding of the f64 sums over the stored matrix.
                    let mut dwc = vec![f32::NAN; o * n];
                    let (dyt, u) = (MatRef::transposed(&dy, o), Unfolded::new(&g, &x, g.batch));
                    assert!(matmul_unfolded_to((o, n, m), uninit(&mut dwc), u, Side::Rhs, dyt, true));
                    for (e, &got) in dwc.iter().enumerate() {
                        let (oc, col) = (e / n, e % n);
                        let terms = (0..m).map(|l| dy[l * o + oc] as f64 * cols[l * n + col] as f64);
                        let (want, scale) = terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()));
                        assert!((got as f64 - want).abs() <= 1e-5 * scale.max(1e-30), "{isa:?} {input:?}: dW[{e}]");
                    }
                });
            }
        }
    }

    /// Unpadded layers, and 64² inputs (3 % in the padding), are left alone.
    #[test]
    fn layers_with_little_padding_are_not_reordered() {
        assert!(Borders::new(&geometry([2, 3, 8, 8], [2, 3, 3, 3], ConvParams::new(1, 0)), 2).is_none());
        assert!(Borders::new(&geometry([2, 3, 64, 64], [2, 3, 4, 4], ConvParams::new(2, 1)), 2).is_none());
        assert!(Borders::new(&geometry([2, 3, 32, 32], [2, 3, 4, 4], ConvParams::new(2, 1)), 2).is_some());
    }
}
