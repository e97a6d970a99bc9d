//! ganzoo's own `f32` GEMM for the AVX2 and AVX-512 levels: the `gemm` crate's
//! AVX-512 microkernels (64 × 6 tiles) ran the convolutions' products slower than its
//! AVX2 ones on AMD CPUs, even on Zen 5, whose 512-bit FMA units double AVX2's peak
//! (`docs/performance.md`, "Instruction sets"); this one runs at both levels with
//! tiles shaped for the register file instead.
//!
//! Row-major `C (m × n) = [C +] A (m × k) · B (k × n)`, vectorised along `n` (C's rows
//! are contiguous), blocked as in Goto & van de Geijn (2008) with the roles of A and
//! B swapped: a `KC × NC` panel of B is packed into `NR`-wide slivers (L2); each
//! `MR × KC` sliver of A is copied into a small buffer (L1) — row by row, or column by
//! column when A is a transposed view (a weight gradient's `dyᵀ`) — and multiplied
//! with every B sliver of the panel by a microkernel holding the `MR × NR` tile of C in
//! registers (AVX-512: 12 × 32 in 24 registers; AVX2: 6 × 16 in 12). Each element
//! sums its `k` in a fixed order, so results depend neither on threading nor on the
//! level. Products with C at most 3 wide or 3 tall (an MLP's 2-D input and 1-unit
//! output, a 1-channel critic output) take dot products or scaled row sums instead.
//!
//! Either operand of a blocked product may be an im2col matrix that was never stored
//! ([`Unfolded`]): A's slivers and B's panel rows are then copied from the images.
//! Products over a padded convolution's output pixels skip the taps in the padding
//! ([`Skip`]): rows, or a weight gradient's depths, are taken in [`Borders`] order,
//! and each tile sums only the spans of depth its pixels see.

use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::borders::{Borders, Taps};
use crate::gemm::{Call, Side};
use crate::geometry::ConvGeometry;
use crate::im2col::Unfolded;
use crate::isa::Isa;

/// Depth of a packed panel: an A sliver (`MR × KC`) stays in L1, a B panel
/// (`KC × NC`, 512 KiB) in L2.
const KC: usize = 256;
/// Row stride of a packed A sliver: `KC` plus a cache line, so its rows do not share
/// L1 sets.
const A_STRIDE: usize = KC + 16;
/// Width of a packed B panel (a multiple of both kernels' `NR`).
const NC: usize = 512;

/// Most rows of a tile at any level.
const MAX_MR: usize = 12;
/// Most columns of a tile at any level (a folded product's scratch tile).
const MAX_NR: usize = 32;
/// Most spans of a depth block a tile sums over when skipping the padding (one per
/// kernel row in the block, or per pixel group); with more the whole block is summed.
const MAX_SPANS: usize = 8;

/// One level's microkernel: `C[..rows, ..cols] (+)= A_sliver · B_sliver` over `kc`.
/// `BY_COLUMN` says how the A sliver was packed (see [`pack_a`]).
trait Kernel {
    const MR: usize;
    const NR: usize;
    /// The level the packing loops are compiled for.
    const ISA: Isa;
    /// Sums the products over the depths in `spans` (ascending ranges inside the
    /// block: all of it, or the columns a sliver's pixels see) in one accumulator
    /// each, so a skipped span changes no bits.
    ///
    /// # Safety
    /// The CPU has the level's features; `a` holds `MR` rows of `A_STRIDE` (the first
    /// `kc` of each read), or with `BY_COLUMN` `kc` columns of `MR`; `b` holds
    /// `kc × NR` values, `kc` the end of the last span; `c[r] + j` is valid for
    /// `cols ≤ NR` values of each of the first `rows ≤ MR` rows of C (read when `load_c`).
    #[allow(clippy::too_many_arguments)]
    unsafe fn run<const BY_COLUMN: bool>(
        spans: &[(usize, usize)],
        a: *const f32,
        b: *const f32,
        c: &[*mut f32; MAX_MR],
        j: usize,
        rows: usize,
        cols: usize,
        load_c: bool,
    );
}

/// How ganzoo's GEMM runs a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Packed panels and a register-tile microkernel.
    Blocked,
    /// At most 3 columns of C: dot products of A's (contiguous) rows with B's columns.
    Dots,
    /// At most 3 rows of C: sums of B's (contiguous) rows scaled by A's elements.
    Rows,
}

/// Which path takes a call: `f32` at AVX2 or AVX-512, C contiguous along its rows.
/// Products too narrow for a tile and not thin enough for [`Path::Dots`] or
/// [`Path::Rows`] (the 3-channel layers' with A strided, say) stay with the `gemm`
/// crate, whose tiles run along `m`.
fn path(isa: Isa, c: &Call<f32>) -> Option<Path> {
    let nr = match isa {
        Isa::Avx512 => Avx512::NR,
        Isa::Avx2 => Avx2::NR,
        Isa::Scalar => return None,
    };
    if !isa.supported() || c.dst_cs != 1 || c.k == 0 {
        return None;
    }
    if c.n <= 3 && c.lhs_cs == 1 {
        Some(Path::Dots)
    } else if c.m <= 3 && c.rhs_cs == 1 {
        Some(Path::Rows)
    } else if c.n >= nr / 2 && c.m >= 4 {
        Some(Path::Blocked)
    } else {
        None
    }
}

/// Whether ganzoo's GEMM takes this call (else the `gemm` crate does).
pub(crate) fn takes(isa: Isa, c: &Call<f32>) -> bool {
    path(isa, c).is_some()
}

/// Runs a call [`takes`] accepted.
///
/// # Safety
/// As for `Element::gemm`: the views and `dst` describe valid matrices.
pub(crate) unsafe fn run(isa: Isa, c: &Call<f32>) {
    // SAFETY (every arm): `path` checked that the CPU has the level; the caller's
    // contract covers the views.
    let Some(path) = path(isa, c) else { unreachable!("sgemm::run on a call `takes` refused") };
    match (path, isa) {
        // SAFETY: see above.
        (Path::Blocked, _) => unsafe {
            match column_parts(isa, c) {
                Some(parts) => blocked_by_columns(isa, c, &parts),
                None => blocked_at(isa, c, Source::View(View::lhs(c)), Source::View(View::rhs(c)), None),
            }
        },
        // SAFETY: see above.
        (thin, Isa::Avx512) => unsafe { thin_avx512(c, thin) },
        // SAFETY: see above.
        (thin, _) => unsafe { thin_avx2(c, thin) },
    }
}

/// A call shared by the threads that each compute some of its columns.
#[derive(Clone, Copy)]
struct CallRef<'a>(&'a Call<f32>);
// SAFETY: each thread reads the operands and writes its own columns of C only.
unsafe impl Send for CallRef<'_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for CallRef<'_> {}

impl<'a> CallRef<'a> {
    /// The call (a method, so closures capture the whole `Send` wrapper).
    fn get(self) -> &'a Call<f32> {
        self.0
    }
}

