//! Winograd's minimal filtering F(2×2, 2×2) (Lavin & Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016) for the 4×4, stride-2, padding-1 convolutions
//! of the DCGAN family, on NHWC images: 9 multiply-adds per output tile and channel pair
//! where the direct product has 16.
//!
//! Pairing the input's rows as `(2m − 1, 2m)` and its columns likewise (zeros outside
//! the image) turns such a convolution over `C` channels into a valid 2×2 stride-1 one
//! over `4C` channels on an `(H/2 + 1) × (W/2 + 1)` grid: kernel tap `(2u + a, 2v + b)`
//! meets member `(a, b)` of pair `(i + u, j + v)` for output `(i, j)`. F(2×2, 2×2)
//! computes each 2×2 output tile from a 3×3 tile of pairs `d`:
//! `Y = Aᵀ [Σₖ (G gₖ Gᵀ) ⊙ (Bᵀ dₖ B)] A`, with `Bᵀ = [1 −1 0; 0 1 0; 0 −1 1]`,
//! `G = [1 0; 1 1; 0 1]`, `Aᵀ = [1 1 0; 0 1 1]` (all 0 or ±1: the transforms only add and
//! subtract, so the rounding stays close to the direct sums'). The sum over the `4C`
//! paired channels `k` is one GEMM per position `(α, β)` of the 3×3 transformed tile.
//!
//! The adjoint and the weight gradient are the same formula differentiated: with
//! `dM = A dY Aᵀ` per tile, `dd = B [Σₒ Uₒ ⊙ dMₒ] Bᵀ` (added into the overlapping input
//! tiles) and `dg = Gᵀ [Σ_tiles V ⊙ dM] G`; each is again 9 GEMMs between transforms.
//! The 9 transformed kernels are computed and packed for the GEMM once per call
//! (`PackedRhs`); each thread then takes its own run of samples (tiles of different
//! samples never overlap), in blocks small enough to stay in L2 (`BLOCK_VALUES`).
//! Transforms write tile-major `(tiles, 9, width)`, GEMMs position-major
//! `(9, tiles, width)`, each reading the other through strides.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::conv_gemm::sum_in_order;
use crate::gemm::{matmul, matmul_packed, matmul_to, Element, MatRef, PackedRhs};
use crate::geometry::ConvGeometry;
use crate::image_layout::ImageLayout;
use crate::scratch::Scratch;
use crate::transpose::{kernel_from_channels_last, kernel_to_channels_last, kernel_to_patch_major, transpose};
use crate::uninit::{fill, written};

/// Values of one block's transformed input (9 matrices of `tiles × 4C`): small enough
/// that a block's transformed input and products stay in L2 between the transforms
/// and the GEMMs (the transformed kernels are packed once per call, so small blocks
/// cost no repacking; measurements: docs/performance.md, "Winograd"). The weight
/// gradient's blocks are twice as large: each adds into all of `dU` once.
const BLOCK_VALUES: usize = 1 << 17;

/// Tiles (GEMM rows) a block has at least, past [`BLOCK_VALUES`].
const MIN_BLOCK_TILES: usize = 32;

/// Channels, in and out, below which the transform is not used: it keeps the zoo's
/// 1- and 3-channel image layers on the direct products (measured: 64 to 256).
const MIN_CHANNELS: usize = 16;

/// Input side from which the transform beat the direct products (a sample then has at
/// least 16 tiles): on 8×8 inputs, with 4 tiles a sample, the transforms' traffic and
/// the weight gradient's pass over `dU` per block outweigh the multiplications saved
/// (docs/performance.md, "Winograd").
const MIN_SIDE: usize = 16;

/// Whether the transform computes `g`: a 4×4 kernel, stride 2, padding 1, no
/// dilation, NHWC images whose sides are multiples of 4 (so the output's are even).
pub fn fits(g: &ConvGeometry) -> bool {
    let p = g.params;
    (g.k_h, g.k_w, p.stride, p.padding, p.dilation) == (4, 4, 2, 1, 1)
        && p.layout == ImageLayout::Nhwc
        && g.in_h.is_multiple_of(4)
        && g.in_w.is_multiple_of(4)
}

