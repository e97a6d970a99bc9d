//! Moving data between the NCHW layout Candle's tensors use and the channels-last
//! layout the convolution kernels unfold: blocks of samples `(n, C, H·W) ↔ (n, H·W, C)`
//! and kernels `(O, C, kh·kw) ↔ (O, kh·kw, C)`, each a batch of matrix transposes;
//! and the same for whole tensors as differentiable Candle ops ([`to_nhwc`],
//! [`to_nchw`]), for networks that keep their activations channels-last.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::gemm::Element;
use crate::storage::{typed, Typed};
use crate::threads::Plan;
use crate::uninit::{as_uninit, write_slice, written};

/// Side of the square tiles a transpose works through: an 8×8 tile is read as eight
/// rows into registers and written as eight columns.
const TILE: usize = 8;

/// `dst (cols × rows) = srcᵀ` for a row-major `src (rows × cols)`; every value of
/// `dst[..rows · cols]` is written.
pub(crate) fn transpose<T: Element>(src: &[T], rows: usize, cols: usize, dst: &mut [MaybeUninit<T>]) {
    if rows == 1 || cols == 1 {
        write_slice(&mut dst[..rows * cols], &src[..rows * cols]);
        return;
    }
    transpose_strided(src, (rows, cols, cols), dst);
}

/// [`transpose`] of a `rows × cols` matrix whose rows lie `ld` apart in `src`.
pub(crate) fn transpose_strided<T: Element>(
    src: &[T],
    (rows, cols, ld): (usize, usize, usize),
    dst: &mut [MaybeUninit<T>],
) {
    if rows == 0 || cols == 0 {
        return;
    }
    let (src, dst) = (&src[..(rows - 1) * ld + cols], &mut dst[..rows * cols]);
    let (full_rows, full_cols) = (rows - rows % TILE, cols - cols % TILE);
    let tiled = crate::isa::active() >= crate::isa::Isa::Avx2
        && avx2::transpose_tiles(src, (rows, ld), dst, (full_rows, full_cols));
    if !tiled {
        for r0 in (0..full_rows).step_by(TILE) {
            for c0 in (0..full_cols).step_by(TILE) {
                transpose_tile(src, (rows, ld), dst, (r0, c0));
            }
        }
    }
    // The right edge (columns past the last full tile) and the bottom edge, one value at a time.
    for r in 0..rows {
        let first = if r < full_rows { full_cols } else { 0 };
        for (c, &v) in src[r * ld..][..cols].iter().enumerate().skip(first) {
            dst[c * rows + r].write(v);
        }
    }
}

/// The tile at `(r0, c0)` of `src` (`rows` rows, `ld` apart) into its place in `dst`,
/// by way of an array.
fn transpose_tile<T: Element>(
    src: &[T],
    (rows, ld): (usize, usize),
    dst: &mut [MaybeUninit<T>],
    (r0, c0): (usize, usize),
) {
    let mut tile = [[T::ZERO; TILE]; TILE];
    for (i, line) in tile.iter_mut().enumerate() {
        line.copy_from_slice(&src[(r0 + i) * ld + c0..][..TILE]);
    }
    for j in 0..TILE {
        let out = &mut dst[(c0 + j) * rows + r0..][..TILE];
        for (o, line) in out.iter_mut().zip(&tile) {
            o.write(line[j]);
        }
    }
}

/// Full 8×8 tiles of `f32` in AVX registers: eight row loads, three rounds of
/// shuffles, eight column stores (the array path above leaves the compiler to
/// gather each column value by value).
mod avx2 {
    use std::mem::MaybeUninit;

    use super::TILE;
    use crate::gemm::Element;