/// The blocked path on each part `(first column, width)` of C's columns, one thread
/// each, each part single-threaded.
///
/// # Safety
/// As for [`run`], on a call the blocked path takes; the parts lie inside C.
unsafe fn blocked_by_columns(isa: Isa, c: &Call<f32>, parts: &[(usize, usize)]) {
    let whole = CallRef(c);
    parts.par_iter().for_each(|&(j0, width)| {
        let c = whole.get();
        // SAFETY: columns `j0..j0 + width` of C and B exist (the caller's contract).
        let (dst, rhs) = unsafe { (c.dst.offset(j0 as isize * c.dst_cs), c.rhs.offset(j0 as isize * c.rhs_cs)) };
        let part = Call { n: width, dst, rhs, parallelism: gemm_common::Parallelism::None, ..*c };
        // SAFETY: the part is a product of the same kind on columns inside the call's.
        unsafe { blocked_at(isa, &part, Source::View(View::lhs(&part)), Source::View(View::rhs(&part)), None) }
    });
}

/// Rows of C per thread below which a threaded product splits its columns among the
/// threads instead of its rows (`docs/performance.md`, *Few rows*).
const COLUMN_SPLIT_ROWS: usize = 96;

/// For a threaded product with fewer than [`COLUMN_SPLIT_ROWS`] rows per thread and at
/// least two tiles of columns per thread: its columns in one part per thread (whole
/// tiles each). Each thread then packs its own panels of B and all of A, in one
/// fork-join, instead of a fork-join per panel over a few slivers of A. Every element
/// is summed as before, so the result is the same bits.
fn column_parts(isa: Isa, c: &Call<f32>) -> Option<Vec<(usize, usize)>> {
    let nr = if isa == Isa::Avx512 { Avx512::NR } else { Avx2::NR };
    let threads = rayon::current_num_threads();
    let threaded = !matches!(c.parallelism, gemm_common::Parallelism::None);
    if !threaded || threads < 2 || c.m >= COLUMN_SPLIT_ROWS * threads || c.n < 2 * nr * threads {
        return None;
    }
    let tiles = c.n.div_ceil(nr);
    let per = tiles.div_ceil(threads);
    Some((0..tiles).step_by(per).map(|t| (t * nr, (per * nr).min(c.n - t * nr))).collect())
}

/// Whether [`run_unfolded`] takes an `m × n × k` product at `isa` (the blocked path;
/// thin products stay with a stored im2col matrix).
pub(crate) fn takes_unfolded(isa: Isa, m: usize, n: usize, k: usize) -> bool {
    path(isa, &Call::<f32>::shape(m, n, k)) == Some(Path::Blocked)
}

/// `C (+)= A · B` with the operand on `side` the unfolded `u`, read from the images as
/// the packing needs it, for a call [`takes_unfolded`] accepted.
///
/// # Safety
/// As for [`run`]: `c` describes C and the other operand (the unfolded one's pointer
/// is not read), and `u` has the shape of the operand it stands for.
pub(crate) unsafe fn run_unfolded(isa: Isa, c: &Call<f32>, u: Unfolded<f32>, side: Side) {
    debug_assert!(takes_unfolded(isa, c.m, c.n, c.k));
    let (a, b) = match side {
        Side::Lhs => (Source::Unfolded(u), Source::View(View::rhs(c))),
        Side::Rhs => (Source::View(View::lhs(c)), Source::Unfolded(u)),
    };
    // A weight gradient's `dyᵀ` is packed by column, as the borders' order needs.
    let borders = match side {
        Side::Lhs => u.borders(),
        Side::Rhs if c.lhs_cs != 1 => u.borders(),
        Side::Rhs => None,
    };
    let skip = borders.as_ref().map(|b| if side == Side::Lhs { Skip::Depth(b) } else { Skip::Sum(b) });
    // SAFETY: the caller's contract; `takes_unfolded` checked the level; the unfolded
    // A's rows, or B's, are the borders' pixels.
    unsafe { blocked_at(isa, c, a, b, skip) }
}

/// `C = A · B` whose rows are the output pixels of `samples` images under `g` and
/// whose columns are `g`'s im2col columns (the adjoint's `dŶᵀ · Wc`), for a call
/// [`takes_unfolded`] accepted: the entries of taps in the padding may be left
/// unwritten.
///
/// # Safety
/// As for [`run`]; A's rows contiguous, `c.m` = `samples · H'·W'`, `c.n` = `g.patch()`.
pub(crate) unsafe fn run_skipping_padding(isa: Isa, c: &Call<f32>, g: &ConvGeometry, samples: usize) {
    debug_assert!(takes_unfolded(isa, c.m, c.n, c.k) && c.lhs_cs == 1);
    let borders = Borders::new(g, samples);
    let (a, b, skip) = (Source::View(View::lhs(c)), Source::View(View::rhs(c)), borders.as_ref().map(Skip::Width));
    // SAFETY: the caller's contract; `takes_unfolded` checked the level.
    unsafe { blocked_at(isa, c, a, b, skip) }
}

/// Whether [`run_folding`] takes the adjoint's product `(m, n, k)` of a block under
/// `g` at `isa`: the blocked path on one thread, each tile of columns inside one tap
/// (`C` a multiple of the tile width).
pub(crate) fn folds(isa: Isa, (m, n, k): (usize, usize, usize), g: &ConvGeometry) -> bool {
    let nr = if isa == Isa::Avx512 { Avx512::NR } else { Avx2::NR };
    takes_unfolded(isa, m, n, k) && g.params.channels_last() && g.cin.is_multiple_of(nr)
}

/// `dx += col2im(A · B)` for the adjoint's `A · B = dŶᵀ · Wc` over a block of
/// `samples` channels-last images under `g`: each tile of the product is added into
/// the pixels its rows and columns stand for as it leaves the registers, instead of
/// being stored whole and folded after (the stored product is `k²·C` values per output
/// pixel, several MiB per block, written and read back from beyond L2). The entries of
/// taps in the padding go to a scratch tile. Runs on the calling thread only: two
/// tiles of one block may add into the same pixel.
///
/// # Safety
/// As for [`run`], `c.dst` pointing at the block's `samples · H · W · C` images,
/// already holding values (zeros or a sum to add to); A's rows contiguous, `c.m` =
/// `samples · H'·W'`, `c.n` = `g.patch()`; [`folds`] accepted the product.
pub(crate) unsafe fn run_folding(isa: Isa, c: &Call<f32>, g: &ConvGeometry, samples: usize) {
    debug_assert!(folds(isa, (c.m, c.n, c.k), g) && c.lhs_cs == 1);
    let call = Call { parallelism: gemm_common::Parallelism::None, ..*c };
    let borders = Borders::new(g, samples);
    let (a, b, skip) = (Source::View(View::lhs(c)), Source::View(View::rhs(c)), borders.as_ref().map(Skip::Width));
    let fold = Some(Fold { g, dx: Shared(c.dst) });
    // SAFETY: the caller's contract; `folds` checked the level.
    unsafe {
        match isa {
            Isa::Avx512 => blocked::<Avx512>(&call, a, b, skip, fold),
            _ => blocked::<Avx2>(&call, a, b, skip, fold),
        }
    }
}

/// A right operand `B (k × n)` packed once, panel after panel in the order the
/// blocked loop reads them, for products that share it (Winograd's transformed
/// kernels, multiplied by every block of every thread): each product then skips the
/// packing of B, which on a few rows costs as much as the multiply.
#[doc(hidden)]
pub struct PackedB {
    data: crate::scratch::Scratch<f32>,
    k: usize,
    n: usize,
    isa: Isa,
}