/// Whether the transform beat the direct products on `g`'s size: at least
/// `MIN_CHANNELS` channels on either side and sides of at least `MIN_SIDE`.
pub fn pays(g: &ConvGeometry) -> bool {
    g.cin.min(g.cout) >= MIN_CHANNELS && g.in_h.min(g.in_w) >= MIN_SIDE
}

/// Where the primitives use the transform, from `GANZOO_WINOGRAD` (read once): `off`
/// (or `0`) never, `always` wherever it [`fits`], `on` or unset where it also
/// [`pays`] (other values are reported and read as `on`).
/// The first two keep both paths comparable and tested on the same build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    WherePays,
    Always,
}

impl Mode {
    pub fn from_env() -> Mode {
        static MODE: std::sync::OnceLock<Mode> = std::sync::OnceLock::new();
        *MODE.get_or_init(|| match std::env::var("GANZOO_WINOGRAD").as_deref() {
            Ok("off" | "0") => Mode::Off,
            Ok("always") => Mode::Always,
            Ok("" | "on" | "1") | Err(_) => Mode::WherePays,
            Ok(other) => {
                tracing::warn!("GANZOO_WINOGRAD={other:?} ignored: expected off, on or always");
                Mode::WherePays
            }
        })
    }
}

/// Tiles per sample and the sizes every transform needs.
#[derive(Clone, Copy)]
struct Tiling {
    /// Tile rows and columns per sample (`H/4`, `W/4`).
    rows: usize,
    cols: usize,
    /// Input channels `C`, paired channels `4C`, output channels `O`.
    c: usize,
    k: usize,
    o: usize,
    in_h: usize,
    in_w: usize,
}

impl Tiling {
    fn new(g: &ConvGeometry) -> Self {
        let (rows, cols) = (g.in_h / 4, g.in_w / 4);
        Self { rows, cols, c: g.cin, k: 4 * g.cin, o: g.cout, in_h: g.in_h, in_w: g.in_w }
    }

    fn per_sample(&self) -> usize {
        self.rows * self.cols
    }

    /// Samples per block of a thread's run: `scale` × [`BLOCK_VALUES`] of transformed
    /// input, at least `scale` × [`MIN_BLOCK_TILES`] tiles, blocks of equal size but
    /// perhaps the last — unless the geometry fixed its blocks.
    fn block(&self, g: &ConvGeometry, scale: usize) -> usize {
        let group = split(g.batch).0;
        if let Some(samples) = g.block {
            return samples.clamp(1, group);
        }
        let by_size = scale * BLOCK_VALUES / (9 * self.per_sample() * self.k);
        let most = by_size.max((scale * MIN_BLOCK_TILES).div_ceil(self.per_sample())).clamp(1, group);
        group.div_ceil(group.div_ceil(most))
    }

    /// Input row (or column) of member `a` of pair `2·tile + r`, if inside `side`.
    fn source(tile: usize, r: usize, a: usize, side: usize) -> Option<usize> {
        (4 * tile + 2 * r + a).checked_sub(1).filter(|&i| i < side)
    }

    /// Offset of input pixel `(row, col)` in a sample.
    fn pixel(&self, row: usize, col: usize) -> usize {
        (row * self.in_w + col) * self.c
    }

    /// Offset of output pixel `(row, col)` in a sample.
    fn out_pixel(&self, row: usize, col: usize) -> usize {
        (row * self.in_w / 2 + col) * self.o
    }

    /// Tile `i` of a sample as `(tile row, tile column)`.
    fn tile(&self, i: usize) -> (usize, usize) {
        (i / self.cols, i % self.cols)
    }

    /// Matrix `αβ` of a tile-major `(tiles, 9, width)` buffer, as `(tiles, width)`.
    fn position<'a, T>(&self, buf: &'a [T], alpha_beta: usize, width: usize) -> MatRef<'a, T> {
        MatRef { data: &buf[alpha_beta * width..], row_stride: 9 * width, col_stride: 1 }
    }
}

/// Samples per thread, and whether there are fewer samples than threads (then one
/// thread takes them all and the GEMMs are threaded instead).
fn split(batch: usize) -> (usize, bool) {
    let threads = rayon::current_num_threads();
    (batch.div_ceil(threads), batch < threads)
}

