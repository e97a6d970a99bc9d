//! One matrix product, `C (+)= A · B`, on strided slices at the [`isa`](crate::isa)
//! level chosen, threaded over rayon's pool or not: `f32` products at AVX2 and AVX-512
//! on ganzoo's own GEMM (`sgemm`), the rest through the `gemm` crate (the one Candle's
//! CPU matmul uses) with that level's microkernels.

use std::mem::MaybeUninit;
use std::ops::{Add, AddAssign, Mul, Sub};

use crate::geometry::ConvGeometry;
use crate::im2col::Unfolded;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The element types the kernels run on: `f32` for training, `f64` for gradient checks.
pub trait Element:
    sealed::Sealed
    + Copy
    + Send
    + Sync
    + Default
    + Add<Output = Self>
    + AddAssign
    + Mul<Output = Self>
    + Sub<Output = Self>
    + PartialOrd
    + std::fmt::Debug
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    /// This thread's spare working buffers of this type (see `scratch`).
    #[doc(hidden)]
    fn pool() -> &'static std::thread::LocalKey<crate::scratch::Pool<Self>>;
    /// Runs `call` with `isa`'s GEMM microkernels (the baseline's where the CPU lacks them).
    ///
    /// # Safety
    /// The call's pointers and strides must describe valid `m × k`, `k × n` and
    /// (writable) `m × n` matrices.
    #[doc(hidden)]
    unsafe fn gemm(isa: crate::isa::Isa, call: Call<Self>);
    /// Whether [`Self::gemm_unfolded`] takes an `m × n × k` product at `isa`.
    #[doc(hidden)]
    fn unfolds(_isa: crate::isa::Isa, _m: usize, _n: usize, _k: usize) -> bool {
        false
    }
    /// Runs `call` with the unfolded operand `u` as its A or B, for a product
    /// [`Self::unfolds`] took.
    ///
    /// # Safety
    /// As for [`Self::gemm`] (that operand aside), `u` the shape of the operand it is.
    #[doc(hidden)]
    unsafe fn gemm_unfolded(_isa: crate::isa::Isa, _call: Call<Self>, _u: Unfolded<Self>, _side: Side) {
        unreachable!("gemm_unfolded on a product `unfolds` refused")
    }
    /// Runs `call`, a product whose rows are the output pixels of `samples` images
    /// under `g` and whose columns are its im2col columns, leaving the entries of taps
    /// in the padding unwritten where that saves work; `false` (nothing done) where
    /// this type's GEMM does not take it at `isa`.
    ///
    /// # Safety
    /// As for [`Self::gemm`].
    #[doc(hidden)]
    unsafe fn gemm_patches(_isa: crate::isa::Isa, _call: &Call<Self>, _g: &ConvGeometry, _samples: usize) -> bool {
        false
    }
    /// Whether [`Self::gemm_folded`] takes a block's adjoint product `(m, n, k)` under `g`.
    #[doc(hidden)]
    fn folds(_isa: crate::isa::Isa, _shape: (usize, usize, usize), _g: &ConvGeometry) -> bool {
        false
    }
    /// Adds `col2im` of `call`'s product (the adjoint's `dŶᵀ · Wc` over `samples`
    /// channels-last images under `g`) into the images at `call.dst`, for a product
    /// [`Self::folds`] took.
    ///
    /// # Safety
    /// As for [`Self::gemm`], `call.dst` the block's images, initialised.
    #[doc(hidden)]
    unsafe fn gemm_folded(_isa: crate::isa::Isa, _call: &Call<Self>, _g: &ConvGeometry, _samples: usize) {
        unreachable!("gemm_folded on a product `folds` refused")
    }
    /// `call`'s right operand packed for [`Self::gemm_packed`], where this type's GEMM
    /// packs at `isa`.
    ///
    /// # Safety
    /// `call`'s right operand is a valid `k × n` matrix.
    #[doc(hidden)]
    unsafe fn pack_rhs(_isa: crate::isa::Isa, _call: &Call<Self>, _threaded: bool) -> Option<Packed> {
        None
    }
    /// Runs `call` with its right operand read from `b` (packed from it by
    /// [`Self::pack_rhs`]); `false` (nothing done) where `b` does not serve the call.
    ///
    /// # Safety
    /// As for [`Self::gemm`].
    #[doc(hidden)]
    unsafe fn gemm_packed(_isa: crate::isa::Isa, _call: &Call<Self>, _b: &Packed) -> bool {
        false
    }
}