    /// Transposes the full tiles (those inside `full`) of `src` (`rows` rows, `ld`
    /// apart) if `T` is `f32` and the CPU has AVX2; returns whether it did.
    pub fn transpose_tiles<T: Element>(
        src: &[T],
        (rows, ld): (usize, usize),
        dst: &mut [MaybeUninit<T>],
        full: (usize, usize),
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && std::is_x86_feature_detected!("avx2") {
            // SAFETY: `T` is `f32`, so the slices are `f32` slices of the same length;
            // the CPU has AVX2 (checked just above).
            unsafe {
                let src = std::slice::from_raw_parts(src.as_ptr().cast::<f32>(), src.len());
                let dst = std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<MaybeUninit<f32>>(), dst.len());
                tiles(src, rows, ld, dst, full);
            }
            return true;
        }
        let _ = (src, rows, ld, dst, full);
        false
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn tiles(
        src: &[f32],
        rows: usize,
        ld: usize,
        dst: &mut [MaybeUninit<f32>],
        (full_rows, full_cols): (usize, usize),
    ) {
        use std::arch::x86_64::*;
        for r0 in (0..full_rows).step_by(TILE) {
            for c0 in (0..full_cols).step_by(TILE) {
                // Every row and column slice is bounds-checked before its pointer is used.
                // SAFETY: each slice holds TILE = 8 `f32`, what one unaligned 256-bit load reads.
                let r: [__m256; TILE] =
                    std::array::from_fn(|i| unsafe { _mm256_loadu_ps(src[(r0 + i) * ld + c0..][..TILE].as_ptr()) });
                // Interleave pairs of rows, then pairs of pairs: each 128-bit lane of
                // `q[k]` holds four values of one column, columns k and k + 4.
                let t = [
                    _mm256_unpacklo_ps(r[0], r[1]),
                    _mm256_unpackhi_ps(r[0], r[1]),
                    _mm256_unpacklo_ps(r[2], r[3]),
                    _mm256_unpackhi_ps(r[2], r[3]),
                    _mm256_unpacklo_ps(r[4], r[5]),
                    _mm256_unpackhi_ps(r[4], r[5]),
                    _mm256_unpacklo_ps(r[6], r[7]),
                    _mm256_unpackhi_ps(r[6], r[7]),
                ];
                let q = [
                    _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                    _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                    _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                    _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                    _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                    _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                    _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                    _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
                ];
                for k in 0..4 {
                    let low = _mm256_permute2f128_ps::<0x20>(q[k], q[k + 4]);
                    let high = _mm256_permute2f128_ps::<0x31>(q[k], q[k + 4]);
                    // SAFETY: each slice holds TILE = 8 `f32` slots, what one unaligned
                    // 256-bit store writes; `MaybeUninit<f32>` has `f32`'s layout.
                    unsafe {
                        _mm256_storeu_ps(dst[(c0 + k) * rows + r0..][..TILE].as_mut_ptr().cast(), low);
                        _mm256_storeu_ps(dst[(c0 + k + 4) * rows + r0..][..TILE].as_mut_ptr().cast(), high);
                    }
                }
            }
        }
    }
}

/// `(n, C, plane)` → `(n, plane, C)` into the front of `dst`.
pub fn to_channels_last<T: Element>(plan: &Plan, src: &[T], c: usize, plane: usize, n: usize, dst: &mut [T]) {
    let len = c * plane;
    // SAFETY: `transpose` writes only values read from `src`.
    let dst = unsafe { as_uninit(&mut dst[..n * len]) };
    plan.for_each_chunk(dst, len, |s, out| transpose(&src[s * len..][..len], c, plane, out));
}

/// `(n, plane, C)` → `(n, C, plane)` into the front of `dst`, writing all of `dst[..n·C·plane]`.
pub fn from_channels_last<T: Element>(
    plan: &Plan,
    src: &[T],
    c: usize,
    plane: usize,
    n: usize,
    dst: &mut [MaybeUninit<T>],
) {
    let len = c * plane;
    plan.for_each_chunk(&mut dst[..n * len], len, |s, out| transpose(&src[s * len..][..len], plane, c, out));
}

/// A kernel `(O, C, taps)` → `(O, taps, C)`.
pub fn kernel_to_channels_last<T: Element>(w: &[T], c: usize, taps: usize) -> Vec<T> {
    transpose_samples(w, c, taps)
}

