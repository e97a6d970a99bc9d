//! The three convolution primitives on contiguous slices, one block of samples at a
//! time: unfold the block with [`im2col`] (from channels-last images), multiply once,
//! fold or write back.
//!
//! With `cols = im2col(x)` of shape `(L, P)`, `L = n·H'·W'` for a block of `n`
//! samples, `P = kh·kw·C`, the kernel reordered to `Wc (O, P)`: forward
//! `Ŷᵀ = cols · Wcᵀ` (or `Ŷ = Wc · colsᵀ`); adjoint `x = col2im(dŶᵀ · Wc)`; weight
//! gradient `dWc = Σ_blocks dŶ · cols`.
//!
//! On NHWC images ([`ImageLayout::Nhwc`](crate::ImageLayout)) `(L, O)` *is* the
//! block's output and `im2col` / `col2im` read and write the block's images as they
//! lie, so nothing is reordered but the kernel; where ganzoo's GEMM runs the product
//! (`f32` at AVX2 / AVX-512), the forward pass and the weight gradient do not store
//! `cols` at all: the GEMM's packing copies it from the images ([`Unfolded`]), and the
//! products leave out the kernel taps in the padding; the adjoint does not store
//! `dŶᵀ · Wc` either where a block runs on one thread: each tile of the product is
//! added into `x` as it leaves the registers (`col2im` inside the GEMM). On NCHW
//! images the input side goes through a channels-last copy and the output side is
//! `(O, L)`, the NCHW output up to a reordering of whole planes (none at all for a
//! single sample).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::gemm::{
    matmul, matmul_folded, matmul_patches, matmul_to, matmul_unfolded_into, matmul_unfolded_to, Element, MatRef, Side,
};
use crate::geometry::ConvGeometry;
use crate::im2col::{col2im, im2col, Unfolded};
use crate::scratch::Scratch;
use crate::threads::Plan;
use crate::transpose::{
    from_channels_last, kernel_from_channels_last, kernel_to_channels_last, kernel_to_patch_major, to_channels_last,
};
use crate::uninit::{as_uninit, write_slice, written};
use crate::winograd;

/// One thread's working space for a block of samples: the input images channels-last
/// `(n, H·W, C)`, their im2col matrix `(n·H'·W', P)` and the output as `(O, n·H'·W')`,
/// taken from the thread's pool (every value is written before it is read). NHWC
/// images need neither `image` nor `out` (both stay empty).
struct Buffers<T: Element> {
    image: Scratch<T>,
    cols: Scratch<T>,
    out: Scratch<T>,
}

impl<T: Element> Buffers<T> {
    fn new(g: &ConvGeometry, plan: &Plan) -> Self {
        let rows = plan.chunk * g.out_plane();
        let nchw = !g.params.channels_last();
        Self {
            image: Scratch::take(if nchw { plan.chunk * g.cin * g.in_plane() } else { 0 }),
            cols: Scratch::take(rows * g.patch()),
            out: Scratch::take(if nchw { rows * g.cout } else { 0 }),
        }
    }

    /// Unfolds a block of `n` samples into `cols`, NCHW ones through `image`.
    fn unfold(&mut self, g: &ConvGeometry, plan: &Plan, x: &[T], n: usize) {
        if g.params.channels_last() {
            im2col(g, plan, x, n, &mut self.cols);
        } else {
            to_channels_last(plan, x, g.cin, g.in_plane(), n, &mut self.image);
            im2col(g, plan, &self.image, n, &mut self.cols);
        }
    }
}

/// A block of `n` samples' output (gradient) as an `(O, n·H'·W')` matrix: NCHW planes
/// gathered into `mat`, NHWC rows read transposed.
fn by_channel<'a, T: Element>(g: &ConvGeometry, plan: &Plan, y: &'a [T], n: usize, mat: &'a mut [T]) -> MatRef<'a, T> {
    if g.params.channels_last() {
        MatRef::transposed(y, g.cout)
    } else {
        MatRef::rows(gather(g, plan, y, n, mat), n * g.out_plane())
    }
}

/// Blocks of `(samples, a, b)`: matching slices of an operand `a` with `a_len` values
/// per sample and a result `b` with `b_len` per sample.
fn block_pairs<'a, T, U>(
    plan: &Plan,
    a: &'a [T],
    a_len: usize,
    b: &'a mut [U],
    b_len: usize,
) -> impl Iterator<Item = (usize, &'a [T], &'a mut [U])> {
    a.chunks(plan.chunk * a_len).zip(b.chunks_mut(plan.chunk * b_len)).map(move |(a, b)| (a.len() / a_len, a, b))
}