impl PackedB {
    /// Packs `b` at `isa` (AVX2 or AVX-512, the CPU's; else `None`), the slivers of each
    /// panel in parallel when `threaded`.
    ///
    /// # Safety
    /// `c`'s right operand (`c.k × c.n` through `c.rhs`, `rhs_rs`, `rhs_cs`) is a valid matrix.
    pub(crate) unsafe fn new(isa: Isa, c: &Call<f32>, threaded: bool) -> Option<Self> {
        // Whether products of more rows than the thin paths take (4) run blocked.
        if path(isa, &Call::shape(4, c.n, c.k)) != Some(Path::Blocked) {
            return None;
        }
        // SAFETY: the caller's contract; `path` checked the level.
        Some(unsafe {
            match isa {
                Isa::Avx512 => Self::pack::<Avx512>(isa, c, threaded),
                _ => Self::pack::<Avx2>(isa, c, threaded),
            }
        })
    }

    /// # Safety
    /// As for [`Self::new`], the CPU having `K`'s level.
    unsafe fn pack<K: Kernel>(isa: Isa, c: &Call<f32>, threaded: bool) -> Self {
        let (k, n) = (c.k, c.n);
        let len = (0..n).step_by(NC).map(|jc| NC.min(n - jc).div_ceil(K::NR) * K::NR * k).sum();
        let mut packed = Self { data: crate::scratch::Scratch::take(len), k, n, isa };
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let (kc, at) = (KC.min(k - pc), jc * k + pc * nc.div_ceil(K::NR) * K::NR);
                // SAFETY: the caller's contract keeps the panel inside B; `pack_b`
                // writes all of it (zeros past `n`).
                unsafe {
                    pack_b::<K>(&mut packed.data[at..], Source::View(View::rhs(c)), pc, kc, jc, nc, None, threaded)
                };
            }
        }
        packed
    }

    /// The packed panel of depths `pc..pc + kc` and columns `jc..jc + nc`.
    fn panel(&self, nr: usize, jc: usize, nc: usize, pc: usize, kc: usize) -> &[f32] {
        let width = nc.div_ceil(nr) * nr;
        &self.data[jc * self.k + pc * width..][..width * kc]
    }

    /// Whether a product `(m, n, k)` at `isa` can read this B.
    pub(crate) fn serves(&self, isa: Isa, (m, n, k): (usize, usize, usize)) -> bool {
        self.isa == isa && (self.k, self.n) == (k, n) && path(isa, &Call::shape(m, n, k)) == Some(Path::Blocked)
    }
}

/// `C (+)= A · B` with B packed beforehand, for a product `b` [serves](PackedB::serves).
///
/// # Safety
/// As for [`run`] (B's view aside).
pub(crate) unsafe fn run_packed(isa: Isa, c: &Call<f32>, b: &PackedB) {
    debug_assert!(b.serves(isa, (c.m, c.n, c.k)));
    // SAFETY: the caller's contract; `serves` checked the level and the shape.
    unsafe { blocked_at(isa, c, Source::View(View::lhs(c)), Source::Packed(b), None) }
}

/// [`blocked`] with the microkernel of `isa` (AVX-512, else AVX2).
///
/// # Safety
/// As for [`blocked`]; the CPU has `isa`.
unsafe fn blocked_at(isa: Isa, c: &Call<f32>, a: Source, b: Source, skip: Option<Skip>) {
    match isa {
        // SAFETY: the caller's contract.
        Isa::Avx512 => unsafe { blocked::<Avx512>(c, a, b, skip, None) },
        // SAFETY: as above.
        _ => unsafe { blocked::<Avx2>(c, a, b, skip, None) },
    }
}

/// [`thin`] compiled for AVX-512 (its `mul_add`s as FMA instructions, its loops on zmm).
///
/// # Safety
/// As for [`thin`]; the CPU has AVX-512 F.
#[target_feature(enable = "avx,avx2,fma,avx512f")]
unsafe fn thin_avx512(c: &Call<f32>, path: Path) {
    // SAFETY: the caller's contract.
    unsafe { thin(c, path) }
}

/// [`thin`] compiled for AVX2 + FMA.
///
/// # Safety
/// As for [`thin`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx,avx2,fma")]
unsafe fn thin_avx2(c: &Call<f32>, path: Path) {
    // SAFETY: the caller's contract.
    unsafe { thin(c, path) }
}

/// # Safety
/// As for [`run`], on a call `path` sends to [`Path::Dots`] or [`Path::Rows`].
#[inline(always)]
unsafe fn thin(c: &Call<f32>, path: Path) {
    // SAFETY: the caller's contract.
    unsafe {
        match path {
            Path::Dots => dots(c),
            Path::Rows => rows(c),
            Path::Blocked => unreachable!("sgemm::thin on a blocked product"),
        }
    }
}

/// `C[i, j] (+)= ⟨A[i, ..], B[.., j]⟩` for C at most 3 wide, B's columns first copied
/// contiguous.
///
/// # Safety
/// As for [`run`], with A's rows contiguous.
#[inline(always)]
unsafe fn dots(c: &Call<f32>) {
    let (a, b) = (View::lhs(c), View::rhs(c));
    // SAFETY: inside B (the caller's contract).
    let columns: Vec<f32> = (0..c.n).flat_map(|j| (0..c.k).map(move |p| unsafe { b.at(p, j) })).collect();
    for i in 0..c.m {
        // SAFETY: row `i` of A holds `k` contiguous values.
        let a = unsafe { a.row(i, 0, c.k) };
        for (j, column) in columns.chunks_exact(c.k).enumerate() {
            // SAFETY: `(i, j)` is inside C.
            unsafe {
                let out = c.dst.offset(i as isize * c.dst_rs + j as isize);
                *out = if c.read_dst { *out + dot(a, column) } else { dot(a, column) };
            }
        }
    }
}