/// Runs `f(inputs, outputs, threaded)` on blocks of samples of `input` (`in_len`
/// values a sample) and the matching `output` (`out_len`): each thread takes its own
/// run of samples, in blocks of [`Tiling::block`].
fn per_block<T: Element, U: Send>(
    g: &ConvGeometry,
    t: &Tiling,
    (input, in_len): (&[T], usize),
    (output, out_len): (&mut [U], usize),
    f: impl Fn(&[T], &mut [U], bool) + Sync,
) {
    let ((group, threaded), bs) = (split(g.batch), t.block(g, 1));
    output.par_chunks_mut(group * out_len).zip(input.par_chunks(group * in_len)).for_each(|(output, input)| {
        for (input, output) in input.chunks(bs * in_len).zip(output.chunks_mut(bs * out_len)) {
            f(input, output, threaded);
        }
    });
}

/// `y = W ⋆ x`: NHWC input `(N, H, W, C)`, kernel `(O, C, 4, 4)`, NHWC output.
pub fn forward<T: Element>(g: &ConvGeometry, x: &[T], w: &[T]) -> Vec<T> {
    let t = Tiling::new(g);
    let columns = kernel_columns(&t, w);
    let u: Vec<_> = columns.chunks(t.k * t.o).map(|u| PackedRhs::new(t.k, t.o, MatRef::rows(u, t.o), true)).collect();
    let (xs, ys, ps) = (g.cin * g.in_plane(), g.cout * g.out_plane(), t.per_sample());
    let block = |x: &[T], y: &mut [MaybeUninit<T>], threaded| {
        let tiles = x.len() / xs * ps;
        let (mut v, mut m) = (Scratch::take(tiles * 9 * t.k), Scratch::take(9 * tiles * t.o));
        v.chunks_mut(ps * 9 * t.k).zip(x.chunks(xs)).for_each(|(v, x)| input_transform(&t, x, v));
        for (ab, (m, u)) in m.chunks_mut(tiles * t.o).zip(&u).enumerate() {
            matmul_packed(tiles, t.o, t.k, m, false, t.position(&v, ab, t.k), u, threaded);
        }
        y.chunks_mut(ys).enumerate().for_each(|(s, y)| output_transform(&t, &m, tiles, s, y));
    };
    // SAFETY: the blocks cover `y` and `output_transform` writes every pixel of its sample.
    unsafe { written(g.output_len(), |y| per_block(g, &t, (x, xs), (y, ys), block)) }
}

/// The adjoint of [`forward`] in `x`: NHWC `dy (N, H', W', O)` → `dx (N, H, W, C)`.
pub fn adjoint<T: Element>(g: &ConvGeometry, dy: &[T], w: &[T]) -> Vec<T> {
    let t = Tiling::new(g);
    let rows = kernel_rows(&t, w);
    let u: Vec<_> = (0..9).map(|ab| PackedRhs::new(t.o, t.k, kernel_matrix(&t, &rows, ab), true)).collect();
    let (xs, ys, ps) = (g.cin * g.in_plane(), g.cout * g.out_plane(), t.per_sample());
    let block = |dy: &[T], dx: &mut [MaybeUninit<T>], threaded| {
        let tiles = dy.len() / ys * ps;
        let (mut dm, mut dv) = (Scratch::take(tiles * 9 * t.o), Scratch::take(9 * tiles * t.k));
        dm.chunks_mut(ps * 9 * t.o).zip(dy.chunks(ys)).for_each(|(dm, dy)| gradient_transform(&t, dy, dm));
        for (ab, (dv, u)) in dv.chunks_mut(tiles * t.k).zip(&u).enumerate() {
            matmul_packed(tiles, t.k, t.o, dv, false, t.position(&dm, ab, t.o), u, threaded);
        }
        dx.chunks_mut(xs).enumerate().for_each(|(s, dx)| fold_tiles(&t, &dv, tiles, s, fill(dx, T::ZERO)));
    };
    // SAFETY: every sample is zero-filled (`fill`) before tiles are added to it.
    unsafe { written(g.input_len(), |dx| per_block(g, &t, (dy, ys), (dx, xs), block)) }
}