/// `(n, O, H'·W')` (a block of the NCHW output) → `(O, n·H'·W')`.
fn gather<'a, T: Element>(g: &ConvGeometry, plan: &Plan, y: &'a [T], samples: usize, mat: &'a mut [T]) -> &'a [T] {
    if samples == 1 {
        return y;
    }
    let plane = g.out_plane();
    plan.for_each_chunk(&mut mat[..g.cout * samples * plane], samples * plane, |o, row| {
        for (n, dst) in row.chunks_mut(plane).enumerate() {
            dst.copy_from_slice(&y[(n * g.cout + o) * plane..][..plane]);
        }
    });
    mat
}

/// `(O, n·H'·W')` → `(n, O, H'·W')`, writing all of `y[..n·O·H'·W']`.
fn scatter<T: Element>(g: &ConvGeometry, plan: &Plan, mat: &[T], samples: usize, y: &mut [MaybeUninit<T>]) {
    let plane = g.out_plane();
    plan.for_each_chunk(&mut y[..samples * g.cout * plane], plane, |no, dst| {
        let (n, o) = (no / g.cout, no % g.cout);
        write_slice(dst, &mat[o * samples * plane + n * plane..][..plane]);
    });
}

fn check(what: &str, got: usize, want: usize) {
    assert_eq!(got, want, "{what}: {got} elements, the geometry needs {want}");
}

/// `y = W ⋆ x`: input `(N, C, H, W)`, kernel `(O, C, kh, kw)`, output `(N, O, H', W')`
/// (input and output `(N, H, W, C)` and `(N, H', W', O)` on NHWC images).
pub fn forward<T: Element>(g: &ConvGeometry, x: &[T], w: &[T]) -> Vec<T> {
    check("conv2d input", x.len(), g.input_len());
    check("conv2d kernel", w.len(), g.kernel_len());
    if g.winograd() {
        return winograd::forward(g, x, w);
    }
    let (plan, channels_last) = (Plan::new(g), g.output_channels_last() || g.params.channels_last());
    let (xs, ys) = (g.cin * g.in_plane(), g.cout * g.out_plane());
    let taps = g.k_h * g.k_w;
    let kernel =
        if channels_last { kernel_to_patch_major(w, g.cin, taps) } else { kernel_to_channels_last(w, g.cin, taps) };
    let write = |y: &mut [MaybeUninit<T>]| {
        y.par_chunks_mut(plan.group * ys).zip(x.par_chunks(plan.group * xs)).for_each(|(y, x)| {
            let mut buf = None;
            for (n, x, y) in block_pairs(&plan, x, xs, y, ys) {
                // NHWC: `Ŷᵀ = cols · Wcᵀ` with `cols` unfolded while packing, where the
                // GEMM can; else stored first.
                if g.params.channels_last() {
                    let (shape, wt) = ((n * g.out_plane(), g.cout, g.patch()), MatRef::rows(&kernel, g.cout));
                    if matmul_unfolded_to(shape, y, Unfolded::new(g, x, n), Side::Lhs, wt, plan.threaded) {
                        continue;
                    }
                }
                let buf = buf.get_or_insert_with(|| Buffers::new(g, &plan));
                buf.unfold(g, &plan, x, n);
                if channels_last {
                    multiply_channels_last(g, &plan, &kernel, buf, n, y);
                } else {
                    multiply_channels_first(g, &plan, &kernel, buf, n, y);
                }
            }
        })
    };
    // SAFETY: the blocks cover the output (`x` has exactly `batch` samples, checked
    // above) and `matmul_unfolded_to` (when it returns true) or `multiply_*` writes
    // its whole block.
    unsafe { written(g.output_len(), write) }
}