/// `Σ a[p]·b[p]` in 16 interleaved partial sums (vector lanes), then in order.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).fold(0.0, |s, (&x, &y)| x.mul_add(y, s));
    for (x, y) in ac.zip(bc) {
        for l in 0..16 {
            lanes[l] = x[l].mul_add(y[l], lanes[l]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `C[i, ..] (+)= Σ_p A[i, p] · B[p, ..]` for C at most 3 tall.
///
/// # Safety
/// As for [`run`], with B's rows contiguous.
#[inline(always)]
unsafe fn rows(c: &Call<f32>) {
    let (a, b) = (View::lhs(c), View::rhs(c));
    for i in 0..c.m {
        // SAFETY: row `i` of C holds `n` contiguous values, zeroed first unless read.
        let out = unsafe {
            let row = c.dst.offset(i as isize * c.dst_rs);
            if !c.read_dst {
                std::ptr::write_bytes(row, 0, c.n);
            }
            std::slice::from_raw_parts_mut(row, c.n)
        };
        for p in 0..c.k {
            // SAFETY: inside A and B.
            let (s, row) = unsafe { (a.at(i, p), b.row(p, 0, c.n)) };
            out.iter_mut().zip(row).for_each(|(o, &v)| *o = s.mul_add(v, *o));
        }
    }
}

/// `dst` as a pointer the threads of one product share (they write disjoint rows).
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: each task writes its own rows of C only.
unsafe impl Send for Shared {}
// SAFETY: as for `Send`.
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// The taps in the padding a product over a convolution's output pixels may skip.
#[derive(Clone, Copy)]
enum Skip<'a> {
    /// Rows are pixels, `K` runs over im2col columns (the forward): a sliver skips the
    /// products with the columns none of its pixels sees.
    Depth(&'a Borders),
    /// Rows are pixels, `N` runs over im2col columns (the adjoint): a sliver's tiles of
    /// columns none of its pixels sees are left unwritten (`col2im` never reads them).
    Width(&'a Borders),
    /// `K` runs over pixels, `N` over im2col columns (the weight gradient, A packed by
    /// column): a tile sums over the pixels that see any of its columns.
    Sum(&'a Borders),
}

/// The images a product's tiles are added into ([`run_folding`]): row `l` of the
/// product, column `(i·kw + j)·C + ch`, belongs to pixel `(oh·s − p + i·d,
/// ow·s − p + j·d)` of image `l / (H'·W')`, channel `ch`.
#[derive(Clone, Copy)]
struct Fold<'a> {
    g: &'a ConvGeometry,
    dx: Shared,
}

impl Fold<'_> {
    /// Each row's image and the input position its tap `(0, 0)` falls on.
    fn origins(&self, at: &[usize]) -> [(usize, isize, isize); MAX_MR] {
        let g = self.g;
        let (s, p, plane) = (g.params.stride as isize, g.params.padding as isize, g.out_plane());
        let mut o = [(0, 0, 0); MAX_MR];
        for (o, &l) in o.iter_mut().zip(at) {
            let (oh, ow) = ((l % plane / g.out_w) as isize, (l % g.out_w) as isize);
            *o = (l / plane, oh * s - p, ow * s - p);
        }
        o
    }

    /// The offset `(i·d, j·d)` of the tap and the first channel of the tiles of
    /// columns `j0, j0 + nr, …` (each inside one tap) up to `j1`.
    fn tiles(&self, j0: usize, j1: usize, nr: usize) -> Vec<(isize, isize, usize)> {
        let (g, d) = (self.g, self.g.params.dilation);
        let tile = |j: usize| (j / g.cin, j % g.cin);
        (j0..j1).step_by(nr).map(tile).map(|(t, ch)| ((t / g.k_w * d) as isize, (t % g.k_w * d) as isize, ch)).collect()
    }

    /// Where a tile (its tap's offset and first channel, from [`Self::tiles`]) of each
    /// row goes: its pixel's channels, or `scratch` for a tap in the padding.
    #[inline]
    fn targets(
        &self,
        origins: &[(usize, isize, isize)],
        (di, dj, ch): (isize, isize, usize),
        scratch: *mut f32,
    ) -> [*mut f32; MAX_MR] {
        let g = self.g;
        let mut out = [scratch; MAX_MR];
        for (out, &(n, h0, w0)) in out.iter_mut().zip(origins) {
            let (ih, iw) = (h0 + di, w0 + dj);
            if (0..g.in_h as isize).contains(&ih) && (0..g.in_w as isize).contains(&iw) {
                let at = ((n * g.in_h + ih as usize) * g.in_w + iw as usize) * g.cin + ch;
                // SAFETY: `at` is inside the block's images (the caller of `run_folding`).
                *out = unsafe { self.dx.ptr().add(at) };
            }
        }
        out
    }
}

/// The depths of a block (relative to it) a tile sums over, and whether C is read
/// first (it is not in the block holding the first depth of all).
#[derive(Clone, Copy)]
struct Depths {
    spans: [(usize, usize); MAX_SPANS],
    count: usize,
    load_c: bool,
}

impl Depths {
    /// All of block `pc..pc + kc`.
    fn all(pc: usize, kc: usize, read_dst: bool) -> Self {
        Depths { spans: [(0, kc); MAX_SPANS], count: 1, load_c: read_dst || pc > 0 }
    }

    /// The parts of block `pc..pc + kc` inside `seen` (ascending absolute ranges, the
    /// first starting at the first depth of all); all of it where none is seen (the
    /// products are zeros then) or the parts do not fit.
    fn within(mut seen: impl Iterator<Item = (usize, usize)>, pc: usize, kc: usize, read_dst: bool) -> Self {
        let Some(head) = seen.next() else { return Depths::all(pc, kc, read_dst) };
        let mut d = Depths { spans: [(0, 0); MAX_SPANS], count: 0, load_c: read_dst || pc > head.0 };
        for (a, b) in std::iter::once(head).chain(seen) {
            let (a, b) = (a.max(pc) - pc, b.min(pc + kc).saturating_sub(pc));
            if a >= b {
                continue;
            }
            if d.count > 0 && d.spans[d.count - 1].1 == a {
                d.spans[d.count - 1].1 = b;
            } else if d.count == MAX_SPANS {
                return Depths { spans: [(0, kc); MAX_SPANS], count: 1, ..d };
            } else {
                (d.spans[d.count], d.count) = ((a, b), d.count + 1);
            }
        }
        d
    }

    fn spans(&self) -> &[(usize, usize)] {
        &self.spans[..self.count]
    }
}

/// The rows of C (and A) of product rows `i..i + rows` — in the borders' order where
/// rows are pixels — and the taps any of them sees.
fn sliver_rows(skip: Option<Skip>, i: usize, rows: usize) -> ([usize; MAX_MR], Option<Taps>) {
    let mut at = [0usize; MAX_MR];
    match skip {
        Some(Skip::Depth(borders) | Skip::Width(borders)) => {
            let (pixels, taps) = borders.sliver(i, rows);
            at[..rows].copy_from_slice(pixels);
            (at, taps)
        }
        _ => {
            at[..rows].iter_mut().enumerate().for_each(|(r, at)| *at = i + r);
            (at, None)
        }
    }
}

/// # Safety
/// See [`run`]; with `skip`, the operands are what its variant says, of the borders'
/// geometry; with `fold`, as for [`run_folding`].
unsafe fn blocked<K: Kernel>(c: &Call<f32>, a: Source, b: Source, skip: Option<Skip>, fold: Option<Fold>) {
    let (dst, m, k, ldc, read_dst) = (Shared(c.dst), c.m, c.k, c.dst_rs, c.read_dst);
    let slivers = m.div_ceil(K::MR);
    let threaded = !matches!(c.parallelism, gemm_common::Parallelism::None) && slivers >= 4;
    let mut packed = crate::scratch::Scratch::<f32>::take(if matches!(b, Source::Packed(_)) { 0 } else { KC * NC });
    // Rows of a sliver buffer past a sliver's last hold whatever an earlier sliver
    // left; their products land in tile rows never stored.
    let new_sliver = || vec![0f32; K::MR * A_STRIDE];
    // A transposed (its columns contiguous, as `dyᵀ` in a weight gradient) is packed
    // column by column: one short contiguous copy per `p` instead of `MR` scattered ones.
    let by_column = matches!(a, Source::View(v) if v.cs != 1);
    // The weight gradient's depths are pixels, taken in the borders' order.
    let depth_order = match skip {
        Some(Skip::Sum(borders)) => Some(borders.order()),
        _ => None,
    };
    debug_assert!(by_column == matches!(skip, Some(Skip::Sum(_))) || skip.is_none());
    let mut serial_sliver = new_sliver();
    for jc in (0..c.n).step_by(NC) {
        let nc = NC.min(c.n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let bp = match b {
                Source::Packed(whole) => whole.panel(K::NR, jc, nc, pc, kc),
                _ => {
                    // SAFETY: the caller's contract keeps the panel inside B.
                    unsafe { pack_b::<K>(&mut packed, b, pc, kc, jc, nc, depth_order, threaded) };
                    &packed[..]
                }
            };
            // A weight gradient's tiles each sum over the pixels that see their columns.
            let sums: Vec<Depths> = match skip {
                Some(Skip::Sum(borders)) => (jc..jc + nc)
                    .step_by(K::NR)
                    .map(|j0| Depths::within(borders.seeing(j0, (j0 + K::NR).min(jc + nc)), pc, kc, read_dst))
                    .collect(),
                _ => Vec::new(),
            };
            let fold_tiles = fold.map(|f| f.tiles(jc, jc + nc, K::NR)).unwrap_or_default();
            let sliver = |ap: &mut Vec<f32>, s: usize| {
                let (i, rows) = (s * K::MR, K::MR.min(m - s * K::MR));
                let (at, taps) = sliver_rows(skip, i, rows);
                // Folded, the tiles' targets are found per tile instead.
                let out = match fold {
                    Some(_) => [dst.ptr(); MAX_MR],
                    // SAFETY: the rows exist (the caller's contract).
                    None => at.map(|row| unsafe { dst.ptr().offset(row as isize * ldc) }),
                };
                let depths = match (skip, taps) {
                    (Some(Skip::Depth(borders)), Some(taps)) => {
                        Depths::within(borders.spans(taps, 0, k), pc, kc, read_dst)
                    }
                    _ => Depths::all(pc, kc, read_dst),
                };
                if depths.count == 0 {
                    return;
                }
                let origins = fold.map(|f| f.origins(&at[..rows]));
                const { assert!(K::NR <= MAX_NR) };
                let mut scratch = [0f32; MAX_NR];
                // SAFETY: rows `at[..rows]` of A's panel exist (the caller's contract);
                // `K`'s level is the CPU's.
                crate::isa::vectorized(
                    K::ISA,
                    #[inline(always)]
                    || unsafe { pack_a::<K>(ap, a, &at[..rows], pc, kc, by_column, depth_order) },
                );
                for jr in (0..nc).step_by(K::NR) {
                    let (j0, cols) = (jc + jr, K::NR.min(nc - jr));
                    let tile = match (skip, taps) {
                        (Some(Skip::Width(borders)), Some(taps))
                            if borders.spans(taps, j0, j0 + cols).next().is_none() =>
                        {
                            continue;
                        }
                        (Some(Skip::Sum(_)), _) => sums[jr / K::NR],
                        _ => depths,
                    };
                    if tile.count == 0 {
                        continue;
                    }
                    // Folded, every tile adds to the images (they hold the sum so far).
                    let (out, j, load_c) = match (fold, &origins) {
                        (Some(f), Some(o)) => {
                            (f.targets(&o[..rows], fold_tiles[jr / K::NR], scratch.as_mut_ptr()), 0, true)
                        }
                        _ => (out, j0, tile.load_c),
                    };
                    // SAFETY: the tile lies inside C (folded: inside the images, or the
                    // scratch tile); the slivers were packed above.
                    unsafe {
                        let (a, b) = (ap.as_ptr(), bp.as_ptr().add(jr * kc));
                        if by_column {
                            K::run::<true>(tile.spans(), a, b, &out, j, rows, cols, load_c);
                        } else {
                            K::run::<false>(tile.spans(), a, b, &out, j, rows, cols, load_c);
                        }
                    }
                }
            };
            if threaded {
                (0..slivers).into_par_iter().for_each_init(new_sliver, sliver);
            } else {
                (0..slivers).for_each(|s| sliver(&mut serial_sliver, s));
            }
        }
    }
}

/// Where the blocked path reads an operand from.
#[derive(Clone, Copy)]
enum Source<'a> {
    View(View),
    /// An im2col matrix, unfolded while packing.
    Unfolded(Unfolded<'a, f32>),
    /// B packed beforehand ([`PackedB`]).
    Packed(&'a PackedB),
}

/// A strided read-only matrix.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}
// SAFETY: read only, from a matrix that outlives the product.
unsafe impl Send for View {}
// SAFETY: as for `Send`.
unsafe impl Sync for View {}

impl View {
    fn lhs(c: &Call<f32>) -> Self {
        View { ptr: c.lhs, rs: c.lhs_rs, cs: c.lhs_cs }
    }

    fn rhs(c: &Call<f32>) -> Self {
        View { ptr: c.rhs, rs: c.rhs_rs, cs: c.rhs_cs }
    }

    /// `len` values of row `i` from column `j`, contiguous (`cs == 1`).
    ///
    /// # Safety
    /// They lie inside the matrix, and `cs == 1`.
    #[inline(always)]
    unsafe fn row<'a>(&self, i: usize, j: usize, len: usize) -> &'a [f32] {
        debug_assert_eq!(self.cs, 1);
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.offset(i as isize * self.rs + j as isize), len) }
    }

    /// `len` values of column `j` from row `i`, contiguous (`rs == 1`).
    ///
    /// # Safety
    /// They lie inside the matrix, and `rs == 1`.
    #[inline(always)]
    unsafe fn column<'a>(&self, i: usize, j: usize, len: usize) -> &'a [f32] {
        debug_assert_eq!(self.rs, 1);
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.offset(i as isize + j as isize * self.cs), len) }
    }

    /// # Safety
    /// `(i, j)` lies inside the matrix.
    #[inline(always)]
    unsafe fn at(&self, i: usize, j: usize) -> f32 {
        // SAFETY: the caller's contract.
        unsafe { *self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }
    }
}