/// `∂⟨W ⋆ x, dy⟩/∂W`, shape `(O, C, 4, 4)`, for NHWC `x` and `dy`: each thread sums the
/// transformed gradient `Σ Vᵀ dM` of its samples block after block; the partial sums
/// are added in a fixed order and taken back through `G`.
pub fn weight_grad<T: Element>(g: &ConvGeometry, x: &[T], dy: &[T]) -> Vec<T> {
    let t = Tiling::new(g);
    let (xs, ys, ps) = (g.cin * g.in_plane(), g.cout * g.out_plane(), t.per_sample());
    let ((group, threaded), bs) = (split(g.batch), t.block(g, 2));
    let partial: Vec<Vec<T>> = x
        .par_chunks(group * xs)
        .zip(dy.par_chunks(group * ys))
        .map(|(x, dy)| {
            let mut du = Vec::with_capacity(9 * t.k * t.o);
            for (i, (x, dy)) in x.chunks(bs * xs).zip(dy.chunks(bs * ys)).enumerate() {
                let tiles = x.len() / xs * ps;
                let (mut v, mut dm) = (Scratch::take(tiles * 9 * t.k), Scratch::take(tiles * 9 * t.o));
                v.chunks_mut(ps * 9 * t.k).zip(x.chunks(xs)).for_each(|(v, x)| input_transform(&t, x, v));
                dm.chunks_mut(ps * 9 * t.o).zip(dy.chunks(ys)).for_each(|(dm, dy)| gradient_transform(&t, dy, dm));
                let dst = du.spare_capacity_mut();
                for (ab, du) in dst[..9 * t.k * t.o].chunks_mut(t.k * t.o).enumerate() {
                    let vt = MatRef { data: &v[ab * t.k..], row_stride: 1, col_stride: 9 * t.k };
                    let dm = t.position(&dm, ab, t.o);
                    if i == 0 {
                        matmul_to(t.k, t.o, tiles, du, vt, dm, threaded);
                    } else {
                        // SAFETY: the first block's products initialised all of `du`.
                        let du = unsafe { &mut *(du as *mut [MaybeUninit<T>] as *mut [T]) };
                        matmul(t.k, t.o, tiles, du, true, vt, dm, threaded);
                    }
                }
            }
            // SAFETY: each thread has at least one block, whose products wrote all 9 matrices.
            unsafe { du.set_len(9 * t.k * t.o) };
            du
        })
        .collect();
    kernel_gradient(&t, &sum_in_order(partial, 9 * t.k * t.o))
}

/// The transformed positions each of a tile's 2 output rows (or columns) sums:
/// `Aᵀ = [1 1 0; 0 1 1]`.
const SPANS: [[usize; 2]; 2] = [[0, 1], [1, 2]];

/// The kernel taps `(2u + a)·4 + 2v + b` that `G g Gᵀ` adds into position `(α, β)` of
/// sub-kernel `(a, b)`: along each axis `G` gives `(g₀, g₀ + g₁, g₁)`, so position 0
/// takes tap 0, position 1 both, position 2 tap 1.
fn taps(alpha: usize, beta: usize, ab: usize) -> impl Iterator<Item = usize> {
    let span = |p: usize| [0, 1].into_iter().filter(move |&tap| p == tap || p == tap + 1);
    let (a, b) = (ab / 2, ab % 2);
    span(alpha).flat_map(move |u| span(beta).map(move |v| (2 * u + a) * 4 + 2 * v + b))
}

/// `dst = Σ` of the `len`-long runs of `src` at `starts` (at least one).
fn sum_runs<T: Element>(dst: &mut [T], src: &[T], starts: impl Iterator<Item = usize>) {
    crate::isa::vectorized(crate::isa::active(), || {
        let mut starts = starts;
        let len = dst.len();
        let first = starts.next().expect("a transform position takes at least one tap");
        dst.copy_from_slice(&src[first..][..len]);
        for start in starts {
            add(dst, &src[start..][..len]);
        }
    })
}

/// The transformed kernel `U = G g Gᵀ` of each 2×2 sub-kernel
/// `g[u][v] = W[o][c][2u+a][2v+b]` as 9 matrices `(4C, O)` one after another (the
/// forward product's right operand), paired channel `k = (2a + b)·C + c`: each
/// `(C, O)` block is a sum of blocks of the kernel reordered `(taps, C, O)`.
fn kernel_columns<T: Element>(t: &Tiling, w: &[T]) -> Scratch<T> {
    let (c, o) = (t.c, t.o);
    let patch_major = kernel_to_patch_major(w, c, 16);
    let mut u = Scratch::take(9 * t.k * o);
    u.par_chunks_mut(c * o).enumerate().for_each(|(i, dst)| {
        let (alpha_beta, ab) = (i / 4, i % 4);
        sum_runs(dst, &patch_major, taps(alpha_beta / 3, alpha_beta % 3, ab).map(|tap| tap * c * o));
    });
    u
}