/// A kernel `(O, C, taps)` → `(taps, C, O)`: the transpose of
/// [`kernel_to_channels_last`]'s `(O, P)` matrix, one row per patch position. The
/// second transpose runs in bands of `P`'s columns, one per thread (each band is a
/// run of whole rows of the result): a DCGAN kernel is as large as a layer's input,
/// and it is transposed at every call.
pub fn kernel_to_patch_major<T: Element>(w: &[T], c: usize, taps: usize) -> Vec<T> {
    let wc = kernel_to_channels_last(w, c, taps);
    let (p, o) = (c * taps, w.len() / (c * taps).max(1));
    if p == 0 || o == 0 {
        return wc;
    }
    let band = p.div_ceil(rayon::current_num_threads()).next_multiple_of(TILE).min(p);
    // SAFETY: the bands cover the result (`band · O` values each, the last perhaps
    // fewer, a whole number of rows) and `transpose_strided` writes all of each.
    unsafe {
        written(w.len(), |out| {
            out.par_chunks_mut(band * o).enumerate().for_each(|(b, dst)| {
                transpose_strided(&wc[b * band..], (o, dst.len() / o, p), dst);
            })
        })
    }
}

/// A kernel `(O, taps, C)` → `(O, C, taps)`.
pub fn kernel_from_channels_last<T: Element>(w: &[T], c: usize, taps: usize) -> Vec<T> {
    transpose_samples(w, taps, c)
}

/// Each `rows × cols` matrix of `x` transposed, the matrices in parallel.
fn transpose_samples<T: Element>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
    let len = rows * cols;
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: the chunks cover the vector (`x` holds whole matrices, checked by the
    // caller's shape) and `transpose` writes every value of each.
    unsafe {
        written(x.len(), |out| {
            out.par_chunks_mut(len).zip(x.par_chunks(len)).for_each(|(dst, src)| transpose(src, rows, cols, dst))
        })
    }
}

/// `(N, C, H, W) → (N, H, W, C)` when `channels_last`, else the reverse.
struct Relayout {
    channels_last: bool,
}

impl CustomOp1 for Relayout {
    fn name(&self) -> &'static str {
        if self.channels_last {
            "ganzoo-to-nhwc"
        } else {
            "ganzoo-to-nchw"
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let &[n, a, b, c] = l.dims() else {
            candle_core::bail!("{}: expected a 4-D image tensor, got shape {:?}", self.name(), l.dims())
        };
        // NCHW → NHWC transposes each `(C, H·W)` sample; NHWC → NCHW each `(H·W, C)`.
        let ((rows, cols), shape) =
            if self.channels_last { ((a, b * c), (n, b, c, a)) } else { ((a * b, c), (n, c, a, b)) };
        let out = match typed(self.name(), [(s, l)])? {
            Typed::F32([x]) => CpuStorage::F32(transpose_samples(x, rows, cols)),
            Typed::F64([x]) => CpuStorage::F64(transpose_samples(x, rows, cols)),
        };
        Ok((out, Shape::from(shape)))
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        relayout(dy, !self.channels_last).map(Some)
    }
}

fn relayout(x: &Tensor, channels_last: bool) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Relayout { channels_last })
}

/// An `(N, C, H, W)` tensor as `(N, H, W, C)`, differentiable (its gradient is [`to_nchw`]'s).
pub fn to_nhwc(x: &Tensor) -> Result<Tensor> {
    relayout(x, true)
}