/// Copies `B[pc.., jc..]` (`kc × nc`) into `NR`-wide slivers, each `kc × NR` row-major,
/// the columns past `nc` zero.
///
/// # Safety
/// The panel lies inside B.
#[allow(clippy::too_many_arguments)]
unsafe fn pack_b<K: Kernel>(
    dst: &mut [f32],
    b: Source,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    order: Option<&[usize]>,
    threaded: bool,
) {
    let (panel, len) = (&mut dst[..nc.div_ceil(K::NR) * K::NR * kc], K::NR * kc);
    let b = match b {
        Source::View(view) => view,
        Source::Unfolded(u) => {
            return crate::isa::vectorized(
                K::ISA,
                #[inline(always)]
                || pack_unfolded_b::<K>(panel, u, pc, jc, nc, order),
            );
        }
        Source::Packed(_) => unreachable!("a packed B is not packed again"),
    };
    debug_assert!(order.is_none(), "only an unfolded B is read in the borders' order");
    let pack = |(s, sliver): (usize, &mut [f32])| {
        let (j0, cols) = (jc + s * K::NR, K::NR.min(nc - s * K::NR));
        // SAFETY: the caller's contract; `K`'s level is the CPU's (`path` checked).
        crate::isa::vectorized(
            K::ISA,
            #[inline(always)]
            || unsafe { pack_sliver::<K>(sliver, b, pc, j0, cols) },
        )
    };
    if threaded {
        panel.par_chunks_exact_mut(len).enumerate().for_each(pack);
    } else {
        panel.chunks_exact_mut(len).enumerate().for_each(pack);
    }
}

