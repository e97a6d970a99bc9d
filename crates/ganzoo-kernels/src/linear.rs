//! A fully connected layer, `y = x Wᵀ + b`, as one op: the bias is the GEMM's
//! initial value instead of a second pass, and the backward pass computes only the
//! gradients of operands that are part of a graph (a batch of real images needs none).
//!
//! Backward, for `x (B, in)`, `W (out, in)`, `b (out)`:
//! `dx = dy W`, `dW = dyᵀ x`, `db = Σ_b dy` — built from [`matrix_product`] and
//! [`column_sum`], which are differentiable again, so the penalty's second
//! derivative runs through them.

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use crate::gemm::{matmul, Element, MatRef};
use crate::matrix_product::{column_sum, matrix_product, Transposes};
use crate::storage::tracked;
use crate::storage::{typed, Typed};

struct LinearOp;

fn forward<T: Element>(x: &[T], w: &[T], b: &[T], (batch, input, output): (usize, usize, usize)) -> Vec<T> {
    let mut y: Vec<T> = Vec::with_capacity(batch * output);
    for _ in 0..batch {
        y.extend_from_slice(b);
    }
    matmul(batch, output, input, &mut y, true, MatRef::rows(x, input), MatRef::transposed(w, input), true);
    y
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "ganzoo-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (&[batch, input], &[output, w_in], &[b_out]) = (l1.dims(), l2.dims(), l3.dims()) else {
            bail!(
                "linear: expected x (B, in), W (out, in), b (out), got {:?}, {:?}, {:?}",
                l1.dims(),
                l2.dims(),
                l3.dims()
            )
        };
        if w_in != input || b_out != output {
            bail!("linear: x {:?}, W {:?} and b {:?} do not fit together", l1.dims(), l2.dims(), l3.dims());
        }
        let dims = (batch, input, output);
        let out = match typed(self.name(), [(s1, l1), (s2, l2), (s3, l3)])? {
            Typed::F32([x, w, b]) => CpuStorage::F32(forward(x, w, b, dims)),
            Typed::F64([x, w, b]) => CpuStorage::F64(forward(x, w, b, dims)),
        };
        Ok((out, Shape::from((batch, output))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = tracked(x, || matrix_product(dy, w, Transposes::NONE))?;
        let dw = tracked(w, || matrix_product(dy, x, Transposes::A))?;
        let db = tracked(b, || column_sum(dy))?;
        Ok((dx, dw, db))
    }
}

/// `x Wᵀ + b` for `x (B, in)`, `W (out, in)`, `b (out)`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, LinearOp)
}