/// The same transformed kernel laid out `(O, 9, 4C)` (row `o` of matrix `αβ` at
/// `(o·9 + αβ)·4C`): the adjoint's right operand, from the kernel reordered
/// `(O, taps, C)`.
fn kernel_rows<T: Element>(t: &Tiling, w: &[T]) -> Scratch<T> {
    let (c, k) = (t.c, t.k);
    let channels_last = kernel_to_channels_last(w, c, 16);
    let mut u = Scratch::take(9 * k * t.o);
    u.par_chunks_mut(9 * k).zip(channels_last.par_chunks(16 * c)).for_each(|(u, w)| {
        for (i, dst) in u.chunks_mut(c).enumerate() {
            let (alpha_beta, ab) = (i / 4, i % 4);
            sum_runs(dst, w, taps(alpha_beta / 3, alpha_beta % 3, ab).map(|tap| tap * c));
        }
    });
    u
}

/// Matrix `αβ` of [`kernel_rows`]' result as `(O, 4C)`.
fn kernel_matrix<'a, T: Element>(t: &Tiling, u: &'a [T], alpha_beta: usize) -> MatRef<'a, T> {
    MatRef { data: &u[alpha_beta * t.k..], row_stride: 9 * t.k, col_stride: 1 }
}

/// The adjoint of [`kernel_columns`] (`Gᵀ dU G`): `dW`, `(O, C, 4, 4)`, from the 9
/// matrices `dU (4C, O)`; each tap's `(C, O)` block is the sum of the blocks of the
/// positions [`taps`] adds it into.
fn kernel_gradient<T: Element>(t: &Tiling, du: &[T]) -> Vec<T> {
    let (c, k, o) = (t.c, t.k, t.o);
    let mut patch_major = Scratch::take(16 * c * o);
    patch_major.par_chunks_mut(c * o).enumerate().for_each(|(tap, dst)| {
        let (ab, (u, v)) = ((tap / 4 % 2) * 2 + tap % 2, (tap / 8, tap % 4 / 2));
        let positions = [u, u + 1].into_iter().flat_map(move |alpha| [v, v + 1].map(move |beta| (alpha, beta)));
        sum_runs(dst, du, positions.map(|(alpha, beta)| (alpha * 3 + beta) * k * o + ab * c * o));
    });
    // `(taps·C, O)` → `(O, taps, C)` → `(O, C, taps)`.
    // SAFETY: `transpose` writes all `16·C·O` values.
    let channels_last = unsafe { written(16 * c * o, |dst| transpose(&patch_major, 16 * c, o, dst)) };
    kernel_from_channels_last(&channels_last, c, 16)
}

/// `V = Bᵀ d B` of every tile of one sample into `v (tiles, 9, 4C)`. Along each axis
/// `Bᵀ` gives `(d₀ − d₁, d₁, d₂ − d₁)`.
fn input_transform<T: Element>(t: &Tiling, x: &[T], v: &mut [T]) {
    let c = t.c;
    let zeros = vec![T::ZERO; c];
    let mut e = vec![T::ZERO; 9 * c];
    crate::isa::vectorized(crate::isa::active(), || {
        for (i, v) in v.chunks_mut(9 * t.k).enumerate() {
            let (ti, tj) = t.tile(i);
            for ab in 0..4 {
                let (a, b) = (ab / 2, ab % 2);
                let d = |r: usize, q: usize| match (Tiling::source(ti, r, a, t.in_h), Tiling::source(tj, q, b, t.in_w))
                {
                    (Some(i), Some(j)) => &x[t.pixel(i, j)..][..c],
                    _ => &zeros[..],
                };
                // Along columns: e[r][β].
                for r in 0..3 {
                    let (d0, d1, d2) = (d(r, 0), d(r, 1), d(r, 2));
                    let e = &mut e[3 * r * c..][..3 * c];
                    difference(&mut e[..c], d0, d1);
                    e[c..2 * c].copy_from_slice(d1);
                    difference(&mut e[2 * c..], d2, d1);
                }
                // Along rows: V[αβ] from e[·][β].
                for beta in 0..3 {
                    let e = |r: usize| &e[(3 * r + beta) * c..][..c];
                    let at = |alpha: usize| (alpha * 3 + beta) * t.k + ab * c;
                    difference(&mut v[at(0)..][..c], e(0), e(1));
                    v[at(1)..][..c].copy_from_slice(e(1));
                    difference(&mut v[at(2)..][..c], e(2), e(1));
                }
            }
        }
    })
}