/// One unfolded block's output as `Ŷ = Wc · colsᵀ`, `(O, L)`: the GEMM writes the NCHW
/// planes itself but reads `cols` transposed, so it repacks the whole block. Writes
/// all of the block's `y`.
fn multiply_channels_first<T: Element>(
    g: &ConvGeometry,
    plan: &Plan,
    wc: &[T],
    buf: &mut Buffers<T>,
    n: usize,
    y: &mut [MaybeUninit<T>],
) {
    let (p, plane) = (g.patch(), g.out_plane());
    let (wc, cols) = (MatRef::rows(wc, p), MatRef::transposed(&buf.cols, p));
    if n == 1 {
        matmul_to(g.cout, plane, p, y, wc, cols, plan.threaded);
    } else {
        matmul(g.cout, n * plane, p, &mut buf.out, false, wc, cols, plan.threaded);
        scatter(g, plan, &buf.out, n, y);
    }
}

/// One unfolded block's output as `Ŷᵀ = cols · Wcᵀ`, `(L, O)`, with the kernel `wt`
/// already transposed (once per call): the GEMM reads `cols` as it lies and writes
/// NHWC output in place; for NCHW the result is transposed back. Writes all of the
/// block's `y`.
fn multiply_channels_last<T: Element>(
    g: &ConvGeometry,
    plan: &Plan,
    wt: &[T],
    buf: &mut Buffers<T>,
    n: usize,
    y: &mut [MaybeUninit<T>],
) {
    let (p, plane) = (g.patch(), g.out_plane());
    let (cols, wt) = (MatRef::rows(&buf.cols, p), MatRef::rows(wt, g.cout));
    if g.params.channels_last() {
        matmul_to(n * plane, g.cout, p, y, cols, wt, plan.threaded);
    } else {
        matmul(n * plane, g.cout, p, &mut buf.out, false, cols, wt, plan.threaded);
        from_channels_last(plan, &buf.out, g.cout, plane, n, y);
    }
}

/// The adjoint of [`forward`] in `x`: `dx = col2im(dyᵀ · Wc)`, i.e. the transposed
/// convolution of `dy (N, O, H', W')` with `W (O, C, kh, kw)`, giving `(N, C, H, W)`
/// (from `(N, H', W', O)` to `(N, H, W, C)` on NHWC images).
pub fn adjoint<T: Element>(g: &ConvGeometry, dy: &[T], w: &[T]) -> Vec<T> {
    check("conv_transpose2d input", dy.len(), g.output_len());
    check("conv_transpose2d kernel", w.len(), g.kernel_len());
    if g.winograd() {
        return winograd::adjoint(g, dy, w);
    }
    let (plan, p, plane) = (Plan::new(g), g.patch(), g.out_plane());
    let (xs, ys) = (g.cin * g.in_plane(), g.cout * plane);
    let wc = kernel_to_channels_last(w, g.cin, g.k_h * g.k_w);
    let write = |dx: &mut [MaybeUninit<T>]| {
        dx.par_chunks_mut(plan.group * xs).zip(dy.par_chunks(plan.group * ys)).for_each(|(dx, dy)| {
            let mut buf = None;
            for (n, dy, dx) in block_pairs(&plan, dy, ys, dx, xs) {
                let (shape, wc) = ((n * plane, p, g.cout), MatRef::rows(&wc, p));
                // NHWC on one thread: the product's tiles are added into `dx` as they
                // are computed, where the GEMM can; else stored, then folded.
                if g.params.channels_last()
                    && !plan.threaded
                    && matmul_folded(shape, dx, MatRef::rows(dy, g.cout), wc, g, n)
                {
                    continue;
                }
                let buf = buf.get_or_insert_with(|| Buffers::new(g, &plan));
                // `dyᵀ`, `(L, O)`: an NHWC block as it lies.
                let dyt = if g.params.channels_last() {
                    MatRef::rows(dy, g.cout)
                } else {
                    MatRef::transposed(gather(g, &plan, dy, n, &mut buf.out), n * plane)
                };
                // `col2im` reads only the taps inside the images: the rest may go unwritten.
                matmul_patches(shape, &mut buf.cols, dyt, wc, g, n, plan.threaded);
                if g.params.channels_last() {
                    col2im(g, &plan, &buf.cols, n, dx);
                } else {
                    // SAFETY: `col2im` stores only initialised values (zeros and sums).
                    col2im(g, &plan, &buf.cols, n, unsafe { as_uninit(&mut buf.image) });
                    from_channels_last(&plan, &buf.image, g.cin, g.in_plane(), n, dx);
                }
            }
        })
    };
    // SAFETY: the blocks cover the result (`dy` has exactly `batch` samples, checked
    // above) and `col2im` (NHWC) or `from_channels_last` (NCHW) writes each block's
    // samples whole.
    unsafe { written(g.input_len(), write) }
}

