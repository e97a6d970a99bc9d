//! The matrix product and the column sum that a linear layer's backward pass is
//! made of (`dx = dy W`, `dW = dyᵀ x`, `db = Σ_b dy`), as ops that are
//! differentiable again, for the WGAN-GP penalty's second derivative.
//!
//! [`matrix_product`] is `C = op(A) · op(B)` with `op` the identity or the
//! transpose, read from the operands as they are stored (no transposed copy) and
//! written once (no zero-filled output). Its derivatives are products of the same
//! kind: for `C = A·B`, `dA = dC·Bᵀ` and `dB = Aᵀ·dC`; the other three cases follow by
//! transposing (see `MatrixProductOp::bwd`). [`column_sum`] is `s_j = Σ_i x_ij`,
//! whose derivative spreads the incoming gradient over every row.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use crate::gemm::{product, Element, MatRef};
use crate::storage::tracked;
use crate::storage::{typed, Typed};

/// Which operands enter the product transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transposes {
    pub a: bool,
    pub b: bool,
}

impl Transposes {
    pub const NONE: Self = Self { a: false, b: false };
    pub const A: Self = Self { a: true, b: false };
    pub const B: Self = Self { a: false, b: true };
    pub const BOTH: Self = Self { a: true, b: true };
}

struct MatrixProductOp(Transposes);

/// `(rows, cols)` of a stored matrix, or an error naming the op.
fn dims2(l: &Layout, op: &str) -> Result<(usize, usize)> {
    match l.dims() {
        &[r, c] => Ok((r, c)),
        dims => bail!("{op}: expected a matrix, got shape {dims:?}"),
    }
}

/// A stored `rows × cols` matrix seen as itself or as its transpose.
fn view<T>(data: &[T], (_, cols): (usize, usize), transposed: bool) -> MatRef<'_, T> {
    if transposed {
        MatRef::transposed(data, cols)
    } else {
        MatRef::rows(data, cols)
    }
}

/// `(rows, cols)` of `op(M)` for a stored `M`.
fn seen((r, c): (usize, usize), transposed: bool) -> (usize, usize) {
    if transposed {
        (c, r)
    } else {
        (r, c)
    }
}

impl MatrixProductOp {
    fn run<T: Element>(&self, a: &[T], b: &[T], da: (usize, usize), db: (usize, usize)) -> Vec<T> {
        let ((m, k), (_, n)) = (seen(da, self.0.a), seen(db, self.0.b));
        product(m, n, k, view(a, da, self.0.a), view(b, db, self.0.b), true)
    }
}

impl CustomOp2 for MatrixProductOp {
    fn name(&self) -> &'static str {
        "ganzoo-matrix-product"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (da, db) = (dims2(l1, "matrix product")?, dims2(l2, "matrix product")?);
        let ((m, k), (k2, n)) = (seen(da, self.0.a), seen(db, self.0.b));
        if k != k2 {
            bail!("matrix product: {:?} and {:?} do not fit together with {:?}", l1.dims(), l2.dims(), self.0);
        }
        let out = match typed(self.name(), [(s1, l1), (s2, l2)])? {
            Typed::F32([a, b]) => CpuStorage::F32(self.run(a, b, da, db)),
            Typed::F64([a, b]) => CpuStorage::F64(self.run(a, b, da, db)),
        };
        Ok((out, Shape::from((m, n))))
    }

    /// For `C = A·B`: `dA = dC·Bᵀ`, `dB = Aᵀ·dC`. For `C = Aᵀ·B`: `dA = B·dCᵀ`,
    /// `dB = A·dC`. For `C = A·Bᵀ`: `dA = dC·B`, `dB = dCᵀ·A`. For `C = Aᵀ·Bᵀ`:
    /// `dA = Bᵀ·dCᵀ`, `dB = dCᵀ·Aᵀ`.
    fn bwd(&self, a: &Tensor, b: &Tensor, _: &Tensor, dc: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        use Transposes as T;
        let ((a1, a2, ta), (b1, b2, tb)) = match self.0 {
            T::NONE => ((dc, b, T::B), (a, dc, T::A)),
            T::A => ((b, dc, T::B), (a, dc, T::NONE)),
            T::B => ((dc, b, T::NONE), (dc, a, T::A)),
            _ => ((b, dc, T::BOTH), (dc, a, T::BOTH)),
        };
        Ok((tracked(a, || matrix_product(a1, a2, ta))?, tracked(b, || matrix_product(b1, b2, tb))?))
    }
}

/// `op(a) · op(b)` for matrices `a` and `b`, each transposed or not as `t` says.
pub fn matrix_product(a: &Tensor, b: &Tensor, t: Transposes) -> Result<Tensor> {
    a.contiguous()?.apply_op2(&b.contiguous()?, MatrixProductOp(t))
}

struct ColumnSumOp;

/// Row after row added into one accumulator row: a vectorised pass in memory order.
fn sum_rows<T: Element>(x: &[T], cols: usize) -> Vec<T> {
    let mut sums = vec![T::ZERO; cols];
    for row in x.chunks_exact(cols.max(1)) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
    sums
}

impl CustomOp1 for ColumnSumOp {
    fn name(&self) -> &'static str {
        "ganzoo-column-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, cols) = dims2(l, "column sum")?;
        let out = match typed(self.name(), [(s, l)])? {
            Typed::F32([x]) => CpuStorage::F32(sum_rows(x, cols)),
            Typed::F64([x]) => CpuStorage::F64(sum_rows(x, cols)),
        };
        Ok((out, Shape::from(cols)))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(g.unsqueeze(0)?.broadcast_as(x.shape())?))
    }
}

/// `Σ_i x_ij` of a matrix `x`: the sum of its rows.
pub fn column_sum(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(ColumnSumOp)
}