/// `dst = a − b`.
#[inline(always)]
fn difference<T: Element>(dst: &mut [T], a: &[T], b: &[T]) {
    let (a, b) = (&a[..dst.len()], &b[..dst.len()]);
    for i in 0..dst.len() {
        dst[i] = a[i] - b[i];
    }
}

/// `dst = a + b`.
#[inline(always)]
fn sum<T: Element>(dst: &mut [T], a: &[T], b: &[T]) {
    let (a, b) = (&a[..dst.len()], &b[..dst.len()]);
    for i in 0..dst.len() {
        dst[i] = a[i] + b[i];
    }
}

/// `Y = Aᵀ M A` of sample `s`'s tiles, from the 9 matrices `(tiles, O)` of a block,
/// into its NHWC output, writing each pixel once. Along each axis `Aᵀ` gives
/// `(m₀ + m₁, m₁ + m₂)`.
fn output_transform<T: Element>(t: &Tiling, m: &[T], tiles: usize, s: usize, y: &mut [MaybeUninit<T>]) {
    let o = t.o;
    let mut f = vec![T::ZERO; 6 * o];
    let mut pixel = vec![T::ZERO; o];
    crate::isa::vectorized(crate::isa::active(), || {
        for i in 0..t.per_sample() {
            let ((ti, tj), row) = (t.tile(i), s * t.per_sample() + i);
            let mm = |alpha: usize, beta: usize| &m[((alpha * 3 + beta) * tiles + row) * o..][..o];
            // Along columns: f[α][j'].
            for alpha in 0..3 {
                for (jj, [b0, b1]) in SPANS.iter().enumerate() {
                    sum(&mut f[(2 * alpha + jj) * o..][..o], mm(alpha, *b0), mm(alpha, *b1));
                }
            }
            for (ii, [a0, a1]) in SPANS.iter().enumerate() {
                for jj in 0..2 {
                    sum(&mut pixel, &f[(2 * a0 + jj) * o..][..o], &f[(2 * a1 + jj) * o..][..o]);
                    let dst = &mut y[t.out_pixel(2 * ti + ii, 2 * tj + jj)..][..o];
                    crate::uninit::write_slice(dst, &pixel);
                }
            }
        }
    })
}

/// `dM = A dY Aᵀ` of every output tile of one sample into `dm (tiles, 9, O)`: along
/// each axis `A` gives `(dy₀, dy₀ + dy₁, dy₁)`.
fn gradient_transform<T: Element>(t: &Tiling, dy: &[T], dm: &mut [T]) {
    let o = t.o;
    let mut g = vec![T::ZERO; 6 * o];
    crate::isa::vectorized(crate::isa::active(), || {
        for (i, dm) in dm.chunks_mut(9 * o).enumerate() {
            let (ti, tj) = t.tile(i);
            let d = |ii: usize, jj: usize| &dy[t.out_pixel(2 * ti + ii, 2 * tj + jj)..][..o];
            // Along columns: g[i'][β].
            for ii in 0..2 {
                let g = &mut g[3 * ii * o..][..3 * o];
                g[..o].copy_from_slice(d(ii, 0));
                sum(&mut g[o..2 * o], d(ii, 0), d(ii, 1));
                g[2 * o..].copy_from_slice(d(ii, 1));
            }
            for beta in 0..3 {
                let g = |ii: usize| &g[(3 * ii + beta) * o..][..o];
                let at = |alpha: usize| (alpha * 3 + beta) * o;
                dm[at(0)..][..o].copy_from_slice(g(0));
                sum(&mut dm[at(1)..][..o], g(0), g(1));
                dm[at(2)..][..o].copy_from_slice(g(1));
            }
        }
    })
}