/// An `(N, H, W, C)` tensor as `(N, C, H, W)`, differentiable (its gradient is [`to_nhwc`]'s).
pub fn to_nchw(x: &Tensor) -> Result<Tensor> {
    relayout(x, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test buffer as a write-only destination.
    fn out<T>(v: &mut [T]) -> &mut [MaybeUninit<T>] {
        // SAFETY: the functions under test store only values read from their sources.
        unsafe { as_uninit(v) }
    }

    fn naive(src: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        (0..cols).flat_map(|c| (0..rows).map(move |r| src[r * cols + c])).collect()
    }

    #[test]
    fn transposes_match_the_definition_on_full_tiles_and_edges() {
        for (rows, cols) in [(1, 5), (5, 1), (8, 8), (9, 17), (16, 3), (3, 16), (24, 40), (7, 7)] {
            let src: Vec<f64> = (0..rows * cols).map(|v| v as f64 * 0.5 - 3.0).collect();
            let want = naive(&src, rows, cols);
            let mut dst = vec![f64::NAN; rows * cols];
            transpose(&src, rows, cols, out(&mut dst));
            assert_eq!(dst, want, "f64 {rows}×{cols}");
            // f32 takes the AVX2 tiles where the CPU has them (all values exact in f32).
            let src32: Vec<f32> = src.iter().map(|&v| v as f32).collect();
            let mut dst32 = vec![f32::NAN; rows * cols];
            transpose(&src32, rows, cols, out(&mut dst32));
            assert_eq!(dst32.iter().map(|&v| v as f64).collect::<Vec<_>>(), want, "f32 {rows}×{cols}");
            let mut tiled = vec![f32::NAN; rows * cols];
            let full = (rows - rows % TILE, cols - cols % TILE);
            for r0 in (0..full.0).step_by(TILE) {
                for c0 in (0..full.1).step_by(TILE) {
                    transpose_tile(&src32, (rows, cols), out(&mut tiled), (r0, c0));
                }
            }
            let mut simd = vec![f32::NAN; rows * cols];
            if avx2::transpose_tiles(&src32, (rows, cols), out(&mut simd), full) {
                let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
                assert!(simd.iter().zip(&tiled).all(|(&a, &b)| same(a, b)), "AVX2 tiles {rows}×{cols}");
            }
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
            from_channels_last(&plan, &last, c, plane, n, out(&mut back));
            assert_eq!(back, x);
        }
        let w: Vec<f64> = (0..2 * 3 * 4).map(|v| v as f64).collect();
        let wc = kernel_to_channels_last(&w, 3, 4);
        assert_eq!(wc[4 * 3 + 3 + 1], w[12 + 4 + 1], "kernel 1, tap 1, channel 1");
        assert_eq!(kernel_from_channels_last(&wc, 3, 4), w);
        let wt = kernel_to_patch_major(&w, 3, 4);
        assert_eq!(wt[(2 * 3 + 1) * 2 + 1], w[12 + 4 + 2], "tap 2, channel 1, kernel 1");
    }

    /// A kernel large enough for several bands of full tiles and ragged edges, against
    /// the definition `(O, C, taps)` → `(taps, C, O)`, in f32 (AVX2 tiles) and f64.
    #[test]
    fn patch_major_kernels_match_the_definition() {
        let (o, c, taps) = (37, 19, 16);
        let w: Vec<f64> = (0..o * c * taps).map(|v| v as f64).collect();
        let want: Vec<f64> = (0..taps * c * o)
            .map(|i| (i / (c * o), i / o % c, i % o))
            .map(|(t, ch, k)| w[(k * c + ch) * taps + t])
            .collect();
        assert_eq!(kernel_to_patch_major(&w, c, taps), want);
        let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        let got: Vec<f64> = kernel_to_patch_major(&w32, c, taps).iter().map(|&v| f64::from(v)).collect();
        assert_eq!(got, want);
    }

    /// A sub-matrix transposed in place of its parent's rows.
    #[test]
    fn strided_transposes_read_only_their_columns() {
        let (rows, ld) = (19, 40);
        let src: Vec<f32> = (0..rows * ld).map(|v| v as f32).collect();
        for (c0, cols) in [(0, 16), (5, 17), (24, 16), (33, 7)] {
            let mut dst = vec![f32::NAN; rows * cols];
            transpose_strided(&src[c0..], (rows, cols, ld), out(&mut dst));
            let want: Vec<f32> = (0..cols).flat_map(|c| (0..rows).map(move |r| (r * ld + c0 + c) as f32)).collect();
            assert_eq!(dst, want, "columns {c0}..{}", c0 + cols);
        }
    }
}