/// `∂⟨W ⋆ x, dy⟩/∂W = Σₙ dyₙ · im2col(xₙ)`, shape `(O, C, kh, kw)`, for images in
/// either layout. Each thread sums
/// its own samples; the partial sums are added in a fixed order, so the result does not
/// depend on which thread finished first.
pub fn weight_grad<T: Element>(g: &ConvGeometry, x: &[T], dy: &[T]) -> Vec<T> {
    check("conv2d weight gradient input", x.len(), g.input_len());
    check("conv2d weight gradient output gradient", dy.len(), g.output_len());
    if g.winograd() {
        return winograd::weight_grad(g, x, dy);
    }
    let (plan, p, plane) = (Plan::new(g), g.patch(), g.out_plane());
    let (xs, ys) = (g.cin * g.in_plane(), g.cout * plane);
    // Each thread's partial sum is a fresh vector that its first block's GEMM writes
    // whole (no zero-fill) and later blocks add to. (A pooled buffer would return to
    // the pool of the thread that adds the partial sums up, leaving the other thread
    // to allocate and zero a new one on every call.)
    let partial: Vec<Vec<T>> = x
        .par_chunks(plan.group * xs)
        .zip(dy.par_chunks(plan.group * ys))
        .map(|(x, dy)| {
            let mut dwc: Option<Vec<T>> = None;
            let mut buf = None;
            for (x, dy) in x.chunks(plan.chunk * xs).zip(dy.chunks(plan.chunk * ys)) {
                let n = x.len() / xs;
                if g.params.channels_last() && add_unfolded(g, &plan, &mut dwc, x, dy, n) {
                    continue;
                }
                let buf = buf.get_or_insert_with(|| Buffers::new(g, &plan));
                buf.unfold(g, &plan, x, n);
                let dy = by_channel(g, &plan, dy, n, &mut buf.out);
                let cols = MatRef::rows(&buf.cols, p);
                match dwc.as_mut() {
                    Some(sum) => matmul(g.cout, p, n * plane, sum, true, dy, cols, plan.threaded),
                    None => {
                        let first =
                            |d: &mut [MaybeUninit<T>]| matmul_to(g.cout, p, n * plane, d, dy, cols, plan.threaded);
                        // SAFETY: `matmul_to` writes all `O × P` values of the new vector.
                        dwc = Some(unsafe { written(g.kernel_len(), first) });
                    }
                }
            }
            dwc.unwrap_or_else(|| vec![T::ZERO; g.kernel_len()])
        })
        .collect();
    kernel_from_channels_last(&sum_in_order(partial, g.kernel_len()), g.cin, g.k_h * g.k_w)
}

/// The threads' partial sums added in their order (so a result does not depend on
/// which thread finished first); `len` zeros for none.
pub(crate) fn sum_in_order<T: Element>(parts: Vec<Vec<T>>, len: usize) -> Vec<T> {
    let mut parts = parts.into_iter();
    let Some(mut sum) = parts.next() else { return vec![T::ZERO; len] };
    for part in parts {
        sum.iter_mut().zip(&part).for_each(|(d, &v)| *d += v);
    }
    sum
}

/// One NHWC block's `dyᵀ · im2col(x)` with the im2col matrix unfolded while packing,
/// written into a new `dwc` or added to it; `false` (nothing done) where the GEMM cannot.
fn add_unfolded<T: Element>(
    g: &ConvGeometry,
    plan: &Plan,
    dwc: &mut Option<Vec<T>>,
    x: &[T],
    dy: &[T],
    n: usize,
) -> bool {
    let (shape, u) = ((g.cout, g.patch(), n * g.out_plane()), Unfolded::new(g, x, n));
    let dyt = MatRef::transposed(dy, g.cout);
    if let Some(sum) = dwc.as_mut() {
        return matmul_unfolded_into(shape, sum, u, Side::Rhs, dyt, plan.threaded);
    }
    let mut sum = Vec::with_capacity(g.kernel_len());
    if !matmul_unfolded_to(shape, &mut sum.spare_capacity_mut()[..g.kernel_len()], u, Side::Rhs, dyt, plan.threaded) {
        return false;
    }
    // SAFETY: `matmul_unfolded_to` took the product, so it wrote all `O × P` values.
    unsafe { sum.set_len(g.kernel_len()) };
    *dwc = Some(sum);
    true
}