/// `dd = B dV Bᵀ` of sample `s`'s tiles, from the 9 matrices `(tiles, 4C)` of a block,
/// added into its (zeroed) NHWC input gradient: along each axis `B` gives
/// `(dv₀, dv₁ − dv₀ − dv₂, dv₂)`; neighbouring tiles share a pair of rows or columns,
/// members in the padding are dropped.
fn fold_tiles<T: Element>(t: &Tiling, dv: &[T], tiles: usize, s: usize, dx: &mut [T]) {
    let c = t.c;
    let mut h = vec![T::ZERO; 9 * c];
    let mut dd = vec![T::ZERO; c];
    crate::isa::vectorized(crate::isa::active(), || {
        for i in 0..t.per_sample() {
            let ((ti, tj), row) = (t.tile(i), s * t.per_sample() + i);
            for ab in 0..4 {
                let (a, b) = (ab / 2, ab % 2);
                let v = |alpha: usize, beta: usize| &dv[((alpha * 3 + beta) * tiles + row) * t.k + ab * c..][..c];
                // Along columns: h[α][q].
                for alpha in 0..3 {
                    let h = &mut h[3 * alpha * c..][..3 * c];
                    h[..c].copy_from_slice(v(alpha, 0));
                    middle(&mut h[c..2 * c], v(alpha, 1), v(alpha, 0), v(alpha, 2));
                    h[2 * c..].copy_from_slice(v(alpha, 2));
                }
                for q in 0..3 {
                    let Some(j) = Tiling::source(tj, q, b, t.in_w) else { continue };
                    let h = |alpha: usize| &h[(3 * alpha + q) * c..][..c];
                    for r in 0..3 {
                        let Some(i) = Tiling::source(ti, r, a, t.in_h) else { continue };
                        let dst = &mut dx[t.pixel(i, j)..][..c];
                        match r {
                            0 => add(dst, h(0)),
                            1 => {
                                middle(&mut dd, h(1), h(0), h(2));
                                add(dst, &dd);
                            }
                            _ => add(dst, h(2)),
                        }
                    }
                }
            }
        }
    })
}

/// `dst = a − b − c`.
#[inline(always)]
fn middle<T: Element>(dst: &mut [T], a: &[T], b: &[T], c: &[T]) {
    let (a, b, c) = (&a[..dst.len()], &b[..dst.len()], &c[..dst.len()]);
    for i in 0..dst.len() {
        dst[i] = a[i] - b[i] - c[i];
    }
}