/// A right operand in ganzoo's GEMM's packed form.
#[cfg(target_arch = "x86_64")]
#[doc(hidden)]
pub type Packed = crate::sgemm::PackedB;
/// A right operand in ganzoo's GEMM's packed form (none off x86-64).
#[cfg(not(target_arch = "x86_64"))]
#[doc(hidden)]
pub enum Packed {}

impl Element for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn pool() -> &'static std::thread::LocalKey<crate::scratch::Pool<Self>> {
        &crate::scratch::F32_POOL
    }
    unsafe fn gemm(isa: crate::isa::Isa, call: Call<Self>) {
        #[cfg(target_arch = "x86_64")]
        if crate::sgemm::takes(isa, &call) {
            // SAFETY: the caller's contract.
            return unsafe { crate::sgemm::run(isa, &call) };
        }
        // SAFETY: the caller's contract.
        unsafe { crate_gemm_f32(isa, call) }
    }
    fn unfolds(isa: crate::isa::Isa, m: usize, n: usize, k: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        return crate::sgemm::takes_unfolded(isa, m, n, k);
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
    unsafe fn gemm_unfolded(isa: crate::isa::Isa, call: Call<Self>, u: Unfolded<Self>, side: Side) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's contract.
        unsafe {
            crate::sgemm::run_unfolded(isa, &call, u, side)
        }
    }
    unsafe fn gemm_patches(isa: crate::isa::Isa, call: &Call<Self>, g: &ConvGeometry, samples: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        if call.lhs_cs == 1 && !call.read_dst && crate::sgemm::takes_unfolded(isa, call.m, call.n, call.k) {
            // SAFETY: the caller's contract; A's rows are contiguous.
            unsafe { crate::sgemm::run_skipping_padding(isa, call, g, samples) };
            return true;
        }
        false
    }
    fn folds(isa: crate::isa::Isa, shape: (usize, usize, usize), g: &ConvGeometry) -> bool {
        #[cfg(target_arch = "x86_64")]
        return crate::sgemm::folds(isa, shape, g);
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
    unsafe fn gemm_folded(isa: crate::isa::Isa, call: &Call<Self>, g: &ConvGeometry, samples: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's contract.
        unsafe {
            crate::sgemm::run_folding(isa, call, g, samples)
        }
    }
    #[cfg(target_arch = "x86_64")]
    unsafe fn pack_rhs(isa: crate::isa::Isa, call: &Call<Self>, threaded: bool) -> Option<Packed> {
        // SAFETY: the caller's contract.
        unsafe { crate::sgemm::PackedB::new(isa, call, threaded) }
    }
    #[cfg(target_arch = "x86_64")]
    unsafe fn gemm_packed(isa: crate::isa::Isa, call: &Call<Self>, b: &Packed) -> bool {
        if !b.serves(isa, (call.m, call.n, call.k)) {
            return false;
        }
        // SAFETY: the caller's contract; `serves` checked the level and shape.
        unsafe { crate::sgemm::run_packed(isa, call, b) };
        true
    }
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn pool() -> &'static std::thread::LocalKey<crate::scratch::Pool<Self>> {
        &crate::scratch::F64_POOL
    }
    unsafe fn gemm(isa: crate::isa::Isa, call: Call<Self>) {
        // SAFETY: the caller's contract.
        unsafe { crate_gemm_f64(isa, call) }
    }
}

