//! The three convolution primitives on contiguous NCHW slices, one block of samples
//! at a time: unfold the block with [`im2col`], multiply once, fold or scatter back.
//!
//! With `cols = im2col(x)` of shape `(P, L)`, `P = C·kh·kw`, `L = n·H'·W'` for a block
//! of `n` samples and `Ŷ` the block's output arranged as `(O, L)`:
//! forward `Ŷ = W · cols`; adjoint `x = col2im(Wᵀ · Ŷ)`; weight gradient
//! `dW = Σ_blocks dŶ · colsᵀ`.

use rayon::prelude::*;

use crate::gemm::{matmul, Element, MatRef};
use crate::geometry::ConvGeometry;
use crate::im2col::{col2im, im2col};

/// `(n, O, H'·W')` (a block of the NCHW output) → `(O, n·H'·W')`.
fn gather<T: Element>(g: &ConvGeometry, y: &[T], samples: usize, mat: &mut [T]) {
    let plane = g.out_plane();
    mat[..g.cout * samples * plane].par_chunks_mut(samples * plane).enumerate().for_each(|(o, row)| {
        for (n, dst) in row.chunks_mut(plane).enumerate() {
            dst.copy_from_slice(&y[(n * g.cout + o) * plane..][..plane]);
        }
    });
}

/// `(O, n·H'·W')` → `(n, O, H'·W')`.
fn scatter<T: Element>(g: &ConvGeometry, mat: &[T], samples: usize, y: &mut [T]) {
    let plane = g.out_plane();
    y[..samples * g.cout * plane].par_chunks_mut(plane).enumerate().for_each(|(no, dst)| {
        let (n, o) = (no / g.cout, no % g.cout);
        dst.copy_from_slice(&mat[o * samples * plane + n * plane..][..plane]);
    });
}

/// Sample blocks `(first, len)` covering the batch.
fn blocks(g: &ConvGeometry) -> impl Iterator<Item = (usize, usize)> {
    let (chunk, batch) = (g.chunk(), g.batch);
    (0..batch).step_by(chunk).map(move |s| (s, chunk.min(batch - s)))
}

/// The im2col matrix `(P, n·H'·W')` of one block of samples, and the `(O, n·H'·W')`
/// matrix the block's output is reordered through (empty when blocks are single samples).
fn block_buffers<T: Element>(g: &ConvGeometry) -> (Vec<T>, Vec<T>) {
    let width = g.chunk() * g.out_plane();
    (vec![T::ZERO; g.patch() * width], vec![T::ZERO; if g.chunk() > 1 { g.cout * width } else { 0 }])
}

/// [`im2col`] of a block into `cols` from [`block_buffers`]: a short last block lays
/// its rows out differently, so its padding entries are zeroed first.
fn unfold<T: Element>(g: &ConvGeometry, x: &[T], n: usize, cols: &mut [T]) {
    if n != g.chunk() {
        cols.fill(T::ZERO);
    }
    im2col(g, x, n, cols);
}

fn check(what: &str, got: usize, want: usize) {
    assert_eq!(got, want, "{what}: {got} elements, the geometry needs {want}");
}

/// `y = W ⋆ x`: input `(N, C, H, W)`, kernel `(O, C, kh, kw)`, output `(N, O, H', W')`.
pub fn forward<T: Element>(g: &ConvGeometry, x: &[T], w: &[T]) -> Vec<T> {
    check("conv2d input", x.len(), g.input_len());
    check("conv2d kernel", w.len(), g.kernel_len());
    let (p, plane) = (g.patch(), g.out_plane());
    let mut y = vec![T::ZERO; g.output_len()];
    let (mut cols, mut mat) = block_buffers(g);
    for (first, n) in blocks(g) {
        let l = n * plane;
        unfold(g, &x[first * g.cin * g.in_plane()..], n, &mut cols);
        let out = &mut y[first * g.cout * plane..][..g.cout * l];
        if n == 1 {
            matmul(g.cout, l, p, out, false, MatRef::rows(w, p), MatRef::rows(&cols, l));
        } else {
            matmul(g.cout, l, p, &mut mat, false, MatRef::rows(w, p), MatRef::rows(&cols, l));
            scatter(g, &mat, n, out);
        }
    }
    y
}

/// The adjoint of [`forward`] in `x`: `dx = col2im(Wᵀ · dy)`, i.e. the transposed
/// convolution of `dy (N, O, H', W')` with `W (O, C, kh, kw)`, giving `(N, C, H, W)`.
pub fn adjoint<T: Element>(g: &ConvGeometry, dy: &[T], w: &[T]) -> Vec<T> {
    check("conv_transpose2d input", dy.len(), g.output_len());
    check("conv_transpose2d kernel", w.len(), g.kernel_len());
    let (p, plane) = (g.patch(), g.out_plane());
    let mut dx = vec![T::ZERO; g.input_len()];
    let (mut cols, mut mat) = block_buffers(g);
    for (first, n) in blocks(g) {
        let l = n * plane;
        let block = &dy[first * g.cout * plane..][..g.cout * l];
        let rhs = if n == 1 {
            block
        } else {
            gather(g, block, n, &mut mat);
            &mat[..g.cout * l]
        };
        matmul(p, l, g.cout, &mut cols, false, MatRef::transposed(w, p), MatRef::rows(rhs, l));
        col2im(g, &cols, n, &mut dx[first * g.cin * g.in_plane()..]);
    }
    dx
}

/// `∂⟨W ⋆ x, dy⟩/∂W = Σₙ dyₙ · im2col(xₙ)ᵀ`, shape `(O, C, kh, kw)`.
pub fn weight_grad<T: Element>(g: &ConvGeometry, x: &[T], dy: &[T]) -> Vec<T> {
    check("conv2d weight gradient input", x.len(), g.input_len());
    check("conv2d weight gradient output gradient", dy.len(), g.output_len());
    let (p, plane) = (g.patch(), g.out_plane());
    let mut dw = vec![T::ZERO; g.kernel_len()];
    let (mut cols, mut mat) = block_buffers(g);
    for (i, (first, n)) in blocks(g).enumerate() {
        let l = n * plane;
        unfold(g, &x[first * g.cin * g.in_plane()..], n, &mut cols);
        let block = &dy[first * g.cout * plane..][..g.cout * l];
        let lhs = if n == 1 {
            block
        } else {
            gather(g, block, n, &mut mat);
            &mat[..g.cout * l]
        };
        matmul(g.cout, p, l, &mut dw, i > 0, MatRef::rows(lhs, l), MatRef::transposed(&cols, l));
    }
    dw
}