/// `dst += a`.
#[inline(always)]
fn add<T: Element>(dst: &mut [T], a: &[T]) {
    let a = &a[..dst.len()];
    for i in 0..dst.len() {
        dst[i] += a[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::ConvParams;

    fn values(len: usize, seed: usize) -> Vec<f64> {
        (0..len).map(|i| ((i * 7919 + seed * 104_729) % 2003) as f64 / 1001.0 - 1.0).collect()
    }

    fn assert_close(what: &str, a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{what}");
        let worst = a.iter().zip(b).map(|(a, b)| (a - b).abs() / (1.0 + b.abs())).fold(0.0, f64::max);
        assert!(worst < 1e-12, "{what}: differs from the direct product by {worst:e}");
    }

    /// The three primitives through the transform against the direct products (im2col
    /// and GEMM), in f64: square and oblong images, the smallest (4×4, one tile, every
    /// pair at a border) and several tiles, one block or several, one thread or three.
    #[test]
    fn matches_the_direct_convolution() {
        let p = ConvParams::new(2, 1).with_layout(ImageLayout::Nhwc);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for (batch, c, o, h, w, block) in [
                (2, 16, 16, 4, 4, None),
                (3, 16, 24, 8, 12, Some(2)),
                (5, 20, 16, 12, 8, Some(1)),
                (4, 3, 17, 16, 16, None),
            ] {
                let g = ConvGeometry::new([batch, c, h, w], [o, c, 4, 4], p).unwrap();
                let g = match block {
                    Some(b) => g.with_block(b),
                    None => g,
                };
                assert!(fits(&g), "{g:?}");
                let (x, k, dy) = (values(g.input_len(), 1), values(g.kernel_len(), 2), values(g.output_len(), 3));
                let (fast, direct) = (g.with_winograd(true), g.with_winograd(false));
                pool.install(|| {
                    let what = format!("{batch}×{c}×{h}×{w} → {o}, block {block:?}, {threads} threads");
                    assert_close(&format!("forward {what}"), &forward(&fast, &x, &k), &crate::forward(&direct, &x, &k));
                    assert_close(
                        &format!("adjoint {what}"),
                        &adjoint(&fast, &dy, &k),
                        &crate::adjoint(&direct, &dy, &k),
                    );
                    let (wg, wd) = (weight_grad(&fast, &x, &dy), crate::weight_grad(&direct, &x, &dy));
                    assert_close(&format!("weight gradient {what}"), &wg, &wd);
                });
            }
        }
    }

    /// In `f32` at every level the CPU has (ganzoo's GEMM with the transformed kernels
    /// packed once at AVX2 / AVX-512): within `f32` rounding of the f64 direct
    /// products, on shapes with several depth and width panels of the packed kernels.
    #[test]
    fn f32_at_every_level_matches_the_f64_direct_convolution() {
        let p = ConvParams::new(2, 1).with_layout(ImageLayout::Nhwc);
        for (batch, c, o, side) in [(3, 80, 24, 8), (8, 16, 520, 4), (5, 16, 32, 16)] {
            let g = ConvGeometry::new([batch, c, side, side], [o, c, 4, 4], p).unwrap();
            let (x, k, dy) = (values(g.input_len(), 1), values(g.kernel_len(), 2), values(g.output_len(), 3));
            let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let (xf, kf, dyf) = (f32s(&x), f32s(&k), f32s(&dy));
            let direct = g.with_winograd(false);
            let want = [
                crate::forward(&direct, &x, &k),
                crate::adjoint(&direct, &dy, &k),
                crate::weight_grad(&direct, &x, &dy),
            ];
            for isa in crate::isa::Isa::available() {
                let got = crate::isa::with_isa(isa, || {
                    [forward(&g, &xf, &kf), adjoint(&g, &dyf, &kf), weight_grad(&g, &xf, &dyf)]
                });
                for (what, (got, want)) in ["forward", "adjoint", "weight gradient"].iter().zip(got.iter().zip(&want)) {
                    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                    let worst = got.iter().zip(want).map(|(&a, &b)| (f64::from(a) - b).abs()).fold(0.0, f64::max);
                    assert!(
                        worst < 1e-5 * scale,
                        "{what} {isa} {batch}×{c}×{side}² → {o}: off by {worst:e} (scale {scale})"
                    );
                }
            }
        }
    }

    #[test]
    fn fits_only_the_shape_it_is_for() {
        let nhwc = ConvParams::new(2, 1).with_layout(ImageLayout::Nhwc);
        let fits = |input: [usize; 4], kernel: [usize; 4], p: ConvParams| {
            let g = ConvGeometry::new(input, kernel, p).unwrap();
            fits(&g) && pays(&g)
        };
        assert!(fits([1, 64, 16, 16], [128, 64, 4, 4], nhwc));
        assert!(fits([1, 16, 16, 20], [16, 16, 4, 4], nhwc));
        assert!(!fits([1, 64, 16, 16], [128, 64, 4, 4], ConvParams::new(2, 1)), "NCHW");
        assert!(!fits([1, 3, 16, 16], [64, 3, 4, 4], nhwc), "3 channels");
        assert!(!fits([1, 64, 16, 16], [3, 64, 4, 4], nhwc), "3 output channels");
        assert!(!fits([1, 128, 8, 8], [256, 128, 4, 4], nhwc), "8×8 images");
        assert!(!fits([1, 64, 18, 16], [128, 64, 4, 4], nhwc), "odd output rows");
        assert!(!fits([1, 64, 16, 16], [128, 64, 3, 3], nhwc), "3×3 kernel");
        assert!(!fits([1, 64, 16, 16], [128, 64, 4, 4], ConvParams::new(1, 0).with_layout(ImageLayout::Nhwc)));
        let dilated = ConvParams { dilation: 2, ..nhwc };
        assert!(!fits([1, 64, 16, 16], [128, 64, 4, 4], dilated));
    }
}