/// [`pack_b`] from an unfolded B: each row's `nc` values unfolded at once (one pass
/// over the row's taps), then dealt out to the slivers; row `p` of the product is
/// row `order[p]` of the matrix where an order is given.
#[inline(always)]
fn pack_unfolded_b<K: Kernel>(
    panel: &mut [f32],
    u: Unfolded<f32>,
    pc: usize,
    jc: usize,
    nc: usize,
    order: Option<&[usize]>,
) {
    let width = nc.div_ceil(K::NR) * K::NR;
    let kc = panel.len() / width;
    // Zero past `nc` for the last sliver's missing columns; `row_into` writes `..nc` only.
    let mut row = [0f32; NC];
    for p in 0..kc {
        u.row_into(order.map_or(pc + p, |o| o[pc + p]), jc, &mut row[..nc]);
        for (s, part) in row[..width].chunks_exact(K::NR).enumerate() {
            panel[(s * kc + p) * K::NR..][..K::NR].copy_from_slice(part);
        }
    }
}

/// One sliver of [`pack_b`]: `cols` columns of B from `(pc, j0)`, `NR` wide.
///
/// # Safety
/// The columns lie inside B for the sliver's `kc` rows.
#[inline(always)]
unsafe fn pack_sliver<K: Kernel>(sliver: &mut [f32], b: View, pc: usize, j0: usize, cols: usize) {
    if b.cs == 1 {
        for (p, row) in sliver.chunks_exact_mut(K::NR).enumerate() {
            // SAFETY: `cols` values from `(pc + p, j0)` lie inside B.
            let src = unsafe { b.row(pc + p, j0, cols) };
            if cols == K::NR {
                // A copy of constant length, which the compiler inlines as vector moves.
                row.copy_from_slice(&src[..K::NR]);
            } else {
                row[..cols].copy_from_slice(src);
            }
        }
    } else if b.rs == 1 && b.cs > 0 && cols == K::NR {
        // A transposed view (a linear layer's `Wᵀ`): the sliver is the transpose of
        // `NR` columns of B, each contiguous, taken in register tiles.
        let (kc, ld) = (sliver.len() / K::NR, b.cs as usize);
        // SAFETY: the sliver's `kc` rows of columns `j0..j0 + NR` lie inside B (the
        // caller's contract); column `j0 + j` holds them contiguously from `j · ld`.
        let src =
            unsafe { std::slice::from_raw_parts(b.ptr.offset(pc as isize + j0 as isize * b.cs), (cols - 1) * ld + kc) };
        // SAFETY: the transpose writes every value of the sliver.
        crate::transpose::transpose_strided(src, (cols, kc, ld), unsafe { crate::uninit::as_uninit(sliver) });
    } else {
        // Value by value, column by column: a transposed view's last, narrower sliver
        // (its columns contiguous), or any other strides.
        let kc = sliver.len() / K::NR;
        for j in 0..cols {
            for p in 0..kc {
                // SAFETY: inside B.
                sliver[p * K::NR + j] = unsafe { b.at(pc + p, j0 + j) };
            }
        }
    }
    if cols < K::NR {
        sliver.chunks_exact_mut(K::NR).for_each(|row| row[cols..].fill(0.0));
    }
}

/// Copies rows `at` of `A[.., pc..pc + kc]` into `dst`: row by row,
/// `A_STRIDE` apart, or with `by_column` column by column, `MR` apart (a row's values
/// then sit `MR` apart; rows past `rows` keep what an earlier sliver left, and their
/// products land in tile rows never stored).
///
/// With `order` (by column only), product column `p` is column `order[p]` of A.
///
/// # Safety
/// The rows lie inside A; with `by_column` they are consecutive.
#[inline(always)]
unsafe fn pack_a<K: Kernel>(
    dst: &mut [f32],
    a: Source,
    at: &[usize],
    pc: usize,
    kc: usize,
    by_column: bool,
    order: Option<&[usize]>,
) {
    let a = match a {
        Source::View(view) => view,
        Source::Unfolded(u) => {
            for (r, &row) in at.iter().enumerate() {
                u.row_into(row, pc, &mut dst[r * A_STRIDE..][..kc]);
            }
            return;
        }
        Source::Packed(_) => unreachable!("only B is packed beforehand"),
    };
    let (i, rows) = (at[0], at.len());
    debug_assert!(by_column || order.is_none());
    let column_at = |p: usize| order.map_or(pc + p, |o| o[pc + p]);
    if by_column {
        for (p, column) in dst[..kc * K::MR].chunks_exact_mut(K::MR).enumerate() {
            if a.rs == 1 && rows == K::MR {
                // SAFETY: `MR` values from `(i, pc + p)` down column `pc + p` are
                // contiguous (`rs == 1`) and inside A. (A copy of constant length, which
                // the compiler inlines as vector moves.)
                column.copy_from_slice(unsafe { a.column(i, column_at(p), K::MR) });
            } else if a.rs == 1 {
                // SAFETY: as above, for the last `rows` rows.
                column[..rows].copy_from_slice(unsafe { a.column(i, column_at(p), rows) });
            } else {
                for (r, v) in column[..rows].iter_mut().enumerate() {
                    // SAFETY: inside A.
                    *v = unsafe { a.at(i + r, column_at(p)) };
                }
            }
        }
    } else if a.cs == 1 {
        for (r, &row) in at.iter().enumerate() {
            // SAFETY: `kc` values from `(row, pc)` lie inside A.
            let src = unsafe { a.row(row, pc, kc) };
            dst[r * A_STRIDE..][..kc].copy_from_slice(src);
        }
    } else {
        for p in 0..kc {
            for (r, &row) in at.iter().enumerate() {
                // SAFETY: inside A.
                dst[r * A_STRIDE + p] = unsafe { a.at(row, pc + p) };
            }
        }
    }
}

/// Writes the valid `rows × cols` part of a tile held row-major in `tile` (`nr` wide)
/// to C: the slow path, for tiles at C's edges.
///
/// # Safety
/// `c[r] + j` is valid for `cols` values of each of the first `rows` rows.
#[allow(clippy::too_many_arguments)]
unsafe fn store_edge(tile: &[f32], nr: usize, c: &[*mut f32], j: usize, rows: usize, cols: usize, load_c: bool) {
    for (r, &row) in c[..rows].iter().enumerate() {
        for (col, &v) in tile[r * nr..][..cols].iter().enumerate() {
            // SAFETY: `(r, j + col)` is inside the tile's valid part of C.
            unsafe {
                let p = row.add(j + col);
                *p = if load_c { *p + v } else { v };
            }
        }
    }
}

