//! Moving data between the NCHW layout Candle's tensors use and the channels-last
//! layout the convolution kernels unfold: blocks of samples `(n, C, H·W) ↔ (n, H·W, C)`
//! and kernels `(O, C, kh·kw) ↔ (O, kh·kw, C)`, each a batch of matrix transposes.

use crate::gemm::Element;
use crate::threads::Plan;

/// Side of the square tiles a transpose works through: an 8×8 tile is read as eight
/// rows into registers and written as eight columns.
const TILE: usize = 8;

/// `dst (cols × rows) = srcᵀ` for a row-major `src (rows × cols)`.
fn transpose<T: Element>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    if rows == 1 || cols == 1 {
        dst.copy_from_slice(src);
        return;
    }
    let (full_rows, full_cols) = (rows - rows % TILE, cols - cols % TILE);
    for r0 in (0..full_rows).step_by(TILE) {
        for c0 in (0..full_cols).step_by(TILE) {
            let mut tile = [[T::ZERO; TILE]; TILE];
            for (i, line) in tile.iter_mut().enumerate() {
                line.copy_from_slice(&src[(r0 + i) * cols + c0..][..TILE]);
            }
            for j in 0..TILE {
                let out = &mut dst[(c0 + j) * rows + r0..][..TILE];
                for (o, line) in out.iter_mut().zip(&tile) {
                    *o = line[j];
                }
            }
        }
    }
    // The right edge (columns past the last full tile) and the bottom edge, one value at a time.
    for r in 0..rows {
        let first = if r < full_rows { full_cols } else { 0 };
        for (c, &v) in src[r * cols..][..cols].iter().enumerate().skip(first) {
            dst[c * rows + r] = v;
        }
    }
}

/// `(n, C, plane)` → `(n, plane, C)` into the front of `dst`.
pub fn to_channels_last<T: Element>(plan: &Plan, src: &[T], c: usize, plane: usize, n: usize, dst: &mut [T]) {
    let len = c * plane;
    plan.for_each_chunk(&mut dst[..n * len], len, |s, out| transpose(&src[s * len..][..len], c, plane, out));
}

/// `(n, plane, C)` → `(n, C, plane)` into the front of `dst`.
pub fn from_channels_last<T: Element>(plan: &Plan, src: &[T], c: usize, plane: usize, n: usize, dst: &mut [T]) {
    let len = c * plane;
    plan.for_each_chunk(&mut dst[..n * len], len, |s, out| transpose(&src[s * len..][..len], plane, c, out));
}

/// A kernel `(O, C, taps)` → `(O, taps, C)`.
pub fn kernel_to_channels_last<T: Element>(w: &[T], c: usize, taps: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; w.len()];
    for (src, dst) in w.chunks_exact(c * taps).zip(out.chunks_exact_mut(c * taps)) {
        transpose(src, c, taps, dst);
    }
    out
}

/// A kernel `(O, taps, C)` → `(O, C, taps)`.
pub fn kernel_from_channels_last<T: Element>(w: &[T], c: usize, taps: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; w.len()];
    for (src, dst) in w.chunks_exact(c * taps).zip(out.chunks_exact_mut(c * taps)) {
        transpose(src, taps, c, dst);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(src: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        (0..cols).flat_map(|c| (0..rows).map(move |r| src[r * cols + c])).collect()
    }

    #[test]
    fn transposes_match_the_definition_on_full_tiles_and_edges() {
        for (rows, cols) in [(1, 5), (5, 1), (8, 8), (9, 17), (16, 3), (3, 16), (24, 40), (7, 7)] {
            let src: Vec<f64> = (0..rows * cols).map(|v| v as f64 * 0.5 - 3.0).collect();
            let mut dst = vec![f64::NAN; rows * cols];
            transpose(&src, rows, cols, &mut dst);
            assert_eq!(dst, naive(&src, rows, cols), "{rows}×{cols}");
        }
    }

    #[test]
    fn channels_last_round_trips_with_and_without_threads() {
        let (n, c, plane) = (3, 5, 12);
        let x: Vec<f64> = (0..n * c * plane).map(|v| v as f64).collect();
        for threaded in [false, true] {
            let plan = Plan { chunk: n, group: n, threaded };
            let (mut last, mut back) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            to_channels_last(&plan, &x, c, plane, n, &mut last);
            assert_eq!(last[(plane + 2) * c + 4], x[(c + 4) * plane + 2], "sample 1, pixel 2, channel 4");
            from_channels_last(&plan, &last, c, plane, n, &mut back);
            assert_eq!(back, x);
        }
        let w: Vec<f64> = (0..2 * 3 * 4).map(|v| v as f64).collect();
        let wc = kernel_to_channels_last(&w, 3, 4);
        assert_eq!(wc[4 * 3 + 3 + 1], w[12 + 4 + 1], "kernel 1, tap 1, channel 1");
        assert_eq!(kernel_from_channels_last(&wc, 3, 4), w);
    }
}