gemm_at_levels!(crate_gemm_f32, f32, gemm_f32);
gemm_at_levels!(crate_gemm_f64, f64, gemm_f64);

/// A read-only matrix view: `data[i * row_stride + j * col_stride]` is element `(i, j)`.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// Row-major, `cols` wide.
    pub fn rows(data: &'a [T], cols: usize) -> Self {
        Self { data, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of a row-major matrix `cols` wide.
    pub fn transposed(data: &'a [T], cols: usize) -> Self {
        Self { data, row_stride: 1, col_stride: cols }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst (m × n, row-major) = [dst +] a (m × k) · b (k × n)`, on rayon's pool when
/// `threaded`, else on the calling thread.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    a: MatRef<T>,
    b: MatRef<T>,
    threaded: bool,
) {
    assert!(dst.len() >= m * n && a.fits(m, k) && b.fits(k, n), "matmul: operand shorter than its view");
    // SAFETY: the assert keeps every access of the three views inside their slices.
    unsafe { gemm_unchecked(m, n, k, dst.as_mut_ptr(), accumulate, a, b, threaded) }
}

/// `dst (m × n, row-major) = a (m × k) · b (k × n)`, writing every element of
/// `dst[..m·n]` without reading any (so `dst` may be uninitialised).
#[allow(clippy::too_many_arguments)]
pub fn matmul_to<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [MaybeUninit<T>],
    a: MatRef<T>,
    b: MatRef<T>,
    threaded: bool,
) {
    assert!(dst.len() >= m * n && a.fits(m, k) && b.fits(k, n), "matmul: operand shorter than its view");
    // SAFETY: the assert keeps every access inside the slices; without `accumulate`, gemm
    // reads nothing of `dst` and writes every element (zeros when k = 0).
    unsafe { gemm_unchecked(m, n, k, dst.as_mut_ptr().cast(), false, a, b, threaded) }
}

/// `dst (m × n, row-major) = a (m × k) · b (k × n)` for a product whose rows are
/// the output pixels of `samples` images under `g` and whose columns are its im2col
/// columns (the adjoint's `dŶᵀ · Wc`): where ganzoo's GEMM takes it, the entries of
/// taps in the padding — which `col2im` never reads — may keep what `dst` held.
pub fn matmul_patches<T: Element>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    a: MatRef<T>,
    b: MatRef<T>,
    g: &ConvGeometry,
    samples: usize,
    threaded: bool,
) {
    assert!(dst.len() >= m * n && a.fits(m, k) && b.fits(k, n), "matmul: operand shorter than its view");
    assert!(
        m == samples * g.out_plane() && n == g.patch(),
        "matmul_patches: {m} × {n} is not {samples} images' im2col"
    );
    if m == 0 || n == 0 {
        return;
    }
    let call = Call::of((m, n, k), dst.as_mut_ptr(), false, a, b, threaded);
    // SAFETY: the asserts keep every access inside the slices; nothing is accumulated.
    if !unsafe { T::gemm_patches(crate::isa::active(), &call, g, samples) } {
        matmul(m, n, k, dst, false, a, b, threaded);
    }
}

/// `dx = col2im(a · b)` for the adjoint's `dŶᵀ · Wc` (`m × n × k`) over a block of
/// `samples` channels-last images under `g`, on the calling thread: the product's
/// tiles are added into the zeroed images as they are computed, never stored. Writes
/// all of `dx[..samples·H·W·C]`. Only where ganzoo's GEMM does it
/// (`Element::folds`); elsewhere `false`, nothing written: multiply with
/// [`matmul_patches`] and fold with `col2im`.
pub fn matmul_folded<T: Element>(
    (m, n, k): (usize, usize, usize),
    dx: &mut [MaybeUninit<T>],
    a: MatRef<T>,
    b: MatRef<T>,
    g: &ConvGeometry,
    samples: usize,
) -> bool {
    let len = samples * g.in_plane() * g.cin;
    assert!(dx.len() >= len && a.fits(m, k) && b.fits(k, n), "matmul: operand shorter than its view");
    assert!(m == samples * g.out_plane() && n == g.patch(), "matmul_folded: {m} × {n} is not {samples} images' im2col");
    let isa = crate::isa::active();
    if m == 0 || n == 0 || a.col_stride != 1 || !T::folds(isa, (m, n, k), g) {
        return false;
    }
    let dx = crate::uninit::fill(&mut dx[..len], T::ZERO);
    let call = Call::of((m, n, k), dx.as_mut_ptr(), true, a, b, false);
    // SAFETY: the asserts keep every access inside the slices; `dx` is initialised.
    unsafe { T::gemm_folded(isa, &call, g, samples) };
    true
}

/// Which operand of a product is an unfolded im2col matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `im2col(x) · B` (a forward convolution, output channels-last).
    Lhs,
    /// `A · im2col(x)` (a weight gradient).
    Rhs,
}

/// `dst (m × n, row-major) = a · b` where the operand on `side` is the unfolded `u`
/// (`m × k` as A, `k × n` as B), read from the images while packing and never stored,
/// and `other` is the other operand; writes every element of `dst[..m·n]`, reading
/// none. Only where ganzoo's GEMM takes the product (`Element::unfolds`); elsewhere
/// `false`, nothing done: store the matrix with `im2col` and call [`matmul_to`].
pub fn matmul_unfolded_to<T: Element>(
    shape: (usize, usize, usize),
    dst: &mut [MaybeUninit<T>],
    u: Unfolded<T>,
    side: Side,
    other: MatRef<T>,
    threaded: bool,
) -> bool {
    // SAFETY: without `accumulate` nothing of `dst` is read.
    unsafe { unfolded(shape, dst, false, u, side, other, threaded) }
}

/// [`matmul_unfolded_to`] adding to `dst` (`dst += a · b`).
pub fn matmul_unfolded_into<T: Element>(
    shape: (usize, usize, usize),
    dst: &mut [T],
    u: Unfolded<T>,
    side: Side,
    other: MatRef<T>,
    threaded: bool,
) -> bool {
    // SAFETY: `dst` is initialised and only initialised sums are stored into it.
    unsafe { unfolded(shape, crate::uninit::as_uninit(dst), true, u, side, other, threaded) }
}

/// # Safety
/// With `accumulate`, `dst[..m·n]` is initialised.
#[allow(clippy::too_many_arguments)]
unsafe fn unfolded<T: Element>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [MaybeUninit<T>],
    accumulate: bool,
    u: Unfolded<T>,
    side: Side,
    other: MatRef<T>,
    threaded: bool,
) -> bool {
    let isa = crate::isa::active();
    if m == 0 || n == 0 || !T::unfolds(isa, m, n, k) {
        return false;
    }
    let (u_shape, other_fits) = match side {
        Side::Lhs => ((m, k), other.fits(k, n)),
        Side::Rhs => ((k, n), other.fits(m, k)),
    };
    assert!(
        dst.len() >= m * n && other_fits && (u.rows(), u.cols()) == u_shape,
        "matmul: operand shorter than its view"
    );
    let (ptr, cs, rs) = (other.data.as_ptr(), other.col_stride as isize, other.row_stride as isize);
    let base = Call {
        dst: dst.as_mut_ptr().cast(),
        read_dst: accumulate,
        parallelism: parallelism(threaded),
        ..Call::shape(m, n, k)
    };
    let call = match side {
        Side::Lhs => Call { rhs: ptr, rhs_cs: cs, rhs_rs: rs, ..base },
        Side::Rhs => Call { lhs: ptr, lhs_cs: cs, lhs_rs: rs, ..base },
    };
    // SAFETY: the assert keeps the stored operand and C inside their slices and the
    // unfolded one the right shape (`Unfolded` checked its images); without
    // `accumulate` the call writes every element of C and reads none, with it `dst`
    // is initialised (the caller's contract).
    unsafe { T::gemm_unfolded(isa, call, u, side) };
    true
}

/// A right operand `b (k × n)` shared by several products ([`matmul_packed`]): packed
/// once where ganzoo's GEMM takes them (`f32` at AVX2 / AVX-512), so none of them
/// packs it again; elsewhere the view itself.
pub struct PackedRhs<'a, T> {
    view: MatRef<'a, T>,
    k: usize,
    n: usize,
    packed: Option<Packed>,
}

impl<'a, T: Element> PackedRhs<'a, T> {
    /// Packs `b (k × n)` at the active level, on rayon's pool when `threaded`.
    pub fn new(k: usize, n: usize, b: MatRef<'a, T>, threaded: bool) -> Self {
        assert!(b.fits(k, n), "matmul: operand shorter than its view");
        if k == 0 || n == 0 {
            return Self { view: b, k, n, packed: None };
        }
        let (rhs, rhs_cs, rhs_rs) = (b.data.as_ptr(), b.col_stride as isize, b.row_stride as isize);
        let call = Call { rhs, rhs_cs, rhs_rs, ..Call::shape(0, n, k) };
        // SAFETY: the assert keeps B's view inside its slice.
        let packed = unsafe { T::pack_rhs(crate::isa::active(), &call, threaded) };
        Self { view: b, k, n, packed }
    }
}

/// `dst (m × n, row-major) = [dst +] a (m × k) · b`, `b` packed beforehand where it
/// could be (else as [`matmul`]).
#[allow(clippy::too_many_arguments)]
pub fn matmul_packed<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    a: MatRef<T>,
    b: &PackedRhs<T>,
    threaded: bool,
) {
    assert!(dst.len() >= m * n && a.fits(m, k) && (b.k, b.n) == (k, n), "matmul: operand shorter than its view");
    if let (Some(packed), true) = (&b.packed, m > 0) {
        let call = Call::of((m, n, k), dst.as_mut_ptr(), accumulate, a, b.view, threaded);
        // SAFETY: the assert keeps every access inside the slices (B's view was checked
        // when it was packed).
        if unsafe { T::gemm_packed(crate::isa::active(), &call, packed) } {
            return;
        }
    }
    matmul(m, n, k, dst, accumulate, a, b.view, threaded);
}

/// `a (m × k) · b (k × n)` as a new row-major vector, written once (never zero-filled).
pub fn product<T: Element>(m: usize, n: usize, k: usize, a: MatRef<T>, b: MatRef<T>, threaded: bool) -> Vec<T> {
    // SAFETY: `matmul_to` writes all `m × n` elements.
    unsafe { crate::uninit::written(m * n, |dst| matmul_to(m, n, k, dst, a, b, threaded)) }
}

/// # Safety
/// `dst` must be valid for writes (and, with `accumulate`, reads) of `m × n`
/// row-major elements, and the views must fit `m × k` and `k × n`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_unchecked<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    accumulate: bool,
    a: MatRef<T>,
    b: MatRef<T>,
    threaded: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let call = Call::of((m, n, k), dst, accumulate, a, b, threaded);
    // SAFETY: the caller's contract.
    unsafe { T::gemm(crate::isa::active(), call) }
}

/// rayon's pool when `threaded`, else the calling thread.
fn parallelism(threaded: bool) -> gemm_common::Parallelism {
    if threaded {
        gemm_common::Parallelism::Rayon(0)
    } else {
        gemm_common::Parallelism::None
    }
}

/// One `dst = [dst +] lhs · rhs` in the `gemm` crate's strided form.
#[doc(hidden)]
pub struct Call<T> {
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) dst: *mut T,
    pub(crate) dst_cs: isize,
    pub(crate) dst_rs: isize,
    pub(crate) read_dst: bool,
    pub(crate) lhs: *const T,
    pub(crate) lhs_cs: isize,
    pub(crate) lhs_rs: isize,
    pub(crate) rhs: *const T,
    pub(crate) rhs_cs: isize,
    pub(crate) rhs_rs: isize,
    pub(crate) parallelism: gemm_common::Parallelism,
}

impl<T> Call<T> {
    /// `dst (m × n, row-major) = [dst +] a · b` on the views' data.
    pub(crate) fn of(
        (m, n, k): (usize, usize, usize),
        dst: *mut T,
        accumulate: bool,
        a: MatRef<T>,
        b: MatRef<T>,
        threaded: bool,
    ) -> Self {
        Call {
            dst,
            read_dst: accumulate,
            lhs: a.data.as_ptr(),
            lhs_cs: a.col_stride as isize,
            lhs_rs: a.row_stride as isize,
            rhs: b.data.as_ptr(),
            rhs_cs: b.col_stride as isize,
            rhs_rs: b.row_stride as isize,
            parallelism: parallelism(threaded),
            ..Call::shape(m, n, k)
        }
    }

    /// A call of the given size on no data, all row-major and single-threaded: for
    /// choosing a path by shape, and the base of real calls.
    pub(crate) fn shape(m: usize, n: usize, k: usize) -> Self {
        Call {
            m,
            n,
            k,
            dst: std::ptr::null_mut(),
            dst_cs: 1,
            dst_rs: n as isize,
            read_dst: false,
            lhs: std::ptr::null(),
            lhs_cs: 1,
            lhs_rs: k as isize,
            rhs: std::ptr::null(),
            rhs_cs: 1,
            rhs_rs: n as isize,
            parallelism: gemm_common::Parallelism::None,
        }
    }
}

/// Runs a [`Call`] through `gemm_common`'s driver with one level's microkernels from
/// `$kernels` (the `gemm-f32` or `gemm-f64` crate): the body of the `gemm` crate's own
/// per-level entry points, which it picks once per process and cannot be told to lower.
macro_rules! gemm_at_levels {
    ($name:ident, $t:ident, $kernels:ident) => {
        /// # Safety
        /// As for [`Element::gemm`].
        unsafe fn $name(isa: crate::isa::Isa, c: Call<$t>) {
            use gemm_common::gemm::gemm_basic_generic;
            macro_rules! at {
                ($simd:expr, $level:ident, $n:expr) => {{
                    use $kernels::microkernel::$level::$t as uk;
                    const MR: usize = uk::MR_DIV_N * $n;
                    // SAFETY: the caller's contract for the views; the level's CPU
                    // features were checked by `try_new`.
                    unsafe {
                        gemm_basic_generic::<_, $t, { $n }, MR, { uk::NR }, { uk::MR_DIV_N }, { uk::H_M }, { uk::H_N }>(
                            $simd,
                            c.m,
                            c.n,
                            c.k,
                            c.dst,
                            c.dst_cs,
                            c.dst_rs,
                            c.read_dst,
                            c.lhs,
                            c.lhs_cs,
                            c.lhs_rs,
                            c.rhs,
                            c.rhs_cs,
                            c.rhs_rs,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            |a, b, acc| a * b + acc,
                            &uk::UKR,
                            &uk::H_UKR,
                            false,
                            c.parallelism,
                        )
                    }
                }};
            }
            const LANES: usize = 64 / std::mem::size_of::<$t>();
            #[cfg(target_arch = "x86_64")]
            match isa {
                crate::isa::Isa::Avx512 => {
                    if let Some(simd) = gemm_common::simd::V4::try_new() {
                        return at!(simd, avx512f, LANES);
                    }
                }
                crate::isa::Isa::Avx2 => {
                    if let Some(simd) = gemm_common::simd::V3::try_new() {
                        return at!(simd, fma, LANES / 2);
                    }
                }
                crate::isa::Isa::Scalar => {}
            }
            let _ = isa;
            at!(gemm_common::simd::Scalar, scalar, 1)
        }
    };
}
pub(crate) use gemm_at_levels;
