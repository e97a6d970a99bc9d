//! `y = tanh(x)`, the generators' output activation, in one parallel pass, and its
//! backward `dx = dy · (1 − y²)` in one more (Candle runs the forward on one
//! thread and the backward as four allocating ops). The backward is differentiable
//! again: in `dy` it is the same op, in `y` it is `−2 y · dy · g`.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use crate::elementwise::zip_map;
use crate::gemm::Element;
use crate::storage::{typed, Typed};

/// The hyperbolic tangent of the element types the kernels run on.
trait Tanh: Element {
    fn tanh(self) -> Self;
}

impl Tanh for f32 {
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
}

impl Tanh for f64 {
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
}

fn tanh_of<T: Tanh>(x: &[T]) -> Vec<T> {
    zip_map(x, x, |v, _| v.tanh())
}

/// `dy · (1 − y²)`, rounded as Candle's `dy · (y² − 1)` negated (the same value).
fn tanh_grad_of<T: Element>(y: &[T], dy: &[T]) -> Vec<T> {
    zip_map(y, dy, |y, g| g * (T::ONE - y * y))
}

struct TanhOp;

impl CustomOp1 for TanhOp {
    fn name(&self) -> &'static str {
        "ganzoo-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = match typed(self.name(), [(s, l)])? {
            Typed::F32([x]) => CpuStorage::F32(tanh_of(x)),
            Typed::F64([x]) => CpuStorage::F64(tanh_of(x)),
        };
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(tanh_grad(y, dy)?))
    }
}

/// `(y, dy) → dy · (1 − y²)`.
struct TanhGradOp;

impl CustomOp2 for TanhGradOp {
    fn name(&self) -> &'static str {
        "ganzoo-tanh-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("tanh backward: output {:?} and gradient {:?} differ", l1.dims(), l2.dims());
        }
        let out = match typed(self.name(), [(s1, l1), (s2, l2)])? {
            Typed::F32([y, dy]) => CpuStorage::F32(tanh_grad_of(y, dy)),
            Typed::F64([y, dy]) => CpuStorage::F64(tanh_grad_of(y, dy)),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(&self, y: &Tensor, dy: &Tensor, _: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy_grad = crate::ops::tracked(dy, || tanh_grad(y, g))?;
        let y_grad = crate::ops::tracked(y, || (y * dy)?.mul(g)?.affine(-2.0, 0.0))?;
        Ok((y_grad, dy_grad))
    }
}

/// `tanh(x)`.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(TanhOp)
}

/// `dy · (1 − y²)` for `y = tanh(x)`: the gradient of `Σ tanh(x) · dy` in `x`.
pub fn tanh_grad(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    y.contiguous()?.apply_op2(&dy.contiguous()?, TanhGradOp)
}