/// One level's microkernel: the type `$level` implementing [`Kernel`] with an
/// `MR × (2 · LANES)` tile, from that level's vector type and intrinsics.
macro_rules! microkernel {
    ($level:ident, $features:literal, $mr:literal, $lanes:literal, $v:ty,
     zero: $zero:ident, load: $load:ident, store: $store:ident, splat: $splat:ident,
     fma: $fma:ident, add: $add:ident) => {
        struct $level;

        impl Kernel for $level {
            const MR: usize = $mr;
            const NR: usize = 2 * $lanes;
            const ISA: Isa = Isa::$level;

            #[inline]
            unsafe fn run<const BY_COLUMN: bool>(
                spans: &[(usize, usize)],
                a: *const f32,
                b: *const f32,
                c: &[*mut f32; MAX_MR],
                j: usize,
                rows: usize,
                cols: usize,
                load_c: bool,
            ) {
                #[target_feature(enable = $features)]
                #[allow(clippy::too_many_arguments)]
                unsafe fn tile<const BY_COLUMN: bool>(
                    spans: &[(usize, usize)],
                    a: *const f32,
                    b: *const f32,
                    c: &[*mut f32; MAX_MR],
                    j: usize,
                    rows: usize,
                    cols: usize,
                    load_c: bool,
                ) {
                    const NR: usize = 2 * $lanes;
                    let mut acc: [[$v; 2]; $mr] = [[$zero(); 2]; $mr];
                    // SAFETY: the trait's contract bounds every pointer below.
                    unsafe {
                        for &(k0, k1) in spans {
                            for p in k0..k1 {
                                let b0 = $load(b.add(p * NR));
                                let b1 = $load(b.add(p * NR + $lanes));
                                for (r, acc) in acc.iter_mut().enumerate() {
                                    let at = if BY_COLUMN { p * $mr + r } else { r * A_STRIDE + p };
                                    let av = $splat(*a.add(at));
                                    acc[0] = $fma(av, b0, acc[0]);
                                    acc[1] = $fma(av, b1, acc[1]);
                                }
                            }
                        }
                        if rows == $mr && cols == NR {
                            for (r, acc) in acc.iter().enumerate() {
                                let out = c[r].add(j);
                                let (mut v0, mut v1) = (acc[0], acc[1]);
                                if load_c {
                                    v0 = $add(v0, $load(out));
                                    v1 = $add(v1, $load(out.add($lanes)));
                                }
                                $store(out, v0);
                                $store(out.add($lanes), v1);
                            }
                        } else {
                            let mut edge = [0f32; $mr * NR];
                            for (r, acc) in acc.iter().enumerate() {
                                $store(edge.as_mut_ptr().add(r * NR), acc[0]);
                                $store(edge.as_mut_ptr().add(r * NR + $lanes), acc[1]);
                            }
                            store_edge(&edge, NR, c, j, rows, cols, load_c);
                        }
                    }
                }
                // SAFETY: the trait's contract (the CPU has the level's features).
                unsafe { tile::<BY_COLUMN>(spans, a, b, c, j, rows, cols, load_c) }
            }
        }
    };
}

microkernel!(Avx512, "avx,avx2,fma,avx512f", 12, 16, __m512,
    zero: _mm512_setzero_ps, load: _mm512_loadu_ps, store: _mm512_storeu_ps, splat: _mm512_set1_ps,
    fma: _mm512_fmadd_ps, add: _mm512_add_ps);
