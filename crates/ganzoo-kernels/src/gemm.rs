//! One matrix product, `C (+)= A · B`, on strided slices through the `gemm` crate
//! (the one Candle's CPU matmul uses), threaded over rayon's pool or not.

use std::mem::MaybeUninit;
use std::ops::{AddAssign, Mul, Sub};

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
}

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
}

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
    // SAFETY: the caller's contract; `T` is f32 or f64, both of which `gemm` supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            if threaded { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None },
        );
    }
}