microkernel!(Avx2, "avx,avx2,fma", 6, 8, __m256,
    zero: _mm256_setzero_ps, load: _mm256_loadu_ps, store: _mm256_storeu_ps, splat: _mm256_set1_ps,
    fma: _mm256_fmadd_ps, add: _mm256_add_ps);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::{matmul, Call, MatRef};
    use crate::isa::with_isa;

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// `C (+)= A · B` in f64 from the views' elements.
    fn reference(m: usize, n: usize, k: usize, c0: &[f32], acc: bool, a: MatRef<f32>, b: MatRef<f32>) -> Vec<f64> {
        let at = |v: &MatRef<f32>, i: usize, j: usize| f64::from(v.data[i * v.row_stride + j * v.col_stride]);
        (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                let start = if acc { f64::from(c0[ij]) } else { 0.0 };
                start + (0..k).map(|p| at(&a, i, p) * at(&b, p, j)).sum::<f64>()
            })
            .collect()
    }

    /// Every level's product against f64 sums: tiles at every edge, several depth
    /// and width panels, thin products, operands transposed or not, accumulating or
    /// not, threaded or not.
    #[test]
    fn products_match_f64_sums_at_every_level_and_edge() {
        let shapes = [(4, 16, 1), (13, 33, 7), (25, 70, 300), (40, 600, 520), (7, 16, 256), (100, 31, 3)];
        let thin = [(1, 40, 300), (3, 70, 20), (50, 1, 300), (33, 3, 17), (2, 2, 5), (64, 2, 512)];
        for isa in [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.supported()) {
            for &(m, n, k) in shapes.iter().chain(&thin) {
                for (ta, tb, acc, threaded) in [
                    (false, false, false, true),
                    (true, false, true, false),
                    (false, true, true, true),
                    (true, true, false, false),
                ] {
                    let (a, b, c0) = (values(m * k, 1), values(k * n, 2), values(m * n, 3));
                    let av = if ta { MatRef::transposed(&a, m) } else { MatRef::rows(&a, k) };
                    let bv = if tb { MatRef::transposed(&b, k) } else { MatRef::rows(&b, n) };
                    let mut c = c0.clone();
                    with_isa(isa, || matmul(m, n, k, &mut c, acc, av, bv, threaded));
                    let want = reference(m, n, k, &c0, acc, av, bv);
                    for (ij, (&got, &want)) in c.iter().zip(&want).enumerate() {
                        let tol = 1e-5 * (k as f64).sqrt().max(1.0);
                        assert!(
                            (f64::from(got) - want).abs() <= tol,
                            "{isa} {m}×{n}×{k} ta={ta} tb={tb} acc={acc} at {ij}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// A threaded product with few rows is split by columns, one part per thread
    /// (whole tiles, the last part short; B transposed or not, accumulating or not):
    /// the same bits as the single-threaded product, which splits nothing. Run in
    /// pools of 2 and 3 threads, so that it is tested whatever the machine's count.
    #[test]
    fn few_rows_split_by_columns_give_the_single_threaded_bits() {
        for isa in [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.supported()) {
            let nr = if isa == Isa::Avx512 { Avx512::NR } else { Avx2::NR };
            for threads in [2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                for &(m, n, k) in &[(64, 784, 300), (13, 7 * nr + 5, 600), (100, 2 * nr * threads, 40)] {
                    assert_eq!(parts(&pool, isa, (m, n, k)), Some(threads), "{isa} {m}×{n}×{k}");
                    for (tb, acc) in [(false, false), (true, true)] {
                        let (a, b, c0) = (values(m * k, 1), values(k * n, 2), values(m * n, 3));
                        let (av, bv) =
                            (MatRef::rows(&a, k), if tb { MatRef::transposed(&b, k) } else { MatRef::rows(&b, n) });
                        let (mut split, mut serial) = (c0.clone(), c0.clone());
                        pool.install(|| with_isa(isa, || matmul(m, n, k, &mut split, acc, av, bv, true)));
                        with_isa(isa, || matmul(m, n, k, &mut serial, acc, av, bv, false));
                        assert_eq!(split, serial, "{isa}, {threads} threads, {m}×{n}×{k} tb={tb} acc={acc}");
                    }
                }
                // Many rows per thread, or too few columns: rows as before.
                assert_eq!(parts(&pool, isa, (COLUMN_SPLIT_ROWS * threads, 4096, 64)), None);
                assert_eq!(parts(&pool, isa, (8, 2 * nr * threads - 1, 64)), None);
            }
        }
    }

    /// How many parts a threaded product of this shape is split into in `pool`.
    fn parts(pool: &rayon::ThreadPool, isa: Isa, (m, n, k): (usize, usize, usize)) -> Option<usize> {
        let threaded = gemm_common::Parallelism::Rayon(0);
        pool.install(|| column_parts(isa, &Call { parallelism: threaded, ..Call::shape(m, n, k) }).map(|p| p.len()))
    }

    /// A B packed once serves products with different A's, as the same product
    /// packing B itself would: several width and depth panels, B transposed or a
    /// strided view, accumulating or not, threaded or not; a shape it was not packed
    /// for, or a thin product, is refused.
    #[test]
    fn packed_b_serves_products_as_an_unpacked_b() {
        for isa in [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.supported()) {
            for &(m, n, k) in &[(13, 33, 7), (25, 600, 300), (40, 70, 520)] {
                for (tb, acc, threaded) in [(false, false, true), (true, true, false)] {
                    let b = values(k * n, 2);
                    let bv = if tb { MatRef::transposed(&b, k) } else { MatRef::rows(&b, n) };
                    let call = Call {
                        rhs: b.as_ptr(),
                        rhs_cs: bv.col_stride as isize,
                        rhs_rs: bv.row_stride as isize,
                        ..Call::shape(0, n, k)
                    };
                    // SAFETY: `bv` is a valid `k × n` view of `b`.
                    let packed = unsafe { PackedB::new(isa, &call, threaded) }.unwrap();
                    assert!(!packed.serves(isa, (m, n + 1, k)) && !packed.serves(isa, (2, n, k)));
                    for seed in [1, 5] {
                        let (a, c0) = (values(m * k, seed), values(m * n, 3));
                        let av = MatRef::rows(&a, k);
                        let (mut got, mut want) = (c0.clone(), c0.clone());
                        with_isa(isa, || matmul(m, n, k, &mut want, acc, av, bv, threaded));
                        let c = Call::of((m, n, k), got.as_mut_ptr(), acc, av, bv, threaded);
                        assert!(packed.serves(isa, (m, n, k)));
                        // SAFETY: the views and `got` are valid for the call.
                        unsafe { run_packed(isa, &c, &packed) };
                        assert_eq!(got, want, "{isa} {m}×{n}×{k} tb={tb} acc={acc}");
                    }
                }
            }
        }
    }

    /// `col2im(dŶᵀ · Wc)` in f64 from the definition: row `l`, column `(i·kw + j)·C +
    /// ch` of the product added to pixel `(oh·s − p + i·d, ow·s − p + j·d)`, channel `ch`.
    fn folded_reference(g: &ConvGeometry, n: usize, dy: &[f32], wc: &[f32]) -> Vec<f64> {
        let (s, p, d, pp) = (g.params.stride, g.params.padding, g.params.dilation, g.patch());
        let mut dx = vec![0f64; n * g.in_plane() * g.cin];
        for l in 0..n * g.out_plane() {
            let (img, oh, ow) = (l / g.out_plane(), l % g.out_plane() / g.out_w, l % g.out_w);
            for col in 0..pp {
                let (tap, ch) = (col / g.cin, col % g.cin);
                let (ih, iw) = ((oh * s + tap / g.k_w * d).wrapping_sub(p), (ow * s + tap % g.k_w * d).wrapping_sub(p));
                if ih < g.in_h && iw < g.in_w {
                    let v: f64 = (0..g.cout).map(|o| f64::from(dy[l * g.cout + o]) * f64::from(wc[o * pp + col])).sum();
                    dx[((img * g.in_h + ih) * g.in_w + iw) * g.cin + ch] += v;
                }
            }
        }
        dx
    }

    /// The adjoint's product folded into the images tile by tile against the
    /// definition, at every level that folds: padding, dilation, odd image sizes,
    /// pixel counts that are no multiple of a tile's rows, several width panels
    /// (`k²·C` > 512) and depth panels (`O` > 256); channels a multiple of the tile
    /// width only (AVX-512: 32, AVX2: 16), else refused with nothing written.
    #[test]
    fn folded_adjoint_matches_col2im_of_the_product() {
        use crate::gemm::matmul_folded;
        use crate::{ConvGeometry, ConvParams, ImageLayout};
        let cases = [
            (3, 32, (8, 8), 16, (4, 4), 2, 1, 1),
            (2, 64, (7, 5), 8, (3, 3), 1, 2, 1),
            (2, 32, (9, 9), 24, (3, 3), 2, 1, 2),
            (2, 32, (6, 6), 300, (2, 2), 2, 0, 1),
            (1, 48, (5, 5), 3, (4, 4), 1, 1, 1),
        ];
        for (n, c, (h, w), o, (kh, kw), stride, padding, dilation) in cases {
            let params = ConvParams { stride, padding, dilation, layout: ImageLayout::Nhwc };
            let g = ConvGeometry::new([n, c, h, w], [o, c, kh, kw], params).unwrap();
            let (m, pp) = (n * g.out_plane(), g.patch());
            let (dy, wc) = (values(m * o, 7), values(o * pp, 8));
            let want = folded_reference(&g, n, &dy, &wc);
            let scale = want.iter().fold(1f64, |a, &v| a.max(v.abs()));
            for isa in Isa::available() {
                let mut dx = vec![std::mem::MaybeUninit::new(f32::NAN); g.input_len()];
                let took = with_isa(isa, || {
                    matmul_folded((m, pp, o), &mut dx, MatRef::rows(&dy, o), MatRef::rows(&wc, pp), &g, n)
                });
                let tile = match isa {
                    Isa::Avx512 => Avx512::NR,
                    Isa::Avx2 => Avx2::NR,
                    Isa::Scalar => usize::MAX,
                };
                assert_eq!(took, c % tile == 0, "{isa} {c} channels: folded or not");
                if !took {
                    continue;
                }
                // SAFETY: `matmul_folded` wrote every value (it took the product).
                let got = dx.iter().map(|v| f64::from(unsafe { v.assume_init() }));
                for (i, (got, want)) in got.zip(&want).enumerate() {
                    assert!((got - want).abs() <= 1e-5 * scale, "{isa} {g:?} at {i}: {got} vs {want}");
                }
            }
        }
    }

    /// Both levels sum each element's `k` in the same order: the same bits.
    #[test]
    fn both_levels_give_the_same_bits() {
        if !Isa::Avx512.supported() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        for (m, n, k) in [(25, 70, 300), (40, 600, 520), (50, 1, 300), (1, 40, 300)] {
            let (a, b) = (values(m * k, 4), values(k * n, 5));
            let at = |isa| {
                let mut c = vec![0f32; m * n];
                with_isa(isa, || matmul(m, n, k, &mut c, false, MatRef::rows(&a, k), MatRef::rows(&b, n), true));
                c
            };
            assert_eq!(at(Isa::Avx2), at(Isa::Avx512), "{m}×{n}×{k}");
        }
    }

    /// The shapes above reach the path meant for them (row-major operands).
    #[test]
    fn each_shape_takes_its_path() {
        for isa in [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.supported()) {
            for (m, n, k) in [(13, 33, 7), (40, 600, 520), (7, 16, 256)] {
                assert_eq!(path(isa, &Call::<f32>::shape(m, n, k)), Some(Path::Blocked), "{isa} {m}×{n}×{k}");
            }
            assert_eq!(path(isa, &Call::<f32>::shape(50, 1, 300)), Some(Path::Dots));
            assert_eq!(path(isa, &Call::<f32>::shape(1, 40, 300)), Some(Path::Rows));
        }
        for isa in Isa::ALL {
            assert_eq!(path(isa, &Call::<f32>::shape(64, 64, 0)), None, "{isa}: k = 0");
            assert_eq!(
                path(isa, &Call::<f32>::shape(64, 8, 64)).is_some(),
                isa == Isa::Avx2 && isa.supported(),
                "{isa}: 8 columns"
            );
        }
        assert_eq!(path(Isa::Scalar, &Call::<f32>::shape(64, 64, 64)), None);
    }
}
